//! Words and sentences of questions and passages: tokens normalised so that "Dec. 25th"
//! meets "December 25", Snowball stems so that "rotated" meets "rotation", sentence
//! splitting that keeps prices and abbreviations whole, and text made speakable.

use std::collections::HashSet;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// One word of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Lower-case, punctuation trimmed (keeps `$`, and `:`/`.`/`,` inside numbers), month
    /// abbreviations written out, ordinal suffixes dropped ("25th" → "25").
    pub norm: String,
}

impl Token {
    /// Holds a digit.
    pub fn is_number(&self) -> bool {
        self.norm.chars().any(|c| c.is_ascii_digit())
    }

    /// Its Snowball stem.
    pub fn stem(&self) -> String {
        stem(&self.norm)
    }
}

/// The Snowball (Porter 2) stem of a lower-case word; numbers are left as they are.
pub fn stem(word: &str) -> String {
    if word.chars().any(|c| c.is_ascii_digit()) {
        return word.trim_start_matches('$').replace(',', "");
    }
    let word = word.strip_suffix("'s").unwrap_or(word);
    // An adverb meets its adjective ("directly" → "direct", "weekly" → "week"); short
    // words ending in "ly" ("only", "early", "apply", "family") are left to the stemmer.
    let word = match word.strip_suffix("ly") {
        Some(base) if word.len() > 6 && !base.ends_with(['i', 'l', 'p']) => base,
        _ => word,
    };
    STEMMER.stem(word).into_owned()
}

const MONTHS: &[(&str, &str)] = &[
    ("jan", "january"),
    ("feb", "february"),
    ("apr", "april"),
    ("aug", "august"),
    ("sep", "september"),
    ("sept", "september"),
    ("oct", "october"),
    ("nov", "november"),
    ("dec", "december"),
    // Days as hours tables print them ("Mon - Fri", "Sat").
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("tues", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("thur", "thursday"),
    ("thurs", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// The tokens of `text`.
pub fn tokens(text: &str) -> Vec<Token> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, ';' | '?' | '!' | '"' | '(' | ')' | '/' | '|' | '—')
    })
    .filter_map(|w| {
        let w = w
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '$')
            .to_lowercase();
        if w.is_empty() || w == "$" {
            return None;
        }
        let w = MONTHS
            .iter()
            .find(|(short, _)| *short == w)
            .map_or(w.clone(), |(_, long)| (*long).to_owned());
        let w = ordinal_number(&w).unwrap_or(w);
        Some(Token { norm: w })
    })
    .collect()
}

/// "25th" → "25", "1st" → "1".
fn ordinal_number(w: &str) -> Option<String> {
    let digits: String = w.chars().take_while(char::is_ascii_digit).collect();
    let rest = &w[digits.len()..];
    (!digits.is_empty() && matches!(rest, "st" | "nd" | "rd" | "th")).then_some(digits)
}

/// Words that carry no content in a question.
pub const STOP: &[&str] = &[
    "a",
    "about",
    "an",
    "and",
    "are",
    "at",
    "be",
    "can",
    "could",
    "do",
    "does",
    "for",
    "from",
    "get",
    "have",
    "how",
    "i",
    "if",
    "in",
    "is",
    "it",
    "its",
    "me",
    "much",
    "my",
    "of",
    "on",
    "or",
    "our",
    "please",
    "should",
    "tell",
    "that",
    "the",
    "there",
    "this",
    "to",
    "us",
    "was",
    "we",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "many",
    "any",
    "some",
    "know",
    "like",
    "want",
    "need",
    "am",
    "did",
    "um",
    "uh",
    "so",
    "just",
    "yeah",
    "okay",
    "ok",
    "hi",
    "hello",
    "hey",
    "there's",
    "what's",
    "i'm",
    "i'd",
    "you're",
    "guys",
    "y'all",
    "by",
    "as",
    "also",
    "again",
    "still",
    "ever",
    "one",
    "up",
    "out",
    "really",
    "actually",
    "wondering",
    "curious",
    "let",
    "let's",
    "may",
    "might",
    "i've",
    "do you",
    "any",
    "im",
    "whats",
    "thanks",
    "thank",
    "go",
    "going",
    "there",
    "here",
    "they",
    "them",
    "their",
    "be",
    "been",
    "over",
    "along",
    "quick",
    "guy",
    "folks",
    "exactly",
    "sure",
    "right",
    "now",
    "currently",
];

/// Frequent English words that do not name a subject ("once", "during", "different",
/// "put", "down"): a question's subject is in its other words.
pub const COMMON: &[&str] = &[
    "after",
    "again",
    "against",
    "all",
    "almost",
    "alone",
    "already",
    "always",
    "another",
    "around",
    "away",
    "back",
    "because",
    "become",
    "been",
    "being",
    "below",
    "between",
    "both",
    "but",
    "came",
    "cannot",
    "case",
    "certain",
    "change",
    "could",
    "day",
    "did",
    "different",
    "does",
    "done",
    "down",
    "during",
    "each",
    "either",
    "else",
    "end",
    "enough",
    "even",
    "ever",
    "every",
    "few",
    "first",
    "found",
    "full",
    "gave",
    "give",
    "given",
    "got",
    "great",
    "had",
    "half",
    "hand",
    "happen",
    "has",
    "having",
    "high",
    "hold",
    "however",
    "idea",
    "instead",
    "into",
    "itself",
    "keep",
    "kept",
    "last",
    "least",
    "less",
    "little",
    "lot",
    "low",
    "made",
    "mean",
    "might",
    "mind",
    "more",
    "most",
    "must",
    "myself",
    "never",
    "next",
    "nothing",
    "off",
    "often",
    "old",
    "once",
    "only",
    "other",
    "others",
    "otherwise",
    "own",
    "part",
    "past",
    "per",
    "perhaps",
    "point",
    "possible",
    "pretty",
    "probably",
    "put",
    "quite",
    "rather",
    "real",
    "really",
    "same",
    "second",
    "seem",
    "several",
    "shall",
    "should",
    "show",
    "side",
    "since",
    "small",
    "soon",
    "still",
    "such",
    "sure",
    "than",
    "then",
    "these",
    "those",
    "though",
    "through",
    "thru",
    "together",
    "too",
    "top",
    "toward",
    "try",
    "under",
    "upon",
    "usually",
    "various",
    "very",
    "via",
    "well",
    "went",
    "were",
    "what",
    "whatever",
    "while",
    "whole",
    "whose",
    "within",
    "without",
    "yet",
    "able",
    "accept",
    "actual",
    "add",
    "allow",
    "already",
    "big",
    "brand",
    "bring",
    "certain",
    "choose",
    "clear",
    "close",
    "come",
    "consider",
    "continu",
    "decide",
    "deal",
    "differ",
    "easy",
    "especially",
    "expect",
    "fine",
    "follow",
    "free",
    "handle",
    "happy",
    "hard",
    "hear",
    "hope",
    "important",
    "interest",
    "kind",
    "large",
    "later",
    "leave",
    "like",
    "live",
    "longest",
    "lose",
    "love",
    "main",
    "matter",
    "maybe",
    "meet",
    "money",
    "move",
    "name",
    "near",
    "nice",
    "okay",
    "order",
    "pick",
    "plan",
    "prefer",
    "quick",
    "ready",
    "reason",
    "remember",
    "return",
    "send",
    "short",
    "simple",
    "soon",
    "stay",
    "sort",
    "stop",
    "thank",
    "think",
    "thought",
    "turn",
    "understand",
    "wish",
    "wonder",
    "worth",
];

/// The stemmed content words of a text (a hyphenated word as its parts: "brand-new").
pub fn content_stems(text: &str) -> HashSet<String> {
    tokens(text)
        .iter()
        .flat_map(|t| {
            if t.norm.contains('-') && !t.is_number() {
                t.norm.split('-').map(str::to_owned).collect()
            } else {
                vec![t.norm.clone()]
            }
        })
        .filter(|w| !w.is_empty() && !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// All stems of a text (for matching against content words); a hyphenated word gives its
/// parts too ("four-wheel" → "four-wheel", "four", "wheel").
pub fn all_stems(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for token in tokens(text) {
        if token.norm.contains('-') && !token.is_number() {
            out.extend(token.norm.split('-').filter(|p| !p.is_empty()).map(stem));
        }
        out.insert(token.stem());
    }
    out
}

/// Words a customer and a dealership's documents use for the same thing ("loan" and
/// "financing", "body shop" and "collision", "mechanic" and "technician").
const SYNONYMS: &[&[&str]] = &[
    &[
        "loan",
        "finance",
        "financing",
        "credit",
        "lender",
        "lending",
    ],
    &["repair", "service", "fix", "maintenance"],
    &["mechanic", "technician", "service"],
    &["van", "shuttle"],
    &["dent", "dented", "collision", "body", "bodywork", "scratch"],
    &["boss", "manager", "head", "director"],
    &["wifi", "wi-fi", "internet"],
    &[
        "salespeople",
        "salesperson",
        "salesman",
        "sales",
        "consultant",
    ],
    &["spin", "test"],
    &["car", "vehicle", "auto"],
    &["trade", "trade-in", "appraisal", "appraise"],
    &["deposit", "hold", "reserve"],
    &["warranty", "coverage", "protection"],
    &["tire", "tyre"],
    &["pet", "dog", "cat", "animal"],
    &["kid", "child", "children"],
    &["rental", "loaner", "courtesy"],
    &["used", "pre-owned", "preowned", "certified"],
    &["lease", "leasing"],
    &["inspection", "check"],
    &["ev", "electric"],
    &["mile", "mileage"],
    &["founded", "started", "founder", "opened", "established"],
    &["complain", "complaint", "care"],
    &["tow", "towing", "trailer"],
];

static SYNONYM_STEMS: LazyLock<std::collections::HashMap<String, Vec<String>>> =
    LazyLock::new(|| {
        let mut map: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for group in SYNONYMS {
            let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
            for s in &stems {
                let entry = map.entry(s.clone()).or_default();
                entry.extend(stems.iter().filter(|o| *o != s).cloned());
            }
        }
        map
    });

/// The stems that mean the same as `key` (itself not included).
pub fn synonyms(key: &str) -> &'static [String] {
    SYNONYM_STEMS.get(key).map_or(&[], Vec::as_slice)
}

/// `stems` hold `key` or a word meaning the same.
pub fn holds(stems: &HashSet<String>, key: &str) -> bool {
    stems.contains(key) || synonyms(key).iter().any(|s| stems.contains(s))
}

/// Splits a passage into sentences: at `.`, `!` or `?` followed by a capital or digit
/// (not after a common abbreviation), and at line breaks (lists, headings, table records).
pub fn sentences(text: &str) -> Vec<String> {
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "no", "approx",
        "inc", "jr", "sr", "ave", "jan", "feb", "apr", "aug", "sep", "sept", "oct", "nov", "dec",
        "rd", "blvd", "mt", "ft",
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
pub fn speakable(text: &str) -> String {
    let mut t: String = text
        .chars()
        .filter(|c| !matches!(c, '*' | '_' | '#' | '`' | '|'))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if !t.ends_with(['.', '!', '?']) {
        t.push('.');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adverbs_meet_their_adjectives_and_hours_tables_name_days() {
        assert_eq!(stem("directly"), stem("direct"));
        assert_eq!(stem("monthly"), stem("month"));
        // Short words ending in "ly" are not adverbs of a shorter word.
        assert_ne!(stem("only"), stem("on"));
        assert_ne!(stem("family"), stem("fami"));
        let days: Vec<String> = tokens("Mon - Fri, Sat")
            .into_iter()
            .map(|t| t.norm)
            .collect();
        assert_eq!(days, ["monday", "friday", "saturday"]);
    }

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
    fn tokens_meet_across_spellings_of_dates_and_word_forms() {
        let norms = |t: &str| tokens(t).into_iter().map(|t| t.norm).collect::<Vec<_>>();
        assert_eq!(norms("Closed Dec. 25th!"), ["closed", "december", "25"]);
        assert_eq!(stem("rotated"), stem("rotation"));
        assert_eq!(stem("tires"), stem("tire"));
        assert_eq!(stem("$1,249"), "1249");
        assert!(content_stems("How much is it to get my tires rotated?").contains(&stem("tire")));
    }

    #[test]
    fn speakable_text_ends_with_a_stop() {
        assert_eq!(speakable("**Oil change**  $49.95"), "Oil change $49.95.");
    }
}
