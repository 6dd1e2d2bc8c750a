//! One OpenTelemetry trace per conversation turn, received by a fake OTLP/HTTP collector.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use crate::cloud::fakes::serve;
use crate::helpers::{eventually, spawn_app_with};
use crate::realtime::{connect, new_session, read_until, stream_audio};

type Received = Arc<Mutex<Vec<Value>>>;

async fn collect(State(received): State<Received>, body: axum::Json<Value>) -> &'static str {
    received.lock().expect("lock").push(body.0);
    "{}"
}

fn spans(received: &Received) -> Vec<Value> {
    received
        .lock()
        .expect("lock")
        .iter()
        .flat_map(|body| {
            body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == key))
        .map_or(&Value::Null, |kv| &kv["value"])
}

fn nanos(span: &Value, field: &str) -> u128 {
    span[field].as_str().expect("time").parse().expect("nanos")
}

#[tokio::test]
async fn each_turn_is_one_trace_spanning_its_stages() {
    let received: Received = Arc::default();
    let collector = serve(
        Router::new()
            .route("/v1/traces", post(collect))
            .with_state(received.clone()),
    )
    .await;
    let endpoint = format!("http://{}", collector.addr);
    let app = spawn_app_with(move |s| {
        s.session.silence_ms = 300;
        s.log.otlp_endpoint = endpoint;
        s.log.otlp_service_name = "adam-test".into();
        s.providers.simulated.stt_delay_ms = 50;
    })
    .await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_nanos();
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("ws");
    stream_audio(&mut ws, true, 1_000).await;
    stream_audio(&mut ws, false, 1_000).await;
    read_until(&mut ws, "response.done").await;

    assert!(
        eventually(Duration::from_secs(10), || async {
            !spans(&received).is_empty()
        })
        .await,
        "the collector got the turn's trace"
    );
    let body = received.lock().expect("lock")[0].clone();
    let service = &body["resourceSpans"][0]["resource"]["attributes"][0];
    assert_eq!(service["key"], "service.name");
    assert_eq!(service["value"]["stringValue"], "adam-test");
    let spans = spans(&received);
    let root = spans
        .iter()
        .find(|s| s["name"] == "turn")
        .expect("a turn span");
    assert_eq!(attr(root, "session.id")["stringValue"], id.as_str());
    assert_eq!(attr(root, "turn.status")["stringValue"], "completed");
    assert!(root.get("parentSpanId").is_none(), "the turn is the root");
    let (start, end) = (
        nanos(root, "startTimeUnixNano"),
        nanos(root, "endTimeUnixNano"),
    );
    assert!(start >= before && end > start, "{root}");
    let mut names = Vec::new();
    for child in spans.iter().filter(|s| s["name"] != "turn") {
        assert_eq!(child["traceId"], root["traceId"], "one trace: {child}");
        assert_eq!(child["parentSpanId"], root["spanId"], "{child}");
        let (s, e) = (
            nanos(child, "startTimeUnixNano"),
            nanos(child, "endTimeUnixNano"),
        );
        assert!(start <= s && s <= e && e <= end, "inside the turn: {child}");
        names.push(child["name"].as_str().expect("name").to_owned());
    }
    names.sort();
    assert_eq!(
        names,
        ["answer.first_token", "response", "stt", "tts.first_audio"]
    );
    // The simulated transcription took its 50 ms.
    let stt = spans.iter().find(|s| s["name"] == "stt").expect("stt");
    assert!(
        nanos(stt, "endTimeUnixNano") - nanos(stt, "startTimeUnixNano") >= 50_000_000,
        "{stt}"
    );
}
