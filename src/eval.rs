//! `adam eval`: how well a dealership's documents answer a question set. For each
//! question (one JSON object per line: `{"question", "expect": [facts], "document",
//! "kind"}` or `{"question", "unanswerable": true}`) it embeds the question, searches the
//! vector store, and asks the answer engine, then reports retrieval hit@1/hit@3 (a passage
//! among the first 1/3 holds every expected fact), answer correctness (the answer holds
//! every fact; an unanswerable question gets no document answer), invented facts (an
//! unanswerable question answered from the documents), and the latency of retrieval
//! (vector search, lexical fusion, context budget; not the embedding) and of choosing and
//! composing the answer.
//!
//! A corpus (`--corpus eval/`) is a folder of dealerships, each with its documents in
//! `docs/` and its questions split into `dev.jsonl` (tuned on) and `heldout.jsonl` (never
//! tuned on); every dealership is ingested into one throwaway database and both splits are
//! reported per dealership and in total.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use adam_actors::ports::{CancellationToken, SttRequest};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::db::dealerships::{self, Dealership, NewDealership};
use crate::db::{Db, Tenant, documents};
use crate::realtime::Realtime;
use crate::settings::Settings;

/// One line of a question file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// As a customer would say it.
    pub question: String,
    /// Facts the right passage and the answer contain (case-insensitive); each fact may
    /// be a list of equally right forms.
    #[serde(default)]
    pub expect: Vec<Fact>,
    /// The file the fact comes from (informational).
    #[serde(default)]
    pub document: Option<String>,
    /// True when the documents cannot answer it.
    #[serde(default)]
    pub unanswerable: bool,
    /// What kind of question it is (`price`, `hours`, `person` …), for the per-kind table.
    #[serde(default)]
    pub kind: Option<String>,
}

/// An expected fact: one text, or any one of several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Fact {
    /// This text.
    One(String),
    /// Any one of these.
    AnyOf(Vec<String>),
}

impl From<&str> for Fact {
    fn from(text: &str) -> Self {
        Self::One(text.to_owned())
    }
}

/// The outcome of one question.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The question.
    pub question: String,
    /// Its kind, if the question file gives one.
    pub kind: Option<String>,
    /// The documents cannot answer it.
    pub unanswerable: bool,
    /// Rank (1-based) of the first passage holding every fact, if any in the top k.
    pub rank: Option<usize>,
    /// The answer given.
    pub answer: String,
    /// The answer came from the documents (cited a passage).
    pub from_documents: bool,
    /// The answer is right.
    pub correct: bool,
    /// Retrieval time (search, fusion, budget), µs.
    pub search_us: u64,
    /// Choosing and composing the answer, µs.
    pub answer_us: u64,
    /// The passages retrieved, best first ("title: text"), to explain an answer.
    pub passages: Vec<String>,
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
    /// Unanswerable questions answered from the documents anyway (a neighbour's fact).
    pub invented: usize,
    /// Chunks searched.
    pub chunks: usize,
    /// Retrieval latency p50, µs.
    pub search_p50_us: u64,
    /// Retrieval latency p99, µs.
    pub search_p99_us: u64,
    /// Retrieval + answer composition p99, µs.
    pub answer_p99_us: u64,
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

fn normalise(s: &str) -> String {
    s.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text holds every fact (one of a fact's forms suffices).
fn holds(text: &str, facts: &[Fact]) -> bool {
    let text = normalise(text);
    let has = |f: &str| text.contains(&normalise(f));
    !facts.is_empty()
        && facts.iter().all(|fact| match fact {
            Fact::One(f) => has(f),
            Fact::AnyOf(forms) => forms.iter().any(|f| has(f)),
        })
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
    settings: Settings,
    source: Source<'_>,
    questions: &[Question],
) -> anyhow::Result<Report> {
    let scratch = matches!(source, Source::Folder(_));
    let bench = Bench::open(settings, scratch).await?;
    let result = async {
        let (dealership, chunks) = match source {
            Source::Folder(dir) => bench.ingest("Evaluation", dir).await?,
            Source::Dealership(key) => bench.existing(key).await?,
        };
        bench.ask(&dealership, chunks, questions).await
    }
    .await;
    bench.close().await;
    result
}

/// One dealership's split of a corpus, typed or spoken.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusRow {
    /// The dealership's folder name.
    pub dealership: String,
    /// `dev` or `heldout`.
    pub split: String,
    /// `typed`, or `spoken` (espeak-ng speech transcribed by the configured STT first).
    pub mode: String,
    /// Spoken rows: word errors and words of the questions as heard (see
    /// [`word_errors`]).
    pub question_errors: Option<(usize, usize)>,
    /// Its report.
    pub report: Report,
}

/// The question files of a corpus dealership, in report order.
pub const SPLITS: &[&str] = &["dev", "heldout"];

/// Evaluates every dealership of a corpus folder (subfolders holding `docs/`), each split
/// (or `only` one: tuning runs never ask the held-out questions), typed and (with
/// `spoken`) spoken.
pub async fn run_corpus(
    settings: Settings,
    corpus: &Path,
    only: Option<&str>,
    spoken: bool,
) -> anyhow::Result<Vec<CorpusRow>> {
    if let Some(split) = only {
        anyhow::ensure!(
            SPLITS.contains(&split),
            "unknown split `{split}` (expected one of {SPLITS:?})"
        );
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(corpus)
        .with_context(|| format!("reading {}", corpus.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("docs").is_dir())
        .collect();
    folders.sort();
    anyhow::ensure!(
        !folders.is_empty(),
        "no dealership folders (with docs/) in {}",
        corpus.display()
    );
    let bench = Bench::open(settings, true).await?;
    let result = async {
        let mut rows = Vec::new();
        for folder in &folders {
            let name = folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (dealership, chunks) = bench.ingest(&name, &folder.join("docs")).await?;
            for split in SPLITS.iter().filter(|s| only.is_none_or(|o| o == **s)) {
                let file = folder.join(format!("{split}.jsonl"));
                if !file.is_file() {
                    continue;
                }
                let questions = load_questions(&file)?;
                let report = bench.ask(&dealership, chunks, &questions).await?;
                rows.push(CorpusRow {
                    dealership: name.clone(),
                    split: (*split).to_owned(),
                    mode: "typed".into(),
                    question_errors: None,
                    report,
                });
                if spoken {
                    let vocabulary = bench
                        .realtime
                        .vocabularies
                        .for_dealership(&dealership.id)
                        .await;
                    tracing::info!(dealership = %name, terms = ?vocabulary.terms(), "recognition vocabulary");
                    let heard = bench.hear(&questions, &vocabulary).await?;
                    let errors = questions.iter().zip(&heard).fold((0, 0), |acc, (q, h)| {
                        let (e, n) = word_errors(&q.question, &h.question);
                        (acc.0 + e, acc.1 + n)
                    });
                    let report = bench.ask(&dealership, chunks, &heard).await?;
                    rows.push(CorpusRow {
                        dealership: name.clone(),
                        split: (*split).to_owned(),
                        mode: "spoken".into(),
                        question_errors: Some(errors),
                        report,
                    });
                }
            }
        }
        Ok(rows)
    }
    .await;
    bench.close().await;
    result
}

/// A database and the conversation core, without the HTTP server.
struct Bench {
    settings: Settings,
    db: Db,
    realtime: Realtime,
    clock: Clock,
    scratch: Option<PathBuf>,
}

impl Bench {
    async fn open(mut settings: Settings, scratch: bool) -> anyhow::Result<Self> {
        let scratch = if scratch {
            let dir = std::env::temp_dir().join(format!("adam-eval-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir)?;
            settings.database.url = format!("sqlite://{}", dir.join("eval.db").display());
            if settings.knowledge.vector_store != "pinecone" {
                settings.knowledge.vector_store = "auto".into();
            }
            Some(dir)
        } else {
            None
        };
        let db = Db::connect(&settings.database).await?;
        db.migrate().await?;
        let clock = Clock::system();
        let registry = prometheus::Registry::new();
        // Its outbox worker never runs: an evaluation sends no email.
        let mailer = crate::email::Mailer::new(
            &settings.email,
            &crate::email::Site::of(&settings),
            db.clone(),
            clock.clone(),
            &registry,
        )?;
        let realtime =
            crate::startup::start_realtime(&settings, &db, &clock, &mailer, &registry, None)
                .await?;
        Ok(Self {
            settings,
            db,
            realtime,
            clock,
            scratch,
        })
    }

    async fn close(self) {
        self.realtime.stop();
        self.db.close().await;
        if let Some(dir) = self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// A new dealership named `name` with the documents of `dir`, once they are indexed.
    async fn ingest(&self, name: &str, dir: &Path) -> anyhow::Result<(Dealership, usize)> {
        let d = dealerships::insert(
            &self.db,
            NewDealership {
                name: name.into(),
                allowed_origins: "[]".into(),
                persona: dealerships::DEFAULT_PERSONA.into(),
                voice: "default".into(),
                avatar: "{}".into(),
                lead_email: None,
            },
            self.clock.now(),
        )
        .await?;
        let n = self.realtime.knowledge.ingest_folder(&d.id, dir).await?;
        anyhow::ensure!(n > 0, "no documents in {}", dir.display());
        let chunks = self.indexed(&d).await?;
        Ok((d, chunks))
    }

    async fn existing(&self, key: &str) -> anyhow::Result<(Dealership, usize)> {
        let d = match dealerships::get(&self.db, Tenant::All, key).await? {
            Some(d) => d,
            None => dealerships::find_by_name(&self.db, key)
                .await?
                .with_context(|| format!("no dealership with id or name `{key}`"))?,
        };
        let chunks = self.indexed(&d).await?;
        Ok((d, chunks))
    }

    /// Waits for the dealership's queued documents; the number of chunks indexed.
    async fn indexed(&self, dealership: &Dealership) -> anyhow::Result<usize> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let docs = documents::list(&self.db, Tenant::Only(&dealership.id)).await?;
            if docs
                .iter()
                .all(|d| d.status == "ready" || d.status == "failed")
            {
                for d in docs.iter().filter(|d| d.status == "failed") {
                    tracing::warn!(file = %d.filename, reason = ?d.error, "document failed");
                }
                return Ok(docs
                    .iter()
                    .map(|d| d.chunk_count.max(0) as usize)
                    .sum::<usize>());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "ingestion did not finish in 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The questions as the STT hears them spoken by espeak-ng (facts unchanged), biased
    /// with the dealership's `vocabulary` as a session is.
    async fn hear(
        &self,
        questions: &[Question],
        vocabulary: &adam_actors::ports::Vocabulary,
    ) -> anyhow::Result<Vec<Question>> {
        let stt = &self.realtime.shared.providers.stt;
        let mut heard = Vec::with_capacity(questions.len());
        for q in questions {
            let text = q.question.clone();
            let audio = tokio::task::spawn_blocking(move || speak(&text)).await??;
            let (partial, _) = tokio::sync::mpsc::channel(64);
            let transcript = stt
                .transcribe(
                    SttRequest {
                        audio: audio.into(),
                        sample_rate: 16_000,
                        vocabulary: vocabulary.clone(),
                    },
                    partial,
                    CancellationToken::new(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("transcribing `{}`: {e}", q.question))?;
            heard.push(Question {
                question: transcript.trim().to_owned(),
                ..q.clone()
            });
        }
        Ok(heard)
    }

    async fn ask(
        &self,
        dealership: &Dealership,
        chunks: usize,
        questions: &[Question],
    ) -> anyhow::Result<Report> {
        let mut outcomes = Vec::with_capacity(questions.len());
        for q in questions {
            outcomes.push(self.ask_one(dealership, q).await?);
        }
        Ok(summarise(outcomes, chunks))
    }

    async fn ask_one(&self, dealership: &Dealership, q: &Question) -> anyhow::Result<Outcome> {
        let asked = crate::knowledge::ask::ask(
            &self.realtime.shared.providers,
            &dealership.id,
            &dealership.persona,
            &dealership.timezone,
            &q.question,
            self.settings.knowledge.top_k,
            self.settings.knowledge.top_k.max(3),
        )
        .await
        .map_err(|e| anyhow::anyhow!("asking `{}`: {e}", q.question))?;
        let rank = asked
            .passages
            .iter()
            .position(|p| holds(&format!("{}\n{}", p.title, p.text), &q.expect))
            .map(|i| i + 1);
        let from_documents = asked.usage.cited.as_ref().is_none_or(|c| !c.is_empty());
        let correct = if q.unanswerable {
            !from_documents
        } else {
            holds(&asked.answer, &q.expect)
        };
        Ok(Outcome {
            question: q.question.clone(),
            kind: q.kind.clone(),
            unanswerable: q.unanswerable,
            rank,
            answer: asked.answer,
            from_documents,
            correct,
            search_us: asked.search_us,
            answer_us: asked.answer_us,
            passages: asked
                .passages
                .iter()
                .map(|p| format!("{} [{:.2}]: {}", p.title, p.score, p.text))
                .collect(),
        })
    }
}

/// espeak-ng's English voice (the one Adam speaks with) saying `text`, as 16 kHz PCM16 with some silence around.
fn speak(text: &str) -> anyhow::Result<Vec<i16>> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en", text])
        .output()
        .context("running espeak-ng (scripts/setup.sh installs it)")?;
    anyhow::ensure!(out.status.success(), "espeak-ng failed on `{text}`");
    let wav = out.stdout;
    anyhow::ensure!(wav.len() > 44, "espeak-ng wrote no audio for `{text}`");
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .context("no data chunk in espeak-ng's output")?
        + 8;
    let samples: Vec<i16> = wav
        .get(data..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut audio = vec![0_i16; 3_200];
    audio.extend(adam_actors::audio::Resampler::new(rate, 16_000).process(&samples));
    audio.extend(std::iter::repeat_n(0_i16, 3_200));
    Ok(audio)
}

fn summarise(outcomes: Vec<Outcome>, chunks: usize) -> Report {
    let answerable: Vec<&Outcome> = outcomes.iter().filter(|o| !o.unanswerable).collect();
    let unanswerable: Vec<&Outcome> = outcomes.iter().filter(|o| o.unanswerable).collect();
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let sorted = |f: fn(&Outcome) -> u64| {
        let mut v: Vec<u64> = outcomes.iter().map(f).collect();
        v.sort_unstable();
        v
    };
    let search = sorted(|o| o.search_us);
    let answer = sorted(|o| o.answer_us);
    Report {
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
        unanswerable: unanswerable.len(),
        unanswerable_correct: share(
            unanswerable.iter().filter(|o| o.correct).count(),
            unanswerable.len(),
        ),
        invented: unanswerable.iter().filter(|o| o.from_documents).count(),
        chunks,
        search_p50_us: percentile(&search, 0.50),
        search_p99_us: percentile(&search, 0.99),
        answer_p99_us: percentile(&answer, 0.99),
        outcomes,
    }
}

/// Words of `text` as compared for the word error rate: both sides in their spoken form
/// (so "$49" and "forty-nine dollars", "7:30 AM" and "seven thirty a.m." are the same
/// words), lower case, without punctuation.
fn spoken_words(text: &str) -> Vec<String> {
    adam_actors::speech_text::for_speech(text)
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word errors (substitutions, insertions, deletions) of `heard` against `said`, and the
/// words of `said`.
pub fn word_errors(said: &str, heard: &str) -> (usize, usize) {
    let (r, h) = (spoken_words(said), spoken_words(heard));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(rw != hw));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    (row[h.len()], r.len())
}

/// The totals of several reports (the corpus's per-split total).
pub fn combine<'a>(reports: impl IntoIterator<Item = &'a Report>) -> Report {
    let mut outcomes = Vec::new();
    let mut chunks = 0;
    for r in reports {
        outcomes.extend(r.outcomes.iter().cloned());
        chunks += r.chunks;
    }
    summarise(outcomes, chunks)
}

/// The corpus report as a table: one line per dealership and split, the totals per split,
/// then answers correct per kind of question and split.
pub fn corpus_table(rows: &[CorpusRow]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<22} {:<15} {:>10} {:>7} {:>7} {:>8} {:>11} {:>8} {:>12}",
        "dealership",
        "split",
        "answerable",
        "hit@1",
        "hit@3",
        "correct",
        "unanswer.",
        "invented",
        "p99 ans. ms"
    );
    let line = |out: &mut String, name: &str, split: &str, r: &Report| {
        let _ = writeln!(
            out,
            "{:<22} {:<15} {:>10} {:>6.1}% {:>6.1}% {:>7.1}% {:>4} {:>5.1}% {:>8} {:>12.1}",
            name,
            split,
            r.answerable,
            r.hit_at_1 * 100.0,
            r.hit_at_3 * 100.0,
            r.answer_correct * 100.0,
            r.unanswerable,
            r.unanswerable_correct * 100.0,
            r.invented,
            r.answer_p99_us as f64 / 1000.0
        );
    };
    for row in rows {
        line(
            &mut out,
            &row.dealership,
            &format!("{} {}", row.split, row.mode),
            &row.report,
        );
    }
    let mut splits: Vec<(String, String)> = Vec::new();
    for row in rows {
        let key = (row.split.clone(), row.mode.clone());
        if !splits.contains(&key) {
            splits.push(key);
        }
    }
    for (split, mode) in &splits {
        let total = combine(
            rows.iter()
                .filter(|r| &r.split == split && &r.mode == mode)
                .map(|r| &r.report),
        );
        line(&mut out, "ALL", &format!("{split} {mode}"), &total);
    }
    let mut kinds: Vec<String> = rows
        .iter()
        .flat_map(|r| r.report.outcomes.iter())
        .map(|o| o.kind.clone().unwrap_or_else(|| "-".into()))
        .collect();
    kinds.sort();
    kinds.dedup();
    let _ = write!(out, "\ncorrect by kind:");
    for (split, mode) in &splits {
        let _ = write!(out, "\n  {:<15}", format!("{split} {mode}"));
        for kind in &kinds {
            let of_kind: Vec<&Outcome> = rows
                .iter()
                .filter(|r| &r.split == split && &r.mode == mode)
                .flat_map(|r| r.report.outcomes.iter())
                .filter(|o| o.kind.as_deref().unwrap_or("-") == kind)
                .collect();
            if !of_kind.is_empty() {
                let ok = of_kind.iter().filter(|o| o.correct).count();
                let _ = write!(out, " {kind} {ok}/{}", of_kind.len());
            }
        }
    }
    let spoken: Vec<&CorpusRow> = rows
        .iter()
        .filter(|r| r.question_errors.is_some())
        .collect();
    if !spoken.is_empty() {
        let _ = write!(out, "\n\nspoken questions, word error rate:");
        let (mut errors, mut words) = (0, 0);
        for row in spoken {
            let (e, n) = row.question_errors.unwrap_or_default();
            errors += e;
            words += n;
            let _ = write!(
                out,
                "\n  {:<22} {:<8} {:>5.1}% ({e}/{n})",
                row.dealership,
                row.split,
                100.0 * e as f64 / n.max(1) as f64
            );
        }
        let _ = write!(
            out,
            "\n  {:<22} {:<8} {:>5.1}% ({errors}/{words})",
            "ALL",
            "",
            100.0 * errors as f64 / words.max(1) as f64
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_match_case_and_spacing_insensitively() {
        let facts: Vec<Fact> = vec!["49 dollars".into(), "45  minutes".into()];
        assert!(holds(
            "An oil change costs 49 Dollars and takes 45 minutes.",
            &facts
        ));
        assert!(!holds("An oil change costs 49 dollars.", &facts));
        assert!(!holds("anything", &[]), "no facts: nothing to hold");
        assert_eq!(percentile(&[1, 2, 3, 4, 100], 0.5), 3);
        assert_eq!(percentile(&[1, 2, 3, 4, 100], 0.99), 100);
    }

    #[test]
    fn word_errors_compare_spoken_forms() {
        assert_eq!(
            word_errors(
                "Is an oil change $49?",
                "is an oil change forty-nine dollars"
            ),
            (0, 7)
        );
        assert_eq!(
            word_errors("Do you have the Aurora?", "do you have the or more the"),
            (3, 5)
        );
        assert_eq!(word_errors("", "hello"), (1, 0));
    }

    #[test]
    fn a_fact_with_several_forms_is_held_by_any_one() {
        let facts: Vec<Fact> = serde_json::from_str(
            r#"[["closed on weekends", "closed Saturday and Sunday"], "body shop"]"#,
        )
        .expect("facts");
        assert!(holds(
            "The body shop is closed Saturday and Sunday.",
            &facts
        ));
        assert!(holds("The body shop is closed on weekends.", &facts));
        assert!(!holds("The body shop is open on Saturday.", &facts));
    }

    #[test]
    fn unanswerable_questions_answered_from_documents_count_as_invented() {
        let outcome = |unanswerable, from_documents, correct| Outcome {
            question: "q".into(),
            kind: None,
            unanswerable,
            rank: None,
            answer: String::new(),
            from_documents,
            correct,
            search_us: 1,
            answer_us: 2,
            passages: Vec::new(),
        };
        let r = summarise(
            vec![
                outcome(true, true, false),
                outcome(true, false, true),
                outcome(false, true, true),
            ],
            3,
        );
        assert_eq!((r.answerable, r.unanswerable, r.invented), (1, 2, 1));
        assert!((r.unanswerable_correct - 0.5).abs() < 1e-9);
        assert!((r.answer_correct - 1.0).abs() < 1e-9);
    }
}
