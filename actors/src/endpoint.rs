//! End-of-turn detection as a pure state machine over VAD decisions and audio time, so it
//! is tested without sockets, clocks or sleeps.

/// Thresholds, in ms of audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Silence that ends a turn.
    pub silence_ms: u32,
    /// Continuous speech needed before a turn starts (coughs and "mm-hm" stay below it).
    pub min_speech_ms: u32,
    /// Longest turn; it is cut there.
    pub max_turn_ms: u32,
}

/// What a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A turn started at this audio position (ms).
    Started {
        /// Start of the speech run that qualified.
        at_ms: u64,
    },
    /// The turn ended at this audio position (ms).
    Stopped {
        /// End of the last speech.
        at_ms: u64,
        /// True when cut by `max_turn_ms`.
        forced: bool,
    },
}

/// Tracks speech and silence runs over audio time.
#[derive(Debug, Clone)]
pub struct Endpointer {
    config: EndpointConfig,
    now_ms: u64,
    run_start_ms: Option<u64>,
    in_turn: bool,
    turn_start_ms: u64,
    last_speech_end_ms: u64,
    silence_ms: u64,
}

impl Endpointer {
    /// A detector with these thresholds.
    pub fn new(config: EndpointConfig) -> Self {
        Self {
            config,
            now_ms: 0,
            run_start_ms: None,
            in_turn: false,
            turn_start_ms: 0,
            last_speech_end_ms: 0,
            silence_ms: 0,
        }
    }

    /// Changes thresholds (takes effect from the next frame).
    pub fn reconfigure(&mut self, config: EndpointConfig) {
        self.config = config;
    }

    /// True while inside a turn.
    pub fn in_turn(&self) -> bool {
        self.in_turn
    }

    /// Audio position of the start of the current speech run, if any (for pre-roll).
    pub fn run_start_ms(&self) -> Option<u64> {
        self.run_start_ms
    }

    /// Silence since the last speech of the current turn, ms (0 outside a turn).
    pub fn silence_run_ms(&self) -> u64 {
        if self.in_turn { self.silence_ms } else { 0 }
    }

    /// Audio time seen so far.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Feeds one frame's decision.
    pub fn push(&mut self, is_speech: bool, frame_ms: u32) -> Option<EndpointEvent> {
        let start = self.now_ms;
        self.now_ms += u64::from(frame_ms);
        if !self.in_turn {
            if is_speech {
                let run_start = *self.run_start_ms.get_or_insert(start);
                if self.now_ms - run_start >= u64::from(self.config.min_speech_ms) {
                    self.in_turn = true;
                    self.turn_start_ms = run_start;
                    self.last_speech_end_ms = self.now_ms;
                    self.silence_ms = 0;
                    return Some(EndpointEvent::Started { at_ms: run_start });
                }
            } else {
                self.run_start_ms = None;
            }
            return None;
        }
        if is_speech {
            self.silence_ms = 0;
            self.last_speech_end_ms = self.now_ms;
        } else {
            self.silence_ms += u64::from(frame_ms);
        }
        let forced = self.now_ms - self.turn_start_ms >= u64::from(self.config.max_turn_ms);
        if self.silence_ms >= u64::from(self.config.silence_ms) || forced {
            return Some(self.stop(forced));
        }
        None
    }

    /// Ends the turn now (client commit); `None` when not in a turn.
    pub fn commit(&mut self) -> Option<EndpointEvent> {
        self.in_turn.then(|| self.stop(false))
    }

    fn stop(&mut self, forced: bool) -> EndpointEvent {
        self.in_turn = false;
        self.run_start_ms = None;
        self.silence_ms = 0;
        EndpointEvent::Stopped {
            at_ms: if forced {
                self.now_ms
            } else {
                self.last_speech_end_ms
            },
            forced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: EndpointConfig = EndpointConfig {
        silence_ms: 500,
        min_speech_ms: 200,
        max_turn_ms: 5_000,
    };

    fn feed(e: &mut Endpointer, speech: bool, ms: u32) -> Vec<EndpointEvent> {
        (0..ms / 20).filter_map(|_| e.push(speech, 20)).collect()
    }

    #[test]
    fn a_turn_starts_after_min_speech_and_ends_after_silence() {
        let mut e = Endpointer::new(CFG);
        assert!(feed(&mut e, false, 400).is_empty());
        assert_eq!(
            feed(&mut e, true, 1_000),
            [EndpointEvent::Started { at_ms: 400 }]
        );
        assert!(
            feed(&mut e, false, 480).is_empty(),
            "a pause shorter than the silence"
        );
        assert!(feed(&mut e, true, 200).is_empty());
        assert_eq!(
            feed(&mut e, false, 600),
            [EndpointEvent::Stopped {
                at_ms: 2_080,
                forced: false
            }]
        );
    }

    #[test]
    fn a_cough_is_not_a_turn() {
        let mut e = Endpointer::new(CFG);
        assert!(feed(&mut e, true, 160).is_empty());
        assert!(feed(&mut e, false, 1_000).is_empty());
        assert!(!e.in_turn());
    }

    #[test]
    fn long_turns_are_cut_and_commit_ends_a_turn() {
        let mut e = Endpointer::new(CFG);
        let events = feed(&mut e, true, 6_000);
        assert_eq!(
            events,
            [
                EndpointEvent::Started { at_ms: 0 },
                EndpointEvent::Stopped {
                    at_ms: 5_000,
                    forced: true
                },
                // The customer keeps talking: that is a new turn.
                EndpointEvent::Started { at_ms: 5_000 },
            ]
        );
        assert!(matches!(
            e.commit(),
            Some(EndpointEvent::Stopped { forced: false, .. })
        ));
        assert_eq!(e.commit(), None, "nothing left to commit");
    }
}
