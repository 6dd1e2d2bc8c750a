//! The fault-injection suite: each test breaks one thing a live conversation depends on
//! (a component crashing, a provider failing, the database going away, a client that
//! reads too slowly, leaves mid-turn or floods) and asserts what the customer sees on the
//! wire, what is saved, and that nothing is left behind. Shared here: a WebSocket client
//! whose reader runs in its own task, and readers of `/metrics`.

mod clients;
mod crashes;
mod database;
mod providers;

use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, json_body, metric, metrics};
use crate::realtime::{Item, Ws, connect};

/// A conversation over the WebSocket whose reader runs in its own task: what the server
/// sends is collected as it arrives, so a test can hold many clients at once without any
/// of them reading too slowly.
struct Client {
    id: String,
    tx: SplitSink<Ws, Message>,
    rx: mpsc::UnboundedReceiver<Item>,
    reader: tokio::task::JoinHandle<()>,
}

/// Dropping a client drops its connection, as a closed browser tab does.
impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The demo dealership's id and a super_admin token.
async fn root_and_dealership(app: &TestApp) -> (String, String) {
    let root = app.admin().await;
    let list = json_body(app.get("/v1/dealerships", Some(&root.access)).await).await;
    let dealership = list[0]["id"].as_str().expect("demo dealership").to_owned();
    (root.access, dealership)
}

impl Client {
    async fn open(app: &TestApp, token: &str, dealership: &str) -> Self {
        let resp = app
            .post(
                "/v1/sessions",
                Some(token),
                json!({"dealership_id": dealership}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body = json_body(resp).await;
        let id = body["session_id"].as_str().expect("id").to_owned();
        let url = format!(
            "{}{}",
            app.base.replace("http://", "ws://"),
            body["ws_url"].as_str().expect("url")
        );
        let ws = connect(&url, None).await.expect("upgrade");
        let (tx, mut stream) = ws.split();
        let (items, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let item = match msg {
                    Ok(Message::Text(t)) => {
                        Item::Event(serde_json::from_str(t.as_str()).expect("json event"))
                    }
                    Ok(Message::Binary(b)) => Item::Audio(b.len()),
                    Ok(Message::Close(frame)) => Item::Closed(frame.map(|f| u16::from(f.code))),
                    Ok(_) => continue,
                    Err(_) => Item::Closed(None),
                };
                let closed = matches!(item, Item::Closed(_));
                if items.send(item).is_err() || closed {
                    return;
                }
            }
            let _ = items.send(Item::Closed(None));
        });
        let mut client = Self { id, tx, rx, reader };
        client.until("session.created").await;
        client
    }

    async fn send(&mut self, event: Value) {
        self.tx
            .send(Message::Text(event.to_string().into()))
            .await
            .expect("send event");
    }

    /// Types a question and asks for the answer.
    async fn ask(&mut self, text: &str) {
        self.send(
            json!({"type": "conversation.item.create", "item": {"type": "message",
            "role": "user", "content": [{"type": "input_text", "text": text}]}}),
        )
        .await;
        self.send(json!({"type": "response.create"})).await;
    }

    /// Everything received up to and including the first event of `kind`.
    async fn until(&mut self, kind: &str) -> Vec<Item> {
        let mut seen = Vec::new();
        loop {
            let item = tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind} within 20 s; saw {seen:?}"))
                .unwrap_or(Item::Closed(None));
            let done = matches!(&item, Item::Event(e) if e["type"] == kind);
            assert!(
                !matches!(item, Item::Closed(_)),
                "closed before {kind}: {item:?} after {seen:?}"
            );
            seen.push(item);
            if done {
                return seen;
            }
        }
    }

    /// Whatever has arrived so far, without waiting.
    fn drain(&mut self) -> Vec<Item> {
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }
}

fn events<'a>(items: &'a [Item], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    items.iter().filter_map(move |i| match i {
        Item::Event(e) if e["type"] == kind => Some(e),
        _ => None,
    })
}

fn error_codes(items: &[Item]) -> Vec<String> {
    events(items, "error")
        .map(|e| e["error"]["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A short, quickly spoken simulated answer.
fn quick(s: &mut adam::settings::Settings) {
    let sim = &mut s.providers.simulated;
    sim.answer = "We open at eight.".into();
    sim.tts_ms_per_char = 8;
    sim.stt_delay_ms = 20;
    sim.answer_first_token_ms = 20;
    sim.answer_tokens_per_sec = 200.0;
    sim.tts_first_byte_ms = 10;
    s.session.silence_ms = 300;
}

/// The value of one series (labels included in `series`), 0 when absent.
fn value(metrics: &str, series: &str) -> f64 {
    metric(metrics, series).unwrap_or(0.0)
}

impl Client {
    /// One second of speech, then silence until the response is done.
    async fn speak(&mut self) -> Vec<Item> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0..50 {
            tick.tick().await;
            self.tx
                .send(Message::Binary(crate::realtime::frame(true, n).into()))
                .await
                .expect("audio");
        }
        let mut seen = Vec::new();
        let mut n = 0;
        loop {
            tokio::select! {
                item = self.rx.recv() => {
                    let item = item.unwrap_or(Item::Closed(None));
                    assert!(!matches!(item, Item::Closed(_)), "closed: {seen:?}");
                    let over = matches!(&item, Item::Event(e) if e["type"] == "response.done"
                        || (e["type"] == "error" && e["error"]["code"] == "transcription_failed"));
                    seen.push(item);
                    if over {
                        return seen;
                    }
                }
                _ = tick.tick() => {
                    n += 1;
                    assert!(n < 1_000, "no end of turn in 20 s: {seen:?}");
                    self.tx
                        .send(Message::Binary(crate::realtime::frame(false, n).into()))
                        .await
                        .expect("audio");
                }
            }
        }
    }
}

impl Client {
    /// Sends `ms` of speech (or silence) at real-time pace.
    async fn stream(&mut self, speech: bool, ms: usize) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0..ms / 20 {
            tick.tick().await;
            self.tx
                .send(Message::Binary(crate::realtime::frame(speech, n).into()))
                .await
                .expect("audio");
        }
    }
}

impl Client {
    async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.tx
            .send(Message::Binary(bytes.into()))
            .await
            .expect("audio");
    }
}
