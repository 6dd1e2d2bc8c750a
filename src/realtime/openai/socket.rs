//! The OpenAI WebSocket adapter of the transport contract: JSON events both ways, audio
//! as base64 inside them. The reading half answers what it can at once (the API
//! acknowledges some client events itself, e.g. `conversation.item.added`) through the
//! shared sink; everything else goes through the session and [`Translator::server`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use adam_actors::events::ServerEvent;
use adam_actors::outbox::{Outbox, OutboxReceiver};
use adam_actors::session::SessionHandle;
use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;

use super::translate::{ToSession, Translator};
use crate::realtime::socket::is_too_big;
use crate::realtime::transport::{
    self, Disconnected, Inbound, Incoming, Limits, Outgoing, Received,
};

/// The writing half of the socket, shared by both halves of the adapter.
type SharedSink<K> = Arc<tokio::sync::Mutex<K>>;

/// Runs one OpenAI-protocol connection until either side ends it; always ends the session.
pub async fn run<S>(
    socket: S,
    translator: Translator,
    opening: Vec<ToSession>,
    session: SessionHandle,
    outbox: Outbox,
    receiver: OutboxReceiver,
    limits: Limits,
) where
    S: Stream<Item = Result<Message, axum::Error>>
        + Sink<Message, Error = axum::Error>
        + Send
        + Unpin
        + 'static,
{
    let (sink, stream) = socket.split();
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let translator = Arc::new(Mutex::new(translator));
    let mut input = OpenAiInput {
        stream,
        sink: sink.clone(),
        translator: translator.clone(),
        queued: opening.into_iter().map(inbound).collect(),
        max_message_bytes: limits.max_message_bytes,
    };
    let mut output = OpenAiOutput {
        sink,
        translator,
        closed: false,
    };
    transport::run(&session, &outbox, receiver, &mut input, &mut output, limits).await;
    if output.closed {
        // As `socket.rs`: read until the client's close reply so the close is not reset.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while let Some(Ok(message)) = input.stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Sends events in order; false when the client is gone.
async fn send_all<K>(sink: &SharedSink<K>, events: Vec<Value>) -> Result<(), Disconnected>
where
    K: Sink<Message, Error = axum::Error> + Send + Unpin,
{
    if events.is_empty() {
        return Ok(());
    }
    let mut sink = sink.lock().await;
    for event in events {
        sink.send(Message::Text(event.to_string().into()))
            .await
            .map_err(|_| Disconnected)?;
    }
    Ok(())
}

fn lock(translator: &Mutex<Translator>) -> std::sync::MutexGuard<'_, Translator> {
    // A panic while translating cannot leave the state half-written in a way that matters
    // more than closing the connection would: keep going with it.
    translator
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn inbound(input: ToSession) -> Inbound {
    match input {
        ToSession::Audio(samples) => Inbound::Audio(samples),
        ToSession::Event(event) => Inbound::Event(event),
    }
}

struct OpenAiInput<S, K> {
    stream: S,
    sink: SharedSink<K>,
    translator: Arc<Mutex<Translator>>,
    /// Session input from one client message that produced several.
    queued: VecDeque<Inbound>,
    max_message_bytes: usize,
}

impl<S, K> Incoming for OpenAiInput<S, K>
where
    S: Stream<Item = Result<Message, axum::Error>> + Send + Unpin,
    K: Sink<Message, Error = axum::Error> + Send + Unpin,
{
    async fn recv(&mut self) -> Received {
        if let Some(next) = self.queued.pop_front() {
            return Received::Message(next);
        }
        let text = match self.stream.next().await {
            None => return Received::Gone,
            Some(Err(e)) if is_too_big(&e) => return Received::Message(Inbound::TooBig),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket read error");
                return Received::Broken;
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                return Received::Message(Inbound::Refused(ServerEvent::error(
                    "invalid_binary_message",
                    "this endpoint speaks JSON events only: send audio as base64 in input_audio_buffer.append",
                )));
            }
            Some(Ok(Message::Close(_))) => return Received::Message(Inbound::Closed),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                return Received::Message(Inbound::Ignored);
            }
        };
        if text.len() > self.max_message_bytes {
            return Received::Message(Inbound::TooBig);
        }
        let outcome = lock(&self.translator).client(text.as_str());
        if send_all(&self.sink, outcome.replies).await.is_err() {
            return Received::Gone;
        }
        self.queued
            .extend(outcome.to_session.into_iter().map(inbound));
        Received::Message(self.queued.pop_front().unwrap_or(Inbound::Handled))
    }
}

struct OpenAiOutput<K> {
    sink: SharedSink<K>,
    translator: Arc<Mutex<Translator>>,
    closed: bool,
}

impl<K> Outgoing for OpenAiOutput<K>
where
    K: Sink<Message, Error = axum::Error> + Send + Unpin,
{
    async fn send_event(&mut self, event: &ServerEvent, _: String) -> Result<(), Disconnected> {
        let events = lock(&self.translator).server(event);
        send_all(&self.sink, events).await
    }

    async fn send_audio(&mut self, samples: Vec<i16>) -> Result<(), Disconnected> {
        let event = lock(&self.translator).audio(&samples);
        send_all(&self.sink, event.into_iter().collect()).await
    }

    async fn keepalive(&mut self) -> Result<(), Disconnected> {
        self.sink
            .lock()
            .await
            .send(Message::Ping(Default::default()))
            .await
            .map_err(|_| Disconnected)
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let mut sink = self.sink.lock().await;
        self.closed = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await
            .is_ok();
        let _ = sink.close().await;
    }
}
