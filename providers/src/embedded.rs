//! The embedded profile: every provider from local models, loaded once per node, with one
//! bounded pool per model. [`check`] reports each model file (for `adam models check` and
//! the fail-fast at startup).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use adam_actors::ports::{Embedder, Providers};
use adam_actors::simulated::BuiltinAvatar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::espeak::{EspeakConfig, EspeakTts};
use crate::grounded::{GroundedConfig, GroundedEngine};
use crate::llm::{Generator, LlmConfig, LocalLlm};
use crate::minilm::{MiniLm, MiniLmConfig, MiniLmEmbedder};
use crate::pool::{ModelPool, PoolMetrics};
use crate::silero::batch::VadMetrics;
use crate::silero::{SileroConfig, SileroVadFactory};
use crate::whisper::{WhisperConfig, WhisperStt};

/// The command that installs the models.
pub const SETUP_COMMAND: &str = "scripts/models/fetch.sh";

/// `[providers.embedded]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Voice activity detection.
    pub silero: SileroConfig,
    /// Speech to text.
    pub whisper: WhisperConfig,
    /// Embedding model configuration.
    pub minilm: MiniLmConfig,
    /// Text to speech.
    pub espeak: EspeakConfig,
    /// The local language model.
    pub llm: LlmConfig,
    /// The answer engine.
    pub grounded: GroundedConfig,
    /// Jobs waiting for one model before new sessions are refused as busy.
    pub saturation_queue: usize,
}

/// A running embedded provider set.
pub struct Embedded {
    /// The providers for the session trees.
    pub providers: Providers,
    /// One pool per model (admission control reads them).
    pub pools: Vec<Arc<ModelPool>>,
}

impl Embedded {
    /// True when any model's queue is long enough that new sessions should wait.
    pub fn saturated(&self) -> bool {
        self.pools.iter().any(|p| p.saturated())
    }
}

/// Loads every model (seconds; call once at startup).
pub async fn start(
    config: &EmbeddedConfig,
    registry: &prometheus::Registry,
) -> Result<Embedded, String> {
    let problems: Vec<String> = check(config)
        .into_iter()
        .filter(|m| !m.ok)
        .map(|m| format!("{}: {}", m.name, m.status))
        .collect();
    if !problems.is_empty() {
        return Err(format!(
            "embedded models are not ready ({}); run `{SETUP_COMMAND}` (or `make setup`)",
            problems.join("; ")
        ));
    }
    let metrics = PoolMetrics::new(registry).map_err(|e| e.to_string())?;
    let saturation = if config.saturation_queue == 0 {
        8
    } else {
        config.saturation_queue
    };
    let pool = |name: &'static str, workers: usize| {
        ModelPool::new(name, workers, saturation, metrics.clone())
    };
    let stt_pool = pool("whisper", config.whisper.workers);
    let embed_pool = pool("minilm", config.minilm.workers);
    let llm_pool = pool("llm", 1);

    let vad_metrics = VadMetrics::new(registry).map_err(|e| e.to_string())?;
    let vad = SileroVadFactory::new(&config.silero, vad_metrics)?;
    let whisper_config = config.whisper.clone();
    let stt_pool2 = stt_pool.clone();
    let stt = tokio::task::spawn_blocking(move || WhisperStt::load(&whisper_config, stt_pool2))
        .await
        .map_err(|e| e.to_string())??;
    let dir = config.minilm.dir.clone();
    let minilm = tokio::task::spawn_blocking(move || MiniLm::load(&dir))
        .await
        .map_err(|e| e.to_string())??;
    let embedder: Arc<dyn Embedder> = Arc::new(MiniLmEmbedder::new(minilm, embed_pool.clone()));
    // The local model is loaded only when something uses it (98 MB, ~1 s).
    let generator: Option<Arc<dyn Generator>> =
        if config.grounded.rephrase || config.grounded.small_talk_by_model {
            let llm_config = config.llm.clone();
            let llm_pool2 = llm_pool.clone();
            let llm = tokio::task::spawn_blocking(move || LocalLlm::load(&llm_config, llm_pool2))
                .await
                .map_err(|e| e.to_string())??;
            Some(Arc::new(llm))
        } else {
            None
        };
    let tts = EspeakTts::new(config.espeak.clone())
        .await
        .map_err(|e| format!("espeak-ng: {e}"))?;
    let answer = GroundedEngine::new(embedder.clone(), generator, config.grounded.clone());
    Ok(Embedded {
        providers: Providers {
            vad: Arc::new(vad),
            stt: Arc::new(stt),
            listening: None,
            answer: Arc::new(answer),
            embedder,
            // The server answers retrieval from the dealership's documents.
            retriever: Arc::new(adam_actors::simulated::NoRetriever),
            tts: Arc::new(tts),
            avatar: Arc::new(BuiltinAvatar),
        },
        pools: vec![stt_pool, embed_pool, llm_pool],
    })
}

/// One model's state on disk.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    /// What it is.
    pub name: &'static str,
    /// Where.
    pub path: PathBuf,
    /// Bytes.
    pub size: Option<u64>,
    /// sha256, hex.
    pub sha256: Option<String>,
    /// Usable.
    pub ok: bool,
    /// `ok` or what is wrong.
    pub status: String,
}

/// The state of every configured model file (hashing reads ~300 MB: about a second).
pub fn check(config: &EmbeddedConfig) -> Vec<ModelStatus> {
    let mut out = vec![
        file_status(
            "silero-vad runtime (onnxruntime)",
            &config.silero.onnxruntime,
        ),
        file_status("silero-vad model", &config.silero.model),
        file_status("whisper stt", &config.whisper.model),
        file_status(
            "minilm weights",
            &config.minilm.dir.join("model.safetensors"),
        ),
        file_status(
            "minilm tokenizer",
            &config.minilm.dir.join("tokenizer.json"),
        ),
        file_status("llm (gguf)", &config.llm.model),
    ];
    let mut tts = file_status("espeak-ng worker", &config.espeak.binary);
    if tts.ok
        && let Err(e) = EspeakTts::check(&config.espeak)
    {
        tts.ok = false;
        tts.status = e;
    }
    out.push(tts);
    if let Some(llm) = out.iter_mut().find(|m| m.name == "llm (gguf)")
        && llm.ok
        && let Err(e) = LocalLlm::inspect(&llm.path)
    {
        llm.ok = false;
        llm.status = e;
    }
    // The local model is optional: loaded only when the answer engine uses it.
    if !(config.grounded.rephrase || config.grounded.small_talk_by_model)
        && let Some(llm) = out.iter_mut().find(|m| m.name == "llm (gguf)")
        && !llm.ok
    {
        llm.ok = true;
        llm.status = format!(
            "optional, not loaded ({}); needed for grounded.rephrase or small_talk_by_model",
            llm.status
        );
    }
    out
}

fn file_status(name: &'static str, path: &Path) -> ModelStatus {
    let missing = |status: String| ModelStatus {
        name,
        path: path.to_owned(),
        size: None,
        sha256: None,
        ok: false,
        status,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return missing("not a file".into()),
        Err(e) => return missing(format!("missing ({e})")),
    };
    let sha256 = match std::fs::File::open(path).and_then(|mut f| {
        let mut hasher = Sha256::new();
        std::io::copy(&mut f, &mut hasher)?;
        Ok(hasher.finalize())
    }) {
        Ok(digest) => digest.iter().map(|b| format!("{b:02x}")).collect(),
        Err(e) => return missing(format!("unreadable ({e})")),
    };
    let (ok, status) = match pinned(path) {
        Some(expected) if expected == sha256 => (true, "ok".to_owned()),
        Some(expected) => (
            false,
            format!("checksum mismatch: expected {expected} (run `{SETUP_COMMAND}`)"),
        ),
        None => (true, "ok (not a pinned file)".to_owned()),
    };
    ModelStatus {
        name,
        path: path.to_owned(),
        size: Some(meta.len()),
        sha256: Some(sha256),
        ok,
        status,
    }
}

/// The sha256 pinned for a file of the models folder (`scripts/models/SHA256SUMS`).
fn pinned(path: &Path) -> Option<&'static str> {
    PINNED.lines().find_map(|line| {
        let (sum, name) = line.split_once("  ")?;
        path.ends_with(name.trim_start_matches("./")).then_some(sum)
    })
}

const PINNED: &str = include_str!("../../scripts/models/SHA256SUMS");
