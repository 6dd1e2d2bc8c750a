//! `adam eval`: how well a dealership's documents answer a question set. For each
//! question (one JSON object per line: `{"question", "expect": [facts], "document"}` or
//! `{"question", "unanswerable": true}`) it embeds the question, searches the vector
//! store, and asks the answer engine, then reports retrieval hit@1/hit@3 (a passage
//! among the first 1/3 holds every expected fact), answer correctness (the answer holds
//! every fact; an unanswerable question gets no document answer), and the latency of the
//! retrieval (vector search, lexical fusion, context budget; not the embedding).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adam_actors::ports::{AnswerRequest, CancellationToken, Passage};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::db::dealerships::{self, NewDealership};
use crate::db::{Db, Tenant, documents};
use crate::realtime::Realtime;
use crate::settings::Settings;

/// One line of a question file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// As a customer would say it.
    pub question: String,
    /// Facts the right passage and the answer contain (case-insensitive).
    #[serde(default)]
    pub expect: Vec<String>,
    /// The file the fact comes from (informational).
    #[serde(default)]
    pub document: Option<String>,
    /// True when the documents cannot answer it.
    #[serde(default)]
    pub unanswerable: bool,
}

/// The outcome of one question.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The question.
    pub question: String,
    /// Rank (1-based) of the first passage holding every fact, if any in the top k.
    pub rank: Option<usize>,
    /// The answer given.
    pub answer: String,
    /// The answer is right.
    pub correct: bool,
    /// Retrieval time (search, fusion, budget), µs.
    pub search_us: u64,
}

/// Totals.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Questions with an answer in the documents.
    pub answerable: usize,
    /// Share of those whose fact is in the first passage.
    pub hit_at_1: f64,
    /// … in the first three.
    pub hit_at_3: f64,
    /// Share answered correctly.
    pub answer_correct: f64,
    /// Questions the documents cannot answer.
    pub unanswerable: usize,
    /// Share of those answered honestly (no document answer).
    pub unanswerable_correct: f64,
    /// Chunks searched.
    pub chunks: usize,
    /// Retrieval latency p50, µs.
    pub search_p50_us: u64,
    /// Retrieval latency p99, µs.
    pub search_p99_us: u64,
    /// Every question.
    pub outcomes: Vec<Outcome>,
}

/// Reads a question file.
pub fn load_questions(path: &Path) -> anyhow::Result<Vec<Question>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

fn holds(text: &str, facts: &[String]) -> bool {
    let norm = |s: &str| {
        s.to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = norm(text);
    !facts.is_empty() && facts.iter().all(|f| text.contains(&norm(f)))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Where the documents come from.
pub enum Source<'a> {
    /// A folder ingested into a throwaway database first.
    Folder(&'a Path),
    /// A dealership (id or exact name) of the configured database.
    Dealership(&'a str),
}

/// Runs the question set and returns the report.
pub async fn run(
    mut settings: Settings,
    source: Source<'_>,
    questions: &[Question],
) -> anyhow::Result<Report> {
    let scratch = match source {
        Source::Folder(_) => {
            let dir = std::env::temp_dir().join(format!("adam-eval-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir)?;
            settings.database.url = format!("sqlite://{}", dir.join("eval.db").display());
            if settings.knowledge.vector_store != "pinecone" {
                settings.knowledge.vector_store = "auto".into();
            }
            Some(dir)
        }
        Source::Dealership(_) => None,
    };
    let result = evaluate(&settings, source, questions).await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn evaluate(
    settings: &Settings,
    source: Source<'_>,
    questions: &[Question],
) -> anyhow::Result<Report> {
    let db = Db::connect(&settings.database).await?;
    db.migrate().await?;
    let clock = Clock::system();
    let registry = prometheus::Registry::new();
    // Its outbox worker never runs: an evaluation sends no email.
    let mailer = crate::email::Mailer::new(settings, db.clone(), clock.clone(), &registry)?;
    let realtime =
        Realtime::start(settings, db.clone(), clock.clone(), mailer, &registry, None).await?;
    let dealership = match source {
        Source::Folder(dir) => {
            let d = dealerships::insert(
                &db,
                NewDealership {
                    name: "Evaluation".into(),
                    allowed_origins: "[]".into(),
                    persona: dealerships::DEFAULT_PERSONA.into(),
                    voice: "default".into(),
                    avatar: "{}".into(),
                    lead_email: None,
                },
                clock.now(),
            )
            .await?;
            let n = realtime.knowledge.ingest_folder(&d.id, dir).await?;
            anyhow::ensure!(n > 0, "no documents in {}", dir.display());
            d
        }
        Source::Dealership(key) => match dealerships::get(&db, Tenant::All, key).await? {
            Some(d) => d,
            None => dealerships::find_by_name(&db, key)
                .await?
                .with_context(|| format!("no dealership with id or name `{key}`"))?,
        },
    };
    // Wait for ingestion (queued documents of this dealership).
    let deadline = Instant::now() + Duration::from_secs(600);
    let chunks = loop {
        let docs = documents::list(&db, Tenant::Only(&dealership.id)).await?;
        if docs
            .iter()
            .all(|d| d.status == "ready" || d.status == "failed")
        {
            for d in docs.iter().filter(|d| d.status == "failed") {
                tracing::warn!(file = %d.filename, reason = ?d.error, "document failed");
            }
            break docs
                .iter()
                .map(|d| d.chunk_count.max(0) as usize)
                .sum::<usize>();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "ingestion did not finish in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let providers = &realtime.shared.providers;
    let k = settings.knowledge.top_k.max(3);
    let mut outcomes = Vec::new();
    for q in questions {
        let vector = providers
            .embedder
            .embed(vec![q.question.clone()], CancellationToken::new())
            .await
            .map_err(|e| anyhow::anyhow!("embedding: {e}"))?
            .pop()
            .context("no vector")?;
        let started = Instant::now();
        let passages: Vec<Passage> = providers
            .retriever
            .retrieve(
                &dealership.id,
                &q.question,
                &vector,
                k,
                CancellationToken::new(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("retrieval: {e}"))?;
        let search_us = started.elapsed().as_micros() as u64;
        let rank = passages
            .iter()
            .position(|p| holds(&p.text, &q.expect))
            .map(|i| i + 1);
        let (tx, mut rx) = mpsc::channel(256);
        let request = AnswerRequest {
            tenant: dealership.id.clone(),
            question: q.question.clone(),
            search_query: q.question.clone(),
            history: Vec::new(),
            persona: dealership.persona.clone(),
            passages: passages
                .iter()
                .take(settings.knowledge.top_k)
                .cloned()
                .collect(),
        };
        let engine = Arc::clone(&providers.answer);
        let task =
            tokio::spawn(async move { engine.answer(request, tx, CancellationToken::new()).await });
        let mut answer = String::new();
        while let Some(piece) = rx.recv().await {
            answer.push_str(&piece);
        }
        let usage = task
            .await?
            .map_err(|e| anyhow::anyhow!("answer engine: {e}"))?;
        let correct = if q.unanswerable {
            usage.cited.as_ref().is_some_and(Vec::is_empty)
        } else {
            holds(&answer, &q.expect)
        };
        outcomes.push(Outcome {
            question: q.question.clone(),
            rank,
            answer: answer.trim().to_owned(),
            correct,
            search_us,
        });
    }
    realtime.stop();
    db.close().await;
    let answerable: Vec<&Outcome> = outcomes
        .iter()
        .zip(questions)
        .filter(|(_, q)| !q.unanswerable)
        .map(|(o, _)| o)
        .collect();
    let unanswerable = outcomes.len() - answerable.len();
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let mut latencies: Vec<u64> = outcomes.iter().map(|o| o.search_us).collect();
    latencies.sort_unstable();
    Ok(Report {
        answerable: answerable.len(),
        hit_at_1: share(
            answerable.iter().filter(|o| o.rank == Some(1)).count(),
            answerable.len(),
        ),
        hit_at_3: share(
            answerable
                .iter()
                .filter(|o| o.rank.is_some_and(|r| r <= 3))
                .count(),
            answerable.len(),
        ),
        answer_correct: share(
            answerable.iter().filter(|o| o.correct).count(),
            answerable.len(),
        ),
        unanswerable,
        unanswerable_correct: share(
            outcomes
                .iter()
                .zip(questions)
                .filter(|(o, q)| q.unanswerable && o.correct)
                .count(),
            unanswerable,
        ),
        chunks,
        search_p50_us: percentile(&latencies, 0.50),
        search_p99_us: percentile(&latencies, 0.99),
        outcomes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_match_case_and_spacing_insensitively() {
        let facts = vec!["49 dollars".to_owned(), "45  minutes".to_owned()];
        assert!(holds(
            "An oil change costs 49 Dollars and takes 45 minutes.",
            &facts
        ));
        assert!(!holds("An oil change costs 49 dollars.", &facts));
        assert!(!holds("anything", &[]), "no facts: nothing to hold");
        assert_eq!(percentile(&[1, 2, 3, 4, 100], 0.5), 3);
        assert_eq!(percentile(&[1, 2, 3, 4, 100], 0.99), 100);
    }
}
