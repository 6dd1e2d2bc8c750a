//! WebSocket plumbing shared by the Deepgram and ElevenLabs clients: connecting with an
//! auth header under the connect timeout, handshake refusals mapped like HTTP errors,
//! and close frames read as failures.

use std::time::Duration;

use adam_actors::ports::ProviderError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Error as WsError};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::http;
use super::resilience::Failure;

/// An open client WebSocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `url` (`ws://` or `wss://`) sending `header: value` if any (a URL that carries
/// its own credentials needs none), within `timeout` (TCP, TLS and the upgrade together).
pub async fn connect(
    provider: &str,
    url: &str,
    header: Option<(&'static str, HeaderValue)>,
    timeout: Duration,
) -> Result<Socket, Failure> {
    let mut request = url.into_client_request().map_err(|e| {
        Failure::from(ProviderError::Rejected(format!(
            "{provider}: bad URL `{url}`: {e}"
        )))
    })?;
    if let Some((name, value)) = header {
        request
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before each
    // socket read; one streaming socket per conversation makes that add up.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(16 * 1024);
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => {
            tracing::warn!(provider, "WebSocket connect timed out");
            Err(Failure::from(ProviderError::Timeout))
        }
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(error)) => Err(handshake_failure(provider, error)),
    }
}

/// A failed handshake: an HTTP refusal keeps its status meaning (401 rejected, 429
/// rate-limited, 5xx unavailable); anything else is unavailable.
fn handshake_failure(provider: &str, error: WsError) -> Failure {
    match error {
        WsError::Http(response) => {
            let status = StatusCode::from_u16(response.status().as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut headers = HeaderMap::new();
            for (name, value) in response.headers() {
                headers.append(name.clone(), value.clone());
            }
            let mut body = response.body().clone().unwrap_or_default();
            // Deepgram puts its reason in `dg-error` as well as the body.
            if body.is_empty()
                && let Some(reason) = headers.get("dg-error")
            {
                body = reason.as_bytes().to_vec();
            }
            http::status_failure(provider, status, &headers, &body)
        }
        other => Failure::from(ProviderError::Unavailable(format!(
            "{provider}: WebSocket connect failed: {other}"
        ))),
    }
}

/// A socket error after the handshake.
pub fn socket_failure(provider: &str, error: &tungstenite::Error) -> Failure {
    Failure::from(ProviderError::Unavailable(format!(
        "{provider}: WebSocket failed: {error}"
    )))
}

/// A close frame that arrived before the provider finished: a policy violation (bad
/// input, bad key, quota) is a rejected request; anything else is unavailable.
pub fn close_failure(provider: &str, frame: Option<&CloseFrame>) -> Failure {
    let (code, reason) = frame.map_or((CloseCode::Abnormal, ""), |f| (f.code, f.reason.as_str()));
    let message = format!(
        "{provider}: closed by the provider ({}{}{reason})",
        u16::from(code),
        if reason.is_empty() { "" } else { ": " }
    );
    match code {
        CloseCode::Policy | CloseCode::Invalid | CloseCode::Unsupported | CloseCode::Size => {
            Failure::from(ProviderError::Rejected(message))
        }
        _ => Failure::from(ProviderError::Unavailable(message)),
    }
}
