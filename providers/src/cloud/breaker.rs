//! The circuit breaker of one provider, as a state machine fed with the time (no clock
//! of its own, so it is tested without sleeping).
//!
//! Closed: calls go through; `failures_to_open` consecutive failures open it. Open: calls
//! are refused at once until `cooldown` has passed. Half-open: one probe call goes
//! through (others are refused); its success closes the breaker, its failure opens it for
//! another cool-down.

use std::time::{Duration, Instant};

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// Half-open: this call is the probe; report its outcome.
    Probe,
    /// Open (or a probe is already under way): fail fast.
    Refused,
}

/// How a call ended, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered (including a refusal of the request itself: it is up).
    Success,
    /// It timed out or was unavailable (connection, 5xx, 429).
    Failure,
    /// The caller cancelled: says nothing about the provider.
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One provider's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: State,
}

impl Breaker {
    /// A closed breaker; `failures_to_open == 0` never opens.
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Self {
            failures_to_open,
            cooldown,
            state: State::Closed { failures: 0 },
        }
    }

    /// Asks to start a call at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::Open { .. } | State::HalfOpen { probing: true } => Admission::Refused,
            State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
        }
    }

    /// Reports how an admitted call ended.
    pub fn record(&mut self, admission: Admission, outcome: Outcome, now: Instant) {
        let probe = admission == Admission::Probe;
        match (outcome, self.state) {
            (Outcome::Success, _) => self.state = State::Closed { failures: 0 },
            (Outcome::Failure, State::Closed { failures }) => {
                let failures = failures + 1;
                self.state = if self.failures_to_open > 0 && failures >= self.failures_to_open {
                    State::Open {
                        until: now + self.cooldown,
                    }
                } else {
                    State::Closed { failures }
                };
            }
            (Outcome::Failure, State::HalfOpen { .. }) => {
                self.state = State::Open {
                    until: now + self.cooldown,
                };
            }
            (Outcome::Failure, State::Open { .. }) => {}
            // A cancelled probe frees the slot for the next caller.
            (Outcome::Neutral, State::HalfOpen { .. }) if probe => {
                self.state = State::HalfOpen { probing: false };
            }
            (Outcome::Neutral, _) => {}
        }
    }

    /// True while calls are refused or only probed.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_one_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert_eq!(b.admit(t0), Admission::Allowed);
            b.record(Admission::Allowed, Outcome::Failure, t0);
        }
        // A success in between resets the count.
        b.record(Admission::Allowed, Outcome::Success, t0);
        for _ in 0..3 {
            assert_eq!(b.admit(t0), Admission::Allowed);
            b.record(Admission::Allowed, Outcome::Failure, t0);
        }
        assert!(b.is_open());
        assert_eq!(b.admit(t0 + Duration::from_secs(9)), Admission::Refused);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(later), Admission::Probe);
        // Only one probe at a time.
        assert_eq!(b.admit(later), Admission::Refused);
        b.record(Admission::Probe, Outcome::Success, later);
        assert!(!b.is_open());
        assert_eq!(b.admit(later), Admission::Allowed);
    }

    #[test]
    fn a_failed_probe_opens_for_another_cooldown_and_a_cancelled_one_frees_the_slot() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(5);
        let mut b = Breaker::new(1, cool);
        b.record(Admission::Allowed, Outcome::Failure, t0);
        assert_eq!(b.admit(t0 + cool), Admission::Probe);
        b.record(Admission::Probe, Outcome::Failure, t0 + cool);
        assert_eq!(b.admit(t0 + cool + cool / 2), Admission::Refused);
        let t2 = t0 + cool * 2;
        assert_eq!(b.admit(t2), Admission::Probe);
        b.record(Admission::Probe, Outcome::Neutral, t2);
        assert_eq!(b.admit(t2), Admission::Probe);
    }

    #[test]
    fn zero_threshold_never_opens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            b.record(Admission::Allowed, Outcome::Failure, t0);
        }
        assert_eq!(b.admit(t0), Admission::Allowed);
    }
}
