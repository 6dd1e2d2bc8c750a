//! Exact vector search in the in-memory knowledge base: top 4 of 1k, 10k and 100k
//! passages (384-dimension unit vectors, one dealership).
//!
//! ```sh
//! cargo bench -p adam-providers --bench retrieval
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use adam_actors::ports::{CancellationToken, Passage, Retriever};
use adam_actors::simulated::HashEmbedder;
use adam_providers::knowledge::KnowledgeBase;
use criterion::{BenchmarkId, Criterion};

fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 2000) as f32 / 1000.0 - 1.0
                })
                .collect();
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.iter().map(|a| a / norm).collect()
        })
        .collect()
}

fn vector_search(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("vector_search_top4");
    for n in [1_000usize, 10_000, 100_000] {
        let kb = KnowledgeBase::new(Arc::new(HashEmbedder { dim: 384 }));
        kb.insert(
            Some("dealer"),
            unit_vectors(n, 384, 3)
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    (
                        Passage {
                            document_id: format!("doc{}", i / 20),
                            title: "Handbook".into(),
                            text: format!("Passage {i}."),
                            score: 0.0,
                            page: None,
                        },
                        v,
                    )
                })
                .collect(),
        );
        let query = unit_vectors(1, 384, 77).remove(0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    black_box(
                        kb.retrieve("dealer", "q", &query, 4, CancellationToken::new())
                            .await
                            .expect("search"),
                    )
                })
            })
        });
    }
    group.finish();
}

/// What `criterion_main!` would generate, written out because the macro's public items
/// trip the workspace `missing_docs` lint.
fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    vector_search(&mut c);
    c.final_summary();
}
