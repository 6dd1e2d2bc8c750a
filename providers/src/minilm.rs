//! all-MiniLM-L6-v2 sentence embeddings in candle's BERT: mean of the token vectors
//! under the attention mask, L2-normalised (what sentence-transformers computes), 384
//! dimensions. The model's `tokenizer.json` pads every input to 128 tokens; padding is
//! switched to the batch's longest input and the mask keeps pad tokens out of the mean.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use adam_actors::ports::{BoxFuture, CancellationToken, Embedder, ProviderError};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::{Deserialize, Serialize};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::pool::ModelPool;

/// Longest input in tokens (the model was trained on 256-token pieces).
const MAX_TOKENS: usize = 256;

/// MiniLM settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiniLmConfig {
    /// Folder with `model.safetensors`, `config.json` and `tokenizer.json`.
    pub dir: PathBuf,
    /// Concurrent embedding jobs.
    pub workers: usize,
}

impl Default for MiniLmConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("models/minilm"),
            workers: 1,
        }
    }
}

/// The loaded model.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
}

impl MiniLm {
    /// Loads the model from `dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let file = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "{} is missing (run scripts/models/fetch.sh)",
                    p.display()
                ))
            }
        };
        let config: Config = serde_json::from_str(
            &std::fs::read_to_string(file("config.json")?).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("MiniLM config.json: {e}"))?;
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(file("model.safetensors")?, &device)
            .map_err(|e| format!("MiniLM weights: {e}"))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| format!("MiniLM model: {e}"))?;
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json")?)
            .map_err(|e| format!("MiniLM tokenizer: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| format!("MiniLM tokenizer: {e}"))?;
        Ok(Self { model, tokenizer })
    }

    /// Unit-length vectors for `texts`, in order.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| format!("tokenize: {e}"))?;
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let device = Device::Cpu;
            let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| {
                let v: Vec<Tensor> = encodings
                    .iter()
                    .map(|e| Tensor::new(f(e), &device))
                    .collect::<candle_core::Result<_>>()?;
                Tensor::stack(&v, 0)
            };
            let ids = rows(&|e| e.get_ids())?;
            let types = rows(&|e| e.get_type_ids())?;
            let mask = rows(&|e| e.get_attention_mask())?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| format!("MiniLM: {e}"))
    }
}

/// The [`Embedder`] port over a [`MiniLm`] on a bounded pool.
pub struct MiniLmEmbedder {
    model: Arc<MiniLm>,
    pool: Arc<ModelPool>,
}

impl MiniLmEmbedder {
    /// Wraps a loaded model.
    pub fn new(model: MiniLm, pool: Arc<ModelPool>) -> Self {
        Self {
            model: Arc::new(model),
            pool,
        }
    }
}

impl Embedder for MiniLmEmbedder {
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(async move {
            let model = self.model.clone();
            self.pool
                .run(&cancel, move || {
                    model.embed(&texts).map_err(ProviderError::Unavailable)
                })
                .await
        })
    }

    fn dimension(&self) -> usize {
        384
    }
}
