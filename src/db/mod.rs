//! Database access: one [`Db`] handle over SQLite (embedded default) or PostgreSQL
//! (production, with pgvector), migrations for both, and the repositories.
//!
//! Every repository function that touches tenant data takes a [`Tenant`] argument, so a
//! query cannot forget which dealership it is allowed to see.

pub mod api_keys;
pub mod audit;
pub mod dealerships;
pub mod documents;
pub mod gaps;
pub mod outbox;
pub mod privacy;
pub mod sessions;
mod settings;
pub use settings::DatabaseSettings;
pub mod tokens;
pub mod usage;
pub mod user_tokens;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// A pool for whichever database the configuration selects.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite file.
    Sqlite(SqlitePool),
    /// PostgreSQL with the pgvector extension.
    Postgres(PgPool),
}

/// Runs the same statement on either pool. Queries use `$1` placeholders, which both
/// drivers accept, and column types both decode (TEXT, BIGINT, INTEGER, BOOLEAN).
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Which dealership's rows a query may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenant<'a> {
    /// Every dealership (super_admin, login, background jobs).
    All,
    /// Only this dealership's rows.
    Only(&'a str),
}

impl<'a> Tenant<'a> {
    /// The dealership id to filter on, or `None` for all.
    pub fn filter(self) -> Option<&'a str> {
        match self {
            Tenant::All => None,
            Tenant::Only(id) => Some(id),
        }
    }
}

impl Db {
    /// Connects (creating the SQLite file and its folder if needed).
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, sqlx::Error> {
        let url = settings.url.as_str();
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_millis(settings.busy_timeout_ms))
                .foreign_keys(true);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Applies pending migrations (`migrations/sqlite` or `migrations/postgres`).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        let probe = on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()));
        probe.is_ok()
    }

    /// `sqlite` or `postgres`, for logs and the readiness report.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Runs one fixed statement (maintenance and fault-injection tests).
    pub async fn execute_static(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        on_pool!(self, |pool| Ok(sqlx::query(sql)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Closes the pool, waiting for connections to return.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// True when the error says the database cannot be reached or written right now (a lost,
/// refused or broken connection, a server shutting down or starting up, a locked, full or
/// failing SQLite file), as opposed to a statement it refused: worth retrying later.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(e) => {
            let Some(code) = e.code() else {
                return false;
            };
            if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended result codes carry the primary code in their low byte:
                // BUSY 5, LOCKED 6, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
                code.parse::<i32>()
                    .is_ok_and(|c| [5, 6, 8, 10, 13, 14].contains(&(c & 0xff)))
            } else {
                // PostgreSQL: connection exception (08…), insufficient resources (53…),
                // admin or crash shutdown and "cannot connect now" (57P01–57P03).
                code.starts_with("08")
                    || code.starts_with("53")
                    || ["57P01", "57P02", "57P03"].contains(&code.as_ref())
            }
        }
        _ => false,
    }
}

/// True when the error is a UNIQUE constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// A fresh random id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh time-ordered id (sorts by creation).
pub fn new_ordered_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
