//! The middleware stack every response goes through: security headers (on every
//! status, 500 included), JSON error bodies, panic recovery, request ids and tracing,
//! CORS allowlist, metrics, per-IP and per-user rate limits (shared by every node when
//! they share Redis), and body limits.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::api::error::{ApiError, status_body};
use crate::api::extract::client_ip;
use crate::auth::principal::bearer;
use crate::auth::tokens::TokenUse;
use crate::cluster::rate::Verdict;
use crate::settings::HttpSettings;
use crate::state::AppState;

/// CSP for API responses: nothing may load, nothing may frame it.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Token buckets per client IP and per user, and per client network for setting a
/// password with an emailed link.
pub struct RateLimits {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    user: DefaultKeyedRateLimiter<String>,
    reset_confirm: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl RateLimits {
    /// Limiters with the configured quotas.
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            ip: RateLimiter::keyed(quota(settings.per_ip_per_minute, settings.per_ip_burst)),
            user: RateLimiter::keyed(quota(settings.per_user_per_minute, settings.per_user_burst)),
            reset_confirm: RateLimiter::keyed(quota(
                settings.password_reset_confirm_per_minute,
                settings.password_reset_confirm_burst,
            )),
        }
    }

    /// Takes one request from this node's `bucket`; the wait when refused.
    fn check(&self, bucket: &Bucket) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        let result = match bucket {
            Bucket::Ip(ip) => self.ip.check_key(ip),
            Bucket::User(sub) => self.user.check_key(sub),
            Bucket::ResetConfirm(net) => self.reset_confirm.check_key(net),
        };
        result.map_err(|not_until| not_until.wait_time_from(now))
    }

    /// Drops buckets that are full again, bounding memory (called periodically).
    pub fn sweep(&self) {
        self.ip.retain_recent();
        self.user.retain_recent();
        self.reset_confirm.retain_recent();
        self.ip.shrink_to_fit();
        self.user.shrink_to_fit();
        self.reset_confirm.shrink_to_fit();
    }
}

/// The bucket a request is counted against.
#[derive(Debug)]
enum Bucket {
    /// The client's address.
    Ip(IpAddr),
    /// The signed-in user (the token's `sub`).
    User(String),
    /// Password-reset confirmations from the client's network (see [`network`]).
    ResetConfirm(IpAddr),
}

impl Bucket {
    /// Its limit's name, in metrics and Redis keys.
    fn scope(&self) -> &'static str {
        match self {
            Bucket::Ip(_) => "ip",
            Bucket::User(_) => "user",
            Bucket::ResetConfirm(_) => "password_reset_confirm",
        }
    }

    fn key(&self) -> String {
        match self {
            Bucket::Ip(ip) | Bucket::ResetConfirm(ip) => ip.to_string(),
            Bucket::User(sub) => sub.clone(),
        }
    }
}

/// Takes one request from `bucket`: the deployment's shared bucket when nodes share
/// Redis, else (or while Redis fails) this node's own. The wait when refused.
async fn take(state: &AppState, bucket: &Bucket) -> Result<(), Duration> {
    let rl = &state.settings.rate_limit;
    let (per_minute, burst) = match bucket {
        Bucket::Ip(_) => (rl.per_ip_per_minute, rl.per_ip_burst),
        Bucket::User(_) => (rl.per_user_per_minute, rl.per_user_burst),
        Bucket::ResetConfirm(_) => (
            rl.password_reset_confirm_per_minute,
            rl.password_reset_confirm_burst,
        ),
    };
    match state
        .cluster
        .check_rate(bucket.scope(), &bucket.key(), per_minute, burst)
        .await
    {
        Ok(Some(Verdict::Allowed)) => Ok(()),
        Ok(Some(Verdict::Wait(wait))) => Err(wait),
        // No Redis, or Redis failed (logged and counted in `adam_redis_errors_total`).
        Ok(None) | Err(_) => state.rate_limits.check(bucket),
    }
}

fn too_many(state: &AppState, bucket: &Bucket, wait: Duration) -> Response {
    state
        .metrics
        .rate_limited
        .with_label_values(&[bucket.scope()])
        .inc();
    ApiError::TooManyRequests {
        retry_after: retry_after(wait),
    }
    .into_response()
}

/// The address a client is counted by: itself for IPv4 (also when a dual-stack socket
/// shows it IPv4-mapped), its /64 for IPv6 (one host usually holds a whole /64, so single
/// IPv6 addresses are free to rotate).
pub(crate) fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// Takes one password-reset confirmation from the client's network (shared by every node
/// when they share Redis): 429 with `Retry-After` when refused.
pub async fn limit_password_reset_confirm(state: &AppState, ip: IpAddr) -> Result<(), ApiError> {
    let bucket = Bucket::ResetConfirm(network(ip));
    take(state, &bucket).await.map_err(|wait| {
        state
            .metrics
            .rate_limited
            .with_label_values(&[bucket.scope()])
            .inc();
        ApiError::TooManyRequests {
            retry_after: retry_after(wait),
        }
    })
}

/// `Retry-After` seconds for a wait: rounded up, so a client never retries too early.
pub(crate) fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Refuses requests over the per-IP or per-user rate with 429 + `Retry-After`.
async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let ip = client_ip(&parts, state.settings.http.trust_forwarded_for);
    let by_ip = Bucket::Ip(ip);
    if let Err(wait) = take(&state, &by_ip).await {
        return too_many(&state, &by_ip, wait);
    }
    // A user's access token, or a dealership API key (counted like a user, by its hash:
    // no database lookup before the limit).
    let caller = bearer(&parts).and_then(|token| {
        if token.starts_with(crate::db::api_keys::KEY_PREFIX) {
            return Some(format!("api_key:{}", crate::db::api_keys::hash(token)));
        }
        state
            .tokens
            .verify(token, TokenUse::Access, state.clock.now())
            .ok()
            .map(|claims| claims.sub)
    });
    if let Some(caller) = caller {
        let by_user = Bucket::User(caller);
        if let Err(wait) = take(&state, &by_user).await {
            return too_many(&state, &by_user, wait);
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Counts requests and observes latency by matched route.
async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    state
        .metrics
        .http_requests
        .with_label_values(&[&method, &route, &status])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Gives every error response without a JSON body (405, 413 from the body limit,
/// panics turned into 500 …) the API's JSON error shape, keeping its headers.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    // A plain struct of strings: serialising it cannot fail, but say so if it ever does.
    let body = serde_json::to_vec(&status_body(status)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "error body not serialised");
        br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn cors(http: &HttpSettings) -> CorsLayer {
    let origins: Vec<HeaderValue> = http
        .cors_allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    // Starting a conversation (and sending its WebRTC offer) is also called by the
    // embeddable widget from dealership sites: those routes answer any origin, and the
    // handlers check the origin against the embed key's dealership, then the ticket.
    let allow = AllowOrigin::predicate(
        move |origin: &HeaderValue, parts: &axum::http::request::Parts| {
            let path = parts.uri.path();
            let starts_session = (path == "/v1/sessions"
                || (path.starts_with("/v1/sessions/") && path.ends_with("/webrtc")))
                && (parts.method == Method::POST
                    || (parts.method == Method::OPTIONS
                        && parts
                            .headers
                            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                            .is_some_and(|m| m == "POST")));
            origins.contains(origin) || starts_session
        },
    );
    CorsLayer::new()
        .allow_origin(allow)
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            REQUEST_ID,
            HeaderName::from_static("x-embed-key"),
        ])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Wraps the router in the full middleware stack.
pub fn apply(router: Router<AppState>, state: AppState) -> Router {
    let http = &state.settings.http;
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("microphone=(self), camera=(), geolocation=(), payment=()"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        // Pages set their own (still strict) policy; everything else gets the API one.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        ));
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("http", method = %request.method(), uri = %request.uri().path(), request_id = %request_id)
    });
    router
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        // The hard cap fits an upload (its own limit is checked while reading it); every
        // other body is held to `http.body_limit_bytes` by the extractors.
        .layer(RequestBodyLimitLayer::new(
            http.body_limit_bytes
                .max(state.settings.knowledge.max_upload_bytes + 64 * 1024),
        ))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(cors(http))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(json_errors))
        .layer(security_headers)
        .with_state(state)
}

/// Housekeeping until the app stops: keeps the limiter maps and the revoked access
/// tokens small every minute and deletes refresh tokens that expired over a day ago every
/// hour.
pub fn spawn_sweeper(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut minutes = 0u64;
        loop {
            tick.tick().await;
            state.rate_limits.sweep();
            state.quotas.sweep();
            state.revoked_tokens.prune();
            if minutes.is_multiple_of(60) {
                let cutoff = state.clock.now() - 24 * 3600;
                match crate::db::tokens::purge_expired(&state.db, cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired refresh tokens deleted"),
                    Err(e) => tracing::warn!(error = %e, "purging expired refresh tokens failed"),
                }
            }
            minutes += 1;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_and_ipv4_per_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(network(a), network(b));
        assert_eq!(network(a), "2001:db8:1:2::".parse::<IpAddr>().expect("ip"));
        assert_ne!(network(a), network(other));
        let v4: IpAddr = [10, 0, 0, 7].into();
        assert_eq!(network(v4), v4);
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().expect("ip");
        assert_eq!(network(mapped), "10.0.0.7".parse::<IpAddr>().expect("ip"));
    }
}

/// `[rate_limit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per minute per client IP.
    pub per_ip_per_minute: u32,
    /// Burst per client IP.
    pub per_ip_burst: u32,
    /// Sustained requests per minute per authenticated user.
    pub per_user_per_minute: u32,
    /// Burst per authenticated user.
    pub per_user_burst: u32,
    /// Sustained `POST /v1/auth/password-reset/confirm` per minute per client IP (IPv6 per
    /// /64), on top of the per-IP limit: the route needs no account and may hash a password.
    pub password_reset_confirm_per_minute: u32,
    /// Burst of `password_reset_confirm_per_minute`.
    pub password_reset_confirm_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 600,
            per_ip_burst: 120,
            per_user_per_minute: 300,
            per_user_burst: 60,
            password_reset_confirm_per_minute: 10,
            password_reset_confirm_burst: 10,
        }
    }
}

impl RateLimitSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, value) in [
            ("rate_limit.per_ip_per_minute", self.per_ip_per_minute),
            ("rate_limit.per_ip_burst", self.per_ip_burst),
            ("rate_limit.per_user_per_minute", self.per_user_per_minute),
            ("rate_limit.per_user_burst", self.per_user_burst),
            (
                "rate_limit.password_reset_confirm_per_minute",
                self.password_reset_confirm_per_minute,
            ),
            (
                "rate_limit.password_reset_confirm_burst",
                self.password_reset_confirm_burst,
            ),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        Ok(())
    }
}
