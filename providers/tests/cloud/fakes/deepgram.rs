//! A fake Deepgram live endpoint (`/v1/listen`) as documented: `Authorization: Token`,
//! handshake refusals as HTTP statuses with a JSON body, binary `linear16` audio in,
//! `KeepAlive` / `Finalize` / `CloseStream` control messages, `SpeechStarted`, interim
//! and final `Results` (`is_final`, `speech_final`, `from_finalize`), `UtteranceEnd`,
//! `Metadata` after `CloseStream`, then a normal close.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Server, serve};

pub const KEY: &str = "dg-test-key";
pub const INTERIM: &str = "when do";
pub const FINAL_1: &str = "When do you open";
pub const FINAL_2: &str = "on Saturday?";

/// How the next connection behaves.
#[derive(Clone, Debug)]
pub enum Mode {
    /// The documented protocol.
    Normal,
    /// Refuse the handshake.
    Refuse {
        code: u16,
        headers: Vec<(&'static str, &'static str)>,
    },
    /// Accept, read everything, answer nothing (a dead socket).
    Silent,
    /// The documented protocol, with an interim result after every audio frame.
    Chatty,
    /// Close with this code after the first audio.
    CloseWith { code: u16, reason: &'static str },
    /// Live endpointing as Deepgram does it: `SpeechStarted` when loud audio begins,
    /// interim results while it goes on, the words so far as a final (no
    /// `speech_final`) at a 200 ms pause, and after `endpointing` ms (the query's) of
    /// quiet the rest, with `speech_final`; `UtteranceEnd` after `utterance_end_ms` more.
    /// Nothing at all while it hears only silence (Deepgram documents no message then),
    /// and `Finalize` is answered only while words are not finalised yet ("not
    /// guaranteed if there is no significant amount of audio data to process").
    /// (Text is scripted: FINAL_1 + FINAL_2.)
    Endpointing,
}

/// What one connection carried.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    pub query: HashMap<String, String>,
    /// Every `keyterm` (Nova-3) and `keywords` (older models) value, in order.
    pub keyterms: Vec<String>,
    pub keywords: Vec<String>,
    pub auth: Option<String>,
    pub audio_bytes: usize,
    /// `type` of each text message received, in order.
    pub controls: Vec<String>,
    pub ended: bool,
}

#[derive(Default)]
struct FakeState {
    modes: Mutex<VecDeque<Mode>>,
    conns: Mutex<Vec<Arc<Mutex<Conn>>>>,
    attempts: AtomicUsize,
}

pub struct FakeDeepgram {
    server: Server,
    state: Arc<FakeState>,
}

impl FakeDeepgram {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let router = Router::new()
            .route("/v1/listen", get(listen))
            .with_state(state.clone());
        Self {
            server: serve(router).await,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/v1/listen", self.server.addr)
    }

    pub fn push(&self, mode: Mode) {
        self.state.modes.lock().expect("lock").push_back(mode);
    }

    /// Handshakes attempted (refused ones included).
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

async fn listen(
    State(state): State<Arc<FakeState>>,
    Query(pairs): Query<Vec<(String, String)>>,
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
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if auth.as_deref() != Some(&format!("Token {KEY}")) {
        return refuse(401, &[], "INVALID_AUTH", "Invalid credentials.");
    }
    if let Mode::Refuse { code, headers } = &mode {
        return refuse(*code, headers, "TOO_MANY_REQUESTS", "Too many requests.");
    }
    let values = |key: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (keyterms, keywords) = (values("keyterm"), values("keywords"));
    let query: HashMap<String, String> = pairs.into_iter().collect();
    let conn = Arc::new(Mutex::new(Conn {
        query: query.clone(),
        keyterms,
        keywords,
        auth,
        ..Conn::default()
    }));
    state.conns.lock().expect("lock").push(conn.clone());
    let rate: usize = query
        .get("sample_rate")
        .and_then(|r| r.parse().ok())
        .unwrap_or(16_000);
    upgrade.on_upgrade(move |socket| async move {
        run(socket, mode, rate, conn.clone()).await;
        conn.lock().expect("lock").ended = true;
    })
}

fn refuse(
    code: u16,
    headers: &[(&'static str, &'static str)],
    err_code: &str,
    message: &str,
) -> Response {
    let mut map = HeaderMap::new();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    map.insert("dg-error", HeaderValue::from_str(message).expect("header"));
    for (k, v) in headers {
        map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    let body = json!({"err_code": err_code, "err_msg": message, "request_id": "req-1"});
    (
        StatusCode::from_u16(code).expect("status"),
        map,
        body.to_string(),
    )
        .into_response()
}

fn results(text: &str, is_final: bool, speech_final: bool, from_finalize: bool) -> Message {
    let event = json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": 1.0,
        "start": 0.0,
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": []}]},
        "metadata": {"request_id": "req-1", "model_info": {"name": "nova-3"}},
    });
    Message::Text(event.to_string().into())
}

/// What [`Mode::Endpointing`] has heard so far.
#[derive(Default)]
struct Endpoints {
    speech_ms: usize,
    quiet_ms: usize,
    in_speech: bool,
    interim_sent: bool,
    /// FINAL_1 went out as a final at a pause.
    first_final_sent: bool,
    awaiting_utterance_end: bool,
    /// Audio since the last message sent: Deepgram answers every stretch of audio it
    /// transcribed (an empty final for silence), about twice a second.
    unanswered_ms: usize,
}

impl Endpoints {
    fn hear(&mut self, audio: &[u8], rate: usize, query: &HashMap<String, String>) -> Vec<Message> {
        let setting =
            |k: &str, default: usize| query.get(k).and_then(|v| v.parse().ok()).unwrap_or(default);
        let (endpointing, utterance_end) = (
            setting("endpointing", 10),
            setting("utterance_end_ms", 1000),
        );
        let samples: Vec<f64> = audio
            .chunks_exact(2)
            .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
            .collect();
        let ms = samples.len() * 1000 / rate.max(1);
        let rms = (samples.iter().map(|x| x * x).sum::<f64>() / samples.len().max(1) as f64).sqrt();
        self.unanswered_ms += ms;
        let mut out = Vec::new();
        if rms > 300.0 {
            self.quiet_ms = 0;
            self.speech_ms += ms;
            if !self.in_speech {
                self.in_speech = true;
                self.awaiting_utterance_end = false;
                out.push(Message::Text(
                    json!({"type": "SpeechStarted", "channel": [0], "timestamp": 0.1})
                        .to_string()
                        .into(),
                ));
            }
            if (!self.interim_sent && self.speech_ms >= 200) || self.unanswered_ms >= 500 {
                self.interim_sent = true;
                out.push(results(INTERIM, false, false, false));
            }
        } else {
            self.quiet_ms += ms;
            if self.in_speech && self.quiet_ms >= endpointing {
                if !self.first_final_sent {
                    out.push(results(FINAL_1, true, false, false));
                }
                *self = Self {
                    awaiting_utterance_end: true,
                    quiet_ms: self.quiet_ms,
                    ..Self::default()
                };
                out.push(results(FINAL_2, true, true, false));
            } else if self.in_speech && !self.first_final_sent && self.quiet_ms >= 200 {
                self.first_final_sent = true;
                out.push(results(FINAL_1, true, false, false));
            } else if self.awaiting_utterance_end && self.quiet_ms >= endpointing + utterance_end {
                self.awaiting_utterance_end = false;
                out.push(Message::Text(
                    json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.9})
                        .to_string()
                        .into(),
                ));
            }
        }
        if !out.is_empty() {
            self.unanswered_ms = 0;
        }
        out
    }

    /// The answer to `Finalize`: the words not finalised yet, the last `from_finalize`
    /// (and, as in Deepgram's own logs, not `speech_final`); nothing when every word
    /// is final already.
    fn finalize(&mut self) -> Vec<Message> {
        // The pause's final covered every word heard (the rest comes only with speech).
        if !self.in_speech || self.first_final_sent {
            return Vec::new();
        }
        let out = vec![
            results(FINAL_1, true, false, false),
            results(FINAL_2, true, false, true),
        ];
        *self = Self {
            awaiting_utterance_end: true,
            quiet_ms: self.quiet_ms,
            ..Self::default()
        };
        out
    }
}

async fn run(mut socket: WebSocket, mode: Mode, rate: usize, conn: Arc<Mutex<Conn>>) {
    let mut interim_sent = false;
    let mut started = false;
    // Audio that no final result covers yet: what a `Finalize` has to answer for.
    let mut unfinalized = false;
    let mut endpoints = Endpoints::default();
    let query = conn.lock().expect("lock").query.clone();
    while let Some(Ok(message)) = socket.recv().await {
        let mut replies = Vec::new();
        match message {
            Message::Binary(audio) => {
                let total = {
                    let mut c = conn.lock().expect("lock");
                    c.audio_bytes += audio.len();
                    c.audio_bytes
                };
                match &mode {
                    Mode::Silent => continue,
                    Mode::CloseWith { code, reason } => {
                        let _ = socket
                            .send(Message::Close(Some(CloseFrame {
                                code: *code,
                                reason: (*reason).into(),
                            })))
                            .await;
                        return;
                    }
                    Mode::Endpointing => {
                        for reply in endpoints.hear(&audio, rate, &query) {
                            if socket.send(reply).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    _ => {}
                }
                unfinalized = true;
                if !started {
                    started = true;
                    replies.push(Message::Text(
                        json!({"type": "SpeechStarted", "channel": [0], "timestamp": 0.1})
                            .to_string()
                            .into(),
                    ));
                }
                if matches!(mode, Mode::Chatty) {
                    replies.push(results(INTERIM, false, false, false));
                }
                // Interim text once 200 ms of audio is in.
                if !interim_sent && total >= rate * 2 / 5 {
                    interim_sent = true;
                    replies.push(results(INTERIM, false, false, false));
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("invalid: {text}"));
                conn.lock().expect("lock").controls.push(kind.clone());
                if matches!(mode, Mode::Silent) {
                    continue;
                }
                match kind.as_str() {
                    "Finalize" if matches!(mode, Mode::Endpointing) => {
                        replies.extend(endpoints.finalize());
                    }
                    // Answered only when there is audio to finalise; the answer carries
                    // `from_finalize` but not `speech_final` (Deepgram's logs).
                    "Finalize" if unfinalized => {
                        unfinalized = false;
                        replies.push(results(FINAL_1, true, false, false));
                        replies.push(results(FINAL_2, true, false, true));
                        replies.push(Message::Text(
                            json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.9}).to_string().into(),
                        ));
                    }
                    "CloseStream" => {
                        let metadata = json!({
                            "type": "Metadata",
                            "transaction_key": "deprecated",
                            "request_id": "req-1",
                            "sha256": "0",
                            "created": "2026-01-01T00:00:00.000Z",
                            "duration": 1.0,
                            "channels": 1,
                        });
                        let _ = socket
                            .send(Message::Text(metadata.to_string().into()))
                            .await;
                        let _ = socket
                            .send(Message::Close(Some(CloseFrame {
                                code: 1000,
                                reason: "".into(),
                            })))
                            .await;
                        return;
                    }
                    _ => {}
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
        for reply in replies {
            if socket.send(reply).await.is_err() {
                return;
            }
        }
    }
}
