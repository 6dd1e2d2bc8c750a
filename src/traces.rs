//! One OpenTelemetry trace per conversation turn, exported over OTLP/HTTP with the JSON
//! encoding (`POST {log.otlp_endpoint}/v1/traces`) when `log.otlp_endpoint` is set.
//!
//! A turn's stages run on different actors and are measured there; its trace is built from
//! those measurements when the turn ends ([`TurnTimeline`]): a root span `turn` (end of the
//! customer's speech, or the typed question, → response done) with the children `stt` (end of
//! speech → final transcript), `answer.first_token` (transcript → first answer token),
//! `tts.first_audio` (first token → first audio out) and `response` (transcript → done).
//! Spans carry `session.id`, `turn.seq`, `turn.status` and `turn.cache_hit`.
//!
//! The OTLP JSON mapping of these few spans is written here rather than taken from
//! `opentelemetry-otlp`, which would add a second HTTP client stack to the build for them.
//! Export never slows a conversation: records go through a bounded queue to one task that
//! posts batches; when the queue is full or the collector fails, traces are dropped and
//! counted (`adam_trace_turns_dropped_total`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adam_actors::ports::{
    BoxFuture, ResponseStatus, SessionRecord, TranscriptSink, TurnRecord, TurnTimeline, TurnUsage,
};
use anyhow::Context;
use rand::RngCore;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Turns waiting for export before new ones are dropped.
const QUEUE: usize = 1_024;
/// Turns per export request.
const BATCH: usize = 64;
/// The longest a finished turn waits before its batch goes out.
const LINGER: Duration = Duration::from_millis(500);

/// Sends turn traces to an OTLP/HTTP collector.
#[derive(Debug, Clone)]
pub struct TraceExporter {
    tx: mpsc::Sender<TurnRecord>,
    dropped: prometheus::IntCounter,
}

impl TraceExporter {
    /// Starts the export task for `endpoint` (the collector's base URL, e.g.
    /// `http://otel-collector:4318`, or the full `…/v1/traces` URL).
    pub fn start(
        endpoint: &str,
        service_name: &str,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let url = traces_url(endpoint)?;
        let dropped = prometheus::IntCounter::new(
            "trace_turns_dropped_total",
            "Turn traces not exported (queue full or collector failing)",
        )?;
        registry.register(Box::new(dropped.clone()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the OTLP client")?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let resource = resource(service_name);
        tokio::spawn(export(rx, client, url, resource, dropped.clone()));
        Ok(Self { tx, dropped })
    }

    /// Queues `turn`'s trace; never waits.
    pub fn record(&self, turn: &TurnRecord) {
        if self.tx.try_send(turn.clone()).is_err() {
            self.dropped.inc();
        }
    }
}

fn traces_url(endpoint: &str) -> anyhow::Result<reqwest::Url> {
    let endpoint = endpoint.trim_end_matches('/');
    let full = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    };
    let url = reqwest::Url::parse(&full)
        .with_context(|| format!("log.otlp_endpoint `{endpoint}` is not a URL"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "log.otlp_endpoint `{endpoint}` must be http:// or https://"
    );
    Ok(url)
}

fn resource(service_name: &str) -> Value {
    json!({
        "attributes": [
            attribute("service.name", service_name),
            attribute("service.version", env!("CARGO_PKG_VERSION")),
        ]
    })
}

async fn export(
    mut rx: mpsc::Receiver<TurnRecord>,
    client: reqwest::Client,
    url: reqwest::Url,
    resource: Value,
    dropped: prometheus::IntCounter,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(turn)) => batch.push(turn),
                Ok(None) | Err(_) => break,
            }
        }
        let spans: Vec<Value> = batch.iter().flat_map(turn_spans).collect();
        let body = json!({
            "resourceSpans": [{
                "resource": resource,
                "scopeSpans": [{
                    "scope": {"name": "adam", "version": env!("CARGO_PKG_VERSION")},
                    "spans": spans,
                }],
            }]
        });
        let sent = client.post(url.clone()).json(&body).send().await;
        match sent.map(|r| r.error_for_status()) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) | Err(e) => {
                dropped.inc_by(batch.len() as u64);
                tracing::warn!(error = %e, turns = batch.len(), "exporting turn traces failed");
            }
        }
        batch.clear();
    }
}

/// `N` random bytes in lower-case hex (trace and span ids, error-report event ids).
pub(crate) fn hex_id<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn nanos(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

fn attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// The spans of one turn: the root and one child per stage that happened.
fn turn_spans(turn: &TurnRecord) -> Vec<Value> {
    let TurnTimeline {
        speech_end,
        transcript,
        first_token,
        audio_started,
        ended,
    } = turn.timeline;
    let trace_id = hex_id::<16>();
    let root_id = hex_id::<8>();
    let status = match turn.status {
        ResponseStatus::Completed => "completed",
        ResponseStatus::Cancelled => "cancelled",
        ResponseStatus::Failed => "failed",
    };
    let attributes = json!([
        attribute("session.id", &turn.session_id),
        {"key": "turn.seq", "value": {"intValue": turn.seq.to_string()}},
        attribute("turn.status", status),
        {"key": "turn.cache_hit", "value": {"boolValue": turn.metrics.cache_hit}},
    ]);
    // OTLP status codes: 1 ok, 2 error.
    let code = if turn.status == ResponseStatus::Failed {
        2
    } else {
        1
    };
    let span = |id: &str, parent: Option<&str>, name: &str, start: SystemTime, end: SystemTime| {
        let mut span = json!({
            "traceId": trace_id,
            "spanId": id,
            "name": name,
            "kind": 1,
            "startTimeUnixNano": nanos(start),
            "endTimeUnixNano": nanos(end.max(start)),
            "attributes": attributes,
            "status": {"code": code},
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(parent);
        }
        span
    };
    let start = speech_end.unwrap_or(transcript);
    let mut spans = vec![span(&root_id, None, "turn", start, ended)];
    let mut child = |name: &str, from: SystemTime, to: SystemTime| {
        spans.push(span(&hex_id::<8>(), Some(&root_id), name, from, to));
    };
    if let Some(end) = speech_end {
        child("stt", end, transcript);
    }
    if let Some(first) = first_token {
        child("answer.first_token", transcript, first);
        if let Some(audio) = audio_started {
            child("tts.first_audio", first, audio);
        }
    }
    child("response", transcript, ended);
    spans
}

/// A transcript sink that also exports each finished turn's trace.
pub struct TracingSink {
    inner: Arc<dyn TranscriptSink>,
    traces: TraceExporter,
}

impl TracingSink {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn TranscriptSink>, traces: TraceExporter) -> Self {
        Self { inner, traces }
    }
}

impl TranscriptSink for TracingSink {
    fn session_started(&self, record: SessionRecord) -> BoxFuture<'_, Result<(), String>> {
        self.inner.session_started(record)
    }

    fn turn_finished(&self, record: TurnRecord) -> BoxFuture<'_, Result<(), String>> {
        self.traces.record(&record);
        self.inner.turn_finished(record)
    }

    fn session_ended<'a>(
        &'a self,
        session_id: &'a str,
        reason: &'a str,
        usage: TurnUsage,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.inner.session_ended(session_id, reason, usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_gets_the_traces_path_once() {
        for endpoint in [
            "http://collector:4318",
            "http://collector:4318/",
            "http://collector:4318/v1/traces",
        ] {
            assert_eq!(
                traces_url(endpoint).expect("url").as_str(),
                "http://collector:4318/v1/traces"
            );
        }
        assert!(traces_url("collector:4318").is_err());
        assert!(traces_url("ftp://collector").is_err());
    }
}
