//! Answer units: what can be spoken from the retrieved passages, each with the text it is
//! matched by. A unit is one sentence of a passage and the sentences that belong with it:
//! the one before when it opens with a pronoun ("It is closed on weekends."), the one
//! after when that continues it or when it alone says too little ("Yes."), and the list
//! items after a lead-in ending in a colon. An FAQ answer is matched by its question
//! (a "Q:" line, a sentence ending in "?", or a heading that is a question) and spoken
//! without it; a sentence under a heading is matched with the heading ("Body shop: …").

use adam_actors::ports::Passage;

use super::text::sentences;

/// One thing that can be said.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The passage it comes from (index in the request).
    pub passage: usize,
    /// Its first and last sentence in the passage (inclusive).
    pub first: usize,
    /// See `first`.
    pub last: usize,
    /// The sentences to speak, as written (FAQ markers removed).
    pub spoken: Vec<String>,
    /// What the question is matched against: the FAQ question or heading, then the
    /// spoken text.
    pub matched: String,
}

impl Unit {
    /// Shares a sentence with `other`.
    pub fn overlaps(&self, other: &Unit) -> bool {
        self.passage == other.passage && self.first <= other.last && other.first <= self.last
    }

    /// A table row ("Label — Column: value; Column: value."): names and numbers asked
    /// about must be in the row itself.
    pub fn is_record(&self) -> bool {
        self.spoken.len() == 1
            && self.spoken[0].contains(" — ")
            && self.spoken[0].matches(": ").count() >= 2
    }

    /// The spoken text in one string.
    pub fn speak(&self) -> String {
        self.spoken.join(" ")
    }
}

/// Words that make a sentence lean on the one before it.
const LEANS_BACK: &[&str] = &[
    "it", "it's", "its", "they", "they're", "their", "them", "this", "that", "these", "those",
    "he", "she", "his", "her", "both", "there", "then",
];

/// Words that make a sentence continue the one before it.
const CONTINUES: &[&str] = &[
    "it",
    "it's",
    "its",
    "they",
    "they're",
    "their",
    "this",
    "that",
    "these",
    "those",
    "he",
    "she",
    "both",
    "but",
    "however",
    "except",
    "otherwise",
    "also",
    "closed",
    "and",
    "or",
    "then",
    "after",
    "before",
    "on",
    "during",
    "weekends",
    "note",
    "please",
];

fn first_word(sentence: &str) -> String {
    sentence
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
        .to_lowercase()
}

/// The question of an FAQ line ("Q: Do you …?", "Do you …?"), if the sentence is one.
fn faq_question(sentence: &str) -> Option<&str> {
    let s = sentence.trim();
    for prefix in ["Q:", "Q.", "Question:", "Q -", "Q -"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return Some(rest.trim());
        }
    }
    s.ends_with('?').then_some(s)
}

/// An answer without its "A:" marker.
fn without_answer_marker(sentence: &str) -> String {
    let s = sentence.trim();
    for prefix in ["A:", "A.", "Answer:", "A -"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
    s.to_owned()
}

/// The heading part of a passage title ("faq.md — Service > Loaners?" → "Service >
/// Loaners?").
fn heading(title: &str) -> Option<&str> {
    title
        .split_once(" — ")
        .map(|(_, h)| h.trim())
        .filter(|h| !h.is_empty())
}

/// The units of every passage scoring at least `min_score`.
pub fn units(passages: &[Passage], min_score: f32) -> Vec<Unit> {
    let mut out = Vec::new();
    for (p, passage) in passages.iter().enumerate() {
        if passage.score < min_score {
            continue;
        }
        let heading = heading(&passage.title);
        let last_heading = heading.map(|h| h.rsplit(" > ").next().unwrap_or(h).trim());
        let raw = sentences(&passage.text);
        let questions: Vec<Option<&str>> = raw.iter().map(|s| faq_question(s)).collect();
        // List items: whole lines, marked as items or short and not closed like a sentence.
        let lines: Vec<bool> = raw
            .iter()
            .map(|s| {
                passage.text.lines().any(|l| {
                    let l = l.trim();
                    let bare = l.trim_start_matches(['-', '*', '•']).trim();
                    bare == s
                        && (bare.len() < l.len()
                            || !bare.ends_with(['.', '!', '?'])
                                && bare.split_whitespace().count() <= 10)
                })
            })
            .collect();
        let clean: Vec<String> = raw.iter().map(|s| without_answer_marker(s)).collect();
        // The FAQ question each sentence answers: a heading that asks starts the passage.
        let mut asked: Option<String> =
            last_heading.filter(|h| h.ends_with('?')).map(str::to_owned);
        for j in 0..raw.len() {
            if let Some(q) = questions[j] {
                asked = Some(q.to_owned());
                continue;
            }
            let is_answer = |k: usize| k < raw.len() && questions[k].is_none();
            let mut first = j;
            if LEANS_BACK.contains(&first_word(&clean[j]).as_str()) && j > 0 && is_answer(j - 1) {
                first = j - 1;
            }
            let mut last = j;
            let words = clean[j].split_whitespace().count();
            if clean[j].trim_end().ends_with(':') {
                // A lead-in: the list after it.
                while last + 1 < raw.len() && is_answer(last + 1) && lines[last + 1] && last - j < 8
                {
                    last += 1;
                }
            } else if is_answer(j + 1)
                && (words < 4 && !clean[j].contains(':')
                    || CONTINUES.contains(&first_word(&clean[j + 1]).as_str()))
            {
                last = j + 1;
            }
            let mut spoken: Vec<String> = clean[first..=last].to_vec();
            if clean[j].trim_end().ends_with(':') && last > j {
                // List items are read as a list: "a, b, c."
                let items = spoken.len() - 1;
                for (n, item) in spoken.iter_mut().skip(1).enumerate() {
                    let bare = item.trim_end_matches(['.', ',', ';']).to_owned();
                    *item = if n + 1 == items {
                        format!("{bare}.")
                    } else {
                        format!("{bare},")
                    };
                }
            }
            let said = spoken.join(" ");
            let matched = match (&asked, last_heading) {
                (Some(q), _) => format!("{q} {said}"),
                (None, Some(h)) => format!("{h}: {said}"),
                (None, None) => said,
            };
            // Overlapping chunks repeat sentences: each is said once, from its best passage.
            if out.iter().any(|u: &Unit| u.spoken == spoken) {
                continue;
            }
            out.push(Unit {
                passage: p,
                first,
                last,
                spoken,
                matched,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(title: &str, text: &str) -> Passage {
        Passage {
            document_id: "d".into(),
            title: title.into(),
            text: text.into(),
            score: 0.6,
            page: None,
        }
    }

    fn spoken_of(units: &[Unit], starting: &str) -> String {
        units
            .iter()
            .find(|u| u.spoken[0].starts_with(starting) || u.speak().contains(starting))
            .map(Unit::speak)
            .unwrap_or_default()
    }

    #[test]
    fn a_sentence_opening_with_a_pronoun_brings_the_one_it_leans_on() {
        let u = units(
            &[passage(
                "visit.docx — Collision centre",
                "The collision centre repairs dents Monday to Friday, 8 to 4. It is closed on weekends. Estimates are free.",
            )],
            0.0,
        );
        let unit = u
            .iter()
            .find(|u| u.spoken.iter().any(|s| s.starts_with("It is closed")))
            .expect("unit");
        assert_eq!(
            unit.speak(),
            "The collision centre repairs dents Monday to Friday, 8 to 4. It is closed on weekends."
        );
        assert!(unit.matched.starts_with("Collision centre: "));
        // The first sentence carries its continuation too.
        assert_eq!(u[0].spoken.len(), 2);
        // A sentence that does not continue stays alone.
        assert_eq!(spoken_of(&u, "Estimates"), "Estimates are free.");
    }

    #[test]
    fn an_faq_answer_is_matched_by_its_question_and_spoken_without_it() {
        let u = units(
            &[passage(
                "faq.md",
                "Q: Can I wait while my car is serviced?\nA: Yes. Our lounge has coffee and Wi-Fi.\nQ: Do you rent cars?\nA: We do not rent cars.",
            )],
            0.0,
        );
        assert!(u.iter().all(|u| !u.speak().contains('?')), "{u:?}");
        assert_eq!(u[0].speak(), "Yes. Our lounge has coffee and Wi-Fi.");
        assert!(
            u[0].matched
                .starts_with("Can I wait while my car is serviced?")
        );
        let rent = u
            .iter()
            .find(|u| u.speak() == "We do not rent cars.")
            .expect("rent");
        assert!(rent.matched.starts_with("Do you rent cars?"));
    }

    #[test]
    fn a_heading_that_asks_is_the_question_of_its_answer() {
        let u = units(
            &[passage(
                "faq.md — FAQ > Is there a shuttle?",
                "A free shuttle runs within five miles of the dealership.",
            )],
            0.0,
        );
        assert_eq!(
            u[0].matched,
            "Is there a shuttle? A free shuttle runs within five miles of the dealership."
        );
    }

    #[test]
    fn a_lead_in_keeps_its_list() {
        let u = units(
            &[passage(
                "prices.md — Service",
                "Every visit includes the following:\n- a multi-point check\n- a car wash\n- tyre pressure top-up\nPrices exclude tax.",
            )],
            0.0,
        );
        assert_eq!(
            u[0].speak(),
            "Every visit includes the following: a multi-point check, a car wash, tyre pressure top-up."
        );
    }
}
