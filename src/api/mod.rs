//! The HTTP surface: versioned JSON API under `/v1`, health, metrics, the OpenAPI
//! document and its docs page, and the browser client's files.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod caches;
pub mod dealerships;
pub mod docs;
pub mod documents;
pub mod error;
pub mod extract;
pub mod faults;
pub mod knowledge_gaps;
pub mod openai_realtime;
pub mod ops;
pub mod password_reset;
pub mod privacy;
pub mod realtime;
pub mod sessions;
pub mod usage;
pub mod users;
pub mod web;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Every route, without middleware (see [`crate::middleware::apply`]); the browser
/// client's files from `web_dir` answer the paths no route takes.
pub fn router(web_dir: &std::path::Path) -> Router<AppState> {
    let v1 = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/password-reset", post(password_reset::request))
        .route(
            "/auth/password-reset/confirm",
            post(password_reset::confirm),
        )
        .route("/me", get(auth::me).patch(auth::patch_me))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/users/{id}/invite", post(users::invite))
        .route("/users/{id}/password-reset", post(users::password_reset))
        .route(
            "/dealerships",
            get(dealerships::list).post(dealerships::create),
        )
        .route(
            "/dealerships/{id}",
            get(dealerships::get)
                .patch(dealerships::update)
                .delete(dealerships::delete),
        )
        .route(
            "/dealerships/{id}/embed-key",
            post(dealerships::rotate_embed_key),
        )
        .route(
            "/dealerships/{id}/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route(
            "/dealerships/{id}/api-keys/{key_id}",
            axum::routing::delete(api_keys::revoke),
        )
        .route("/audit-log", get(audit::list))
        .route("/sessions", get(sessions::list).post(realtime::create))
        .route("/sessions/{id}/ws", get(realtime::upgrade))
        .route("/realtime", get(openai_realtime::connect))
        .route("/realtime/client_secrets", post(openai_realtime::create))
        .route("/sessions/{id}/webrtc", post(realtime::webrtc))
        .route(
            "/sessions/{id}",
            get(sessions::get).delete(sessions::delete),
        )
        .route("/sessions/{id}/faults", post(faults::inject))
        .route(
            "/documents",
            get(documents::list)
                .post(documents::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/documents/reindex", post(documents::reindex_all))
        .route(
            "/documents/{id}",
            get(documents::get).delete(documents::delete),
        )
        .route("/documents/{id}/content", get(documents::content))
        .route("/documents/{id}/reindex", post(documents::reindex))
        .route("/cache/stats", get(caches::stats))
        .route("/cache", axum::routing::delete(caches::clear))
        .route("/knowledge-gaps", get(knowledge_gaps::list))
        .route("/privacy/erase", post(privacy::erase))
        .route("/usage", get(usage::report))
        .route("/openapi.json", get(docs::openapi_json));
    let api = Router::new()
        .nest("/v1", v1.fallback(ops::not_found))
        .route("/docs", get(docs::docs_page))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    web::serve(api, web_dir)
}
