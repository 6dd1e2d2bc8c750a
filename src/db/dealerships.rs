//! Dealerships (tenants), their settings and public embed keys.

use rand::Rng;
use rand::distr::Alphanumeric;

use super::{Db, Tenant, new_id, on_pool};

/// A dealership row. JSON columns are kept as text here and parsed by the API layer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Dealership {
    /// Unique id of the dealership.
    pub id: String,
    /// Display name.
    pub name: String,
    /// JSON array of origins allowed to embed the widget.
    pub allowed_origins: String,
    /// Assistant persona / system prompt.
    pub persona: String,
    /// Voice name for text-to-speech.
    pub voice: String,
    /// JSON object of avatar settings.
    pub avatar: String,
    /// Where conversation summaries and leads are emailed (none: not sent).
    pub lead_email: Option<String>,
    /// IANA time zone ("America/Chicago"): the dealership's "today".
    pub timezone: String,
    /// JSON object of usage-limit overrides (see [`crate::limits::DealershipLimits`]).
    pub limits: String,
    /// Days transcripts are kept (`None`: the node's default; 0: forever).
    pub retention_days: Option<i64>,
    /// The recording notice shown to customers (`None`: the node's default).
    pub recording_notice: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Fields of a new dealership.
#[derive(Debug, Clone)]
pub struct NewDealership {
    /// Display name.
    pub name: String,
    /// JSON array text.
    pub allowed_origins: String,
    /// Instructions that set the assistant's character and tone.
    pub persona: String,
    /// Voice the speech provider speaks with (its own voice name).
    pub voice: String,
    /// JSON object text.
    pub avatar: String,
    /// Lead address.
    pub lead_email: Option<String>,
}

/// Fields to change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct DealershipPatch {
    /// New name.
    pub name: Option<String>,
    /// New JSON array text.
    pub allowed_origins: Option<String>,
    /// New persona.
    pub persona: Option<String>,
    /// New voice.
    pub voice: Option<String>,
    /// New JSON object text.
    pub avatar: Option<String>,
    /// `Some(None)` clears the lead address, `Some(Some(a))` sets it.
    pub lead_email: Option<Option<String>>,
    /// New IANA time zone.
    pub timezone: Option<String>,
    /// New JSON object of limit overrides.
    pub limits: Option<String>,
    /// `Some(None)` returns to the node's default retention.
    pub retention_days: Option<Option<i64>>,
    /// `Some(None)` returns to the node's default notice.
    pub recording_notice: Option<Option<String>>,
}

/// The default persona of a new dealership.
pub const DEFAULT_PERSONA: &str = "You are the friendly voice assistant of this car dealership. \
Answer briefly and only from the dealership's documents; if they do not say, say that you do not \
have that information.";

/// A new public embed key: 32 random alphanumerics behind a recognisable prefix.
pub fn generate_embed_key() -> String {
    let body: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("pk_{body}")
}

/// Creates a dealership and its first embed key.
pub async fn insert(db: &Db, new: NewDealership, now: i64) -> Result<Dealership, sqlx::Error> {
    let id = new_id();
    let key = generate_embed_key();
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO dealerships (id, name, allowed_origins, persona, voice, avatar, lead_email, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(&new.allowed_origins)
        .bind(&new.persona)
        .bind(&new.voice)
        .bind(&new.avatar)
        .bind(new.lead_email.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO embed_keys (id, dealership_id, key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new_id())
        .bind(&id)
        .bind(&key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(Dealership {
        id,
        name: new.name,
        allowed_origins: new.allowed_origins,
        persona: new.persona,
        voice: new.voice,
        avatar: new.avatar,
        lead_email: new.lead_email,
        timezone: "UTC".into(),
        limits: "{}".into(),
        retention_days: None,
        recording_notice: None,
        created_at: now,
        updated_at: now,
    })
}

/// One dealership, if the tenant may see it.
pub async fn get(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<Option<Dealership>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Dealership>(
            "SELECT id, name, allowed_origins, persona, voice, avatar, lead_email, timezone, limits, retention_days, \
             recording_notice, created_at, updated_at \
             FROM dealerships WHERE id = $1 AND ($2 IS NULL OR id = $2)",
        )
        .bind(id)
        .bind(tenant.filter())
        .fetch_optional(pool)
        .await
    })
}

/// Dealership by exact name (CLI convenience; names are not unique, first match wins).
pub async fn find_by_name(db: &Db, name: &str) -> Result<Option<Dealership>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Dealership>(
            "SELECT id, name, allowed_origins, persona, voice, avatar, lead_email, timezone, limits, retention_days, \
             recording_notice, created_at, updated_at \
             FROM dealerships WHERE name = $1 ORDER BY created_at LIMIT 1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await
    })
}

/// Every dealership the tenant may see, oldest first.
pub async fn list(db: &Db, tenant: Tenant<'_>) -> Result<Vec<Dealership>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Dealership>(
            "SELECT id, name, allowed_origins, persona, voice, avatar, lead_email, timezone, limits, retention_days, \
             recording_notice, created_at, updated_at \
             FROM dealerships WHERE ($1 IS NULL OR id = $1) ORDER BY created_at, id",
        )
        .bind(tenant.filter())
        .fetch_all(pool)
        .await
    })
}

/// Applies a patch; `None` when the tenant may not see the dealership.
pub async fn update(
    db: &Db,
    tenant: Tenant<'_>,
    id: &str,
    patch: &DealershipPatch,
    now: i64,
) -> Result<Option<Dealership>, sqlx::Error> {
    let changed = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE dealerships SET name = COALESCE($1, name), allowed_origins = COALESCE($2, allowed_origins), \
             persona = COALESCE($3, persona), voice = COALESCE($4, voice), avatar = COALESCE($5, avatar), \
             updated_at = $6, lead_email = CASE WHEN $9 THEN $10 ELSE lead_email END, \
             timezone = COALESCE($11, timezone), limits = COALESCE($12, limits), \
             retention_days = CASE WHEN $13 THEN $14 ELSE retention_days END, \
             recording_notice = CASE WHEN $15 THEN $16 ELSE recording_notice END \
             WHERE id = $7 AND ($8 IS NULL OR id = $8)",
        )
        .bind(patch.name.as_deref())
        .bind(patch.allowed_origins.as_deref())
        .bind(patch.persona.as_deref())
        .bind(patch.voice.as_deref())
        .bind(patch.avatar.as_deref())
        .bind(now)
        .bind(id)
        .bind(tenant.filter())
        .bind(patch.lead_email.is_some())
        .bind(patch.lead_email.clone().flatten())
        .bind(patch.timezone.as_deref())
        .bind(patch.limits.as_deref())
        .bind(patch.retention_days.is_some())
        .bind(patch.retention_days.flatten())
        .bind(patch.recording_notice.is_some())
        .bind(patch.recording_notice.clone().flatten())
        .execute(pool)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Ok(None);
    }
    get(db, tenant, id).await
}

/// Deletes a dealership and, by cascade, everything it owns.
pub async fn delete(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query("DELETE FROM dealerships WHERE id = $1 AND ($2 IS NULL OR id = $2)")
            .bind(id)
            .bind(tenant.filter())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n > 0)
}

/// Number of dealerships (first-run detection).
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM dealerships")
            .fetch_one(pool)
            .await
    })
}

/// The dealership's current public embed key.
pub async fn active_embed_key(
    db: &Db,
    tenant: Tenant<'_>,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT key FROM embed_keys WHERE dealership_id = $1 AND ($2 IS NULL OR dealership_id = $2) \
             AND revoked_at IS NULL ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(id)
        .bind(tenant.filter())
        .fetch_optional(pool)
        .await
    })
}

/// The dealership owning an active embed key (anonymous visitors' entry point).
pub async fn by_embed_key(db: &Db, key: &str) -> Result<Option<Dealership>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Dealership>(
            "SELECT d.id, d.name, d.allowed_origins, d.persona, d.voice, d.avatar, d.lead_email, d.timezone, d.limits, \
             d.retention_days, d.recording_notice, d.created_at, \
             d.updated_at \
             FROM dealerships d JOIN embed_keys k ON k.dealership_id = d.id \
             WHERE k.key = $1 AND k.revoked_at IS NULL",
        )
        .bind(key)
        .fetch_optional(pool)
        .await
    })
}

/// Revokes the current keys and issues a new one; `None` when the tenant may not see it.
pub async fn rotate_embed_key(
    db: &Db,
    tenant: Tenant<'_>,
    id: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    if get(db, tenant, id).await?.is_none() {
        return Ok(None);
    }
    let key = generate_embed_key();
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE embed_keys SET revoked_at = $1 WHERE dealership_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO embed_keys (id, dealership_id, key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new_id())
        .bind(id)
        .bind(&key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(Some(key))
}
