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
            min_passage_score: 0.25,
            min_sentence_score: 0.45,
            second_sentence_margin: 0.06,
            rephrase: false,
            small_talk_by_model: false,
            unknown_reply: "I'm sorry, I don't have that information. Would you like me to pass \
                            your question to our staff?"
                .into(),
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

    /// Decides what to say (no generation).
    pub async fn plan(
        &self,
        request: &AnswerRequest,
        cancel: &CancellationToken,
    ) -> Result<Plan, ProviderError> {
        let question = request.question.trim();
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
        let candidates: Vec<(usize, String)> = request
            .passages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.score >= self.config.min_passage_score)
            .flat_map(|(i, p)| sentences(&p.text).into_iter().map(move |s| (i, s)))
            .collect();
        if candidates.is_empty() {
            return Ok(Plan::Unknown);
        }
        let texts: Vec<String> = candidates.iter().map(|(_, s)| s.clone()).collect();
        // A follow-up ("and on Sunday?") is searched with the question before it; its own
        // words still weigh most in choosing the sentence.
        let query = request.search_query.trim();
        let query = if query.is_empty() { question } else { query };
        let mut all = vec![query.to_owned()];
        all.extend(texts.iter().cloned());
        let vectors = self.vectors(all, cancel).await?;
        let (q, sentence_vectors) = vectors.split_first().ok_or(ProviderError::Unavailable(
            "embedder returned nothing".into(),
        ))?;
        let keys = content_words(question);
        let context: HashSet<String> = content_words(query)
            .into_iter()
            .filter(|w| !keys.contains(w))
            .collect();
        // In a follow-up the customer's new words say what changed ("Sunday" instead of
        // "Saturday"), so a sentence must hold them to win over one that only matches the
        // earlier question.
        let own_weight = if context.is_empty() { 0.3 } else { 0.6 };
        // A question word found in few candidate sentences ("Sunday") tells more than one
        // found in many ("open").
        let stems: Vec<HashSet<String>> = candidates
            .iter()
            .map(|(_, s)| words(s).iter().map(|w| stem(w).to_owned()).collect())
            .collect();
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
            keys.iter()
                .filter(|k| sentence.contains(*k))
                .map(|k| weights.get(k.as_str()).copied().unwrap_or(0.0))
                .sum::<f32>()
                / total
        };
        let mut scored: Vec<(f32, usize)> = sentence_vectors
            .iter()
            .zip(&candidates)
            .enumerate()
            .map(|(i, (v, _))| {
                let score = cosine(q, v)
                    + own_weight * weighted(&stems[i])
                    + 0.15 * overlap(&context, &stems[i]);
                (score, i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let Some(&(best_score, best)) = scored.first() else {
            return Ok(Plan::Unknown);
        };
        if best_score < self.config.min_sentence_score {
            return Ok(Plan::Unknown);
        }
        let passage = candidates[best].0;
        if !names_are_covered(question, &request.passages[passage].text, &request.persona) {
            return Ok(Plan::Unknown);
        }
        let mut chosen = vec![best];
        if let Some(&(score, second)) = scored
            .iter()
            .skip(1)
            .find(|(_, i)| candidates[*i].0 == passage)
            && score >= best_score - self.config.second_sentence_margin
            && score >= self.config.min_sentence_score
        {
            chosen.push(second);
        }
        // Keep the document's order.
        chosen.sort_unstable();
        Ok(Plan::Facts {
            sentences: chosen.iter().map(|&i| candidates[i].1.clone()).collect(),
            passages: vec![passage],
        })
    }

    /// Vectors for `texts`, document sentences through a cache.
    async fn vectors(
        &self,
        texts: Vec<String>,
        cancel: &CancellationToken,
    ) -> Result<Vec<Arc<Vec<f32>>>, ProviderError> {
        let mut out: Vec<Option<Arc<Vec<f32>>>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if i == 0 {
                    None
                } else {
                    self.sentence_vectors.get(t)
                }
            })
            .collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        let computed = self
            .embedder
            .embed(
                missing.iter().map(|&i| texts[i].clone()).collect(),
                cancel.clone(),
            )
            .await?;
        for (&i, v) in missing.iter().zip(computed) {
            let v = Arc::new(v);
            if i > 0 {
                self.sentence_vectors.insert(texts[i].clone(), v.clone());
            }
            out[i] = Some(v);
        }
        out.into_iter()
            .map(|v| {
                v.ok_or(ProviderError::Unavailable(
                    "embedder returned too few".into(),
                ))
            })
            .collect()
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
        (speakable(&text), usage)
    }
}

impl AnswerEngine for GroundedEngine {
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

const STOP: &[&str] = &[
    "a", "about", "an", "and", "are", "at", "be", "can", "could", "do", "does", "for", "from",
    "get", "have", "how", "i", "if", "in", "is", "it", "its", "me", "much", "my", "of", "on", "or",
    "our", "please", "should", "tell", "that", "the", "there", "this", "to", "us", "was", "we",
    "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your", "many",
    "any", "some", "know", "like", "want", "need", "am", "did",
];

/// Lower-case words without punctuation (keeps `$`, `:` and `.` inside numbers).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '?' | '!' | '"' | '(' | ')'))
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '$')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn stem(w: &str) -> &str {
    w.strip_suffix("'s")
        .or_else(|| w.strip_suffix("es").filter(|s| s.len() > 3))
        .or_else(|| w.strip_suffix('s').filter(|s| s.len() > 2))
        .unwrap_or(w)
}

/// The question's content words, stemmed.
fn content_words(question: &str) -> HashSet<String> {
    words(question)
        .iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| stem(w).to_owned())
        .collect()
}

/// Share of `keys` among a sentence's word stems.
fn overlap(keys: &HashSet<String>, sentence: &HashSet<String>) -> f32 {
    if keys.is_empty() {
        return 0.0;
    }
    keys.iter().filter(|k| sentence.contains(*k)).count() as f32 / keys.len() as f32
}

/// Names and numbers in the question (capitalised words after the first, and words with
/// digits) that the passage must contain for a document answer to be about them.
fn names_are_covered(question: &str, passage: &str, persona: &str) -> bool {
    let passage: HashSet<String> = words(passage).iter().map(|w| stem(w).to_owned()).collect();
    let persona: HashSet<String> = words(persona).into_iter().collect();
    let mut first = true;
    for raw in question.split_whitespace() {
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let is_first = std::mem::replace(&mut first, raw.ends_with(['.', '?', '!']));
        if w.is_empty() || w == "I" || w.starts_with("I'") {
            continue;
        }
        let named = !is_first && w.chars().next().is_some_and(char::is_uppercase);
        let numeric = w.chars().any(|c| c.is_ascii_digit());
        if !(named || numeric) {
            continue;
        }
        let lw = w.to_lowercase();
        if persona.contains(&lw) || WEEKDAYS.contains(&lw.as_str()) && !numeric {
            continue;
        }
        if !passage.contains(stem(&lw)) && !passage.contains(&lw) {
            return false;
        }
    }
    true
}

/// Days are asked about ("open on Sunday?") without being names of things the passage
/// must mention; the meaning score already handles them.
const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
];

/// Recognises greetings, thanks, farewells and questions about the assistant.
pub fn small_talk(question: &str) -> Option<SmallTalk> {
    let w = words(question);
    let text = w.join(" ");
    let starts = |p: &[&str]| {
        p.iter()
            .any(|p| text == *p || text.starts_with(&format!("{p} ")))
    };
    let has = |p: &[&str]| p.iter().any(|p| text.contains(p));
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
    let have: HashSet<String> = words(source).iter().map(|w| stem(w).to_owned()).collect();
    let mut first = true;
    !reply.trim().is_empty()
        && reply.split_whitespace().all(|raw| {
            let w = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '$');
            let is_first = std::mem::replace(&mut first, raw.ends_with(['.', '?', '!']));
            let numeric = w.chars().any(|c| c.is_ascii_digit());
            let named = !is_first && w != "I" && w.chars().next().is_some_and(char::is_uppercase);
            !(numeric || named) || have.contains(stem(&w.to_lowercase()))
        })
}

/// Splits a passage into sentences: at `.`, `!` or `?` followed by a capital or digit
/// (not after a common abbreviation), and at line breaks (lists, headings).
pub fn sentences(text: &str) -> Vec<String> {
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "no", "approx",
        "inc", "jr", "sr", "ave",
    ];
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches(['#', '-', '*', '•']).trim();
        if line.is_empty() {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut start = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let at_end = i + 2 < chars.len()
                && matches!(c, '.' | '!' | '?')
                && chars[i + 1] == ' '
                && (chars[i + 2].is_uppercase() || chars[i + 2].is_ascii_digit());
            if at_end {
                let word: String = chars[start..i]
                    .iter()
                    .rev()
                    .take_while(|c| !c.is_whitespace())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<String>()
                    .to_lowercase();
                if c != '.' || !ABBREVIATIONS.contains(&word.as_str()) {
                    out.push(
                        chars[start..=i]
                            .iter()
                            .collect::<String>()
                            .trim()
                            .to_owned(),
                    );
                    start = i + 2;
                }
            }
            i += 1;
        }
        let rest: String = chars[start..].iter().collect::<String>().trim().to_owned();
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out.retain(|s| s.chars().any(char::is_alphanumeric));
    out
}

/// Text as it should be spoken: list markers and Markdown emphasis removed, a final stop.
fn speakable(text: &str) -> String {
    let mut t: String = text
        .chars()
        .filter(|c| !matches!(c, '*' | '_' | '#' | '`'))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if !t.ends_with(['.', '!', '?']) {
        t.push('.');
    }
    t
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
    fn splits_sentences_but_not_abbreviations_or_prices() {
        let s = sentences(
            "Service: Monday to Friday 7:30 a.m. to 6 p.m. Saturday 8 to 2.\n- Oil change $49.95. Includes a filter!",
        );
        assert_eq!(
            s,
            [
                "Service: Monday to Friday 7:30 a.m. to 6 p.m. Saturday 8 to 2.",
                "Oil change $49.95.",
                "Includes a filter!"
            ]
        );
    }

    #[test]
    fn recognises_small_talk_and_not_questions() {
        assert_eq!(small_talk("Hello there!"), Some(SmallTalk::Greeting));
        assert_eq!(small_talk("Thanks a lot."), Some(SmallTalk::Thanks));
        assert_eq!(small_talk("Who are you?"), Some(SmallTalk::Identity));
        assert_eq!(small_talk("Goodbye."), Some(SmallTalk::Farewell));
        assert_eq!(small_talk("How much is an oil change?"), None);
        assert_eq!(
            small_talk("Hi, when do you open on Saturday?"),
            Some(SmallTalk::Greeting)
        );
    }

    #[test]
    fn names_and_numbers_must_be_in_the_passage() {
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

    #[test]
    fn speakable_text_ends_with_a_stop() {
        assert_eq!(speakable("**Oil change**  $49.95"), "Oil change $49.95.");
    }
}
