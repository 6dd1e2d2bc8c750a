//! A fake OpenAI-compatible API (`/v1/chat/completions` with server-sent events,
//! `/v1/embeddings`, `/v1/audio/transcriptions`, `/v1/audio/speech`) as OpenAI and
//! OpenRouter document it: `Authorization: Bearer`, JSON error bodies
//! `{"error": {"message", "code"}}`, `Retry-After` on 429, SSE with `: comment` lines
//! and `data: [DONE]`, mid-stream `{"error": …}` events after the 200, raw PCM bodies.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::stream;
use serde_json::{Value, json};

use super::{Abandoned, Server, serve};

/// What the next request gets.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The endpoint's normal answer.
    Normal,
    /// An error status with headers and body.
    Status {
        code: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    },
    /// Accept and never answer.
    Hang,
    /// 200 with this body, piece by piece.
    Body(Vec<Piece>),
}

/// One piece of a streamed body.
#[derive(Clone, Debug)]
pub enum Piece {
    Bytes(Vec<u8>),
    /// Stop sending, keep the connection open.
    Hang,
    /// Break the connection mid-body.
    Abort,
    /// Send a comment line every 20 ms for ever (a live but idle SSE stream).
    Trickle,
}

impl Piece {
    pub fn text(s: &str) -> Self {
        Piece::Bytes(s.as_bytes().to_vec())
    }
}

impl Reply {
    pub fn status(code: u16, body: Value) -> Self {
        Reply::Status {
            code,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn error(code: u16, message: &str) -> Self {
        Self::status(code, json!({"error": {"message": message, "code": code}}))
    }
}

/// A request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    /// JSON body (JSON endpoints).
    pub json: Value,
    /// Multipart fields (transcriptions).
    pub form: HashMap<String, Vec<u8>>,
}

#[derive(Default)]
struct FakeState {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    abandoned: Arc<AtomicUsize>,
    trickled: Arc<AtomicUsize>,
    answer: Mutex<Vec<String>>,
    usage: Mutex<Option<(u32, u32)>>,
    transcript: Mutex<String>,
}

/// The fake server.
pub struct FakeOpenAi {
    server: Server,
    state: Arc<FakeState>,
}

/// Samples the normal speech reply holds (100 ms at 24 kHz).
pub const SPEECH_SAMPLES: usize = 2_400;

/// The normal speech reply's samples.
pub fn speech_samples() -> Vec<i16> {
    (0..SPEECH_SAMPLES)
        .map(|i| (i as i16).wrapping_mul(7))
        .collect()
}

/// The normal embedding of `text` in `dim` dimensions.
pub fn embedding(text: &str, dim: usize) -> Vec<f32> {
    (0..dim).map(|i| (text.len() * 10 + i) as f32).collect()
}

impl FakeOpenAi {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        *state.answer.lock().expect("lock") = ["We open", " at 8 [1", "] on Saturdays", "."]
            .map(String::from)
            .to_vec();
        *state.usage.lock().expect("lock") = Some((57, 9));
        *state.transcript.lock().expect("lock") = "When do you open on Saturday?".into();
        let router = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/audio/transcriptions", post(transcriptions))
            .route("/v1/audio/speech", post(speech))
            .with_state(state.clone());
        Self {
            server: serve(router).await,
            state,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr)
    }

    /// Queues the reply to the next request (then the next…); `Normal` when none.
    pub fn push(&self, reply: Reply) {
        self.state.replies.lock().expect("lock").push_back(reply);
    }

    pub fn set_answer(&self, pieces: &[&str], usage: Option<(u32, u32)>) {
        *self.state.answer.lock().expect("lock") = pieces.iter().map(|s| s.to_string()).collect();
        *self.state.usage.lock().expect("lock") = usage;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().expect("lock").len()
    }

    /// Keep-alive comments sent by `Piece::Trickle`.
    pub fn trickled(&self) -> usize {
        self.state.trickled.load(Ordering::SeqCst)
    }

    /// Responses the client walked away from before their end.
    pub fn abandoned(&self) -> usize {
        self.state.abandoned.load(Ordering::SeqCst)
    }
}

impl FakeState {
    fn next(&self) -> Reply {
        self.replies
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Reply::Normal)
    }

    fn record(&self, path: &str, headers: HeaderMap, json: Value, form: HashMap<String, Vec<u8>>) {
        self.requests.lock().expect("lock").push(Recorded {
            path: path.into(),
            headers,
            json,
            form,
        });
    }

    /// Answers with `reply`, or `normal` for `Reply::Normal`.
    async fn respond(
        &self,
        reply: Reply,
        content_type: &str,
        normal: impl FnOnce() -> Vec<Piece>,
    ) -> Response {
        match reply {
            Reply::Status {
                code,
                headers,
                body,
            } => {
                let mut map = HeaderMap::new();
                map.insert("content-type", HeaderValue::from_static("application/json"));
                for (k, v) in headers {
                    map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
                }
                (StatusCode::from_u16(code).expect("status"), map, body).into_response()
            }
            Reply::Hang => {
                let _abandoned = Abandoned::new(self.abandoned.clone());
                std::future::pending::<Response>().await
            }
            Reply::Normal => stream_body(normal(), content_type, self),
            Reply::Body(pieces) => stream_body(pieces, content_type, self),
        }
    }
}

fn stream_body(pieces: Vec<Piece>, content_type: &str, fake: &FakeState) -> Response {
    let trickled = fake.trickled.clone();
    let state = (
        VecDeque::from(pieces),
        Abandoned::new(fake.abandoned.clone()),
    );
    let body = stream::unfold(state, move |(mut pieces, mut guard)| {
        let trickled = trickled.clone();
        async move {
            match pieces.pop_front() {
                None => {
                    guard.disarm();
                    None
                }
                Some(Piece::Bytes(b)) => {
                    // One piece per poll, so pieces tend to reach the client separately.
                    tokio::task::yield_now().await;
                    Some((Ok(Bytes::from(b)), (pieces, guard)))
                }
                Some(Piece::Hang) => std::future::pending().await,
                Some(Piece::Abort) => {
                    // Give the pieces before a moment to reach the client, then break off.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    guard.disarm();
                    Some((
                        Err(std::io::Error::other("connection broken on purpose")),
                        (pieces, guard),
                    ))
                }
                Some(Piece::Trickle) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    trickled.fetch_add(1, Ordering::SeqCst);
                    pieces.push_front(Piece::Trickle);
                    Some((
                        Ok(Bytes::from_static(b": OPENROUTER PROCESSING\n\n")),
                        (pieces, guard),
                    ))
                }
            }
        }
    });
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(body))
        .expect("response")
}

/// One `chat.completion.chunk` event.
pub fn chunk(delta: Value, finish: Option<&str>) -> String {
    let event = json!({
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test/model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {event}\n\n")
}

/// A whole streamed answer as OpenRouter sends it: keep-alive comments, a role chunk,
/// content chunks (the second split mid-line across two pieces, with CRLF endings), the
/// finish chunk, the usage chunk and `[DONE]`.
pub fn chat_pieces(answer: &[String], usage: Option<(u32, u32)>) -> Vec<Piece> {
    let mut pieces = vec![
        Piece::text(": OPENROUTER PROCESSING\n\n"),
        Piece::text(&chunk(json!({"role": "assistant", "content": ""}), None)),
    ];
    for (i, text) in answer.iter().enumerate() {
        let event = chunk(json!({"content": text}), None);
        if i == 1 {
            let event = event.replace("\n\n", "\r\n\r\n");
            let (a, b) = event.split_at(event.len() / 2);
            pieces.push(Piece::text(a));
            pieces.push(Piece::text(b));
            pieces.push(Piece::text(": OPENROUTER PROCESSING\n\n"));
        } else {
            pieces.push(Piece::text(&event));
        }
    }
    pieces.push(Piece::text(&chunk(json!({}), Some("stop"))));
    if let Some((prompt, completion)) = usage {
        let event = json!({
            "id": "gen-1",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        });
        pieces.push(Piece::text(&format!("data: {event}\n\n")));
    }
    pieces.push(Piece::text("data: [DONE]\n\n"));
    pieces
}

async fn chat(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.record("/v1/chat/completions", headers, json, HashMap::new());
    let reply = state.next();
    let answer = state.answer.lock().expect("lock").clone();
    let usage = *state.usage.lock().expect("lock");
    state
        .respond(reply, "text/event-stream", || chat_pieces(&answer, usage))
        .await
}

async fn embeddings(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.record("/v1/embeddings", headers, json.clone(), HashMap::new());
    let reply = state.next();
    let dim = json["dimensions"].as_u64().unwrap_or(8) as usize;
    let inputs: Vec<String> = json["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    state
        .respond(reply, "application/json", || {
            // Listed last input first: the client must order by `index`.
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .rev()
                .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embedding(t, dim)}))
                .collect();
            let body = json!({"object": "list", "data": data, "model": json["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}});
            vec![Piece::Bytes(body.to_string().into_bytes())]
        })
        .await
}

async fn transcriptions(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let mut fields = HashMap::new();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let file = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.unwrap_or_default().to_vec();
        if let Some(file) = file {
            fields.insert("file_name".into(), file.into_bytes());
        }
        fields.insert(name, bytes);
    }
    let has_file = fields.contains_key("file");
    state.record("/v1/audio/transcriptions", headers, Value::Null, fields);
    if !has_file {
        return state
            .respond(Reply::error(400, "Missing file"), "", Vec::new)
            .await;
    }
    let reply = state.next();
    let text = state.transcript.lock().expect("lock").clone();
    state
        .respond(reply, "application/json", || {
            vec![Piece::Bytes(json!({"text": text}).to_string().into_bytes())]
        })
        .await
}

/// The voices `tts-1` and `tts-1-hd` have (OpenAI's createSpeech reference: `ballad`,
/// `verse`, `marin` and `cedar` and `instructions` need `gpt-4o-mini-tts`).
const LEGACY_VOICES: [&str; 9] = [
    "alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
];

async fn speech(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.record("/v1/audio/speech", headers, json.clone(), HashMap::new());
    let legacy = json["model"]
        .as_str()
        .is_some_and(|m| m == "tts-1" || m.starts_with("tts-1-"));
    let voice = json["voice"].as_str().unwrap_or_default();
    if legacy && (!LEGACY_VOICES.contains(&voice) || json.get("instructions").is_some()) {
        let message = format!(
            "The voice or instructions are not supported by model {}",
            json["model"]
        );
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": "voice", "code": null}})),
        )
            .into_response();
    }
    let reply = state.next();
    state
        .respond(reply, "application/octet-stream", || {
            let bytes: Vec<u8> = speech_samples()
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect();
            // Odd-sized pieces: samples split across them.
            bytes
                .chunks(999)
                .map(|c| Piece::Bytes(c.to_vec()))
                .collect()
        })
        .await
}
