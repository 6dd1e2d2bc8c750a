//! `[webrtc]`: media sockets, ICE servers and the Opus encoder.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// `[webrtc]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcSettings {
    /// Offer the WebRTC transport (`POST /v1/sessions/{id}/webrtc`).
    pub enabled: bool,
    /// Local IPs the media sockets bind; `0.0.0.0` means every non-loopback interface.
    pub udp_bind_ips: Vec<String>,
    /// UDP ports for media, inclusive (one port per connection); 0 and 0: any free port.
    pub udp_port_min: u16,
    /// See `udp_port_min`.
    pub udp_port_max: u16,
    /// Public IPs to advertise instead of the bound ones (a 1:1 NAT, e.g. a cloud VM).
    pub nat_1to1_ips: Vec<String>,
    /// STUN servers (`stun:host:port`), given to browsers and used for Adam's own candidates.
    pub stun_urls: Vec<String>,
    /// TURN servers (`turn:host:3478?transport=udp`, `turns:…`) given to browsers.
    pub turn_urls: Vec<String>,
    /// Shared secret of the TURN server's REST API (coturn `use-auth-secret`), from
    /// `ADAM__WEBRTC__TURN_SHARED_SECRET`: each session gets its own expiring credential.
    #[serde(skip_serializing)]
    pub turn_shared_secret: Option<SecretString>,
    /// Lifetime of a TURN credential, seconds.
    pub turn_credential_ttl_secs: u64,
    /// Seconds for the peer connection to come up after the answer.
    pub connect_timeout_secs: u64,
    /// Longest wait for Adam's own ICE candidates before answering, ms.
    pub gather_timeout_ms: u64,
    /// Opus encoder complexity for Adam's voice, 0–10. Encoding is the largest single cost
    /// of a WebRTC session (about 40 % of the server's CPU at 100 sessions): a 20 ms frame
    /// of speech costs about 266 µs at 10 (libopus' default), 158 µs at 5 and 85 µs at 1
    /// (`cargo bench -p adam --bench opus`). 5 is what mobile WebRTC stacks use; speech
    /// quality differs little from 10.
    pub opus_complexity: u8,
}

impl Default for WebRtcSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            udp_bind_ips: vec!["0.0.0.0".into(), "127.0.0.1".into()],
            udp_port_min: 0,
            udp_port_max: 0,
            nat_1to1_ips: Vec::new(),
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_shared_secret: None,
            turn_credential_ttl_secs: 3600,
            connect_timeout_secs: 15,
            gather_timeout_ms: 3000,
            opus_complexity: 5,
        }
    }
}

impl WebRtcSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if (self.udp_port_min == 0) != (self.udp_port_max == 0)
            || self.udp_port_min > self.udp_port_max
        {
            return Err((
                "webrtc.udp_port_min",
                "set both udp_port_min and udp_port_max (min ≤ max), or neither".into(),
            ));
        }
        if self.opus_complexity > 10 {
            return Err(("webrtc.opus_complexity", "must be 0 to 10".into()));
        }
        for ip in self.udp_bind_ips.iter().chain(&self.nat_1to1_ips) {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err((
                    "webrtc.udp_bind_ips",
                    format!("`{ip}` is not an IP address"),
                ));
            }
        }
        if self.enabled && self.udp_bind_ips.is_empty() {
            return Err(("webrtc.udp_bind_ips", "needs at least one IP".into()));
        }
        for url in self.stun_urls.iter().chain(&self.turn_urls) {
            if !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|p| url.starts_with(p))
            {
                return Err((
                    "webrtc.stun_urls",
                    format!("`{url}` must start with stun:, stuns:, turn: or turns:"),
                ));
            }
        }
        if !self.turn_urls.is_empty() && self.turn_shared_secret.is_none() {
            return Err((
                "webrtc.turn_urls",
                "TURN needs ADAM__WEBRTC__TURN_SHARED_SECRET".into(),
            ));
        }
        Ok(())
    }
}
