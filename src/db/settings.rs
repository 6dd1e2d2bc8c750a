//! `[database]`: which database, and the pool.

use serde::{Deserialize, Serialize};

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// SQLite only: how long a statement waits for another writer's lock before failing
    /// with "database is locked", ms.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/adam.db".into(),
            max_connections: 8,
            busy_timeout_ms: 10_000,
        }
    }
}

impl DatabaseSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let url = &self.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err((
                "database.url",
                format!("`{url}` must start with sqlite:, postgres:// or postgresql://"),
            ));
        }
        if self.max_connections == 0 {
            return Err(("database.max_connections", "must be at least 1".into()));
        }
        Ok(())
    }

    /// True when the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }
}
