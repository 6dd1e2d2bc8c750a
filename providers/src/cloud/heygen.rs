//! HeyGen LiveAvatar in LITE mode: a remote avatar that animates a face to Adam's own
//! speech. Adam keeps its STT, LLM and TTS; LiveAvatar renders the video and streams it,
//! with the audio Adam sent, to the browser through a LiveKit room.
//!
//! One LiveAvatar session per conversation:
//! - `POST {base_url}/v1/sessions/token` with `X-API-KEY` and `{"mode": "LITE",
//!   "avatar_id", "is_sandbox"}` → `{"data": {"session_id", "session_token"}}`;
//! - `POST /v1/sessions/start` with `Authorization: Bearer <session_token>` →
//!   `{"data": {"livekit_url", "livekit_client_token", "ws_url", …}}`: the LiveKit URL
//!   and client token are for the browser, `ws_url` is Adam's command WebSocket;
//! - on the WebSocket, once `{"type": "session.state_updated", "state": "connected"}`
//!   came: `{"type": "agent.speak", "audio": base64 PCM16 LE mono 24 kHz}` in ~1 s
//!   pieces, each with the response's `event_id` (LiveAvatar's LITE guide: chunks of one
//!   response share one id), `{"type": "agent.speak_end", "event_id"}` after it,
//!   `{"type": "agent.interrupt"}` on barge-in (ahead of any audio still queued);
//! - `POST /v1/sessions/keep-alive` (Bearer, `{"session_id"}`) every
//!   `keep_alive_interval_ms`, and `POST /v1/sessions/stop` (Bearer, `{"session_id",
//!   "reason"}`) when the session is closed or dropped.
//!
//! Errors come as HTTP statuses with `{"code", "message"}` bodies (or a 200 whose envelope
//! has no `data`, its `code` such as `400004` classed by its leading three digits), and as
//! `{"type": "error"}` events on the socket, which fail the session. A WebSocket that goes
//! quiet for a quarter of `idle_timeout_ms` is pinged; one that stays quiet for all of it
//! (or closes, or reports the session `closed`) fails the session with a `ProviderError`,
//! and it is stopped.

use std::sync::Arc;
use std::time::Duration;

use adam_actors::ports::{
    AvatarBackend, AvatarSettings, BoxFuture, CancellationToken, ProviderError, RemoteAvatar,
};
use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::http;
use super::metrics::ProviderMetrics;
use super::resilience::{Failure, ProviderGuard, ResilienceConfig, Stage};
use super::ws::{self, Socket};

mod session;

pub use session::{Chunker, HeyGenSession};

/// The rate LiveAvatar takes audio at.
pub const SAMPLE_RATE: u32 = 24_000;

/// `[providers.heygen]`. The API key comes from [`keys::HEYGEN`](super::keys::HEYGEN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeyGenConfig {
    /// The `provider` label; unique per client.
    pub name: String,
    /// API root (`https://api.liveavatar.com`).
    pub base_url: String,
    /// Avatar used when a dealership names none.
    pub avatar_id: String,
    /// Sandbox sessions (free, short, watermarked).
    pub sandbox: bool,
    /// Keep-alive period, ms (LiveAvatar ends a session idle for its timeout).
    pub keep_alive_interval_ms: u64,
    /// Audio per `agent.speak` message, ms (LiveAvatar recommends about a second).
    pub chunk_ms: u32,
    /// `agent.speak` messages queued towards the socket; more means it is stuck, and the
    /// session fails.
    pub queue_chunks: usize,
    /// `connect_timeout_ms` (HTTP and WebSocket), `first_byte_timeout_ms` (each start
    /// step, up to the socket's `connected` state), `idle_timeout_ms` (the dead-socket
    /// limit), `total_timeout_ms` (each call), retries and breaker of the start.
    pub resilience: ResilienceConfig,
}

impl Default for HeyGenConfig {
    fn default() -> Self {
        Self {
            name: "heygen".into(),
            base_url: "https://api.liveavatar.com".into(),
            avatar_id: String::new(),
            sandbox: false,
            keep_alive_interval_ms: 60_000,
            chunk_ms: 1_000,
            queue_chunks: 32,
            resilience: ResilienceConfig::default(),
        }
    }
}

/// The LiveAvatar client: opens one [`HeyGenSession`] per conversation.
pub struct HeyGen {
    config: HeyGenConfig,
    key: HeaderValue,
    http: reqwest::Client,
    guard: ProviderGuard,
}

impl std::fmt::Debug for HeyGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeyGen")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// LiveAvatar's response envelope: `{"code": 100, "data": …, "message"}`.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    code: Option<i64>,
    data: Option<T>,
    message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct TokenData {
    session_id: String,
    session_token: String,
}

#[derive(Debug, Deserialize)]
struct StartData {
    livekit_url: String,
    livekit_client_token: String,
    ws_url: String,
}

impl HeyGen {
    /// A client for `config` authenticating with `api_key`.
    pub fn new(
        config: HeyGenConfig,
        api_key: SecretString,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        http::endpoint(&config.base_url, "v1/sessions/token")?;
        if !(100..=10_000).contains(&config.chunk_ms) {
            return Err(ProviderError::Rejected(format!(
                "heygen.chunk_ms {} is not within 100–10000",
                config.chunk_ms
            )));
        }
        if config.keep_alive_interval_ms < 100 || config.queue_chunks == 0 {
            return Err(ProviderError::Rejected(
                "heygen.keep_alive_interval_ms must be at least 100 and queue_chunks at least 1"
                    .into(),
            ));
        }
        Ok(Self {
            key: http::secret_header("", &api_key)?,
            http: http::client(&config.resilience)?,
            guard: ProviderGuard::new(
                &config.name,
                Stage::Avatar,
                config.resilience.clone(),
                metrics,
            ),
            config,
        })
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    /// Starts a LiveAvatar session with `avatar_id` (empty: the configured one) and
    /// returns once its socket is `connected`. A failure after the session was created
    /// stops it again.
    #[tracing::instrument(skip_all, fields(provider = %self.config.name))]
    pub async fn open(
        &self,
        avatar_id: &str,
        cancel: CancellationToken,
    ) -> Result<HeyGenSession, ProviderError> {
        let avatar_id = match avatar_id.trim() {
            "" => self.config.avatar_id.trim(),
            id => id,
        };
        if avatar_id.is_empty() {
            return Err(ProviderError::Rejected(format!(
                "{}: no avatar_id (set the dealership's avatar.avatar_id or providers.heygen.avatar_id)",
                self.config.name
            )));
        }
        let token = self
            .guard
            .unary(&cancel, || self.create_token(avatar_id))
            .await?;
        let lease = Lease {
            http: self.http.clone(),
            provider: self.config.name.as_str().into(),
            base_url: self.config.base_url.clone(),
            session_id: token.session_id.clone(),
            bearer: http::secret_header("Bearer ", &SecretString::from(token.session_token))?,
            timeout: Duration::from_millis(self.config.resilience.total_timeout_ms),
        };
        // From here a LiveAvatar session exists: it is stopped on every failure.
        let opened = async {
            let started = self
                .guard
                .unary(&cancel, || self.start_session(&lease))
                .await?;
            let socket = self
                .guard
                .unary(&cancel, || self.open_socket(&started.ws_url))
                .await?;
            Ok::<_, ProviderError>((started, socket))
        };
        let (started, socket) = match opened.await {
            Ok(opened) => opened,
            Err(error) => {
                if let Err(e) = lease.stop(STOP_FAILED).await {
                    tracing::warn!(error = %e, "stopping a half-started LiveAvatar session failed");
                }
                return Err(error);
            }
        };
        tracing::info!(session = %lease.session_id, "LiveAvatar session connected");
        Ok(HeyGenSession::spawn(
            &self.config,
            lease,
            socket,
            started.livekit_url,
            started.livekit_client_token,
        ))
    }

    /// Mints a LITE session token for `avatar_id` and nothing more (no session is started):
    /// proves the key works (`adam providers check`). Returns LiveAvatar's session id.
    pub async fn session_token(
        &self,
        avatar_id: &str,
        cancel: CancellationToken,
    ) -> Result<String, ProviderError> {
        let token = self
            .guard
            .unary(&cancel, || self.create_token(avatar_id))
            .await?;
        Ok(token.session_id)
    }

    async fn create_token(&self, avatar_id: &str) -> Result<TokenData, Failure> {
        let provider = self.guard.provider();
        let url = http::endpoint(&self.config.base_url, "v1/sessions/token")?;
        let body = json!({
            "mode": "LITE",
            "avatar_id": avatar_id,
            "is_sandbox": self.config.sandbox,
        });
        let response = self
            .http
            .post(url)
            .header("x-api-key", self.key.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        data(provider, response).await
    }

    async fn start_session(&self, lease: &Lease) -> Result<StartData, Failure> {
        let provider = self.guard.provider();
        let url = http::endpoint(&self.config.base_url, "v1/sessions/start")?;
        let response = self
            .http
            .post(url)
            .header("authorization", lease.bearer.clone())
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        data(provider, response).await
    }

    /// Connects the command socket and waits for the `connected` state. `ws_url` carries
    /// its own credentials: no header is sent.
    async fn open_socket(&self, url: &str) -> Result<Socket, Failure> {
        let provider = self.guard.provider();
        let mut socket = ws::connect(
            provider,
            url,
            None,
            self.config.resilience.connect_timeout(),
        )
        .await?;
        loop {
            let text = match socket.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    return Err(ws::close_failure(provider, frame.as_ref()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ws::socket_failure(provider, &e)),
                None => return Err(ws::close_failure(provider, None)),
            };
            if let Some(error) = server_error(provider, &text) {
                return Err(Failure::from(error));
            }
            match session_state(&text).as_deref() {
                Some("connected") => return Ok(socket),
                Some("closed" | "closing") => {
                    return Err(Failure::from(ProviderError::Unavailable(format!(
                        "{provider}: the session closed before it connected"
                    ))));
                }
                _ => {}
            }
        }
    }
}

/// The `data` of a LiveAvatar response, or the failure its status or envelope means.
async fn data<T: DeserializeOwned>(
    provider: &str,
    response: reqwest::Response,
) -> Result<T, Failure> {
    let response = http::check(provider, response).await?;
    let envelope: Envelope<T> = response.json().await.map_err(|e| {
        Failure::from(ProviderError::Unavailable(format!(
            "{provider}: malformed response ({e})"
        )))
    })?;
    match envelope {
        Envelope { data: Some(d), .. } => Ok(d),
        Envelope { code, message, .. } => {
            let message = format!(
                "{provider}: {} (code {})",
                message.unwrap_or_else(|| "no data in the response".into()),
                code.map_or_else(|| "none".into(), |c| c.to_string())
            );
            Err(Failure::from(by_code(code, message)))
        }
    }
}

/// LiveAvatar's codes follow HTTP's: 4xx is the request's fault (not retried), anything
/// else the service's. Codes come as the status itself (`401`) or extended with a detail
/// (`400004`, `500001`): the class is the leading three digits.
fn by_code(code: Option<i64>, message: String) -> ProviderError {
    let mut class = code.unwrap_or(0);
    while class >= 1_000 {
        class /= 10;
    }
    if (400..=499).contains(&class) {
        ProviderError::Rejected(message)
    } else {
        ProviderError::Unavailable(message)
    }
}

/// A server `error` event on the command socket (`{"type": "error", "message"|"error",
/// "code"}`), as the failure it means; `None` for any other message.
fn server_error(provider: &str, text: &str) -> Option<ProviderError> {
    let value: Value = serde_json::from_str(text).ok()?;
    if value["type"] != "error" {
        return None;
    }
    let message = ["message", "error", "detail"]
        .iter()
        .find_map(|k| match &value[*k] {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| "error".into());
    let code = value["code"]
        .as_i64()
        .or_else(|| value["code"].as_str().and_then(|c| c.parse().ok()));
    Some(by_code(
        code,
        format!(
            "{provider}: LiveAvatar error event: {message} (code {})",
            code.map_or_else(|| "none".into(), |c| c.to_string())
        ),
    ))
}

/// The `state` of a `session.state_updated` message.
fn session_state(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    (value["type"] == "session.state_updated")
        .then(|| value["state"].as_str().map(str::to_owned))
        .flatten()
}

/// `stop` reasons (LiveAvatar's `SessionEndReasonEnum`).
const STOP_CLOSED: &str = "USER_CLOSED";
const STOP_FAILED: &str = "SERVER_ERROR";

/// What keeping a LiveAvatar session alive and stopping it takes.
#[derive(Clone)]
struct Lease {
    http: reqwest::Client,
    provider: Arc<str>,
    base_url: String,
    session_id: String,
    bearer: HeaderValue,
    timeout: Duration,
}

impl Lease {
    async fn post(&self, path: &str, body: Value) -> Result<(), ProviderError> {
        let url = http::endpoint(&self.base_url, path)?;
        let call = async {
            let response = self
                .http
                .post(url)
                .header("authorization", self.bearer.clone())
                .json(&body)
                .send()
                .await
                .map_err(|e| http::transport(&self.provider, &e))?;
            http::check(&self.provider, response).await.map(drop)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|f| f.error),
            Err(_) => Err(ProviderError::Timeout),
        }
    }

    async fn keep_alive(&self) -> Result<(), ProviderError> {
        self.post(
            "v1/sessions/keep-alive",
            json!({"session_id": self.session_id}),
        )
        .await
    }

    async fn stop(&self, reason: &str) -> Result<(), ProviderError> {
        self.post(
            "v1/sessions/stop",
            json!({"session_id": self.session_id, "reason": reason}),
        )
        .await
    }
}

impl AvatarBackend for HeyGen {
    fn start<'a>(
        &'a self,
        session_id: &'a str,
        settings: &'a AvatarSettings,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Option<Box<dyn RemoteAvatar>>, ProviderError>> {
        Box::pin(async move {
            tracing::debug!(session_id, "starting a LiveAvatar session");
            let session = self
                .open(settings.avatar_id.as_deref().unwrap_or_default(), cancel)
                .await?;
            Ok(Some(Box::new(session) as Box<dyn RemoteAvatar>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_updates_are_read() {
        assert_eq!(
            session_state(r#"{"type":"session.state_updated","state":"connected"}"#).as_deref(),
            Some("connected")
        );
        assert_eq!(session_state(r#"{"type":"agent.speak_started"}"#), None);
        assert_eq!(session_state("not json"), None);
    }

    #[test]
    fn extended_codes_keep_their_http_class() {
        assert!(matches!(
            by_code(Some(400004), "m".into()),
            ProviderError::Rejected(_)
        ));
        assert!(matches!(
            by_code(Some(401), "m".into()),
            ProviderError::Rejected(_)
        ));
        assert!(matches!(
            by_code(Some(500001), "m".into()),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            by_code(None, "m".into()),
            ProviderError::Unavailable(_)
        ));
    }

    #[test]
    fn server_error_events_are_failures() {
        assert!(matches!(
            server_error("heygen", r#"{"type":"error","code":400,"message":"Invalid audio"}"#),
            Some(ProviderError::Rejected(m)) if m.contains("Invalid audio")
        ));
        assert!(matches!(
            server_error("heygen", r#"{"type":"error","error":{"message":"boom"}}"#),
            Some(ProviderError::Unavailable(m)) if m.contains("boom")
        ));
        assert_eq!(
            server_error("heygen", r#"{"type":"agent.speak_started"}"#),
            None
        );
    }
}
