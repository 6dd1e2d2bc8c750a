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

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adam_actors::events::{Outbound, ServerEvent, parse_client_event};
use adam_actors::outbox::{CloseFrame, Delivery, FINAL_EVENTS_GRACE, Outbox, OutboxReceiver};
use adam_actors::session::SessionHandle;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use utoipa::ToSchema;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateType, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionState, RTCSdpType, RTCSessionDescription, Registry as Interceptors,
    SettingEngineBuilder, register_default_interceptors,
};

use super::socket::{Inbound, MessageRate, SocketLimits, close};
use crate::settings::WebRtcSettings;

/// Opus runs at 48 kHz; one RTP packet carries 20 ms.
pub const SAMPLE_RATE: u32 = 48_000;
const FRAME: usize = 960;
/// The label of the data channel the client creates.
pub const EVENTS_CHANNEL: &str = "events";
/// Lost packets concealed by the decoder before it gives up and waits for real ones.
const MAX_CONCEALED: u16 = 5;

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

/// A negotiated peer connection, not yet attached to a session.
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    output: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    /// The SDP answer for the client.
    pub answer: SessionDescription,
    _port: Option<PortLease>,
    live: LiveCount,
}

impl Peer {
    /// Closes a peer that will not be used (the session could not start).
    pub async fn close(self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing an unused peer connection");
        }
    }
}

enum PeerEvent {
    State(RTCPeerConnectionState),
    Channel(Arc<dyn DataChannel>),
    Track(Arc<dyn TrackRemote>),
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
                _port: port,
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

/// Opus as Adam negotiates it (48 kHz, signalled stereo as browsers do, in-band FEC).
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: SAMPLE_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// Runs the connection of one session until either side ends it; always ends the
/// session and closes the peer connection.
pub async fn run(
    webrtc: Arc<WebRtc>,
    peer: Peer,
    session: SessionHandle,
    outbox: Outbox,
    receiver: OutboxReceiver,
    limits: SocketLimits,
) {
    let Peer {
        pc,
        mut events,
        output,
        ssrc,
        payload_type,
        answer: _,
        _port: port,
        live,
    } = peer;
    let activity = Arc::new(Activity::new());
    let started = Instant::now();
    let connect_deadline = started + webrtc.connect_timeout();
    let mut channel: Option<Arc<dyn DataChannel>> = None;
    let mut connected = false;
    let mut tasks = tokio::task::JoinSet::new();
    let (channel_open_tx, mut channel_open) = watch::channel(false);
    let reason = loop {
        if connected && *channel_open.borrow() {
            break None;
        }
        tokio::select! {
            event = events.recv() => match event {
                Some(PeerEvent::State(RTCPeerConnectionState::Connected)) => connected = true,
                Some(PeerEvent::State(
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                )) | None => break Some("webrtc connection failed"),
                Some(PeerEvent::State(_)) => {}
                Some(PeerEvent::Channel(dc)) => {
                    if channel.is_none() && dc.label().await.is_ok_and(|l| l == EVENTS_CHANNEL) {
                        tasks.spawn(read_channel(
                            dc.clone(),
                            session.clone(),
                            outbox.clone(),
                            limits,
                            activity.clone(),
                            channel_open_tx.clone(),
                        ));
                        channel = Some(dc);
                    }
                }
                Some(PeerEvent::Track(track)) => {
                    tasks.spawn(read_audio(track, session.clone(), activity.clone()));
                }
            },
            _ = channel_open.changed() => {}
            () = tokio::time::sleep_until(connect_deadline) => break Some("webrtc connect timeout"),
            () = outbox.closed() => break Some("closed by server"),
        }
    };
    let mut frame: Option<CloseFrame> = None;
    if let Some(reason) = reason {
        webrtc
            .metrics
            .failures
            .with_label_values(&[if reason == "closed by server" {
                "ended_while_connecting"
            } else {
                "connect"
            }])
            .inc();
        tracing::info!(reason, "webrtc session did not connect");
        session.end(reason, close::NORMAL);
    } else {
        webrtc
            .metrics
            .connect_seconds
            .observe(started.elapsed().as_secs_f64());
        activity.touch();
        let dc = channel.clone().expect("open channel");
        let mut writer = Writer::new(output, ssrc, payload_type, webrtc.settings.opus_complexity);
        frame = serve(
            &mut events,
            &mut tasks,
            &dc,
            &mut writer,
            receiver,
            &session,
            &outbox,
            &activity,
            limits,
        )
        .await;
        // A close the outbox asked for by itself (idle timeout, a client too slow) has not
        // ended the session yet; after one the session asked for, this does nothing.
        if let Some((code, reason)) = &frame {
            session.end(reason, *code);
        }
    }
    if let (Some(dc), Some((code, reason))) = (&channel, &frame) {
        let closed = ServerEvent::SessionClosed {
            code: *code,
            reason: reason.clone(),
        };
        // Let SCTP deliver it (and the final events before it) before the connection goes.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            if dc
                .send_text(&serde_json::to_string(&closed).unwrap_or_default())
                .await
                .is_ok()
            {
                while dc.outstanding_bytes().await.is_ok_and(|n| n > 0) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .await;
    }
    if let Err(e) = pc.close().await {
        tracing::debug!(error = %e, "closing the peer connection");
    }
    // The readers end when close() ends their event streams; abort as a backstop.
    if tokio::time::timeout(Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }
    drop(channel);
    drop(pc);
    drop(port);
    drop(live);
}

/// The connected phase: session items out, peer events in; returns the close frame.
#[allow(clippy::too_many_arguments)]
async fn serve(
    events: &mut mpsc::UnboundedReceiver<PeerEvent>,
    tasks: &mut tokio::task::JoinSet<()>,
    dc: &Arc<dyn DataChannel>,
    writer: &mut Writer,
    mut receiver: OutboxReceiver,
    session: &SessionHandle,
    outbox: &Outbox,
    activity: &Arc<Activity>,
    limits: SocketLimits,
) -> Option<CloseFrame> {
    let mut idle_check = tokio::time::interval(Duration::from_secs(1));
    let frame = loop {
        tokio::select! {
            biased;
            delivery = receiver.next() => match delivery {
                Delivery::Item(Outbound::Event(event)) => {
                    if let ServerEvent::OutputAudioCleared { .. } = event {
                        writer.talkspurt_ended();
                    }
                    let text = serde_json::to_string(&event).unwrap_or_default();
                    if dc.send_text(&text).await.is_err() {
                        session.end("client_disconnected", close::NORMAL);
                        break None;
                    }
                }
                Delivery::Item(Outbound::Audio(samples)) => writer.write(&samples).await,
                Delivery::Close(frame) => break Some(frame),
            },
            event = events.recv() => match event {
                Some(PeerEvent::State(
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                )) | None => {
                    session.end("client_disconnected", close::NORMAL);
                    break None;
                }
                Some(PeerEvent::Track(track)) => {
                    tasks.spawn(read_audio(track, session.clone(), activity.clone()));
                }
                Some(PeerEvent::State(_) | PeerEvent::Channel(_)) => {}
            },
            Some(done) = tasks.join_next() => {
                // The events channel closed (its reader returned): the client left.
                if let Err(e) = done {
                    tracing::warn!(error = %e, "webrtc reader failed");
                }
                if dc.ready_state().await.ok() != Some(rtc::data_channel::RTCDataChannelState::Open) {
                    session.end("client_disconnected", close::NORMAL);
                    break None;
                }
            }
            _ = idle_check.tick() => {
                if activity.idle_for() >= limits.idle_timeout {
                    outbox.close(close::NORMAL, "idle timeout");
                }
            }
        }
    };
    if frame.is_some() {
        // Deliver what the session queued before closing (its final events), briefly.
        let deadline = Instant::now() + FINAL_EVENTS_GRACE;
        while let Some(item) = receiver.queued_before(deadline) {
            if let Outbound::Event(event) = item
                && dc
                    .send_text(&serde_json::to_string(&event).unwrap_or_default())
                    .await
                    .is_err()
            {
                break;
            }
        }
    }
    frame
}

/// When the client last sent audio or an event.
struct Activity(Mutex<Instant>);

impl Activity {
    fn new() -> Self {
        Self(Mutex::new(Instant::now()))
    }

    fn touch(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

/// Client events from the data channel to the session, under the WebSocket's limits.
async fn read_channel(
    dc: Arc<dyn DataChannel>,
    session: SessionHandle,
    outbox: Outbox,
    limits: SocketLimits,
    activity: Arc<Activity>,
    open: watch::Sender<bool>,
) {
    let mut rate = MessageRate::new(limits.max_messages_per_sec);
    while let Some(event) = dc.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                open.send_replace(true);
            }
            DataChannelEvent::OnClose => return,
            DataChannelEvent::OnMessage(message) => {
                activity.touch();
                if rate.flooded() {
                    session.end("message flood", close::POLICY);
                    return;
                }
                match channel_inbound(&message.data, message.is_string, limits.max_message_bytes) {
                    Inbound::Event(event) => {
                        session.send_event(event);
                    }
                    Inbound::Refused(error) => {
                        outbox.event(error);
                    }
                    Inbound::TooBig => {
                        session.end("message too big", close::TOO_BIG);
                        return;
                    }
                    Inbound::Audio(_) | Inbound::Closed | Inbound::Ignored => {}
                }
            }
            _ => {}
        }
    }
}

/// Applies the size limit and parses one data-channel message: only JSON text events
/// travel there (audio goes on the media track). Never [`Inbound::Audio`].
pub fn channel_inbound(data: &[u8], is_string: bool, max_message_bytes: usize) -> Inbound {
    if data.len() > max_message_bytes {
        return Inbound::TooBig;
    }
    if !is_string {
        return Inbound::Refused(ServerEvent::error(
            "invalid_event",
            "the events channel carries JSON text; audio goes on the media track",
        ));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return Inbound::Refused(ServerEvent::error("invalid_event", "message is not UTF-8"));
    };
    match parse_client_event(text) {
        Ok(event) => Inbound::Event(event),
        Err(e) => Inbound::Refused(ServerEvent::error(e.code(), e.to_string())),
    }
}

/// The client's microphone: Opus packets decoded to 48 kHz PCM for the session, lost
/// packets concealed by the decoder.
async fn read_audio(track: Arc<dyn TrackRemote>, session: SessionHandle, activity: Arc<Activity>) {
    if track.kind().await != RtpCodecKind::Audio {
        return;
    }
    let mut decoder = match opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot create an Opus decoder");
            return;
        }
    };
    // 120 ms is the longest Opus packet.
    let mut pcm = vec![0i16; SAMPLE_RATE as usize / 1000 * 120];
    let mut next_sequence: Option<u16> = None;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        activity.touch();
        let sequence = packet.header.sequence_number;
        if let Some(expected) = next_sequence {
            let lost = sequence.wrapping_sub(expected);
            if lost > 0 && lost <= MAX_CONCEALED {
                for _ in 0..lost {
                    if let Ok(n) = decoder.decode(&[], &mut pcm[..FRAME], false) {
                        session.send_audio(pcm[..n].to_vec());
                    }
                }
            } else if lost > u16::MAX / 2 {
                // A late (reordered) packet: its moment has passed.
                continue;
            }
        }
        next_sequence = Some(sequence.wrapping_add(1));
        if packet.payload.is_empty() {
            continue;
        }
        match decoder.decode(&packet.payload, &mut pcm, false) {
            Ok(n) => {
                session.send_audio(pcm[..n].to_vec());
            }
            Err(e) => tracing::debug!(error = %e, "undecodable Opus packet dropped"),
        }
    }
}

/// Adam's voice: 48 kHz PCM from the session, Opus-encoded, one RTP packet per 20 ms.
/// Inside a talkspurt timestamps advance by exactly one frame; a new talkspurt starts at
/// the wall clock with the marker bit, so the browser's jitter buffer sees the pause.
struct Writer {
    track: Arc<TrackLocalStaticRTP>,
    encoder: Option<opus::Encoder>,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    base: Instant,
    base_timestamp: u32,
    next_timestamp: Option<u32>,
    last_write: Instant,
    pending: Vec<i16>,
    out: Vec<u8>,
}

impl Writer {
    fn new(track: Arc<TrackLocalStaticRTP>, ssrc: u32, payload_type: u8, complexity: u8) -> Self {
        let encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .and_then(|mut e| {
                    e.set_complexity(i32::from(complexity))?;
                    Ok(e)
                })
                .map_err(|e| tracing::error!(error = %e, "cannot create an Opus encoder"))
                .ok();
        Self {
            track,
            encoder,
            ssrc,
            payload_type,
            sequence: rand::random(),
            base: Instant::now(),
            base_timestamp: rand::random(),
            next_timestamp: None,
            last_write: Instant::now(),
            pending: Vec::with_capacity(FRAME),
            out: vec![0; 1500],
        }
    }

    fn talkspurt_ended(&mut self) {
        self.next_timestamp = None;
        self.pending.clear();
    }

    async fn write(&mut self, samples: &[i16]) {
        // A pause longer than a few frames ends the talkspurt.
        if self.last_write.elapsed() > Duration::from_millis(100) {
            self.next_timestamp = None;
        }
        self.pending.extend_from_slice(samples);
        while self.pending.len() >= FRAME {
            let frame: Vec<i16> = self.pending.drain(..FRAME).collect();
            self.send(&frame).await;
        }
        // A short tail (the end of an answer) goes out padded with silence.
        if !self.pending.is_empty() && samples.len() < FRAME {
            let mut frame = std::mem::take(&mut self.pending);
            frame.resize(FRAME, 0);
            self.send(&frame).await;
        }
    }

    async fn send(&mut self, frame: &[i16]) {
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        let len = match encoder.encode(frame, &mut self.out) {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!(error = %e, "Opus encoding failed; frame dropped");
                return;
            }
        };
        let marker = self.next_timestamp.is_none();
        let timestamp = self.next_timestamp.unwrap_or_else(|| {
            let elapsed = self.base.elapsed().as_secs_f64() * f64::from(SAMPLE_RATE);
            self.base_timestamp.wrapping_add(elapsed as u32)
        });
        self.next_timestamp = Some(timestamp.wrapping_add(FRAME as u32));
        self.sequence = self.sequence.wrapping_add(1);
        self.last_write = Instant::now();
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker,
                payload_type: self.payload_type,
                sequence_number: self.sequence,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(&self.out[..len]),
        };
        if let Err(e) = self.track.write_rtp(packet).await {
            tracing::debug!(error = %e, "RTP write failed");
        }
    }
}

/// Media ports from the configured range, one per connection, returned on drop.
struct PortPool {
    min: u16,
    max: u16,
    next: AtomicU16,
    used: Mutex<BTreeSet<u16>>,
}

struct PortLease {
    pool: Arc<PortPool>,
    port: u16,
}

impl PortPool {
    fn new(min: u16, max: u16) -> Self {
        Self {
            min,
            max,
            next: AtomicU16::new(min),
            used: Mutex::new(BTreeSet::new()),
        }
    }

    /// The next free port after the last one leased (spreading reuse), if any.
    fn lease(pool: &Arc<Self>) -> Option<PortLease> {
        let span = u32::from(pool.max - pool.min) + 1;
        let mut used = pool.used.lock().unwrap_or_else(|e| e.into_inner());
        let start = pool.next.load(Ordering::Relaxed);
        for i in 0..span {
            let offset = (u32::from(start - pool.min) + i) % span;
            let port = pool.min + offset as u16;
            if used.insert(port) {
                let after = if port == pool.max { pool.min } else { port + 1 };
                pool.next.store(after, Ordering::Relaxed);
                return Some(PortLease {
                    pool: pool.clone(),
                    port,
                });
            }
        }
        None
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool
            .used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_leased_once_and_returned_on_drop() {
        let pool = Arc::new(PortPool::new(40000, 40002));
        let a = PortPool::lease(&pool).expect("first");
        let b = PortPool::lease(&pool).expect("second");
        let c = PortPool::lease(&pool).expect("third");
        let mut ports = vec![a.port, b.port, c.port];
        ports.sort_unstable();
        assert_eq!(ports, vec![40000, 40001, 40002]);
        assert!(PortPool::lease(&pool).is_none(), "the range is exhausted");
        let freed = b.port;
        drop(b);
        assert_eq!(PortPool::lease(&pool).expect("reused").port, freed);
    }

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

    #[test]
    fn the_events_channel_takes_only_json_text_under_the_limit() {
        let event = br#"{"type":"input_audio_buffer.commit"}"#;
        assert_eq!(
            channel_inbound(event, true, 64),
            Inbound::Event(adam_actors::events::ClientEvent::InputAudioBufferCommit {})
        );
        assert_eq!(channel_inbound(event, true, 8), Inbound::TooBig);
        let code = |inbound: Inbound| match inbound {
            Inbound::Refused(ServerEvent::Error { error }) => error.code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(channel_inbound(&[0, 0], false, 64)), "invalid_event");
        assert_eq!(code(channel_inbound(b"\xff{", true, 64)), "invalid_event");
        assert_eq!(code(channel_inbound(b"{", true, 64)), "malformed_event");
    }

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

    const TURN_EXPECTED: &str = "EW7iZ76EdniItheVWhskqu2duxk=";
}
