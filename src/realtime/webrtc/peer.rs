//! The peer loop of one session: waits for the peer connection and its `events` channel
//! to come up, then adapts them to the transport driver (`realtime::transport`) — the
//! channel's messages and the microphone track in, events on the channel and Adam's voice
//! on the audio track out, `session.closed` as the close frame — and cleans up.

use std::sync::Arc;
use std::time::Duration;

use adam_actors::events::{ServerEvent, parse_client_event};
use adam_actors::outbox::{Outbox, OutboxReceiver};
use adam_actors::session::SessionHandle;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::RTCPeerConnectionState;

use super::negotiation::{Peer, PeerEvent};
use super::opus::{MicDecoder, Writer};
use super::{EVENTS_CHANNEL, WebRtc};
use crate::realtime::transport::{
    self, Disconnected, Inbound, Incoming, Limits, Outgoing, Received, close,
};

/// Client input buffered between the channel and track readers and the driver.
const INPUT_QUEUE: usize = 64;
/// How long SCTP may take to deliver `session.closed` (and the events before it).
const GOODBYE_DELIVERY: Duration = Duration::from_millis(500);

/// Runs the connection of one session until either side ends it; always ends the
/// session and closes the peer connection.
pub async fn run(
    webrtc: Arc<WebRtc>,
    peer: Peer,
    session: SessionHandle,
    outbox: Outbox,
    receiver: OutboxReceiver,
    limits: Limits,
) {
    let Peer {
        pc,
        mut events,
        output,
        ssrc,
        payload_type,
        answer: _,
        port,
        live,
    } = peer;
    let started = Instant::now();
    let connect_deadline = started + webrtc.connect_timeout();
    let mut channel: Option<Arc<dyn DataChannel>> = None;
    let mut connected = false;
    let mut tasks = JoinSet::new();
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (channel_open_tx, mut channel_open) = watch::channel(false);
    let failed = loop {
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
                            input_tx.clone(),
                            channel_open_tx.clone(),
                            limits.max_message_bytes,
                        ));
                        channel = Some(dc);
                    }
                }
                Some(PeerEvent::Track(track)) => {
                    tasks.spawn(read_audio(track, input_tx.clone()));
                }
            },
            _ = channel_open.changed() => {}
            () = tokio::time::sleep_until(connect_deadline) => break Some("webrtc connect timeout"),
            () = outbox.closed() => break Some("closed by server"),
        }
    };
    match (failed, &channel) {
        (None, Some(dc)) => {
            webrtc
                .metrics
                .connect_seconds
                .observe(started.elapsed().as_secs_f64());
            let mut input = PeerInput {
                events,
                input: input_rx,
                input_tx,
                tasks: &mut tasks,
            };
            let mut output = PeerOutput {
                channel: dc.clone(),
                writer: Writer::new(output, ssrc, payload_type, webrtc.settings.opus_complexity),
            };
            transport::run(&session, &outbox, receiver, &mut input, &mut output, limits).await;
        }
        (reason, _) => {
            let reason = reason.unwrap_or("webrtc connection failed");
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
            drop(input_rx);
        }
    }
    if let Err(e) = pc.close().await {
        tracing::debug!(error = %e, "closing the peer connection");
    }
    // The readers end when close() ends their event streams (or the driver stops
    // listening); abort as a backstop.
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

/// What the client sends: the readers' input, and the peer connection's events (a
/// failed connection, a new audio track).
struct PeerInput<'a> {
    events: mpsc::UnboundedReceiver<PeerEvent>,
    input: mpsc::Receiver<Received>,
    input_tx: mpsc::Sender<Received>,
    tasks: &'a mut JoinSet<()>,
}

impl Incoming for PeerInput<'_> {
    async fn recv(&mut self) -> Received {
        loop {
            tokio::select! {
                // `input_tx` is held here, so this never ends.
                Some(received) = self.input.recv() => return received,
                event = self.events.recv() => match event {
                    Some(PeerEvent::State(
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                    )) | None => return Received::Gone,
                    Some(PeerEvent::Track(track)) => {
                        self.tasks.spawn(read_audio(track, self.input_tx.clone()));
                    }
                    Some(PeerEvent::State(_) | PeerEvent::Channel(_)) => {}
                },
                Some(done) = self.tasks.join_next() => {
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "webrtc reader failed");
                    }
                }
            }
        }
    }
}

/// Events on the data channel, Adam's voice on the audio track.
struct PeerOutput {
    channel: Arc<dyn DataChannel>,
    writer: Writer,
}

impl Outgoing for PeerOutput {
    async fn send_event(&mut self, event: &ServerEvent, json: String) -> Result<(), Disconnected> {
        if let ServerEvent::OutputAudioCleared { .. } = event {
            self.writer.talkspurt_ended();
        }
        self.channel
            .send_text(&json)
            .await
            .map(|_| ())
            .map_err(|_| Disconnected)
    }

    async fn send_audio(&mut self, samples: Vec<i16>) -> Result<(), Disconnected> {
        self.writer.write(&samples).await;
        Ok(())
    }

    /// A data channel has no close frame: `session.closed` says it, then the peer
    /// connection closes.
    async fn close(&mut self, code: u16, reason: &str) {
        let closed = ServerEvent::SessionClosed {
            code,
            reason: reason.to_owned(),
        };
        let Some(json) = transport::encode(&closed) else {
            return;
        };
        // Let SCTP deliver it (and the final events before it) before the connection goes.
        let _ = tokio::time::timeout(GOODBYE_DELIVERY, async {
            if self.channel.send_text(&json).await.is_ok() {
                while self.channel.outstanding_bytes().await.is_ok_and(|n| n > 0) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .await;
    }
}

/// Client events from the data channel, each parsed by [`channel_inbound`].
async fn read_channel(
    dc: Arc<dyn DataChannel>,
    input: mpsc::Sender<Received>,
    open: watch::Sender<bool>,
    max_message_bytes: usize,
) {
    while let Some(event) = dc.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                open.send_replace(true);
            }
            DataChannelEvent::OnClose => break,
            DataChannelEvent::OnMessage(message) => {
                let inbound = channel_inbound(&message.data, message.is_string, max_message_bytes);
                if input.send(Received::Message(inbound)).await.is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
    // The events channel closed: the client left.
    let _ = input.send(Received::Gone).await;
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

/// The client's microphone, decoded, as media for the driver.
async fn read_audio(track: Arc<dyn TrackRemote>, input: mpsc::Sender<Received>) {
    if track.kind().await != RtpCodecKind::Audio {
        return;
    }
    let mut mic = match MicDecoder::new() {
        Ok(mic) => mic,
        Err(e) => {
            tracing::error!(error = %e, "cannot create an Opus decoder");
            return;
        }
    };
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        for pcm in mic.packet(packet.header.sequence_number, &packet.payload) {
            if input.send(Received::Media(pcm)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
