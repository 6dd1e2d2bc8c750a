//! The bounded queue from a session to its transport, and its slow-client policy:
//! items that do not fit are dropped and counted (audio first: the last slots are kept
//! for events); a client that stays behind for
//! `lag_limit` consecutive drops is closed (1008, "client too slow"). Close requests
//! travel on a separate watch channel so they are never stuck behind a full queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{mpsc, watch};

use crate::events::{Outbound, ServerEvent};
use crate::metrics::ActorMetrics;

/// Close code and reason.
pub type CloseFrame = (u16, String);

/// Sending side, shared by the session and its children.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    close: Arc<watch::Sender<Option<CloseFrame>>>,
    consecutive_drops: Arc<AtomicU32>,
    lag_limit: u32,
    metrics: ActorMetrics,
}

/// Receiving side, owned by the transport.
#[derive(Debug)]
pub struct OutboxReceiver {
    /// Events and audio, in order.
    pub items: mpsc::Receiver<Outbound>,
    /// Becomes `Some` when the session wants the connection closed.
    pub close: watch::Receiver<Option<CloseFrame>>,
}

/// A queue of `capacity` items; `lag_limit` consecutive drops close the client.
pub fn outbox(capacity: usize, lag_limit: u32, metrics: ActorMetrics) -> (Outbox, OutboxReceiver) {
    let (tx, items) = mpsc::channel(capacity.max(1));
    let (close_tx, close) = watch::channel(None);
    (
        Outbox {
            tx,
            close: Arc::new(close_tx),
            consecutive_drops: Arc::new(AtomicU32::new(0)),
            lag_limit,
            metrics,
        },
        OutboxReceiver { items, close },
    )
}

/// Slots kept free for events: audio is dropped first, so `cleared` and
/// `response.done` still reach a client that is falling behind.
const EVENT_RESERVE: usize = 16;

impl Outbox {
    fn dropped(&self) {
        self.metrics
            .dropped_frames
            .with_label_values(&["outbound_full"])
            .inc();
        let drops = self.consecutive_drops.fetch_add(1, Ordering::Relaxed) + 1;
        if drops == self.lag_limit {
            tracing::warn!(drops, "client too slow; closing");
            self.close(1008, "client too slow");
        }
    }

    fn push(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.consecutive_drops.store(0, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues an event; false when dropped.
    pub fn event(&self, event: ServerEvent) -> bool {
        self.push(Outbound::Event(event))
    }

    /// Queues an audio frame unless the queue is nearly full; false when dropped.
    pub fn audio(&self, frame: Vec<i16>) -> bool {
        if self.tx.capacity() <= EVENT_RESERVE.min(self.tx.max_capacity() / 2) {
            self.dropped();
            return false;
        }
        self.push(Outbound::Audio(frame))
    }

    /// Asks the transport to close with this code (first request wins).
    pub fn close(&self, code: u16, reason: &str) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some((code, reason.to_owned()));
                true
            } else {
                false
            }
        });
    }

    /// Resolves once a close was requested.
    pub async fn closed(&self) {
        let mut rx = self.close.subscribe();
        let _ = rx.wait_for(|v| v.is_some()).await;
    }

    /// True once a close was requested.
    pub fn is_closing(&self) -> bool {
        self.close.borrow().is_some()
    }

    /// The close requested, if any.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.close.borrow().clone()
    }
}

/// How long a transport keeps delivering what was queued before a close (the final
/// events) before it closes the connection.
pub const FINAL_EVENTS_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// What a transport does next.
#[derive(Debug)]
pub enum Delivery {
    /// Send this event or audio frame.
    Item(Outbound),
    /// Close the connection with this code and reason.
    Close(CloseFrame),
}

/// The session and its children are gone without asking to close: they crashed.
fn crashed() -> CloseFrame {
    (1011, "session ended".into())
}

impl OutboxReceiver {
    /// The next item in order, or the close once the session asked for one (items are
    /// delivered first). Cancel-safe, so it can sit in a `select!` beside other work.
    pub async fn next(&mut self) -> Delivery {
        loop {
            tokio::select! {
                biased;
                item = self.items.recv() => {
                    return match item {
                        Some(item) => Delivery::Item(item),
                        None => Delivery::Close(self.close.borrow().clone().unwrap_or_else(crashed)),
                    };
                }
                changed = self.close.changed() => {
                    if changed.is_err() {
                        return Delivery::Close(crashed());
                    }
                    if let Some(frame) = self.close.borrow().clone() {
                        return Delivery::Close(frame);
                    }
                }
            }
        }
    }

    /// After a close: the next item queued before it, until `deadline`.
    pub fn queued_before(&mut self, deadline: tokio::time::Instant) -> Option<Outbound> {
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        self.items.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn audio_is_dropped_before_events_and_a_lagging_client_is_closed() {
        let (outbox, mut rx) = outbox(32, 40, ActorMetrics::unregistered());
        let mut audio_sent = 0;
        for _ in 0..32 {
            if outbox.audio(vec![0; 480]) {
                audio_sent += 1;
            }
        }
        assert_eq!(audio_sent, 16, "half the queue stays free for events");
        for _ in 0..16 {
            assert!(outbox.event(ServerEvent::error("x", "y")));
        }
        assert!(!outbox.event(ServerEvent::error("x", "y")), "now full");
        assert!(!outbox.is_closing());
        for _ in 0..40 {
            outbox.audio(vec![0; 480]);
        }
        assert_eq!(
            *rx.close.borrow(),
            Some((1008, "client too slow".to_owned()))
        );
        assert!(matches!(rx.items.recv().await, Some(Outbound::Audio(_))));
    }
}
