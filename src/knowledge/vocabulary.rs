//! Each dealership's vocabulary for speech recognition: the names in its indexed documents
//! (models and trims, staff, departments, streets, towns, brands) that a recognizer
//! would otherwise mishear ("Aurora" → "or more the"). The session passes it to the STT
//! (Whisper's initial prompt, Deepgram's key terms, the OpenAI transcription prompt).
//!
//! Built from the chunks of the dealership's ready documents and cached per dealership
//! with a fingerprint of those documents (count, chunks, latest change), so an upload,
//! re-index or deletion on any node is picked up at the next session start.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use adam_actors::ports::Vocabulary;
use serde::{Deserialize, Serialize};

use crate::db::{Db, documents};

/// `[vocabulary]`: recognition biasing with each dealership's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VocabularySettings {
    /// Pass the dealership's names to the speech recognizer. Off by default: on the
    /// `eval/` dev split it made Whisper tiny.en's spoken accuracy worse (25.7 % against
    /// 33.8 % correct, docs/PERFORMANCE.md "Recognition vocabulary").
    pub enabled: bool,
    /// Most terms kept per dealership, most frequent first (each STT then takes what
    /// fits its own limit: Whisper `providers.embedded.whisper.vocabulary_chars`,
    /// Deepgram 50 terms).
    pub max_terms: usize,
}

impl Default for VocabularySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            max_terms: 60,
        }
    }
}

impl VocabularySettings {
    /// Checks the values: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=500).contains(&self.max_terms) {
            return Err(("vocabulary.max_terms", "must be between 1 and 500".into()));
        }
        Ok(())
    }
}

type Fingerprint = (i64, i64, i64);

/// The vocabularies of every dealership seen, each with the fingerprint it was built from.
pub struct Vocabularies {
    db: Db,
    settings: VocabularySettings,
    cache: Mutex<HashMap<String, (Fingerprint, Vocabulary)>>,
}

impl std::fmt::Debug for Vocabularies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabularies")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Vocabularies {
    /// An empty cache over `db`.
    pub fn new(db: Db, settings: VocabularySettings) -> Self {
        Self {
            db,
            settings,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The dealership's vocabulary, rebuilt when its documents changed; empty when
    /// biasing is off. A database error is logged and gives the last known vocabulary
    /// (recognition works without one).
    pub async fn for_dealership(&self, dealership_id: &str) -> Vocabulary {
        if !self.settings.enabled {
            return Vocabulary::default();
        }
        let cached = || {
            self.cache
                .lock()
                .ok()
                .and_then(|c| c.get(dealership_id).cloned())
        };
        let fingerprint = match documents::ready_fingerprint(&self.db, dealership_id).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dealership = dealership_id, error = %e, "reading the vocabulary's documents failed");
                return cached().map(|(_, v)| v).unwrap_or_default();
            }
        };
        if let Some((seen, vocabulary)) = cached()
            && seen == fingerprint
        {
            return vocabulary;
        }
        let texts = match documents::ready_chunk_texts(&self.db, dealership_id).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(dealership = dealership_id, error = %e, "reading the vocabulary's documents failed");
                return cached().map(|(_, v)| v).unwrap_or_default();
            }
        };
        let max = self.settings.max_terms;
        let terms = tokio::task::spawn_blocking(move || {
            let all: Vec<String> = texts
                .iter()
                .flat_map(|(text, heading)| {
                    // A chunk's heading path: capitals there are style.
                    heading
                        .as_deref()
                        .map(|h| format!("# {h}"))
                        .into_iter()
                        .chain([text.clone()])
                })
                .collect();
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            extract(&all, max)
        })
        .await
        .unwrap_or_default();
        tracing::debug!(
            dealership = dealership_id,
            terms = terms.len(),
            "vocabulary built"
        );
        let vocabulary = Vocabulary::new(terms);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(dealership_id.to_owned(), (fingerprint, vocabulary.clone()));
        }
        vocabulary
    }
}

/// Capitalised words that are no names, or names every recognizer knows.
const COMMON: &[&str] = &[
    "a",
    "about",
    "after",
    "all",
    "also",
    "an",
    "and",
    "any",
    "are",
    "as",
    "ask",
    "at",
    "be",
    "because",
    "before",
    "bring",
    "but",
    "by",
    "call",
    "can",
    "come",
    "do",
    "does",
    "don't",
    "each",
    "every",
    "for",
    "free",
    "from",
    "get",
    "have",
    "he",
    "her",
    "here",
    "his",
    "how",
    "i",
    "i'm",
    "if",
    "in",
    "is",
    "it",
    "it's",
    "just",
    "let",
    "may",
    "more",
    "most",
    "my",
    "new",
    "no",
    "not",
    "note",
    "of",
    "on",
    "once",
    "one",
    "only",
    "or",
    "our",
    "out",
    "please",
    "q",
    "she",
    "so",
    "some",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "up",
    "us",
    "we",
    "we'll",
    "we're",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "yes",
    "you",
    "you'll",
    "you're",
    "your",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
    "english",
    "ok",
    "am",
    "pm",
];

/// A word of running text and whether it opens a sentence (or a heading, list item or
/// table cell), where capitals say nothing.
struct Word<'a> {
    text: &'a str,
    opens: bool,
    /// Punctuation (or a line end) right after it: no phrase runs across.
    breaks: bool,
}

/// A heading: a Markdown one, or a short line in Title Case ("Visiting Our Showroom"),
/// where capitals are style, not names.
fn heading_like(line: &str) -> bool {
    let line = line.trim();
    if line.starts_with('#') {
        return true;
    }
    let long: Vec<&str> = line
        .split_whitespace()
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .collect();
    !line.ends_with(['.', '!', '?'])
        && line.split_whitespace().count() <= 12
        && long.len() >= 2
        && long.iter().all(|w| {
            w.chars()
                .find(|c| c.is_alphabetic())
                .is_some_and(char::is_uppercase)
        })
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut out: Vec<Word<'_>> = Vec::new();
    for line in text.lines() {
        let heading = heading_like(line);
        let mut opens = true;
        for raw in line.split_whitespace() {
            if raw.chars().all(|c| !c.is_alphanumeric()) {
                opens |= raw.contains(['|', '.', '!', '?', ':', '—', '–', '-', '*', '#']);
                if let Some(w) = out.last_mut() {
                    w.breaks = true;
                }
                continue;
            }
            let trimmed = raw.trim_matches(|c: char| !c.is_alphanumeric());
            let trimmed = trimmed
                .strip_suffix("'s")
                .or_else(|| trimmed.strip_suffix("’s"))
                .unwrap_or(trimmed);
            let tail = &raw[raw
                .rfind(|c: char| c.is_alphanumeric())
                .map_or(0, |i| i + 1)..];
            let head = &raw[..raw.find(|c: char| c.is_alphanumeric()).unwrap_or(0)];
            if head.contains(['(', '"', '“', '['])
                && let Some(w) = out.last_mut()
            {
                w.breaks = true;
            }
            out.push(Word {
                text: trimmed,
                opens: opens || heading,
                breaks: !tail.is_empty() && tail != "'s",
            });
            opens = tail.contains(['.', '!', '?', ':', '|']);
        }
        if let Some(w) = out.last_mut() {
            w.breaks = true;
        }
    }
    out
}

fn is_capitalised(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase) && word.chars().any(char::is_lowercase)
}

/// A word worth teaching a recognizer when capitalised: letters (an inner digit or
/// hyphen allowed), three characters or more, not a common word.
fn name_like(word: &str) -> bool {
    word.chars().count() >= 3
        && word.chars().next().is_some_and(char::is_alphabetic)
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '\'' | '’'))
        && !COMMON.contains(&word.to_lowercase().as_str())
        // "Saturdays".
        && !COMMON.contains(&word.to_lowercase().trim_end_matches('s'))
}

/// The names of `texts`, most frequent first, at most `max_terms`: capitalised words
/// never written in lower case (and not at a sentence's start only), runs of two or three
/// such words ("Port Ellery", "Strider Summit Hybrid") seen at least twice — their words
/// then not again on their own — and mixed-case words ("eCVT", "CarPlay").
pub fn extract(texts: &[&str], max_terms: usize) -> Vec<String> {
    let mut lower: HashSet<String> = HashSet::new();
    let mut mid: HashMap<String, (usize, String)> = HashMap::new();
    let mut anywhere: HashMap<String, usize> = HashMap::new();
    let mut phrases: HashMap<String, usize> = HashMap::new();
    for text in texts {
        let ws = words(text);
        let mut run: Vec<&str> = Vec::new();
        let mut run_opens = false;
        // A run that opens a sentence counts without its first word too ("Visit
        // Seabright Harbor" is also "Seabright Harbor").
        let flush = |run: &mut Vec<&str>, opens: bool, phrases: &mut HashMap<String, usize>| {
            if (2..=3).contains(&run.len()) {
                *phrases.entry(run.join(" ")).or_default() += 1;
            }
            if opens && (3..=4).contains(&run.len()) {
                *phrases.entry(run[1..].join(" ")).or_default() += 1;
            }
            run.clear();
        };
        for w in &ws {
            let key = w.text.to_lowercase();
            let capital = is_capitalised(w.text) || is_mixed_case(w.text);
            if w.text.chars().next().is_some_and(char::is_lowercase) && !is_mixed_case(w.text) {
                lower.insert(key.clone());
            }
            if capital && name_like(w.text) {
                *anywhere.entry(key.clone()).or_default() += 1;
                if !w.opens {
                    mid.entry(key).or_insert_with(|| (0, w.text.to_owned())).0 += 1;
                }
                if run.is_empty() {
                    run_opens = w.opens;
                }
                run.push(w.text);
            } else {
                flush(&mut run, run_opens, &mut phrases);
            }
            if w.breaks {
                flush(&mut run, run_opens, &mut phrases);
            }
        }
        flush(&mut run, run_opens, &mut phrases);
    }
    let known = |word: &str| {
        let key = word.to_lowercase();
        !lower.contains(&key) && mid.contains_key(&key)
    };
    let mut scored: Vec<(usize, String)> = Vec::new();
    let mut in_phrase: HashSet<String> = HashSet::new();
    // A phrase needs one word that is only ever a name ("Seabright Harbor" although
    // "the harbor" is written too).
    for (phrase, count) in &phrases {
        if *count >= 2 && phrase.split(' ').any(known) {
            scored.push((*count, phrase.clone()));
            in_phrase.extend(phrase.split(' ').map(str::to_lowercase));
        }
    }
    for (key, (count, spelled)) in &mid {
        if !lower.contains(key) && !in_phrase.contains(key) {
            let total = anywhere.get(key).copied().unwrap_or(*count);
            scored.push((total, spelled.clone()));
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.truncate(max_terms);
    scored.into_iter().map(|(_, term)| term).collect()
}

/// "eCVT", "CarPlay": capitals after the first letter, and lower case.
fn is_mixed_case(word: &str) -> bool {
    word.chars().skip(1).any(char::is_uppercase)
        && word.chars().any(char::is_lowercase)
        && word.chars().all(|c| c.is_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAQ: &str = "\
## Visiting Our Service Department
Finding Us Is Easy
Seabright Harbor is open Saturdays. Visit Seabright Harbor by the harbor.
## Service department
Our service department is on Harbor Road in Port Ellery. Callum Whitcombe runs it.
Q: Do you service the Aurora? A: Yes, every Aurora and every Meridian sedan.
Ask Callum Whitcombe about the Meridian Sport trim. The Wi-Fi works with CarPlay.
We are near Port Ellery station. Service hours are Monday to Friday.
| Aurora LX | $27,900 |
";

    #[test]
    fn names_are_found_and_common_words_are_not() {
        let terms = extract(&[FAQ], 20);
        for expected in [
            "Port Ellery",
            "Callum Whitcombe",
            "Aurora",
            "Meridian",
            "CarPlay",
            "Seabright Harbor",
        ] {
            assert!(
                terms.iter().any(|t| t == expected),
                "{expected} in {terms:?}"
            );
        }
        for unwanted in [
            "Service",
            "Our",
            "Monday",
            "Friday",
            "Yes",
            "Ask",
            "The",
            "Callum",
            "Visiting",
            "Finding",
            "Easy",
            "Saturdays",
            "Seabright",
        ] {
            assert!(
                !terms.iter().any(|t| t == unwanted),
                "{unwanted} in {terms:?}"
            );
        }
        // Seen most: the Aurora (three times).
        assert_eq!(terms[0], "Aurora", "{terms:?}");
    }

    #[test]
    fn the_list_is_capped_and_empty_text_gives_none() {
        assert_eq!(extract(&[FAQ], 2).len(), 2);
        assert!(extract(&["", "just lower case words here."], 10).is_empty());
    }
}
