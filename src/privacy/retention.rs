//! Transcript retention: a background task deletes, per dealership, the conversations that
//! ended more than its retention (`retention_days`, else `[privacy].retention_days`; 0:
//! forever) ago, with their turns and lead emails. Live conversations are never deleted;
//! one that never ended and that no node holds (its node stopped without ending it) counts
//! as finished from its start.
//!
//! Every node runs it; passes running at once on several nodes are safe (see
//! [`crate::db::privacy`]), and each deletion is counted once.

use std::time::Duration;

use anyhow::Context;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

use crate::db::privacy::{self, Deleted};
use crate::db::{Tenant, dealerships};
use crate::state::AppState;

/// Rows deleted per statement: keeps each write short (SQLite has one writer).
const BATCH: i64 = 500;
/// The first pass runs this long after start (or after one interval, if shorter), out of
/// the way of startup.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(30);
const DAY_SECS: i64 = 86_400;

/// The retention task's series.
#[derive(Clone, Debug)]
pub struct Retention {
    deleted: IntCounterVec,
    last_pass: IntGauge,
}

/// A running retention task; stops when dropped or stopped.
#[derive(Debug)]
pub struct RetentionTask(tokio::task::JoinHandle<()>);

impl RetentionTask {
    /// Stops the task (a pass in progress stops between two statements).
    pub fn stop(self) {
        self.0.abort();
    }
}

impl Retention {
    /// Registers `retention_deleted_total{kind}` and `retention_last_pass_timestamp_seconds`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let deleted = IntCounterVec::new(
            Opts::new(
                "retention_deleted_total",
                "Rows deleted because their dealership's transcript retention passed",
            ),
            &["kind"],
        )?;
        for kind in ["sessions", "turns"] {
            deleted.with_label_values(&[kind]);
        }
        let last_pass = IntGauge::new(
            "retention_last_pass_timestamp_seconds",
            "When this node last finished a retention pass (unix seconds)",
        )?;
        registry.register(Box::new(deleted.clone()))?;
        registry.register(Box::new(last_pass.clone()))?;
        Ok(Self { deleted, last_pass })
    }

    /// Runs a pass shortly after start, then one every `privacy.retention_interval_secs`.
    pub fn start(self, state: AppState) -> RetentionTask {
        let interval = Duration::from_secs(state.settings.privacy.retention_interval_secs);
        RetentionTask(tokio::spawn(async move {
            tokio::time::sleep(interval.min(FIRST_PASS_AFTER)).await;
            loop {
                if let Err(e) = self.run_once(&state).await {
                    tracing::error!(error = %format!("{e:#}"), "retention pass failed; retrying at the next one");
                }
                tokio::time::sleep(interval).await;
            }
        }))
    }

    /// One pass over every dealership; returns what it deleted.
    pub async fn run_once(&self, state: &AppState) -> anyhow::Result<Deleted> {
        let now = state.clock.now();
        let mut total = Deleted::default();
        let all = dealerships::list(&state.db, Tenant::All)
            .await
            .context("listing dealerships")?;
        for dealership in all {
            let days = state.settings.privacy.retention_days(&dealership);
            if days <= 0 {
                continue;
            }
            let cutoff = now - days * DAY_SECS;
            let deleted = self
                .purge(state, &dealership.id, cutoff)
                .await
                .with_context(|| format!("deleting expired transcripts of {}", dealership.id))?;
            if deleted.sessions > 0 || deleted.turns > 0 {
                tracing::info!(
                    dealership_id = %dealership.id,
                    retention_days = days,
                    sessions = deleted.sessions,
                    turns = deleted.turns,
                    "retention: deleted conversations past their retention"
                );
            }
            total += deleted;
        }
        self.last_pass.set(now);
        Ok(total)
    }

    async fn purge(
        &self,
        state: &AppState,
        dealership_id: &str,
        cutoff: i64,
    ) -> anyhow::Result<Deleted> {
        let mut total = Deleted::default();
        loop {
            let deleted =
                privacy::delete_ended_before(&state.db, dealership_id, cutoff, BATCH).await?;
            self.count(deleted);
            total += deleted;
            if deleted == Deleted::default() {
                break;
            }
        }
        total += self.purge_abandoned(state, dealership_id, cutoff).await?;
        Ok(total)
    }

    /// Sessions that never ended, started before the cutoff and that no node holds.
    async fn purge_abandoned(
        &self,
        state: &AppState,
        dealership_id: &str,
        cutoff: i64,
    ) -> anyhow::Result<Deleted> {
        let mut total = Deleted::default();
        let mut after = String::new();
        loop {
            let page =
                privacy::unended_before(&state.db, dealership_id, cutoff, &after, BATCH).await?;
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = last.clone();
            let owners = match state.cluster.owners(&state.realtime.registry, &page).await {
                Ok(owners) => owners,
                // Without the directory a live session cannot be told from an abandoned one.
                Err(e) => {
                    tracing::warn!(error = %e, "retention: unended sessions kept until the session directory answers");
                    return Ok(total);
                }
            };
            for (id, owner) in page.iter().zip(owners) {
                if owner.is_none() {
                    let deleted =
                        privacy::delete_session(&state.db, Tenant::Only(dealership_id), id).await?;
                    self.count(deleted);
                    total += deleted;
                }
            }
        }
    }

    fn count(&self, deleted: Deleted) {
        self.deleted
            .with_label_values(&["sessions"])
            .inc_by(deleted.sessions);
        self.deleted
            .with_label_values(&["turns"])
            .inc_by(deleted.turns);
    }
}
