//! Shared semantic answer cache actor: a question similar enough (cosine ≥ threshold)
//! to one answered before for the same dealership gets the stored answer, within a TTL.
//! Exact repeats hit a quick_cache index first; near matches scan the tenant's entries.
//! A [`SemanticTier`] (other nodes, through a shared store the server provides) hears of
//! every answer stored and every clear made here, and feeds theirs back as replicas.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::embedding_cache::CacheStats;
use crate::metrics::ActorMetrics;
use crate::ports::Passage;

/// A stored answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnswer {
    /// Answer text.
    pub text: String,
    /// Its sources.
    pub citations: Vec<Passage>,
}

/// Tuning.
#[derive(Debug, Clone, Copy)]
pub struct SemanticCacheConfig {
    /// Minimum cosine similarity for a hit.
    pub threshold: f32,
    /// How long an answer stays valid.
    pub ttl: Duration,
    /// Entries kept per dealership (oldest evicted).
    pub per_tenant: usize,
}

impl Default for SemanticCacheConfig {
    fn default() -> Self {
        Self {
            threshold: 0.92,
            ttl: Duration::from_secs(3600),
            per_tenant: 1000,
        }
    }
}

/// An answer as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedAnswer {
    /// Id of the dealership (tenant) it belongs to.
    pub tenant: String,
    /// Question text.
    pub question: String,
    /// Its embedding.
    pub embedding: Vec<f32>,
    /// The answer.
    pub text: String,
    /// Its sources.
    pub citations: Vec<Passage>,
    /// When it was stored, in milliseconds since the Unix epoch (its TTL runs from then).
    pub stored_at_ms: u64,
}

/// A shared tier behind this node's cache: told of every answer stored and every clear
/// made on this node, so that other nodes can replay them (see
/// [`SemanticCacheHandle::store_replica`]). It must not block: it is called from turns.
pub trait SemanticTier: Send + Sync + 'static {
    /// This node stored an answer.
    fn stored(&self, answer: SharedAnswer);
    /// This node forgot one dealership's answers (`None`: every dealership's).
    fn cleared(&self, tenant: Option<&str>);
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Entry {
    question: String,
    /// The names and numbers it asks about (see [`particulars`]).
    particulars: Vec<String>,
    embedding: Arc<[f32]>,
    answer: Arc<CachedAnswer>,
    stored: Instant,
}

/// What the actor is asked to do.
pub enum SemanticCacheMsg {
    /// Find an answer for this question of `tenant`.
    Lookup {
        /// Id of the dealership (tenant) it belongs to.
        tenant: String,
        /// Question text.
        question: String,
        /// Its embedding.
        embedding: Arc<[f32]>,
        /// Where the answer goes.
        reply: RpcReplyPort<Option<Arc<CachedAnswer>>>,
    },
    /// Remember an answer.
    Store {
        /// Id of the dealership (tenant) it belongs to.
        tenant: String,
        /// Question text.
        question: String,
        /// Its embedding.
        embedding: Arc<[f32]>,
        /// The answer.
        answer: CachedAnswer,
        /// How long ago it was stored (zero here; a replica's age on another node).
        age: Duration,
    },
    /// Forget one dealership's answers (documents changed), or all.
    Clear(Option<String>),
    /// Counters of one dealership, or of all.
    Stats(Option<String>, RpcReplyPort<CacheStats>),
}

/// The actor.
pub struct SemanticCache;

/// Its state.
pub struct SemanticCacheState {
    config: SemanticCacheConfig,
    tenants: HashMap<String, VecDeque<Entry>>,
    exact: quick_cache::unsync::Cache<(String, String), Arc<CachedAnswer>>,
    stats: CacheStats,
    per_tenant: HashMap<String, CacheStats>,
}

/// The names and numbers a question asks about, lower-cased and sorted: words holding a
/// digit, and capitalised words after the first ("How much is the 2019 Civic?" → 2019,
/// civic). Two questions only share an answer when these are the same, however similar
/// their meaning: "the 2019 Civic" is not "the 2024 Civic", nor "the Accord".
pub fn particulars(question: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut first = true;
    for raw in question.split_whitespace() {
        let is_first = std::mem::replace(&mut first, raw.ends_with(['.', '?', '!']));
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if w.is_empty() || w == "I" || w.starts_with("I'") {
            continue;
        }
        let w = w.strip_suffix("'s").unwrap_or(w);
        let numeric = w.chars().any(|c| c.is_ascii_digit());
        let named = !is_first && w.chars().next().is_some_and(char::is_uppercase);
        if numeric || named {
            out.push(w.to_lowercase().replace([',', '$'], ""));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A question's words, lower case, joined by single spaces: the exact-repeat key.
pub fn normalise(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl SemanticCacheState {
    fn lookup(
        &mut self,
        tenant: String,
        question: &str,
        embedding: &[f32],
    ) -> Option<Arc<CachedAnswer>> {
        let ttl = self.config.ttl;
        let entries = self.tenants.get_mut(&tenant)?;
        entries.retain(|e| e.stored.elapsed() < ttl);
        let key = (tenant, normalise(question));
        if let Some(hit) = self.exact.get(&key)
            && entries.iter().any(|e| e.question == key.1)
        {
            return Some(hit.clone());
        }
        let asked = particulars(question);
        entries
            .iter()
            .filter(|e| e.particulars == asked)
            .map(|e| (crate::vector::cosine(&e.embedding, embedding), e))
            .filter(|(score, _)| *score >= self.config.threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, e)| e.answer.clone())
    }
}

impl Actor for SemanticCache {
    type Msg = SemanticCacheMsg;
    type State = SemanticCacheState;
    type Arguments = SemanticCacheConfig;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        config: SemanticCacheConfig,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SemanticCacheState {
            config,
            tenants: HashMap::new(),
            exact: quick_cache::unsync::Cache::new(10_000),
            stats: CacheStats::default(),
            per_tenant: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SemanticCacheMsg::Lookup {
                tenant,
                question,
                embedding,
                reply,
            } => {
                let found = state.lookup(tenant.clone(), &question, &embedding);
                let counters = state.per_tenant.entry(tenant).or_default();
                for stats in [&mut state.stats, counters] {
                    if found.is_some() {
                        stats.hits += 1;
                    } else {
                        stats.misses += 1;
                    }
                }
                let _ = reply.send(found);
            }
            SemanticCacheMsg::Store {
                tenant,
                question,
                embedding,
                answer,
                age,
            } => {
                if age >= state.config.ttl {
                    return Ok(());
                }
                let answer = Arc::new(answer);
                let particulars = particulars(&question);
                let question = normalise(&question);
                state
                    .exact
                    .insert((tenant.clone(), question.clone()), answer.clone());
                let entries = state.tenants.entry(tenant).or_default();
                entries.retain(|e| e.question != question);
                entries.push_back(Entry {
                    question,
                    particulars,
                    embedding,
                    answer,
                    stored: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
                });
                while entries.len() > state.config.per_tenant {
                    entries.pop_front();
                }
            }
            SemanticCacheMsg::Clear(tenant) => match tenant {
                Some(t) => {
                    state.tenants.remove(&t);
                }
                None => state.tenants.clear(),
            },
            SemanticCacheMsg::Stats(tenant, reply) => {
                let stats = match tenant {
                    None => CacheStats {
                        entries: state.tenants.values().map(|v| v.len() as u64).sum(),
                        ..state.stats
                    },
                    Some(t) => CacheStats {
                        entries: state.tenants.get(&t).map_or(0, |v| v.len() as u64),
                        ..state.per_tenant.get(&t).copied().unwrap_or_default()
                    },
                };
                let _ = reply.send(stats);
            }
        }
        Ok(())
    }
}

/// Typed handle with timeouts.
#[derive(Clone)]
pub struct SemanticCacheHandle {
    actor: ActorRef<SemanticCacheMsg>,
    metrics: ActorMetrics,
    tier: Option<Arc<dyn SemanticTier>>,
}

const CALL_TIMEOUT: Duration = Duration::from_millis(500);

impl SemanticCacheHandle {
    /// Starts the shared cache.
    pub async fn start(
        config: SemanticCacheConfig,
        metrics: ActorMetrics,
    ) -> Result<Self, ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(None, SemanticCache, config).await?;
        Ok(Self {
            actor,
            metrics,
            tier: None,
        })
    }

    /// This handle (and its clones made afterwards) also tells `tier` of stores and clears.
    pub fn with_tier(mut self, tier: Arc<dyn SemanticTier>) -> Self {
        self.tier = Some(tier);
        self
    }

    /// A stored answer for a similar question of the same dealership.
    pub async fn lookup(
        &self,
        tenant: &str,
        question: &str,
        embedding: Arc<[f32]>,
    ) -> Option<Arc<CachedAnswer>> {
        let lookup = |reply| SemanticCacheMsg::Lookup {
            tenant: tenant.to_owned(),
            question: question.to_owned(),
            embedding,
            reply,
        };
        let found = crate::rpc::ask(&self.actor, lookup, CALL_TIMEOUT)
            .await
            .flatten();
        let result = if found.is_some() { "hit" } else { "miss" };
        self.metrics
            .cache_lookups
            .with_label_values(&["semantic", result])
            .inc();
        found
    }

    /// Remembers an answer (and tells the shared tier).
    pub fn store(&self, tenant: &str, question: &str, embedding: Arc<[f32]>, answer: CachedAnswer) {
        if let Some(tier) = &self.tier {
            tier.stored(SharedAnswer {
                tenant: tenant.to_owned(),
                question: question.to_owned(),
                embedding: embedding.to_vec(),
                text: answer.text.clone(),
                citations: answer.citations.clone(),
                stored_at_ms: unix_ms(),
            });
        }
        let _ = self.actor.cast(SemanticCacheMsg::Store {
            tenant: tenant.to_owned(),
            question: question.to_owned(),
            embedding,
            answer,
            age: Duration::ZERO,
        });
    }

    /// Remembers an answer another node stored (the tier is not told again); an answer
    /// older than the TTL is ignored.
    pub fn store_replica(&self, shared: SharedAnswer) {
        let age = Duration::from_millis(unix_ms().saturating_sub(shared.stored_at_ms));
        let _ = self.actor.cast(SemanticCacheMsg::Store {
            tenant: shared.tenant,
            question: shared.question,
            embedding: shared.embedding.into(),
            answer: CachedAnswer {
                text: shared.text,
                citations: shared.citations,
            },
            age,
        });
    }

    /// Forgets a dealership's answers (or all), here and through the shared tier.
    pub fn clear(&self, tenant: Option<&str>) {
        if let Some(tier) = &self.tier {
            tier.cleared(tenant);
        }
        self.clear_replica(tenant);
    }

    /// Forgets a dealership's answers (or all) on this node only: another node cleared.
    pub fn clear_replica(&self, tenant: Option<&str>) {
        let _ = self
            .actor
            .cast(SemanticCacheMsg::Clear(tenant.map(str::to_owned)));
    }

    /// Counters of every dealership.
    pub async fn stats(&self) -> Option<CacheStats> {
        self.stats_for(None).await
    }

    /// Counters of one dealership (`None`: all).
    pub async fn stats_for(&self, tenant: Option<&str>) -> Option<CacheStats> {
        let tenant = tenant.map(str::to_owned);
        crate::rpc::ask(
            &self.actor,
            |reply| SemanticCacheMsg::Stats(tenant, reply),
            CALL_TIMEOUT,
        )
        .await
    }

    /// Stops the actor.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_differing_in_a_name_or_number_do_not_share_an_answer() {
        assert_eq!(
            particulars("How much is the 2019 Civic?"),
            ["2019", "civic"]
        );
        assert_ne!(
            particulars("How much is the 2019 Civic?"),
            particulars("What does a 2024 Civic cost?")
        );
        assert_eq!(
            particulars("How much is the Civic?"),
            particulars("What's the price of a Civic?")
        );
        assert!(particulars("When do you open on weekdays?").is_empty());
        assert_eq!(particulars("Is it $1,299?"), ["1299"]);
    }
    use crate::simulated::HashEmbedder;

    #[tokio::test(start_paused = true)]
    async fn similar_questions_hit_per_tenant_and_expire() {
        let e = HashEmbedder { dim: 128 };
        let config = SemanticCacheConfig {
            threshold: 0.9,
            ttl: Duration::from_millis(200),
            per_tenant: 10,
        };
        let cache = SemanticCacheHandle::start(config, ActorMetrics::unregistered())
            .await
            .expect("start");
        let q = "What are your opening hours?";
        let answer = CachedAnswer {
            text: "Eight to six.".into(),
            citations: vec![],
        };
        cache.store("a", q, e.embed_one(q).into(), answer.clone());
        let similar = "what are your opening hours";
        let hit = cache
            .lookup("a", similar, e.embed_one(similar).into())
            .await;
        assert_eq!(hit.as_deref(), Some(&answer));
        assert!(
            cache
                .lookup("b", similar, e.embed_one(similar).into())
                .await
                .is_none(),
            "other tenant"
        );
        let other = "How much is an oil change?";
        assert!(
            cache
                .lookup("a", other, e.embed_one(other).into())
                .await
                .is_none()
        );
        let stats = cache.stats().await.expect("stats");
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 1));
        let b = cache.stats_for(Some("b")).await.expect("stats of b");
        assert_eq!((b.hits, b.misses, b.entries), (0, 1, 0));
        tokio::time::advance(Duration::from_millis(250)).await;
        assert!(
            cache.lookup("a", q, e.embed_one(q).into()).await.is_none(),
            "expired"
        );
        cache.stop();
    }

    #[tokio::test]
    async fn a_cached_answer_is_not_served_for_another_model_year() {
        let cache = SemanticCacheHandle::start(
            SemanticCacheConfig::default(),
            ActorMetrics::unregistered(),
        )
        .await
        .expect("start");
        // The same vector for both: only the year tells them apart.
        let v: Arc<[f32]> = vec![0.6_f32, 0.8].into();
        let answer = CachedAnswer {
            text: "The 2019 Civic is $14,900.".into(),
            citations: vec![],
        };
        cache.store(
            "a",
            "How much is the 2019 Civic?",
            v.clone(),
            answer.clone(),
        );
        assert!(
            cache
                .lookup("a", "How much is the 2024 Civic?", v.clone())
                .await
                .is_none()
        );
        let hit = cache.lookup("a", "What's the 2019 Civic's price?", v).await;
        assert_eq!(hit.as_deref(), Some(&answer));
        cache.stop();
    }

    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<String>>);

    impl SemanticTier for Recorder {
        fn stored(&self, answer: SharedAnswer) {
            self.0
                .lock()
                .expect("lock")
                .push(format!("stored {}", answer.tenant));
        }
        fn cleared(&self, tenant: Option<&str>) {
            self.0
                .lock()
                .expect("lock")
                .push(format!("cleared {tenant:?}"));
        }
    }

    #[tokio::test]
    async fn the_tier_hears_local_changes_and_replicas_hit_until_their_ttl() {
        let e = HashEmbedder { dim: 64 };
        let config = SemanticCacheConfig {
            threshold: 0.9,
            ttl: Duration::from_secs(60),
            per_tenant: 10,
        };
        let recorder = Arc::new(Recorder::default());
        let cache = SemanticCacheHandle::start(config, ActorMetrics::unregistered())
            .await
            .expect("start")
            .with_tier(recorder.clone());
        let q = "Do you sell used cars?";
        let replica = |question: &str, age_ms: u64| SharedAnswer {
            tenant: "a".into(),
            question: question.into(),
            embedding: e.embed_one(question),
            text: "Yes.".into(),
            citations: vec![],
            stored_at_ms: unix_ms() - age_ms,
        };
        cache.store_replica(replica(q, 1_000));
        let stale = "Is there a car wash?";
        cache.store_replica(replica(stale, 61_000));
        assert!(cache.lookup("a", q, e.embed_one(q).into()).await.is_some());
        assert!(
            cache
                .lookup("a", stale, e.embed_one(stale).into())
                .await
                .is_none(),
            "older than the TTL"
        );
        cache.clear_replica(Some("a"));
        assert!(cache.lookup("a", q, e.embed_one(q).into()).await.is_none());
        assert!(
            recorder.0.lock().expect("lock").is_empty(),
            "replicas stay local"
        );
        let answer = CachedAnswer {
            text: "Yes.".into(),
            citations: vec![],
        };
        cache.store("a", q, e.embed_one(q).into(), answer);
        cache.clear(None);
        assert_eq!(
            *recorder.0.lock().expect("lock"),
            ["stored a", "cleared None"]
        );
        cache.stop();
    }
}
