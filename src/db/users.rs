//! Users: credentials, role and dealership.

use super::{Db, Tenant, new_id, on_pool};

/// A user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// Unique id of the user.
    pub id: String,
    /// Lower-cased email, unique.
    pub email: String,
    /// bcrypt hash.
    pub password_hash: String,
    /// `super_admin`, `dealership_admin` or `user`.
    pub role: String,
    /// `None` only for super_admin.
    pub dealership_id: Option<String>,
    /// Name shown in the admin pages.
    pub display_name: String,
    /// A disabled user cannot log in or use tokens.
    pub disabled: bool,
    /// Unix seconds; access tokens issued before it are refused.
    pub password_changed_at: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Fields of a new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Lower-cased email.
    pub email: String,
    /// bcrypt hash.
    pub password_hash: String,
    /// Role name.
    pub role: String,
    /// Dealership (none for super_admin).
    pub dealership_id: Option<String>,
    /// Display name.
    pub display_name: String,
}

/// Fields to change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New display name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<String>,
    /// Enable or disable.
    pub disabled: Option<bool>,
    /// New bcrypt hash (also moves `password_changed_at`).
    pub password_hash: Option<String>,
}

/// `SELECT <all user columns> FROM users <rest>` as a static string.
macro_rules! select_users {
    ($rest:literal) => {
        concat!(
            "SELECT id, email, password_hash, role, dealership_id, display_name, disabled, ",
            "password_changed_at, created_at, updated_at FROM users ",
            $rest
        )
    };
}

/// Inserts a user; a duplicate email is a unique violation (see [`super::is_unique_violation`]).
pub async fn insert(db: &Db, new: NewUser, now: i64) -> Result<User, sqlx::Error> {
    let id = new_id();
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, dealership_id, display_name, disabled, \
             password_changed_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $7, $7)",
        )
        .bind(&id)
        .bind(&new.email)
        .bind(&new.password_hash)
        .bind(&new.role)
        .bind(new.dealership_id.as_deref())
        .bind(&new.display_name)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(User {
        id,
        email: new.email,
        password_hash: new.password_hash,
        role: new.role,
        dealership_id: new.dealership_id,
        display_name: new.display_name,
        disabled: false,
        password_changed_at: now,
        created_at: now,
        updated_at: now,
    })
}

/// One user, if the tenant may see them.
pub async fn get(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = select_users!("WHERE id = $1 AND ($2 IS NULL OR dealership_id = $2)");
    on_pool!(db, |pool| {
        sqlx::query_as::<_, User>(sql)
            .bind(id)
            .bind(tenant.filter())
            .fetch_optional(pool)
            .await
    })
}

/// The user with this email, whatever their dealership (login).
pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = select_users!("WHERE email = $1");
    on_pool!(db, |pool| {
        sqlx::query_as::<_, User>(sql)
            .bind(email)
            .fetch_optional(pool)
            .await
    })
}

/// Users the tenant may see, oldest first.
pub async fn list(db: &Db, tenant: Tenant<'_>) -> Result<Vec<User>, sqlx::Error> {
    let sql = select_users!("WHERE ($1 IS NULL OR dealership_id = $1) ORDER BY created_at, id");
    on_pool!(db, |pool| {
        sqlx::query_as::<_, User>(sql)
            .bind(tenant.filter())
            .fetch_all(pool)
            .await
    })
}

/// Applies a patch; `None` when the tenant may not see the user.
pub async fn update(
    db: &Db,
    tenant: Tenant<'_>,
    id: &str,
    patch: &UserPatch,
    now: i64,
) -> Result<Option<User>, sqlx::Error> {
    let password_changed_at = patch.password_hash.as_ref().map(|_| now);
    let changed = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE users SET display_name = COALESCE($1, display_name), role = COALESCE($2, role), \
             disabled = COALESCE($3, disabled), password_hash = COALESCE($4, password_hash), \
             password_changed_at = COALESCE($5, password_changed_at), updated_at = $6 \
             WHERE id = $7 AND ($8 IS NULL OR dealership_id = $8)",
        )
        .bind(patch.display_name.as_deref())
        .bind(patch.role.as_deref())
        .bind(patch.disabled)
        .bind(patch.password_hash.as_deref())
        .bind(password_changed_at)
        .bind(now)
        .bind(id)
        .bind(tenant.filter())
        .execute(pool)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Ok(None);
    }
    get(db, tenant, id).await
}

/// Deletes a user; false when the tenant may not see them.
pub async fn delete(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query("DELETE FROM users WHERE id = $1 AND ($2 IS NULL OR dealership_id = $2)")
            .bind(id)
            .bind(tenant.filter())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n > 0)
}

/// Number of users (first-run detection).
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
            .fetch_one(pool)
            .await
    })
}
