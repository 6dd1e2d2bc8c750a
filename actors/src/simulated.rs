//! The simulated provider set: deterministic, nearly free, with configurable latencies
//! that look like cloud services. For tests and for load-testing the server itself.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::audio::rms;
use crate::ports::{
    AnswerEngine, AnswerRequest, AnswerUsage, AvatarBackend, AvatarSettings, BoxFuture,
    CancellationToken, Embedder, Passage, ProviderError, Providers, RemoteAvatar, Retriever,
    SpeechToText, SttRequest, TextToSpeech, TtsChunk, TtsRequest, Vad, VadFactory, WordTiming,
};

/// Latencies and texts of the simulated providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedConfig {
    /// Voice activity detection: `energy` (an RMS threshold, nearly free) or `silero`
    /// (the real model, configured in `[providers.embedded.silero]`; for load tests that
    /// should pay what a real deployment pays).
    pub vad: SimulatedVad,
    /// RMS above which a frame counts as speech (`vad = "energy"`).
    pub vad_rms_threshold: f32,
    /// Delay from end of speech to the final transcript, ms.
    pub stt_delay_ms: u64,
    /// Transcripts chosen by utterance length (one per started second, wrapping).
    pub transcripts: Vec<String>,
    /// Time to first answer token, ms.
    pub answer_first_token_ms: u64,
    /// Answer tokens per second after the first.
    pub answer_tokens_per_sec: f64,
    /// The canned answer.
    pub answer: String,
    /// Time to first TTS audio, ms.
    pub tts_first_byte_ms: u64,
    /// TTS output rate.
    pub tts_sample_rate: u32,
    /// Audio per character of text, ms.
    pub tts_ms_per_char: u32,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            vad: SimulatedVad::Energy,
            vad_rms_threshold: 300.0,
            stt_delay_ms: 150,
            transcripts: vec![
                "What are your opening hours?".into(),
                "How much is an oil change?".into(),
                "Do you have the new hybrid in stock?".into(),
            ],
            answer_first_token_ms: 250,
            answer_tokens_per_sec: 40.0,
            answer: "We are open from eight to six on weekdays and nine to one on Saturdays. \
                     Would you like me to book a visit?"
                .into(),
            tts_first_byte_ms: 120,
            tts_sample_rate: 24_000,
            tts_ms_per_char: 60,
        }
    }
}

/// The simulated profile's voice activity detection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimulatedVad {
    /// An RMS threshold on each frame.
    #[default]
    Energy,
    /// Silero (the server swaps it in: the model lives in the providers crate).
    Silero,
}

impl SimulatedConfig {
    /// Zero latencies: tests that only check behaviour run fast.
    pub fn instant() -> Self {
        Self {
            stt_delay_ms: 0,
            answer_first_token_ms: 0,
            answer_tokens_per_sec: 0.0,
            tts_first_byte_ms: 0,
            ..Self::default()
        }
    }

    /// The provider set built from this configuration.
    pub fn providers(&self) -> Providers {
        let cfg = Arc::new(self.clone());
        Providers {
            vad: Arc::new(EnergyVadFactory {
                threshold: cfg.vad_rms_threshold,
            }),
            stt: Arc::new(SimStt { cfg: cfg.clone() }),
            listening: None,
            answer: Arc::new(SimAnswer { cfg: cfg.clone() }),
            embedder: Arc::new(HashEmbedder { dim: 128 }),
            retriever: Arc::new(NoRetriever),
            tts: Arc::new(SimTts { cfg }),
            avatar: Arc::new(BuiltinAvatar),
        }
    }
}

async fn wait(ms: u64, cancel: &CancellationToken) -> Result<(), ProviderError> {
    if ms == 0 {
        return if cancel.is_cancelled() {
            Err(ProviderError::Cancelled)
        } else {
            Ok(())
        };
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(()),
        _ = cancel.cancelled() => Err(ProviderError::Cancelled),
    }
}

/// Energy-threshold VAD (the pure-Rust fallback; Silero replaces it when installed).
#[derive(Debug, Clone)]
pub struct EnergyVadFactory {
    /// RMS threshold.
    pub threshold: f32,
}

struct EnergyVad {
    threshold: f32,
}

impl Vad for EnergyVad {
    fn is_speech<'a>(&'a mut self, frame: &'a [i16]) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(rms(frame) >= self.threshold))
    }
}

impl VadFactory for EnergyVadFactory {
    fn create(&self, _sample_rate: u32) -> Box<dyn Vad> {
        Box::new(EnergyVad {
            threshold: self.threshold,
        })
    }
}

struct SimStt {
    cfg: Arc<SimulatedConfig>,
}

impl SpeechToText for SimStt {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let secs = request.audio.len() as u64 / u64::from(request.sample_rate.max(1));
            let text = if self.cfg.transcripts.is_empty() {
                format!("({secs} seconds of speech)")
            } else {
                self.cfg.transcripts[secs as usize % self.cfg.transcripts.len()].clone()
            };
            let first_word = text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            let _ = partial.try_send(first_word);
            wait(self.cfg.stt_delay_ms, &cancel).await?;
            Ok(text)
        })
    }
}

struct SimAnswer {
    cfg: Arc<SimulatedConfig>,
}

impl AnswerEngine for SimAnswer {
    fn answer<'a>(
        &'a self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<AnswerUsage, ProviderError>> {
        Box::pin(async move {
            let text = match request.passages.first() {
                Some(p) => format!("According to {}: {}", p.title, p.text),
                None => self.cfg.answer.clone(),
            };
            wait(self.cfg.answer_first_token_ms, &cancel).await?;
            let gap = if self.cfg.answer_tokens_per_sec > 0.0 {
                (1000.0 / self.cfg.answer_tokens_per_sec) as u64
            } else {
                0
            };
            let mut count = 0;
            for (i, word) in text.split_inclusive(' ').enumerate() {
                if i > 0 {
                    wait(gap, &cancel).await?;
                }
                tokens
                    .send(word.to_owned())
                    .await
                    .map_err(|_| ProviderError::Cancelled)?;
                count += 1;
            }
            Ok(AnswerUsage {
                prompt_tokens: request.question.split_whitespace().count() as u32,
                completion_tokens: count,
                cited: None,
                unanswered: false,
            })
        })
    }
}

/// Deterministic bag-of-words embeddings (feature hashing), L2-normalised: similar
/// questions get similar vectors, which is what the caches need.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    /// Dimension.
    pub dim: usize,
}

impl HashEmbedder {
    /// Embeds one text synchronously.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
        {
            let h = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            v[(h % self.dim as u64) as usize] += 1.0;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl Embedder for HashEmbedder {
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        _cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(async move { Ok(texts.iter().map(|t| self.embed_one(t)).collect()) })
    }
    fn dimension(&self) -> usize {
        self.dim
    }
}

/// A retriever with no documents.
#[derive(Debug, Clone, Default)]
pub struct NoRetriever;

impl Retriever for NoRetriever {
    fn retrieve<'a>(
        &'a self,
        _tenant: &'a str,
        _query: &'a str,
        _embedding: &'a [f32],
        _k: usize,
        _cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Passage>, ProviderError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

struct SimTts {
    cfg: Arc<SimulatedConfig>,
}

impl TextToSpeech for SimTts {
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            wait(self.cfg.tts_first_byte_ms, &cancel).await?;
            let rate = self.cfg.tts_sample_rate;
            let per_char = self.cfg.tts_ms_per_char;
            let mut words = Vec::new();
            let mut samples = Vec::new();
            let mut t_ms = 0u32;
            for word in request.text.split_whitespace() {
                let len_ms = per_char * word.chars().count() as u32;
                words.push(WordTiming {
                    word: word.to_owned(),
                    start_ms: t_ms,
                    end_ms: t_ms + len_ms,
                    visemes: Vec::new(),
                });
                // A quiet tone per word, a short gap between words.
                let n = crate::audio::samples_for_ms(len_ms, rate);
                let freq = 180.0 + 20.0 * (word.len() % 5) as f32;
                samples.extend((0..n).map(|i| {
                    let t = i as f32 / rate as f32;
                    (3000.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
                }));
                let gap = crate::audio::samples_for_ms(per_char, rate);
                samples.extend(std::iter::repeat_n(0i16, gap));
                t_ms += len_ms + per_char;
            }
            // Deliver in 100 ms chunks; word timings ride on the first.
            let chunk = crate::audio::samples_for_ms(100, rate).max(1);
            let mut first = true;
            for piece in samples.chunks(chunk) {
                if cancel.is_cancelled() {
                    return Err(ProviderError::Cancelled);
                }
                let words = if first {
                    std::mem::take(&mut words)
                } else {
                    Vec::new()
                };
                first = false;
                out.send(TtsChunk {
                    samples: piece.to_vec(),
                    sample_rate: rate,
                    words,
                })
                .await
                .map_err(|_| ProviderError::Cancelled)?;
            }
            Ok(())
        })
    }
}

/// The built-in avatar: the web client draws it from viseme events, so the backend has
/// nothing to do.
#[derive(Debug, Clone, Default)]
pub struct BuiltinAvatar;

impl AvatarBackend for BuiltinAvatar {
    fn start<'a>(
        &'a self,
        _: &'a str,
        _: &'a AvatarSettings,
        _: CancellationToken,
    ) -> BoxFuture<'a, Result<Option<Box<dyn RemoteAvatar>>, ProviderError>> {
        Box::pin(async { Ok(None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_questions_embed_close_together() {
        let e = HashEmbedder { dim: 128 };
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let a = e.embed_one("What are your opening hours?");
        let b = e.embed_one("what are your opening hours");
        let c = e.embed_one("How much is an oil change?");
        assert!(cos(&a, &b) > 0.99);
        assert!(cos(&a, &c) < 0.5);
    }
}
