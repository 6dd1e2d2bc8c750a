//! A local language model in-process: any Llama-family GGUF file (SmolLM2-135M-Instruct by
//! default) run by candle, with the tokenizer rebuilt from the GGUF's own metadata
//! (byte-level BPE) and the ChatML prompt format SmolLM2 was tuned on. Greedy decoding:
//! the same prompt gives the same reply.
//!
//! candle, not llama.cpp: whisper.cpp already links one copy of ggml into Adam, and two
//! vendored copies of ggml in one binary clash.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use adam_actors::ports::{BoxFuture, CancellationToken, ProviderError};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokenizers::Tokenizer;

use crate::pool::ModelPool;

/// Local model settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// GGUF file (Llama architecture).
    pub model: PathBuf,
    /// Longest prompt in tokens (older history is dropped first).
    pub max_prompt_tokens: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            max_prompt_tokens: 512,
        }
    }
}

/// One generated reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The text.
    pub text: String,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
}

/// Writes short replies (small talk, checked rephrasing).
pub trait Generator: Send + Sync {
    /// A reply to `user` under the `system` instructions, at most `max_tokens` long.
    fn generate<'a>(
        &'a self,
        system: &'a str,
        user: &'a str,
        max_tokens: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Generated, ProviderError>>;
}

/// A GGUF model and its tokenizer.
pub struct LocalLlm {
    model: Arc<Mutex<ModelWeights>>,
    tokenizer: Arc<Tokenizer>,
    end_tokens: Vec<u32>,
    max_prompt_tokens: usize,
    pool: Arc<ModelPool>,
}

impl LocalLlm {
    /// Loads `config.model`.
    pub fn load(config: &LlmConfig, pool: Arc<ModelPool>) -> Result<Self, String> {
        let path = &config.model;
        if !path.is_file() {
            return Err(format!(
                "language model {} is missing (run scripts/models/fetch.sh)",
                path.display()
            ));
        }
        let fail = |e: &dyn std::fmt::Display| format!("language model {}: {e}", path.display());
        let mut file = File::open(path).map_err(|e| fail(&e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| fail(&e))?;
        let tokenizer = tokenizer_from_gguf(&content).map_err(|e| fail(&e))?;
        let model =
            ModelWeights::from_gguf(content, &mut file, &Device::Cpu).map_err(|e| fail(&e))?;
        let end_tokens = ["<|im_end|>", "<|endoftext|>", "</s>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        Ok(Self {
            model: Arc::new(Mutex::new(model)),
            tokenizer: Arc::new(tokenizer),
            end_tokens,
            max_prompt_tokens: config.max_prompt_tokens,
            pool,
        })
    }

    /// Checks a model file's header and tokenizer without loading the weights.
    pub fn inspect(path: &Path) -> Result<String, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| e.to_string())?;
        let tokenizer = tokenizer_from_gguf(&content).map_err(|e| e.to_string())?;
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        Ok(format!(
            "{arch}, {} tensors, vocabulary {}",
            content.tensor_infos.len(),
            tokenizer.get_vocab_size(true)
        ))
    }

    fn run(
        model: &Mutex<ModelWeights>,
        end_tokens: &[u32],
        prompt: &[u32],
        max_tokens: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<u32>, ProviderError> {
        let err = |e: candle_core::Error| ProviderError::Unavailable(format!("llm: {e}"));
        let mut model = model
            .lock()
            .map_err(|_| ProviderError::Unavailable("llm poisoned".into()))?;
        let device = Device::Cpu;
        let input = Tensor::new(prompt, &device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(err)?;
        let mut logits = model.forward(&input, 0).map_err(err)?;
        let mut out = Vec::new();
        for i in 0..max_tokens {
            if cancel.is_cancelled() {
                return Err(ProviderError::Cancelled);
            }
            let next = logits
                .squeeze(0)
                .and_then(|l| l.argmax(0))
                .and_then(|t| t.to_scalar::<u32>())
                .map_err(err)?;
            if end_tokens.contains(&next) {
                break;
            }
            out.push(next);
            let input = Tensor::new(&[next], &device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(err)?;
            logits = model.forward(&input, prompt.len() + i).map_err(err)?;
        }
        Ok(out)
    }
}

impl Generator for LocalLlm {
    fn generate<'a>(
        &'a self,
        system: &'a str,
        user: &'a str,
        max_tokens: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Generated, ProviderError>> {
        Box::pin(async move {
            let prompt = format!(
                "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
                system.trim(),
                user.trim()
            );
            let mut ids = self
                .tokenizer
                .encode(prompt, false)
                .map_err(|e| ProviderError::Rejected(format!("tokenize: {e}")))?
                .get_ids()
                .to_vec();
            if ids.len() > self.max_prompt_tokens {
                ids.drain(..ids.len() - self.max_prompt_tokens);
            }
            let (model, tokenizer) = (self.model.clone(), self.tokenizer.clone());
            let end = self.end_tokens.clone();
            let job_cancel = cancel.clone();
            let prompt_len = ids.len();
            let generated = self
                .pool
                .run(&cancel, move || {
                    let out = Self::run(&model, &end, &ids, max_tokens, &job_cancel)?;
                    let text = tokenizer
                        .decode(&out, true)
                        .map_err(|e| ProviderError::Unavailable(format!("detokenize: {e}")))?;
                    Ok((text, out.len()))
                })
                .await?;
            Ok(Generated {
                text: generated.0.trim().to_owned(),
                prompt_tokens: prompt_len as u32,
                completion_tokens: generated.1 as u32,
            })
        })
    }
}

/// Rebuilds a Hugging Face tokenizer from a GGUF's `tokenizer.ggml.*` metadata (GPT-2
/// style byte-level BPE, the kind SmolLM2 and most Llama-family models ship).
fn tokenizer_from_gguf(content: &gguf_file::Content) -> Result<Tokenizer, String> {
    let md = |k: &str| {
        content
            .metadata
            .get(k)
            .ok_or_else(|| format!("no {k} in the GGUF metadata"))
    };
    let model = md("tokenizer.ggml.model")?
        .to_string()
        .map_err(|e| e.to_string())?;
    if model != "gpt2" {
        return Err(format!(
            "tokenizer `{model}` is not supported (byte-level BPE `gpt2` only)"
        ));
    }
    let tokens: Vec<&String> = md("tokenizer.ggml.tokens")?
        .to_vec()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|v| v.to_string().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let merges: Vec<&String> = md("tokenizer.ggml.merges")?
        .to_vec()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|v| v.to_string().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let token_types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|t| t.to_i32().unwrap_or(1))
            .collect(),
        None => Vec::new(),
    };
    let vocab: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    // Control tokens (type 3) and `<|…|>` markers are matched whole, never split.
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            token_types.get(*i) == Some(&3) || (t.starts_with("<|") && t.ends_with("|>"))
        })
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": merges},
    });
    Tokenizer::from_bytes(spec.to_string().as_bytes()).map_err(|e| format!("tokenizer: {e}"))
}
