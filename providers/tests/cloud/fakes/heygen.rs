//! A fake HeyGen LiveAvatar API (LITE mode) as documented: `POST /v1/sessions/token`
//! checks `X-API-KEY` and `{"mode": "LITE", "avatar_id"}` and answers `{"code": 100,
//! "data": {"session_id", "session_token"}, "message"}`; `POST /v1/sessions/start`,
//! `/keep-alive` and `/stop` take `Authorization: Bearer <session_token>`; start answers
//! `{"data": {"session_id", "livekit_url", "livekit_client_token",
//! "livekit_agent_token", "ws_url", "max_session_duration"}}`. Errors are HTTP statuses
//! with `{"code", "message"}`, or a 200 envelope with a code and no `data`. The command
//! WebSocket is the `ws_url` exactly as handed out: an opaque URL that carries its own
//! credentials (no header is asked for, as with the real one). It sends
//! `session.state_updated` `connecting` then `connected`, records `agent.speak` (base64
//! PCM16 decoded, samples counted, `event_id` kept), `agent.speak_end` and
//! `agent.interrupt`, answers the first audio of an `event_id` with `agent.speak_started`
//! and its `agent.speak_end` with `agent.speak_ended` (docs.liveavatar.com, LITE mode
//! events); it can send a server `error` event. A stop closes it with
//! `session.state_updated` `closed`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{Server, serve};

pub const KEY: &str = "liveavatar-test-key";
/// LiveKit URL the fake hands out.
pub const LIVEKIT_URL: &str = "wss://livekit.fake-liveavatar.test";

/// How the next session behaves.
#[derive(Clone, Debug)]
pub enum Mode {
    Normal,
    /// `POST /v1/sessions/start` answers this status.
    RefuseStart(u16),
    /// The socket opens and never reports `connected`.
    NeverConnected,
    /// After `connected`, the socket neither reads nor answers (pings go unanswered).
    Unresponsive,
    /// After `connected`, the socket is dropped without a close frame.
    Drop,
    /// The first `agent.speak` is answered with `{"type": "error", "code", "message"}`.
    ErrorOnSpeak,
    /// `POST /v1/sessions/start` answers 200 with this code and no `data`.
    StartWithoutData(i64),
}

/// One `agent.*` command as the fake received it.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `agent.speak`: samples of 24 kHz PCM16.
    Speak(usize),
    /// `agent.speak_end` with its `event_id`.
    SpeakEnd(String),
    Interrupt,
    Other(String),
}

#[derive(Clone, Debug, Default)]
pub struct Session {
    pub id: String,
    pub token: String,
    pub token_body: Value,
    pub started: bool,
    pub socket_opened: bool,
    pub socket_ended: bool,
    pub keep_alives: usize,
    /// `reason` of every stop call.
    pub stops: Vec<String>,
    pub commands: Vec<Command>,
    /// The `event_id` of each `agent.speak` (None: none sent).
    pub speak_event_ids: Vec<Option<String>>,
    /// The opaque path of `ws_url`.
    pub ws_path: String,
}

impl Session {
    /// Samples received in `agent.speak` messages.
    pub fn spoken_samples(&self) -> usize {
        self.speaks().iter().sum()
    }

    /// The sample count of each `agent.speak`.
    pub fn speaks(&self) -> Vec<usize> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::Speak(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    pub fn interrupts(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| **c == Command::Interrupt)
            .count()
    }

    pub fn speak_ends(&self) -> Vec<String> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::SpeakEnd(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }
}

struct Entry {
    mode: Mode,
    session: Arc<Mutex<Session>>,
    /// Wakes the socket when the session is stopped.
    stopped: Arc<Notify>,
}

#[derive(Default)]
struct FakeState {
    addr: OnceLock<String>,
    modes: Mutex<VecDeque<Mode>>,
    sessions: Mutex<Vec<Arc<Entry>>>,
    token_calls: AtomicUsize,
    start_calls: AtomicUsize,
}

impl FakeState {
    fn by_token(&self, headers: &HeaderMap) -> Option<Arc<Entry>> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())?
            .strip_prefix("Bearer ")?
            .to_owned();
        self.sessions
            .lock()
            .expect("lock")
            .iter()
            .find(|e| e.session.lock().expect("lock").token == bearer)
            .cloned()
    }
}

pub struct FakeHeyGen {
    server: Server,
    state: Arc<FakeState>,
}

impl FakeHeyGen {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let router = Router::new()
            .route("/v1/sessions/token", post(token))
            .route("/v1/sessions/start", post(start))
            .route("/v1/sessions/keep-alive", post(keep_alive))
            .route("/v1/sessions/stop", post(stop))
            .route("/socket/{secret}", get(socket))
            .with_state(state.clone());
        let server = serve(router).await;
        let _ = state.addr.set(server.addr.to_string());
        Self { server, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The behaviour of the next session (then `Normal`).
    pub fn push(&self, mode: Mode) {
        self.state.modes.lock().expect("lock").push_back(mode);
    }

    pub fn token_calls(&self) -> usize {
        self.state.token_calls.load(Ordering::SeqCst)
    }

    pub fn start_calls(&self) -> usize {
        self.state.start_calls.load(Ordering::SeqCst)
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Vec<Session> {
        self.state
            .sessions
            .lock()
            .expect("lock")
            .iter()
            .map(|e| e.session.lock().expect("lock").clone())
            .collect()
    }

    /// The only session; panics unless there is exactly one.
    pub fn session(&self) -> Session {
        let sessions = self.sessions();
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        sessions.into_iter().next().expect("one")
    }
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).expect("status");
    (
        status,
        Json(json!({"code": status.as_u16(), "message": message})),
    )
        .into_response()
}

fn ok(data: Value) -> Response {
    Json(json!({"code": 100, "data": data, "message": "success"})).into_response()
}

async fn token(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.token_calls.fetch_add(1, Ordering::SeqCst);
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(401, "Invalid API key");
    }
    if body["mode"] != "LITE" || body["avatar_id"].as_str().is_none_or(str::is_empty) {
        return error(422, "mode LITE and an avatar_id are required");
    }
    let mode = state
        .modes
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Mode::Normal);
    let mut sessions = state.sessions.lock().expect("lock");
    let n = sessions.len() + 1;
    let session = Session {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        token: format!("session-token-{n}"),
        ws_path: format!("ws-secret-{n}-{}", rand_suffix()),
        token_body: body,
        ..Session::default()
    };
    let data = json!({"session_id": session.id, "session_token": session.token});
    sessions.push(Arc::new(Entry {
        mode,
        session: Arc::new(Mutex::new(session)),
        stopped: Arc::new(Notify::new()),
    }));
    ok(data)
}

async fn start(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    state.start_calls.fetch_add(1, Ordering::SeqCst);
    let Some(entry) = state.by_token(&headers) else {
        return error(401, "Invalid session token");
    };
    if let Mode::RefuseStart(code) = entry.mode {
        return error(code, "The avatar could not be started");
    }
    if let Mode::StartWithoutData(code) = entry.mode {
        return Json(json!({"code": code, "data": null, "message": "Avatar not available"}))
            .into_response();
    }
    let mut session = entry.session.lock().expect("lock");
    session.started = true;
    let addr = state.addr.get().expect("address set at start");
    ok(json!({
        "session_id": session.id,
        "livekit_url": LIVEKIT_URL,
        "livekit_client_token": format!("livekit-client-{}", session.id),
        "livekit_agent_token": format!("livekit-agent-{}", session.id),
        "ws_url": format!("ws://{addr}/socket/{}", session.ws_path),
        "max_session_duration": 1200,
    }))
}

async fn keep_alive(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(entry) = state.by_token(&headers) else {
        return error(401, "Invalid session token");
    };
    let mut session = entry.session.lock().expect("lock");
    if body["session_id"] != session.id.as_str() {
        return error(422, "session_id does not match the token");
    }
    session.keep_alives += 1;
    ok(Value::Null)
}

async fn stop(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(entry) = state.by_token(&headers) else {
        return error(401, "Invalid session token");
    };
    {
        let mut session = entry.session.lock().expect("lock");
        if body["session_id"] != session.id.as_str() {
            return error(422, "session_id does not match the token");
        }
        session
            .stops
            .push(body["reason"].as_str().unwrap_or("UNKNOWN").to_owned());
    }
    entry.stopped.notify_waiters();
    ok(Value::Null)
}

async fn socket(
    State(state): State<Arc<FakeState>>,
    Path(secret): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let entry = state
        .sessions
        .lock()
        .expect("lock")
        .iter()
        .find(|e| {
            let s = e.session.lock().expect("lock");
            s.started && s.ws_path == secret
        })
        .cloned();
    let Some(entry) = entry else {
        return error(401, "Invalid session");
    };
    entry.session.lock().expect("lock").socket_opened = true;
    upgrade.on_upgrade(move |socket| async move {
        run(socket, &entry).await;
        entry.session.lock().expect("lock").socket_ended = true;
    })
}

fn state_updated(state: &str) -> Message {
    Message::Text(
        json!({"type": "session.state_updated", "state": state})
            .to_string()
            .into(),
    )
}

/// A per-process suffix: the path is not guessable from the session number alone.
fn rand_suffix() -> String {
    format!("{:x}", std::process::id() ^ 0x5eed)
}

fn event_id(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value["event_id"].as_str().map(str::to_owned)
}

fn command(text: &str) -> Command {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match value["type"].as_str().unwrap_or_default() {
        "agent.speak" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value["audio"].as_str().unwrap_or_default())
                .expect("agent.speak audio is base64");
            assert!(bytes.len().is_multiple_of(2), "PCM16 has whole samples");
            Command::Speak(bytes.len() / 2)
        }
        "agent.speak_end" => {
            Command::SpeakEnd(value["event_id"].as_str().unwrap_or_default().to_owned())
        }
        "agent.interrupt" => Command::Interrupt,
        other => Command::Other(other.to_owned()),
    }
}

async fn run(mut socket: WebSocket, entry: &Entry) {
    if socket.send(state_updated("connecting")).await.is_err() {
        return;
    }
    match entry.mode {
        Mode::NeverConnected => {
            // Holds the socket open, reading (and so answering pings), never connected.
            while let Some(Ok(_)) = socket.recv().await {}
            return;
        }
        _ => {
            if socket.send(state_updated("connected")).await.is_err() {
                return;
            }
        }
    }
    match entry.mode {
        Mode::Unresponsive => {
            // Neither reads (no pongs) nor closes, until the session is stopped.
            entry.stopped.notified().await;
            return;
        }
        Mode::Drop => return,
        _ => {}
    }
    let mut speaking: Option<String> = None;
    let mut errored = false;
    loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let command = command(&text);
                    let id = event_id(&text);
                    let mut replies = Vec::new();
                    match &command {
                        Command::Speak(_) if matches!(entry.mode, Mode::ErrorOnSpeak) && !errored => {
                            errored = true;
                            replies.push(json!({"type": "error", "code": 400, "message": "Invalid audio payload"}));
                        }
                        Command::Speak(_) if id.is_some() && speaking != id => {
                            speaking.clone_from(&id);
                            replies.push(json!({"type": "agent.speak_started", "event_id": id, "task": {"id": id}}));
                        }
                        Command::SpeakEnd(end) if speaking.as_deref() == Some(end.as_str()) => {
                            speaking = None;
                            replies.push(json!({"type": "agent.speak_ended", "event_id": end, "task": {"id": end}}));
                        }
                        Command::Interrupt => speaking = None,
                        _ => {}
                    }
                    {
                        let mut session = entry.session.lock().expect("lock");
                        if matches!(command, Command::Speak(_)) {
                            session.speak_event_ids.push(id);
                        }
                        session.commands.push(command);
                    }
                    for reply in replies {
                        if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            () = entry.stopped.notified() => {
                let _ = socket.send(state_updated("closed")).await;
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}
