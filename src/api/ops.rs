//! Operations endpoints: liveness, readiness, Prometheus metrics and the JSON 404.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::state::AppState;

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

/// Prometheus text exposition. Served here only while `metrics.listen` is unset (else 404:
/// it is on the metrics listener); with `ADAM__METRICS__TOKEN` set it needs that bearer token.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain"),
              (status = 401, description = "`ADAM__METRICS__TOKEN` is set and the request lacks it", body = ErrorBody),
              (status = 404, description = "served on the metrics listener (`metrics.listen`) instead", body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.settings.metrics.listen.is_some() {
        return ApiError::NotFound.into_response();
    }
    metrics_only(State(state), headers).await
}

/// `GET /metrics` on the metrics listener.
pub async fn metrics_only(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.settings.metrics.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if !given.is_some_and(|given| same_secret(given, expected.expose_secret())) {
            return ApiError::Unauthorized.into_response();
        }
    }
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The metrics listener's routes: `GET /metrics` and a JSON 404 for anything else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_only))
        .fallback(not_found)
        .with_state(state)
}

/// JSON 404 for every unknown path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
