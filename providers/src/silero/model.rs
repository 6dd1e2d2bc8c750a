//! The Silero v5 ONNX model run over a batch of windows. Inputs: `input[B, 64 + 512]` (each
//! row: the stream's last 64 samples, then its new 512-sample window, as f32 in −1…1),
//! `state[2, B, 128]` (each stream's recurrent state), `sr` (scalar, 16000). Outputs:
//! `output[B, 1]` (speech probability) and `stateN[2, B, 128]`.

use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

/// Samples Silero scores at a time (16 kHz).
pub const WINDOW: usize = 512;
/// Samples of the previous window each row starts with (Silero's own wrapper does this).
pub const CONTEXT: usize = 64;
/// Samples in one model input row.
pub const ROW: usize = CONTEXT + WINDOW;
/// Floats of one stream's recurrent state (two vectors of 128).
pub const STATE: usize = 2 * HALF;
const HALF: usize = 128;
const RATE: i64 = 16_000;

/// One stream's window on its way through the model: its input row and state go in; the
/// probability and the next state come back in the same allocation.
#[derive(Clone)]
pub struct Window {
    /// Context then window, f32 in −1…1.
    pub input: [f32; ROW],
    /// The stream's recurrent state (`[0..128]` is `state[0, b]`, `[128..]` is `state[1, b]`).
    pub state: [f32; STATE],
    /// Speech probability (set by [`SileroModel::run`]).
    pub probability: f32,
}

impl Window {
    /// A zeroed window with the initial state.
    pub fn boxed() -> Box<Self> {
        Box::new(Self {
            input: [0.0; ROW],
            state: [0.0; STATE],
            probability: 0.0,
        })
    }
}

/// The loaded model with reusable batch buffers.
pub struct SileroModel {
    session: Session,
    input: Vec<f32>,
    state: Vec<f32>,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel").finish_non_exhaustive()
    }
}

impl SileroModel {
    /// Loads `path` (ONNX Runtime must be initialised). One intra-op thread: batches, not
    /// threads, are how Silero scales here, and the cores belong to every session.
    pub fn load(path: &Path) -> Result<Self, String> {
        let fail = |e: ort::Error| format!("Silero VAD model {}: {e}", path.display());
        let session = Session::builder()
            .map_err(fail)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(fail)?
            .with_intra_threads(1)
            .map_err(fail)?
            .with_inter_threads(1)
            .map_err(fail)?
            .commit_from_file(path)
            .map_err(fail)?;
        Ok(Self {
            session,
            input: Vec::new(),
            state: Vec::new(),
        })
    }

    /// Scores every window in one model run, updating each one's state and probability.
    pub fn run(&mut self, windows: &mut [Box<Window>]) -> Result<(), String> {
        let b = windows.len();
        if b == 0 {
            return Ok(());
        }
        self.input.clear();
        self.state.clear();
        self.state.resize(STATE * b, 0.0);
        for (i, w) in windows.iter().enumerate() {
            self.input.extend_from_slice(&w.input);
            self.state[i * HALF..(i + 1) * HALF].copy_from_slice(&w.state[..HALF]);
            self.state[(b + i) * HALF..(b + i + 1) * HALF].copy_from_slice(&w.state[HALF..]);
        }
        let fail = |e: ort::Error| format!("Silero VAD: {e}");
        let sr = [RATE];
        let inputs = ort::inputs![
            "input" => TensorRef::from_array_view(([b, ROW], self.input.as_slice())).map_err(fail)?,
            "state" => TensorRef::from_array_view(([2, b, HALF], self.state.as_slice())).map_err(fail)?,
            "sr" => TensorRef::from_array_view((Vec::<usize>::new(), sr.as_slice())).map_err(fail)?,
        ];
        let outputs = self.session.run(inputs).map_err(fail)?;
        let (_, probabilities) = outputs["output"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        let (_, next) = outputs["stateN"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        if probabilities.len() < b || next.len() < STATE * b {
            return Err(format!(
                "Silero VAD returned {} probabilities and {} state values for {b} windows",
                probabilities.len(),
                next.len()
            ));
        }
        for (i, w) in windows.iter_mut().enumerate() {
            w.probability = probabilities[i];
            w.state[..HALF].copy_from_slice(&next[i * HALF..(i + 1) * HALF]);
            w.state[HALF..].copy_from_slice(&next[(b + i) * HALF..(b + i + 1) * HALF]);
        }
        Ok(())
    }
}
