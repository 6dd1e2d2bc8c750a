//! The grounded answer engine: Adam's default, and the reason it never invents a fact.
//!
//! A reply is one of three kinds:
//! - **From the documents**: the retrieved passages are cut into sentences, each scored by
//!   meaning (cosine of MiniLM vectors) and by the question's words it contains; the best
//!   sentence (and a close runner-up from the same passage) is spoken as written. Names
//!   and numbers the customer asked about must appear in that passage, so "the Tesla"
//!   is never answered with the Civic's price.
//! - **Small talk** (greetings, thanks, "who are you"): a short reply in the persona,
//!   with no facts in it.
//! - **Not in the documents**: an honest "I don't have that information" and an offer to
//!   pass the question to staff.
//!
//! A local language model may rephrase the chosen sentences (`rephrase`), but its text is
//! only used when every number, time, price and name in it appears in the source;
//! otherwise the source sentences are spoken.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use adam_actors::ports::{
    AnswerEngine, AnswerRequest, AnswerUsage, BoxFuture, CancellationToken, Embedder, Passage,
    ProviderError,
};
pub use adam_actors::vector::cosine;
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::llm::Generator;

pub mod question;
pub mod text;
pub mod units;

use question::Want;
pub use text::sentences;
use text::speakable;
use units::units;

/// Grounded engine settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroundedConfig {
    /// Passages scoring below this (cosine) are ignored.
    pub min_passage_score: f32,
    /// The best sentence must reach this combined score, or the answer is "I don't have
    /// that information".
    pub min_sentence_score: f32,
    /// A second sentence is added when it scores within this of the best.
    pub second_sentence_margin: f32,
    /// Added to a sentence holding the kind of fact the question asks for (an address
    /// for "where", a price for "how much" …), taken from one that does not.
    pub entity_bonus: f32,
    /// Let the local model rephrase document answers (checked against the source).
    pub rephrase: bool,
    /// Let the local model write small-talk replies (checked: no numbers). Off by default:
    /// SmolLM2-135M answered "Hello, how are you today?" with "I'm so sorry for your
    /// loss." — the fixed persona replies are better.
    pub small_talk_by_model: bool,
    /// Said when the documents do not answer.
    pub unknown_reply: String,
    /// Said to a greeting when no model is loaded.
    pub greeting_reply: String,
}

impl Default for GroundedConfig {
    fn default() -> Self {
        Self {
            // Low: lexical fusion lifts passages the vectors rank low; each sentence is
            // still scored on its own.
            min_passage_score: 0.1,
            min_sentence_score: 0.45,
            second_sentence_margin: 0.06,
            entity_bonus: 0.1,
            rephrase: false,
            small_talk_by_model: false,
            // No offer to "pass the question to staff": nothing would follow a "yes".
            unknown_reply: "I'm sorry, I don't have that information.".into(),
            greeting_reply: "Hello! How can I help you today?".into(),
        }
    }
}

/// What kind of reply a question gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Speak these sentences; `passages` are indexes into the request's passages.
    Facts {
        /// The sentences, as written in the source.
        sentences: Vec<String>,
        /// Passages they come from.
        passages: Vec<usize>,
    },
    /// A persona reply without facts.
    SmallTalk(SmallTalk),
    /// The documents do not answer.
    Unknown,
}

/// Kinds of small talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallTalk {
    /// Hello.
    Greeting,
    /// Thank you.
    Thanks,
    /// Goodbye.
    Farewell,
    /// How are you?
    WellBeing,
    /// Who are you / what can you do?
    Identity,
}

/// The engine.
pub struct GroundedEngine {
    embedder: Arc<dyn Embedder>,
    generator: Option<Arc<dyn Generator>>,
    sentence_vectors: Cache<String, Arc<Vec<f32>>>,
    config: GroundedConfig,
}

impl GroundedEngine {
    /// An engine scoring with `embedder`; `generator` (a local model) writes small talk and,
    /// when enabled, rephrases.
    pub fn new(
        embedder: Arc<dyn Embedder>,
        generator: Option<Arc<dyn Generator>>,
        config: GroundedConfig,
    ) -> Self {
        Self {
            embedder,
            generator,
            sentence_vectors: Cache::new(20_000),
            config,
        }
    }

    /// Decides what to say (no generation). Two questions joined by "and" ("who runs the
    /// body shop and what's their number?") are answered one after the other, each from
    /// the passages retrieved for both; what neither answers is left out, and only when
    /// neither does is the reply "I don't have that information".
    pub async fn plan(
        &self,
        request: &AnswerRequest,
        cancel: &CancellationToken,
    ) -> Result<Plan, ProviderError> {
        let Some((first, second)) = question::two_questions(request.question.trim()) else {
            return self.plan_one(request, &[], cancel).await;
        };
        let search_query = if request.search_query.trim().is_empty() {
            request.question.clone()
        } else {
            request.search_query.clone()
        };
        let part = |question: String| AnswerRequest {
            question,
            search_query: search_query.clone(),
            ..request.clone()
        };
        let a = self.plan_one(&part(first), &[], cancel).await?;
        // The second question asks something else: not the first one's answer again.
        let said = match &a {
            Plan::Facts { sentences, .. } => sentences.clone(),
            _ => Vec::new(),
        };
        let b = self.plan_one(&part(second), &said, cancel).await?;
        Ok(match (a, b) {
            (
                Plan::Facts {
                    mut sentences,
                    mut passages,
                },
                Plan::Facts {
                    sentences: more,
                    passages: more_passages,
                },
            ) => {
                for s in more {
                    if !sentences.contains(&s) {
                        sentences.push(s);
                    }
                }
                for p in more_passages {
                    if !passages.contains(&p) {
                        passages.push(p);
                    }
                }
                Plan::Facts {
                    sentences,
                    passages,
                }
            }
            (facts @ Plan::Facts { .. }, _) | (_, facts @ Plan::Facts { .. }) => facts,
            (first, _) => first,
        })
    }

    /// [`plan`](Self::plan) for one question; units saying only sentences of `said` are
    /// not chosen.
    async fn plan_one(
        &self,
        request: &AnswerRequest,
        said: &[String],
        cancel: &CancellationToken,
    ) -> Result<Plan, ProviderError> {
        let raw = request.question.trim();
        // "Hi, when do you open on Saturday?" is a question; "Hello!" is a greeting.
        let question = question::without_greeting(raw);
        let best_passage = request
            .passages
            .iter()
            .map(|p| p.score)
            .fold(f32::MIN, f32::max);
        if let Some(kind) = small_talk(question)
            && (best_passage < 0.5 || words(question).len() <= 4)
        {
            return Ok(Plan::SmallTalk(kind));
        }
        // Names and numbers as asked (spoken numbers as digits), and the question for
        // matching (with the other names of the days it mentions).
        let asked = question::digits_for_words(question);
        let today = question::local_today(&request.timezone);
        let question = question::normalised_on(question, Some(today));
        let units = units(&request.passages, self.config.min_passage_score);
        if units.is_empty() {
            return Ok(Plan::Unknown);
        }
        // A follow-up ("and on Sunday?") is searched with the question before it; its own
        // words still weigh most in choosing the sentence.
        let query = request.search_query.trim();
        let query = if query.is_empty() || query == raw {
            question.clone()
        } else {
            question::normalised_on(query, Some(today))
        };
        let matched: Vec<String> = units.iter().map(|u| u.matched.clone()).collect();
        let (q, unit_vectors) = self.vectors(Some(&query), &matched, cancel).await?;
        let q = q.ok_or(ProviderError::Unavailable(
            "embedder returned nothing".into(),
        ))?;
        let keys = text::content_stems(&question);
        let context: HashSet<String> = text::content_stems(&query)
            .into_iter()
            .filter(|w| !keys.contains(w))
            .collect();
        // In a follow-up the customer's new words say what changed ("Sunday" instead of
        // "Saturday"), so a sentence must hold them to win over one that only matches the
        // earlier question.
        let own_weight = if context.is_empty() { 0.3 } else { 0.6 };
        let want = Want::of(&question);
        // A sentence's words, with its passage's title and heading path ("extended
        // warranty" names the plans of a table under that heading).
        let stems: Vec<HashSet<String>> = units
            .iter()
            .map(|u| {
                text::all_stems(&format!(
                    "{} {}",
                    request.passages[u.passage].title, u.matched
                ))
            })
            .collect();
        // A question word found in few candidate sentences ("Sunday") tells more than one
        // found in many ("open").
        let weights: HashMap<&str, f32> = keys
            .iter()
            .map(|k| {
                let df = stems.iter().filter(|s| s.contains(k)).count() as f32;
                (k.as_str(), (1.0 + stems.len() as f32 / df.max(1.0)).ln())
            })
            .collect();
        let total: f32 = weights.values().sum();
        let weighted = |sentence: &HashSet<String>| {
            if total <= 0.0 {
                return 0.0;
            }
            // The customer's own word counts more than a word meaning the same ("dogs"
            // over "pets" for "can I bring my dog").
            keys.iter()
                .map(|k| {
                    let weight = weights.get(k.as_str()).copied().unwrap_or(0.0);
                    if sentence.contains(k) {
                        weight
                    } else if text::holds(sentence, k) {
                        0.6 * weight
                    } else {
                        0.0
                    }
                })
                .sum::<f32>()
                / total
        };
        // A price, a phone number, an email, a name or a count is only answered by a
        // sentence that states one; for times, places and durations that is a preference.
        let subject = subject_words(&keys);
        // Verbs the customer used ("squeaking", "dropping") say little about what the
        // documents must name.
        let verbs: HashSet<String> = text::tokens(&question)
            .iter()
            .filter(|t| t.norm.len() > 4 && (t.norm.ends_with("ing") || t.norm.ends_with("ed")))
            .map(text::Token::stem)
            .collect();
        let yes_no = question::is_yes_no(&question);
        let must_state = want.filter(|w| {
            !yes_no && w.is_required()
                || *w == Want::Address
                    && (subject.is_empty() || question.to_lowercase().contains("address"))
        });
        // The days a question about times names ("open on Saturday?"): a sentence naming
        // one of them answers it better than one about other days or dates.
        let days: HashSet<String> = if want == Some(Want::Time) {
            text::tokens(&question)
                .into_iter()
                .filter(|t| question::WEEKDAYS.contains(&t.norm.as_str()))
                .map(|t| t.norm)
                .collect()
        } else {
            HashSet::new()
        };
        let names_day = |unit: &units::Unit| {
            text::tokens(&unit.speak())
                .iter()
                .any(|t| days.contains(&t.norm))
        };
        let mut scored: Vec<(f32, usize)> = unit_vectors
            .iter()
            .zip(&units)
            .enumerate()
            .filter_map(|(i, (v, unit))| {
                if unit.spoken.iter().all(|s| said.contains(s)) {
                    return None;
                }
                // Whether the sentence states the kind of fact asked for.
                let states = want.map(|w| w.found_in(&unit.speak()));
                if must_state.is_some() && states != Some(true) {
                    return None;
                }
                Some((i, v, states))
            })
            .map(|(i, v, states)| {
                let fits = match states {
                    Some(true) => self.config.entity_bonus,
                    Some(false) => -self.config.entity_bonus,
                    None => 0.0,
                };
                let day = match (days.is_empty(), names_day(&units[i])) {
                    (true, _) => 0.0,
                    (false, true) => self.config.entity_bonus,
                    (false, false) => -self.config.entity_bonus / 2.0,
                };
                // A table row whose label the question names in full ("the long range
                // Lumen" and the row "Lumen Long Range — …") is the row asked about.
                let row = if units[i].is_record() && names_label(&units[i], &keys) {
                    self.config.entity_bonus
                } else {
                    0.0
                };
                let score = cosine(&q, v)
                    + day
                    + row
                    + own_weight * weighted(&stems[i])
                    + 0.15 * overlap(&context, &stems[i])
                    + fits;
                (score, i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        // A price, phone, email, name, count or time asked about something none of the
        // passages mention (the "transmission" of "transmission flush" beside a "coolant
        // flush" line) is not in the documents.
        let named: Vec<String> = subject
            .iter()
            .filter(|k| !verbs.contains(*k))
            .cloned()
            .collect();
        // Each passage's words (title, heading path and text), for the checks below.
        let passage_stems: Vec<HashSet<String>> = request
            .passages
            .iter()
            .map(|p| text::all_stems(&format!("{}\n{}", p.title, p.text)))
            .collect();
        let persona: HashSet<String> = words(&request.persona).into_iter().collect();
        if must_state.is_some() && !subject_is_retrieved(&named, &passage_stems) {
            tracing::debug!(question = %request.question, ?subject, "unknown: the documents do not name what is asked about");
            return Ok(Plan::Unknown);
        }
        // A sentence answers when the names and numbers asked are in its passage (in the
        // row itself for a table record: the next row is another car) and, when a fact is
        // asked for, it is about the subject: most of the subject's words for a price,
        // phone, email, name or count, one of them for a time or place.
        let answers = |i: usize| {
            let unit = &units[i];
            let covered = if unit.is_record() {
                names_are_covered(&asked, &stems[i], &persona)
            } else {
                names_are_covered(&asked, &passage_stems[unit.passage], &persona)
            };
            if !covered {
                return false;
            }
            if subject.is_empty() {
                return true;
            }
            let held = subject.iter().filter(|k| text::holds(&stems[i], k)).count();
            if must_state.is_some() || want.is_none() {
                held == subject.len()
            } else {
                held > 0
            }
        };
        // Sentences that must state a price, a phone number, an email, a name or a count
        // are already only those that do: they may score lower.
        let threshold = if must_state.is_some() {
            self.config.min_sentence_score - self.config.entity_bonus
        } else {
            self.config.min_sentence_score
        };
        // The best sentence that answers.
        let Some(&(best_score, best)) = scored
            .iter()
            .take_while(|(score, _)| *score >= threshold)
            .find(|(_, i)| answers(*i))
        else {
            tracing::debug!(
                question = %request.question,
                ?want,
                ?subject,
                best = ?scored.first().map(|(s, i)| (s, units[*i].speak())),
                "unknown: no sentence answers"
            );
            return Ok(Plan::Unknown);
        };
        let unit = &units[best];
        tracing::debug!(
            question = %request.question,
            best_score,
            candidates = ?scored
                .iter()
                .take(3)
                .map(|(s, i)| format!("{s:.3} {}", units[*i].speak()))
                .collect::<Vec<_>>(),
            "answer chosen"
        );
        let passage = unit.passage;
        let mut chosen = vec![best];
        if let Some(&(score, second)) = scored
            .iter()
            .skip(1)
            .find(|(_, i)| units[*i].passage == passage && !units[*i].overlaps(unit))
            && answers(second)
            && score >= best_score - self.config.second_sentence_margin
            && score >= threshold
        {
            chosen.push(second);
        }
        // Keep the document's order.
        chosen.sort_by_key(|&i| (units[i].passage, units[i].first));
        let mut spoken: Vec<String> = Vec::new();
        for &i in &chosen {
            for s in &units[i].spoken {
                if !spoken.contains(s) {
                    spoken.push(s.clone());
                }
            }
        }
        Ok(Plan::Facts {
            sentences: spoken,
            passages: vec![passage],
        })
    }

    /// The vectors of `sentences` through the cache (computed ones are kept), and of
    /// `query` (never kept), in one call to the embedder.
    async fn vectors(
        &self,
        query: Option<&str>,
        sentences: &[String],
        cancel: &CancellationToken,
    ) -> Result<(Option<Arc<Vec<f32>>>, Vec<Arc<Vec<f32>>>), ProviderError> {
        let mut out: Vec<Option<Arc<Vec<f32>>>> = sentences
            .iter()
            .map(|t| self.sentence_vectors.get(t))
            .collect();
        let missing: Vec<usize> = (0..sentences.len()).filter(|&i| out[i].is_none()).collect();
        let mut texts: Vec<String> = query.map(str::to_owned).into_iter().collect();
        texts.extend(missing.iter().map(|&i| sentences[i].clone()));
        if texts.is_empty() {
            return Ok((None, out.into_iter().flatten().collect()));
        }
        let mut computed = self
            .embedder
            .embed(texts, cancel.clone())
            .await?
            .into_iter();
        let too_few = || ProviderError::Unavailable("embedder returned too few".into());
        let query = match query {
            Some(_) => Some(Arc::new(computed.next().ok_or_else(too_few)?)),
            None => None,
        };
        for &i in &missing {
            let v = Arc::new(computed.next().ok_or_else(too_few)?);
            self.sentence_vectors
                .insert(sentences[i].clone(), v.clone());
            out[i] = Some(v);
        }
        let vectors = out
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(too_few)?;
        Ok((query, vectors))
    }

    /// The fixed reply to small talk: the dealership's own line from its persona when it
    /// has one (`Greeting: …`, `Thanks: …`, `Farewell: …`, `WellBeing: …`, `Identity: …`),
    /// else the built-in one.
    fn small_talk_reply(&self, kind: SmallTalk, persona: &str) -> String {
        let label = match kind {
            SmallTalk::Greeting => "greeting:",
            SmallTalk::Thanks => "thanks:",
            SmallTalk::Farewell => "farewell:",
            SmallTalk::WellBeing => "wellbeing:",
            SmallTalk::Identity => "identity:",
        };
        let own = persona.lines().find_map(|line| {
            let line = line.trim();
            line.to_lowercase()
                .starts_with(label)
                .then(|| {
                    line.get(label.len()..)
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .filter(|reply| !reply.is_empty())
        });
        own.unwrap_or_else(|| match kind {
            SmallTalk::Greeting => self.config.greeting_reply.clone(),
            SmallTalk::Thanks => {
                "You're welcome! Is there anything else I can help you with?".into()
            }
            SmallTalk::Farewell => "Thank you for calling. Have a great day!".into(),
            SmallTalk::WellBeing => {
                "I'm doing well, thank you for asking. How can I help you today?".into()
            }
            SmallTalk::Identity => "I'm the dealership's virtual assistant. I can answer \
                                    questions about our vehicles, service, hours and offers."
                .into(),
        })
    }

    /// Writes the reply for `plan`.
    async fn compose(
        &self,
        request: &AnswerRequest,
        plan: &Plan,
        cancel: &CancellationToken,
    ) -> (String, AnswerUsage) {
        let mut usage = AnswerUsage::default();
        let text = match plan {
            Plan::Unknown => self.config.unknown_reply.clone(),
            Plan::SmallTalk(kind) => {
                let fallback = self.small_talk_reply(*kind, &request.persona);
                match self
                    .generator
                    .as_ref()
                    .filter(|_| self.config.small_talk_by_model)
                {
                    Some(g) => {
                        let prompt = format!(
                            "{}\nReply to the customer in one short friendly sentence. Do not \
                             mention prices, times, numbers or any facts.",
                            request.persona
                        );
                        match g
                            .generate(&prompt, &request.question, 40, cancel.clone())
                            .await
                        {
                            Ok(reply) if acceptable_small_talk(&reply.text) => {
                                usage.prompt_tokens = reply.prompt_tokens;
                                usage.completion_tokens = reply.completion_tokens;
                                reply.text
                            }
                            _ => fallback,
                        }
                    }
                    None => fallback,
                }
            }
            Plan::Facts { sentences, .. } => {
                let source = sentences.join(" ");
                match (&self.generator, self.config.rephrase) {
                    (Some(g), true) => {
                        let prompt = format!(
                            "{}\nAnswer the customer's question in one or two short spoken \
                             sentences using only this information: {source}",
                            request.persona
                        );
                        match g
                            .generate(&prompt, &request.question, 60, cancel.clone())
                            .await
                        {
                            Ok(reply) if faithful(&reply.text, &source) => {
                                usage.prompt_tokens = reply.prompt_tokens;
                                usage.completion_tokens = reply.completion_tokens;
                                reply.text
                            }
                            _ => source,
                        }
                    }
                    _ => source,
                }
            }
        };
        usage.cited = Some(match plan {
            Plan::Facts { passages, .. } => passages.clone(),
            _ => Vec::new(),
        });
        usage.unanswered = *plan == Plan::Unknown;
        (speakable(&text), usage)
    }
}

impl AnswerEngine for GroundedEngine {
    fn prepare<'a>(&'a self, passages: Vec<Passage>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let texts: Vec<String> = units(&passages, f32::MIN)
                .into_iter()
                .map(|u| u.matched)
                .filter(|t| self.sentence_vectors.get(t).is_none())
                .collect();
            // Small batches: a live question's embedding waits behind at most one.
            for batch in texts.chunks(16) {
                if let Err(e) = self.vectors(None, batch, &CancellationToken::new()).await {
                    tracing::warn!(error = %e, "embedding a document's sentences ahead failed");
                    return;
                }
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
            let plan = self.plan(&request, &cancel).await?;
            tracing::debug!(?plan, question = %request.question, "grounded answer");
            let (text, usage) = self.compose(&request, &plan, &cancel).await;
            for piece in text.split_inclusive(' ') {
                if cancel.is_cancelled() {
                    return Err(ProviderError::Cancelled);
                }
                tokens
                    .send(piece.to_owned())
                    .await
                    .map_err(|_| ProviderError::Cancelled)?;
            }
            Ok(usage)
        })
    }
}

/// Every word of a table record's label ("Lumen Long Range" of "Lumen Long Range — Range:
/// 318 miles.") is among the question's word stems `keys`.
fn names_label(unit: &units::Unit, keys: &HashSet<String>) -> bool {
    let Some((label, _)) = unit.spoken.first().and_then(|s| s.split_once(" — ")) else {
        return false;
    };
    let label = text::content_stems(label);
    !label.is_empty() && label.iter().all(|w| keys.contains(w))
}

/// Share of `keys` among a sentence's word stems.
fn overlap(keys: &HashSet<String>, sentence: &HashSet<String>) -> f32 {
    if keys.is_empty() {
        return 0.0;
    }
    keys.iter().filter(|k| sentence.contains(*k)).count() as f32 / keys.len() as f32
}

/// Lower-case words without punctuation (keeps `$`, `:` and `.` inside numbers).
fn words(text: &str) -> Vec<String> {
    text::tokens(text).into_iter().map(|t| t.norm).collect()
}

/// Names and numbers in the question (capitalised words after the first, and words with
/// digits) that the passage (its stems) must contain for a document answer to be about
/// them; words of the persona (the dealership's own name) do not count.
fn names_are_covered(question: &str, passage: &HashSet<String>, persona: &HashSet<String>) -> bool {
    let mut first = true;
    for raw in question.split_whitespace() {
        let is_first = std::mem::replace(&mut first, raw.ends_with(['.', '?', '!']));
        let Some(token) = text::tokens(raw).into_iter().next() else {
            continue;
        };
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if w.is_empty() || w == "I" || w.starts_with("I'") {
            continue;
        }
        let named = !is_first && w.chars().next().is_some_and(char::is_uppercase);
        let numeric = token.is_number();
        if !(named || numeric) {
            continue;
        }
        let lw = token.norm.clone();
        if persona.contains(&lw) || is_calendar_word(&lw) && !numeric {
            continue;
        }
        if !passage.contains(&token.stem()) && !passage.contains(&lw) {
            return false;
        }
    }
    true
}

/// Words of a question that only say what kind of fact is wanted or are common to any
/// dealership question; the others name its subject ("transmission", "flush").
const GENERIC: &[&str] = &[
    "price",
    "cost",
    "charge",
    "fee",
    "pay",
    "much",
    "expensive",
    "cheap",
    "open",
    "close",
    "closed",
    "hours",
    "time",
    "day",
    "week",
    "today",
    "tomorrow",
    "number",
    "phone",
    "call",
    "email",
    "mail",
    "address",
    "located",
    "location",
    "where",
    "who",
    "name",
    "car",
    "vehicle",
    "auto",
    "buy",
    "sell",
    "get",
    "take",
    "bring",
    "come",
    "offer",
    "provide",
    "available",
    "have",
    "need",
    "want",
    "make",
    "dealership",
    "dealer",
    "place",
    "help",
    "question",
    "information",
    "info",
    "current",
    "long",
    "quick",
    "usual",
    "typical",
    "normal",
    "right",
    "now",
    "anyone",
    "someone",
    "somebody",
    "person",
    "reach",
    "contact",
    "talk",
    "speak",
    "find",
    "go",
    "start",
    "run",
    "cover",
    "include",
    "tell",
    "know",
    "say",
    "ask",
    "look",
    "see",
    "visit",
    "store",
    "team",
    "people",
    "work",
    "job",
    "exact",
    "total",
    "list",
    "stock",
    "lot",
    "thing",
    "kind",
    "type",
    "sort",
    "good",
    "best",
    "late",
    "early",
    "until",
    "till",
    "before",
    "after",
    "morning",
    "afternoon",
    "evening",
    "night",
    "weekday",
    "weeknight",
    "weekend",
    "holiday",
    "year",
    "month",
    "minute",
    "many",
    // "How far" asks for a distance, like "how many" for a count.
    "far",
    "set",
    "book",
    "schedule",
    "appointment",
    "way",
    "use",
    "used",
    "general",
    "department",
    "desk",
    "office",
    // Like "department": "body shop", "collision center", "parts counter".
    "shop",
    "center",
    "centre",
    "counter",
    "boss",
    "head",
    "manager",
    "direct",
    "line",
    "wait",
    "something",
    "anything",
    "please",
    "whereabouts",
    "street",
    "guys",
    "hold",
    "keep",
    "give",
    "let",
    "told",
    "us",
    "here",
    "business",
    "company",
    "firm",
];

/// Stems of the generic words and of the days and holidays.
static NOT_SUBJECT: std::sync::LazyLock<HashSet<String>> = std::sync::LazyLock::new(|| {
    GENERIC
        .iter()
        .chain(HOLIDAY_WORDS)
        .chain(question::WEEKDAYS.iter())
        .chain(question::MONTHS.iter())
        .chain(text::STOP)
        .chain(text::COMMON)
        .map(|w| text::stem(w))
        .collect()
});

/// The words of a question (stemmed) that name what it is about: not the kind of fact
/// ("price", "open"), not a day, not a word common to every dealership question.
fn subject_words(keys: &HashSet<String>) -> Vec<String> {
    keys.iter()
        .filter(|k| k.len() >= 3 && !k.chars().any(|c| c.is_ascii_digit()))
        .filter(|k| !NOT_SUBJECT.contains(k.as_str()))
        .cloned()
        .collect()
}

/// Every word naming the question's subject appears in some passage retrieved.
fn subject_is_retrieved(subject: &[String], passages: &[HashSet<String>]) -> bool {
    subject
        .iter()
        .all(|k| passages.iter().any(|p| text::holds(p, k)))
}

/// Days, months and holidays are asked about ("open on Sunday?", "on Christmas Eve?")
/// without being names of things the passage must mention; the meaning score and the
/// date normaliser handle them. Weekdays and months: [`question::is_calendar`].
const HOLIDAY_WORDS: &[&str] = &[
    "today",
    "tomorrow",
    "christmas",
    "thanksgiving",
    "easter",
    "eve",
    "day",
    "new",
    "year's",
    "independence",
    "memorial",
    "labor",
    "fourth",
    "4th",
    "weekend",
    "weekends",
    "weekday",
    "hi",
    "hello",
];

fn is_calendar_word(word: &str) -> bool {
    question::is_calendar(word) || HOLIDAY_WORDS.contains(&word)
}

/// Recognises greetings, thanks, farewells and questions about the assistant.
pub fn small_talk(question: &str) -> Option<SmallTalk> {
    let w = words(question);
    let text = w.join(" ");
    let starts = |p: &[&str]| {
        p.iter()
            .any(|p| text == *p || text.starts_with(&format!("{p} ")))
    };
    // Whole words: "what are your hours" is no "what are you".
    let padded = format!(" {text} ");
    let has = |p: &[&str]| p.iter().any(|p| padded.contains(&format!(" {p} ")));
    if has(&["thank you", "thanks", "appreciate it"]) && w.len() <= 8 {
        Some(SmallTalk::Thanks)
    } else if starts(&[
        "bye",
        "goodbye",
        "good bye",
        "see you",
        "have a good",
        "have a nice",
    ]) {
        Some(SmallTalk::Farewell)
    } else if has(&[
        "how are you",
        "how's it going",
        "how are things",
        "how do you do",
    ]) {
        Some(SmallTalk::WellBeing)
    } else if has(&[
        "who are you",
        "what are you",
        "your name",
        "are you a robot",
        "are you human",
        "are you real",
        "what can you do",
        "what can you help",
    ]) {
        Some(SmallTalk::Identity)
    } else if starts(&[
        "hi",
        "hello",
        "hey",
        "good morning",
        "good afternoon",
        "good evening",
        "greetings",
        "howdy",
    ]) {
        Some(SmallTalk::Greeting)
    } else {
        None
    }
}

/// Small talk from the model must be short and free of facts.
fn acceptable_small_talk(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.len() <= 200
        && !t
            .chars()
            .any(|c| c.is_ascii_digit() || c == '$' || c == '%')
}

/// Every number and name in `reply` appears in `source`.
pub fn faithful(reply: &str, source: &str) -> bool {
    let have = text::all_stems(source);
    let mut first = true;
    !reply.trim().is_empty()
        && reply.split_whitespace().all(|raw| {
            let is_first = std::mem::replace(&mut first, raw.ends_with(['.', '?', '!']));
            let Some(token) = text::tokens(raw).into_iter().next() else {
                return true;
            };
            let w = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '$');
            let numeric = token.is_number();
            let named = !is_first && w != "I" && w.chars().next().is_some_and(char::is_uppercase);
            !(numeric || named) || have.contains(&token.stem()) || have.contains(&token.norm)
        })
}

/// Passages used by a plan (for tests and logs).
pub fn cited<'a>(plan: &Plan, passages: &'a [Passage]) -> Vec<&'a Passage> {
    match plan {
        Plan::Facts { passages: p, .. } => p.iter().filter_map(|&i| passages.get(i)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_small_talk_and_not_questions() {
        assert_eq!(small_talk("Hello there!"), Some(SmallTalk::Greeting));
        assert_eq!(small_talk("Thanks a lot."), Some(SmallTalk::Thanks));
        assert_eq!(small_talk("Who are you?"), Some(SmallTalk::Identity));
        assert_eq!(small_talk("Goodbye."), Some(SmallTalk::Farewell));
        assert_eq!(small_talk("How much is an oil change?"), None);
        assert_eq!(small_talk("What are your opening hours on Saturday?"), None);
        assert_eq!(
            small_talk("Hi, when do you open on Saturday?"),
            Some(SmallTalk::Greeting)
        );
    }

    #[test]
    fn names_and_numbers_must_be_in_the_passage() {
        let names_are_covered = |question: &str, passage: &str, persona: &str| {
            super::names_are_covered(
                question,
                &text::all_stems(passage),
                &words(persona).into_iter().collect(),
            )
        };
        let p = "The 2024 Honda Civic LX starts at $24,950.";
        assert!(names_are_covered("How much is the Civic?", p, ""));
        assert!(names_are_covered("What does the 2024 Civic cost?", p, ""));
        assert!(!names_are_covered("How much is the Tesla Model 3?", p, ""));
        assert!(!names_are_covered("What does the 2019 Civic cost?", p, ""));
        assert!(names_are_covered(
            "Are you open on Sunday?",
            "We are closed Sundays.",
            ""
        ));
        assert!(names_are_covered(
            "Do you sell cars at Demo Motors?",
            p,
            "Demo Motors"
        ));
    }

    #[test]
    fn rephrasing_may_not_add_numbers_or_names() {
        let src = "Saturday service hours are 8 am to 2 pm.";
        assert!(faithful("On Saturdays we're open from 8 am to 2 pm.", src));
        assert!(!faithful("On Saturdays we're open from 9 am to 2 pm.", src));
        assert!(!faithful("Yes, Bob can see you from 8 am.", src));
    }

    #[test]
    fn a_dealership_persona_can_set_its_own_small_talk_lines() {
        struct Never;
        impl Embedder for Never {
            fn embed<'a>(
                &'a self,
                _: Vec<String>,
                _: CancellationToken,
            ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
                Box::pin(async { Err(ProviderError::Unavailable("unused".into())) })
            }
            fn dimension(&self) -> usize {
                384
            }
        }
        let engine = GroundedEngine::new(Arc::new(Never), None, GroundedConfig::default());
        let persona = "You are Emma.\nGreeting: Hi, this is Emma at Demo Motors!\nidentity:";
        assert_eq!(
            engine.small_talk_reply(SmallTalk::Greeting, persona),
            "Hi, this is Emma at Demo Motors!"
        );
        // An empty line falls back to the built-in reply.
        assert!(
            engine
                .small_talk_reply(SmallTalk::Identity, persona)
                .starts_with("I'm the dealership's virtual assistant")
        );
        assert_eq!(
            engine.small_talk_reply(SmallTalk::Greeting, ""),
            "Hello! How can I help you today?"
        );
    }
}
