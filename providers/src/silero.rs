//! Silero voice activity detection (ONNX Runtime, loaded at run time from the shared
//! library the setup step unpacks from PyPI's `onnxruntime` wheel).
//!
//! Silero scores 32 ms windows (512 samples at 16 kHz); the session feeds 20 ms frames,
//! so each detector buffers, resamples other rates to 16 kHz, and keeps a hysteresis
//! state: speech starts above `threshold` and ends below `threshold - 0.15`, the
//! thresholds Silero's authors recommend.

use std::path::{Path, PathBuf};
use std::sync::Once;

use adam_actors::audio::Resampler;
use adam_actors::ports::{Vad, VadFactory};
use serde::{Deserialize, Serialize};
use voice_activity_detector::VoiceActivityDetector;

const RATE: u32 = 16_000;
const WINDOW: usize = 512;

/// Silero settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SileroConfig {
    /// `libonnxruntime.so` to load.
    pub onnxruntime: PathBuf,
    /// Speech probability that starts speech.
    pub threshold: f32,
    /// Speech probability below which speech ends (Silero's authors suggest
    /// `threshold - 0.15`; the end-of-turn silence already bridges short dips).
    pub end_threshold: f32,
}

impl Default for SileroConfig {
    fn default() -> Self {
        Self {
            onnxruntime: PathBuf::from("models/onnxruntime/libonnxruntime.so.1.22.1"),
            threshold: 0.5,
            end_threshold: 0.35,
        }
    }
}

/// Makes one Silero detector per session (they share the ONNX session, not the state).
#[derive(Debug)]
pub struct SileroVadFactory {
    threshold: f32,
    end_threshold: f32,
}

static ORT_INIT: Once = Once::new();

impl SileroVadFactory {
    /// Loads ONNX Runtime from `config.onnxruntime` and checks the model runs.
    pub fn new(config: &SileroConfig) -> Result<Self, String> {
        load_runtime(&config.onnxruntime)?;
        // The crate builds its session lazily and panics if ONNX Runtime misbehaves:
        // run one window now, so a broken install fails at startup, not in a session.
        let probe = std::panic::catch_unwind(|| {
            let mut vad = detector()?;
            Ok::<f32, String>(vad.predict([0i16; WINDOW]))
        });
        match probe {
            Ok(Ok(p)) if p.is_finite() => {
                let threshold = config.threshold.clamp(0.2, 0.95);
                Ok(Self {
                    threshold,
                    end_threshold: config.end_threshold.clamp(0.05, threshold),
                })
            }
            Ok(Ok(p)) => Err(format!("Silero VAD returned {p}")),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "ONNX Runtime at {} failed to run the Silero model",
                config.onnxruntime.display()
            )),
        }
    }
}

fn load_runtime(path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!(
            "ONNX Runtime library {} is missing (run scripts/models/fetch.sh)",
            path.display()
        ));
    }
    let mut result = Ok(());
    ORT_INIT.call_once(|| {
        result = ort::init_from(path.display().to_string())
            .with_name("adam")
            .commit()
            .map(|_| ())
            .map_err(|e| format!("ONNX Runtime {}: {e}", path.display()));
    });
    result
}

fn detector() -> Result<VoiceActivityDetector, String> {
    VoiceActivityDetector::builder()
        .sample_rate(i64::from(RATE))
        .chunk_size(WINDOW)
        .build()
        .map_err(|e| format!("Silero VAD: {e}"))
}

impl VadFactory for SileroVadFactory {
    fn create(&self, sample_rate: u32) -> Box<dyn Vad> {
        match detector() {
            Ok(detector) => Box::new(SileroVad {
                detector,
                resampler: (sample_rate != RATE).then(|| Resampler::new(sample_rate, RATE)),
                pending: Vec::with_capacity(WINDOW * 2),
                speaking: false,
                on: self.threshold,
                off: self.end_threshold,
            }),
            // Unreachable after the startup probe; never hear speech rather than crash.
            Err(e) => {
                tracing::error!(error = %e, "Silero VAD unavailable");
                Box::new(Deaf)
            }
        }
    }
}

/// One stream's detector.
pub struct SileroVad {
    detector: VoiceActivityDetector,
    resampler: Option<Resampler>,
    pending: Vec<i16>,
    speaking: bool,
    on: f32,
    off: f32,
}

impl SileroVad {
    /// Speech probability of each complete window buffered so far.
    fn score_windows(&mut self) {
        let mut start = 0;
        while self.pending.len() - start >= WINDOW {
            let p = self
                .detector
                .predict(self.pending[start..start + WINDOW].iter().copied());
            self.speaking = if self.speaking {
                p >= self.off
            } else {
                p >= self.on
            };
            start += WINDOW;
        }
        self.pending.drain(..start);
    }
}

impl Vad for SileroVad {
    fn is_speech(&mut self, frame: &[i16]) -> bool {
        match &mut self.resampler {
            Some(r) => {
                let samples = r.process(frame);
                self.pending.extend_from_slice(&samples);
            }
            None => self.pending.extend_from_slice(frame),
        }
        self.score_windows();
        self.speaking
    }
}

struct Deaf;

impl Vad for Deaf {
    fn is_speech(&mut self, _: &[i16]) -> bool {
        false
    }
}
