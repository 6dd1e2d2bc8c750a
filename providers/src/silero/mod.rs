//! Silero voice activity detection (ONNX Runtime, loaded at run time from the shared
//! library the setup step unpacks from PyPI's `onnxruntime` wheel; the model file from
//! PyPI's `silero-vad`).
//!
//! Silero scores 32 ms windows (512 samples at 16 kHz); the session feeds 20 ms frames,
//! so each stream's detector buffers, resamples other rates to 16 kHz, keeps its own
//! recurrent state and the last 64 samples (Silero's context), and a hysteresis: speech
//! starts above `threshold` and ends below `end_threshold`.
//!
//! Scoring is shared: by default every stream's ready windows go to one service thread
//! ([`batch`]) that scores all sessions' windows in one model run, each row with its own
//! stream's state. Windows far below speech energy skip the model (the energy gate):
//! they count as silence (probability 0) and set the stream's state to the one Silero
//! itself reaches after a long silence (computed once at startup), so the state is what the
//! model would hold had it heard the quiet, and the next loud window is scored as after
//! silence. `batch = false` scores each window alone in the session's task (the unbatched
//! path, kept for comparison).

pub mod batch;
pub mod model;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use adam_actors::audio::Resampler;
use adam_actors::ports::{BoxFuture, Vad, VadFactory};
use serde::{Deserialize, Serialize};

use self::batch::{Batcher, VadMetrics};
use self::model::{CONTEXT, ROW, STATE, SileroModel, WINDOW, Window};

const RATE: u32 = 16_000;
/// Longest batching wait allowed: a VAD decision later than this would show in the turn
/// latency.
pub const MAX_WAIT_MS: f32 = 5.0;

/// `[providers.embedded.silero]`: Silero settings (also used by the simulated profile with
/// `providers.simulated.vad = "silero"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SileroConfig {
    /// `libonnxruntime.so` to load.
    pub onnxruntime: PathBuf,
    /// The Silero v5 ONNX model.
    pub model: PathBuf,
    /// Speech probability that starts speech.
    pub threshold: f32,
    /// Speech probability below which speech ends (Silero's authors suggest
    /// `threshold - 0.15`; the end-of-turn silence already bridges short dips).
    pub end_threshold: f32,
    /// Score all sessions' windows together on one service thread (false: each window
    /// alone, in its session's task).
    pub batch: bool,
    /// Most windows in one model run (64: per window, batches of 256 measured slower than
    /// 16–64; docs/PERFORMANCE.md).
    pub max_batch: usize,
    /// Longest wait for more windows after the first one of a batch, ms (at most 5).
    pub max_wait_ms: f32,
    /// Windows whose RMS (PCM16 units) is below this skip the model and count as silence
    /// (0: every window is scored). 40 is about −58 dBFS, far below speech.
    pub gate_rms: f32,
}

impl Default for SileroConfig {
    fn default() -> Self {
        Self {
            onnxruntime: PathBuf::from("models/onnxruntime/libonnxruntime.so.1.22.1"),
            model: PathBuf::from("models/silero/silero_vad.onnx"),
            threshold: 0.5,
            end_threshold: 0.35,
            batch: true,
            max_batch: 64,
            max_wait_ms: 2.0,
            gate_rms: 40.0,
        }
    }
}

impl SileroConfig {
    /// Checks the values a typo could make useless.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.threshold)
            || !(0.0..=self.threshold).contains(&self.end_threshold)
        {
            return Err(format!(
                "silero: need 0 <= end_threshold ({}) <= threshold ({}) <= 1",
                self.end_threshold, self.threshold
            ));
        }
        if !(0.0..=MAX_WAIT_MS).contains(&self.max_wait_ms) {
            return Err(format!(
                "silero.max_wait_ms is {}; it must be between 0 and {MAX_WAIT_MS}",
                self.max_wait_ms
            ));
        }
        if !(1..=4096).contains(&self.max_batch) {
            return Err(format!(
                "silero.max_batch is {}; it must be between 1 and 4096",
                self.max_batch
            ));
        }
        if !(0.0..1000.0).contains(&self.gate_rms) {
            return Err(format!(
                "silero.gate_rms is {}; it must be between 0 and 1000 (speech is ~1000–5000)",
                self.gate_rms
            ));
        }
        Ok(())
    }
}

/// How windows reach the model.
#[derive(Clone)]
enum Engine {
    /// The shared batching service.
    Batched(Batcher),
    /// One model run per window, in the caller's task, one at a time.
    Inline(Arc<Mutex<SileroModel>>),
}

/// Makes one Silero detector per session; they share the model (and, batched, its thread),
/// not their state.
pub struct SileroVadFactory {
    engine: Engine,
    on: f32,
    off: f32,
    gate_energy: f64,
    silence: Arc<[f32; STATE]>,
    metrics: VadMetrics,
}

impl std::fmt::Debug for SileroVadFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroVadFactory").finish_non_exhaustive()
    }
}

static ORT_INIT: Once = Once::new();

impl SileroVadFactory {
    /// Loads ONNX Runtime and the model, checks that it runs, and starts the batching
    /// service (when `config.batch`).
    pub fn new(config: &SileroConfig, metrics: VadMetrics) -> Result<Self, String> {
        config.validate()?;
        load_runtime(&config.onnxruntime)?;
        if !config.model.is_file() {
            return Err(format!(
                "Silero VAD model {} is missing (run scripts/models/fetch.sh)",
                config.model.display()
            ));
        }
        // ONNX Runtime may panic rather than fail when the library is broken: run the
        // model now, so a broken install fails at startup, not in a session.
        let path = config.model.clone();
        let loaded = std::panic::catch_unwind(move || {
            let mut model = SileroModel::load(&path)?;
            let silence = silence_state(&mut model)?;
            Ok::<_, String>((model, silence))
        });
        let (model, silence) = match loaded {
            Ok(result) => result?,
            Err(_) => {
                return Err(format!(
                    "ONNX Runtime at {} failed to run the Silero model",
                    config.onnxruntime.display()
                ));
            }
        };
        let engine = if config.batch {
            let wait = Duration::from_secs_f32(config.max_wait_ms.clamp(0.0, MAX_WAIT_MS) / 1000.0);
            Engine::Batched(Batcher::start(
                model,
                config.max_batch,
                wait,
                metrics.clone(),
            )?)
        } else {
            Engine::Inline(Arc::new(Mutex::new(model)))
        };
        let gate = f64::from(config.gate_rms.max(0.0));
        Ok(Self {
            engine,
            on: config.threshold,
            off: config.end_threshold.min(config.threshold),
            gate_energy: gate * gate * WINDOW as f64,
            silence: Arc::new(silence),
            metrics,
        })
    }

    /// The largest batch scored so far (0 when unbatched).
    pub fn largest_batch(&self) -> usize {
        match &self.engine {
            Engine::Batched(b) => b.largest_batch(),
            Engine::Inline(_) => 0,
        }
    }
}

/// The state Silero settles into after a long digital silence, from its initial state.
fn silence_state(model: &mut SileroModel) -> Result<[f32; STATE], String> {
    let mut window = [Window::boxed()];
    for _ in 0..200 {
        let before = window[0].state;
        model.run(&mut window)?;
        let p = window[0].probability;
        if !p.is_finite() {
            return Err(format!("Silero VAD returned {p}"));
        }
        let change = before
            .iter()
            .zip(&window[0].state)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        if change < 1e-6 {
            break;
        }
    }
    Ok(window[0].state)
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

impl VadFactory for SileroVadFactory {
    fn create(&self, sample_rate: u32) -> Box<dyn Vad> {
        Box::new(SileroVad {
            engine: self.engine.clone(),
            window: Some(Window::boxed()),
            context: [0.0; CONTEXT],
            resampler: (sample_rate != RATE).then(|| Resampler::new(sample_rate, RATE)),
            pending: Vec::with_capacity(WINDOW * 2),
            speaking: false,
            on: self.on,
            off: self.off,
            gate_energy: self.gate_energy,
            silence: self.silence.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

/// One stream's detector: its samples not yet scored, its context, state and hysteresis.
pub struct SileroVad {
    engine: Engine,
    /// The stream's state travels in this box to the model and back (`None` while there).
    window: Option<Box<Window>>,
    context: [f32; CONTEXT],
    resampler: Option<Resampler>,
    pending: Vec<i16>,
    speaking: bool,
    on: f32,
    off: f32,
    gate_energy: f64,
    silence: Arc<[f32; STATE]>,
    metrics: VadMetrics,
}

impl SileroVad {
    /// Scores the oldest buffered window and updates the decision.
    async fn score_next(&mut self) {
        let mut window = self.window.take().unwrap_or_else(Window::boxed);
        let mut energy = 0.0f64;
        window.input[..CONTEXT].copy_from_slice(&self.context);
        for (x, &s) in window.input[CONTEXT..]
            .iter_mut()
            .zip(&self.pending[..WINDOW])
        {
            energy += f64::from(s) * f64::from(s);
            *x = f32::from(s) / 32_768.0;
        }
        self.pending.drain(..WINDOW);
        self.context.copy_from_slice(&window.input[ROW - CONTEXT..]);
        if energy < self.gate_energy {
            window.state = *self.silence;
            self.metrics.windows.with_label_values(&["gated"]).inc();
            self.window = Some(window);
            return self.decide(0.0);
        }
        let scored = match &self.engine {
            Engine::Inline(model) => {
                let result = match model.lock() {
                    Ok(mut model) => model.run(std::slice::from_mut(&mut window)),
                    Err(_) => Err("the Silero model lock is poisoned".to_owned()),
                };
                match result {
                    Ok(()) => {
                        self.metrics.windows.with_label_values(&["scored"]).inc();
                        Some(window)
                    }
                    Err(error) => {
                        tracing::error!(%error, "Silero VAD failed");
                        self.metrics.windows.with_label_values(&["dropped"]).inc();
                        self.window = Some(window);
                        None
                    }
                }
            }
            Engine::Batched(batcher) => match batcher.submit(window) {
                // A failed batch drops the reply: the stream starts again from a fresh
                // state (the service counted it).
                Ok(reply) => reply.await.ok(),
                Err(window) => {
                    self.metrics.windows.with_label_values(&["dropped"]).inc();
                    self.window = Some(window);
                    None
                }
            },
        };
        // Not scored: the decision stays as it was.
        if let Some(window) = scored {
            let p = window.probability;
            self.window = Some(window);
            self.decide(p);
        }
    }

    fn decide(&mut self, p: f32) {
        self.speaking = if self.speaking {
            p >= self.off
        } else {
            p >= self.on
        };
    }
}

impl Vad for SileroVad {
    fn is_speech<'a>(&'a mut self, frame: &'a [i16]) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match &mut self.resampler {
                Some(r) => {
                    let samples = r.process(frame);
                    self.pending.extend_from_slice(&samples);
                }
                None => self.pending.extend_from_slice(frame),
            }
            while self.pending.len() >= WINDOW {
                self.score_next().await;
            }
            self.speaking
        })
    }
}
