//! Tenant isolation: another dealership's resources are 404 with no side effect, and a
//! dealership in the body is ignored unless the caller is super_admin.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, json_body, spawn_app, world};

async fn snapshot(app: &TestApp, token: &str, path: &str) -> Value {
    let resp = app.get(path, Some(token)).await;
    assert_eq!(resp.status(), 200, "{path}");
    json_body(resp).await
}

/// Inserts a session with one turn in `dealership`, owned by `user`.
async fn seed_session(app: &TestApp, dealership: &str, user: Option<&str>) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = app.clock.now();
    adam::db::sessions::insert(
        &app.state.db,
        &adam::db::sessions::Session {
            id: id.clone(),
            dealership_id: dealership.into(),
            user_id: user.map(str::to_owned),
            transport: "websocket".into(),
            started_at: now,
            ended_at: Some(now + 30),
            end_reason: Some("client_closed".into()),
        },
    )
    .await
    .expect("session stored");
    adam::db::sessions::insert_turn(
        &app.state.db,
        &adam::db::sessions::Turn {
            id: uuid::Uuid::new_v4().to_string(),
            session_id: id.clone(),
            seq: 0,
            user_text: "When do you open?".into(),
            assistant_text: "At eight.".into(),
            interrupted: false,
            citations: "[]".into(),
            latency_ms: Some(420),
            started_at: now,
            status: "completed".into(),
            metrics: "{}".into(),
            unanswered: false,
            usage: "{}".into(),
        },
    )
    .await
    .expect("turn stored");
    id
}

#[tokio::test]
async fn cross_tenant_user_access_is_404_without_side_effects() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/v1/users/{}", w.user_b_id);
    let before = snapshot(&app, &w.root.access, &path).await;
    let admin_a = &w.admin_a.access;

    let resp = app.get(&path, Some(admin_a)).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json_body(resp).await["error"]["code"], "not_found");
    let resp = app
        .patch(
            &path,
            Some(admin_a),
            json!({"display_name": "pwned", "disabled": true, "password": "hijacked-password"}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(app.delete(&path, Some(admin_a)).await.status(), 404);

    assert_eq!(
        snapshot(&app, &w.root.access, &path).await,
        before,
        "user B unchanged"
    );
    app.login("user@bravo.test", PASSWORD).await;
    let listed = snapshot(&app, admin_a, "/v1/users").await;
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert!(!ids.contains(&w.user_b_id.as_str()));
    assert!(ids.contains(&w.user_a_id.as_str()));
}

#[tokio::test]
async fn cross_tenant_dealership_access_is_404_without_side_effects() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/v1/dealerships/{}", w.b);
    let before = snapshot(&app, &w.root.access, &path).await;
    let admin_a = &w.admin_a.access;

    assert_eq!(app.get(&path, Some(admin_a)).await.status(), 404);
    let resp = app
        .patch(
            &path,
            Some(admin_a),
            json!({"persona": "evil", "name": "Mine"}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(app.delete(&path, Some(admin_a)).await.status(), 404);
    let resp = app
        .post(&format!("{path}/embed-key"), Some(admin_a), json!({}))
        .await;
    assert_eq!(resp.status(), 404);

    assert_eq!(
        snapshot(&app, &w.root.access, &path).await,
        before,
        "dealership B unchanged"
    );
    // And the other way round.
    let path_a = format!("/v1/dealerships/{}", w.a);
    assert_eq!(
        app.get(&path_a, Some(&w.admin_b.access)).await.status(),
        404
    );
    assert_eq!(
        app.get(
            &format!("/v1/users/{}", w.user_a_id),
            Some(&w.admin_b.access)
        )
        .await
        .status(),
        404
    );
    let listed = snapshot(&app, admin_a, "/v1/dealerships").await;
    assert_eq!(listed.as_array().expect("array").len(), 1);
    assert_eq!(listed[0]["id"], w.a.as_str());
}

#[tokio::test]
async fn cross_tenant_session_access_is_404_without_side_effects() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let session_b = seed_session(&app, &w.b, Some(&w.user_b_id)).await;
    let path = format!("/v1/sessions/{session_b}");
    let before = snapshot(&app, &w.root.access, &path).await;
    assert_eq!(before["turns"][0]["assistant_text"], "At eight.");

    assert_eq!(app.get(&path, Some(&w.admin_a.access)).await.status(), 404);
    assert_eq!(
        app.delete(&path, Some(&w.admin_a.access)).await.status(),
        404
    );
    assert_eq!(app.get(&path, Some(&w.user_a.access)).await.status(), 404);
    assert_eq!(snapshot(&app, &w.root.access, &path).await, before);
    let listed = snapshot(&app, &w.admin_a.access, "/v1/sessions").await;
    assert!(listed.as_array().expect("array").is_empty());
}

#[tokio::test]
async fn a_user_sees_only_their_own_sessions() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let mine = seed_session(&app, &w.a, Some(&w.user_a_id)).await;
    let colleague = seed_session(&app, &w.a, Some(&w.user_a2_id)).await;
    let listed = snapshot(&app, &w.user_a.access, "/v1/sessions").await;
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let path = format!("/v1/sessions/{colleague}");
    assert_eq!(app.get(&path, Some(&w.user_a.access)).await.status(), 404);
    // A user may read but not delete transcripts.
    let own = format!("/v1/sessions/{mine}");
    assert_eq!(app.delete(&own, Some(&w.user_a.access)).await.status(), 403);
    // Their dealership's admin sees both and may delete.
    let listed = snapshot(&app, &w.admin_a.access, "/v1/sessions").await;
    assert_eq!(listed.as_array().expect("array").len(), 2);
    assert_eq!(
        app.delete(&path, Some(&w.admin_a.access)).await.status(),
        204
    );
    assert_eq!(app.get(&path, Some(&w.root.access)).await.status(), 404);
}

#[tokio::test]
async fn dealership_in_the_body_is_ignored_for_non_super_admins() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let resp = app
        .post(
            "/v1/users",
            Some(&w.admin_a.access),
            json!({"email": "sneaky@x.test", "password": PASSWORD, "role": "user", "dealership_id": w.b}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    assert_eq!(
        body["dealership_id"],
        w.a.as_str(),
        "created in the caller's own dealership"
    );
    // And super_admin may choose.
    let resp = app
        .post(
            "/v1/users",
            Some(&w.root.access),
            json!({"email": "placed@x.test", "password": PASSWORD, "role": "user", "dealership_id": w.b}),
        )
        .await;
    assert_eq!(json_body(resp).await["dealership_id"], w.b.as_str());
}

#[tokio::test]
async fn audit_log_is_tenant_scoped_and_records_admin_actions() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let resp = app
        .patch(
            &format!("/v1/dealerships/{}", w.a),
            Some(&w.admin_a.access),
            json!({"voice": "en-us"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let entries = snapshot(&app, &w.admin_a.access, "/v1/audit-log").await;
    let entries = entries.as_array().expect("array");
    assert!(
        entries.iter().all(|e| e["dealership_id"] == w.a.as_str()),
        "{entries:?}"
    );
    assert_eq!(entries[0]["action"], "dealership.update", "newest first");
    assert_eq!(entries[0]["actor_user_id"], w.admin_a_id.as_str());
    assert!(entries.iter().any(|e| e["action"] == "user.create"));
    let all = snapshot(&app, &w.root.access, "/v1/audit-log").await;
    assert!(
        all.as_array()
            .expect("array")
            .iter()
            .any(|e| e["dealership_id"] == w.b.as_str())
    );
    // Paging with `before` continues where the first page stopped.
    let first = snapshot(&app, &w.root.access, "/v1/audit-log?limit=2").await;
    let last_id = first[1]["id"].as_str().expect("id");
    let next = snapshot(
        &app,
        &w.root.access,
        &format!("/v1/audit-log?limit=2&before={last_id}"),
    )
    .await;
    assert!(next[0]["id"].as_str().expect("id") < last_id);
}

#[tokio::test]
async fn a_dealership_keeps_its_time_zone_and_refuses_an_unknown_one() {
    let app = crate::helpers::spawn_app().await;
    let root = app.admin().await;
    let resp = app
        .post(
            "/v1/dealerships",
            Some(&root.access),
            serde_json::json!({"name": "Zone Motors", "timezone": "Mars/Olympus_Mons"}),
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(
        crate::helpers::json_body(resp).await["error"]["field"],
        "timezone"
    );
    let resp = app
        .post(
            "/v1/dealerships",
            Some(&root.access),
            serde_json::json!({"name": "Zone Motors", "timezone": "America/Chicago"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let d = crate::helpers::json_body(resp).await;
    assert_eq!(d["timezone"], "America/Chicago");
    let id = d["id"].as_str().expect("id").to_owned();
    // Without one a dealership is on UTC; a PATCH changes it and nothing else.
    let other = app.create_dealership(&root.access, "Utc Cars").await;
    let got = crate::helpers::json_body(
        app.get(&format!("/v1/dealerships/{other}"), Some(&root.access))
            .await,
    )
    .await;
    assert_eq!(got["timezone"], "UTC");
    let resp = app
        .patch(
            &format!("/v1/dealerships/{id}"),
            Some(&root.access),
            serde_json::json!({"timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let d = crate::helpers::json_body(resp).await;
    assert_eq!(
        (d["timezone"].as_str(), d["name"].as_str()),
        (Some("Europe/Berlin"), Some("Zone Motors"))
    );
}
