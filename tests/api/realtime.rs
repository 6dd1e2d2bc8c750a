//! The WebSocket voice protocol end to end: tickets, origins, a spoken turn, barge-in,
//! bad input, limits, disconnects and admin actions on live sessions.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, eventually, json_body, metric, metrics, spawn_app_with};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server whose simulated answer is short and quick to speak.
async fn quick_app(answer: &str) -> TestApp {
    let answer = answer.to_owned();
    spawn_app_with(move |s| {
        let sim = &mut s.providers.simulated;
        sim.answer = answer;
        sim.tts_ms_per_char = 8;
        sim.stt_delay_ms = 20;
        sim.answer_first_token_ms = 20;
        sim.answer_tokens_per_sec = 200.0;
        sim.tts_first_byte_ms = 10;
        s.session.silence_ms = 300;
    })
    .await
}

async fn demo_dealership(app: &TestApp, token: &str) -> String {
    let list = json_body(app.get("/v1/dealerships", Some(token)).await).await;
    list[0]["id"].as_str().expect("demo dealership").to_owned()
}

/// Asks for a session as the bootstrap admin, for the demo dealership.
async fn request_session(app: &TestApp) -> reqwest::Response {
    let root = app.admin().await;
    let dealership = demo_dealership(app, &root.access).await;
    app.post(
        "/v1/sessions",
        Some(&root.access),
        json!({"dealership_id": dealership}),
    )
    .await
}

/// Creates a session as the bootstrap admin and returns (session id, ws url).
pub(crate) async fn new_session(app: &TestApp) -> (String, String) {
    let resp = request_session(app).await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    assert_eq!(body["expires_in"], 30);
    let id = body["session_id"].as_str().expect("id").to_owned();
    let path = body["ws_url"].as_str().expect("url");
    (
        id,
        format!("{}{path}", app.base.replace("http://", "ws://")),
    )
}

pub(crate) async fn connect(url: &str, origin: Option<&str>) -> Result<Ws, WsError> {
    let mut request = url.into_client_request()?;
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

fn http_status(err: WsError) -> u16 {
    match err {
        WsError::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// PCM16 LE bytes of a 20 ms frame at 16 kHz: a tone when `speech`, else silence.
pub(crate) fn frame(speech: bool, n: usize) -> Vec<u8> {
    (0..320)
        .flat_map(|i| {
            let t = (n * 320 + i) as f32 / 16_000.0;
            let v = if speech {
                (3000.0 * (2.0 * std::f32::consts::PI * 200.0 * t).sin()) as i16
            } else {
                0
            };
            v.to_le_bytes()
        })
        .collect()
}

/// Sends `ms` of audio at real-time pace (20 ms frames on a timer).
pub(crate) async fn stream_audio(ws: &mut Ws, speech: bool, ms: usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for n in 0..ms / 20 {
        tick.tick().await;
        ws.send(Message::Binary(frame(speech, n).into()))
            .await
            .expect("send audio");
    }
}

/// Types a question and asks for the answer.
pub(crate) async fn ask(ws: &mut Ws, text: &str) {
    let item = json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": text}]}});
    ws.send(Message::Text(item.to_string().into()))
        .await
        .expect("send item");
    let create = json!({"type": "response.create"});
    ws.send(Message::Text(create.to_string().into()))
        .await
        .expect("send response.create");
}

#[derive(Debug)]
pub(crate) enum Item {
    Event(Value),
    Audio(usize),
    Closed(Option<u16>),
}

pub(crate) async fn next_item(ws: &mut Ws) -> Item {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("server answered in time");
        match msg {
            Some(Ok(Message::Text(t))) => {
                return Item::Event(serde_json::from_str(t.as_str()).expect("json event"));
            }
            Some(Ok(Message::Binary(b))) => return Item::Audio(b.len()),
            Some(Ok(Message::Close(frame))) => {
                return Item::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Item::Closed(None),
        }
    }
}

/// Reads until an event of `kind` arrives; returns everything read, in order.
pub(crate) async fn read_until(ws: &mut Ws, kind: &str) -> Vec<Item> {
    let mut items = Vec::new();
    loop {
        let item = next_item(ws).await;
        let done = matches!(&item, Item::Event(e) if e["type"] == kind);
        let closed = matches!(item, Item::Closed(_));
        items.push(item);
        if done {
            return items;
        }
        assert!(!closed, "closed before {kind}: {items:?}");
    }
}

pub(crate) fn position(items: &[Item], kind: &str) -> usize {
    items
        .iter()
        .position(|i| matches!(i, Item::Event(e) if e["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in {items:?}"))
}

pub(crate) fn event<'a>(items: &'a [Item], kind: &str) -> &'a Value {
    match &items[position(items, kind)] {
        Item::Event(e) => e,
        _ => unreachable!(),
    }
}

pub(crate) async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        if let Item::Closed(code) = next_item(ws).await {
            return code;
        }
    }
}

#[tokio::test]
async fn a_spoken_turn_yields_the_events_in_order_and_is_saved() {
    let app = quick_app("We open at eight on weekdays.").await;
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    let created = read_until(&mut ws, "session.created").await;
    assert_eq!(
        event(&created, "session.created")["session"]["input_sample_rate"],
        16000
    );

    stream_audio(&mut ws, false, 200).await;
    stream_audio(&mut ws, true, 1000).await;
    stream_audio(&mut ws, false, 600).await;
    let items = read_until(&mut ws, "response.done").await;

    let order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_text.delta",
        "response.output_audio.started",
    ];
    let positions: Vec<usize> = order.iter().map(|k| position(&items, k)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {positions:?} {items:?}"
    );
    let first_audio = items
        .iter()
        .position(|i| matches!(i, Item::Audio(_)))
        .expect("audio frames");
    assert!(first_audio > position(&items, "response.output_audio.started"));
    assert!(
        items
            .iter()
            .all(|i| !matches!(i, Item::Audio(n) if *n != 960)),
        "20 ms at 24 kHz"
    );
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Item::Event(e) if e["type"] == "avatar.viseme"))
    );
    let done = event(&items, "response.done");
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(
        done["response"]["output_text"],
        "We open at eight on weekdays."
    );
    let v2v = done["response"]["metrics"]["voice_to_voice_ms"]
        .as_f64()
        .expect("voice-to-voice");
    assert!(v2v > 0.0);
    assert!(done["response"]["metrics"]["stt_ms"].as_f64().is_some());

    let root = app.admin().await;
    let path = format!("/v1/sessions/{id}");
    let saved = eventually(Duration::from_secs(5), || async {
        let body = json_body(app.get(&path, Some(&root.access)).await).await;
        body["turns"][0]["status"] == "completed"
    })
    .await;
    assert!(saved, "turn saved");
    let body = json_body(app.get(&path, Some(&root.access)).await).await;
    assert_eq!(
        body["turns"][0]["assistant_text"],
        "We open at eight on weekdays."
    );
    assert!(
        body["turns"][0]["user_text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let metrics = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    assert!(
        metrics.contains("adam_voice_to_voice_seconds_count 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn barge_in_clears_audio_and_saves_the_turn_as_interrupted() {
    let long = "We are open from eight in the morning until six in the evening on weekdays. \
                On Saturdays we open at nine and close at one. Sundays we are closed, but the \
                online booking system is available all day and all night for your convenience.";
    let app = quick_app(long).await;
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    ws.send(Message::Text(
        json!({"type": "session.update", "session": {"turn_detection": {"min_speech_ms": 100}}})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    read_until(&mut ws, "session.updated").await;
    ask(&mut ws, "When are you open?").await;
    // Wait for answer audio to flow.
    loop {
        if let Item::Audio(_) = next_item(&mut ws).await {
            break;
        }
    }
    // The customer talks over the answer.
    let talk = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0..25 {
            tick.tick().await;
            if ws
                .send(Message::Binary(frame(true, n).into()))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    talk.await;
    let items = read_until(&mut ws, "response.done").await;
    let cleared = position(&items, "response.output_audio.cleared");
    let after = items[cleared..]
        .iter()
        .filter(|i| matches!(i, Item::Audio(_)))
        .count();
    assert!(after <= 1, "{after} audio frames after cleared");
    let done = event(&items, "response.done");
    assert_eq!(done["response"]["status"], "cancelled");
    let spoken = done["response"]["output_text"]
        .as_str()
        .expect("text")
        .to_owned();
    assert!(spoken.len() < long.len(), "only what was played: {spoken}");

    let root = app.admin().await;
    let path = format!("/v1/sessions/{id}");
    let saved = eventually(Duration::from_secs(5), || async {
        let body = json_body(app.get(&path, Some(&root.access)).await).await;
        body["turns"][0]["status"] == "cancelled" && body["turns"][0]["interrupted"] == true
    })
    .await;
    assert!(saved, "interrupted turn saved");
}

#[tokio::test]
async fn malformed_json_is_an_error_event_and_the_session_goes_on() {
    let app = quick_app("Eight to six.").await;
    let (_, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;
    for (text, code) in [
        ("{not json", "malformed_event"),
        (r#"{"type":"session.explode"}"#, "unknown_event"),
        (
            r#"{"type":"session.update","session":{"input_sample_rate":"fast"}}"#,
            "invalid_event",
        ),
    ] {
        ws.send(Message::Text(text.into())).await.expect("send");
        let items = read_until(&mut ws, "error").await;
        assert_eq!(event(&items, "error")["error"]["code"], code, "{text}");
    }
    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .expect("send");
    let items = read_until(&mut ws, "error").await;
    assert_eq!(event(&items, "error")["error"]["code"], "invalid_audio");
    ask(&mut ws, "Hours?").await;
    let items = read_until(&mut ws, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn oversized_frames_close_with_1009_and_floods_with_1008() {
    let app = spawn_app_with(|s| {
        s.session.max_message_bytes = 4096;
        s.session.max_messages_per_sec = 50;
    })
    .await;
    let (_, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    ws.send(Message::Binary(vec![0u8; 8192].into()))
        .await
        .expect("send");
    assert_eq!(close_code(&mut ws).await, Some(1009));

    let (_, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    for _ in 0..120 {
        if ws
            .send(Message::Binary(vec![0u8; 64].into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, Some(1008));
    assert!(
        eventually(Duration::from_secs(3), || async {
            app.state.realtime.registry.count().await == 0
        })
        .await,
        "both sessions ended"
    );
}

#[tokio::test]
async fn a_message_over_the_transports_hard_limit_also_closes_with_1009() {
    // Our limit is 4 KiB; tungstenite refuses anything over 1 MiB while reading it.
    let app = spawn_app_with(|s| s.session.max_message_bytes = 4096).await;
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;
    // The server may stop reading before the whole message is written.
    let _ = ws
        .send(Message::Binary(vec![0u8; (1 << 20) + 1].into()))
        .await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
    let root = app.admin().await;
    let ended = eventually(Duration::from_secs(5), || async {
        let session = json_body(
            app.get(&format!("/v1/sessions/{id}"), Some(&root.access))
                .await,
        )
        .await;
        session["end_reason"] == "message too big"
    })
    .await;
    assert!(ended, "the session ended because the message was too big");
}

#[tokio::test]
async fn tickets_are_one_time_and_origins_are_checked() {
    let app = quick_app("Hi.").await;
    let (id, url) = new_session(&app).await;
    let base = app.base.replace("http://", "ws://");
    let no_ticket = connect(&format!("{base}/v1/sessions/{id}/ws"), None)
        .await
        .expect_err("refused");
    assert_eq!(http_status(no_ticket), 401);
    let forged = connect(&format!("{base}/v1/sessions/{id}/ws?ticket=guess"), None)
        .await
        .expect_err("refused");
    assert_eq!(http_status(forged), 401);
    let wrong_origin = connect(&url, Some("https://evil.example"))
        .await
        .expect_err("refused");
    assert_eq!(http_status(wrong_origin), 403);
    // The refused attempt used the ticket up: one ticket, one try.
    let reused = connect(&url, None).await.expect_err("refused");
    assert_eq!(http_status(reused), 401);

    let (_, url) = new_session(&app).await;
    let ws = connect(&url, Some("http://127.0.0.1:8080")).await;
    assert!(ws.is_ok(), "listed origin accepted");
    assert!(
        app.post("/v1/sessions", None, json!({})).await.status() == 401,
        "no credentials"
    );
}

#[tokio::test]
async fn anonymous_visitors_use_the_embed_key_from_allowed_origins() {
    let app = quick_app("Hi.").await;
    let root = app.admin().await;
    let dealership = demo_dealership(&app, &root.access).await;
    let path = format!("/v1/dealerships/{dealership}");
    let resp = app
        .patch(
            &path,
            Some(&root.access),
            json!({"allowed_origins": ["https://www.demo-motors.test"]}),
        )
        .await;
    let key = json_body(resp).await["embed_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let start = |origin: &'static str, key: String| {
        app.client
            .post(app.url("/v1/sessions"))
            .header("x-embed-key", key)
            .header("origin", origin)
            .send()
    };
    let ok = start("https://www.demo-motors.test", key.clone())
        .await
        .expect("sent");
    assert_eq!(ok.status(), 201);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://www.demo-motors.test"
    );
    let body = json_body(ok).await;
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        body["ws_url"].as_str().expect("url")
    );
    let mut ws = connect(&url, Some("https://www.demo-motors.test"))
        .await
        .expect("upgrade");
    read_until(&mut ws, "session.created").await;

    assert_eq!(
        start("https://evil.example", key.clone())
            .await
            .expect("sent")
            .status(),
        403
    );
    assert_eq!(
        start("https://www.demo-motors.test", "pk_wrong".into())
            .await
            .expect("sent")
            .status(),
        401
    );
}

#[tokio::test]
async fn disconnect_mid_turn_stops_every_actor_and_saves_the_turn() {
    let app = quick_app("We open at eight on weekdays and we close at six in the evening.").await;
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    ask(&mut ws, "Hours?").await;
    read_until(&mut ws, "response.output_audio.started").await;
    drop(ws);
    let gone = eventually(Duration::from_secs(1), || async {
        let text = app
            .get("/metrics", None)
            .await
            .text()
            .await
            .unwrap_or_default();
        app.state.realtime.registry.count().await == 0 && text.contains("adam_live_actors 0")
    })
    .await;
    assert!(gone, "session and its actors stopped within 1 s");
    let root = app.admin().await;
    let path = format!("/v1/sessions/{id}");
    let saved = eventually(Duration::from_secs(5), || async {
        let body = json_body(app.get(&path, Some(&root.access)).await).await;
        body["turns"][0]["status"] == "cancelled" && body["ended_at"].is_string()
    })
    .await;
    assert!(saved, "interrupted turn and session end saved");
}

#[tokio::test]
async fn an_admin_ends_a_live_session_and_a_full_node_says_busy() {
    let app = spawn_app_with(|s| s.session.max_sessions = 1).await;
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;

    let busy = request_session(&app).await;
    assert_eq!(busy.status(), 503);
    assert_eq!(json_body(busy).await["error"]["code"], "busy");
    let root = app.admin().await;

    let resp = app
        .delete(&format!("/v1/sessions/{id}"), Some(&root.access))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(close_code(&mut ws).await, Some(1000));
    assert!(
        eventually(Duration::from_secs(3), || async {
            app.state.realtime.registry.count().await == 0
        })
        .await
    );
    // The record stays after a live session ends.
    assert_eq!(
        app.get(&format!("/v1/sessions/{id}"), Some(&root.access))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_repeated_question_is_answered_from_the_semantic_cache_until_cleared() {
    let app = quick_app("We open at eight.").await;
    let (_, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    let mut cache_hits = Vec::new();
    for question in [
        "What are your opening hours?",
        "what are your opening hours",
    ] {
        ask(&mut ws, question).await;
        let items = read_until(&mut ws, "response.done").await;
        let done = &event(&items, "response.done")["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output_text"], "We open at eight.");
        cache_hits.push(done["metrics"]["cache_hit"].as_bool().expect("flag"));
    }
    assert_eq!(cache_hits, [false, true]);

    let root = app.admin().await;
    let stats = json_body(app.get("/v1/cache/stats", Some(&root.access)).await).await;
    assert_eq!(stats["semantic"]["hits"], 1);
    assert!(stats["embedding"]["misses"].as_u64().expect("count") >= 1);
    let resp = app.delete("/v1/cache", Some(&root.access)).await;
    assert_eq!(resp.status(), 204);
    ask(&mut ws, "What are your opening hours?").await;
    let items = read_until(&mut ws, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["metrics"]["cache_hit"],
        false
    );
    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    assert!(
        text.contains(r#"adam_cache_lookups_total{level="semantic",result="hit"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_drains_live_answers_then_closes_with_1001_and_keeps_every_transcript() {
    let answer = "We are open from eight in the morning until six in the evening on weekdays, \
                  and on Saturdays from nine until one. Sundays we are closed.";
    let app = spawn_app_with(move |s| {
        let sim = &mut s.providers.simulated;
        sim.answer = answer.into();
        sim.tts_ms_per_char = 8;
        sim.answer_first_token_ms = 20;
        sim.answer_tokens_per_sec = 200.0;
        sim.tts_first_byte_ms = 10;
        s.session.drain_timeout_secs = 10;
    })
    .await;
    let (id, url) = new_session(&app).await;
    // Signed in beforehand: during the drain (as long as the answer lasts, about a second)
    // the test makes one quick request, not a login, even on a loaded machine.
    let root = app.admin().await;
    let dealership = demo_dealership(&app, &root.access).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    ask(&mut ws, "When are you open?").await;
    read_until(&mut ws, "response.output_audio.started").await;

    app.shutdown.notify_one();
    let red = eventually(Duration::from_secs(3), || async {
        match app.client.get(app.url("/readyz")).send().await {
            Ok(r) => r.status() == 503 && json_body(r).await["status"] == "draining",
            Err(_) => false,
        }
    })
    .await;
    assert!(red, "readiness turns red at once");
    let refused = app
        .post(
            "/v1/sessions",
            Some(&root.access),
            json!({"dealership_id": dealership}),
        )
        .await;
    assert_eq!(refused.status(), 503);
    assert_eq!(json_body(refused).await["error"]["code"], "draining");

    // The answer in progress finishes; the client is told why it will be closed.
    let items = read_until(&mut ws, "response.done").await;
    assert_eq!(
        event(&items, "session.closing")["reason"],
        "server shutting down"
    );
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
    assert_eq!(close_code(&mut ws).await, Some(1001));
    let stopped = eventually(Duration::from_secs(15), || async {
        app.server.is_finished()
    })
    .await;
    assert!(stopped, "the process finished after the drain");

    // Everything was written before the database closed.
    let db = adam::db::Db::connect(&app.state.settings.database)
        .await
        .expect("reopen");
    let turns = adam::db::sessions::turns(&db, adam::db::Tenant::All, &id)
        .await
        .expect("turns");
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].status, "completed");
    let session = adam::db::sessions::get(&db, adam::db::Tenant::All, None, &id)
        .await
        .expect("query")
        .expect("session");
    assert_eq!(session.end_reason.as_deref(), Some("server shutting down"));
    db.close().await;
}

/// `(open fds, tokio tasks, live actors, live sessions)` from `/metrics`.
async fn process_gauges(app: &TestApp) -> [i64; 4] {
    let text = metrics(app).await;
    let gauge = |name: &str| metric(&text, name).map_or(-1, |v| v as i64);
    [
        gauge("adam_process_open_fds"),
        gauge("adam_tokio_alive_tasks"),
        gauge("adam_live_actors"),
        gauge("adam_live_sessions"),
    ]
}

#[tokio::test]
async fn sessions_opened_and_closed_give_back_their_descriptors_tasks_and_actors() {
    let app = quick_app("We open at eight.").await;
    let idle = || async {
        let g = process_gauges(&app).await;
        (g[2] == 0 && g[3] == 0).then_some(g)
    };
    // Ten conversations at once, three times. The first round is the warm-up: the database
    // pool grows to what ten concurrent conversations need, and that is the baseline.
    let mut baseline = [0; 4];
    for round in 0..3 {
        let mut open = Vec::new();
        for _ in 0..10 {
            let (_, url) = new_session(&app).await;
            let mut ws = connect(&url, None).await.expect("upgrade");
            ask(&mut ws, "Hours?").await;
            read_until(&mut ws, "response.done").await;
            open.push(ws);
        }
        let busy = process_gauges(&app).await;
        assert_eq!(busy[3], 10, "round {round}: {busy:?}");
        if round > 0 {
            // Each conversation holds at least its socket (both ends live in this process).
            assert!(
                busy[0] >= baseline[0] + 10,
                "round {round}: {busy:?} vs {baseline:?}"
            );
            assert!(
                busy[1] > baseline[1] + 10,
                "round {round}: {busy:?} vs {baseline:?}"
            );
        }
        for mut ws in open {
            ws.close(None).await.expect("close");
        }
        assert!(eventually(Duration::from_secs(5), || async { idle().await.is_some() }).await);
        if round == 0 {
            baseline = idle().await.expect("idle");
            assert!(baseline[0] > 0 && baseline[1] > 0, "{baseline:?}");
        }
    }
    // 20 conversations after the baseline: a leak of one descriptor or task each would show.
    let back = eventually(Duration::from_secs(5), || async {
        idle()
            .await
            .is_some_and(|g| g[0] <= baseline[0] + 3 && g[1] <= baseline[1] + 3)
    })
    .await;
    assert!(
        back,
        "back to {baseline:?}: {:?}",
        process_gauges(&app).await
    );
}
