//! Pinecone: chunk vectors in a managed serverless index, reached over its REST data
//! plane (`https://INDEX-PROJECT.svc.ENV.pinecone.io`, `Api-Key` and
//! `X-Pinecone-API-Version` headers).
//!
//! - One namespace per dealership, `{namespace_prefix}{tenant}`: every call names it, so
//!   one dealership never reads another's vectors (the namespace is the tenant filter).
//! - A chunk's vector id is `{document_id}#{seq}`, so a document's vectors are found by
//!   id prefix with `GET /vectors/list` (serverless indexes cannot delete by metadata).
//! - Metadata carries the document id, title, heading, page and text, so a search needs
//!   no database round trip.
//! - Upserts go in batches of at most [`UPSERT_BATCH`] vectors and [`UPSERT_BODY_BUDGET`]
//!   bytes (Pinecone allows 1,000 vectors and 2 MB); deletes in batches of at most
//!   [`DELETE_BATCH`] ids (Pinecone's limit).
//! - 429, 5xx and network errors are retried with exponential backoff and jitter
//!   (honouring `Retry-After`), up to `max_retries` times, then reported as
//!   [`StoreError::Unavailable`]; other 4xx are [`StoreError::Rejected`] with Pinecone's
//!   message. Every request has the configured timeout.
//! - Pinecone is eventually consistent: a vector just upserted may be missing from
//!   `list` (and `query`) for a few seconds. So the ids this process wrote in the last
//!   [`FRESHNESS`] are remembered per document and deleted along with the listed ones: a
//!   document replaced or deleted right after its upsert leaves no orphan to surface
//!   later. A delete in a namespace that does not exist (yet, or any more) answers 404,
//!   which means there is nothing to delete.
//! - The API key is only ever a sensitive header value; it is never logged or shown in
//!   `Debug` output.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adam_actors::ports::{BoxFuture, Passage};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::store::{ChunkRecord, StoreError, VectorStore};

/// Most vectors sent in one upsert request (Pinecone recommends 100, allows 1,000).
pub const UPSERT_BATCH: usize = 100;
/// Largest upsert request body we build, bytes (Pinecone's limit is 2 MB).
pub const UPSERT_BODY_BUDGET: usize = 1_500_000;
/// Most ids named in one delete request (Pinecone's limit).
pub const DELETE_BATCH: usize = 1_000;
/// Ids asked for per `list` page (Pinecone's default page size).
pub const LIST_PAGE: usize = 100;
/// Largest metadata Pinecone keeps per vector, bytes.
pub const MAX_METADATA_BYTES: usize = 40 * 1024;

/// First retry delay; doubled on every further attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest computed backoff between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Longest wait a `Retry-After` header can impose.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);
/// How long ids written by this process are remembered for deletes: well past the few
/// seconds Pinecone's `list` may lag behind an upsert.
pub const FRESHNESS: Duration = Duration::from_secs(120);
/// When and which ids of one document this process upserted last.
type Written = (Instant, HashSet<String>);
/// Longest error text kept from a response body.
const ERROR_TEXT_LIMIT: usize = 500;

/// `[knowledge.pinecone]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PineconeConfig {
    /// The index host, e.g. `https://my-index-abc1234.svc.aped-4627-b74a.pinecone.io`
    /// (`https://` is assumed when no scheme is given; plain `http://` only for a
    /// loopback host such as Pinecone Local).
    pub index_host: String,
    /// API key; from [`PineconeConfig::API_KEY_ENV`] only, never from a file (a file
    /// naming it is refused as an unknown field).
    #[serde(skip)]
    pub api_key: Option<SecretString>,
    /// Namespace of dealership `T` is `{namespace_prefix}T`.
    pub namespace_prefix: String,
    /// Timeout of every request, milliseconds.
    pub timeout_ms: u64,
    /// Retries after a 429, 5xx or network error (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// `X-Pinecone-API-Version` sent with every request.
    pub api_version: String,
}

impl PineconeConfig {
    /// The environment variable the API key comes from.
    pub const API_KEY_ENV: &'static str = "ADAM__KNOWLEDGE__PINECONE__API_KEY";
}

impl Default for PineconeConfig {
    fn default() -> Self {
        Self {
            index_host: String::new(),
            api_key: None,
            namespace_prefix: "dealership-".into(),
            timeout_ms: 10_000,
            max_retries: 3,
            api_version: "2025-04".into(),
        }
    }
}

/// A [`VectorStore`] on one Pinecone serverless index.
#[derive(Clone)]
pub struct PineconeStore {
    client: reqwest::Client,
    base: Url,
    namespace_prefix: String,
    max_retries: u32,
    /// (namespace, document id) → when and which ids this process upserted last, kept
    /// for [`FRESHNESS`] (the ids `list` may not show yet).
    written: Arc<Mutex<HashMap<(String, String), Written>>>,
}

impl fmt::Debug for PineconeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PineconeStore")
            .field("index_host", &self.base.as_str())
            .field("namespace_prefix", &self.namespace_prefix)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl PineconeStore {
    /// A client for `config`'s index; fails when the host or the key is missing or unusable.
    /// Makes no request.
    pub fn new(config: &PineconeConfig) -> Result<Self, String> {
        let base = parse_host(&config.index_host)?;
        let key = config
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().trim())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                format!(
                    "knowledge.pinecone.api_key is not set: set {}",
                    PineconeConfig::API_KEY_ENV
                )
            })?;
        let mut key = HeaderValue::from_str(key).map_err(|_| {
            "knowledge.pinecone.api_key holds characters not allowed in an HTTP header".to_string()
        })?;
        key.set_sensitive(true);
        let version = config.api_version.trim();
        if version.is_empty() {
            return Err("knowledge.pinecone.api_version must not be empty (e.g. 2025-04)".into());
        }
        let version = HeaderValue::from_str(version).map_err(|_| {
            "knowledge.pinecone.api_version is not a valid header value".to_string()
        })?;
        if config.timeout_ms == 0 {
            return Err("knowledge.pinecone.timeout_ms must be at least 1".into());
        }
        let mut headers = HeaderMap::new();
        headers.insert("Api-Key", key);
        headers.insert("X-Pinecone-API-Version", version);
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would carry the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("adam/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the Pinecone HTTP client: {e}"))?;
        Ok(Self {
            client,
            base,
            namespace_prefix: config.namespace_prefix.clone(),
            max_retries: config.max_retries,
            written: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The ids of `document_id` written in the last [`FRESHNESS`], replaced by `now`
    /// (`None`: forgotten, the document is deleted).
    fn swap_written(
        &self,
        namespace: &str,
        document_id: &str,
        now: Option<HashSet<String>>,
    ) -> HashSet<String> {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        written.retain(|_, (at, _)| at.elapsed() < FRESHNESS);
        let key = (namespace.to_owned(), document_id.to_owned());
        let before = match now {
            Some(ids) => written.insert(key, (Instant::now(), ids)),
            None => written.remove(&key),
        };
        before.map(|(_, ids)| ids).unwrap_or_default()
    }

    /// The namespace holding `tenant`'s vectors.
    pub fn namespace(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.namespace_prefix)
    }

    /// The index's vector dimension (`describe_index_stats`); `None` for a sparse index.
    pub async fn dimension(&self) -> Result<Option<usize>, StoreError> {
        #[derive(Deserialize)]
        struct Stats {
            dimension: Option<u64>,
        }
        let body = to_body(&json!({}))?;
        let stats: Stats = self
            .call(Method::POST, self.url("describe_index_stats"), Some(body))
            .await?;
        stats
            .dimension
            .map(|d| {
                usize::try_from(d)
                    .map_err(|_| StoreError::Unavailable(format!("implausible dimension {d}")))
            })
            .transpose()
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Every id in `namespace` belonging to `document_id` (`{document_id}#{seq}`).
    async fn document_ids(
        &self,
        namespace: &str,
        document_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct Item {
            id: String,
        }
        #[derive(Deserialize)]
        struct Pagination {
            next: Option<String>,
        }
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            vectors: Vec<Item>,
            pagination: Option<Pagination>,
        }
        let prefix = id_prefix(document_id);
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = self.url("vectors/list");
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("namespace", namespace)
                    .append_pair("prefix", &prefix)
                    .append_pair("limit", &LIST_PAGE.to_string());
                if let Some(token) = &token {
                    query.append_pair("paginationToken", token);
                }
            }
            let page: Page = self.call(Method::GET, url, None).await?;
            ids.extend(
                page.vectors
                    .into_iter()
                    .map(|v| v.id)
                    .filter(|id| seq_of(id, &prefix).is_some()),
            );
            match page
                .pagination
                .and_then(|p| p.next)
                .filter(|t| !t.is_empty())
            {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                Some(_) => {
                    return Err(StoreError::Unavailable(
                        "Pinecone returned the same pagination token twice".into(),
                    ));
                }
                None => return Ok(ids),
            }
        }
    }

    /// Deletes `ids` from `namespace`, [`DELETE_BATCH`] at a time. A 404 (the namespace
    /// does not exist) means there is nothing left to delete.
    async fn delete_ids(&self, namespace: &str, ids: &[String]) -> Result<(), StoreError> {
        for batch in ids.chunks(DELETE_BATCH) {
            let body = to_body(&json!({ "ids": batch, "namespace": namespace }))?;
            let deleted: Option<IgnoredAny> = self
                .request(Method::POST, self.url("vectors/delete"), Some(body), true)
                .await?;
            if deleted.is_none() {
                tracing::debug!(namespace = %namespace, "Pinecone namespace not found; nothing to delete");
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sends one request, retrying 429, 5xx and network errors with backoff.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<T, StoreError> {
        let answer = self.request(method, url, body, false).await?;
        answer.ok_or_else(|| StoreError::Rejected("Pinecone: not found".into()))
    }

    /// [`Self::call`], with a 404 answered as `None` when `not_found_is_none`.
    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        not_found_is_none: bool,
    ) -> Result<Option<T>, StoreError> {
        let op = url.path().to_string();
        let mut attempt: u32 = 0;
        loop {
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(body) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let failure = match request.send().await {
                Ok(response) if not_found_is_none && response.status() == StatusCode::NOT_FOUND => {
                    return Ok(None);
                }
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(bytes) => {
                        return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                            StoreError::Unavailable(format!(
                                "unexpected answer from Pinecone {op}: {e}"
                            ))
                        });
                    }
                    Err(e) => Failure::retry(format!("reading the answer: {}", chain(&e)), None),
                },
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let text = response.text().await.unwrap_or_default();
                    let message = format!("HTTP {}: {}", status.as_u16(), error_message(&text));
                    if retryable(status) {
                        Failure::retry(message, retry_after)
                    } else {
                        return Err(StoreError::Rejected(format!("Pinecone {op}: {message}")));
                    }
                }
                Err(e) if e.is_builder() => {
                    return Err(StoreError::Rejected(format!(
                        "Pinecone {op}: {}",
                        chain(&e)
                    )));
                }
                Err(e) => Failure::retry(chain(&e), None),
            };
            if attempt >= self.max_retries {
                return Err(StoreError::Unavailable(format!(
                    "Pinecone {op} failed after {} attempt(s): {}",
                    attempt + 1,
                    failure.message
                )));
            }
            let delay = failure
                .retry_after
                .map(|d| d.min(RETRY_AFTER_CAP))
                .unwrap_or_else(|| backoff(attempt));
            tracing::warn!(
                op = %op,
                attempt = attempt + 1,
                delay_ms = delay.as_millis() as u64,
                error = %failure.message,
                "Pinecone request failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

impl VectorStore for PineconeStore {
    fn kind(&self) -> &'static str {
        "pinecone"
    }

    /// Upserts every chunk as `{document_id}#{seq}`, then deletes the document's other
    /// vectors (those of an older, longer version). Ids are overwritten in place, so the
    /// document never disappears from search while it is replaced, and a refused upsert
    /// (wrong dimension) leaves the previous version whole.
    fn upsert<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
        chunks: &'a [ChunkRecord],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let namespace = self.namespace(tenant);
            let vectors = encode_vectors(document_id, chunks)?;
            for body in upsert_bodies(&namespace, &vectors.encoded)? {
                let _: IgnoredAny = self
                    .call(Method::POST, self.url("vectors/upsert"), Some(body))
                    .await?;
            }
            // Listed, or written by this process lately (a list may not show those yet).
            let mut known: HashSet<String> =
                self.swap_written(&namespace, document_id, Some(vectors.ids.clone()));
            known.extend(self.document_ids(&namespace, document_id).await?);
            let mut stale: Vec<String> = known
                .into_iter()
                .filter(|id| !vectors.ids.contains(id))
                .collect();
            stale.sort();
            self.delete_ids(&namespace, &stale).await?;
            tracing::debug!(
                namespace = %namespace,
                document_id,
                upserted = vectors.ids.len(),
                removed = stale.len(),
                "Pinecone document replaced"
            );
            Ok(())
        })
    }

    fn delete_document<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let namespace = self.namespace(tenant);
            let written = self.swap_written(&namespace, document_id, None);
            let deleted = async {
                let mut ids = written.clone();
                ids.extend(self.document_ids(&namespace, document_id).await?);
                let mut ids: Vec<String> = ids.into_iter().collect();
                ids.sort();
                self.delete_ids(&namespace, &ids).await?;
                Ok::<_, StoreError>(ids)
            };
            let ids = match deleted.await {
                Ok(ids) => ids,
                Err(e) => {
                    // Still owed: a retried delete must find these ids again.
                    self.swap_written(&namespace, document_id, Some(written));
                    return Err(e);
                }
            };
            tracing::debug!(namespace = %namespace, document_id, removed = ids.len(), "Pinecone document deleted");
            Ok(())
        })
    }

    fn search<'a>(
        &'a self,
        tenant: &'a str,
        vector: &'a [f32],
        k: usize,
    ) -> BoxFuture<'a, Result<Vec<Passage>, StoreError>> {
        Box::pin(async move {
            #[derive(Deserialize)]
            struct Match {
                score: Option<f32>,
                #[serde(default)]
                metadata: Option<Map<String, Value>>,
            }
            #[derive(Deserialize)]
            struct Answer {
                #[serde(default)]
                matches: Vec<Match>,
            }
            if k == 0 {
                return Ok(Vec::new());
            }
            let vector = normalized(vector)?;
            let body = to_body(&json!({
                "namespace": self.namespace(tenant),
                "vector": vector,
                "topK": k.min(10_000),
                "includeMetadata": true,
                "includeValues": false,
            }))?;
            let answer: Answer = self
                .call(Method::POST, self.url("query"), Some(body))
                .await?;
            let mut passages: Vec<Passage> = answer
                .matches
                .into_iter()
                .filter_map(|m| {
                    let passage = m
                        .metadata
                        .as_ref()
                        .and_then(|meta| passage_from_metadata(meta, m.score.unwrap_or(0.0)));
                    if passage.is_none() {
                        tracing::warn!("Pinecone match without Adam's metadata skipped");
                    }
                    passage
                })
                .collect();
            passages.sort_by(|a, b| b.score.total_cmp(&a.score));
            Ok(passages)
        })
    }
}

/// A retryable failure of one attempt.
struct Failure {
    message: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn retry(message: String, retry_after: Option<Duration>) -> Self {
        Self {
            message,
            retry_after,
        }
    }
}

/// The document's vectors, each already JSON, and their ids.
struct EncodedVectors {
    encoded: Vec<Vec<u8>>,
    ids: HashSet<String>,
}

fn parse_host(host: &str) -> Result<Url, String> {
    let host = host.trim();
    if host.is_empty() {
        return Err(
            "knowledge.pinecone.index_host is not set (the index's host, e.g. \
             https://my-index-abc1234.svc.aped-4627-b74a.pinecone.io)"
                .into(),
        );
    }
    let with_scheme = if host.contains("://") {
        host.to_string()
    } else {
        format!("https://{host}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| format!("knowledge.pinecone.index_host `{host}` is not a URL: {e}"))?;
    let loopback = url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "knowledge.pinecone.index_host `{host}` must use https (the API key would travel in clear)"
            ));
        }
        other => {
            return Err(format!(
                "knowledge.pinecone.index_host `{host}`: unsupported scheme {other}"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty)
        || url.query().is_some()
        || !matches!(url.path(), "" | "/")
    {
        return Err(format!(
            "knowledge.pinecone.index_host `{host}` must be a bare host, without path or query"
        ));
    }
    Ok(url)
}

fn id_prefix(document_id: &str) -> String {
    format!("{document_id}#")
}

/// The `seq` of a vector id `{prefix}{seq}`; `None` for an id of another document whose
/// id merely starts with the same characters.
fn seq_of(id: &str, prefix: &str) -> Option<u32> {
    let rest = id.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

fn to_body(value: &Value) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|e| StoreError::Rejected(format!("cannot encode request: {e}")))
}

/// `vector` scaled to unit length (so cosine and dot-product indexes agree); refuses
/// empty, non-finite and all-zero vectors.
fn normalized(vector: &[f32]) -> Result<Vec<f32>, StoreError> {
    if vector.is_empty() {
        return Err(StoreError::Rejected("empty vector".into()));
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::Rejected("vector holds NaN or infinity".into()));
    }
    let norm = vector
        .iter()
        .map(|x| f64::from(*x).powi(2))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return Err(StoreError::Rejected(
            "all-zero vector (Pinecone needs at least one non-zero value)".into(),
        ));
    }
    Ok(vector
        .iter()
        .map(|x| (f64::from(*x) / norm) as f32)
        .collect())
}

fn metadata(document_id: &str, chunk: &ChunkRecord) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("document_id".into(), document_id.into());
    m.insert("chunk_id".into(), chunk.id.clone().into());
    m.insert("seq".into(), chunk.seq.into());
    m.insert("title".into(), chunk.title.clone().into());
    // Pinecone refuses null metadata values: absent fields are left out.
    if let Some(heading) = chunk.heading.as_ref().filter(|h| !h.is_empty()) {
        m.insert("heading".into(), heading.clone().into());
    }
    if let Some(page) = chunk.page {
        m.insert("page".into(), page.into());
    }
    m.insert("text".into(), chunk.text.clone().into());
    m
}

/// Checks and serialises every chunk of one document.
fn encode_vectors(document_id: &str, chunks: &[ChunkRecord]) -> Result<EncodedVectors, StoreError> {
    if document_id.is_empty() {
        return Err(StoreError::Rejected("empty document id".into()));
    }
    let dimension = chunks.first().map(|c| c.vector.len());
    let mut encoded = Vec::with_capacity(chunks.len());
    let mut ids = HashSet::with_capacity(chunks.len());
    for chunk in chunks {
        if Some(chunk.vector.len()) != dimension {
            return Err(StoreError::Rejected(format!(
                "chunk {} of document {document_id} has {} dimensions, the first has {}",
                chunk.seq,
                chunk.vector.len(),
                dimension.unwrap_or(0)
            )));
        }
        let id = format!("{}{}", id_prefix(document_id), chunk.seq);
        if !ids.insert(id.clone()) {
            return Err(StoreError::Rejected(format!(
                "document {document_id} has two chunks with seq {}",
                chunk.seq
            )));
        }
        let metadata = metadata(document_id, chunk);
        let metadata_len = serde_json::to_vec(&metadata)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if metadata_len > MAX_METADATA_BYTES {
            return Err(StoreError::Rejected(format!(
                "chunk {} of document {document_id}: metadata of {metadata_len} bytes is over \
                 Pinecone's {MAX_METADATA_BYTES}",
                chunk.seq
            )));
        }
        let values = normalized(&chunk.vector).map_err(|e| {
            StoreError::Rejected(format!(
                "chunk {} of document {document_id}: {e}",
                chunk.seq
            ))
        })?;
        encoded.push(to_body(
            &json!({ "id": id, "values": values, "metadata": metadata }),
        )?);
    }
    Ok(EncodedVectors { encoded, ids })
}

/// Upsert request bodies: at most [`UPSERT_BATCH`] vectors and about
/// [`UPSERT_BODY_BUDGET`] bytes each.
fn upsert_bodies(namespace: &str, vectors: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, StoreError> {
    let head = format!("{{\"namespace\":{},\"vectors\":[", Value::from(namespace));
    let tail = "]}";
    let mut bodies = Vec::new();
    let mut body = head.clone().into_bytes();
    let mut count = 0;
    for vector in vectors {
        if head.len() + vector.len() + tail.len() > UPSERT_BODY_BUDGET {
            return Err(StoreError::Rejected(format!(
                "one vector needs {} bytes, over the {UPSERT_BODY_BUDGET}-byte request budget",
                vector.len()
            )));
        }
        if count == UPSERT_BATCH || body.len() + 1 + vector.len() + tail.len() > UPSERT_BODY_BUDGET
        {
            body.extend_from_slice(tail.as_bytes());
            bodies.push(std::mem::replace(&mut body, head.clone().into_bytes()));
            count = 0;
        }
        if count > 0 {
            body.push(b',');
        }
        body.extend_from_slice(vector);
        count += 1;
    }
    if count > 0 {
        body.extend_from_slice(tail.as_bytes());
        bodies.push(body);
    }
    Ok(bodies)
}

/// A passage rebuilt from a match's metadata; `None` when it lacks Adam's fields.
fn passage_from_metadata(m: &Map<String, Value>, score: f32) -> Option<Passage> {
    let text = |key: &str| m.get(key).and_then(Value::as_str).map(str::to_string);
    // Pinecone keeps numbers as floats: `3` may come back as `3.0`.
    let number = |key: &str| {
        m.get(key)
            .and_then(Value::as_f64)
            .filter(|n| n.is_finite() && *n >= 0.0 && *n <= f64::from(u32::MAX))
            .map(|n| n as u32)
    };
    Some(super::store::passage(
        text("document_id")?,
        &text("title").unwrap_or_default(),
        text("heading").as_deref(),
        number("page"),
        text("text")?,
        score,
    ))
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = value.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// `100 ms · 2^attempt`, capped, with equal jitter (half fixed, half random).
fn backoff(attempt: u32) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    let half = full / 2;
    let jitter = rand::random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// The human part of a Pinecone error body: `{"code": 3, "message": "…"}` (data plane),
/// `{"error": {"code": "…", "message": "…"}}` (control plane and gateway), a JSON string
/// or plain text.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match &v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => {
                let inner = o.get("error").and_then(Value::as_object);
                let message = o
                    .get("message")
                    .and_then(Value::as_str)
                    .or_else(|| inner.and_then(|e| e.get("message")).and_then(Value::as_str))
                    .or_else(|| o.get("error").and_then(Value::as_str))?;
                let code = inner
                    .and_then(|e| e.get("code"))
                    .and_then(|c| c.as_str().map(str::to_string))
                    .or_else(|| {
                        o.get("code")
                            .map(|c| c.to_string().trim_matches('"').to_string())
                    });
                Some(match code {
                    Some(code) if !code.is_empty() => format!("{message} (code {code})"),
                    _ => message.to_string(),
                })
            }
            _ => None,
        });
    let message = from_json.unwrap_or_else(|| body.trim().to_string());
    let message = if message.is_empty() {
        "(no message)".to_string()
    } else {
        message
    };
    truncate(message, ERROR_TEXT_LIMIT)
}

fn truncate(mut s: String, limit: usize) -> String {
    if s.len() > limit {
        let mut end = limit;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// An error with its sources, which say what actually failed (refused, timed out…).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_both_shapes_give_their_message() {
        assert_eq!(
            error_message(
                r#"{"code":3,"message":"Vector dimension 3 does not match","details":[]}"#
            ),
            "Vector dimension 3 does not match (code 3)"
        );
        assert_eq!(
            error_message(
                r#"{"error":{"code":"UNAUTHENTICATED","message":"Invalid API Key"},"status":401}"#
            ),
            "Invalid API Key (code UNAUTHENTICATED)"
        );
        assert_eq!(error_message(r#""Unauthorized""#), "Unauthorized");
        assert_eq!(
            error_message("upstream connect error"),
            "upstream connect error"
        );
        assert_eq!(error_message(""), "(no message)");
    }

    #[test]
    fn only_this_documents_ids_match_its_prefix() {
        assert_eq!(seq_of("doc#12", "doc#"), Some(12));
        assert_eq!(
            seq_of("doc#12#3", "doc#"),
            None,
            "a document named `doc#12`"
        );
        assert_eq!(seq_of("doc#", "doc#"), None);
        assert_eq!(seq_of("docx#1", "doc#"), None);
    }

    #[test]
    fn upserts_are_batched_by_count_and_size() {
        let small: Vec<Vec<u8>> = (0..250)
            .map(|i| format!("{{\"id\":\"d#{i}\"}}").into_bytes())
            .collect();
        let bodies = upsert_bodies("ns", &small).expect("bodies");
        assert_eq!(bodies.len(), 3);
        let counts: Vec<usize> = bodies
            .iter()
            .map(|b| {
                let v: Value = serde_json::from_slice(b).expect("valid JSON");
                assert_eq!(v["namespace"], "ns");
                v["vectors"].as_array().expect("array").len()
            })
            .collect();
        assert_eq!(counts, [100, 100, 50]);

        let big: Vec<Vec<u8>> = (0..10)
            .map(|i| format!("{{\"id\":\"d#{i}\",\"t\":\"{}\"}}", "x".repeat(400_000)).into_bytes())
            .collect();
        let bodies = upsert_bodies("ns", &big).expect("bodies");
        assert!(bodies.iter().all(|b| b.len() <= UPSERT_BODY_BUDGET));
        assert_eq!(bodies.len(), 4, "three 400 kB vectors per body");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..4 {
            let full = BACKOFF_BASE * (1 << attempt);
            let d = backoff(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(40) <= BACKOFF_CAP);
    }

    #[test]
    fn hosts_need_https_unless_loopback() {
        assert!(parse_host("idx-abc.svc.us-east-1.pinecone.io").is_ok());
        assert!(parse_host("http://127.0.0.1:5080").is_ok());
        assert!(parse_host("http://idx.pinecone.io").is_err());
        assert!(parse_host("https://idx.pinecone.io/query").is_err());
        assert!(parse_host("").is_err());
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let config = PineconeConfig {
            index_host: "https://idx.pinecone.io".into(),
            api_key: Some(SecretString::from("pcsk_super_secret")),
            ..PineconeConfig::default()
        };
        let store = PineconeStore::new(&config).expect("store");
        assert!(!format!("{store:?}").contains("super_secret"));
        assert!(!format!("{config:?}").contains("super_secret"));
    }

    #[test]
    fn missing_host_or_key_is_a_clear_error() {
        let no_key = PineconeConfig {
            index_host: "https://idx.pinecone.io".into(),
            ..PineconeConfig::default()
        };
        let err = PineconeStore::new(&no_key).expect_err("no key");
        assert!(err.contains(PineconeConfig::API_KEY_ENV), "{err}");
        let no_host = PineconeConfig {
            api_key: Some(SecretString::from("k")),
            ..PineconeConfig::default()
        };
        let err = PineconeStore::new(&no_host).expect_err("no host");
        assert!(err.contains("index_host"), "{err}");
    }

    #[test]
    fn a_file_cannot_hold_the_key() {
        let err =
            serde_json::from_str::<PineconeConfig>(r#"{"api_key": "k"}"#).expect_err("refused");
        assert!(err.to_string().contains("api_key"), "{err}");
    }
}
