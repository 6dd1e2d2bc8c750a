//! A client's binary audio frames through the session's audio path: PCM16 decoding, the
//! STT stream's VAD framing and end-of-turn detection, and the resampling done for the
//! models (input rate → 16 kHz for Silero and Whisper) and for playout (the TTS rate →
//! the client's output rate), at every sample rate `session.update` allows.
//!
//! Input: input rate (u16), output rate (u16), turn detection (3 × u16), then chunks,
//! each a u16 length and that many bytes of frame; a length with the top bit set is a
//! `session.update` changing the input rate to the next u16 instead.

#![no_main]

use adam_actors::audio::{
    Framer, Resampler, duration_ms, pcm16_from_le_bytes, rms, samples_for_ms,
};
use adam_actors::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use libfuzzer_sys::fuzz_target;

/// The STT stream's VAD frame, ms.
const FRAME_MS: u32 = 20;
/// Silero's and Whisper's rate.
const MODEL_RATE: u32 = 16_000;
/// The embedded TTS's rate.
const TTS_RATE: u32 = 22_050;
/// The simulated profile's energy VAD threshold.
const VAD_THRESHOLD: f32 = 500.0;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u16(&mut self) -> Option<u16> {
        let (head, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(u16::from_le_bytes(*head))
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// Any value maps onto the protocol's 8000–48000 Hz.
fn rate(raw: u16) -> u32 {
    8_000 + u32::from(raw) % 40_001
}

/// A stream through one resampler, with the count of samples in and out.
struct Stream {
    resampler: Resampler,
    from: u32,
    to: u32,
    samples_in: u64,
    samples_out: u64,
}

impl Stream {
    fn new(from: u32, to: u32) -> Self {
        Self {
            resampler: Resampler::new(from, to),
            from,
            to,
            samples_in: 0,
            samples_out: 0,
        }
    }

    fn process(&mut self, samples: &[i16]) {
        let out = self.resampler.process(samples);
        self.samples_in += samples.len() as u64;
        self.samples_out += out.len() as u64;
    }

    /// Output keeps the input's duration, less the filter's delay (at most ~8.5 input
    /// samples per unit of down-sampling ratio).
    fn check(&self) {
        if self.samples_in == 0 {
            assert_eq!(self.samples_out, 0);
            return;
        }
        let ratio = f64::from(self.to) / f64::from(self.from);
        let expected = self.samples_in as f64 * ratio;
        let delay = (8.5 * (1.0 / ratio).max(1.0)).ceil() * ratio + 2.0;
        let out = self.samples_out as f64;
        assert!(
            out <= expected + 2.0 && out + delay >= expected,
            "{} → {} Hz: {} samples in, {} out",
            self.from,
            self.to,
            self.samples_in,
            self.samples_out
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (Some(rate_in), Some(rate_out), Some(silence), Some(min_speech), Some(max_turn)) = (
        input.u16(),
        input.u16(),
        input.u16(),
        input.u16(),
        input.u16(),
    ) else {
        return;
    };
    let mut rate_in = rate(rate_in);
    let rate_out = rate(rate_out);
    // The ranges `session.update` accepts.
    let config = EndpointConfig {
        silence_ms: 100 + u32::from(silence) % 4_901,
        min_speech_ms: (u32::from(min_speech) % 2_001).max(FRAME_MS),
        max_turn_ms: 1_000 + u32::from(max_turn) % 119_001,
    };
    let mut framer = Framer::new(samples_for_ms(FRAME_MS, rate_in));
    let mut endpointer = Endpointer::new(config);
    let mut to_model = Stream::new(rate_in, MODEL_RATE);
    let mut playout = Stream::new(TTS_RATE, rate_out);
    let mut in_turn = false;
    let mut audio_ms = 0_u64;
    while let Some(len) = input.u16() {
        if len & 0x8000 != 0 {
            let Some(raw) = input.u16() else { break };
            // What SttStream::configure does on a new input rate.
            to_model.check();
            rate_in = rate(raw);
            framer.clear();
            framer.set_frame_len(samples_for_ms(FRAME_MS, rate_in));
            to_model = Stream::new(rate_in, MODEL_RATE);
            continue;
        }
        let bytes = input.bytes(usize::from(len));
        let Some(samples) = pcm16_from_le_bytes(bytes) else {
            assert!(bytes.len() % 2 == 1, "only odd lengths are refused");
            continue;
        };
        assert_eq!(samples.len() * 2, bytes.len());
        let _ = duration_ms(samples.len(), rate_in);
        let frame_len = samples_for_ms(FRAME_MS, rate_in).max(1);
        for frame in framer.push(&samples) {
            assert_eq!(frame.len(), frame_len);
            let level = rms(&frame);
            assert!((0.0..=32_768.0).contains(&level), "rms {level}");
            let before = endpointer.now_ms();
            match endpointer.push(level >= VAD_THRESHOLD, FRAME_MS) {
                Some(EndpointEvent::Started { at_ms }) => {
                    assert!(!in_turn, "a turn starts only outside one");
                    assert!(at_ms <= before);
                    in_turn = true;
                }
                Some(EndpointEvent::Stopped { at_ms, .. }) => {
                    assert!(in_turn, "a turn stops only inside one");
                    assert!(at_ms <= endpointer.now_ms());
                    in_turn = false;
                }
                None => {}
            }
            audio_ms += u64::from(FRAME_MS);
            assert_eq!(endpointer.now_ms(), audio_ms);
        }
        to_model.process(&samples);
        playout.process(&samples);
    }
    to_model.check();
    playout.check();
});
