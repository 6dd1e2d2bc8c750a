//! Fallback chains: one port implementation made of several providers tried in order
//! (ElevenLabs, then espeak; OpenRouter, then a local model). The next provider is tried
//! only when the previous one failed before emitting anything: a sentence half spoken by
//! one voice is never started again by another. Cancellation ends the chain at once.

use std::sync::Arc;

use adam_actors::ports::{
    AnswerEngine, AnswerRequest, AnswerUsage, BoxFuture, CancellationToken, Embedder, Passage,
    ProviderError, SpeechToText, SttRequest, TextToSpeech, TtsChunk, TtsRequest,
};
use tokio::sync::mpsc;

use super::resilience::{Emitter, pump};

/// Capacity of the channel between a provider of the chain and the caller's channel.
const FORWARD_CAPACITY: usize = 8;

/// Runs `call(i, tx)` for each provider index in turn until one succeeds, one emits
/// something, or the caller cancels.
async fn chain<'a, T, R, F>(
    stage: &'static str,
    len: usize,
    out: Option<&mpsc::Sender<T>>,
    cancel: &CancellationToken,
    mut call: F,
) -> Result<R, ProviderError>
where
    F: FnMut(usize, mpsc::Sender<T>) -> BoxFuture<'a, Result<R, ProviderError>>,
{
    let mut last = ProviderError::Unavailable(format!("no {stage} provider configured"));
    for i in 0..len {
        if cancel.is_cancelled() {
            return Err(ProviderError::Cancelled);
        }
        let (tx, rx) = mpsc::channel(FORWARD_CAPACITY);
        let result = match out {
            Some(out) => {
                let emitter = Emitter::new(out.clone());
                let result = pump(call(i, tx), rx, &emitter).await;
                if result.is_err() && emitter.emitted() {
                    return result;
                }
                result
            }
            None => call(i, tx).await,
        };
        match result {
            Ok(value) => {
                if i > 0 {
                    tracing::info!(stage, provider = i, "fallback provider answered");
                }
                return Ok(value);
            }
            Err(ProviderError::Cancelled) => return Err(ProviderError::Cancelled),
            Err(error) => {
                if i + 1 < len {
                    tracing::warn!(stage, provider = i, %error, "provider failed; trying the next one");
                }
                last = error;
            }
        }
    }
    Err(last)
}

/// Text to speech from the first provider that works.
pub struct FallbackTts(pub Vec<Arc<dyn TextToSpeech>>);

impl TextToSpeech for FallbackTts {
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            chain("tts", self.0.len(), Some(&out), &cancel, |i, tx| {
                self.0[i].synthesize(request.clone(), tx, cancel.clone())
            })
            .await
        })
    }
}

/// Answers from the first engine that works.
pub struct FallbackAnswer(pub Vec<Arc<dyn AnswerEngine>>);

impl AnswerEngine for FallbackAnswer {
    fn prepare<'a>(&'a self, passages: Vec<Passage>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for engine in &self.0 {
                engine.prepare(passages.clone()).await;
            }
        })
    }

    fn answer<'a>(
        &'a self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<AnswerUsage, ProviderError>> {
        Box::pin(async move {
            chain("answer", self.0.len(), Some(&tokens), &cancel, |i, tx| {
                self.0[i].answer(request.clone(), tx, cancel.clone())
            })
            .await
        })
    }
}

/// Transcripts from the first provider that works. Interim text is provisional and does
/// not stop the chain.
pub struct FallbackStt(pub Vec<Arc<dyn SpeechToText>>);

impl SpeechToText for FallbackStt {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            chain::<String, _, _>("stt", self.0.len(), None, &cancel, |i, _unused| {
                self.0[i].transcribe(request.clone(), partial.clone(), cancel.clone())
            })
            .await
        })
    }
}

/// Embeddings from the first provider that works. Every provider must make vectors of
/// the same dimension (the vector store holds one), so [`FallbackEmbedder::new`] checks.
pub struct FallbackEmbedder {
    chain: Vec<Arc<dyn Embedder>>,
    dimension: usize,
}

impl FallbackEmbedder {
    /// A chain of `embedders`; an error names the first whose dimension differs.
    pub fn new(embedders: Vec<Arc<dyn Embedder>>) -> Result<Self, String> {
        let dimension = embedders.first().map_or(0, |e| e.dimension());
        if let Some((i, e)) = embedders
            .iter()
            .enumerate()
            .find(|(_, e)| e.dimension() != dimension)
        {
            return Err(format!(
                "embedder {i} makes {}-dimension vectors, the first one {dimension}: a \
                 fallback embedder must match",
                e.dimension()
            ));
        }
        Ok(Self {
            chain: embedders,
            dimension,
        })
    }
}

impl Embedder for FallbackEmbedder {
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(async move {
            chain::<(), _, _>("embed", self.chain.len(), None, &cancel, |i, _unused| {
                self.chain[i].embed(texts.clone(), cancel.clone())
            })
            .await
        })
    }

    fn dimension(&self) -> usize {
        self.dimension
    }
}
