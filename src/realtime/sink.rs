//! The transcript sink: session starts, turns and ends written to the database in order
//! by one task per node, off every actor's mailbox. A write that fails is retried a few
//! times with backoff, so a brief database outage loses nothing. Once a session's end is
//! written, a conversation that is a lead is emailed to the dealership.

use std::time::Duration;

use adam_actors::ports::{BoxFuture, ResponseStatus, SessionRecord, TranscriptSink, TurnRecord};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::db::{Db, new_id, sessions};
use crate::email::Mailer;

enum Write {
    Started(SessionRecord, i64),
    Turn(TurnRecord, i64),
    Ended(String, String, i64),
    /// Answered once every earlier write is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Writes transcripts to the database.
#[derive(Debug)]
pub struct DbSink {
    tx: mpsc::UnboundedSender<Write>,
    clock: Clock,
}

const ATTEMPTS: u32 = 6;

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
                    interrupted: t.status == ResponseStatus::Cancelled,
                    citations: serde_json::to_string(&t.citations).unwrap_or_else(|_| "[]".into()),
                    latency_ms: t.latency_ms.map(|v| v.round() as i64),
                    started_at: *at,
                    status: status.into(),
                    metrics: serde_json::to_string(&t.metrics).unwrap_or_else(|_| "{}".into()),
                },
            )
            .await
        }
        Write::Ended(id, reason, at) => sessions::end(db, id, *at, reason).await,
        Write::Flush(_) => Ok(()),
    }
}

impl DbSink {
    /// Starts the writer task; leads go out through `mailer`.
    pub fn start(db: Db, clock: Clock, mailer: Mailer) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
        tokio::spawn(async move {
            while let Some(write) = rx.recv().await {
                if let Write::Flush(done) = write {
                    let _ = done.send(());
                    continue;
                }
                let mut delay = Duration::from_millis(100);
                for attempt in 1..=ATTEMPTS {
                    match apply(&db, &write).await {
                        Ok(()) => {
                            if let Write::Ended(id, _, _) = &write {
                                let (db, mailer, id) = (db.clone(), mailer.clone(), id.clone());
                                tokio::spawn(async move {
                                    super::leads::follow_up(&db, &mailer, &id).await;
                                });
                            }
                            break;
                        }
                        Err(e) if attempt == ATTEMPTS => {
                            tracing::error!(error = %e, "transcript write failed for good");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "transcript write failed; retrying");
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                        }
                    }
                }
            }
        });
        Self { tx, clock }
    }

    /// Waits until every write queued so far reached the database (shutdown).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Write::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    fn push(&self, write: Write) -> Result<(), String> {
        self.tx
            .send(write)
            .map_err(|_| "transcript writer stopped".to_owned())
    }
}

impl TranscriptSink for DbSink {
    fn session_started(&self, record: SessionRecord) -> BoxFuture<'_, Result<(), String>> {
        let result = self.push(Write::Started(record, self.clock.now()));
        Box::pin(async move { result })
    }

    fn turn_finished(&self, record: TurnRecord) -> BoxFuture<'_, Result<(), String>> {
        let result = self.push(Write::Turn(record, self.clock.now()));
        Box::pin(async move { result })
    }

    fn session_ended<'a>(
        &'a self,
        session_id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        let result = self.push(Write::Ended(
            session_id.to_owned(),
            reason.to_owned(),
            self.clock.now(),
        ));
        Box::pin(async move { result })
    }
}
