//! The bounded queue from a session to its transport, and its slow-client policy:
//! items that do not fit are dropped and counted; a client that stays behind for
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

impl Outbox {
    fn push(&self, item: Outbound, reason: &str) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.consecutive_drops.store(0, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics
                    .dropped_frames
                    .with_label_values(&[reason])
                    .inc();
                let drops = self.consecutive_drops.fetch_add(1, Ordering::Relaxed) + 1;
                if drops == self.lag_limit {
                    tracing::warn!(drops, "client too slow; closing");
                    self.close(1008, "client too slow");
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues an event; false when dropped.
    pub fn event(&self, event: ServerEvent) -> bool {
        self.push(Outbound::Event(event), "outbound_full")
    }

    /// Queues an audio frame; false when dropped.
    pub fn audio(&self, frame: Vec<i16>) -> bool {
        self.push(Outbound::Audio(frame), "outbound_full")
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
}
