//! [`Guarded`]: any port implementation (espeak, a local model, a client written
//! elsewhere) behind a [`ProviderGuard`], so it gets the same timeouts, retries before
//! the first output, circuit breaker and metrics as the cloud clients.

use adam_actors::ports::{
    AnswerEngine, AnswerRequest, AnswerUsage, BoxFuture, CancellationToken, Embedder,
    ProviderError, SpeechToText, SttRequest, TextToSpeech, TtsChunk, TtsRequest,
};
use tokio::sync::mpsc;

use super::resilience::{Failure, ProviderGuard, pump};

/// Any port implementation behind a [`ProviderGuard`]: `Guarded<EspeakTts>` is a
/// `TextToSpeech` with timeouts, retries (before the first chunk), a breaker and metrics.
/// Wrap only providers without a guard of their own (the cloud clients have one).
pub struct Guarded<P> {
    inner: P,
    guard: ProviderGuard,
}

impl<P> Guarded<P> {
    /// `inner` behind `guard`.
    pub fn new(inner: P, guard: ProviderGuard) -> Self {
        Self { inner, guard }
    }

    /// The guard.
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }
}

/// Capacity of the channel between a wrapped provider and its forwarder.
const FORWARD_CAPACITY: usize = 8;

impl<P: TextToSpeech> TextToSpeech for Guarded<P> {
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            self.guard
                .stream(&out, &cancel, |emit| {
                    let (tx, rx) = mpsc::channel(FORWARD_CAPACITY);
                    let work = self.inner.synthesize(request.clone(), tx, cancel.clone());
                    async move { pump(work, rx, &emit).await.map_err(Failure::from) }
                })
                .await
        })
    }
}

impl<P: AnswerEngine> AnswerEngine for Guarded<P> {
    fn answer<'a>(
        &'a self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<AnswerUsage, ProviderError>> {
        Box::pin(async move {
            self.guard
                .stream(&tokens, &cancel, |emit| {
                    let (tx, rx) = mpsc::channel(FORWARD_CAPACITY);
                    let work = self.inner.answer(request.clone(), tx, cancel.clone());
                    async move { pump(work, rx, &emit).await.map_err(Failure::from) }
                })
                .await
        })
    }
}

impl<P: SpeechToText> SpeechToText for Guarded<P> {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        // Interim text is provisional (each replaces the last), so it does not count as
        // output: a retry may send interim text again.
        Box::pin(async move {
            self.guard
                .unary(&cancel, || {
                    let work =
                        self.inner
                            .transcribe(request.clone(), partial.clone(), cancel.clone());
                    async move { work.await.map_err(Failure::from) }
                })
                .await
        })
    }
}

impl<P: Embedder> Embedder for Guarded<P> {
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(async move {
            self.guard
                .unary(&cancel, || {
                    let work = self.inner.embed(texts.clone(), cancel.clone());
                    async move { work.await.map_err(Failure::from) }
                })
                .await
        })
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
}
