//! An in-memory knowledge base: passages with their MiniLM vectors, searched exactly
//! (cosine, top-k). It serves the embedded profile until document ingestion lands, and
//! holds the knowledge files named in the configuration (shared by every dealership) plus
//! passages added per dealership.
//!
//! Markdown and text files are cut at headings and blank lines; a heading is kept as the
//! passage's title and embedded with it (it helps retrieval), but it is not part of the
//! passage text, so an answer never consists of a bare heading.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use adam_actors::ports::{
    BoxFuture, CancellationToken, Embedder, Passage, ProviderError, Retriever,
};
use adam_actors::vector::{dot, unit};

/// Passages of every dealership (`tenant` `None`) or of one.
pub struct KnowledgeBase {
    embedder: Arc<dyn Embedder>,
    entries: RwLock<HashMap<Option<String>, Vec<Entry>>>,
}

struct Entry {
    passage: Passage,
    /// Unit length, so a dot product is the cosine.
    vector: Vec<f32>,
}

impl Entry {
    fn new(passage: Passage, vector: Vec<f32>) -> Self {
        Self {
            passage,
            vector: unit(vector),
        }
    }
}

/// One piece of a document before embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Heading path.
    pub title: String,
    /// Text.
    pub text: String,
}

impl KnowledgeBase {
    /// An empty base that embeds with `embedder`.
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        Self {
            embedder,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Adds `text` (Markdown or plain) under `tenant` (`None`: every dealership); returns
    /// the number of passages.
    pub async fn add_document(
        &self,
        tenant: Option<&str>,
        document_id: &str,
        title: &str,
        text: &str,
    ) -> Result<usize, ProviderError> {
        let pieces = split_document(title, text);
        let inputs: Vec<String> = pieces
            .iter()
            .map(|p| format!("{}: {}", p.title, p.text))
            .collect();
        let vectors = self
            .embedder
            .embed(inputs, CancellationToken::new())
            .await?;
        let n = pieces.len();
        let mut entries = self
            .entries
            .write()
            .map_err(|_| ProviderError::Unavailable("knowledge base poisoned".into()))?;
        let list = entries.entry(tenant.map(str::to_owned)).or_default();
        list.retain(|e| e.passage.document_id != document_id);
        list.extend(pieces.into_iter().zip(vectors).map(|(p, vector)| {
            Entry::new(
                Passage {
                    document_id: document_id.to_owned(),
                    title: p.title,
                    text: p.text,
                    score: 0.0,
                    page: None,
                },
                vector,
            )
        }));
        Ok(n)
    }

    /// Adds passages whose vectors are already known (ingestion pipelines, benchmarks).
    pub fn insert(&self, tenant: Option<&str>, passages: Vec<(Passage, Vec<f32>)>) {
        if let Ok(mut entries) = self.entries.write() {
            entries
                .entry(tenant.map(str::to_owned))
                .or_default()
                .extend(
                    passages
                        .into_iter()
                        .map(|(passage, vector)| Entry::new(passage, vector)),
                );
        }
    }

    /// Loads a Markdown or text file for every dealership.
    pub async fn add_file(&self, path: &Path) -> Result<usize, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("knowledge file {}: {e}", path.display()))?;
        let title = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace(['-', '_'], " "))
            .unwrap_or_default();
        self.add_document(None, &path.display().to_string(), &title, &text)
            .await
            .map_err(|e| format!("knowledge file {}: {e}", path.display()))
    }

    /// Passages held for `tenant` (its own and the shared ones).
    pub fn len(&self, tenant: &str) -> usize {
        self.entries.read().map_or(0, |e| {
            e.get(&None).map_or(0, Vec::len) + e.get(&Some(tenant.to_owned())).map_or(0, Vec::len)
        })
    }

    /// True when `tenant` has no passages.
    pub fn is_empty(&self, tenant: &str) -> bool {
        self.len(tenant) == 0
    }
}

impl Retriever for KnowledgeBase {
    fn retrieve<'a>(
        &'a self,
        tenant: &'a str,
        _query: &'a str,
        embedding: &'a [f32],
        k: usize,
        _cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Passage>, ProviderError>> {
        Box::pin(async move {
            let entries = self
                .entries
                .read()
                .map_err(|_| ProviderError::Unavailable("knowledge base poisoned".into()))?;
            let own = Some(tenant.to_owned());
            let query = unit(embedding.to_vec());
            let mut scored: Vec<(f32, &Entry)> = [entries.get(&None), entries.get(&own)]
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| (dot(&query, &e.vector), e))
                .collect();
            // Only the best k need ordering.
            let by_score = |a: &(f32, &Entry), b: &(f32, &Entry)| b.0.total_cmp(&a.0);
            if scored.len() > k && k > 0 {
                scored.select_nth_unstable_by(k - 1, by_score);
                scored.truncate(k);
            }
            scored.sort_by(by_score);
            Ok(scored
                .into_iter()
                .take(k)
                .map(|(score, e)| Passage {
                    score,
                    ..e.passage.clone()
                })
                .collect())
        })
    }
}

/// Cuts a Markdown/text document into passages at headings and blank lines; short
/// paragraphs under one heading are joined up to about 80 words.
pub fn split_document(title: &str, text: &str) -> Vec<Piece> {
    const MAX_WORDS: usize = 80;
    let mut pieces = Vec::new();
    let mut heading = title.trim().to_owned();
    let mut current = String::new();
    let flush = |current: &mut String, heading: &str, pieces: &mut Vec<Piece>| {
        let text = current.trim();
        if !text.is_empty() {
            pieces.push(Piece {
                title: heading.to_owned(),
                text: text.to_owned(),
            });
        }
        current.clear();
    };
    for block in text.split("\n\n") {
        let mut body = String::new();
        for line in block.lines() {
            let trimmed = line.trim();
            if let Some(h) = trimmed.strip_prefix('#') {
                flush(&mut current, &heading, &mut pieces);
                let h = h.trim_start_matches('#').trim();
                heading = if title.is_empty() {
                    h.to_owned()
                } else {
                    format!("{title} — {h}")
                };
            } else if !trimmed.is_empty() {
                body.push_str(trimmed);
                body.push('\n');
            }
        }
        if body.is_empty() {
            continue;
        }
        let words = |s: &str| s.split_whitespace().count();
        if words(&current) + words(&body) > MAX_WORDS {
            flush(&mut current, &heading, &mut pieces);
        }
        current.push_str(&body);
    }
    flush(&mut current, &heading, &mut pieces);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_become_titles_not_text() {
        let p = split_document(
            "Handbook",
            "# Service\nWe open at 7:30.\n\nOil change $49.\n\n## Sales\nClosed Sundays.\n",
        );
        assert_eq!(
            p,
            [
                Piece {
                    title: "Handbook — Service".into(),
                    text: "We open at 7:30.\nOil change $49.".into()
                },
                Piece {
                    title: "Handbook — Sales".into(),
                    text: "Closed Sundays.".into()
                },
            ]
        );
    }
}
