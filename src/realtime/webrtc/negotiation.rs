//! Answering an offer: the peer connection with Adam's audio track, its event handler,
//! a media port, ICE gathering before the answer (no trickle ICE).

use std::sync::Arc;
use std::time::Duration;

use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateType, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionState, RTCSdpType, RTCSessionDescription, Registry as Interceptors,
    SettingEngineBuilder, register_default_interceptors,
};

use super::opus::opus_codec;
use super::ports::{PortLease, PortPool};
use super::{LiveCount, NegotiationError, SessionDescription, WebRtc};

/// A negotiated peer connection, not yet attached to a session.
pub struct Peer {
    pub(super) pc: Arc<dyn PeerConnection>,
    pub(super) events: mpsc::UnboundedReceiver<PeerEvent>,
    pub(super) output: Arc<TrackLocalStaticRTP>,
    pub(super) ssrc: u32,
    pub(super) payload_type: u8,
    /// The SDP answer for the client.
    pub answer: SessionDescription,
    pub(super) port: Option<PortLease>,
    pub(super) live: LiveCount,
}

impl Peer {
    /// Closes a peer that will not be used (the session could not start).
    pub async fn close(self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing an unused peer connection");
        }
    }
}

/// What the peer connection's event handler reports to the peer loop.
pub(super) enum PeerEvent {
    State(RTCPeerConnectionState),
    Channel(Arc<dyn DataChannel>),
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    events: mpsc::UnboundedSender<PeerEvent>,
    gathered: watch::Sender<bool>,
    _live: LiveCount,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(PeerEvent::State(state));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.events.send(PeerEvent::Channel(channel));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.events.send(PeerEvent::Track(track));
    }
}

impl WebRtc {
    /// Answers `offer`: builds the peer connection with Adam's outgoing audio track,
    /// waits for Adam's ICE candidates (up to `gather_timeout_ms`) and returns the peer
    /// with the complete answer.
    pub async fn negotiate(&self, offer: SessionDescription) -> Result<Peer, NegotiationError> {
        let offer = parse_offer(offer)?;
        match self.negotiate_inner(offer).await {
            Ok(peer) => Ok(peer),
            Err(e) => {
                let stage = match e {
                    NegotiationError::InvalidOffer(_) => "sdp",
                    NegotiationError::NoPort => "ports",
                    NegotiationError::Internal(_) => "negotiation",
                };
                self.metrics.failures.with_label_values(&[stage]).inc();
                Err(e)
            }
        }
    }

    async fn negotiate_inner(
        &self,
        offer: RTCSessionDescription,
    ) -> Result<Peer, NegotiationError> {
        let internal = |e: webrtc::error::Error| NegotiationError::Internal(e.to_string());
        let (events_tx, events) = mpsc::unbounded_channel();
        let (gathered_tx, mut gathered) = watch::channel(false);
        let live = LiveCount::new(&self.metrics.peer_connections);
        let (pc, port) = self.build(events_tx, gathered_tx).await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrc = rand::random::<u32>();
        let output = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "adam".to_owned(),
            "adam-voice".to_owned(),
            "Adam".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: opus_codec(),
                ..Default::default()
            }],
        )));
        let result = async {
            let sender = pc
                .add_track(Arc::clone(&output) as Arc<dyn TrackLocal>)
                .await
                .map_err(internal)?;
            pc.set_remote_description(offer)
                .await
                .map_err(|e| NegotiationError::InvalidOffer(format!("offer refused: {e}")))?;
            let answer = pc
                .create_answer(None)
                .await
                .map_err(|e| NegotiationError::InvalidOffer(format!("cannot answer: {e}")))?;
            pc.set_local_description(answer).await.map_err(internal)?;
            let wait = Duration::from_millis(self.settings.gather_timeout_ms);
            if tokio::time::timeout(wait, gathered.wait_for(|done| *done))
                .await
                .is_err()
            {
                tracing::warn!("ICE gathering not complete in time; answering with what there is");
            }
            let payload_type = sender
                .get_parameters()
                .await
                .map_err(internal)?
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.payload_type)
                .ok_or_else(|| {
                    NegotiationError::InvalidOffer("the offer has no Opus audio to answer".into())
                })?;
            let answer = pc
                .local_description()
                .await
                .ok_or_else(|| NegotiationError::Internal("no local description".into()))?;
            if answer.sdp_type != RTCSdpType::Answer {
                return Err(NegotiationError::Internal(
                    "local description is not an answer".into(),
                ));
            }
            Ok((payload_type, answer.sdp))
        }
        .await;
        match result {
            Ok((payload_type, sdp)) => Ok(Peer {
                pc,
                events,
                output,
                ssrc,
                payload_type,
                answer: SessionDescription {
                    kind: "answer".into(),
                    sdp,
                },
                port,
                live,
            }),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    async fn build(
        &self,
        events: mpsc::UnboundedSender<PeerEvent>,
        gathered: watch::Sender<bool>,
    ) -> Result<(impl PeerConnection + use<>, Option<PortLease>), NegotiationError> {
        let internal = |e: webrtc::error::Error| NegotiationError::Internal(e.to_string());
        let handler = Arc::new(Handler {
            events,
            gathered,
            _live: LiveCount::new(&self.metrics.handlers),
        });
        // A port taken by another process is skipped; a few tries, then give up.
        let mut last_error = None;
        for _ in 0..8 {
            let lease = match &self.ports {
                Some(pool) => Some(PortPool::lease(pool).ok_or(NegotiationError::NoPort)?),
                None => None,
            };
            let port = lease.as_ref().map_or(0, |l| l.port);
            let mut media = MediaEngine::default();
            media
                .register_codec(
                    rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters {
                        rtp_codec: opus_codec(),
                        payload_type: 111,
                    },
                    RtpCodecKind::Audio,
                )
                .map_err(internal)?;
            let interceptors =
                register_default_interceptors(Interceptors::new(), &mut media).map_err(internal)?;
            let mut setting = SettingEngineBuilder::new();
            if !self.settings.nat_1to1_ips.is_empty() {
                setting = setting.with_nat_1to1_ips(
                    self.settings.nat_1to1_ips.clone(),
                    RTCIceCandidateType::Host,
                );
            }
            let ice_servers = if self.settings.stun_urls.is_empty() {
                Vec::new()
            } else {
                vec![RTCIceServer {
                    urls: self.settings.stun_urls.clone(),
                    ..Default::default()
                }]
            };
            let addrs: Vec<String> = self
                .settings
                .udp_bind_ips
                .iter()
                .map(|ip| match ip.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
                    _ => format!("{ip}:{port}"),
                })
                .collect();
            let built = PeerConnectionBuilder::new()
                .with_configuration(
                    RTCConfigurationBuilder::new()
                        .with_ice_servers(ice_servers)
                        .build(),
                )
                .with_media_engine(media)
                .with_interceptor_registry(interceptors)
                .with_setting_engine(setting.build())
                .with_handler(handler.clone())
                .with_udp_addrs(addrs)
                .build()
                .await;
            match built {
                Ok(pc) => return Ok((pc, lease)),
                Err(e) if lease.is_some() => last_error = Some(e),
                Err(e) => return Err(internal(e)),
            }
        }
        Err(last_error.map_or(NegotiationError::NoPort, internal))
    }
}

/// Checks a client's offer and parses its SDP, before any peer connection exists.
pub fn parse_offer(offer: SessionDescription) -> Result<RTCSessionDescription, NegotiationError> {
    if offer.kind != "offer" {
        return Err(NegotiationError::InvalidOffer(format!(
            "type must be \"offer\", not {:?}",
            offer.kind
        )));
    }
    if !offer.sdp.starts_with("v=0") {
        return Err(NegotiationError::InvalidOffer(
            "sdp must be a session description starting with v=0".into(),
        ));
    }
    RTCSessionDescription::offer(offer.sdp)
        .map_err(|e| NegotiationError::InvalidOffer(format!("unreadable SDP: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_checked_before_a_peer_connection_exists() {
        let offer = |kind: &str, sdp: &str| SessionDescription {
            kind: kind.into(),
            sdp: sdp.into(),
        };
        let minimal = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        assert!(parse_offer(offer("offer", minimal)).is_ok());
        for (kind, sdp) in [
            ("answer", minimal),
            ("offer", "o=- 1"),
            ("offer", "v=0\r\nnot sdp"),
        ] {
            assert!(
                matches!(
                    parse_offer(offer(kind, sdp)),
                    Err(NegotiationError::InvalidOffer(_))
                ),
                "{kind} {sdp:?}"
            );
        }
    }
}
