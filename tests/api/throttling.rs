//! Login throttling, password length, identical failures, and rate limits.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, json_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let wrong = app.try_login(ADMIN_EMAIL, "not-the-password").await;
    let unknown = app.try_login("nobody@adam.test", "not-the-password").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let wrong_headers = wrong.headers().get("www-authenticate").cloned();
    assert_eq!(
        wrong_headers,
        unknown.headers().get("www-authenticate").cloned()
    );
    assert_eq!(
        wrong.text().await.expect("body"),
        unknown.text().await.expect("body")
    );
}

#[tokio::test]
async fn passwords_over_72_bytes_are_refused_with_422() {
    let app = spawn_app().await;
    let long = "x".repeat(73);
    let resp = app.try_login(ADMIN_EMAIL, &long).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(json_body(resp).await["error"]["field"], "password");

    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Long Motors").await;
    let resp = app
        .post(
            "/v1/users",
            Some(&root.access),
            json!({"email": "long@x.test", "password": "é".repeat(37), "role": "user", "dealership_id": d}),
        )
        .await;
    assert_eq!(resp.status(), 422, "37 two-byte characters are 74 bytes");
    let body = json_body(resp).await;
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(body["error"]["field"], "password");
}

#[tokio::test]
async fn repeated_failures_get_429_with_retry_after_and_the_block_ends() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Throttle Motors").await;
    app.create_user(&root.access, "other@x.test", "user", Some(&d))
        .await;
    for _ in 0..5 {
        assert_eq!(
            app.try_login(ADMIN_EMAIL, "bad-password!").await.status(),
            401
        );
    }
    let resp = app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), 429, "even the right password waits");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry), "retry-after {retry}");
    assert_eq!(json_body(resp).await["error"]["code"], "rate_limited");
    // Another account from the same address is not blocked by this account's failures.
    app.login("other@x.test", PASSWORD).await;
    // The block is temporary.
    app.clock.advance(retry as i64 + 1);
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn per_user_rate_limit_does_not_affect_another_user() {
    let app = spawn_app_with(|s| {
        s.rate_limit.per_user_burst = 3;
        s.rate_limit.per_user_per_minute = 1;
    })
    .await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Limit Motors").await;
    app.create_user(&root.access, "busy@x.test", "user", Some(&d))
        .await;
    app.create_user(&root.access, "calm@x.test", "user", Some(&d))
        .await;
    let busy = app.login("busy@x.test", PASSWORD).await;
    let calm = app.login("calm@x.test", PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            app.get("/v1/me", Some(&busy.access))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let resp = app.get("/v1/me", Some(&busy.access)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(app.get("/v1/me", Some(&calm.access)).await.status(), 200);
}

#[tokio::test]
async fn per_ip_rate_limit_answers_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.rate_limit.per_ip_burst = 5;
        s.rate_limit.per_ip_per_minute = 1;
    })
    .await;
    let mut last = None;
    for _ in 0..6 {
        last = Some(app.get("/v1/openapi.json", None).await);
    }
    let resp = last.expect("six requests");
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // Probes stay reachable for orchestrators.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    let body: Value = json_body(resp).await;
    assert_eq!(body["error"]["code"], "rate_limited");
}
