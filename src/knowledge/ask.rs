//! One question asked outside a conversation, the way a turn asks it (embed, retrieve,
//! answer): for `adam eval` and for re-checking knowledge gaps.

use std::sync::Arc;
use std::time::Instant;

use adam_actors::ports::{
    AnswerRequest, AnswerUsage, CancellationToken, Passage, ProviderError, Providers,
};
use tokio::sync::mpsc;

/// What asking gave.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The passages retrieved, best first (`retrieve` of them).
    pub passages: Vec<Passage>,
    /// The answer as spoken.
    pub answer: String,
    /// What the engine reports.
    pub usage: AnswerUsage,
    /// Retrieval time (search, fusion, budget), µs.
    pub search_us: u64,
    /// Retrieval and answer time, µs (not the question's embedding).
    pub answer_us: u64,
}

/// Asks `question` of `tenant`'s documents: `retrieve` passages are fetched, the best
/// `top_k` of them go to the answer engine.
pub async fn ask(
    providers: &Providers,
    tenant: &str,
    persona: &str,
    timezone: &str,
    question: &str,
    top_k: usize,
    retrieve: usize,
) -> Result<Asked, ProviderError> {
    let vector = providers
        .embedder
        .embed(vec![question.to_owned()], CancellationToken::new())
        .await?
        .pop()
        .ok_or_else(|| ProviderError::Unavailable("the embedder returned no vector".into()))?;
    let started = Instant::now();
    let passages = providers
        .retriever
        .retrieve(
            tenant,
            question,
            &vector,
            retrieve.max(top_k),
            CancellationToken::new(),
        )
        .await?;
    let search_us = started.elapsed().as_micros() as u64;
    let (tx, mut rx) = mpsc::channel(256);
    let request = AnswerRequest {
        tenant: tenant.to_owned(),
        question: question.to_owned(),
        search_query: question.to_owned(),
        history: Vec::new(),
        persona: persona.to_owned(),
        timezone: timezone.to_owned(),
        passages: passages.iter().take(top_k).cloned().collect(),
    };
    let engine = Arc::clone(&providers.answer);
    let task =
        tokio::spawn(async move { engine.answer(request, tx, CancellationToken::new()).await });
    let mut answer = String::new();
    while let Some(piece) = rx.recv().await {
        answer.push_str(&piece);
    }
    let usage = task
        .await
        .map_err(|e| ProviderError::Unavailable(format!("answer task died: {e}")))??;
    Ok(Asked {
        passages,
        answer: answer.trim().to_owned(),
        usage,
        search_us,
        answer_us: started.elapsed().as_micros() as u64,
    })
}
