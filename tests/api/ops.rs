//! Health, readiness, metrics, OpenAPI, validation errors and graceful shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, eventually, json_body, spawn_app};

#[tokio::test]
async fn health_and_readiness_reflect_the_database() {
    let app = spawn_app().await;
    assert_eq!(
        json_body(app.get("/healthz", None).await).await["status"],
        "ok"
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let body = json_body(ready).await;
    assert_eq!(body["status"], "ok");
    let kind = if std::env::var("ADAM_TEST_DATABASE_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(body["database"], kind);

    app.state.db.close().await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 503);
    assert_eq!(json_body(ready).await["status"], "unavailable");
    assert_eq!(
        app.get("/healthz", None).await.status(),
        200,
        "alive even when not ready"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/v1/me", None).await;
    app.get("/v1/users/some-id", None).await;
    let text = app.get("/metrics", None).await.text().await.expect("text");
    assert!(
        text.contains(r#"adam_http_requests_total{method="GET",route="/v1/me",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/users/{id}",status="401""#),
        "templated route, not the raw path"
    );
    assert!(text.contains("adam_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let doc = json_body(app.get("/v1/openapi.json", None).await).await;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    for path in [
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/users/{id}",
        "/v1/dealerships/{id}/embed-key",
        "/readyz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let page = app.get("/docs", None).await.text().await.expect("html");
    assert!(page.contains("/v1/auth/login") && page.contains("/v1/openapi.json"));
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Input Motors").await;

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"email": "not-an-email", "password": PASSWORD, "role": "user", "dealership_id": d}),
            "email",
        ),
        (
            json!({"password": PASSWORD, "role": "user", "dealership_id": d}),
            "email",
        ),
        (
            json!({"email": "x@y.test", "password": "short", "role": "user", "dealership_id": d}),
            "password",
        ),
        (
            json!({"email": "x@y.test", "password": PASSWORD, "role": "emperor", "dealership_id": d}),
            "role",
        ),
        (
            json!({"email": "x@y.test", "password": PASSWORD, "role": "user"}),
            "dealership_id",
        ),
    ];
    for (body, field) in cases {
        let resp = app
            .post("/v1/users", Some(&root.access), body.clone())
            .await;
        assert_eq!(resp.status(), 422, "{body}");
        let err = json_body(resp).await;
        assert_eq!(err["error"]["code"], "validation_failed", "{body}");
        assert_eq!(err["error"]["field"], field, "{body} → {err}");
    }
    let resp = app
        .patch(
            &format!("/v1/dealerships/{d}"),
            Some(&root.access),
            json!({"allowed_origins": ["javascript:alert(1)"]}),
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(json_body(resp).await["error"]["field"], "allowed_origins");

    let malformed = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(malformed.status(), 400);
    assert_eq!(json_body(malformed).await["error"]["code"], "bad_request");

    let wrong_type = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong_type.status(), 415);

    app.create_user(&root.access, "dup@x.test", "user", Some(&d))
        .await;
    let resp = app
        .post("/v1/users", Some(&root.access), json!({"email": "DUP@x.test", "password": PASSWORD, "role": "user", "dealership_id": d}))
        .await;
    assert_eq!(resp.status(), 409, "emails are case-insensitive");
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    app.shutdown.notify_one();
    let stopped = eventually(Duration::from_secs(10), || async {
        app.server.is_finished()
    })
    .await;
    assert!(stopped, "server stopped within the grace period");
    assert!(
        app.client.get(app.url("/healthz")).send().await.is_err(),
        "port closed"
    );
}
