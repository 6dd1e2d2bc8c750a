//! The conversation's `Retriever` port, answered from the configured vector store with
//! the dealership filter applied by the store, and the passages cut to the context
//! budget the answer engine is given.

use std::sync::Arc;

use adam_actors::ports::{BoxFuture, CancellationToken, Passage, ProviderError, Retriever};

use super::ingest::Knowledge;
use super::store::StoreError;

/// Retrieval over a dealership's documents.
pub struct DocumentRetriever {
    knowledge: Arc<Knowledge>,
    context_max_tokens: usize,
    lexical_fusion: bool,
}

impl DocumentRetriever {
    /// Searches `knowledge`'s store; the passages returned hold at most
    /// `context_max_tokens` tokens together (always at least the best one).
    /// With `lexical_fusion`, more candidates are fetched and re-ranked with BM25
    /// (see [`super::lexical`]).
    pub fn new(knowledge: Arc<Knowledge>, context_max_tokens: usize, lexical_fusion: bool) -> Self {
        Self {
            knowledge,
            context_max_tokens,
            lexical_fusion,
        }
    }
}

/// The best passages, in order, while their tokens fit in `budget` (the first always).
pub fn within_budget(
    passages: Vec<Passage>,
    budget: usize,
    count: impl Fn(&str) -> usize,
) -> Vec<Passage> {
    let mut used = 0;
    let mut kept = Vec::with_capacity(passages.len());
    for p in passages {
        let tokens = count(&p.title) + count(&p.text);
        if !kept.is_empty() && used + tokens > budget {
            break;
        }
        used += tokens;
        kept.push(p);
    }
    kept
}

impl Retriever for DocumentRetriever {
    fn retrieve<'a>(
        &'a self,
        tenant: &'a str,
        query: &'a str,
        embedding: &'a [f32],
        k: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Passage>, ProviderError>> {
        Box::pin(async move {
            let candidates = if self.lexical_fusion {
                (k * 10).max(50)
            } else {
                k
            };
            let found = tokio::select! {
                found = self.knowledge.store().search(tenant, embedding, candidates) => found,
                _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
            };
            let passages = found.map_err(|e| match e {
                StoreError::Unavailable(m) => ProviderError::Unavailable(m),
                StoreError::Rejected(m) => ProviderError::Rejected(m),
            })?;
            let passages = if self.lexical_fusion {
                super::lexical::fuse(query, passages, k)
            } else {
                passages
            };
            Ok(within_budget(passages, self.context_max_tokens, |t| {
                self.knowledge.count_tokens(t)
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str) -> Passage {
        Passage {
            document_id: "d".into(),
            title: String::new(),
            text: text.into(),
            score: 0.5,
            page: None,
        }
    }

    #[test]
    fn passages_are_kept_best_first_while_they_fit() {
        let words = |t: &str| t.split_whitespace().count();
        let ps = vec![passage("a b c d"), passage("e f g"), passage("h i j k l")];
        let texts = |v: Vec<Passage>| v.into_iter().map(|p| p.text).collect::<Vec<_>>();
        assert_eq!(
            texts(within_budget(ps.clone(), 7, words)),
            ["a b c d", "e f g"]
        );
        assert_eq!(texts(within_budget(ps.clone(), 100, words)).len(), 3);
        // The best passage is kept even when it alone is over the budget.
        assert_eq!(texts(within_budget(ps, 2, words)), ["a b c d"]);
    }
}
