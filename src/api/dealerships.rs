//! `/v1/dealerships`: tenants and their settings (persona, voice, avatar, allowed
//! origins) and public embed keys. super_admin manages all; a dealership_admin sees
//! and configures only their own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::clock::rfc3339;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::dealerships::{self, Dealership, DealershipPatch, NewDealership};
use crate::limits::DealershipLimits;
use crate::state::AppState;

const ADMINS: &[Role] = &[Role::SuperAdmin, Role::DealershipAdmin];

/// A dealership with its settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DealershipOut {
    /// Unique id of the dealership.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Origins allowed to embed the widget with the public key.
    pub allowed_origins: Vec<String>,
    /// Assistant persona / system prompt.
    pub persona: String,
    /// Text-to-speech voice.
    pub voice: String,
    /// Avatar settings.
    #[schema(value_type = Object)]
    pub avatar: serde_json::Value,
    /// Current public embed key.
    pub embed_key: Option<String>,
    /// Where conversation summaries and leads are emailed (null: not sent).
    pub lead_email: Option<String>,
    /// IANA time zone ("America/Chicago"): the dealership's "today" and "tomorrow".
    pub timezone: String,
    /// Usage-limit overrides of the node's `[limits]` (absent fields: the node's value).
    pub limits: DealershipLimits,
    /// Days finished transcripts are kept (null: the node's default; 0: forever).
    pub retention_days: Option<i64>,
    /// Recording notice shown to customers (null: the node's default).
    pub recording_notice: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl DealershipOut {
    fn new(d: Dealership, embed_key: Option<String>) -> Self {
        Self {
            allowed_origins: serde_json::from_str(&d.allowed_origins).unwrap_or_default(),
            avatar: serde_json::from_str(&d.avatar).unwrap_or_else(|_| serde_json::json!({})),
            id: d.id,
            name: d.name,
            persona: d.persona,
            voice: d.voice,
            lead_email: d.lead_email,
            timezone: d.timezone,
            limits: DealershipLimits::from_json(&d.limits),
            retention_days: d.retention_days,
            recording_notice: d.recording_notice,
            embed_key,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// New dealership.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDealership {
    /// Display name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Persona; a sensible default when absent.
    pub persona: Option<String>,
    /// Voice; `default` when absent.
    pub voice: Option<String>,
    /// Origins allowed to embed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Avatar settings object.
    #[schema(value_type = Option<Object>)]
    pub avatar: Option<serde_json::Value>,
    /// Address for conversation summaries and leads.
    #[schema(format = "email")]
    pub lead_email: Option<String>,
    /// IANA time zone; `UTC` when absent.
    pub timezone: Option<String>,
}

/// Changes to a dealership.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDealership {
    /// Name, when one was given.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Instructions that set the assistant's character and tone.
    pub persona: Option<String>,
    /// Voice the speech provider speaks with (its own voice name).
    pub voice: Option<String>,
    /// Origins allowed to embed.
    pub allowed_origins: Option<Vec<String>>,
    /// Avatar settings object.
    #[schema(value_type = Option<Object>)]
    pub avatar: Option<serde_json::Value>,
    /// Address for conversation summaries and leads; `null` stops them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = "email")]
    pub lead_email: Option<Option<String>>,
    /// IANA time zone ("America/Chicago").
    pub timezone: Option<String>,
    /// Usage-limit overrides, replacing the stored ones (super_admin only).
    pub limits: Option<DealershipLimits>,
    /// Days finished transcripts are kept (0: forever); `null` returns to the node's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub retention_days: Option<Option<i64>>,
    /// Recording notice (1–500 characters); `null` returns to the node's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub recording_notice: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, by default).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A freshly rotated key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmbedKeyOut {
    /// The new public embed key; the previous one stops working.
    pub embed_key: String,
}

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation("name", "must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

/// An IANA time zone name the bundled time zone database knows ("America/Chicago").
fn validate_timezone(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    match jiff::tz::TimeZone::get(name) {
        Ok(_) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(ApiError::validation(
            "timezone",
            "must be an IANA time zone name such as America/Chicago or Europe/Berlin",
        )),
    }
}

fn validate_persona(persona: &str) -> Result<(), ApiError> {
    if persona.chars().count() > 20_000 {
        return Err(ApiError::validation(
            "persona",
            "must be at most 20000 characters",
        ));
    }
    Ok(())
}

fn validate_voice(voice: &str) -> Result<(), ApiError> {
    let ok = !voice.is_empty()
        && voice.len() <= 100
        && voice
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "voice",
            "must be 1 to 100 of A-Z a-z 0-9 - _ + .",
        ))
    }
}

fn validate_origins(origins: &[String]) -> Result<String, ApiError> {
    if origins.len() > 50 {
        return Err(ApiError::validation(
            "allowed_origins",
            "at most 50 origins",
        ));
    }
    for origin in origins {
        let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
        let host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        if !scheme_ok || host.is_empty() || host.contains('/') || origin.len() > 255 {
            return Err(ApiError::validation(
                "allowed_origins",
                format!("`{origin}` is not an origin like https://www.example.com"),
            ));
        }
    }
    Ok(serde_json::to_string(origins).unwrap_or_else(|_| "[]".into()))
}

fn validate_lead_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
        return Err(ApiError::validation(
            "lead_email",
            "must be an email address",
        ));
    }
    Ok(email.to_owned())
}

fn validate_limits(limits: &DealershipLimits) -> Result<String, ApiError> {
    limits
        .check()
        .map_err(|(field, problem)| ApiError::validation(format!("limits.{field}"), problem))?;
    Ok(serde_json::to_string(limits).unwrap_or_else(|_| "{}".into()))
}

fn validate_retention(days: i64) -> Result<i64, ApiError> {
    if !(0..=36_500).contains(&days) {
        return Err(ApiError::validation(
            "retention_days",
            "must be between 0 (keep forever) and 36500",
        ));
    }
    Ok(days)
}

fn validate_notice(notice: &str) -> Result<String, ApiError> {
    let notice = notice.trim();
    if notice.is_empty() || notice.chars().count() > 500 {
        return Err(ApiError::validation(
            "recording_notice",
            "must be 1 to 500 characters",
        ));
    }
    Ok(notice.to_owned())
}

/// Avatar renderers a dealership may choose.
const AVATAR_PROVIDERS: [&str; 2] = ["builtin", "heygen"];

fn validate_avatar(avatar: &serde_json::Value) -> Result<String, ApiError> {
    if !avatar.is_object() {
        return Err(ApiError::validation("avatar", "must be a JSON object"));
    }
    let provider = match avatar.get("provider") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(p)) if AVATAR_PROVIDERS.contains(&p.as_str()) => {
            Some(p.as_str())
        }
        Some(_) => {
            return Err(ApiError::validation(
                "avatar.provider",
                "must be one of builtin, heygen",
            ));
        }
    };
    let avatar_id = avatar.get("avatar_id");
    let id_ok = |id: &str| !id.trim().is_empty() && id.len() <= 200;
    match avatar_id {
        None | Some(serde_json::Value::Null) if provider == Some("heygen") => {
            return Err(ApiError::validation(
                "avatar.avatar_id",
                "is required with provider heygen (the LiveAvatar avatar's id)",
            ));
        }
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(id)) if id_ok(id) => {}
        Some(_) => {
            return Err(ApiError::validation(
                "avatar.avatar_id",
                "must be a string of 1 to 200 characters",
            ));
        }
    }
    let text = avatar.to_string();
    if text.len() > 16_384 {
        return Err(ApiError::validation("avatar", "must be at most 16 KiB"));
    }
    Ok(text)
}

/// Dealerships visible to the caller.
#[utoipa::path(get, path = "/v1/dealerships", tag = "dealerships", security(("bearer" = [])),
    responses((status = 200, body = [DealershipOut]), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<DealershipOut>>, ApiError> {
    principal.require(ADMINS)?;
    let tenant = principal.tenant();
    let mut out = Vec::new();
    for d in dealerships::list(&state.db, tenant).await? {
        let key = dealerships::active_embed_key(&state.db, tenant, &d.id).await?;
        out.push(DealershipOut::new(d, key));
    }
    Ok(Json(out))
}

/// Creates a dealership with a first embed key (super_admin).
#[utoipa::path(post, path = "/v1/dealerships", tag = "dealerships", security(("bearer" = [])),
    request_body = CreateDealership,
    responses((status = 201, body = DealershipOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateDealership>,
) -> Result<(StatusCode, Json<DealershipOut>), ApiError> {
    principal.require(&[Role::SuperAdmin])?;
    let name = validate_name(&req.name)?;
    let persona = req
        .persona
        .unwrap_or_else(|| dealerships::DEFAULT_PERSONA.into());
    validate_persona(&persona)?;
    let voice = req.voice.unwrap_or_else(|| "default".into());
    validate_voice(&voice)?;
    let allowed_origins = validate_origins(&req.allowed_origins)?;
    let avatar = validate_avatar(&req.avatar.unwrap_or_else(|| serde_json::json!({})))?;
    let lead_email = req
        .lead_email
        .as_deref()
        .map(validate_lead_email)
        .transpose()?;
    let timezone = req.timezone.as_deref().map(validate_timezone).transpose()?;
    let now = state.clock.now();
    let mut d = dealerships::insert(
        &state.db,
        NewDealership {
            name,
            allowed_origins,
            persona,
            voice,
            avatar,
            lead_email,
        },
        now,
    )
    .await?;
    if let Some(timezone) = timezone {
        let patch = DealershipPatch {
            timezone: Some(timezone),
            ..DealershipPatch::default()
        };
        d = dealerships::update(&state.db, principal.tenant(), &d.id, &patch, now)
            .await?
            .ok_or(ApiError::NotFound)?;
    }
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&d.id),
            actor_user_id: Some(&principal.user_id),
            action: "dealership.create",
            target_type: "dealership",
            target_id: &d.id,
            details: serde_json::json!({"name": d.name}),
        },
        now,
    )
    .await?;
    let key = dealerships::active_embed_key(&state.db, principal.tenant(), &d.id).await?;
    Ok((StatusCode::CREATED, Json(DealershipOut::new(d, key))))
}

/// One dealership with its settings.
#[utoipa::path(get, path = "/v1/dealerships/{id}", tag = "dealerships", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = DealershipOut), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DealershipOut>, ApiError> {
    principal.require(ADMINS)?;
    let tenant = principal.tenant();
    let d = dealerships::get(&state.db, tenant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = dealerships::active_embed_key(&state.db, tenant, &id).await?;
    Ok(Json(DealershipOut::new(d, key)))
}

/// Changes name or settings.
#[utoipa::path(patch, path = "/v1/dealerships/{id}", tag = "dealerships", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdateDealership,
    responses((status = 200, body = DealershipOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<UpdateDealership>,
) -> Result<Json<DealershipOut>, ApiError> {
    principal.require(ADMINS)?;
    let tenant = principal.tenant();
    let patch = DealershipPatch {
        name: req.name.as_deref().map(validate_name).transpose()?,
        persona: match req.persona {
            Some(p) => {
                validate_persona(&p)?;
                Some(p)
            }
            None => None,
        },
        voice: match req.voice {
            Some(v) => {
                validate_voice(&v)?;
                Some(v)
            }
            None => None,
        },
        allowed_origins: req
            .allowed_origins
            .as_deref()
            .map(validate_origins)
            .transpose()?,
        avatar: req.avatar.as_ref().map(validate_avatar).transpose()?,
        lead_email: match req.lead_email {
            Some(Some(email)) => Some(Some(validate_lead_email(&email)?)),
            Some(None) => Some(None),
            None => None,
        },
        timezone: req.timezone.as_deref().map(validate_timezone).transpose()?,
        limits: req.limits.as_ref().map(validate_limits).transpose()?,
        retention_days: req
            .retention_days
            .map(|d| d.map(validate_retention).transpose())
            .transpose()?,
        recording_notice: req
            .recording_notice
            .map(|n| n.as_deref().map(validate_notice).transpose())
            .transpose()?,
    };
    // A dealership may not raise its own limits.
    if patch.limits.is_some() {
        principal.require(&[Role::SuperAdmin])?;
    }
    let now = state.clock.now();
    let d = dealerships::update(&state.db, tenant, &id, &patch, now)
        .await?
        .ok_or(ApiError::NotFound)?;
    let changed: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("persona", patch.persona.is_some()),
        ("voice", patch.voice.is_some()),
        ("allowed_origins", patch.allowed_origins.is_some()),
        ("avatar", patch.avatar.is_some()),
        ("lead_email", patch.lead_email.is_some()),
        ("timezone", patch.timezone.is_some()),
        ("limits", patch.limits.is_some()),
        ("retention_days", patch.retention_days.is_some()),
        ("recording_notice", patch.recording_notice.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&d.id),
            actor_user_id: Some(&principal.user_id),
            action: "dealership.update",
            target_type: "dealership",
            target_id: &d.id,
            details: serde_json::json!({"changed": changed}),
        },
        now,
    )
    .await?;
    let key = dealerships::active_embed_key(&state.db, tenant, &id).await?;
    Ok(Json(DealershipOut::new(d, key)))
}

/// Deletes a dealership and everything it owns (super_admin).
#[utoipa::path(delete, path = "/v1/dealerships/{id}", tag = "dealerships", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(ADMINS)?;
    // A dealership_admin may see their own dealership but not delete it.
    let d = dealerships::get(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    principal.require(&[Role::SuperAdmin])?;
    if !dealerships::delete(&state.db, principal.tenant(), &id).await? {
        return Err(ApiError::NotFound);
    }
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: None,
            actor_user_id: Some(&principal.user_id),
            action: "dealership.delete",
            target_type: "dealership",
            target_id: &id,
            details: serde_json::json!({"name": d.name}),
        },
        state.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new public embed key; the old one stops working at once.
#[utoipa::path(post, path = "/v1/dealerships/{id}/embed-key", tag = "dealerships", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = EmbedKeyOut), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn rotate_embed_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<EmbedKeyOut>, ApiError> {
    principal.require(ADMINS)?;
    let now = state.clock.now();
    let key = dealerships::rotate_embed_key(&state.db, principal.tenant(), &id, now)
        .await?
        .ok_or(ApiError::NotFound)?;
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&id),
            actor_user_id: Some(&principal.user_id),
            action: "dealership.embed_key_rotate",
            target_type: "dealership",
            target_id: &id,
            details: serde_json::json!({}),
        },
        now,
    )
    .await?;
    Ok(Json(EmbedKeyOut { embed_key: key }))
}
