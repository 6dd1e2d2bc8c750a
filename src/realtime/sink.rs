//! The transcript sink: session starts, turns and ends written to the database in order
//! by one task per node, off every actor's mailbox. While the database is unavailable
//! (unreachable, restarting, locked) a write is retried with capped backoff for as long
//! as it takes, and later writes queue behind it, so an outage loses nothing; a write the
//! database refuses is retried a few times, then given up and counted. Once a session's
//! end is written, a conversation that is a lead is emailed to the dealership.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adam_actors::ports::{
    BoxFuture, ResponseStatus, SessionRecord, TranscriptSink, TurnRecord, TurnUsage,
};
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::db::{Db, new_id, sessions};
use crate::email::Mailer;

enum Write {
    Started(SessionRecord, i64),
    Turn(Box<TurnRecord>, i64),
    Ended(String, String, i64, TurnUsage),
    /// Answered once every earlier write is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Writes transcripts to the database.
#[derive(Debug)]
pub struct DbSink {
    tx: mpsc::UnboundedSender<Write>,
    clock: Clock,
    pending: IntGauge,
    failing: Arc<AtomicBool>,
}

/// Attempts at a write the database refuses (not an outage) before it is given up.
const ATTEMPTS: u32 = 6;
/// Longest wait between two attempts while the database is unavailable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

async fn apply(db: &Db, write: &Write) -> Result<(), sqlx::Error> {
    match write {
        Write::Started(r, at) => {
            sessions::insert(
                db,
                &sessions::Session {
                    id: r.session_id.clone(),
                    dealership_id: r.tenant.clone(),
                    user_id: r.user_id.clone(),
                    transport: r.transport.clone(),
                    started_at: *at,
                    ended_at: None,
                    end_reason: None,
                },
            )
            .await
        }
        Write::Turn(t, at) => {
            let status = match t.status {
                ResponseStatus::Completed => "completed",
                ResponseStatus::Cancelled => "cancelled",
                ResponseStatus::Failed => "failed",
            };
            sessions::insert_turn(
                db,
                &sessions::Turn {
                    id: new_id(),
                    session_id: t.session_id.clone(),
                    seq: t.seq as i32,
                    user_text: t.user_text.clone(),
                    assistant_text: t.assistant_text.clone(),
                    unanswered: t.unanswered,
                    interrupted: t.status == ResponseStatus::Cancelled,
                    citations: serde_json::to_string(&t.citations).unwrap_or_else(|_| "[]".into()),
                    latency_ms: t.latency_ms.map(|v| v.round() as i64),
                    started_at: *at,
                    status: status.into(),
                    metrics: serde_json::to_string(&t.metrics).unwrap_or_else(|_| "{}".into()),
                    usage: serde_json::to_string(&t.usage).unwrap_or_else(|_| "{}".into()),
                },
            )
            .await
        }
        Write::Ended(id, reason, at, usage) => sessions::end(db, id, *at, reason, usage).await,
        Write::Flush(_) => Ok(()),
    }
}

impl DbSink {
    /// Starts the writer task; leads go out through `mailer`. Registers
    /// `transcript_writes_pending` and `transcript_writes_lost_total`.
    pub fn start(
        db: Db,
        clock: Clock,
        mailer: Mailer,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let pending = IntGauge::new(
            "transcript_writes_pending",
            "Transcript writes queued or being retried",
        )?;
        let lost = IntCounter::new(
            "transcript_writes_lost_total",
            "Transcript writes the database refused and that were given up",
        )?;
        registry.register(Box::new(pending.clone()))?;
        registry.register(Box::new(lost.clone()))?;
        let failing = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
        let writer = Writer {
            db,
            mailer,
            pending: pending.clone(),
            lost,
            failing: failing.clone(),
        };
        tokio::spawn(async move {
            while let Some(write) = rx.recv().await {
                writer.write(write).await;
            }
        });
        Ok(Self {
            tx,
            clock,
            pending,
            failing,
        })
    }

    /// True while writes fail because the database is unavailable (readiness is red).
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// Waits until every write queued so far reached the database (shutdown).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Write::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    fn push(&self, write: Write) -> Result<(), String> {
        self.pending.inc();
        self.tx.send(write).map_err(|_| {
            self.pending.dec();
            "transcript writer stopped".to_owned()
        })
    }
}

/// The writer task's side.
struct Writer {
    db: Db,
    mailer: Mailer,
    pending: IntGauge,
    lost: IntCounter,
    failing: Arc<AtomicBool>,
}

impl Writer {
    /// Applies one write, retrying until it lands, or until the database refused it
    /// `ATTEMPTS` times.
    async fn write(&self, write: Write) {
        if let Write::Flush(done) = write {
            let _ = done.send(());
            return;
        }
        let mut delay = Duration::from_millis(100);
        let mut refusals = 0;
        loop {
            match apply(&self.db, &write).await {
                Ok(()) => {
                    if self.failing.swap(false, Ordering::SeqCst) {
                        tracing::info!("database back: transcript writes resumed");
                    }
                    if let Write::Ended(id, ..) = &write {
                        let (db, mailer, id) = (self.db.clone(), self.mailer.clone(), id.clone());
                        tokio::spawn(async move {
                            crate::leads::follow_up(&db, &mailer, &id).await;
                        });
                    }
                    break;
                }
                Err(e) if crate::db::is_unavailable(&e) => {
                    if !self.failing.swap(true, Ordering::SeqCst) {
                        tracing::error!(error = %e, "database unavailable: transcript writes wait until it is back");
                    }
                }
                Err(e) => {
                    // The database answered: it is there, it refused this write.
                    self.failing.store(false, Ordering::SeqCst);
                    refusals += 1;
                    if refusals == ATTEMPTS {
                        tracing::error!(error = %e, "transcript write failed for good");
                        self.lost.inc();
                        break;
                    }
                    tracing::warn!(error = %e, attempt = refusals, "transcript write failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
        self.pending.dec();
    }
}

impl TranscriptSink for DbSink {
    fn session_started(&self, record: SessionRecord) -> BoxFuture<'_, Result<(), String>> {
        let result = self.push(Write::Started(record, self.clock.now()));
        Box::pin(async move { result })
    }

    fn turn_finished(&self, record: TurnRecord) -> BoxFuture<'_, Result<(), String>> {
        let result = self.push(Write::Turn(Box::new(record), self.clock.now()));
        Box::pin(async move { result })
    }

    fn session_ended<'a>(
        &'a self,
        session_id: &'a str,
        reason: &'a str,
        usage: TurnUsage,
    ) -> BoxFuture<'a, Result<(), String>> {
        let result = self.push(Write::Ended(
            session_id.to_owned(),
            reason.to_owned(),
            self.clock.now(),
            usage,
        ));
        Box::pin(async move { result })
    }
}
