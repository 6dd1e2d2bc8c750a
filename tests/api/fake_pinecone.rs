//! A local stand-in for one Pinecone serverless index's REST data plane (API version
//! 2025-04 wire shapes): `POST /vectors/upsert`, `POST /query`, `GET /vectors/list`,
//! `POST /vectors/delete`, `POST /describe_index_stats`.
//!
//! Like Pinecone it checks the `Api-Key` header (401), wants an `X-Pinecone-API-Version`
//! header, refuses vectors of another dimension (400, `{"code":3,"message":…}`), more
//! than 1,000 vectors per upsert or ids per delete, null metadata values, metadata over
//! 40 KB, delete by metadata filter (serverless) and bodies over 2 MB (axum's default
//! limit, 413). Lists are sorted by id and paginated with an opaque token. It can be told
//! to fail the next requests with a status, and logs every request.
//!
//! Like Pinecone it is eventually consistent when told to be (`set_freshness_lag`):
//! upserted vectors reach `list` and `query` only after the lag ("Pinecone is eventually
//! consistent … a slight delay before new or changed records are visible", docs.pinecone.io
//! data freshness), and a delete naming a namespace that does not exist answers 404
//! `{"code": 5, "message": "Namespace not found"}` (as the serverless data plane does).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

const MAX_UPSERT_VECTORS: usize = 1_000;
const MAX_DELETE_IDS: usize = 1_000;
const MAX_METADATA_BYTES: usize = 40 * 1024;
const MAX_ID_LEN: usize = 512;
const DEFAULT_NAMESPACE: &str = "__default__";

pub struct FakePinecone {
    addr: SocketAddr,
    state: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakePinecone {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Shared {
    api_key: String,
    dimension: usize,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake pinecone state")
    }
}

#[derive(Default)]
struct Inner {
    /// Namespace → id (sorted bitwise, like Pinecone's list) → record.
    namespaces: HashMap<String, BTreeMap<String, Record>>,
    log: Vec<String>,
    failures: Option<(usize, StatusCode)>,
    /// How long an upsert takes to reach `list` and `query`.
    lag: std::time::Duration,
}

struct Record {
    values: Vec<f32>,
    metadata: Map<String, Value>,
    /// When `list` and `query` start to see it.
    visible_at: std::time::Instant,
}

impl Record {
    fn visible(&self) -> bool {
        self.visible_at <= std::time::Instant::now()
    }
}

/// Starts a fake index of `dimension` that accepts `api_key`.
pub async fn start(api_key: &str, dimension: usize) -> FakePinecone {
    let state = Arc::new(Shared {
        api_key: api_key.to_string(),
        dimension,
        inner: Mutex::new(Inner::default()),
    });
    let app = Router::new()
        .route("/vectors/upsert", post(upsert))
        .route("/query", post(query))
        .route("/vectors/list", get(list))
        .route("/vectors/delete", post(delete))
        .route("/describe_index_stats", post(describe_index_stats))
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake pinecone");
    let addr = listener.local_addr().expect("fake pinecone address");
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("fake pinecone serves");
    });
    FakePinecone {
        addr,
        state,
        server,
    }
}

impl FakePinecone {
    /// The index host, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` requests (whatever they are) fail with `status` and Pinecone's error
    /// JSON; a 429 carries `Retry-After: 0`.
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).expect("status code");
        self.state.lock().failures = Some((n, status));
    }

    /// Upserts from now on reach `list` and `query` only after `lag`.
    pub fn set_freshness_lag(&self, lag: std::time::Duration) {
        self.state.lock().lag = lag;
    }

    /// Vectors in `namespace` that `query` and `list` show now.
    pub fn visible_count(&self, namespace: &str) -> usize {
        self.state
            .lock()
            .namespaces
            .get(namespace)
            .map_or(0, |ns| ns.values().filter(|r| r.visible()).count())
    }

    /// Every request so far, as `METHOD /path?query`, oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().log.clone()
    }

    /// Vectors stored in `namespace`.
    pub fn vector_count(&self, namespace: &str) -> usize {
        self.state
            .lock()
            .namespaces
            .get(namespace)
            .map_or(0, BTreeMap::len)
    }

    /// The `text` metadata of every vector in `namespace`, sorted by id.
    pub fn texts(&self, namespace: &str) -> Vec<String> {
        self.state
            .lock()
            .namespaces
            .get(namespace)
            .map(|ns| {
                ns.values()
                    .filter_map(|r| r.metadata.get("text").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `{"code": N, "message": "…", "details": []}`, the data plane's error body.
fn rpc_error(status: StatusCode, code: i32, message: impl Into<String>) -> Response {
    let body = json!({ "code": code, "message": message.into(), "details": [] });
    (status, axum::Json(body)).into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    rpc_error(StatusCode::BAD_REQUEST, 3, message)
}

/// Logs, injects failures, then checks the key and the version header.
async fn gate(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let line = format!(
        "{} {}",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_string(), |p| p.to_string())
    );
    let injected = {
        let mut inner = state.lock();
        inner.log.push(line);
        match &mut inner.failures {
            Some((n, status)) if *n > 0 => {
                *n -= 1;
                Some(*status)
            }
            _ => None,
        }
    };
    if let Some(status) = injected {
        return match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let mut response = rpc_error(
                    status,
                    8,
                    "Request failed. You've reached the max upsert requests per second for this namespace.",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
                response
            }
            s if s.is_server_error() => rpc_error(s, 14, "The service is currently unavailable"),
            s => rpc_error(s, 2, "injected failure"),
        };
    }
    let key_ok = request
        .headers()
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| k == state.api_key);
    if !key_ok {
        let body = json!({
            "error": { "code": "UNAUTHENTICATED", "message": "Invalid API Key" },
            "status": 401,
        });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    if !has_version(request.headers()) {
        return invalid("Missing required header X-Pinecone-API-Version");
    }
    next.run(request).await
}

fn has_version(headers: &HeaderMap) -> bool {
    headers
        .get("x-pinecone-api-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty())
}

/// A JSON body into `T` (unknown fields refused), or the message of Pinecone's 400.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))
}

fn namespace_name(namespace: Option<String>) -> String {
    namespace
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into())
}

fn check_dimension(state: &Shared, values: &[f32], what: &str) -> Result<(), String> {
    if values.len() != state.dimension {
        return Err(format!(
            "{what} dimension {} does not match the dimension of the index {}",
            values.len(),
            state.dimension
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertVector {
    id: String,
    values: Vec<f32>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertRequest {
    vectors: Vec<UpsertVector>,
    namespace: Option<String>,
}

/// Numbers are kept as floats, as Pinecone does (`3` comes back as `3.0`).
fn stored_metadata(metadata: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let bytes = serde_json::to_vec(&metadata).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_METADATA_BYTES {
        return Err(format!(
            "Metadata size is {bytes} bytes, which exceeds the limit of {MAX_METADATA_BYTES} bytes per vector"
        ));
    }
    metadata
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                Value::Null => return Err(format!("Metadata value for field {key} is null")),
                Value::Number(n) => json!(n.as_f64().unwrap_or(0.0)),
                Value::Array(items) if items.iter().all(Value::is_string) => Value::Array(items),
                Value::Array(_) | Value::Object(_) => {
                    return Err(format!(
                        "Metadata value for field {key} must be a string, number, boolean or list of strings"
                    ));
                }
                other => other,
            };
            Ok((key, value))
        })
        .collect()
}

async fn upsert(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: UpsertRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    if request.vectors.is_empty() {
        return invalid("No vectors provided");
    }
    if request.vectors.len() > MAX_UPSERT_VECTORS {
        return invalid(format!(
            "Max upsert batch size is {MAX_UPSERT_VECTORS} vectors, got {}",
            request.vectors.len()
        ));
    }
    let mut records = Vec::with_capacity(request.vectors.len());
    for vector in request.vectors {
        if vector.id.is_empty() || vector.id.len() > MAX_ID_LEN {
            return invalid(format!("Vector id must be 1 to {MAX_ID_LEN} characters"));
        }
        if let Err(e) = check_dimension(&state, &vector.values, "Vector") {
            return invalid(e);
        }
        if vector.values.iter().all(|x| *x == 0.0) {
            return invalid("Dense vectors must contain at least one non-zero value");
        }
        let metadata = match stored_metadata(vector.metadata.unwrap_or_default()) {
            Ok(m) => m,
            Err(e) => return invalid(e),
        };
        records.push((vector.id, vector.values, metadata));
    }
    let count = records.len();
    let namespace = namespace_name(request.namespace);
    let mut inner = state.lock();
    let visible_at = std::time::Instant::now() + inner.lag;
    inner
        .namespaces
        .entry(namespace)
        .or_default()
        .extend(records.into_iter().map(|(id, values, metadata)| {
            (
                id,
                Record {
                    values,
                    metadata,
                    visible_at,
                },
            )
        }));
    axum::Json(json!({ "upsertedCount": count })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QueryRequest {
    namespace: Option<String>,
    top_k: Option<u64>,
    vector: Option<Vec<f32>>,
    id: Option<String>,
    filter: Option<Map<String, Value>>,
    include_values: Option<bool>,
    include_metadata: Option<bool>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

async fn query(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: QueryRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    let Some(top_k) = request.top_k.filter(|k| (1..=10_000).contains(k)) else {
        return invalid("topK must be between 1 and 10000");
    };
    if request.id.is_some() || request.filter.is_some() {
        return invalid("The fake supports only queries by vector without filter");
    }
    let Some(vector) = request.vector else {
        return invalid("No query provided");
    };
    if let Err(e) = check_dimension(&state, &vector, "Query vector") {
        return invalid(e);
    }
    let include_values = request.include_values.unwrap_or(false);
    let include_metadata = request.include_metadata.unwrap_or(false);
    let namespace = namespace_name(request.namespace);
    let inner = state.lock();
    let mut scored: Vec<(f32, &String, &Record)> = inner
        .namespaces
        .get(&namespace)
        .map(|ns| {
            ns.iter()
                .filter(|(_, r)| r.visible())
                .map(|(id, r)| (cosine(&vector, &r.values), id, r))
                .collect()
        })
        .unwrap_or_default();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let matches: Vec<Value> = scored
        .into_iter()
        .take(usize::try_from(top_k).unwrap_or(usize::MAX))
        .map(|(score, id, record)| {
            let mut m = json!({ "id": id, "score": score, "values": [] });
            if include_values {
                m["values"] = json!(record.values);
            }
            if include_metadata {
                m["metadata"] = Value::Object(record.metadata.clone());
            }
            m
        })
        .collect();
    axum::Json(json!({
        "results": [],
        "matches": matches,
        "namespace": namespace,
        "usage": { "readUnits": 1 },
    }))
    .into_response()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

async fn list(
    State(state): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["namespace", "prefix", "limit", "paginationToken"].contains(&k.as_str()))
    {
        return invalid(format!("Unknown query parameter {unknown}"));
    }
    let prefix = params.get("prefix").cloned().unwrap_or_default();
    if prefix.contains(' ') {
        return invalid("prefix must not contain spaces");
    }
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if l >= 1 => l,
        Some(_) => return invalid("limit must be a positive integer"),
    };
    let after = match params.get("paginationToken") {
        None => None,
        Some(token) => match unhex(token) {
            Some(id) => Some(id),
            None => return invalid("Invalid pagination token"),
        },
    };
    let namespace = namespace_name(params.get("namespace").cloned());
    let inner = state.lock();
    let ids: Vec<String> = inner
        .namespaces
        .get(&namespace)
        .map(|ns| {
            ns.iter()
                .filter(|(_, r)| r.visible())
                .map(|(id, _)| id)
                .filter(|id| id.starts_with(&prefix))
                .filter(|id| after.as_ref().is_none_or(|a| id.as_str() > a.as_str()))
                .take(limit.saturating_add(1))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let more = ids.len() > limit;
    let page: Vec<&String> = ids.iter().take(limit).collect();
    let mut body = json!({
        "vectors": page.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
        "namespace": namespace,
        "usage": { "readUnits": 1 },
    });
    if more && let Some(last) = page.last() {
        body["pagination"] = json!({ "next": hex(last) });
    }
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeleteRequest {
    ids: Option<Vec<String>>,
    delete_all: Option<bool>,
    namespace: Option<String>,
    filter: Option<Value>,
}

async fn delete(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: DeleteRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    if request.filter.is_some() {
        return invalid(
            "Serverless and Starter indexes do not support deleting with metadata filtering",
        );
    }
    let namespace = namespace_name(request.namespace);
    let mut inner = state.lock();
    if !inner.namespaces.contains_key(&namespace) {
        return rpc_error(StatusCode::NOT_FOUND, 5, "Namespace not found");
    }
    match (request.ids, request.delete_all.unwrap_or(false)) {
        (Some(ids), false) => {
            if ids.len() > MAX_DELETE_IDS {
                return invalid(format!(
                    "Max number of IDs to delete is {MAX_DELETE_IDS}, got {}",
                    ids.len()
                ));
            }
            if let Some(ns) = inner.namespaces.get_mut(&namespace) {
                for id in &ids {
                    ns.remove(id);
                }
                if ns.is_empty() {
                    inner.namespaces.remove(&namespace);
                }
            }
        }
        (None, true) => {
            inner.namespaces.remove(&namespace);
        }
        _ => return invalid("Exactly one of ids or deleteAll must be given"),
    }
    axum::Json(json!({})).into_response()
}

async fn describe_index_stats(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    if !body.is_empty() {
        let request: Map<String, Value> = match parse(&body) {
            Ok(r) => r,
            Err(e) => return invalid(e),
        };
        if request.keys().any(|k| k != "filter") {
            return invalid("Unknown field in describe_index_stats request");
        }
        if request.contains_key("filter") {
            return invalid(
                "Serverless and Starter indexes do not support describing index stats with metadata filtering",
            );
        }
    }
    let inner = state.lock();
    let namespaces: Map<String, Value> = inner
        .namespaces
        .iter()
        .map(|(name, ns)| (name.clone(), json!({ "vectorCount": ns.len() })))
        .collect();
    let total: usize = inner.namespaces.values().map(BTreeMap::len).sum();
    axum::Json(json!({
        "namespaces": namespaces,
        "dimension": state.dimension,
        "indexFullness": 0.0,
        "totalVectorCount": total,
        "metric": "cosine",
        "vectorType": "dense",
    }))
    .into_response()
}
