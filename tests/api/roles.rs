//! The role matrix: what super_admin, dealership_admin and user may do.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, json_body, spawn_app, world};

#[tokio::test]
async fn role_matrix_holds() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let user_a = format!("/v1/users/{}", w.user_a_id);
    let dealer_a = format!("/v1/dealerships/{}", w.a);
    let new_user = |email: &str, role: &str| json!({"email": email, "password": PASSWORD, "role": role, "dealership_id": w.a});
    type Case<'a> = (
        &'a str,
        &'a str,
        Method,
        String,
        Option<serde_json::Value>,
        u16,
    );
    let cases: Vec<Case> = vec![
        // A plain user: own profile and sessions only.
        (
            "user",
            &w.user_a.access,
            Method::GET,
            "/v1/me".into(),
            None,
            200,
        ),
        (
            "user",
            &w.user_a.access,
            Method::GET,
            "/v1/sessions".into(),
            None,
            200,
        ),
        (
            "user",
            &w.user_a.access,
            Method::GET,
            "/v1/users".into(),
            None,
            403,
        ),
        (
            "user",
            &w.user_a.access,
            Method::POST,
            "/v1/users".into(),
            Some(new_user("u1@x.test", "user")),
            403,
        ),
        (
            "user",
            &w.user_a.access,
            Method::GET,
            user_a.clone(),
            None,
            403,
        ),
        (
            "user",
            &w.user_a.access,
            Method::GET,
            "/v1/dealerships".into(),
            None,
            403,
        ),
        (
            "user",
            &w.user_a.access,
            Method::PATCH,
            dealer_a.clone(),
            Some(json!({"persona": "x"})),
            403,
        ),
        (
            "user",
            &w.user_a.access,
            Method::GET,
            "/v1/audit-log".into(),
            None,
            403,
        ),
        (
            "user",
            &w.user_a.access,
            Method::POST,
            "/v1/dealerships".into(),
            Some(json!({"name": "N"})),
            403,
        ),
        (
            "user",
            &w.user_a.access,
            Method::GET,
            "/v1/cache/stats".into(),
            None,
            403,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::GET,
            "/v1/cache/stats".into(),
            None,
            200,
        ),
        // A dealership admin: their dealership's users, settings, sessions and log.
        (
            "dealer",
            &w.admin_a.access,
            Method::GET,
            "/v1/users".into(),
            None,
            200,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::GET,
            user_a.clone(),
            None,
            200,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::POST,
            "/v1/users".into(),
            Some(new_user("u2@x.test", "user")),
            201,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::POST,
            "/v1/users".into(),
            Some(new_user("a2@x.test", "dealership_admin")),
            201,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::POST,
            "/v1/users".into(),
            Some(json!({"email": "s@x.test", "password": PASSWORD, "role": "super_admin"})),
            403,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::PATCH,
            user_a.clone(),
            Some(json!({"role": "super_admin"})),
            403,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::PATCH,
            user_a.clone(),
            Some(json!({"role": "dealership_admin"})),
            200,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::PATCH,
            format!("/v1/users/{}", w.admin_a_id),
            Some(json!({"role": "user"})),
            403,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::DELETE,
            format!("/v1/users/{}", w.admin_a_id),
            None,
            403,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::GET,
            dealer_a.clone(),
            None,
            200,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::PATCH,
            dealer_a.clone(),
            Some(json!({"persona": "Be brief."})),
            200,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::POST,
            format!("{dealer_a}/embed-key"),
            Some(json!({})),
            200,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::POST,
            "/v1/dealerships".into(),
            Some(json!({"name": "N"})),
            403,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::DELETE,
            dealer_a.clone(),
            None,
            403,
        ),
        (
            "dealer",
            &w.admin_a.access,
            Method::GET,
            "/v1/audit-log".into(),
            None,
            200,
        ),
        // super_admin: everything.
        (
            "root",
            &w.root.access,
            Method::POST,
            "/v1/users".into(),
            Some(json!({"email": "s2@x.test", "password": PASSWORD, "role": "super_admin"})),
            201,
        ),
        (
            "root",
            &w.root.access,
            Method::POST,
            "/v1/dealerships".into(),
            Some(json!({"name": "New"})),
            201,
        ),
        (
            "root",
            &w.root.access,
            Method::DELETE,
            format!("/v1/dealerships/{}", w.b),
            None,
            204,
        ),
    ];
    for (who, token, method, path, body, expected) in cases {
        let resp = app.request(method.clone(), &path, Some(token), body).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, expected, "{who} {method} {path}: {text}");
    }
    // The promoted user is now a dealership admin; the dealer kept their own role.
    let me = json_body(app.get("/v1/me", Some(&w.admin_a.access)).await).await;
    assert_eq!(me["role"], "dealership_admin");
    // Deleting dealership B removed its users too, but not its audit trail.
    assert_eq!(
        app.try_login("user@bravo.test", PASSWORD).await.status(),
        401
    );
    let trail_path = format!("/v1/audit-log?dealership_id={}", w.b);
    let trail = json_body(app.get(&trail_path, Some(&w.root.access)).await).await;
    let actions: Vec<&str> = trail
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"user.create"), "{actions:?}");
}

#[tokio::test]
async fn a_promoted_or_demoted_user_must_refresh_to_act_in_the_new_role() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let resp = app
        .patch(
            &format!("/v1/users/{}", w.user_a_id),
            Some(&w.admin_a.access),
            json!({"role": "dealership_admin"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // The old access token carried role `user`: refused, so no stale privileges linger.
    assert_eq!(
        app.get("/v1/me", Some(&w.user_a.access)).await.status(),
        401
    );
    let resp = app.refresh(&w.user_a.refresh).await;
    assert_eq!(resp.status(), 200);
    let access = json_body(resp).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(app.get("/v1/users", Some(&access)).await.status(), 200);
}

#[tokio::test]
async fn embed_key_rotation_replaces_the_key() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/v1/dealerships/{}", w.a);
    let before = json_body(app.get(&path, Some(&w.admin_a.access)).await).await;
    let old = before["embed_key"].as_str().expect("key").to_owned();
    assert!(old.starts_with("pk_"));
    let rotated = json_body(
        app.post(
            &format!("{path}/embed-key"),
            Some(&w.admin_a.access),
            json!({}),
        )
        .await,
    )
    .await;
    let new = rotated["embed_key"].as_str().expect("key");
    assert_ne!(new, old);
    let after = json_body(app.get(&path, Some(&w.admin_a.access)).await).await;
    assert_eq!(after["embed_key"], new);
    assert!(
        adam::db::dealerships::by_embed_key(&app.state.db, &old)
            .await
            .expect("query")
            .is_none()
    );
    let found = adam::db::dealerships::by_embed_key(&app.state.db, new)
        .await
        .expect("query");
    assert_eq!(found.expect("dealership").id, w.a);
}
