//! `Turn`: one per user turn. Embedding (through the shared cache) → semantic cache →
//! retrieval → streamed answer → sentences for TTS. All of it runs in a task the actor
//! owns; stopping the actor or cancelling its token stops the work at once.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use crate::metrics::AliveGuard;
use crate::ports::{AnswerRequest, CancellationToken, ContextTurn, Passage, ProviderError};
use crate::semantic_cache::CachedAnswer;
use crate::sentences::SentenceSplitter;
use crate::session::{SessionMsg, Shared};

/// Passages retrieved per question.
const TOP_K: usize = 4;

/// Arguments.
pub struct TurnArgs {
    /// Parent session.
    pub session: ActorRef<SessionMsg>,
    /// Response id.
    pub response_id: String,
    /// Dealership.
    pub tenant: String,
    /// The question.
    pub question: String,
    /// Context.
    pub history: Vec<ContextTurn>,
    /// Persona.
    pub persona: String,
    /// Providers and caches.
    pub shared: Arc<Shared>,
    /// Cancelled on barge-in or session end.
    pub cancel: CancellationToken,
    /// Deadline for the whole answer.
    pub timeout: Duration,
}

/// Messages.
pub enum TurnMsg {
    /// Fault injection.
    InjectPanic,
}

/// Aborts a task when dropped (also when the actor dies by panic).
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The actor.
pub struct Turn;

/// Its state.
pub struct TurnState {
    _task: AbortOnDrop,
    _alive: AliveGuard,
}

struct Emitter {
    session: ActorRef<SessionMsg>,
    response_id: String,
    cancel: CancellationToken,
    splitter: SentenceSplitter,
    text: String,
}

impl Emitter {
    fn delta(&mut self, delta: String) {
        if self.cancel.is_cancelled() {
            return;
        }
        self.text.push_str(&delta);
        let sentences = self.splitter.push(&delta);
        let _ = self.session.cast(SessionMsg::TurnDelta {
            response_id: self.response_id.clone(),
            delta,
        });
        for text in sentences {
            let _ = self.session.cast(SessionMsg::TurnSentence {
                response_id: self.response_id.clone(),
                text,
            });
        }
    }

    fn done(&mut self, citations: Vec<Passage>, cache_hit: bool) {
        if self.cancel.is_cancelled() {
            return;
        }
        if let Some(text) = self.splitter.finish() {
            let _ = self.session.cast(SessionMsg::TurnSentence {
                response_id: self.response_id.clone(),
                text,
            });
        }
        let _ = self.session.cast(SessionMsg::TurnDone {
            response_id: self.response_id.clone(),
            citations,
            cache_hit,
        });
    }
}

async fn run(args: TurnArgs) {
    let TurnArgs {
        session,
        response_id,
        tenant,
        question,
        history,
        persona,
        shared,
        cancel,
        timeout,
    } = args;
    let mut out = Emitter {
        session: session.clone(),
        response_id: response_id.clone(),
        cancel: cancel.clone(),
        splitter: SentenceSplitter::default(),
        text: String::new(),
    };
    let work = async {
        let providers = &shared.providers;
        let embedding = shared
            .embeddings
            .get_or_embed(&question, providers.embedder.as_ref(), cancel.clone())
            .await;
        let embedding = match embedding {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "embedding failed; answering without cache and retrieval");
                None
            }
        };
        if let Some(e) = &embedding
            && let Some(hit) = shared.semantic.lookup(&tenant, &question, e.clone()).await
        {
            for piece in hit.text.split_inclusive(' ') {
                out.delta(piece.to_owned());
            }
            out.done(hit.citations.clone(), true);
            return Ok(());
        }
        let passages = match &embedding {
            Some(e) => providers
                .retriever
                .retrieve(&tenant, &question, e, TOP_K, cancel.clone())
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "retrieval failed; answering without passages");
                    Vec::new()
                }),
            None => Vec::new(),
        };
        let request = AnswerRequest {
            tenant: tenant.clone(),
            question: question.clone(),
            history,
            persona,
            passages: passages.clone(),
        };
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let engine = providers.answer.clone();
        let answer_cancel = cancel.clone();
        let producer = tokio::spawn(async move { engine.answer(request, tx, answer_cancel).await });
        while let Some(token) = rx.recv().await {
            out.delta(token);
        }
        let usage = match producer.await {
            Ok(Ok(usage)) => usage,
            Ok(Err(e)) => return Err(e),
            Err(join) => {
                return Err(ProviderError::Unavailable(format!(
                    "answer task died: {join}"
                )));
            }
        };
        // Small talk and "I don't have that information" cite nothing and are not cached.
        let cacheable = usage.cited.as_ref().is_none_or(|c| !c.is_empty());
        let cited = match usage.cited {
            Some(indexes) => indexes
                .iter()
                .filter_map(|&i| passages.get(i).cloned())
                .collect(),
            None => passages,
        };
        // Store before reporting done: the session stops this actor right after.
        if let Some(e) = embedding
            && cacheable
            && !out.text.trim().is_empty()
            && !cancel.is_cancelled()
        {
            shared.semantic.store(
                &tenant,
                &question,
                e,
                CachedAnswer {
                    text: out.text.clone(),
                    citations: cited.clone(),
                },
            );
        }
        out.done(cited, false);
        Ok(())
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::Timeout),
    };
    if let Err(error) = result
        && !cancel.is_cancelled()
    {
        let _ = session.cast(SessionMsg::TurnFailed { response_id, error });
    }
}

impl Actor for Turn {
    type Msg = TurnMsg;
    type State = TurnState;
    type Arguments = TurnArgs;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        args: TurnArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let alive = AliveGuard::new(&args.shared.metrics.live_actors);
        Ok(TurnState {
            _task: AbortOnDrop(tokio::spawn(run(args))),
            _alive: alive,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TurnMsg::InjectPanic => panic!("injected fault in Turn"),
        }
    }
}
