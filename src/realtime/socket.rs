//! The WebSocket adapter of the transport contract (`transport.rs`): binary PCM16
//! frames and JSON events in, the session's outbox out, pings as keepalive. Generic over
//! any `Sink`/`Stream` of messages so it can be driven without a network. The limits,
//! close codes and final-events grace are the driver's.

use adam_actors::audio::{pcm16_from_le_bytes, pcm16_to_le_bytes};
use adam_actors::events::{ServerEvent, parse_client_event};
use adam_actors::outbox::{Outbox, OutboxReceiver};
use adam_actors::session::SessionHandle;
use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use super::transport::{self, Disconnected, Incoming, Outgoing, Received};
pub use super::transport::{Inbound, Limits, close};

/// Runs the connection until either side ends it; always ends the session.
pub async fn run<S>(
    socket: S,
    session: SessionHandle,
    outbox: Outbox,
    receiver: OutboxReceiver,
    limits: Limits,
) where
    S: Stream<Item = Result<Message, axum::Error>>
        + Sink<Message, Error = axum::Error>
        + Send
        + Unpin,
{
    let (sink, stream) = socket.split();
    let mut input = SocketInput {
        stream,
        max_message_bytes: limits.max_message_bytes,
    };
    let mut output = SocketOutput {
        sink,
        closed: false,
    };
    transport::run(&session, &outbox, receiver, &mut input, &mut output, limits).await;
    if output.closed {
        // The closing handshake: read (and drop) what the client still sent until its
        // close reply. Dropping a socket with unread data resets it, and a reset can
        // destroy the final events and the close frame before the client reads them.
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
            while let Some(Ok(message)) = input.stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// How long a client has to answer the close frame.
const CLOSE_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(1);

/// The reading half: every message parsed by [`inbound`].
struct SocketInput<S> {
    stream: S,
    max_message_bytes: usize,
}

impl<S> Incoming for SocketInput<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Send + Unpin,
{
    async fn recv(&mut self) -> Received {
        match self.stream.next().await {
            None => Received::Gone,
            // Over tungstenite's own (hard) limit the message is refused while it is read:
            // still "too big" for the client, not a protocol error.
            Some(Err(e)) if is_too_big(&e) => Received::Message(Inbound::TooBig),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket read error");
                Received::Broken
            }
            Some(Ok(message)) => Received::Message(inbound(message, self.max_message_bytes)),
        }
    }
}

/// The writing half: events as text frames, audio as binary PCM16 frames.
struct SocketOutput<S> {
    sink: S,
    /// The close frame went out.
    closed: bool,
}

impl<S> SocketOutput<S>
where
    S: Sink<Message, Error = axum::Error> + Send + Unpin,
{
    async fn send(&mut self, message: Message) -> Result<(), Disconnected> {
        self.sink.send(message).await.map_err(|_| Disconnected)
    }
}

impl<S> Outgoing for SocketOutput<S>
where
    S: Sink<Message, Error = axum::Error> + Send + Unpin,
{
    async fn send_event(&mut self, _: &ServerEvent, json: String) -> Result<(), Disconnected> {
        self.send(Message::Text(json.into())).await
    }

    async fn send_audio(&mut self, samples: Vec<i16>) -> Result<(), Disconnected> {
        self.send(Message::Binary(pcm16_to_le_bytes(&samples).into()))
            .await
    }

    async fn keepalive(&mut self) -> Result<(), Disconnected> {
        self.send(Message::Ping(Default::default())).await
    }

    async fn close(&mut self, code: u16, reason: &str) {
        self.closed = self
            .sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await
            .is_ok();
        let _ = self.sink.close().await;
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

#[cfg(test)]
mod tests {
    use adam_actors::events::ClientEvent;

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
