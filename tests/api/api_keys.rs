//! Dealership API keys: shown once, stored hashed, scoped, tenant-bound, revocable.

use serde_json::{Value, json};

use crate::helpers::{json_body, spawn_app, world};

fn keys_path(dealership: &str) -> String {
    format!("/v1/dealerships/{dealership}/api-keys")
}

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_works_until_revoked() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let resp = app
        .post(
            &keys_path(&w.a),
            Some(&w.admin_a.access),
            json!({"name": "Phone bridge", "scopes": ["management", "realtime"]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created = json_body(resp).await;
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("adam_sk_") && key.len() >= 48, "{key}");
    assert!(key.starts_with(created["prefix"].as_str().expect("prefix")));
    assert_eq!(created["scopes"], json!(["management", "realtime"]));
    assert_eq!(created["last_used_at"], Value::Null);

    // The listing never shows the key again, and the database holds only a hash.
    let listed = json_body(app.get(&keys_path(&w.a), Some(&w.admin_a.access)).await).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(listed[0].get("key").is_none(), "{listed}");
    assert!(!listed.to_string().contains(&key));
    let query = "SELECT key_hash FROM api_keys";
    let stored: String = match &app.state.db {
        adam::db::Db::Sqlite(pool) => sqlx::query_scalar(query).fetch_one(pool).await,
        adam::db::Db::Postgres(pool) => sqlx::query_scalar(query).fetch_one(pool).await,
    }
    .expect("row");
    assert_ne!(stored, key);
    assert!(!stored.contains(&key[8..]));

    // A management key acts as an admin of its own dealership only, and notes its use.
    let own = app
        .get(&format!("/v1/dealerships/{}", w.a), Some(&key))
        .await;
    assert_eq!(own.status(), 200);
    let other = app
        .get(&format!("/v1/dealerships/{}", w.b), Some(&key))
        .await;
    assert_eq!(other.status(), 404);
    let listed = json_body(app.get(&keys_path(&w.a), Some(&w.admin_a.access)).await).await;
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");

    // A key cannot mint keys.
    let minted = app
        .post(&keys_path(&w.a), Some(&key), json!({"name": "more"}))
        .await;
    assert_eq!(minted.status(), 403);
    assert_eq!(
        json_body(minted).await["error"]["code"],
        "api_key_not_allowed"
    );

    let id = created["id"].as_str().expect("id");
    let revoked = app
        .delete(
            &format!("{}/{id}", keys_path(&w.a)),
            Some(&w.admin_a.access),
        )
        .await;
    assert_eq!(revoked.status(), 204);
    let after = app
        .get(&format!("/v1/dealerships/{}", w.a), Some(&key))
        .await;
    assert_eq!(after.status(), 401, "a revoked key opens nothing");
    let again = app
        .delete(
            &format!("{}/{id}", keys_path(&w.a)),
            Some(&w.admin_a.access),
        )
        .await;
    assert_eq!(again.status(), 404);
    let listed = json_body(app.get(&keys_path(&w.a), Some(&w.admin_a.access)).await).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn keys_follow_roles_tenancy_and_scopes() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // Another dealership's admin sees nothing; a plain user may not manage keys.
    let resp = app
        .post(
            &keys_path(&w.a),
            Some(&w.admin_b.access),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    let resp = app
        .post(
            &keys_path(&w.a),
            Some(&w.user_a.access),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let resp = app.get(&keys_path(&w.a), Some(&w.user_a.access)).await;
    assert_eq!(resp.status(), 403);
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["admin"]}), "scopes"),
    ] {
        let resp = app
            .post(&keys_path(&w.a), Some(&w.admin_a.access), body.clone())
            .await;
        assert_eq!(resp.status(), 422, "{body}");
        assert_eq!(json_body(resp).await["error"]["field"], field, "{body}");
    }

    // The default scope is realtime: such a key is no management credential.
    let created = json_body(
        app.post(
            &keys_path(&w.a),
            Some(&w.root.access),
            json!({"name": "Agent"}),
        )
        .await,
    )
    .await;
    assert_eq!(created["scopes"], json!(["realtime"]));
    let key = created["key"].as_str().expect("key");
    let resp = app
        .get(&format!("/v1/dealerships/{}", w.a), Some(key))
        .await;
    assert_eq!(resp.status(), 401);

    // B's admin can neither list nor revoke A's key.
    let listed = app.get(&keys_path(&w.a), Some(&w.admin_b.access)).await;
    assert_eq!(listed.status(), 404);
    let id = created["id"].as_str().expect("id");
    let resp = app
        .delete(
            &format!("{}/{id}", keys_path(&w.b)),
            Some(&w.admin_b.access),
        )
        .await;
    assert_eq!(
        resp.status(),
        404,
        "revoking through another dealership's path"
    );
    let listed = json_body(app.get(&keys_path(&w.a), Some(&w.admin_a.access)).await).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn each_key_has_its_own_rate_limit() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.rate_limit.per_user_burst = 3;
        s.rate_limit.per_user_per_minute = 1;
    })
    .await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Limit Motors").await;
    let mut keys = Vec::new();
    for name in ["busy", "calm"] {
        let created = json_body(
            app.post(
                &keys_path(&d),
                Some(&root.access),
                json!({"name": name, "scopes": ["management"]}),
            )
            .await,
        )
        .await;
        keys.push(created["key"].as_str().expect("key").to_owned());
    }
    let path = format!("/v1/dealerships/{d}");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.get(&path, Some(&keys[0])).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(app.get(&path, Some(&keys[1])).await.status(), 200);
}
