//! The OpenAPI 3.1 document, generated from the handlers' annotations, and a
//! server-rendered docs page (no scripts, no CDN).

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::extract::Json;
use super::ops::PAGE_CSP;
use super::{
    api_keys, audit, auth, caches, dealerships, documents, error, knowledge_gaps, ops,
    password_reset, privacy, sessions, usage, users,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Adam API", description = "Realtime voice and avatar session server: management API."),
    paths(
        auth::login, auth::refresh, auth::logout, auth::me, auth::patch_me,
        password_reset::request, password_reset::confirm,
        users::list, users::create, users::get, users::update, users::delete, users::invite,
        users::password_reset,
        dealerships::list, dealerships::create, dealerships::get, dealerships::update,
        dealerships::delete, dealerships::rotate_embed_key,
        api_keys::create, api_keys::list, api_keys::revoke,
        audit::list, sessions::list, sessions::get, sessions::delete,
        crate::api::realtime::create, crate::api::realtime::upgrade, crate::api::realtime::webrtc,
        crate::api::openai_realtime::connect, crate::api::openai_realtime::create,
        caches::stats, caches::clear, knowledge_gaps::list, privacy::erase, usage::report,
        documents::upload, documents::list, documents::get, documents::content,
        documents::delete, documents::reindex, documents::reindex_all,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, crate::auth::Role)),
    modifiers(&BearerAuth, &CommonResponses),
    tags(
        (name = "auth", description = "Login, token rotation, own profile"),
        (name = "users", description = "Users of a dealership"),
        (name = "dealerships", description = "Tenants and their settings"),
        (name = "sessions", description = "Conversations and transcripts"),
        (name = "audit", description = "Admin action log"),
        (name = "documents", description = "A dealership's knowledge base: upload, status, re-index"),
        (name = "caches", description = "Cache levels: counters and clearing"),
        (name = "privacy", description = "Erasing what is held about one caller"),
        (name = "usage", description = "What each dealership's conversations cost, by day"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Adds the statuses the middleware and the extractors answer on any operation, so each
/// operation lists every status it can return: 429 (rate limits; not on the exempt
/// `/healthz`, `/readyz`, `/metrics`), 503 (the database is away, or the node drains;
/// every `/v1` operation), 401 (bearer security), 404 (a path id that names nothing),
/// 400 (malformed JSON or query), and for a JSON body 413 (too large), 415 (not JSON) and
/// 422 (a field fails validation). A status an annotation already documents is kept as is.
struct CommonResponses;

impl CommonResponses {
    fn error(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
            .into()
    }

    fn add(op: &mut utoipa::openapi::path::Operation, path: &str) {
        use utoipa::openapi::path::ParameterIn;
        let params = op.parameters.as_deref().unwrap_or_default();
        let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
        let json_body = op
            .request_body
            .as_ref()
            .is_some_and(|b| b.content.contains_key("application/json"));
        let any_body = op.request_body.is_some();
        // An empty requirement (`()`) means "or anonymously"; any other names a scheme.
        let secured = op.security.iter().flatten().any(|requirement| {
            serde_json::to_value(requirement)
                .ok()
                .and_then(|v| v.as_object().map(|o| !o.is_empty()))
                .unwrap_or(false)
        });
        let exempt = matches!(path, "/healthz" | "/readyz" | "/metrics");
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        if any_body || has(ParameterIn::Query) {
            wanted.push((
                "400",
                "Malformed request: broken JSON, or a query that does not parse",
            ));
        }
        if secured {
            wanted.push(("401", "Missing, invalid or expired bearer token"));
        }
        if has(ParameterIn::Path) {
            wanted.push(("404", "No such resource (in the caller's dealership)"));
        }
        if any_body {
            wanted.push(("413", "Request body over the limit"));
            wanted.push(("415", "Wrong `Content-Type`"));
        }
        if json_body {
            wanted.push(("422", "A field failed validation (`error.field` names it)"));
        }
        if !exempt {
            wanted.push(("429", "Rate limited: retry after `Retry-After` seconds"));
        }
        if path.starts_with("/v1/") {
            wanted.push((
                "503",
                "The database is unavailable, or the node is shutting down",
            ));
        }
        for (status, description) in wanted {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| Self::error(description));
        }
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                Self::add(op, path);
            }
        }
    }
}

/// `GET /v1/openapi.json`
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /docs`: every operation with its summary, grouped by path.
pub async fn docs_page() -> Response {
    let doc = ApiDoc::openapi();
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PATCH", &item.patch),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let summary = op
                .summary
                .clone()
                .or_else(|| op.description.clone())
                .unwrap_or_default();
            let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
            rows.push_str(&format!(
                "<tr><td class=\"m\">{method}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                escape(path),
                escape(&summary),
                escape(&statuses.join(", "))
            ));
        }
    }
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Adam API</title></head>\
         <body><h1>Adam API {}</h1><p>Machine-readable: <a href=\"/v1/openapi.json\">/v1/openapi.json</a> \
         (OpenAPI {}). Authenticate with <code>Authorization: Bearer &lt;access_token&gt;</code> from \
         <code>POST /v1/auth/login</code>. Errors are <code>{{\"error\":{{\"code\",\"message\"}}}}</code>.</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>Summary</th><th>Statuses</th></tr></thead>\
         <tbody>{rows}</tbody></table></body></html>",
        escape(&doc.info.version),
        "3.1",
    );
    let mut response = Html(html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    response
}
