//! Account lifecycle and secrets: setting a password with an emailed link costs no bcrypt
//! unless the link is good, and is limited per client IP.

use serde_json::json;

use crate::email::{confirm, fast_mail, link_token, nth_mail};
use crate::helpers::{PASSWORD, TestApp, json_body, metric, metrics, spawn_app_with};

const NEW_PASSWORD: &str = "a brand new password";

/// bcrypt runs that hashed a new password so far.
async fn hashes(app: &TestApp) -> f64 {
    metric(
        &metrics(app).await,
        "adam_password_hashes_total{op=\"hash\"}",
    )
    .expect("the password hash counter is exported")
}

/// A user of a new dealership, and the token of a password-reset link emailed to them.
async fn user_with_reset_link(app: &TestApp, email: &str) -> String {
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    app.create_user(&root.access, email, "user", Some(&d)).await;
    let resp = app
        .post("/v1/auth/password-reset", None, json!({"email": email}))
        .await;
    assert_eq!(resp.status(), 202);
    link_token(&nth_mail(app, 1).await.text)
}

#[tokio::test]
async fn a_reset_confirm_with_a_bad_token_hashes_no_password() {
    let app = spawn_app_with(fast_mail).await;
    let token = user_with_reset_link(&app, "bo@alpha.test").await;
    let before = hashes(&app).await;

    let forged = "A".repeat(43);
    for (bad, code) in [
        (forged.as_str(), "token_invalid"),
        ("not-a-token", "token_invalid"),
        (&"x".repeat(500), "token_invalid"),
    ] {
        let resp = confirm(&app, bad, NEW_PASSWORD).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(json_body(resp).await["error"]["code"], code);
    }
    assert_eq!(hashes(&app).await, before, "no bcrypt for a bad token");

    // The good link hashes once and sets the password; used again, it costs nothing.
    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    assert_eq!(hashes(&app).await, before + 1.0);
    let resp = confirm(&app, &token, "yet another password").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["error"]["code"], "token_used");
    assert_eq!(
        hashes(&app).await,
        before + 1.0,
        "no bcrypt for a used token"
    );
    app.login("bo@alpha.test", NEW_PASSWORD).await;
}

#[tokio::test]
async fn two_confirms_racing_with_one_link_set_one_password() {
    let app = spawn_app_with(fast_mail).await;
    let token = user_with_reset_link(&app, "cy@alpha.test").await;
    let (a, b) = tokio::join!(
        confirm(&app, &token, "first racing password"),
        confirm(&app, &token, "second racing password"),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 400], "exactly one wins");
    let winner = if a.status() == 204 {
        "first racing password"
    } else {
        "second racing password"
    };
    let loser = if a.status() == 204 { b } else { a };
    assert_eq!(json_body(loser).await["error"]["code"], "token_used");
    app.login("cy@alpha.test", winner).await;
    assert_eq!(app.try_login("cy@alpha.test", PASSWORD).await.status(), 401);
}

#[tokio::test]
async fn reset_confirms_are_limited_per_client_ip() {
    let app = spawn_app_with(|s| {
        fast_mail(s);
        s.rate_limit.password_reset_confirm_per_minute = 1;
        s.rate_limit.password_reset_confirm_burst = 2;
    })
    .await;
    for _ in 0..2 {
        let resp = confirm(&app, "not-a-token", NEW_PASSWORD).await;
        assert_eq!(resp.status(), 400);
    }
    let resp = confirm(&app, "not-a-token", NEW_PASSWORD).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(json_body(resp).await["error"]["code"], "rate_limited");
    let m = metrics(&app).await;
    assert_eq!(
        metric(
            &m,
            "adam_rate_limited_total{scope=\"password_reset_confirm\"}"
        ),
        Some(1.0)
    );
    // Other routes from the same address are not affected.
    app.admin().await;
}
