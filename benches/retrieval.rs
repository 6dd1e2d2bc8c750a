//! `VectorIndex::search` top-4 over 384-dimension random unit vectors (MiniLM's
//! dimension) at 1k, 10k and 100k entries, exact and through the HNSW graph.
//!
//! `cargo bench -p adam --bench retrieval -- --warm-up-time 1 --measurement-time 3`
//! (`ADAM_BENCH_HNSW_100K=1` also builds and measures the graph at 100k entries)
//!
//! The setup prints (stderr) each graph's build time and the graph's recall@4 against
//! the exact search over 100 random queries. Random unit vectors are the hardest case
//! for a graph index (every distance is close to every other); real embeddings cluster.

use std::hint::black_box;
use std::time::{Duration, Instant};

use adam::knowledge::local::{LocalIndexConfig, VectorIndex};
use adam::knowledge::store::ChunkRecord;
use criterion::Criterion;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 384;
const K: usize = 4;
const CHUNKS_PER_DOCUMENT: usize = 100;

fn unit_vector(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// An index of `n` random entries; waits for its graph when it uses one.
fn index_of(runtime: &tokio::runtime::Runtime, n: usize, exact: bool) -> VectorIndex {
    let _entered = runtime.enter();
    let mut rng = StdRng::seed_from_u64(n as u64);
    let index = VectorIndex::new(LocalIndexConfig {
        exact_up_to: if exact { usize::MAX } else { 0 },
        ..LocalIndexConfig::default()
    });
    let started = Instant::now();
    for d in 0..n.div_ceil(CHUNKS_PER_DOCUMENT) {
        let document_id = format!("doc{d}");
        let chunks: Vec<ChunkRecord> = (0..CHUNKS_PER_DOCUMENT.min(n - d * CHUNKS_PER_DOCUMENT))
            .map(|j| ChunkRecord {
                id: format!("{document_id}-{j}"),
                document_id: document_id.clone(),
                seq: j as u32,
                title: format!("{document_id}.pdf"),
                heading: None,
                page: None,
                text: format!("chunk {j} of {document_id}"),
                vector: unit_vector(&mut rng),
            })
            .collect();
        if let Err(e) = index.insert_document(&document_id, &chunks) {
            panic!("insert: {e}");
        }
    }
    if !exact {
        let settled = runtime.block_on(tokio::time::timeout(
            Duration::from_secs(3600),
            index.wait_settled(),
        ));
        assert!(settled.is_ok(), "graph not built within an hour");
        assert!(index.hnsw_active());
        eprintln!(
            "{n} entries: HNSW graph built in {:.2?} ({} build(s), {:.2?} from first insert)",
            index.last_build_time().unwrap_or_default(),
            index.builds(),
            started.elapsed()
        );
    }
    index
}

/// Share of the exact top-k that the graph search also returns.
fn recall(exact: &VectorIndex, graph: &VectorIndex, queries: &[Vec<f32>]) -> f64 {
    let mut hits = 0;
    for q in queries {
        let truth: Vec<String> = exact.search(q, K).into_iter().map(|p| p.text).collect();
        hits += graph
            .search(q, K)
            .into_iter()
            .filter(|p| truth.contains(&p.text))
            .count();
    }
    hits as f64 / (queries.len() * K) as f64
}

/// p50 and p99 of 1000 single searches (criterion reports means of batches).
fn percentiles(index: &VectorIndex, queries: &[Vec<f32>]) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..1000)
        .map(|i| {
            let started = Instant::now();
            black_box(index.search(&queries[i % queries.len()], K));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    (times[499], times[989])
}

fn retrieval(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let queries: Vec<Vec<f32>> = (0..100).map(|_| unit_vector(&mut rng)).collect();
    // The 100k graph takes minutes to build on two cores: opt in with ADAM_BENCH_HNSW_100K=1.
    let graph_100k = std::env::var_os("ADAM_BENCH_HNSW_100K").is_some();
    for n in [1_000, 10_000, 100_000] {
        let exact = index_of(&runtime, n, true);
        let graph = (n < 100_000 || graph_100k).then(|| index_of(&runtime, n, false));
        if let Some(graph) = &graph {
            eprintln!(
                "{n} entries: HNSW recall@{K} versus exact over {} queries: {:.3}",
                queries.len(),
                recall(&exact, graph, &queries)
            );
        }
        let mut indexes = vec![("exact", &exact)];
        indexes.extend(graph.as_ref().map(|g| ("hnsw", g)));
        for (name, index) in &indexes {
            let (p50, p99) = percentiles(index, &queries);
            eprintln!("{n} entries, {name}: search p50 {p50:.2?}, p99 {p99:.2?} (1000 queries)");
        }
        let mut group = c.benchmark_group(format!("search_top{K}_{n}"));
        group.sample_size(if n >= 100_000 { 10 } else { 20 });
        for (name, index) in indexes {
            group.bench_function(name, |b| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % queries.len();
                    black_box(index.search(black_box(&queries[i]), K))
                })
            });
        }
        group.finish();
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    retrieval(&mut criterion);
    criterion.final_summary();
}
