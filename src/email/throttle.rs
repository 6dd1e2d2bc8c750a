//! A fixed-window limit per recipient address, so nobody can flood one mailbox with
//! password-reset emails. It counts requests for an address whether or not an account
//! has it, so its answers reveal nothing about which addresses exist.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::Clock;

/// Entries kept before expired ones are swept.
const SWEEP_THRESHOLD: usize = 10_000;

/// Allows `max` requests per address per `window` seconds.
#[derive(Debug)]
pub struct RecipientThrottle {
    max: u32,
    window: i64,
    clock: Clock,
    /// Address → (window start, requests in it).
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl RecipientThrottle {
    /// A throttle allowing `max` requests per `window` seconds.
    pub fn new(max: u32, window: i64, clock: Clock) -> Self {
        Self {
            max,
            window,
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `address`; `Err(seconds to wait)` when over the limit.
    pub fn check(&self, address: &str) -> Result<(), i64> {
        let now = self.clock.now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_THRESHOLD {
            let window = self.window;
            windows.retain(|_, (start, _)| now - *start < window);
        }
        let entry = windows.entry(address.to_owned()).or_insert((now, 0));
        if now - entry.0 >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.max {
            return Err((entry.0 + self.window - now).max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_address_for_one_window() {
        let clock = Clock::adjustable();
        let t = RecipientThrottle::new(2, 3600, clock.clone());
        assert_eq!(t.check("a@x.test"), Ok(()));
        assert_eq!(t.check("a@x.test"), Ok(()));
        assert_eq!(t.check("a@x.test"), Err(3600));
        assert_eq!(t.check("b@x.test"), Ok(()), "another address is unaffected");
        clock.advance(600);
        assert_eq!(t.check("a@x.test"), Err(3000));
        clock.advance(3000);
        assert_eq!(t.check("a@x.test"), Ok(()), "a new window");
    }
}
