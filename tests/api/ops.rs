//! Health, readiness, metrics, OpenAPI, validation errors and graceful shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, eventually, json_body, spawn_app, spawn_app_with};

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
async fn a_metrics_listener_takes_metrics_off_the_public_listener() {
    let app =
        spawn_app_with(|s| s.metrics.listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let public = app.get("/metrics", None).await;
    assert_eq!(public.status(), 404);
    assert_eq!(json_body(public).await["error"]["code"], "not_found");
    let internal = app.metrics_base.clone().expect("a metrics listener");
    assert_ne!(internal, app.base);
    let resp = app
        .client
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.expect("text");
    assert!(
        text.contains(r#"adam_http_requests_total{method="GET",route="/metrics",status="404"} 1"#),
        "the public listener's refusal is counted: {text}"
    );
    // The metrics listener serves nothing else.
    for path in ["/v1/openapi.json", "/healthz", "/"] {
        let resp = app
            .client
            .get(format!("{internal}{path}"))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn a_metrics_token_is_required_when_set() {
    const TOKEN: &str = "metrics-token-0123456789";
    let app = spawn_app_with(|s| s.metrics.token = Some(TOKEN.into())).await;
    let scrape = |token: Option<&'static str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let resp = scrape(token).await.expect("scrape");
        assert_eq!(resp.status(), 401, "{token:?}");
        assert_eq!(json_body(resp).await["error"]["code"], "unauthorized");
    }
    // A user's access token is not the metrics token either.
    let root = app.admin().await;
    let resp = app.get("/metrics", Some(&root.access)).await;
    assert_eq!(resp.status(), 401);
    let resp = scrape(Some(TOKEN)).await.expect("scrape");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .expect("text")
            .contains("adam_live_sessions")
    );

    // With both, the token guards the metrics listener too.
    let app = spawn_app_with(|s| {
        s.metrics.token = Some(TOKEN.into());
        s.metrics.listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let url = format!("{}/metrics", app.metrics_base.clone().expect("listener"));
    let resp = app.client.get(&url).send().await.expect("scrape");
    assert_eq!(resp.status(), 401);
    let resp = app
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
}

#[test]
fn the_compose_stack_scrapes_metrics_off_the_public_port() {
    let read = |path: &str| {
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
    };
    let compose = read("docker-compose.yml");
    assert!(
        compose.contains("ADAM__METRICS__LISTEN: 0.0.0.0:9464"),
        "the nodes serve /metrics on their own port"
    );
    assert!(!compose.contains("9464:"), "and do not publish it");
    let prometheus = read("deploy/prometheus.yml");
    assert!(
        prometheus.contains(r#"targets: ["adam-1:9464", "adam-2:9464"]"#),
        "{prometheus}"
    );
    // nginx, the only published HTTP port, refuses the path before any node sees it.
    let nginx = read("deploy/nginx.conf");
    let block = nginx
        .split("location = /metrics {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("a location for /metrics");
    assert!(
        block.contains("return 404") && !block.contains("proxy_pass"),
        "{block}"
    );
    assert!(read("Dockerfile").contains("ADAM__METRICS__LISTEN=0.0.0.0:9464"));
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
async fn every_operation_lists_the_statuses_any_route_can_return() {
    let app = spawn_app().await;
    let doc = json_body(app.get("/v1/openapi.json", None).await).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            if !["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let listed = |status: &str| op["responses"].get(status).is_some();
            let what = format!("{method} {path}");
            let exempt = ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
            assert_eq!(listed("429"), !exempt, "{what}: 429 (rate limits)");
            if path.starts_with("/v1/") {
                assert!(listed("503"), "{what}: 503");
            }
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if secured {
                assert!(listed("401"), "{what}: 401 (bearer)");
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                assert!(listed("404"), "{what}: 404 (path id)");
            }
            if params.iter().any(|p| p["in"] == "query") {
                assert!(listed("400"), "{what}: 400 (query)");
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                for status in ["400", "413", "415", "422"] {
                    assert!(listed(status), "{what}: {status} (JSON body)");
                }
            }
            // Every error a route adds is the one JSON error shape.
            for (status, response) in op["responses"].as_object().expect("responses") {
                if status.starts_with('4') && path.starts_with("/v1/") {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what}: {status}"
                    );
                }
            }
        }
    }
    assert!(operations > 35, "{operations} operations");

    // What the document promises is what a route does: malformed JSON, the wrong content
    // type, a body over the limit and a missing token, on one documented operation.
    let root = app.admin().await;
    let url = app.url("/v1/dealerships");
    let send = |body: Vec<u8>, content_type: &'static str, token: Option<String>| {
        let mut req = app
            .client
            .post(url.clone())
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    let token = Some(root.access.clone());
    for (body, content_type, token, status) in [
        (b"{".to_vec(), "application/json", token.clone(), 400),
        (b"{}".to_vec(), "text/plain", token.clone(), 415),
        (vec![b' '; 2 << 20], "application/json", token.clone(), 413),
        (b"{}".to_vec(), "application/json", None, 401),
        (b"{}".to_vec(), "application/json", token.clone(), 422),
    ] {
        let resp = send(body, content_type, token).await.expect("sent");
        assert_eq!(resp.status(), status);
        assert!(
            paths["/v1/dealerships"]["post"]["responses"]
                .get(status.to_string())
                .is_some(),
            "{status} documented"
        );
        assert!(json_body(resp).await["error"]["code"].is_string());
    }
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
