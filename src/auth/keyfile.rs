//! The JWT signing key: from `ADAM__AUTH__JWT_SECRET`, or in development a random key
//! generated once and kept in `data_dir/jwt.key` (mode 0600), never in the repository.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use rand::Rng;
use secrecy::SecretString;

use crate::settings::{Environment, Settings};

const KEY_FILE: &str = "jwt.key";

/// The configured key, or the development key file (created if missing).
pub fn resolve(settings: &Settings) -> anyhow::Result<SecretString> {
    if let Some(secret) = &settings.auth.jwt_secret {
        return Ok(secret.clone());
    }
    anyhow::ensure!(
        settings.environment == Environment::Development,
        "auth.jwt_secret is required in production: set ADAM__AUTH__JWT_SECRET"
    );
    load_or_create(&settings.data_dir.join(KEY_FILE))
}

fn load_or_create(path: &Path) -> anyhow::Result<SecretString> {
    if path.exists() {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting permissions of {}", path.display()))?;
        }
        let key = std::fs::read_to_string(path)
            .with_context(|| format!("reading JWT key {}", path.display()))?;
        let key = key.trim().to_owned();
        anyhow::ensure!(
            key.len() >= 32,
            "JWT key file {} is too short",
            path.display()
        );
        return Ok(SecretString::from(key));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating data folder {}", parent.display()))?;
    }
    let bytes: [u8; 32] = rand::rng().random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating JWT key {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a development JWT key");
    Ok(SecretString::from(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_key_is_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("adam-key-{}", uuid::Uuid::new_v4()));
        let settings = Settings {
            data_dir: dir.clone(),
            ..Settings::default()
        };
        let first = resolve(&settings).expect("created");
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = resolve(&settings).expect("loaded");
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert_eq!(first.expose_secret().len(), 64);
        let _ = std::fs::remove_dir_all(dir);
    }
}
