//! Login throttling. Failures are counted per (account, client IP) and per client IP.
//! Throttling an account only from the IPs that failed on it means an attacker cannot
//! lock the real user out: the user's own address is unaffected, and every block is
//! bounded by `login_max_lockout_secs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::clock::Clock;
use crate::settings::AuthSettings;

/// Entries kept before stale ones are swept.
const SWEEP_THRESHOLD: usize = 50_000;
/// First throttle; doubles with each further failure.
const BASE_LOCKOUT_SECS: i64 = 30;

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    window_start: i64,
    blocked_until: i64,
}

/// Counts failed logins and tells when a caller must wait.
#[derive(Debug)]
pub struct LoginThrottle {
    clock: Clock,
    max_per_account: u32,
    max_per_ip: u32,
    window: i64,
    max_lockout: i64,
    counters: Mutex<HashMap<String, Counter>>,
}

impl LoginThrottle {
    /// A throttle with the configured limits.
    pub fn new(settings: &AuthSettings, clock: Clock) -> Self {
        Self {
            clock,
            max_per_account: settings.login_max_failures,
            max_per_ip: settings.login_max_failures_per_ip,
            window: settings.login_window_secs,
            max_lockout: settings.login_max_lockout_secs,
            counters: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, ip: IpAddr) -> [String; 2] {
        [format!("acct:{email}|{ip}"), format!("ip:{ip}")]
    }

    /// Seconds the caller must wait before trying, if throttled.
    pub fn retry_after(&self, email: &str, ip: IpAddr) -> Option<i64> {
        let now = self.clock.now();
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(email, ip)
            .iter()
            .filter_map(|k| counters.get(k))
            .map(|c| c.blocked_until - now)
            .filter(|wait| *wait > 0)
            .max()
    }

    /// Records a failed attempt.
    pub fn record_failure(&self, email: &str, ip: IpAddr) {
        let now = self.clock.now();
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if counters.len() > SWEEP_THRESHOLD {
            let window = self.window;
            counters.retain(|_, c| c.blocked_until > now || now - c.window_start < window);
        }
        let [account_key, ip_key] = Self::keys(email, ip);
        for (key, limit) in [
            (account_key, self.max_per_account),
            (ip_key, self.max_per_ip),
        ] {
            let counter = counters.entry(key).or_insert(Counter {
                failures: 0,
                window_start: now,
                blocked_until: 0,
            });
            if now - counter.window_start >= self.window && counter.blocked_until <= now {
                *counter = Counter {
                    failures: 0,
                    window_start: now,
                    blocked_until: 0,
                };
            }
            counter.failures += 1;
            if counter.failures >= limit {
                let excess = (counter.failures - limit).min(20);
                let lockout = (BASE_LOCKOUT_SECS << excess).min(self.max_lockout);
                counter.blocked_until = now + lockout;
            }
        }
    }

    /// Forgets the account's failures from this IP after a successful login.
    pub fn record_success(&self, email: &str, ip: IpAddr) {
        let [account_key, _] = Self::keys(email, ip);
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&account_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(clock: &Clock) -> LoginThrottle {
        let settings = AuthSettings {
            login_max_failures: 3,
            login_max_failures_per_ip: 10,
            login_window_secs: 600,
            login_max_lockout_secs: 120,
            ..AuthSettings::default()
        };
        LoginThrottle::new(&settings, clock.clone())
    }

    #[test]
    fn blocks_after_limit_grows_and_caps() {
        let clock = Clock::adjustable();
        let t = throttle(&clock);
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..2 {
            t.record_failure("a@x", ip);
        }
        assert_eq!(t.retry_after("a@x", ip), None);
        t.record_failure("a@x", ip);
        assert_eq!(t.retry_after("a@x", ip), Some(30));
        t.record_failure("a@x", ip);
        assert_eq!(t.retry_after("a@x", ip), Some(60));
        for _ in 0..5 {
            t.record_failure("a@x", ip);
        }
        assert_eq!(t.retry_after("a@x", ip), Some(120), "capped");
        clock.advance(121);
        assert_eq!(t.retry_after("a@x", ip), None, "a block always ends");
    }

    #[test]
    fn an_attacker_ip_does_not_lock_the_owner_out() {
        let clock = Clock::adjustable();
        let t = throttle(&clock);
        let attacker: IpAddr = [10, 0, 0, 66].into();
        let owner: IpAddr = [10, 0, 0, 7].into();
        for _ in 0..9 {
            t.record_failure("victim@x", attacker);
        }
        assert!(t.retry_after("victim@x", attacker).is_some());
        assert_eq!(t.retry_after("victim@x", owner), None);
    }

    #[test]
    fn per_ip_limit_spans_accounts() {
        let clock = Clock::adjustable();
        let t = throttle(&clock);
        let ip: IpAddr = [10, 0, 0, 9].into();
        for i in 0..10 {
            t.record_failure(&format!("u{i}@x"), ip);
        }
        assert!(t.retry_after("fresh@x", ip).is_some());
    }
}
