//! `Turn`: one per user turn. Embedding (through the shared cache) → semantic cache →
//! retrieval → streamed answer → sentences for TTS. All of it runs in a task the actor
//! owns; stopping the actor or cancelling its token stops the work at once.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::metrics::AliveGuard;
use crate::ports::{AnswerRequest, CancellationToken, ContextTurn, Passage, ProviderError};
use crate::semantic_cache::CachedAnswer;
use crate::sentences::SentenceSplitter;
use crate::shared::Shared;
use crate::tasks::AbortOnDrop;

/// What a `Turn` reports to its parent, each about the response `response_id`.
#[allow(missing_docs, reason = "the fields are described on their variants")]
pub enum TurnEvent {
    /// More answer text.
    Delta { response_id: String, delta: String },
    /// A sentence of the answer, ready to speak.
    Sentence { response_id: String, text: String },
    /// The answer is complete: its sources, whether it came from the semantic cache,
    /// whether the documents did not answer it, and the language model's token counts.
    Done {
        response_id: String,
        citations: Vec<Passage>,
        cache_hit: bool,
        unanswered: bool,
        prompt_tokens: u32,
        completion_tokens: u32,
    },
    /// The answer failed.
    Failed {
        response_id: String,
        error: ProviderError,
    },
}

/// Configuration of one `Turn`.
pub struct TurnArgs {
    /// Where it reports.
    pub report: DerivedActorRef<TurnEvent>,
    /// Its id (logs).
    pub session_id: String,
    /// Response id.
    pub response_id: String,
    /// Id of the dealership (tenant) it belongs to.
    pub tenant: String,
    /// The question.
    pub question: String,
    /// Context.
    pub history: Vec<ContextTurn>,
    /// Instructions that set the assistant's character and tone.
    pub persona: String,
    /// The dealership's IANA time zone.
    pub timezone: String,
    /// Providers and caches.
    pub shared: Arc<Shared>,
    /// Cancelled on barge-in or session end.
    pub cancel: CancellationToken,
    /// Deadline for the whole answer.
    pub timeout: Duration,
    /// Passages retrieved.
    pub top_k: usize,
    /// The client added its own instructions to the persona: the answer neither comes
    /// from nor goes to the dealership's shared semantic cache (it is this client's).
    pub instructed: bool,
}

/// Input of a `Turn` (its work runs on its own; stopping the actor ends it).
pub enum TurnMsg {
    /// Fault injection.
    InjectPanic,
}

/// One answer: a short-lived actor per response.
pub struct Turn;

/// The answer's task, aborted when the actor goes.
pub struct TurnState {
    _task: AbortOnDrop,
    _alive: AliveGuard,
}

struct Emitter {
    report: DerivedActorRef<TurnEvent>,
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
        let _ = self.report.send_message(TurnEvent::Delta {
            response_id: self.response_id.clone(),
            delta,
        });
        for text in sentences {
            let _ = self.report.send_message(TurnEvent::Sentence {
                response_id: self.response_id.clone(),
                text,
            });
        }
    }

    fn done(
        &mut self,
        citations: Vec<Passage>,
        cache_hit: bool,
        unanswered: bool,
        tokens: (u32, u32),
    ) {
        if self.cancel.is_cancelled() {
            return;
        }
        if let Some(text) = self.splitter.finish() {
            let _ = self.report.send_message(TurnEvent::Sentence {
                response_id: self.response_id.clone(),
                text,
            });
        }
        let _ = self.report.send_message(TurnEvent::Done {
            response_id: self.response_id.clone(),
            citations,
            cache_hit,
            unanswered,
            prompt_tokens: tokens.0,
            completion_tokens: tokens.1,
        });
    }
}

async fn run(args: TurnArgs) {
    let TurnArgs {
        report,
        session_id: _, // in the task's span
        response_id,
        tenant,
        question,
        history,
        persona,
        timezone,
        shared,
        cancel,
        timeout,
        top_k,
        instructed,
    } = args;
    let mut out = Emitter {
        report: report.clone(),
        response_id: response_id.clone(),
        cancel: cancel.clone(),
        splitter: SentenceSplitter::default(),
        text: String::new(),
    };
    // The session context level: a follow-up is searched as a standalone question, so
    // "and on Sunday?" after a question about Saturday hours finds Sunday's.
    // Follow-ups bypass the semantic cache: joined with the question before them they
    // look much like it, and its cached answer is exactly the wrong one.
    let query = standalone_query(&question, &history);
    let follow_up = query.is_some();
    if !history.is_empty() {
        let result = if query.is_some() { "hit" } else { "miss" };
        shared
            .metrics
            .cache_lookups
            .with_label_values(&["context", result])
            .inc();
    }
    let query = query.unwrap_or_else(|| question.clone());
    let work = async {
        let providers = &shared.providers;
        let embedding = shared
            .embeddings
            .get_or_embed(&query, providers.embedder.as_ref(), cancel.clone())
            .await;
        let embedding = match embedding {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "embedding failed; answering without cache and retrieval");
                None
            }
        };
        // "Are you open today?" answered on Saturday is not Monday's answer.
        let dated = mentions_relative_day(&question);
        if let Some(e) = &embedding
            && !follow_up
            && !dated
            && !instructed
            && let Some(hit) = shared.semantic.lookup(&tenant, &query, e.clone()).await
        {
            for piece in hit.text.split_inclusive(' ') {
                out.delta(piece.to_owned());
            }
            out.done(hit.citations.clone(), true, false, (0, 0));
            return Ok(());
        }
        let passages = match &embedding {
            Some(e) => {
                let started = std::time::Instant::now();
                let found = providers
                    .retriever
                    .retrieve(&tenant, &query, e, top_k, cancel.clone())
                    .await;
                shared
                    .metrics
                    .retrieval
                    .observe(started.elapsed().as_secs_f64());
                found.unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "retrieval failed; answering without passages");
                    Vec::new()
                })
            }
            None => Vec::new(),
        };
        let request = AnswerRequest {
            tenant: tenant.clone(),
            question: question.clone(),
            search_query: query.clone(),
            history,
            persona,
            timezone,
            passages: passages.clone(),
        };
        shared.metrics.answers_generated.inc();
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
            && !follow_up
            && !dated
            && !instructed
            && !out.text.trim().is_empty()
            && !cancel.is_cancelled()
        {
            shared.semantic.store(
                &tenant,
                &query,
                e,
                CachedAnswer {
                    text: out.text.clone(),
                    citations: cited.clone(),
                },
            );
        }
        out.done(
            cited,
            false,
            usage.unanswered,
            (usage.prompt_tokens, usage.completion_tokens),
        );
        Ok(())
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::Timeout),
    };
    if let Err(error) = result
        && !cancel.is_cancelled()
    {
        let _ = report.send_message(TurnEvent::Failed { response_id, error });
    }
}

/// The question says "today", "tonight" or "tomorrow": its answer depends on the day.
pub fn mentions_relative_day(question: &str) -> bool {
    question
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| ["today", "tonight", "tomorrow"].contains(&w.to_lowercase().as_str()))
}

/// Words that make a short question lean on the one before it.
const REFERRING: &[&str] = &[
    "it", "its", "that", "those", "them", "they", "there", "this", "these", "one", "ones",
];
const FOLLOW_UP_OPENERS: &[&str] = &["and", "what about", "how about", "also", "what if", "or"];

/// The question as a standalone search query when it is an elliptic follow-up of the
/// previous turn ("and on Sunday?", "how much is it?"): the previous question and this
/// one together. `None` when the question stands on its own or there is no earlier turn.
pub fn standalone_query(question: &str, history: &[ContextTurn]) -> Option<String> {
    let previous = history.iter().rev().find(|t| !t.user.trim().is_empty())?;
    let lower = question.trim().to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return None;
    }
    let opener = FOLLOW_UP_OPENERS.iter().any(|o| {
        lower.starts_with(o) && lower[o.len()..].starts_with(|c: char| !c.is_alphanumeric())
    });
    let referring = words.iter().any(|w| REFERRING.contains(w));
    let follow_up = opener || words.len() <= 3 || (words.len() <= 7 && referring);
    follow_up.then(|| format!("{} {}", previous.user.trim(), question.trim()))
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
            // Everything the turn logs names its session and response.
            _task: AbortOnDrop(tokio::spawn({
                let span = tracing::info_span!(
                    "turn",
                    session_id = %args.session_id,
                    response_id = %args.response_id
                );
                run(args).instrument(span)
            })),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_about_today_or_tomorrow_are_dated() {
        assert!(mentions_relative_day("Are you open today?"));
        assert!(mentions_relative_day("open TOMORROW morning"));
        assert!(!mentions_relative_day("Are you open on Sundays?"));
        assert!(!mentions_relative_day("todays deals"));
    }

    fn after(question: &str) -> Vec<ContextTurn> {
        vec![ContextTurn {
            user: question.into(),
            assistant: "We open at 8 am on Saturday.".into(),
        }]
    }

    #[test]
    fn elliptic_follow_ups_are_read_with_the_previous_question() {
        let h = after("When does the service department open on Saturday?");
        assert_eq!(
            standalone_query("And on Sunday?", &h).as_deref(),
            Some("When does the service department open on Saturday? And on Sunday?")
        );
        assert!(standalone_query("How much is it?", &h).is_some());
        assert!(standalone_query("What about the parts counter?", &h).is_some());
        // Questions that stand alone are searched as they are.
        assert_eq!(
            standalone_query("How much does an oil change cost at your dealership?", &h),
            None
        );
        assert_eq!(standalone_query("Android phones?", &[]), None, "no history");
        assert_eq!(
            standalone_query("Andrew Street parking rules for customers please", &h),
            None,
            "an opener must be a whole word"
        );
    }
}
