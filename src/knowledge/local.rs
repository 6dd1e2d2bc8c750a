//! The embedded default vector store: chunk vectors persisted in the SQLite database
//! (`chunks.embedding`, little-endian `f32`) and searched in process, one
//! [`VectorIndex`] per dealership.
//!
//! # The index of one dealership
//!
//! A [`VectorIndex`] keeps each chunk's passage data (an `Arc<ChunkRecord>` without
//! its vector) and its unit-normalised vector, in two segments whose vectors are
//! stored contiguously (row after row, cache-friendly scans):
//!
//! - the *base*: the rows the current HNSW graph was built over (frozen; a removed
//!   row is only marked dead);
//! - the *delta*: rows added since, appended in insertion order.
//!
//! Every row carries an increasing sequence number; a document maps to the sequence
//! numbers of its rows, so replacing or removing a document marks its rows dead in
//! either segment. Cosine similarity is a dot product of unit vectors
//! ([`adam_actors::vector`]).
//!
//! **Search.** While the index holds at most [`LocalIndexConfig::exact_up_to`]
//! entries, or no graph has been built yet, a search is exact: every live row is
//! scored and the best `k` are kept with a bounded buffer and
//! `select_nth_unstable_by` (no full sort). Beyond that size, an HNSW graph
//! (instant-distance `HnswMap`, distance `1 - dot`) over the base answers for the
//! base: its results are filtered against dead rows (a removed document never
//! appears, even before the graph is rebuilt), and the delta is scanned exactly; the
//! two are merged. Should the filtered graph yield fewer than `k` live rows (many
//! deletions, or `k` above `ef_search`), the base is scanned exactly instead.
//!
//! **Rebuilds.** After a change, when the index is above `exact_up_to` and the graph
//! is missing or stale (the rows added and removed since it was built exceed a tenth
//! of it: a build costs seconds to minutes of every core, while a delta that size
//! costs little to scan), a rebuild is scheduled. It waits until the index has seen
//! no change for [`REBUILD_DEBOUNCE`] (at most [`REBUILD_MAX_WAIT`]), so a burst of
//! changes (a batch of uploads, the start-up load) is coalesced, then copies the
//! live rows into a snapshot, and builds the graph over it on a blocking thread
//! (`tokio::task::spawn_blocking`; a plain thread outside a Tokio runtime). At most
//! one rebuild is pending or running per index; changes made meanwhile are picked up
//! by one more rebuild when it finishes, if they are enough to make it stale.
//! Installing the new graph makes the snapshot the base (rows removed since the
//! snapshot are marked dead) and keeps rows added since in the delta, so no change
//! is lost. Searches keep using the previous graph (or exact search) until then.
//! Below `exact_up_to` no graph is kept, and dead rows are compacted away once they
//! outnumber the live ones.
//!
//! Locks: the index state sits behind a `std::sync::RwLock`, never held across an
//! `.await`. Searches share it; changes and graph installation take it briefly
//! (old structures are freed after it is released); the snapshot copy takes it
//! shared, the graph build not at all.
//!
//! # The store
//!
//! [`LocalStore`] implements [`VectorStore`] (kind `local`) over SQLite only: a map
//! dealership → index, and the pool. [`LocalStore::open`] loads every embedded chunk
//! of every `ready` document. `upsert` writes the chunks' embeddings into their
//! existing rows (the ingestion worker inserted them with a NULL embedding), after
//! clearing the embeddings of the document's other rows, in one transaction, then
//! replaces the document in memory; `delete_document` removes it from memory and
//! clears its embeddings. Writes are serialised so the database and memory see them
//! in the same order.

use std::collections::HashMap;
use std::fmt;
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::{Duration, Instant};

use adam_actors::ports::{BoxFuture, Passage};
use adam_actors::vector::{dot, unit};
use futures_util::TryStreamExt;
use instant_distance::{Builder, HnswMap, Point, Search};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::sqlite::SqlitePool;

use super::store::{ChunkRecord, StoreError, VectorStore};
use crate::db::Db;

/// A scheduled rebuild starts once the index has seen no change for this long, so
/// that a burst of changes is folded into one rebuild...
pub const REBUILD_DEBOUNCE: Duration = Duration::from_millis(100);

/// ...or at the latest this long after it was scheduled (changes that never pause).
pub const REBUILD_MAX_WAIT: Duration = Duration::from_secs(5);

/// The graph is rebuilt once the rows added or removed since it was built exceed
/// this fraction (1/n) of the rows it covers; until then new rows are scanned exactly
/// and removed ones filtered out.
const STALE_FRACTION: usize = 10;

/// Seed of the graph's level assignment (reproducible graphs).
const GRAPH_SEED: u64 = 0x00ad_a3c0_ffee;

/// `[knowledge.local]`: the in-process index of the local vector store.
///
/// The graph defaults were measured on 100 000 clustered 384-dimension vectors on a
/// 2-core machine: `ef_construction` 40 builds in about a minute with recall@10 0.98
/// at `ef_search` 64 (0.4 ms a search, against about 9 ms exact); `ef_construction`
/// 100 takes four times longer to build for little gain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalIndexConfig {
    /// A dealership's index is searched exactly up to this many chunks; above, through
    /// an HNSW graph (approximate, much faster on large knowledge bases). Default
    /// 20 000 (an exact search of 20 000 MiniLM vectors takes about 2 ms).
    pub exact_up_to: usize,
    /// HNSW `efConstruction`: candidates kept while building the graph (higher: better
    /// graph, slower build). Default 40.
    pub ef_construction: usize,
    /// HNSW `ef`: candidates kept while searching (higher: better recall, slower
    /// search). A search asking for more passages than this scans exactly. Default 64.
    pub ef_search: usize,
}

impl Default for LocalIndexConfig {
    fn default() -> Self {
        Self {
            exact_up_to: 20_000,
            ef_construction: 40,
            ef_search: 64,
        }
    }
}

/// A vector as stored in `chunks.embedding`: little-endian `f32`s.
pub fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The vector of a `chunks.embedding` blob; `None` when its length is not a multiple
/// of four bytes.
pub fn decode_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    let chunks = bytes.chunks_exact(4);
    if !chunks.remainder().is_empty() {
        return None;
    }
    Some(
        chunks
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------
// The in-memory index
// ---------------------------------------------------------------------------------

/// One indexed chunk: its sequence number and passage data (without the vector).
#[derive(Clone)]
struct Row {
    seq: u64,
    chunk: Arc<ChunkRecord>,
}

/// A graph node: one row of a shared contiguous vector buffer.
#[derive(Clone)]
struct GraphPoint {
    vectors: Arc<[f32]>,
    row: u32,
    dim: u32,
}

impl GraphPoint {
    fn slice(&self) -> &[f32] {
        let dim = self.dim as usize;
        let start = self.row as usize * dim;
        &self.vectors[start..start + dim]
    }
}

impl Point for GraphPoint {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(self.slice(), other.slice())
    }
}

/// HNSW graph over the base; values are base row positions.
type Graph = HnswMap<GraphPoint, u32>;

thread_local! {
    /// Scratch state of graph searches, reused by each thread.
    static GRAPH_SEARCH: std::cell::RefCell<Search> = std::cell::RefCell::new(Search::default());
}

/// The live rows at one moment, copied contiguously for a graph build.
struct Snapshot {
    epoch: u64,
    cut: u64,
    dim: usize,
    vectors: Arc<[f32]>,
    rows: Vec<Row>,
}

/// A base and graph replaced by a newer one (freed outside the lock).
struct Retired {
    _rows: Vec<Row>,
    _vectors: Arc<[f32]>,
    _graph: Option<Arc<Graph>>,
}

/// The index state behind the lock.
struct Data {
    /// Vector length; 0 until the first insert.
    dim: usize,
    /// Bumped when the index is emptied and changes dimension: builds of an older
    /// epoch are discarded.
    epoch: u64,
    base_vectors: Arc<[f32]>,
    base_rows: Vec<Row>,
    base_alive: Vec<bool>,
    base_dead: usize,
    /// Graph over the base rows, used above `exact_up_to`.
    graph: Option<Arc<Graph>>,
    delta_vectors: Vec<f32>,
    delta_rows: Vec<Row>,
    delta_alive: Vec<bool>,
    delta_dead: usize,
    /// Document id → sequence numbers of its (live) rows.
    docs: HashMap<String, Vec<u64>>,
    live: usize,
    next_seq: u64,
}

impl Data {
    fn new() -> Self {
        Self {
            dim: 0,
            epoch: 0,
            base_vectors: Arc::from(Vec::new()),
            base_rows: Vec::new(),
            base_alive: Vec::new(),
            base_dead: 0,
            graph: None,
            delta_vectors: Vec::new(),
            delta_rows: Vec::new(),
            delta_alive: Vec::new(),
            delta_dead: 0,
            docs: HashMap::new(),
            live: 0,
            next_seq: 0,
        }
    }

    /// Rows held, dead ones included.
    #[cfg(test)]
    fn rows_held(&self) -> usize {
        self.base_rows.len() + self.delta_rows.len()
    }

    fn graph_in_use(&self, config: &LocalIndexConfig) -> Option<&Arc<Graph>> {
        self.graph
            .as_ref()
            .filter(|_| self.live > config.exact_up_to)
    }

    /// True when a (re)build of the graph is due.
    fn wants_graph(&self, config: &LocalIndexConfig) -> bool {
        if self.live <= config.exact_up_to {
            return false;
        }
        let changed = self.delta_rows.len() - self.delta_dead + self.base_dead;
        self.graph.is_none() || changed * STALE_FRACTION > self.base_rows.len()
    }

    /// Checks that `chunks` may replace `document_id`; returns their dimension.
    fn check(&self, document_id: &str, chunks: &[ChunkRecord]) -> Result<usize, StoreError> {
        let Some(first) = chunks.first() else {
            return Ok(self.dim);
        };
        let dim = first.vector.len();
        if dim == 0 {
            return Err(StoreError::Rejected(format!(
                "chunk {} has an empty vector",
                first.id
            )));
        }
        for chunk in chunks {
            if chunk.vector.len() != dim {
                return Err(StoreError::Rejected(format!(
                    "chunk {} has {} dimensions, chunk {} {dim}",
                    chunk.id,
                    chunk.vector.len(),
                    first.id
                )));
            }
            if !chunk.vector.iter().all(|x| x.is_finite()) {
                return Err(StoreError::Rejected(format!(
                    "chunk {} has a non-finite vector component",
                    chunk.id
                )));
            }
        }
        let replaced = self.docs.get(document_id).map_or(0, Vec::len);
        if self.dim != 0 && dim != self.dim && self.live > replaced {
            return Err(StoreError::Rejected(format!(
                "vectors have {dim} dimensions, the dealership's index {}",
                self.dim
            )));
        }
        Ok(dim)
    }

    fn remove(&mut self, document_id: &str) -> bool {
        let Some(seqs) = self.docs.remove(document_id) else {
            return false;
        };
        for seq in seqs {
            if let Ok(i) = self.base_rows.binary_search_by_key(&seq, |r| r.seq) {
                if self.base_alive[i] {
                    self.base_alive[i] = false;
                    self.base_dead += 1;
                    self.live -= 1;
                }
            } else if let Ok(i) = self.delta_rows.binary_search_by_key(&seq, |r| r.seq)
                && self.delta_alive[i]
            {
                self.delta_alive[i] = false;
                self.delta_dead += 1;
                self.live -= 1;
            }
        }
        true
    }

    /// Replaces `document_id` with `chunks` (already checked, of dimension `dim`).
    fn insert(&mut self, document_id: &str, chunks: &[ChunkRecord], dim: usize) {
        self.remove(document_id);
        if chunks.is_empty() {
            return;
        }
        if dim != self.dim {
            // Empty (checked): start over with the new dimension.
            let epoch = self.epoch + 1;
            let next_seq = self.next_seq;
            *self = Data::new();
            self.epoch = epoch;
            self.next_seq = next_seq;
            self.dim = dim;
        }
        let mut seqs = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.delta_vectors.extend(unit(chunk.vector.clone()));
            self.delta_rows.push(Row {
                seq,
                chunk: Arc::new(ChunkRecord {
                    id: chunk.id.clone(),
                    document_id: document_id.to_owned(),
                    seq: chunk.seq,
                    title: chunk.title.clone(),
                    heading: chunk.heading.clone(),
                    page: chunk.page,
                    text: chunk.text.clone(),
                    vector: Vec::new(),
                }),
            });
            self.delta_alive.push(true);
            seqs.push(seq);
        }
        self.live += chunks.len();
        self.docs.insert(document_id.to_owned(), seqs);
    }

    /// Live rows in sequence order, with their vectors.
    fn live_rows(&self) -> impl Iterator<Item = (&Row, &[f32])> {
        let dim = self.dim.max(1);
        let base = self
            .base_rows
            .iter()
            .zip(self.base_vectors.chunks_exact(dim))
            .zip(&self.base_alive);
        let delta = self
            .delta_rows
            .iter()
            .zip(self.delta_vectors.chunks_exact(dim))
            .zip(&self.delta_alive);
        base.chain(delta)
            .filter(|(_, alive)| **alive)
            .map(|(row_and_vector, _)| row_and_vector)
    }

    /// Upkeep after a change: below `exact_up_to`, drops the graph and compacts dead
    /// rows once they outnumber the live ones.
    fn tidy(&mut self, config: &LocalIndexConfig) {
        if self.live > config.exact_up_to {
            return;
        }
        self.graph = None;
        let dead = self.base_dead + self.delta_dead;
        if dead > 64 && dead > self.live {
            let mut vectors = Vec::with_capacity(self.live * self.dim);
            let mut rows = Vec::with_capacity(self.live);
            for (row, v) in self.live_rows() {
                vectors.extend_from_slice(v);
                rows.push(row.clone());
            }
            self.base_vectors = Arc::from(vectors);
            self.base_alive = vec![true; rows.len()];
            self.base_rows = rows;
            self.base_dead = 0;
            self.delta_vectors = Vec::new();
            self.delta_rows = Vec::new();
            self.delta_alive = Vec::new();
            self.delta_dead = 0;
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut vectors = Vec::with_capacity(self.live * self.dim);
        let mut rows = Vec::with_capacity(self.live);
        for (row, v) in self.live_rows() {
            vectors.extend_from_slice(v);
            rows.push(row.clone());
        }
        Snapshot {
            epoch: self.epoch,
            cut: self.next_seq,
            dim: self.dim,
            vectors: Arc::from(vectors),
            rows,
        }
    }

    /// Makes `snapshot` (with its graph) the base; rows removed since the snapshot are
    /// dead, rows added since stay in the delta.
    /// Returns what it replaces, to be dropped once the lock is released.
    fn install(&mut self, snapshot: Snapshot, graph: Graph, config: &LocalIndexConfig) -> Retired {
        if snapshot.epoch != self.epoch || snapshot.dim != self.dim {
            // Emptied and re-dimensioned meanwhile: the build is obsolete.
            return Retired {
                _rows: snapshot.rows,
                _vectors: snapshot.vectors,
                _graph: Some(Arc::new(graph)),
            };
        }
        let mut alive = vec![false; snapshot.rows.len()];
        let mut delta_vectors = Vec::new();
        let mut delta_rows = Vec::new();
        let mut j = 0;
        for (row, v) in self.live_rows() {
            if row.seq < snapshot.cut {
                // Live now and older than the cut: it was live at the snapshot.
                while j < snapshot.rows.len() && snapshot.rows[j].seq < row.seq {
                    j += 1;
                }
                if j < snapshot.rows.len() && snapshot.rows[j].seq == row.seq {
                    alive[j] = true;
                }
            } else {
                delta_vectors.extend_from_slice(v);
                delta_rows.push(row.clone());
            }
        }
        let retired = Retired {
            _rows: std::mem::replace(&mut self.base_rows, snapshot.rows),
            _vectors: std::mem::replace(&mut self.base_vectors, snapshot.vectors),
            _graph: self.graph.replace(Arc::new(graph)),
        };
        self.base_dead = alive.iter().filter(|a| !**a).count();
        self.base_alive = alive;
        self.delta_alive = vec![true; delta_rows.len()];
        self.delta_vectors = delta_vectors;
        self.delta_rows = delta_rows;
        self.delta_dead = 0;
        self.tidy(config);
        retired
    }

    fn search(&self, query: &[f32], k: usize, config: &LocalIndexConfig) -> Vec<Passage> {
        if k == 0 || self.live == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let k = k.min(self.live);
        let q = unit(query.to_vec());
        let base_len = self.base_rows.len();
        let mut top = TopK::new(k);
        match self.graph_in_use(config) {
            Some(graph) => {
                let found = graph_candidates(graph, &q, k, &self.base_alive, self.dim);
                let base_live = base_len - self.base_dead;
                if found.len() < k.min(base_live) {
                    scan(
                        &self.base_vectors,
                        &self.base_alive,
                        self.dim,
                        &q,
                        0,
                        &mut top,
                    );
                } else {
                    found.into_iter().for_each(|(s, i)| top.push(s, i));
                }
            }
            None => scan(
                &self.base_vectors,
                &self.base_alive,
                self.dim,
                &q,
                0,
                &mut top,
            ),
        }
        scan(
            &self.delta_vectors,
            &self.delta_alive,
            self.dim,
            &q,
            base_len,
            &mut top,
        );
        top.into_sorted()
            .into_iter()
            .map(|(score, i)| {
                let i = i as usize;
                let row = match i.checked_sub(base_len) {
                    None => &self.base_rows[i],
                    Some(d) => &self.delta_rows[d],
                };
                row.chunk.passage(score)
            })
            .collect()
    }
}

/// Up to `k` live base rows the graph finds nearest to `q` (unit), best first.
fn graph_candidates(
    graph: &Graph,
    q: &[f32],
    k: usize,
    alive: &[bool],
    dim: usize,
) -> Vec<(f32, u32)> {
    let point = GraphPoint {
        vectors: Arc::from(q),
        row: 0,
        dim: dim as u32,
    };
    GRAPH_SEARCH.with(|cell| {
        let mut search = cell.borrow_mut();
        let mut found = Vec::with_capacity(k);
        for item in graph.search(&point, &mut search) {
            let row = *item.value;
            if alive.get(row as usize).copied().unwrap_or(false) {
                found.push((1.0 - item.distance, row));
                if found.len() == k {
                    break;
                }
            }
        }
        found
    })
}

/// Scores every live row of one segment into `top`, row positions offset by `offset`.
fn scan(vectors: &[f32], alive: &[bool], dim: usize, q: &[f32], offset: usize, top: &mut TopK) {
    if dim == 0 {
        return;
    }
    for (i, (v, live)) in vectors.chunks_exact(dim).zip(alive).enumerate() {
        if *live {
            top.push(dot(q, v), (offset + i) as u32);
        }
    }
}

/// The best `k` (score, row) pairs of a stream, with a bounded buffer: when it fills
/// up, `select_nth_unstable_by` keeps the best `k`, and the k-th score becomes a floor
/// below which later scores are skipped.
struct TopK {
    k: usize,
    cap: usize,
    floor: f32,
    buf: Vec<(f32, u32)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        let cap = (k * 4).max(256);
        Self {
            k,
            cap,
            floor: f32::NEG_INFINITY,
            buf: Vec::with_capacity(cap),
        }
    }

    fn push(&mut self, score: f32, row: u32) {
        if score.is_nan() || score < self.floor {
            return;
        }
        self.buf.push((score, row));
        if self.buf.len() >= self.cap {
            self.keep_best();
            if let Some(last) = self.buf.last() {
                self.floor = last.0;
            }
        }
    }

    /// Keeps the best `k` (unordered).
    fn keep_best(&mut self) {
        if self.buf.len() > self.k {
            self.buf
                .select_nth_unstable_by(self.k - 1, |a, b| b.0.total_cmp(&a.0));
            self.buf.truncate(self.k);
        }
    }

    fn into_sorted(mut self) -> Vec<(f32, u32)> {
        self.keep_best();
        self.buf.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        self.buf
    }
}

/// Rebuild bookkeeping (at most one rebuild pending or running).
#[derive(Default)]
struct Control {
    scheduled: bool,
    running: bool,
    builds: u64,
    last_build: Option<Duration>,
    last_change: Option<Instant>,
}

struct Shared {
    config: LocalIndexConfig,
    data: RwLock<Data>,
    control: Mutex<Control>,
    /// Bumped whenever a rebuild finishes (wakes [`VectorIndex::wait_settled`]).
    settled: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Data> {
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Data> {
        self.data.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Schedules a rebuild when one is due and none is pending or running.
/// Lock order: control, then data.
fn schedule(shared: &Arc<Shared>, changed: bool) {
    let mut control = shared.control();
    if changed {
        control.last_change = Some(Instant::now());
    }
    if control.scheduled || control.running || !shared.read().wants_graph(&shared.config) {
        return;
    }
    control.scheduled = true;
    drop(control);
    let guard = BuildGuard {
        shared: Arc::downgrade(shared),
        armed: true,
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move {
                let scheduled_at = Instant::now();
                let mut wait = REBUILD_DEBOUNCE;
                while !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                    wait = debounce_left(&guard, scheduled_at);
                }
                let _ = tokio::task::spawn_blocking(move || rebuild(guard)).await;
            });
        }
        Err(_) => {
            let spawned = std::thread::Builder::new()
                .name("adam-hnsw".into())
                .spawn(move || {
                    let scheduled_at = Instant::now();
                    let mut wait = REBUILD_DEBOUNCE;
                    while !wait.is_zero() {
                        std::thread::sleep(wait);
                        wait = debounce_left(&guard, scheduled_at);
                    }
                    rebuild(guard);
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start the HNSW rebuild thread");
            }
        }
    }
}

/// How much longer a scheduled rebuild waits: until the index has been quiet for
/// [`REBUILD_DEBOUNCE`], at most [`REBUILD_MAX_WAIT`] after `scheduled_at`.
fn debounce_left(guard: &BuildGuard, scheduled_at: Instant) -> Duration {
    let Some(shared) = guard.shared.upgrade() else {
        return Duration::ZERO;
    };
    let quiet = shared
        .control()
        .last_change
        .map_or(REBUILD_DEBOUNCE, |t| t.elapsed());
    if scheduled_at.elapsed() >= REBUILD_MAX_WAIT {
        Duration::ZERO
    } else {
        REBUILD_DEBOUNCE.saturating_sub(quiet)
    }
}

/// Clears the rebuild flags if a scheduled rebuild is dropped without running
/// (runtime shut down, thread not started, panic).
struct BuildGuard {
    shared: Weak<Shared>,
    armed: bool,
}

impl Drop for BuildGuard {
    fn drop(&mut self) {
        if self.armed
            && let Some(shared) = self.shared.upgrade()
        {
            let mut control = shared.control();
            control.scheduled = false;
            control.running = false;
            drop(control);
            shared.settled.send_modify(|n| *n += 1);
        }
    }
}

/// One rebuild: snapshot, build (no lock held), install, then schedule another if
/// changes arrived meanwhile.
fn rebuild(mut guard: BuildGuard) {
    let Some(shared) = guard.shared.upgrade() else {
        guard.armed = false;
        return;
    };
    {
        let mut control = shared.control();
        control.scheduled = false;
        control.running = true;
    }
    let config = &shared.config;
    let snapshot = {
        let data = shared.read();
        data.wants_graph(config).then(|| data.snapshot())
    };
    if let Some(snapshot) = snapshot {
        let started = Instant::now();
        let entries = snapshot.rows.len();
        let points = (0..entries)
            .map(|row| GraphPoint {
                vectors: Arc::clone(&snapshot.vectors),
                row: row as u32,
                dim: snapshot.dim as u32,
            })
            .collect();
        let values = (0..entries as u32).collect();
        let graph = Builder::default()
            .ef_construction(config.ef_construction.max(1))
            .ef_search(config.ef_search.max(1))
            .seed(GRAPH_SEED)
            .build(points, values);
        let took = started.elapsed();
        let retired = shared.write().install(snapshot, graph, config);
        drop(retired);
        tracing::info!(
            entries,
            took_ms = took.as_millis() as u64,
            "HNSW graph rebuilt"
        );
        let mut control = shared.control();
        control.builds += 1;
        control.last_build = Some(took);
    }
    guard.armed = false;
    shared.control().running = false;
    schedule(&shared, false);
    shared.settled.send_modify(|n| *n += 1);
}

/// The in-memory vector index of one dealership (see the module documentation).
/// Cheap to share behind an `Arc`; every method takes `&self`.
pub struct VectorIndex {
    shared: Arc<Shared>,
}

impl fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.shared.read();
        f.debug_struct("VectorIndex")
            .field("entries", &data.live)
            .field("dim", &data.dim)
            .field("hnsw", &data.graph_in_use(&self.shared.config).is_some())
            .finish()
    }
}

impl VectorIndex {
    /// An empty index.
    pub fn new(config: LocalIndexConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                data: RwLock::new(Data::new()),
                control: Mutex::new(Control::default()),
                settled: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &LocalIndexConfig {
        &self.shared.config
    }

    /// Replaces every entry of `document_id` with `chunks` (no chunks: removes the
    /// document). Rejected when the vectors are empty, not finite, of differing
    /// lengths, or of another length than the index's other entries.
    pub fn insert_document(
        &self,
        document_id: &str,
        chunks: &[ChunkRecord],
    ) -> Result<(), StoreError> {
        self.insert_quietly(document_id, chunks)?;
        schedule(&self.shared, true);
        Ok(())
    }

    /// [`Self::insert_document`] without scheduling a rebuild (bulk loads).
    fn insert_quietly(&self, document_id: &str, chunks: &[ChunkRecord]) -> Result<(), StoreError> {
        let mut data = self.shared.write();
        let dim = data.check(document_id, chunks)?;
        data.insert(document_id, chunks, dim);
        data.tidy(&self.shared.config);
        Ok(())
    }

    /// Checks that [`Self::insert_document`] would accept `chunks`, changing nothing.
    pub fn check_document(
        &self,
        document_id: &str,
        chunks: &[ChunkRecord],
    ) -> Result<(), StoreError> {
        self.shared.read().check(document_id, chunks).map(|_| ())
    }

    /// Removes every entry of `document_id`; false when it had none.
    pub fn remove_document(&self, document_id: &str) -> bool {
        let removed = {
            let mut data = self.shared.write();
            let removed = data.remove(document_id);
            data.tidy(&self.shared.config);
            removed
        };
        if removed {
            schedule(&self.shared, true);
        }
        removed
    }

    /// Number of entries (chunks).
    pub fn len(&self) -> usize {
        self.shared.read().live
    }

    /// True when the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vector length of the entries (0 while nothing was ever inserted).
    pub fn dim(&self) -> usize {
        self.shared.read().dim
    }

    /// The `k` entries nearest to `query` by cosine similarity, best first, each as
    /// [`ChunkRecord::passage`] with the cosine as score. Empty when the query's
    /// length differs from the entries'.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Passage> {
        self.shared.read().search(query, k, &self.shared.config)
    }

    /// True when searches currently go through an HNSW graph (above `exact_up_to`
    /// and a graph built).
    pub fn hnsw_active(&self) -> bool {
        self.shared
            .read()
            .graph_in_use(&self.shared.config)
            .is_some()
    }

    /// True when no rebuild is pending or running: the graph, if one is used,
    /// covers every change.
    pub fn is_settled(&self) -> bool {
        let control = self.shared.control();
        !control.scheduled && !control.running
    }

    /// Waits until [`Self::is_settled`] (wrap it in a timeout).
    pub async fn wait_settled(&self) {
        loop {
            let mut changes = self.shared.settled.subscribe();
            if self.is_settled() {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// How long the last graph build took, if one was built.
    pub fn last_build_time(&self) -> Option<Duration> {
        self.shared.control().last_build
    }

    /// Graphs built so far.
    pub fn builds(&self) -> u64 {
        self.shared.control().builds
    }
}

// ---------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------

/// One dealership's index, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStats {
    /// Dealership id.
    pub tenant: String,
    /// Chunks indexed.
    pub entries: usize,
    /// Searches go through an HNSW graph.
    pub hnsw_active: bool,
    /// A graph rebuild is pending or running.
    pub rebuilding: bool,
}

/// The local vector store: vectors in SQLite, one in-memory [`VectorIndex`] per
/// dealership (see the module documentation).
pub struct LocalStore {
    pool: SqlitePool,
    config: LocalIndexConfig,
    tenants: RwLock<HashMap<String, Arc<VectorIndex>>>,
    /// Serialises writes so the database and the indexes apply them in one order.
    writes: tokio::sync::Mutex<()>,
}

impl fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStore")
            .field("config", &self.config)
            .field("tenants", &self.tenants().len())
            .finish()
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl LocalStore {
    /// Opens the store on the SQLite database and loads the embedded chunks of every
    /// `ready` document. Rejected on PostgreSQL.
    pub async fn open(db: Db, config: LocalIndexConfig) -> Result<LocalStore, StoreError> {
        let pool = match db {
            Db::Sqlite(pool) => pool,
            Db::Postgres(_) => {
                return Err(StoreError::Rejected(
                    "the local vector store keeps vectors in SQLite; with PostgreSQL use \
                     vector_store = \"pgvector\""
                        .into(),
                ));
            }
        };
        let store = LocalStore {
            pool,
            config,
            tenants: RwLock::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
        };
        store.load().await?;
        Ok(store)
    }

    async fn load(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut rows = sqlx::query(
            "SELECT c.id, c.document_id, c.dealership_id, c.seq, c.text, c.heading, c.page, \
                    c.embedding, d.filename \
             FROM chunks c JOIN documents d ON d.id = c.document_id \
             WHERE c.embedding IS NOT NULL AND d.status = 'ready' \
             ORDER BY c.dealership_id, c.document_id, c.seq",
        )
        .fetch(&self.pool);
        let mut current: Option<(String, String)> = None;
        let mut chunks: Vec<ChunkRecord> = Vec::new();
        let mut loaded = 0usize;
        while let Some(row) = rows.try_next().await.map_err(unavailable)? {
            let tenant: String = row.try_get("dealership_id").map_err(unavailable)?;
            let document_id: String = row.try_get("document_id").map_err(unavailable)?;
            let id: String = row.try_get("id").map_err(unavailable)?;
            let blob: Vec<u8> = row.try_get("embedding").map_err(unavailable)?;
            let Some(vector) = decode_vector(&blob) else {
                tracing::warn!(chunk = %id, "skipping a chunk whose embedding is not f32s");
                continue;
            };
            let seq: i64 = row.try_get("seq").map_err(unavailable)?;
            let page: Option<i64> = row.try_get("page").map_err(unavailable)?;
            let chunk = ChunkRecord {
                id,
                document_id: document_id.clone(),
                seq: u32::try_from(seq).unwrap_or(u32::MAX),
                title: row.try_get("filename").map_err(unavailable)?,
                heading: row.try_get("heading").map_err(unavailable)?,
                page: page.and_then(|p| u32::try_from(p).ok()),
                text: row.try_get("text").map_err(unavailable)?,
                vector,
            };
            let key = (tenant, document_id);
            if current.as_ref() != Some(&key) {
                if let Some((tenant, document_id)) = current.take() {
                    loaded += self.load_document(&tenant, &document_id, &chunks);
                }
                chunks.clear();
                current = Some(key);
            }
            chunks.push(chunk);
        }
        if let Some((tenant, document_id)) = current.take() {
            loaded += self.load_document(&tenant, &document_id, &chunks);
        }
        let indexes: Vec<Arc<VectorIndex>> = self.tenants_map().values().cloned().collect();
        for index in &indexes {
            schedule(&index.shared, true);
        }
        tracing::info!(
            chunks = loaded,
            dealerships = indexes.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "local vector store loaded"
        );
        Ok(())
    }

    fn load_document(&self, tenant: &str, document_id: &str, chunks: &[ChunkRecord]) -> usize {
        match self.index_for(tenant).insert_quietly(document_id, chunks) {
            Ok(()) => chunks.len(),
            Err(e) => {
                tracing::warn!(tenant, document = document_id, error = %e, "skipping a document's vectors");
                0
            }
        }
    }

    fn tenants_map(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<VectorIndex>>> {
        self.tenants.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn tenants(&self) -> Vec<(String, Arc<VectorIndex>)> {
        self.tenants_map()
            .iter()
            .map(|(t, i)| (t.clone(), Arc::clone(i)))
            .collect()
    }

    /// The index of `tenant`, if it has one.
    pub fn index(&self, tenant: &str) -> Option<Arc<VectorIndex>> {
        self.tenants_map().get(tenant).cloned()
    }

    fn index_for(&self, tenant: &str) -> Arc<VectorIndex> {
        if let Some(index) = self.index(tenant) {
            return index;
        }
        let mut map = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            map.entry(tenant.to_owned())
                .or_insert_with(|| Arc::new(VectorIndex::new(self.config.clone()))),
        )
    }

    /// Each dealership's index size and mode, sorted by dealership.
    pub fn stats(&self) -> Vec<IndexStats> {
        let mut stats: Vec<IndexStats> = self
            .tenants()
            .into_iter()
            .map(|(tenant, index)| IndexStats {
                tenant,
                entries: index.len(),
                hnsw_active: index.hnsw_active(),
                rebuilding: !index.is_settled(),
            })
            .collect();
        stats.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        stats
    }

    async fn upsert_inner(
        &self,
        tenant: &str,
        document_id: &str,
        chunks: &[ChunkRecord],
    ) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        let index = self.index_for(tenant);
        index.check_document(document_id, chunks)?;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "UPDATE chunks SET embedding = NULL WHERE document_id = $1 AND dealership_id = $2",
        )
        .bind(document_id)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        for chunk in chunks {
            let updated = sqlx::query(
                "UPDATE chunks SET embedding = $1 \
                 WHERE id = $2 AND dealership_id = $3 AND document_id = $4",
            )
            .bind(encode_vector(&chunk.vector))
            .bind(&chunk.id)
            .bind(tenant)
            .bind(document_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
            if updated != 1 {
                return Err(StoreError::Rejected(format!(
                    "chunk {} of document {document_id} has no row for this dealership",
                    chunk.id
                )));
            }
        }
        tx.commit().await.map_err(unavailable)?;
        index.insert_document(document_id, chunks)
    }

    async fn delete_inner(&self, tenant: &str, document_id: &str) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        if let Some(index) = self.index(tenant) {
            index.remove_document(document_id);
        }
        sqlx::query(
            "UPDATE chunks SET embedding = NULL WHERE document_id = $1 AND dealership_id = $2",
        )
        .bind(document_id)
        .bind(tenant)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    fn search_now(
        &self,
        tenant: &str,
        vector: &[f32],
        k: usize,
    ) -> Result<Vec<Passage>, StoreError> {
        if !vector.iter().all(|x| x.is_finite()) {
            return Err(StoreError::Rejected(
                "the query vector has a non-finite component".into(),
            ));
        }
        let Some(index) = self.index(tenant) else {
            return Ok(Vec::new());
        };
        let dim = index.dim();
        if dim != 0 && !index.is_empty() && vector.len() != dim {
            return Err(StoreError::Rejected(format!(
                "the query vector has {} dimensions, the dealership's index {dim}",
                vector.len()
            )));
        }
        Ok(index.search(vector, k))
    }
}

impl VectorStore for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn upsert<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
        chunks: &'a [ChunkRecord],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.upsert_inner(tenant, document_id, chunks))
    }

    fn delete_document<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.delete_inner(tenant, document_id))
    }

    fn search<'a>(
        &'a self,
        tenant: &'a str,
        vector: &'a [f32],
        k: usize,
    ) -> BoxFuture<'a, Result<Vec<Passage>, StoreError>> {
        Box::pin(async move { self.search_now(tenant, vector, k) })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use adam_actors::vector::cosine;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::settings::DatabaseSettings;

    fn random_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// A chunk whose text is its id (passages are identified by text).
    fn record(document_id: &str, id: &str, vector: Vec<f32>) -> ChunkRecord {
        ChunkRecord {
            id: id.into(),
            document_id: document_id.into(),
            seq: 0,
            title: format!("{document_id}.pdf"),
            heading: None,
            page: None,
            text: id.into(),
            vector,
        }
    }

    fn texts(passages: &[Passage]) -> Vec<String> {
        passages.iter().map(|p| p.text.clone()).collect()
    }

    /// Brute-force reference: every (id, vector) scored by cosine, best first.
    fn brute_force(corpus: &[(String, Vec<f32>)], query: &[f32], k: usize) -> Vec<(String, f32)> {
        let mut scored: Vec<(String, f32)> = corpus
            .iter()
            .map(|(id, v)| (id.clone(), cosine(query, v)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        scored
    }

    /// Documents `doc{i}` of `per_doc` random chunks `doc{i}-{j}`.
    fn random_documents(
        rng: &mut StdRng,
        docs: std::ops::Range<usize>,
        per_doc: usize,
        dim: usize,
    ) -> Vec<(String, Vec<ChunkRecord>)> {
        docs.map(|d| {
            let doc = format!("doc{d}");
            let chunks = (0..per_doc)
                .map(|j| record(&doc, &format!("{doc}-{j}"), random_vector(rng, dim)))
                .collect();
            (doc, chunks)
        })
        .collect()
    }

    fn corpus_of(docs: &HashMap<String, Vec<ChunkRecord>>) -> Vec<(String, Vec<f32>)> {
        docs.values()
            .flatten()
            .map(|c| (c.id.clone(), c.vector.clone()))
            .collect()
    }

    fn recall(
        index: &VectorIndex,
        corpus: &[(String, Vec<f32>)],
        queries: &[Vec<f32>],
        k: usize,
    ) -> f64 {
        let mut hits = 0usize;
        for q in queries {
            let truth: HashSet<String> = brute_force(corpus, q, k)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let got = texts(&index.search(q, k));
            assert_eq!(got.len(), k);
            hits += got.iter().filter(|id| truth.contains(*id)).count();
        }
        hits as f64 / (queries.len() * k) as f64
    }

    #[test]
    fn vectors_encode_as_little_endian_f32() {
        let v = vec![1.0f32, -2.5, 0.0, f32::MAX];
        let bytes = encode_vector(&v);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode_vector(&bytes), Some(v));
        assert_eq!(decode_vector(&bytes[..5]), None);
        assert_eq!(decode_vector(&[]), Some(Vec::new()));
    }

    #[test]
    fn config_defaults_and_rejects_unknown_fields() {
        let config: LocalIndexConfig = serde_json::from_str(r#"{"ef_search": 32}"#).expect("parse");
        assert_eq!(config.exact_up_to, 20_000);
        assert_eq!(config.ef_construction, 40);
        assert_eq!(config.ef_search, 32);
        assert!(serde_json::from_str::<LocalIndexConfig>(r#"{"ef": 64}"#).is_err());
    }

    #[test]
    fn exact_search_returns_the_brute_force_top_k_in_order() {
        let mut rng = StdRng::seed_from_u64(7);
        let index = VectorIndex::new(LocalIndexConfig::default());
        let docs = random_documents(&mut rng, 0..100, 10, 32);
        for (doc, chunks) in &docs {
            index.insert_document(doc, chunks).expect("insert");
        }
        assert_eq!(index.len(), 1000);
        assert!(!index.hnsw_active());
        let corpus = corpus_of(&docs.into_iter().collect());
        for k in [1, 4, 10, 300, 5000] {
            for _ in 0..10 {
                let q = random_vector(&mut rng, 32);
                let expected = brute_force(&corpus, &q, k);
                let got = index.search(&q, k);
                assert_eq!(
                    texts(&got),
                    expected
                        .iter()
                        .map(|(id, _)| id.clone())
                        .collect::<Vec<_>>()
                );
                for (p, (_, score)) in got.iter().zip(&expected) {
                    assert!((p.score - score).abs() < 1e-5, "{} vs {score}", p.score);
                }
            }
        }
        assert!(index.search(&random_vector(&mut rng, 32), 0).is_empty());
        assert!(index.search(&random_vector(&mut rng, 31), 4).is_empty());
    }

    #[test]
    fn insert_replaces_the_document_and_remove_forgets_it() {
        let index = VectorIndex::new(LocalIndexConfig::default());
        let a = vec![1.0, 0.0, 0.0];
        let b = vec![0.9, 0.1, 0.0];
        let c = vec![0.0, 1.0, 0.0];
        let e = vec![0.0, 0.0, 1.0];
        index
            .insert_document("d1", &[record("d1", "a", a.clone()), record("d1", "b", b)])
            .expect("insert");
        index
            .insert_document("d2", &[record("d2", "c", c)])
            .expect("insert");
        assert_eq!(index.len(), 3);
        assert_eq!(texts(&index.search(&a, 2)), ["a", "b"]);

        index
            .insert_document("d1", &[record("d1", "e", e.clone())])
            .expect("replace");
        assert_eq!(index.len(), 2);
        let found = texts(&index.search(&a, 10));
        assert_eq!(found.len(), 2);
        assert!(!found.contains(&"a".to_string()) && !found.contains(&"b".to_string()));
        let top = &index.search(&e, 1)[0];
        assert_eq!((top.text.as_str(), top.document_id.as_str()), ("e", "d1"));
        assert!((top.score - 1.0).abs() < 1e-6);

        assert!(index.remove_document("d1"));
        assert!(!index.remove_document("d1"));
        assert_eq!(texts(&index.search(&e, 10)), ["c"]);
        index.insert_document("d2", &[]).expect("empty replaces");
        assert!(index.is_empty());
        assert!(index.search(&e, 10).is_empty());
    }

    #[test]
    fn document_ids_come_from_the_insert_and_titles_carry_the_heading() {
        let index = VectorIndex::new(LocalIndexConfig::default());
        let mut chunk = record("other", "x", vec![1.0, 2.0]);
        chunk.heading = Some("Service > Hours".into());
        chunk.page = Some(3);
        index.insert_document("d1", &[chunk]).expect("insert");
        let p = &index.search(&[1.0, 2.0], 1)[0];
        assert_eq!(p.document_id, "d1");
        assert_eq!(p.title, "other.pdf — Service > Hours");
        assert_eq!(p.page, Some(3));
        assert!(index.remove_document("d1"));
        assert!(index.is_empty());
    }

    #[test]
    fn bad_vectors_are_rejected_without_changes() {
        let index = VectorIndex::new(LocalIndexConfig::default());
        index
            .insert_document("d1", &[record("d1", "a", vec![1.0, 0.0, 0.0])])
            .expect("insert");
        let rejected = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Rejected(_)));
        assert!(rejected(
            index.insert_document("d2", &[record("d2", "b", vec![1.0; 4])])
        ));
        assert!(rejected(
            index.insert_document("d2", &[record("d2", "b", Vec::new())])
        ));
        assert!(rejected(index.insert_document(
            "d2",
            &[record("d2", "b", vec![f32::NAN, 0.0, 0.0])]
        )));
        assert!(rejected(index.insert_document(
            "d2",
            &[
                record("d2", "b", vec![1.0; 3]),
                record("d2", "c", vec![1.0; 2])
            ]
        )));
        assert!(rejected(
            index.check_document("d2", &[record("d2", "b", vec![1.0; 4])])
        ));
        assert_eq!(index.len(), 1);
        assert_eq!(texts(&index.search(&[1.0, 0.0, 0.0], 4)), ["a"]);
        // Replacing the only document may change the dimension (new embedding model).
        index
            .insert_document("d1", &[record("d1", "z", vec![0.0, 1.0, 0.0, 0.0])])
            .expect("new dim");
        assert_eq!(index.dim(), 4);
        assert!(index.search(&[1.0, 0.0, 0.0], 4).is_empty());
        assert_eq!(texts(&index.search(&[0.0, 1.0, 0.0, 0.0], 4)), ["z"]);
    }

    #[test]
    fn repeated_replacements_are_compacted() {
        let mut rng = StdRng::seed_from_u64(3);
        let index = VectorIndex::new(LocalIndexConfig::default());
        let mut last = Vec::new();
        for round in 0..100 {
            last = (0..50)
                .map(|j| record("d", &format!("r{round}-{j}"), random_vector(&mut rng, 16)))
                .collect();
            index.insert_document("d", &last).expect("insert");
            assert!(index.shared.read().rows_held() <= 200);
        }
        assert_eq!(index.len(), 50);
        for chunk in &last {
            assert_eq!(texts(&index.search(&chunk.vector, 1)), [chunk.id.as_str()]);
        }
    }

    async fn settle(index: &VectorIndex) {
        tokio::time::timeout(Duration::from_secs(120), index.wait_settled())
            .await
            .expect("graph built in time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hnsw_recall_and_deletions_while_and_after_rebuilding() {
        const DIM: usize = 64;
        let mut rng = StdRng::seed_from_u64(42);
        // A small ef_construction keeps the unoptimised test build to seconds (the
        // graph code is compiled in this crate, at the test profile's opt-level 0);
        // recall stays well above the bar on this data.
        let index = VectorIndex::new(LocalIndexConfig {
            exact_up_to: 500,
            ef_construction: 24,
            ef_search: 100,
        });
        let mut live: HashMap<String, Vec<ChunkRecord>> = HashMap::new();
        for (doc, chunks) in random_documents(&mut rng, 0..300, 10, DIM) {
            index.insert_document(&doc, &chunks).expect("insert");
            live.insert(doc, chunks);
        }
        // No graph yet: exact answers meanwhile.
        let q = random_vector(&mut rng, DIM);
        if !index.hnsw_active() {
            let expected: Vec<String> = brute_force(&corpus_of(&live), &q, 10)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            assert_eq!(texts(&index.search(&q, 10)), expected);
        }
        settle(&index).await;
        assert!(index.hnsw_active());
        assert_eq!(index.builds(), 1, "the burst of inserts is built once");
        assert!(index.last_build_time().is_some());
        let queries: Vec<Vec<f32>> = (0..50).map(|_| random_vector(&mut rng, DIM)).collect();
        let r = recall(&index, &corpus_of(&live), &queries, 10);
        assert!(r >= 0.9, "recall@10 {r}");

        // A few deletions: filtered through the same graph, no rebuild.
        let builds = index.builds();
        let mut removed: Vec<ChunkRecord> = Vec::new();
        for d in 0..5 {
            let doc = format!("doc{d}");
            assert!(index.remove_document(&doc));
            removed.extend(live.remove(&doc).expect("known"));
        }
        assert!(index.is_settled());
        assert!(index.hnsw_active());
        let check_removed = |index: &VectorIndex, removed: &[ChunkRecord]| {
            let gone: HashSet<&str> = removed.iter().map(|c| c.document_id.as_str()).collect();
            for chunk in removed {
                let found = index.search(&chunk.vector, 10);
                assert_eq!(found.len(), 10);
                assert!(found.iter().all(|p| !gone.contains(p.document_id.as_str())));
            }
        };
        check_removed(&index, &removed);

        // Many deletions and new documents: rebuild; meanwhile the old graph is
        // filtered and the new rows are scanned exactly.
        for d in 5..45 {
            let doc = format!("doc{d}");
            assert!(index.remove_document(&doc));
            removed.extend(live.remove(&doc).expect("known"));
        }
        let added = random_documents(&mut rng, 300..320, 10, DIM);
        for (doc, chunks) in &added {
            index.insert_document(doc, chunks).expect("insert");
            live.insert(doc.clone(), chunks.clone());
        }
        assert_eq!(index.len(), 2750);
        check_removed(&index, &removed);
        for chunk in added.iter().flat_map(|(_, c)| c) {
            assert_eq!(texts(&index.search(&chunk.vector, 1)), [chunk.id.as_str()]);
        }
        settle(&index).await;
        assert_eq!(index.builds(), builds + 1);
        assert!(index.hnsw_active());
        check_removed(&index, &removed);
        for chunk in added.iter().flat_map(|(_, c)| c) {
            assert_eq!(texts(&index.search(&chunk.vector, 1)), [chunk.id.as_str()]);
        }
        let corpus = corpus_of(&live);
        let r = recall(&index, &corpus, &queries, 10);
        assert!(r >= 0.9, "recall@10 after rebuild {r}");

        // More than ef_search asked for: the base is scanned exactly.
        let expected: Vec<String> = brute_force(&corpus, &q, 200)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(texts(&index.search(&q, 200)), expected);

        // Back under exact_up_to: exact search, graph dropped.
        for d in 45..300 {
            index.remove_document(&format!("doc{d}"));
        }
        assert_eq!(index.len(), 200);
        assert!(!index.hnsw_active());
        settle(&index).await;
        assert!(!index.hnsw_active());
    }

    async fn sqlite_db() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("adam-local-{}", uuid::Uuid::new_v4()));
        let settings = DatabaseSettings {
            url: format!("sqlite://{}", dir.join("adam.db").display()),
            max_connections: 2,
            ..DatabaseSettings::default()
        };
        let db = Db::connect(&settings).await.expect("connect");
        db.migrate().await.expect("migrate");
        (db, dir)
    }

    async fn exec(pool: &SqlitePool, sql: &'static str, args: &[&str]) {
        let mut query = sqlx::query(sql);
        for arg in args {
            query = query.bind(arg.to_string());
        }
        query.execute(pool).await.expect("statement");
    }

    async fn seed(pool: &SqlitePool) {
        for dealer in ["A", "B"] {
            exec(
                pool,
                "INSERT INTO dealerships (id, name, persona, voice, created_at, updated_at) \
                 VALUES ($1, $1, 'p', 'v', 0, 0)",
                &[dealer],
            )
            .await;
        }
        for (doc, dealer, filename, status) in [
            ("docA1", "A", "hours.pdf", "ready"),
            ("docA2", "A", "draft.pdf", "processing"),
            ("docA3", "A", "old.pdf", "ready"),
            ("docB1", "B", "prices.pdf", "ready"),
        ] {
            exec(
                pool,
                "INSERT INTO documents (id, dealership_id, filename, content_type, size_bytes, \
                 sha256, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'application/pdf', 1, 'x', $4, 0, 0)",
                &[doc, dealer, filename, status],
            )
            .await;
        }
        for (id, doc, dealer, seq) in [
            ("a1-0", "docA1", "A", "0"),
            ("a1-1", "docA1", "A", "1"),
            ("a1-2", "docA1", "A", "2"),
            ("a2-0", "docA2", "A", "0"),
            ("a3-0", "docA3", "A", "0"),
            ("b1-0", "docB1", "B", "0"),
            ("b1-1", "docB1", "B", "1"),
        ] {
            exec(
                pool,
                "INSERT INTO chunks (id, document_id, dealership_id, seq, text, heading, page) \
                 VALUES ($1, $2, $3, CAST($4 AS INTEGER), $1, \
                         CASE WHEN $1 = 'a1-1' THEN 'Service > Hours' END, \
                         CASE WHEN $1 = 'a1-1' THEN 2 END)",
                &[id, doc, dealer, seq],
            )
            .await;
        }
    }

    /// The chunks of the seeded rows, as the ingestion worker would pass them.
    fn seeded_chunks(rng: &mut StdRng, doc: &str, title: &str, ids: &[&str]) -> Vec<ChunkRecord> {
        ids.iter()
            .enumerate()
            .map(|(seq, id)| ChunkRecord {
                seq: seq as u32,
                title: title.into(),
                heading: (*id == "a1-1").then(|| "Service > Hours".to_string()),
                page: (*id == "a1-1").then_some(2),
                ..record(doc, id, random_vector(rng, 24))
            })
            .collect()
    }

    async fn embedded(pool: &SqlitePool) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM chunks WHERE embedding IS NOT NULL")
            .fetch_one(pool)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn sqlite_round_trip_persists_isolates_and_forgets() {
        let (db, dir) = sqlite_db().await;
        let Db::Sqlite(pool) = db.clone() else {
            panic!("sqlite expected");
        };
        seed(&pool).await;
        let mut rng = StdRng::seed_from_u64(11);
        let store = LocalStore::open(db.clone(), LocalIndexConfig::default())
            .await
            .expect("open");
        assert_eq!(store.kind(), "local");
        assert!(store.stats().is_empty());

        let a1 = seeded_chunks(&mut rng, "docA1", "hours.pdf", &["a1-0", "a1-1", "a1-2"]);
        let a2 = seeded_chunks(&mut rng, "docA2", "draft.pdf", &["a2-0"]);
        let a3 = seeded_chunks(&mut rng, "docA3", "old.pdf", &["a3-0"]);
        let b1 = seeded_chunks(&mut rng, "docB1", "prices.pdf", &["b1-0", "b1-1"]);
        store.upsert("A", "docA1", &a1).await.expect("upsert");
        store.upsert("A", "docA2", &a2).await.expect("upsert");
        store.upsert("A", "docA3", &a3).await.expect("upsert");
        store.upsert("B", "docB1", &b1).await.expect("upsert");
        assert_eq!(embedded(&pool).await, 7);

        let hit = store.search("A", &a1[1].vector, 2).await.expect("search");
        assert_eq!(hit[0].text, "a1-1");
        assert_eq!(hit[0].title, "hours.pdf — Service > Hours");
        assert_eq!(hit[0].page, Some(2));
        // Tenant isolation: B only ever sees B's chunks, A never B's.
        for chunk in a1.iter().chain(&a3) {
            let found = store.search("B", &chunk.vector, 10).await.expect("search");
            assert_eq!(found.len(), 2);
            assert!(found.iter().all(|p| p.document_id == "docB1"));
        }
        for chunk in &b1 {
            let found = store.search("A", &chunk.vector, 10).await.expect("search");
            assert!(found.iter().all(|p| p.document_id.starts_with("docA")));
        }
        assert!(
            store
                .search("C", &b1[0].vector, 4)
                .await
                .expect("search")
                .is_empty()
        );
        assert!(matches!(
            store.search("A", &[1.0; 3], 4).await,
            Err(StoreError::Rejected(_))
        ));

        // A chunk without a row of this dealership and document: nothing changes.
        let stray = seeded_chunks(&mut rng, "docA1", "hours.pdf", &["a1-0", "b1-0"]);
        assert!(matches!(
            store.upsert("A", "docA1", &stray).await,
            Err(StoreError::Rejected(_))
        ));
        assert_eq!(embedded(&pool).await, 7);
        assert_eq!(
            texts(&store.search("A", &a1[0].vector, 1).await.expect("search")),
            ["a1-0"]
        );
        assert_eq!(
            texts(&store.search("B", &b1[0].vector, 1).await.expect("search")),
            ["b1-0"]
        );

        // Deleting forgets in memory and in the database; absent is fine.
        store.delete_document("A", "docA3").await.expect("delete");
        store
            .delete_document("A", "nope")
            .await
            .expect("delete absent");
        store
            .delete_document("B", "docA1")
            .await
            .expect("other tenant's document");
        assert_eq!(embedded(&pool).await, 6);
        let found = store.search("A", &a3[0].vector, 10).await.expect("search");
        assert!(found.iter().all(|p| p.document_id != "docA3"));
        assert_eq!(found.len(), 4);

        // Re-opened: the ready documents' vectors come back, the processing one not.
        let reopened = LocalStore::open(db.clone(), LocalIndexConfig::default())
            .await
            .expect("reopen");
        let stats: Vec<(String, usize)> = reopened
            .stats()
            .into_iter()
            .map(|s| (s.tenant, s.entries))
            .collect();
        assert_eq!(stats, [("A".to_string(), 3), ("B".to_string(), 2)]);
        for chunk in &a1 {
            let found = reopened
                .search("A", &chunk.vector, 1)
                .await
                .expect("search");
            assert_eq!(found[0].text, chunk.id);
            assert!((found[0].score - 1.0).abs() < 1e-5);
        }
        let hit = reopened
            .search("A", &a1[1].vector, 1)
            .await
            .expect("search");
        assert_eq!(hit[0].title, "hours.pdf — Service > Hours");
        assert_eq!(hit[0].page, Some(2));
        let found = reopened
            .search("B", &a1[0].vector, 10)
            .await
            .expect("search");
        assert!(found.iter().all(|p| p.document_id == "docB1"));

        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
