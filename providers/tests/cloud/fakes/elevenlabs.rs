//! A fake ElevenLabs `stream-input` WebSocket as documented: `xi-api-key` header,
//! `model_id`, `output_format=pcm_<rate>`, `sync_alignment` in the query; the client
//! opens with `{"text": " ", "voice_settings"}`, sends text (`flush` to force
//! generation) and `{"text": ""}` to end; the server answers `{"audio": base64 PCM16,
//! "alignment": {"chars", "charStartTimesMs", "charsDurationsMs"}}` per chunk (times
//! relative to the chunk), then `{"audio": null, "isFinal": true}`, and closes. Errors are
//! `{"message", "error", "code"}` followed by a 1008 close.
//!
//! As the real service does (elevenlabs.io/docs/api-reference/websocket; help centre
//! "How can I keep the WebSocket open?"): alignments whose durations do not add up to
//! their audio (the second chunk's run 10 % short, the third's 30 % long), a last audio
//! message without alignment (trailing silence); a first message other than `" "` is
//! refused with an error and a 1008 close; a socket that gets no text for its
//! `inactivity_timeout` (the query's, in seconds; 20 by default) is closed the same way
//! with `input_timeout_exceeded`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};

use super::{Server, serve};

pub const KEY: &str = "xi-test-key";
/// Audio per character of text, ms.
pub const MS_PER_CHAR: usize = 10;
/// Audio messages per sentence.
pub const CHUNKS: usize = 3;
/// How far each audio chunk's alignment is stretched (durations that do not add up to the
/// audio, as ElevenLabs' do).
pub const ALIGNMENT_STRETCH: [f64; CHUNKS] = [1.0, 0.9, 1.3];
/// Trailing silence sent without alignment after the sentence, ms.
pub const TRAILING_SILENCE_MS: usize = 40;

#[derive(Clone, Debug)]
pub enum Mode {
    Normal,
    Refuse {
        code: u16,
        headers: Vec<(&'static str, &'static str)>,
    },
    /// Accept, read, never answer.
    Silent,
    /// Send the first audio chunk, then nothing more.
    SilentAfterFirst,
    /// An error message, then close 1008.
    Error {
        error: &'static str,
        message: &'static str,
    },
    /// A message that is not JSON.
    Malformed,
}

#[derive(Clone, Debug, Default)]
pub struct Conn {
    pub voice: String,
    pub query: HashMap<String, String>,
    pub key: Option<String>,
    pub messages: Vec<Value>,
    pub ended: bool,
}

#[derive(Default)]
struct FakeState {
    modes: Mutex<VecDeque<Mode>>,
    conns: Mutex<Vec<Arc<Mutex<Conn>>>>,
    attempts: AtomicUsize,
}

pub struct FakeElevenLabs {
    server: Server,
    state: Arc<FakeState>,
}

/// The samples the fake speaks for `text` at `rate`: one constant value per character.
pub fn samples_for(text: &str, rate: usize) -> Vec<i16> {
    let per_char = rate * MS_PER_CHAR / 1000;
    text.chars()
        .enumerate()
        .flat_map(|(i, _)| (0..per_char).map(move |j| (i * 100 + j % 100) as i16))
        .collect()
}

impl FakeElevenLabs {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let router = Router::new()
            .route("/v1/text-to-speech/{voice}/stream-input", get(stream_input))
            .with_state(state.clone());
        Self {
            server: serve(router).await,
            state,
        }
    }

    pub fn base_url(&self) -> String {
        format!("ws://{}", self.server.addr)
    }

    pub fn push(&self, mode: Mode) {
        self.state.modes.lock().expect("lock").push_back(mode);
    }

    pub fn attempts(&self) -> usize {
        self.state.attempts.load(Ordering::SeqCst)
    }

    pub fn conns(&self) -> Vec<Conn> {
        self.state
            .conns
            .lock()
            .expect("lock")
            .iter()
            .map(|c| c.lock().expect("lock").clone())
            .collect()
    }
}

async fn stream_input(
    State(state): State<Arc<FakeState>>,
    Path(voice): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    state.attempts.fetch_add(1, Ordering::SeqCst);
    let mode = state
        .modes
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Mode::Normal);
    let key = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if key.as_deref() != Some(KEY) {
        return refuse(401, &[], "invalid_api_key", "Invalid API key");
    }
    if let Mode::Refuse { code, headers } = &mode {
        return refuse(*code, headers, "system_busy", "The system is busy");
    }
    let rate: usize = query
        .get("output_format")
        .and_then(|f| f.strip_prefix("pcm_"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let conn = Arc::new(Mutex::new(Conn {
        voice,
        query,
        key,
        ..Conn::default()
    }));
    state.conns.lock().expect("lock").push(conn.clone());
    upgrade.on_upgrade(move |socket| async move {
        run(socket, mode, rate, conn.clone()).await;
        conn.lock().expect("lock").ended = true;
    })
}

fn refuse(
    code: u16,
    headers: &[(&'static str, &'static str)],
    status: &str,
    message: &str,
) -> Response {
    let mut map = HeaderMap::new();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    let body = json!({"detail": {"status": status, "message": message}});
    (
        StatusCode::from_u16(code).expect("status"),
        map,
        body.to_string(),
    )
        .into_response()
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

/// The audio messages for `sentence`: `CHUNKS` pieces cut at character boundaries
/// (mid-word), each with its own alignment starting at 0.
fn audio_messages(sentence: &str, rate: usize) -> Vec<Message> {
    let chars: Vec<char> = sentence.chars().collect();
    let samples = samples_for(sentence, rate);
    let per_char = rate * MS_PER_CHAR / 1000;
    let mut out = Vec::new();
    let size = chars.len().div_ceil(CHUNKS);
    for (n, part) in chars.chunks(size).enumerate() {
        let first = n * size;
        let pcm: Vec<u8> = samples[first * per_char..(first + part.len()) * per_char]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let stretch = ALIGNMENT_STRETCH[n % CHUNKS];
        let ms = |i: usize| ((i * MS_PER_CHAR) as f64 * stretch).round() as usize;
        out.push(text(json!({
            "audio": base64::engine::general_purpose::STANDARD.encode(pcm),
            "isFinal": null,
            "normalizedAlignment": null,
            "alignment": {
                "chars": part.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "charStartTimesMs": (0..part.len()).map(ms).collect::<Vec<_>>(),
                "charsDurationsMs": (0..part.len()).map(|i| ms(i + 1) - ms(i)).collect::<Vec<_>>(),
            },
        })));
    }
    let silence = vec![0u8; rate * TRAILING_SILENCE_MS / 1000 * 2];
    out.push(text(json!({
        "audio": base64::engine::general_purpose::STANDARD.encode(silence),
        "isFinal": null,
        "normalizedAlignment": null,
        "alignment": null,
    })));
    out
}

/// The vendor's error message and 1008 close.
async fn refuse_in_band(socket: &mut WebSocket, error: &str, message: &str) {
    let _ = socket
        .send(text(
            json!({"message": message, "error": error, "code": 1008}),
        ))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: error.to_owned().into(),
        })))
        .await;
}

async fn run(mut socket: WebSocket, mode: Mode, rate: usize, conn: Arc<Mutex<Conn>>) {
    let mut spoke = false;
    let inactivity = std::time::Duration::from_secs(
        conn.lock()
            .expect("lock")
            .query
            .get("inactivity_timeout")
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    loop {
        let Ok(next) = tokio::time::timeout(inactivity, socket.recv()).await else {
            let message = format!(
                "Have not received a new text input within the timeout of {} seconds",
                inactivity.as_secs()
            );
            refuse_in_band(&mut socket, "input_timeout_exceeded", &message).await;
            return;
        };
        let Some(Ok(message)) = next else {
            return;
        };
        let Message::Text(raw) = message else {
            if matches!(message, Message::Close(_)) {
                return;
            }
            continue;
        };
        let value: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        let first = {
            let mut conn = conn.lock().expect("lock");
            conn.messages.push(value.clone());
            conn.messages.len() == 1
        };
        if first && value["text"] != " " && !matches!(mode, Mode::Silent) {
            refuse_in_band(
                &mut socket,
                "invalid_request",
                "The first message must contain a single space as text.",
            )
            .await;
            return;
        }
        let sentence = value["text"].as_str().unwrap_or_default().to_owned();
        let flush = value["flush"].as_bool().unwrap_or(false);
        let replies: Vec<Message> = match &mode {
            Mode::Silent => continue,
            Mode::Malformed => vec![Message::Text("<html>502 Bad Gateway</html>".into())],
            Mode::Error { error, message } => {
                refuse_in_band(&mut socket, error, message).await;
                return;
            }
            Mode::SilentAfterFirst if flush && !spoke => {
                spoke = true;
                audio_messages(sentence.trim_end(), rate)
                    .into_iter()
                    .take(1)
                    .collect()
            }
            Mode::SilentAfterFirst => continue,
            Mode::Normal | Mode::Refuse { .. } if flush && !spoke => {
                spoke = true;
                audio_messages(sentence.trim_end(), rate)
            }
            Mode::Normal | Mode::Refuse { .. } if sentence.is_empty() => {
                let _ = socket
                    .send(text(json!({"audio": null, "isFinal": true})))
                    .await;
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 1000,
                        reason: "".into(),
                    })))
                    .await;
                return;
            }
            Mode::Normal | Mode::Refuse { .. } => continue,
        };
        for reply in replies {
            if socket.send(reply).await.is_err() {
                return;
            }
        }
    }
}
