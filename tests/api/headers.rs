//! Security headers on every status, JSON error bodies, and CORS.

use reqwest::header::HeaderMap;
use serde_json::json;

use crate::helpers::{json_body, spawn_app, spawn_app_with};

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let get = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: missing {name}"))
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert!(
        get("strict-transport-security").starts_with("max-age="),
        "{what}"
    );
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert!(
        get("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}"
    );
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert!(
        get("permissions-policy").contains("microphone=(self)"),
        "{what}"
    );
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert!(headers.get("server").is_none(), "{what}: no Server header");
    assert!(headers.contains_key("x-request-id"), "{what}: request id");
}

#[tokio::test]
async fn security_headers_on_200_404_405_413_and_500() {
    let app = spawn_app_with(|s| s.http.body_limit_bytes = 4096).await;

    let ok = app.get("/healthz", None).await;
    assert_eq!(ok.status(), 200);
    assert_security_headers(ok.headers(), "200");

    let missing = app.get("/v1/no-such-thing", None).await;
    assert_eq!(missing.status(), 404);
    assert_security_headers(missing.headers(), "404");
    assert_eq!(json_body(missing).await["error"]["code"], "not_found");

    let wrong_method = app.post("/healthz", None, json!({})).await;
    assert_eq!(wrong_method.status(), 405);
    assert_security_headers(wrong_method.headers(), "405");
    assert_eq!(
        json_body(wrong_method).await["error"]["code"],
        "method_not_allowed"
    );

    let big = json!({"email": "a@b.c", "password": "x".repeat(10_000)});
    let too_large = app.post("/v1/auth/login", None, big).await;
    assert_eq!(too_large.status(), 413);
    assert_security_headers(too_large.headers(), "413");
    assert_eq!(
        json_body(too_large).await["error"]["code"],
        "payload_too_large"
    );

    // A real internal failure: the audit table disappears under the server.
    let root = app.admin().await;
    app.state
        .db
        .execute_static("DROP TABLE audit_log")
        .await
        .expect("dropped");
    let broken = app.get("/v1/audit-log", Some(&root.access)).await;
    assert_eq!(broken.status(), 500);
    assert_security_headers(broken.headers(), "500");
    let body = json_body(broken).await;
    assert_eq!(body["error"]["code"], "internal");
    assert!(
        !body.to_string().to_lowercase().contains("audit_log"),
        "no internals leak: {body}"
    );
    // The process survives and other routes still work.
    assert_eq!(app.get("/v1/me", Some(&root.access)).await.status(), 200);
}

#[tokio::test]
async fn security_headers_on_429() {
    let app = spawn_app_with(|s| {
        s.rate_limit.per_ip_burst = 1;
        s.rate_limit.per_ip_per_minute = 1;
    })
    .await;
    app.get("/v1/openapi.json", None).await;
    let limited = app.get("/v1/openapi.json", None).await;
    assert_eq!(limited.status(), 429);
    assert_security_headers(limited.headers(), "429");
}

#[tokio::test]
async fn pages_get_a_strict_csp_without_inline_script() {
    let app = spawn_app().await;
    for path in ["/", "/docs"] {
        let resp = app.get(path, None).await;
        assert_eq!(resp.status(), 200, "{path}");
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_security_headers(resp.headers(), path);
    }
}

#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let app =
        spawn_app_with(|s| s.http.cors_allowed_origins = vec!["https://admin.example.com".into()])
            .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let unlisted = preflight("https://evil.example.net").await.expect("sent");
    assert!(
        unlisted
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(
        unlisted
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
            || unlisted
                .headers()
                .get("access-control-allow-origin")
                .is_none()
    );

    let listed = preflight("https://admin.example.com").await.expect("sent");
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    assert_eq!(listed.headers()["access-control-allow-credentials"], "true");

    // A simple cross-origin GET from an unlisted origin gets no CORS grant either.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .expect("sent");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn revalidated_pages_keep_the_page_policy() {
    let app = spawn_app_with(|s| {
        let dir = s.data_dir.join("web");
        std::fs::create_dir_all(dir.join("admin")).expect("dir");
        std::fs::write(dir.join("index.html"), "<!doctype html><title>t</title>").expect("page");
        std::fs::write(
            dir.join("admin/index.html"),
            "<!doctype html><title>a</title>",
        )
        .expect("page");
        s.web.dir = dir;
    })
    .await;
    for path in ["/", "/admin/"] {
        let first = app.get(path, None).await;
        assert_eq!(first.status(), 200, "{path}");
        let modified = first.headers()["last-modified"].clone();
        let again = app
            .client
            .get(app.url(path))
            .header("if-modified-since", modified)
            .send()
            .await
            .expect("request");
        assert_eq!(again.status(), 304, "{path}");
        let csp = again.headers()["content-security-policy"]
            .to_str()
            .expect("ascii");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    }
}
