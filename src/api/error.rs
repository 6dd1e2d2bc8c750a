//! The API's one error type and its mapping to HTTP: `{"error":{"code","message"}}`.
//! Internal details are logged once and never sent to the client.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every way an API call can fail; each variant documents its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (e.g. broken JSON).
    #[error("{0}")]
    BadRequest(String),
    /// 400: a one-time link's token is unknown (`token_invalid`), used (`token_used`)
    /// or expired (`token_expired`).
    #[error("{}", .0.message())]
    Link(crate::email::account::LinkProblem),
    /// 401: missing, invalid or expired credentials.
    #[error("authentication required")]
    Unauthorized,
    /// 401 on login: unknown user and wrong password answer identically.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// 403: authenticated but the role does not allow it.
    #[error("not allowed")]
    Forbidden,
    /// 403 with its own code and a message saying what to do instead.
    #[error("{message}")]
    Denied {
        /// Stable code, e.g. `peer_admin_password`.
        code: &'static str,
        /// Message for people.
        message: &'static str,
    },
    /// 404: no such resource in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// 409: conflicts with stored state (e.g. duplicate email).
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: a field failed validation.
    #[error("{field}: {message}")]
    Validation {
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// 429: throttled; retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 429: the dealership holds as many live sessions as its limit allows.
    #[error(
        "this dealership already has {limit} live conversations of this kind; try again when one ends"
    )]
    QuotaExceeded {
        /// The dealership's limit.
        limit: u32,
    },
    /// 429: the dealership reached a monthly usage cap.
    #[error("this dealership has reached its usage limit for the month")]
    UsageCapReached,
    /// 503: a dependency (the database) is unavailable.
    #[error("service unavailable")]
    Unavailable,
    /// 503: this node runs its maximum number of live sessions.
    #[error("server busy: try again shortly")]
    Busy,
    /// 503: this node is shutting down.
    #[error("server is shutting down")]
    Draining,
    /// 504: the node holding a live session did not answer a request about it.
    #[error("the node holding this session ({0}) did not answer; try again shortly")]
    NodeUnreachable(String),
    /// 500: anything unexpected; logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Error body: `{"error": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Machine-readable code, human message, and the field for validation errors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `validation_failed`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Field at fault (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// A 422 naming the field.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Link(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Denied { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. }
            | ApiError::QuotaExceeded { .. }
            | ApiError::UsageCapReached => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::Busy | ApiError::Draining => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::NodeUnreachable(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Link(problem) => problem.code(),
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden => "forbidden",
            ApiError::Denied { code, .. } => code,
            ApiError::NotFound => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::UsageCapReached => "usage_cap_reached",
            ApiError::Unavailable => "unavailable",
            ApiError::Busy => "busy",
            ApiError::Draining => "draining",
            ApiError::NodeUnreachable(_) => "node_unreachable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The JSON error body for a bare status (404 fallback, 405, …).
pub fn status_body(status: StatusCode) -> ErrorBody {
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    ErrorBody {
        error: ErrorDetail {
            code: code.into(),
            message,
            field: None,
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let field = match &self {
            ApiError::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let message = match &self {
            ApiError::Validation { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().into(),
                message,
                field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            ApiError::TooManyRequests { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            }
            // A slot frees when a conversation ends: worth retrying within a minute.
            ApiError::QuotaExceeded { .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(30));
            }
            ApiError::Unauthorized | ApiError::InvalidCredentials => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolClosed => {
                tracing::error!(error = %err, "database unavailable");
                ApiError::Unavailable
            }
            e if crate::db::is_unavailable(&e) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            other => ApiError::Internal(anyhow::Error::new(other).context("database query")),
        }
    }
}

impl From<crate::email::EmailError> for ApiError {
    fn from(err: crate::email::EmailError) -> Self {
        match err {
            crate::email::EmailError::Database(e) => e.into(),
            crate::email::EmailError::NotFound => ApiError::NotFound,
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                // serde says e.g. "missing field `email`" or "email: invalid type …".
                let text = e.body_text();
                let detail = text
                    .split_once(": ")
                    .map(|(_, rest)| rest.to_owned())
                    .unwrap_or(text);
                let field = detail
                    .split('`')
                    .nth(1)
                    .filter(|_| detail.contains("field"))
                    .map(str::to_owned)
                    .or_else(|| detail.split_once(": ").map(|(path, _)| path.to_owned()))
                    .unwrap_or_else(|| "body".into());
                ApiError::validation(field, detail)
            }
            JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest("malformed JSON body".into()),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected `Content-Type: application/json`".into())
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}
