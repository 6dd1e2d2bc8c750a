//! The WebRTC transport: one peer connection per session, negotiated with a single
//! HTTP offer/answer (no trickle ICE: Adam gathers its candidates before answering),
//! Opus at 48 kHz both ways, and a data channel `events` carrying exactly the JSON events
//! of the WebSocket protocol. The session runs at 48 kHz in and out, so this module only
//! decodes and encodes Opus; resampling for the models happens inside the session.
//!
//! Built on `webrtc` 0.21 (the async layer over the sans-IO `rtc` core): one event
//! handler per connection, and `close()` ends every event stream, so a finished session
//! leaves no task, socket or handler behind — `adam_webrtc_peer_connections` and
//! `adam_webrtc_handlers` count what is alive.
//!
//! The session loop itself is the shared transport driver (`realtime::transport`); this
//! module is its adapter: `negotiation` answers the offer, `peer` connects and adapts the
//! peer connection to the driver, `opus` codes the audio, `ports` leases media ports.

mod negotiation;
mod opus;
mod peer;
mod ports;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use negotiation::{Peer, parse_offer};
pub use opus::opus_codec;
pub use peer::{channel_inbound, run};
use ports::PortPool;
pub use settings::WebRtcSettings;

/// Opus runs at 48 kHz; one RTP packet carries 20 ms.
pub const SAMPLE_RATE: u32 = 48_000;
/// The label of the data channel the client creates.
pub const EVENTS_CHANNEL: &str = "events";

/// An ICE server as `RTCPeerConnection` takes it (`iceServers`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:` / `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name (an expiring one per session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password for `username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A session description as browsers serialise it: `{"type": "offer", "sdp": "…"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionDescription {
    /// `offer` in the request, `answer` in the response.
    #[serde(rename = "type")]
    pub kind: String,
    /// The SDP text.
    pub sdp: String,
}

/// Why an offer could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    /// The offer is not a usable SDP offer (422).
    #[error("{0}")]
    InvalidOffer(String),
    /// Every configured media port is taken (503).
    #[error("no free media port")]
    NoPort,
    /// Anything else (500).
    #[error("webrtc: {0}")]
    Internal(String),
}

struct WebRtcMetrics {
    peer_connections: IntGauge,
    handlers: IntGauge,
    connect_seconds: Histogram,
    failures: IntCounterVec,
}

impl WebRtcMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let peer_connections = IntGauge::new(
            "webrtc_peer_connections",
            "WebRTC peer connections alive on this node",
        )?;
        let handlers = IntGauge::new(
            "webrtc_handlers",
            "WebRTC event handlers alive (dropped only when the connection's driver is gone)",
        )?;
        let connect_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "webrtc_connect_seconds",
                "Answer sent until the peer connection and its events channel are up",
            )
            .buckets(vec![
                0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
            ]),
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "webrtc_failures_total",
                "WebRTC connections that failed, by stage",
            ),
            &["stage"],
        )?;
        registry.register(Box::new(peer_connections.clone()))?;
        registry.register(Box::new(handlers.clone()))?;
        registry.register(Box::new(connect_seconds.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        Ok(Self {
            peer_connections,
            handlers,
            connect_seconds,
            failures,
        })
    }
}

/// The node's WebRTC transport: configuration, media ports and metrics.
pub struct WebRtc {
    settings: WebRtcSettings,
    ports: Option<Arc<PortPool>>,
    metrics: WebRtcMetrics,
}

impl std::fmt::Debug for WebRtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtc").finish_non_exhaustive()
    }
}

/// Counts a live object in a gauge until dropped.
struct LiveCount(IntGauge);

impl LiveCount {
    fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for LiveCount {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl WebRtc {
    /// The transport for `settings`, its series registered in `registry`.
    pub fn new(settings: &WebRtcSettings, registry: &Registry) -> anyhow::Result<Self> {
        let ports = (settings.udp_port_min != 0)
            .then(|| Arc::new(PortPool::new(settings.udp_port_min, settings.udp_port_max)));
        Ok(Self {
            settings: settings.clone(),
            ports,
            metrics: WebRtcMetrics::new(registry)?,
        })
    }

    /// True when the transport is offered.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Seconds a new connection has to come up.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.connect_timeout_secs)
    }

    /// The ICE servers a browser should use for `session_id`: the STUN servers, and the
    /// TURN servers with a credential of their own that expires (the TURN REST API
    /// scheme: user `expiry:session`, password `base64(HMAC-SHA1(secret, user))`).
    pub fn ice_servers(&self, session_id: &str, now_unix: i64) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.settings.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.settings.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (
            self.settings.turn_urls.is_empty(),
            &self.settings.turn_shared_secret,
        ) {
            use secrecy::ExposeSecret;
            let expires = now_unix + self.settings.turn_credential_ttl_secs as i64;
            let username = format!("{expires}:{session_id}");
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.expose_secret().as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(username.as_bytes());
            let credential =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            servers.push(IceServer {
                urls: self.settings.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_follow_the_rest_api_scheme() {
        let settings = WebRtcSettings {
            stun_urls: vec!["stun:stun.example.com:3478".into()],
            turn_urls: vec!["turn:turn.example.com:3478?transport=udp".into()],
            turn_shared_secret: Some("north-wind".to_owned().into()),
            turn_credential_ttl_secs: 600,
            ..WebRtcSettings::default()
        };
        let webrtc = WebRtc::new(&settings, &Registry::new()).expect("webrtc");
        let servers = webrtc.ice_servers("s1", 1_000_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, vec!["stun:stun.example.com:3478"]);
        let turn = &servers[1];
        assert_eq!(turn.username.as_deref(), Some("1000600:s1"));
        // coturn checks base64(HMAC-SHA1(secret, username)); computed independently with
        // `printf 1000600:s1 | openssl dgst -sha1 -hmac north-wind -binary | base64`.
        assert_eq!(turn.credential.as_deref(), Some(TURN_EXPECTED));
        assert!(
            WebRtc::new(&WebRtcSettings::default(), &Registry::new())
                .expect("webrtc")
                .ice_servers("s1", 0)
                .is_empty(),
            "no servers configured: none given (loopback and LAN need none)"
        );
    }

    const TURN_EXPECTED: &str = "EW7iZ76EdniItheVWhskqu2duxk=";
}
