//! Account lifecycle and secrets: setting a password with an emailed link costs no bcrypt
//! unless the link is good, and is limited per client IP; link tokens never reach the log
//! or stay in sent outbox rows; logout ends its access token; disabling, deleting or a
//! password change ends the user's live conversations.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::email::{confirm, fast_mail, link_token, nth_mail, outbox_rows};
use crate::helpers::{
    PASSWORD, TestApp, eventually, json_body, metric, metrics, spawn_app, spawn_app_with,
};
use crate::realtime::{Ws, ask, connect, event, read_until};

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

/// A writer appending to a shared buffer.
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged at INFO and above in this test process from the first call on (the
/// process-wide subscriber: the server's tasks log on any thread).
fn captured_logs() -> String {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buffer = LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .try_init()
            .expect("no other test installs a log subscriber");
        buffer
    });
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

#[tokio::test]
async fn reset_link_tokens_stay_out_of_the_log_and_of_sent_outbox_rows() {
    captured_logs();
    let app = spawn_app_with(fast_mail).await;
    let token = user_with_reset_link(&app, "di@alpha.test").await;

    let sent = eventually(Duration::from_secs(20), || async {
        outbox_rows(&app).await.iter().all(|r| r.status == "sent")
    })
    .await;
    assert!(sent, "the reset email was sent");
    let rows = outbox_rows(&app).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.kind, "password_reset");
    for text in [&row.subject, &row.body_text, &row.body_html] {
        assert!(
            !text.contains(&token),
            "the sent row keeps no token: {text}"
        );
    }
    assert!(
        row.body_text.contains("set-password?token=[redacted]"),
        "{}",
        row.body_text
    );
    assert!(
        row.body_html.contains("token=[redacted]"),
        "{}",
        row.body_html
    );

    // The user received the link, and it works.
    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    app.login("di@alpha.test", NEW_PASSWORD).await;

    let logs = captured_logs();
    assert!(
        logs.contains(&row.id) && logs.contains("log transport"),
        "the email was logged: {logs}"
    );
    assert!(logs.contains("token=[redacted]"), "{logs}");
    assert!(
        !logs.contains(&token),
        "the token is not in the log: {logs}"
    );
}

#[tokio::test]
async fn production_refuses_to_start_with_the_log_email_transport() {
    let dir = std::env::temp_dir().join(format!("adam-prodmail-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adam"))
        .current_dir(&dir)
        .args(["--config", "none.toml", "serve"])
        .env("ADAM__ENVIRONMENT", "production")
        .env("ADAM__AUTH__JWT_SECRET", "k".repeat(40))
        .env("ADAM__DATA_DIR", &dir)
        .env("ADAM__HTTP__LISTEN", "127.0.0.1:0")
        .env("ADAM__METRICS__LISTEN", "127.0.0.1:0")
        .env_remove("ADAM__PROVIDERS__PROFILE")
        .env_remove("ADAM__EMAIL__TRANSPORT")
        .env_remove("ADAM__EMAIL__ALLOW_LOG_TRANSPORT_IN_PRODUCTION")
        .output()
        .expect("adam runs");
    let _ = std::fs::remove_dir_all(dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not start");
    assert!(err.contains("`email.transport`"), "{err}");
    assert!(err.contains("allow_log_transport_in_production"), "{err}");
}

#[tokio::test]
async fn rows_sent_with_their_token_before_the_upgrade_are_redacted() {
    use adam::db::outbox;

    let app = spawn_app_with(fast_mail).await;
    let due = app.clock.now() + 60;
    let secret = "Legacy0Token-abcdefghijklmnopqrstuvwxyz_123";
    let link = format!("http://x.test/admin/#/set-password?token={secret}&for=reset");
    let email = outbox::NewEmail {
        kind: "password_reset",
        dealership_id: None,
        to_addr: "old@adam.test".into(),
        reply_to: None,
        subject: "Reset your password".into(),
        body_text: format!("Open {link}"),
        body_html: format!("<a href=\"{link}\">{link}</a>"),
        session_id: None,
    };
    let id = outbox::insert(&app.state.db, &email, due)
        .await
        .expect("insert");
    // Sent the old way: the text kept as it was.
    let row = outbox::claim_next(&app.state.db, "legacy", due, due + 60)
        .await
        .expect("claim")
        .expect("due");
    let kept = outbox::Retained {
        subject: &row.subject,
        body_text: &row.body_text,
        body_html: &row.body_html,
    };
    assert!(
        outbox::mark_sent(&app.state.db, &id, "legacy", None, kept, due)
            .await
            .expect("mark sent")
    );
    // The worker's hourly housekeeping redacts it.
    app.clock.advance(3601);
    let redacted = eventually(Duration::from_secs(10), || async {
        let row = outbox::get(&app.state.db, &id)
            .await
            .expect("row")
            .expect("exists");
        !row.body_text.contains(secret) && !row.body_html.contains(secret)
    })
    .await;
    assert!(redacted, "the legacy row still holds its token");
    let row = outbox::get(&app.state.db, &id)
        .await
        .expect("row")
        .expect("exists");
    assert_eq!(row.status, "sent");
    assert!(row.body_text.contains("token=[redacted]&for=reset"));
}

async fn logout(app: &TestApp, access: Option<&str>, body: serde_json::Value) -> u16 {
    app.post("/v1/auth/logout", access, body)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn logout_ends_its_access_token_and_leaves_the_users_other_sign_ins_alone() {
    let app = spawn_app().await;
    let laptop = app.admin().await;
    let phone = app.admin().await;
    assert_eq!(app.get("/v1/me", Some(&laptop.access)).await.status(), 200);

    let body = json!({"refresh_token": laptop.refresh});
    assert_eq!(logout(&app, Some(&laptop.access), body).await, 204);
    let resp = app.get("/v1/me", Some(&laptop.access)).await;
    assert_eq!(resp.status(), 401, "the logged-out access token is refused");
    assert_eq!(json_body(resp).await["error"]["code"], "unauthorized");
    assert_eq!(app.refresh(&laptop.refresh).await.status(), 401);
    // The same user's other sign-in goes on.
    assert_eq!(app.get("/v1/me", Some(&phone.access)).await.status(), 200);
    assert_eq!(
        app.post("/v1/sessions", Some(&laptop.access), json!({}))
            .await
            .status(),
        401,
        "nor can it start a conversation"
    );

    // An access token alone logs out too; repeating it is harmless.
    assert_eq!(logout(&app, Some(&phone.access), json!({})).await, 204);
    assert_eq!(logout(&app, Some(&phone.access), json!({})).await, 204);
    assert_eq!(app.get("/v1/me", Some(&phone.access)).await.status(), 401);
    // A garbage bearer token is ignored, not an error.
    assert_eq!(logout(&app, Some("not-a-jwt"), json!({})).await, 204);

    // The deny-list forgets tokens once they have expired anyway (30 minutes + leeway).
    assert_eq!(app.state.revoked_tokens.prune(), 2);
    app.clock.advance(1800 + 5);
    assert_eq!(app.state.revoked_tokens.prune(), 0);
}

/// The Redis of `ADAM_TEST_REDIS_URL`, or `None` (the test is skipped, unless
/// `ADAM_REQUIRE_CLUSTER_TESTS=1` makes that a failure).
fn test_redis() -> Option<String> {
    let url = std::env::var("ADAM_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert_ne!(
            std::env::var("ADAM_REQUIRE_CLUSTER_TESTS").as_deref(),
            Ok("1"),
            "ADAM_REQUIRE_CLUSTER_TESTS=1 but ADAM_TEST_REDIS_URL is missing"
        );
        eprintln!("skipping: set ADAM_TEST_REDIS_URL (e.g. scripts/redis.sh start DIR PORT)");
    }
    url
}

#[tokio::test]
async fn with_shared_redis_a_logout_on_one_node_holds_on_the_other() {
    let Some(redis) = test_redis() else {
        return;
    };
    let namespace = format!("adam-test-{}", uuid::Uuid::new_v4().simple());
    let shared = move |s: &mut adam::settings::Settings| {
        s.cluster.redis_url = Some(secrecy::SecretString::from(redis.clone()));
        s.cluster.namespace = namespace.clone();
    };
    let a = spawn_app_with(shared.clone()).await;
    // The second node shares the first one's database.
    let database = a.state.settings.database.url.clone();
    let b = spawn_app_with(move |s| {
        shared(s);
        s.database.url = database;
    })
    .await;
    let signed_in = a.admin().await;
    let other = a.admin().await;
    assert_eq!(b.get("/v1/me", Some(&signed_in.access)).await.status(), 200);

    assert_eq!(logout(&a, Some(&signed_in.access), json!({})).await, 204);
    assert_eq!(a.get("/v1/me", Some(&signed_in.access)).await.status(), 401);
    assert_eq!(
        b.get("/v1/me", Some(&signed_in.access)).await.status(),
        401,
        "node b refuses a token logged out on node a"
    );
    assert_eq!(b.get("/v1/me", Some(&other.access)).await.status(), 200);
}

/// A server with quick simulated answers and a fast email worker.
async fn conversation_app() -> TestApp {
    spawn_app_with(|s| {
        fast_mail(s);
        let sim = &mut s.providers.simulated;
        sim.answer = "We open at eight.".into();
        sim.tts_ms_per_char = 8;
        sim.stt_delay_ms = 20;
        sim.answer_first_token_ms = 20;
        sim.answer_tokens_per_sec = 200.0;
        sim.tts_first_byte_ms = 10;
    })
    .await
}

/// Starts a conversation as the holder of `token`: its id and open socket.
async fn live_session(app: &TestApp, token: &str) -> (String, Ws) {
    let resp = app.post("/v1/sessions", Some(token), json!({})).await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        body["ws_url"].as_str().expect("ws_url")
    );
    let mut ws = connect(&url, None).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;
    (body["session_id"].as_str().expect("id").to_owned(), ws)
}

/// The close code and reason the socket gets within `within`; `None` if it stays open
/// (or drops without a close frame).
async fn closed_within(ws: &mut Ws, within: Duration) -> Option<(u16, String)> {
    let closed = async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Close(frame)) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(within, closed).await.ok().flatten()
}

/// The session's recorded end reason, once it is recorded (within 5 s).
async fn end_reason(app: &TestApp, token: &str, session_id: &str) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let path = format!("/v1/sessions/{session_id}");
        let body = json_body(app.get(&path, Some(token)).await).await;
        if let Some(reason) = body["end_reason"].as_str() {
            return Some(reason.to_owned());
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn disabling_a_user_closes_their_live_conversation_within_a_second() {
    let app = conversation_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    let ana_id = app
        .create_user(&root.access, "ana@alpha.test", "user", Some(&d))
        .await;
    app.create_user(&root.access, "ben@alpha.test", "user", Some(&d))
        .await;
    let ana = app.login("ana@alpha.test", PASSWORD).await;
    let ben = app.login("ben@alpha.test", PASSWORD).await;
    let (ana_session, mut ana_ws) = live_session(&app, &ana.access).await;
    let (_, mut ben_ws) = live_session(&app, &ben.access).await;

    let resp = app
        .patch(
            &format!("/v1/users/{ana_id}"),
            Some(&root.access),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        closed_within(&mut ana_ws, Duration::from_secs(1)).await,
        Some((1000, "account disabled".to_owned())),
        "the disabled user's conversation closes at once, saying why"
    );
    assert_eq!(
        end_reason(&app, &root.access, &ana_session)
            .await
            .as_deref(),
        Some("account disabled")
    );

    // Another user's conversation goes on.
    ask(&mut ben_ws, "When are you open?").await;
    let items = read_until(&mut ben_ws, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
    assert_eq!(app.state.realtime.registry.count().await, 1);
}

#[tokio::test]
async fn a_ticket_issued_before_an_account_was_disabled_opens_nothing() {
    let app = conversation_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    let ana_id = app
        .create_user(&root.access, "ana@alpha.test", "user", Some(&d))
        .await;
    let ana = app.login("ana@alpha.test", PASSWORD).await;
    let ticket = json_body(app.post("/v1/sessions", Some(&ana.access), json!({})).await).await;
    let resp = app
        .patch(
            &format!("/v1/users/{ana_id}"),
            Some(&root.access),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        ticket["ws_url"].as_str().expect("ws_url")
    );
    match connect(&url, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401);
        }
        other => panic!("expected 401, got {:?}", other.map(|_| "an open socket")),
    }
    assert_eq!(app.state.realtime.registry.count().await, 0);
}

#[tokio::test]
async fn deleting_a_user_or_changing_their_password_closes_their_conversations() {
    let app = conversation_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    let cy_id = app
        .create_user(&root.access, "cy@alpha.test", "user", Some(&d))
        .await;
    app.create_user(&root.access, "di@alpha.test", "user", Some(&d))
        .await;
    let eve_id = app
        .create_user(&root.access, "eve@alpha.test", "user", Some(&d))
        .await;
    app.create_user(&root.access, "fay@alpha.test", "user", Some(&d))
        .await;
    let cy = app.login("cy@alpha.test", PASSWORD).await;
    let di = app.login("di@alpha.test", PASSWORD).await;
    let eve = app.login("eve@alpha.test", PASSWORD).await;
    let fay = app.login("fay@alpha.test", PASSWORD).await;
    let (_, mut cy_ws) = live_session(&app, &cy.access).await;
    let (_, mut di_ws) = live_session(&app, &di.access).await;
    let (_, mut eve_ws) = live_session(&app, &eve.access).await;
    let (fay_session, mut fay_ws) = live_session(&app, &fay.access).await;
    let second = Duration::from_secs(1);

    // An admin deletes cy.
    let resp = app
        .delete(&format!("/v1/users/{cy_id}"), Some(&root.access))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        closed_within(&mut cy_ws, second).await,
        Some((1000, "account deleted".to_owned()))
    );

    // di changes their own password.
    let resp = app
        .patch(
            "/v1/me",
            Some(&di.access),
            json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        closed_within(&mut di_ws, second).await,
        Some((1000, "password changed".to_owned()))
    );

    // An admin sets eve's password.
    let resp = app
        .patch(
            &format!("/v1/users/{eve_id}"),
            Some(&root.access),
            json!({"password": "an admin-chosen password"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        closed_within(&mut eve_ws, second).await,
        Some((1000, "password changed".to_owned()))
    );

    // fay sets a new password with an emailed reset link.
    let resp = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"email": "fay@alpha.test"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let token = link_token(&nth_mail(&app, 1).await.text);
    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    assert_eq!(
        closed_within(&mut fay_ws, second).await,
        Some((1000, "password changed".to_owned()))
    );
    assert_eq!(
        end_reason(&app, &root.access, &fay_session)
            .await
            .as_deref(),
        Some("password changed")
    );
}

#[tokio::test]
async fn an_admin_changes_their_own_password_only_with_the_current_one() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    let boss_id = app
        .create_user(
            &root.access,
            "boss@alpha.test",
            "dealership_admin",
            Some(&d),
        )
        .await;
    let boss = app.login("boss@alpha.test", PASSWORD).await;
    // An access token alone (a stolen one, say) cannot set a new password.
    let resp = app
        .patch(
            &format!("/v1/users/{boss_id}"),
            Some(&boss.access),
            json!({"password": "taken over for good"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let body = json_body(resp).await;
    assert_eq!(body["error"]["code"], "own_password", "{body}");
    app.login("boss@alpha.test", PASSWORD).await;
    // With the current one, through /v1/me, it can.
    let resp = app
        .patch(
            "/v1/me",
            Some(&boss.access),
            json!({"current_password": PASSWORD, "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.login("boss@alpha.test", "a brand new secret").await;
}

#[tokio::test]
async fn a_dealership_admin_cannot_set_a_peer_admins_password_but_can_email_them_a_reset_link() {
    let app = spawn_app_with(fast_mail).await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    let other = app.create_dealership(&root.access, "Bravo Cars").await;
    app.create_user(
        &root.access,
        "boss@alpha.test",
        "dealership_admin",
        Some(&d),
    )
    .await;
    let peer_id = app
        .create_user(
            &root.access,
            "peer@alpha.test",
            "dealership_admin",
            Some(&d),
        )
        .await;
    let clerk_id = app
        .create_user(&root.access, "clerk@alpha.test", "user", Some(&d))
        .await;
    let outsider_id = app
        .create_user(
            &root.access,
            "admin@bravo.test",
            "dealership_admin",
            Some(&other),
        )
        .await;
    let boss = app.login("boss@alpha.test", PASSWORD).await;

    let resp = app
        .patch(
            &format!("/v1/users/{peer_id}"),
            Some(&boss.access),
            json!({"password": "chosen by the boss", "display_name": "Peer"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let body = json_body(resp).await;
    assert_eq!(body["error"]["code"], "peer_admin_password", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("/password-reset"), "{message}");
    // Nothing changed: the peer still signs in with their own password.
    app.login("peer@alpha.test", PASSWORD).await;
    assert_eq!(
        app.try_login("peer@alpha.test", "chosen by the boss")
            .await
            .status(),
        401
    );
    // A plain user's password the admin may still set, and a super_admin any admin's.
    let resp = app
        .patch(
            &format!("/v1/users/{clerk_id}"),
            Some(&boss.access),
            json!({"password": "set by the boss"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.login("clerk@alpha.test", "set by the boss").await;

    // The boss emails the peer a reset link instead; the peer chooses the password.
    let resp = app
        .post(
            &format!("/v1/users/{peer_id}/password-reset"),
            Some(&boss.access),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    assert!(json_body(resp).await["email_id"].is_string());
    let mail = nth_mail(&app, 1).await;
    assert_eq!(mail.to, "peer@alpha.test");
    assert!(mail.subject.contains("Reset"), "{}", mail.subject);
    app.login("peer@alpha.test", PASSWORD).await;
    let token = link_token(&mail.text);
    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    app.login("peer@alpha.test", NEW_PASSWORD).await;

    // Only over users the admin manages, and only for admins.
    let resp = app
        .post(
            &format!("/v1/users/{outsider_id}/password-reset"),
            Some(&boss.access),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    let clerk = app.login("clerk@alpha.test", "set by the boss").await;
    let resp = app
        .post(
            &format!("/v1/users/{peer_id}/password-reset"),
            Some(&clerk.access),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let resp = app
        .patch(
            &format!("/v1/users/{peer_id}"),
            Some(&root.access),
            json!({"password": "set by the super admin"}),
        )
        .await;
    assert_eq!(resp.status(), 200, "a super_admin may");
}
