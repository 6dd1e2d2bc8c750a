//! Silero VAD with the installed model (`scripts/models/fetch.sh`): streams scored together
//! in one batch keep their own state, the batched and the unbatched paths decide alike, and
//! the energy gate neither delays an onset nor invents speech.

use std::path::{Path, PathBuf};

use adam_actors::audio::Resampler;
use adam_actors::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use adam_actors::ports::{Vad, VadFactory};
use adam_providers::silero::batch::VadMetrics;
use adam_providers::silero::{SileroConfig, SileroVadFactory};

const FRAME: usize = 320;

fn models() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")).to_owned()
}

fn config(batch: bool, gate_rms: f32) -> SileroConfig {
    SileroConfig {
        onnxruntime: models().join("onnxruntime/libonnxruntime.so.1.22.1"),
        model: models().join("silero/silero_vad.onnx"),
        batch,
        // The longest wait allowed, so that two streams fed together share a batch.
        max_wait_ms: 5.0,
        gate_rms,
        ..SileroConfig::default()
    }
}

fn factory(batch: bool, gate_rms: f32) -> SileroVadFactory {
    SileroVadFactory::new(&config(batch, gate_rms), VadMetrics::unregistered())
        .expect("Silero installed (scripts/models/fetch.sh)")
}

/// espeak-ng speech of `text`, as 16 kHz PCM16.
fn speak(text: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en", text])
        .output()
        .expect("espeak-ng is installed (scripts/setup.sh)");
    assert!(out.status.success(), "espeak-ng failed");
    let wav = out.stdout;
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk")
        + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Resampler::new(rate, 16_000).process(&samples)
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 16]
}

/// Faint deterministic noise (RMS ~10, far below speech, like a quiet microphone).
fn hiss(ms: usize) -> Vec<i16> {
    let mut x: u32 = 0x9e37_79b9;
    (0..ms * 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((x % 35) as i32 - 17) as i16
        })
        .collect()
}

/// One second of quiet, a spoken sentence, then a second of quiet.
fn utterance() -> Vec<i16> {
    let mut audio = hiss(1000);
    audio.extend(speak("Hello, I have a question about my car."));
    audio.extend(hiss(1000));
    audio
}

fn endpointer() -> Endpointer {
    Endpointer::new(EndpointConfig {
        silence_ms: 500,
        min_speech_ms: 200,
        max_turn_ms: 30_000,
    })
}

/// Per-frame decisions and the start of every turn, as the session would see them.
#[derive(Debug, Default, PartialEq)]
struct Heard {
    decisions: Vec<bool>,
    turns: Vec<u64>,
}

impl Heard {
    fn push(&mut self, endpointer: &mut Endpointer, speech: bool) {
        self.decisions.push(speech);
        if let Some(EndpointEvent::Started { at_ms }) = endpointer.push(speech, 20) {
            self.turns.push(at_ms);
        }
    }
}

async fn hear(vad: &mut dyn Vad, audio: &[i16]) -> Heard {
    let mut endpointer = endpointer();
    let mut heard = Heard::default();
    for frame in audio.chunks_exact(FRAME) {
        let speech = vad.is_speech(frame).await;
        heard.push(&mut endpointer, speech);
    }
    heard
}

#[tokio::test]
async fn two_sessions_in_one_batch_keep_their_own_state() {
    // Gate off: the silent stream's windows go through the model too, in the same batches
    // as the speaker's.
    let shared = factory(true, 0.0);
    let speech = utterance();
    let quiet = hiss(speech.len() / 16);
    let (mut speaker, mut listener) = (shared.create(16_000), shared.create(16_000));
    let (mut ep_a, mut ep_b) = (endpointer(), endpointer());
    let (mut a, mut b) = (Heard::default(), Heard::default());
    for (fa, fb) in speech.chunks_exact(FRAME).zip(quiet.chunks_exact(FRAME)) {
        let (sa, sb) = tokio::join!(speaker.is_speech(fa), listener.is_speech(fb));
        a.push(&mut ep_a, sa);
        b.push(&mut ep_b, sb);
    }
    assert!(
        shared.largest_batch() >= 2,
        "the two streams were never scored in one batch"
    );
    assert_eq!(a.turns.len(), 1, "the speaker gets one turn: {:?}", a.turns);
    assert!(
        b.turns.is_empty(),
        "the silent stream got turns: {:?}",
        b.turns
    );
    assert!(
        !b.decisions.iter().any(|&s| s),
        "the silent stream heard speech"
    );

    // The speaker decided exactly as it does alone, scored one window at a time.
    let alone = factory(false, 0.0);
    let mut solo = alone.create(16_000);
    assert_eq!(hear(solo.as_mut(), &speech).await, a);
}

#[tokio::test]
async fn the_energy_gate_keeps_turn_onsets_and_hears_no_speech_in_quiet() {
    let mut audio = silence(1500);
    audio.extend(speak("What time does the service department open?"));
    audio.extend(silence(1500));
    audio.extend(speak("And on Saturdays?"));
    audio.extend(silence(1500));
    let (gated, ungated) = (factory(true, 40.0), factory(true, 0.0));
    let with_gate = hear(gated.create(16_000).as_mut(), &audio).await;
    let without = hear(ungated.create(16_000).as_mut(), &audio).await;
    assert_eq!(without.turns.len(), 2, "two questions: {:?}", without.turns);
    assert_eq!(
        with_gate.turns.len(),
        without.turns.len(),
        "gated {:?} vs scored {:?}",
        with_gate.turns,
        without.turns
    );
    for (g, s) in with_gate.turns.iter().zip(&without.turns) {
        assert!(
            g.abs_diff(*s) <= 40,
            "onset moved by the gate: {g} ms vs {s} ms"
        );
    }
    // Each turn starts inside its question, not in the silence before it.
    assert!(with_gate.turns[0] + 100 >= 1500, "{:?}", with_gate.turns);
}

#[tokio::test]
async fn a_stream_at_another_rate_is_resampled_and_heard() {
    let shared = factory(true, 40.0);
    let speech = utterance();
    let at_48k = Resampler::new(16_000, 48_000).process(&speech);
    let mut vad = shared.create(48_000);
    let mut endpointer = endpointer();
    let mut heard = Heard::default();
    for frame in at_48k.chunks_exact(FRAME * 3) {
        let speech = vad.is_speech(frame).await;
        heard.push(&mut endpointer, speech);
    }
    assert_eq!(heard.turns.len(), 1, "{:?}", heard.turns);
}
