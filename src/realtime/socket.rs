//! The WebSocket loop of one session: binary PCM16 frames and JSON events in, the
//! session's outbox out. Generic over any `Sink`/`Stream` of messages so it can be driven
//! without a network. Limits: message size (1009), message rate (1008), idle timeout,
//! slow clients (the outbox policy), ping keepalive.

use std::time::Duration;

use adam_actors::audio::{pcm16_from_le_bytes, pcm16_to_le_bytes};
use adam_actors::events::{ClientEvent, Outbound, ServerEvent, parse_client_event};
use adam_actors::outbox::{Delivery, FINAL_EVENTS_GRACE, Outbox, OutboxReceiver};
use adam_actors::session::SessionHandle;
use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// Largest message, bytes.
    pub max_message_bytes: usize,
    /// Messages per second.
    pub max_messages_per_sec: u32,
    /// Close after this long without a client message.
    pub idle_timeout: Duration,
    /// Ping interval.
    pub ping_every: Duration,
}

/// Counts a client's messages in one-second windows against `session.max_messages_per_sec`.
#[derive(Debug)]
pub struct MessageRate {
    window_start: Instant,
    count: u32,
    limit: u32,
}

impl MessageRate {
    /// A counter allowing `limit` messages a second.
    pub fn new(limit: u32) -> Self {
        Self {
            window_start: Instant::now(),
            count: 0,
            limit,
        }
    }

    /// Counts one message; true when it is one too many (a flood).
    pub fn flooded(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.count = 0;
        }
        self.count += 1;
        self.count > self.limit
    }
}

/// Close codes.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server going away (drain).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Policy violation (flood, slow client).
    pub const POLICY: u16 = 1008;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error.
    pub const INTERNAL: u16 = 1011;
}

/// Runs the connection until either side ends it; always ends the session.
pub async fn run<S>(
    socket: S,
    session: SessionHandle,
    outbox: Outbox,
    receiver: OutboxReceiver,
    limits: SocketLimits,
) where
    S: Stream<Item = Result<Message, axum::Error>>
        + Sink<Message, Error = axum::Error>
        + Send
        + Unpin,
{
    let (sink, stream) = socket.split();
    let reader = read_loop(stream, &session, &outbox, limits);
    let writer = write_loop(sink, receiver, limits.ping_every);
    tokio::pin!(reader, writer);
    tokio::select! {
        reason = &mut reader => {
            // The client left or broke a rule: end the session, let the writer say goodbye.
            session.end(&reason, close::NORMAL);
            if tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
                tracing::debug!("writer did not finish closing in time");
            }
        }
        () = &mut writer => {
            session.end("connection closed", close::NORMAL);
        }
    }
}

async fn read_loop<S>(
    mut stream: S,
    session: &SessionHandle,
    outbox: &Outbox,
    limits: SocketLimits,
) -> String
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut rate = MessageRate::new(limits.max_messages_per_sec);
    let closing = outbox.closed();
    tokio::pin!(closing);
    // Only audio and events count as activity; keepalive pongs do not.
    let mut last_activity = Instant::now();
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = tokio::time::sleep_until(last_activity + limits.idle_timeout) => {
                outbox.close(close::NORMAL, "idle timeout");
                return "idle timeout".to_owned();
            }
            // The session or the outbox policy (a client too slow) asked: record its reason.
            () = &mut closing => {
                return outbox
                    .close_frame()
                    .map_or_else(|| "closed by server".to_owned(), |(_, reason)| reason);
            }
        };
        let message = match next {
            None => return "client_disconnected".to_owned(),
            // Over tungstenite's own (hard) limit the message is refused while it is read:
            // still "too big" for the client, not a protocol error.
            Some(Err(e)) if is_too_big(&e) => {
                outbox.close(close::TOO_BIG, "message too big");
                return "message too big".to_owned();
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket read error");
                outbox.close(close::PROTOCOL, "read error");
                return "client_disconnected".to_owned();
            }
            Some(Ok(m)) => m,
        };
        if matches!(message, Message::Binary(_) | Message::Text(_)) {
            last_activity = Instant::now();
        }
        if rate.flooded() {
            outbox.close(close::POLICY, "message flood");
            return "message flood".to_owned();
        }
        match inbound(message, limits.max_message_bytes) {
            Inbound::Audio(samples) => {
                session.send_audio(samples);
            }
            Inbound::Event(event) => {
                session.send_event(event);
            }
            Inbound::Refused(error) => {
                outbox.event(error);
            }
            Inbound::TooBig => {
                outbox.close(close::TOO_BIG, "message too big");
                return "message too big".to_owned();
            }
            Inbound::Closed => return "client_disconnected".to_owned(),
            Inbound::Ignored => {}
        }
    }
}

/// Whether a read error is tungstenite refusing a message or frame over its size limit.
pub fn is_too_big(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                tungstenite::Error::Capacity(
                    tungstenite::error::CapacityError::MessageTooLong { .. }
                )
            )
        })
}

/// What one client message means for its session: decided without I/O, so every
/// transport applies the same rules and the parser can be fuzzed (`fuzz/`).
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// PCM16 samples for the session.
    Audio(Vec<i16>),
    /// A client event for the session.
    Event(ClientEvent),
    /// Refused with this `error` event; the session goes on.
    Refused(ServerEvent),
    /// Larger than the limit: the connection closes with 1009.
    TooBig,
    /// The client closed the connection.
    Closed,
    /// Nothing for the session (keepalive).
    Ignored,
}

/// Applies the size limit and parses one WebSocket message: binary frames are PCM16
/// little-endian, text frames JSON client events.
pub fn inbound(message: Message, max_message_bytes: usize) -> Inbound {
    match message {
        Message::Binary(bytes) => {
            if bytes.len() > max_message_bytes {
                return Inbound::TooBig;
            }
            match pcm16_from_le_bytes(&bytes) {
                Some(samples) => Inbound::Audio(samples),
                None => Inbound::Refused(ServerEvent::error(
                    "invalid_audio",
                    "audio frames must be PCM16 little-endian: an even number of bytes",
                )),
            }
        }
        Message::Text(text) => {
            if text.len() > max_message_bytes {
                return Inbound::TooBig;
            }
            match parse_client_event(text.as_str()) {
                Ok(event) => Inbound::Event(event),
                Err(e) => Inbound::Refused(ServerEvent::error(e.code(), e.to_string())),
            }
        }
        Message::Close(_) => Inbound::Closed,
        Message::Ping(_) | Message::Pong(_) => Inbound::Ignored,
    }
}

async fn write_loop<S>(mut sink: S, mut receiver: OutboxReceiver, ping_every: Duration)
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let frame = loop {
        tokio::select! {
            biased;
            delivery = receiver.next() => match delivery {
                Delivery::Item(item) => {
                    if send_item(&mut sink, item).await.is_err() {
                        return;
                    }
                }
                Delivery::Close(frame) => break frame,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    };
    // Deliver what the session queued before closing (its final events), briefly.
    let deadline = Instant::now() + FINAL_EVENTS_GRACE;
    while let Some(item) = receiver.queued_before(deadline) {
        if send_item(&mut sink, item).await.is_err() {
            return;
        }
    }
    let (code, reason) = frame;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = sink.close().await;
}

async fn send_item<S>(sink: &mut S, item: Outbound) -> Result<(), axum::Error>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    match item {
        Outbound::Event(event) => {
            let text = serde_json::to_string(&event).unwrap_or_default();
            sink.send(Message::Text(text.into())).await
        }
        Outbound::Audio(frame) => {
            sink.send(Message::Binary(pcm16_to_le_bytes(&frame).into()))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_checks_the_size_then_parses_audio_and_events() {
        let audio = Message::Binary(vec![1, 0, 0xff, 0xff].into());
        assert_eq!(inbound(audio, 4), Inbound::Audio(vec![1, -1]));
        let odd = inbound(Message::Binary(vec![1, 2, 3].into()), 4);
        assert!(
            matches!(&odd, Inbound::Refused(ServerEvent::Error { error }) if error.code == "invalid_audio"),
            "{odd:?}"
        );
        assert_eq!(
            inbound(Message::Binary(vec![0; 6].into()), 4),
            Inbound::TooBig
        );
        let event = r#"{"type":"response.cancel"}"#;
        assert_eq!(
            inbound(Message::Text(event.into()), 64),
            Inbound::Event(ClientEvent::ResponseCancel {})
        );
        assert_eq!(inbound(Message::Text(event.into()), 8), Inbound::TooBig);
        let unknown = inbound(Message::Text(r#"{"type":"x"}"#.into()), 64);
        assert!(
            matches!(&unknown, Inbound::Refused(ServerEvent::Error { error }) if error.code == "unknown_event"),
            "{unknown:?}"
        );
        assert_eq!(inbound(Message::Close(None), 64), Inbound::Closed);
        assert_eq!(
            inbound(Message::Ping(Default::default()), 0),
            Inbound::Ignored
        );
    }
}
