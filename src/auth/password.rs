//! Password hashing with bcrypt (cost 12) off the async runtime, and the rules a
//! password must follow. Each bcrypt run costs about a quarter of a second of one core, so
//! the server counts them ([`HashCounter`], `adam_password_hashes_total`).

use std::sync::OnceLock;

use prometheus::IntCounterVec;

/// bcrypt work factor required by the product.
pub const BCRYPT_COST: u32 = 12;
/// bcrypt only reads 72 bytes; longer passwords are refused rather than truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why a password was refused (maps to 422 on the `password` field).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordRuleError {
    /// Over 72 bytes.
    #[error("must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// Under the minimum.
    #[error("must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
}

/// Checks the length rules.
pub fn check_rules(password: &str) -> Result<(), PasswordRuleError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordRuleError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordRuleError::TooShort);
    }
    Ok(())
}

/// Counts bcrypt runs by `op`: `hash` (a new password) and `verify` (a login or a
/// current-password check). Cheap to clone; [`HashCounter::none`] counts nothing (the CLI).
#[derive(Clone, Debug)]
pub struct HashCounter(Option<IntCounterVec>);

impl HashCounter {
    /// `adam_password_hashes_total{op}`, registered in `registry`.
    pub fn new(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(
            prometheus::Opts::new(
                "password_hashes_total",
                "bcrypt computations (cost 12), by op: hash or verify",
            ),
            &["op"],
        )?;
        for op in ["hash", "verify"] {
            counter.with_label_values(&[op]);
        }
        registry.register(Box::new(counter.clone()))?;
        Ok(Self(Some(counter)))
    }

    /// A counter that counts nothing (command-line tools).
    pub fn none() -> Self {
        Self(None)
    }

    fn count(&self, op: &str) {
        if let Some(counter) = &self.0 {
            counter.with_label_values(&[op]).inc();
        }
    }
}

/// Hashes with bcrypt `$2b$`, cost 12, on the blocking pool.
pub async fn hash(password: String, counter: &HashCounter) -> anyhow::Result<String> {
    counter.count("hash");
    let hashed = tokio::task::spawn_blocking(move || {
        bcrypt::hash_with_result(password, BCRYPT_COST)
            .map(|h| h.format_for_version(bcrypt::Version::TwoB))
    })
    .await??;
    Ok(hashed)
}

/// Verifies against a stored hash; `None` verifies against a dummy hash so that an
/// unknown account costs the same time as a wrong password, then answers false.
pub async fn verify(
    password: String,
    stored: Option<String>,
    counter: &HashCounter,
) -> anyhow::Result<bool> {
    counter.count("verify");
    let ok = tokio::task::spawn_blocking(move || -> Result<bool, bcrypt::BcryptError> {
        match stored {
            Some(hash) => bcrypt::verify(password, &hash),
            None => {
                let _ = bcrypt::verify(password, dummy_hash());
                Ok(false)
            }
        }
    })
    .await??;
    Ok(ok)
}

/// A cost-12 hash of a random string, computed once.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        bcrypt::hash(uuid::Uuid::new_v4().to_string(), BCRYPT_COST).unwrap_or_else(|_| {
            "$2b$12$C6UzMDM.H6dfI/f/IKxGhuR0gLbS1hQ8eWH8jnMK3Y6wSWz9Hc/4G".into()
        })
    })
}

/// Warms the dummy hash so the first unknown-user login is not faster than the rest.
pub async fn warm_up() {
    let _ = tokio::task::spawn_blocking(dummy_hash).await;
}

/// A random password for the first super_admin when none is configured.
pub fn generate() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(check_rules("short"), Err(PasswordRuleError::TooShort));
        assert_eq!(
            check_rules(&"a".repeat(73)),
            Err(PasswordRuleError::TooLong)
        );
        assert_eq!(check_rules(&"a".repeat(72)), Ok(()));
        // 24 three-byte characters are 72 bytes: accepted; 25 are not.
        assert_eq!(check_rules(&"€".repeat(24)), Ok(()));
        assert_eq!(
            check_rules(&"€".repeat(25)),
            Err(PasswordRuleError::TooLong)
        );
    }
}
