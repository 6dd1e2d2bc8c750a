//! Lexical fusion: the dense (vector) search returns more candidates than needed; they
//! are ranked again by BM25 over their own text (term statistics of the candidate set)
//! and the two rankings are fused with reciprocal rank fusion. Exact words ("test
//! drive", a stock number, a model name) then lift the passage that has them, which a
//! small embedding model often ranks below a passage of similar meaning.

use std::collections::{HashMap, HashSet};

use adam_actors::ports::Passage;
use adam_providers::grounded::question::{Want, normalised};
use adam_providers::grounded::text::{synonyms, tokens};

/// Words too common to tell passages apart.
const STOP: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
    "have", "how", "i", "if", "in", "is", "it", "me", "my", "need", "of", "on", "or", "our", "the",
    "there", "to", "what", "when", "where", "which", "who", "will", "with", "you", "your",
];

/// BM25 parameters (the usual ones).
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Reciprocal rank fusion constant.
const RRF_K: f32 = 60.0;

fn terms(text: &str) -> Vec<String> {
    tokens(text)
        .into_iter()
        .filter(|t| !STOP.contains(&t.norm.as_str()))
        // Snowball stems: "rotated" matches "rotation", "Dec." matches "December".
        .map(|t| t.stem())
        .collect()
}

/// BM25 score of each candidate for `query`, with document frequencies taken over the
/// candidates.
pub fn bm25(query: &str, candidates: &[Passage]) -> Vec<f32> {
    let docs: Vec<Vec<String>> = candidates
        .iter()
        .map(|p| terms(&format!("{} {}", p.title, p.text)))
        .collect();
    let n = docs.len() as f32;
    if docs.is_empty() {
        return Vec::new();
    }
    let average = docs.iter().map(Vec::len).sum::<usize>() as f32 / n;
    let query: HashSet<String> = terms(query).into_iter().collect();
    let df: HashMap<&str, f32> = query
        .iter()
        .map(|t| {
            let count = docs.iter().filter(|d| d.contains(t)).count() as f32;
            (t.as_str(), count)
        })
        .collect();
    docs.iter()
        .map(|doc| {
            query
                .iter()
                .map(|t| {
                    let tf = doc.iter().filter(|w| *w == t).count() as f32;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let df = df.get(t.as_str()).copied().unwrap_or(0.0);
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    let norm = K1 * (1.0 - B + B * doc.len() as f32 / average.max(1.0));
                    idf * tf * (K1 + 1.0) / (tf + norm)
                })
                .sum()
        })
        .collect()
}

/// The best `k` of `candidates` (dense order, best first) after fusing with their BM25
/// ranking (the query normalised as the answer engine sees it). Scores stay the dense
/// similarities.
pub fn fuse(query: &str, candidates: Vec<Passage>, k: usize) -> Vec<Passage> {
    // Spoken numbers as digits, a greeting dropped, holidays with their dates, and the
    // words that state the kind of fact asked for ("where" looks for an address).
    let query = normalised(query);
    let want = Want::of(&query);
    let hint = match want {
        Some(Want::Address) => " address located street road avenue drive boulevard",
        Some(Want::Phone) => " phone call number line",
        Some(Want::Email) => " email",
        Some(Want::Person) => " manager director owner founder",
        Some(Want::Price) => " price cost",
        Some(Want::Time) => " hours open closed",
        Some(Want::Distance) => " miles",
        _ => "",
    };
    let synonyms: Vec<&str> = terms(&query)
        .iter()
        .flat_map(|t| synonyms(t).iter().map(String::as_str))
        .collect();
    let lexical = bm25(
        &format!("{query}{hint} {}", synonyms.join(" ")),
        &candidates,
    );
    let mut by_lexical: Vec<usize> = (0..candidates.len())
        .filter(|&i| lexical[i] > 0.0)
        .collect();
    by_lexical.sort_by(|&a, &b| lexical[b].total_cmp(&lexical[a]));
    let mut fused: Vec<(f32, usize)> = (0..candidates.len())
        .map(|i| (1.0 / (RRF_K + i as f32 + 1.0), i))
        .collect();
    for (rank, &i) in by_lexical.iter().enumerate() {
        fused[i].0 += 1.0 / (RRF_K + rank as f32 + 1.0);
    }
    // A third ranking for a question asking where, whom, which number or which email:
    // the passages that state an address (a phone number, an email, a person with a
    // job), in the vectors' order. "Where is the dealership?" then finds the one
    // sentence with the street address, which neither the vectors nor the words rank
    // high (it shares no word with the question).
    if let Some(w) =
        want.filter(|w| matches!(w, Want::Address | Want::Phone | Want::Email | Want::Person))
    {
        let stating = (0..candidates.len())
            .filter(|&i| w.found_in(&candidates[i].text) || w.found_in(&candidates[i].title));
        for (rank, i) in stating.enumerate() {
            fused[i].0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    fused.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let keep: Vec<usize> = fused.iter().take(k).map(|&(_, i)| i).collect();
    let mut slots: Vec<Option<Passage>> = candidates.into_iter().map(Some).collect();
    keep.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str) -> Passage {
        Passage {
            document_id: text.into(),
            title: String::new(),
            text: text.into(),
            score: 0.5,
            page: None,
        }
    }

    #[test]
    fn exact_words_lift_a_passage_the_vectors_ranked_lower() {
        // Vectors put a passage with no shared word first; the words lift the one that
        // has "test", "drive" and "appointment" over it.
        let dense = vec![
            passage("Loaner cars are available for longer repairs."),
            passage("Test drives are available every day, and no appointment is needed."),
            passage("You can book a service appointment online or by phone."),
        ];
        let fused = fuse("Do I need an appointment for a test drive?", dense, 2);
        assert_eq!(
            fused[0].text,
            "Test drives are available every day, and no appointment is needed."
        );
        assert_eq!(fused.len(), 2);
        // Without any shared word the dense order stands.
        let dense = vec![passage("alpha"), passage("beta")];
        let fused = fuse("gamma", dense, 2);
        assert_eq!(fused[0].text, "alpha");
    }

    #[test]
    fn a_where_question_lifts_the_passage_stating_an_address() {
        // The address shares no word with the question; the vectors rank it last.
        let dense = vec![
            passage("Our team has served the valley for forty years."),
            passage("The shuttle runs every hour."),
            passage("Come and see us at 310 Orchard Lane, Fenwick."),
        ];
        let fused = fuse("Where exactly are you?", dense.clone(), 1);
        assert!(fused[0].text.contains("310 Orchard Lane"), "{fused:?}");
        // A question not asking where keeps the vectors' order.
        let fused = fuse("Tell me about you", dense, 1);
        assert!(fused[0].text.contains("forty years"), "{fused:?}");
    }

    #[test]
    fn rare_terms_weigh_more_than_common_ones() {
        let c = vec![
            passage("oil change oil filter"),
            passage("oil change price"),
            passage("brake pads price"),
        ];
        let s = bm25("brake price", &c);
        assert!(s[2] > s[1] && s[1] > 0.0 && s[0] == 0.0, "{s:?}");
    }
}
