//! Operations endpoints: liveness, readiness, Prometheus metrics and the JSON 404.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::Json;
use crate::startup::AppState;

/// Strict policy for Adam's own pages: no inline script or style, nothing from elsewhere;
/// media and workers from this origin only. Connections may go anywhere over `ws:`, `wss:`
/// and `https:`: a HeyGen video avatar's LiveKit server is only known at run time
/// (`avatar.stream`), and `livekit-client` calls it over HTTPS too (region settings of LiveKit
/// Cloud, and `/rtc/validate` to explain a refused join).
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; connect-src 'self' ws: wss: https:; media-src 'self' blob:; worker-src 'self' blob:; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// `sqlite` or `postgres` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        database: None,
    })
}

/// The process can serve: its database answers and transcript writes are not failing.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        let body = Health {
            status: "draining",
            database: Some(state.db.kind()),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    // A write lock held elsewhere (SQLite) can leave reads working while nothing can be
    // saved: the transcript writer's failures count too.
    let ok = !state.realtime.transcripts_failing()
        && tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping())
            .await
            .unwrap_or(false);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if ok { "ok" } else { "unavailable" },
        database: Some(state.db.kind()),
    };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// JSON 404 for every unknown path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
