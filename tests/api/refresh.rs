//! Refresh-token rotation, reuse detection, absolute expiry, logout and password change.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, json_body, spawn_app};

async fn rotate(app: &crate::helpers::TestApp, refresh: &str) -> (String, String) {
    let resp = app.refresh(refresh).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    (
        body["access_token"].as_str().expect("access").to_owned(),
        body["refresh_token"].as_str().expect("refresh").to_owned(),
    )
}

#[tokio::test]
async fn rotation_issues_a_working_pair_and_kills_the_old_token() {
    let app = spawn_app().await;
    let first = app.admin().await;
    let (access, second) = rotate(&app, &first.refresh).await;
    assert_ne!(second, first.refresh);
    assert_eq!(app.get("/v1/me", Some(&access)).await.status(), 200);
    let resp = app.refresh(&first.refresh).await;
    assert_eq!(resp.status(), 401, "a rotated token is dead");
    assert_eq!(json_body(resp).await["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn replaying_a_rotated_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.admin().await;
    let (_, second) = rotate(&app, &first.refresh).await;
    let (_, third) = rotate(&app, &second).await;
    // The attacker replays the first token: refused, and the live one dies with it.
    assert_eq!(app.refresh(&first.refresh).await.status(), 401);
    assert_eq!(app.refresh(&third).await.status(), 401, "family revoked");
    // Another login (another family) is unaffected.
    let other = app.admin().await;
    assert_eq!(app.refresh(&other.refresh).await.status(), 200);
    assert!(
        app.state
            .metrics
            .render()
            .contains("adam_refresh_token_reuse_total 1")
    );
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_exactly_one_succeeds() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let tokens = app.admin().await;
        let (a, b) = tokio::join!(app.refresh(&tokens.refresh), app.refresh(&tokens.refresh));
        let ok = [a.status(), b.status()]
            .iter()
            .filter(|s| s.as_u16() == 200)
            .count();
        assert_eq!(ok, 1, "statuses {} and {}", a.status(), b.status());
    }
}

#[tokio::test]
async fn refresh_expires_seven_days_after_login_however_often_it_rotates() {
    let app = spawn_app().await;
    let tokens = app.admin().await;
    app.clock.advance(3 * 24 * 3600);
    let (_, r2) = rotate(&app, &tokens.refresh).await;
    app.clock.advance(3 * 24 * 3600);
    let (_, r3) = rotate(&app, &r2).await;
    app.clock.advance(24 * 3600 + 10);
    let resp = app.refresh(&r3).await;
    assert_eq!(
        resp.status(),
        401,
        "7 days after login, even a fresh rotation is dead"
    );
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let tokens = app.admin().await;
    let resp = app
        .post(
            "/v1/auth/logout",
            None,
            json!({"refresh_token": tokens.refresh}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(app.refresh(&tokens.refresh).await.status(), 401);
    // Logging out twice is harmless.
    let resp = app
        .post(
            "/v1/auth/logout",
            None,
            json!({"refresh_token": tokens.refresh}),
        )
        .await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn password_change_revokes_refresh_tokens_and_needs_the_current_password() {
    let app = spawn_app().await;
    let session_one = app.admin().await;
    let session_two = app.admin().await;
    let resp = app
        .patch(
            "/v1/me",
            Some(&session_one.access),
            json!({"current_password": "wrong-password", "new_password": "brand-new-password"}),
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(json_body(resp).await["error"]["field"], "current_password");

    let resp = app
        .patch(
            "/v1/me",
            Some(&session_one.access),
            json!({"current_password": ADMIN_PASSWORD, "new_password": "brand-new-password"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.refresh(&session_one.refresh).await.status(), 401);
    assert_eq!(app.refresh(&session_two.refresh).await.status(), 401);
    assert_eq!(
        app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        401
    );
    app.login(ADMIN_EMAIL, "brand-new-password").await;
}

#[tokio::test]
async fn stored_hash_is_bcrypt_cost_12() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Hash Motors").await;
    app.create_user(&root.access, "hash@x.test", "user", Some(&d))
        .await;
    for email in [ADMIN_EMAIL, "hash@x.test"] {
        let user = adam::db::users::by_email(&app.state.db, email)
            .await
            .expect("query")
            .expect("user exists");
        assert!(
            user.password_hash.starts_with("$2b$12$"),
            "{}",
            user.password_hash
        );
        assert!(!user.password_hash.contains(crate::helpers::PASSWORD));
    }
}
