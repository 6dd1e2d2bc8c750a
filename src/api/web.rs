//! The browser client, admin pages and embeddable widget: the files `scripts/web.sh`
//! builds into `web.dir`, served with the pages' security policy. Hashed assets are
//! cached for good; pages are revalidated. Without a build, `/` says how to make one.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tower_http::services::ServeDir;

use super::ops::{PAGE_CSP, not_found};
use crate::state::AppState;

const NOT_BUILT: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Adam</title></head><body><h1>Adam</h1><p>The server is running, but the browser \
client has not been built: run <code>bash scripts/web.sh</code> (or <code>make run</code>), \
or point <code>web.dir</code> at a build. The management API is documented at \
<a href=\"/docs\">/docs</a>.</p></body></html>";

/// The static files of `dir` as the router's fallback (unknown paths stay JSON 404s).
pub fn serve(router: Router<AppState>, dir: &Path) -> Router<AppState> {
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "the web client is not built; serving a notice at /");
        return router
            .route("/", get(|| async { page(Html(NOT_BUILT).into_response()) }))
            .fallback(not_found);
    }
    let files = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .fallback(axum::routing::any(not_found).with_state(()));
    router.fallback_service(
        Router::new()
            .fallback_service(files)
            .layer(middleware::from_fn(headers)),
    )
}

fn page(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    response
}

async fn headers(request: Request, next: Next) -> Response {
    let immutable = request.uri().path().starts_with("/assets/");
    let response = next.run(request).await;
    let cache =
        if immutable && (response.status().is_success() || response.status().is_redirection()) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
    // Every static response carries the pages' policy: a `304 Not Modified` has no
    // content type, and browsers apply its headers to the cached page.
    let mut response = page(response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `[web]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Folder of the built browser client (`scripts/web.sh` builds `web/dist`).
    pub dir: PathBuf,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("web/dist"),
        }
    }
}
