//! Retention and privacy: each dealership's finished conversations are deleted once its
//! retention has passed (live ones never), deleting a conversation deletes everything
//! quoting it, an erasure request deletes every conversation that mentions a caller's email
//! address or phone number however written, and the session ticket carries the recording
//! notice.

use std::time::Duration;

use adam::db::outbox::{self, NewEmail};
use adam::db::{Tenant, gaps, new_id, sessions};
use adam::privacy::retention::Retention;
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, json_body, metric, spawn_app_with, world};
use crate::realtime::{ask, close_code, connect, new_session, read_until};

const DAY: i64 = 86_400;

/// Inserts a conversation of `dealership` started a minute before `ended` (or before now
/// while live), with one turn per `(customer, assistant)` pair.
async fn seed(
    app: &TestApp,
    dealership: &str,
    ended: Option<i64>,
    said: &[(&str, &str)],
) -> String {
    let id = new_id();
    let started = ended.unwrap_or_else(|| app.clock.now()) - 60;
    sessions::insert(
        &app.state.db,
        &sessions::Session {
            id: id.clone(),
            dealership_id: dealership.into(),
            user_id: None,
            transport: "websocket".into(),
            started_at: started,
            ended_at: ended,
            end_reason: ended.map(|_| "client_disconnected".into()),
        },
    )
    .await
    .expect("session stored");
    for (seq, (customer, assistant)) in said.iter().enumerate() {
        sessions::insert_turn(
            &app.state.db,
            &sessions::Turn {
                id: new_id(),
                session_id: id.clone(),
                seq: seq as i32,
                user_text: (*customer).into(),
                assistant_text: (*assistant).into(),
                interrupted: false,
                citations: "[]".into(),
                latency_ms: None,
                started_at: started + 10,
                status: "completed".into(),
                metrics: "{}".into(),
                unanswered: assistant.starts_with("I don't have"),
                usage: "{}".into(),
            },
        )
        .await
        .expect("turn stored");
    }
    id
}

/// Queues a lead email about `session` (or about no conversation) with `text` in its body.
async fn lead_row(app: &TestApp, dealership: &str, session: Option<&str>, text: &str) -> String {
    let email = NewEmail {
        kind: "lead",
        dealership_id: Some(dealership.into()),
        to_addr: "sales@dealer.test".into(),
        reply_to: None,
        subject: "New lead".into(),
        body_text: text.into(),
        body_html: format!("<p>{text}</p>"),
        session_id: session.map(str::to_owned),
    };
    outbox::insert(&app.state.db, &email, app.clock.now())
        .await
        .expect("lead queued")
}

async fn exists(app: &TestApp, session: &str) -> bool {
    sessions::get(&app.state.db, Tenant::All, None, session)
        .await
        .expect("read")
        .is_some()
}

async fn turn_count(app: &TestApp, session: &str) -> usize {
    sessions::turns(&app.state.db, Tenant::All, session)
        .await
        .expect("read")
        .len()
}

async fn outbox_has(app: &TestApp, id: &str) -> bool {
    outbox::get(&app.state.db, id)
        .await
        .expect("read")
        .is_some()
}

fn series(app: &TestApp, name: &str) -> f64 {
    metric(&app.state.metrics.render(), name).unwrap_or(-1.0)
}

/// Waits until a retention pass that started at `at` or later has finished.
async fn pass_after(app: &TestApp, at: i64) {
    let done = eventually(Duration::from_secs(10), || async {
        series(app, "adam_retention_last_pass_timestamp_seconds") >= at as f64
    })
    .await;
    assert!(done, "a retention pass ran");
}

async fn dealership_with(app: &TestApp, token: &str, name: &str, settings: Value) -> String {
    let id = app.create_dealership(token, name).await;
    let resp = app
        .patch(&format!("/v1/dealerships/{id}"), Some(token), settings)
        .await;
    assert_eq!(resp.status(), 200);
    id
}

fn simulated(s: &mut adam::settings::Settings) {
    s.providers.profile = adam_providers::registry::Profile::Simulated;
    let sim = &mut s.providers.simulated;
    sim.answer = "Someone will call you back today.".into();
    sim.tts_ms_per_char = 2;
    sim.stt_delay_ms = 20;
    sim.answer_first_token_ms = 20;
    sim.answer_tokens_per_sec = 400.0;
    sim.tts_first_byte_ms = 10;
}

#[tokio::test]
async fn each_dealership_keeps_finished_conversations_for_its_retention_and_live_ones_always() {
    let app = spawn_app_with(|s| {
        simulated(s);
        s.privacy.retention_days = 30;
        s.privacy.retention_interval_secs = 1;
    })
    .await;
    let root = app.admin().await;
    let token = root.access.as_str();
    let node_default = app.create_dealership(token, "Default Motors").await;
    let forever = dealership_with(&app, token, "Forever Cars", json!({"retention_days": 0})).await;
    let quarter =
        dealership_with(&app, token, "Quarter Autos", json!({"retention_days": 90})).await;
    let detail = json_body(
        app.get(&format!("/v1/dealerships/{quarter}"), Some(token))
            .await,
    )
    .await;
    assert_eq!(detail["retention_days"], 90);

    let now = app.clock.now();
    let old = seed(
        &app,
        &node_default,
        Some(now),
        &[("Do you have vans?", "Yes."), ("Red ones?", "Two.")],
    )
    .await;
    let old_lead = lead_row(&app, &node_default, Some(&old), "wants a red van").await;
    // Its node stopped without ending it, and no node holds it.
    let abandoned = seed(&app, &node_default, None, &[("Hello?", "Hi!")]).await;
    let kept_forever = seed(&app, &forever, Some(now), &[("Hours?", "Eight to six.")]).await;
    let kept_quarter = seed(&app, &quarter, Some(now), &[("Hours?", "Eight to six.")]).await;
    let resp = app
        .post(
            "/v1/sessions",
            Some(token),
            json!({"dealership_id": node_default}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let ticket = json_body(resp).await;
    let live = ticket["session_id"].as_str().expect("id").to_owned();
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        ticket["ws_url"].as_str().expect("url")
    );
    let mut ws = connect(&url, None).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;
    assert!(
        eventually(Duration::from_secs(5), || exists(&app, &live)).await,
        "the live session is recorded"
    );

    // Nothing ended 30 days ago yet.
    pass_after(&app, now).await;
    for id in [&old, &abandoned, &kept_forever, &kept_quarter, &live] {
        assert!(exists(&app, id).await, "{id} kept");
    }

    app.clock.advance(31 * DAY);
    let recent = seed(
        &app,
        &node_default,
        Some(app.clock.now()),
        &[("Hi", "Hello")],
    )
    .await;
    pass_after(&app, app.clock.now()).await;
    assert!(!exists(&app, &old).await, "ended 31 days ago, 30 kept");
    assert_eq!(
        turn_count(&app, &old).await,
        0,
        "its transcript went with it"
    );
    assert!(!outbox_has(&app, &old_lead).await, "and its lead email");
    assert!(!exists(&app, &abandoned).await, "held by no node");
    assert!(
        exists(&app, &live).await,
        "a live conversation is never deleted"
    );
    assert!(exists(&app, &kept_forever).await, "0 days: kept forever");
    assert!(exists(&app, &kept_quarter).await, "its own 90 days");
    assert!(exists(&app, &recent).await);
    assert_eq!(
        series(&app, r#"adam_retention_deleted_total{kind="sessions"}"#),
        2.0
    );
    assert_eq!(
        series(&app, r#"adam_retention_deleted_total{kind="turns"}"#),
        3.0
    );

    app.clock.advance(60 * DAY);
    pass_after(&app, app.clock.now()).await;
    assert!(!exists(&app, &kept_quarter).await, "91 days after");
    assert!(!exists(&app, &recent).await, "60 days after");
    assert!(exists(&app, &kept_forever).await);
    assert!(exists(&app, &live).await);
    assert_eq!(
        series(&app, r#"adam_retention_deleted_total{kind="sessions"}"#),
        4.0
    );
    drop(ws);
}

#[tokio::test]
async fn retention_passes_on_two_nodes_at_once_delete_each_conversation_once() {
    let app = spawn_app_with(|s| {
        s.privacy.retention_days = 1;
        s.privacy.retention_interval_secs = 604_800;
    })
    .await;
    let root = app.admin().await;
    let dealership = app.create_dealership(&root.access, "Busy Motors").await;
    let ended = app.clock.now();
    let mut ids = Vec::new();
    for i in 0..700 {
        let said: &[(&str, &str)] = if i % 2 == 0 {
            &[("Hours?", "Eight to six."), ("Sunday?", "Closed.")]
        } else {
            &[("Hours?", "Eight to six.")]
        };
        ids.push(seed(&app, &dealership, Some(ended), said).await);
    }
    app.clock.advance(2 * DAY);

    let (one, two) = (
        Retention::new(&prometheus::Registry::new()).expect("node one"),
        Retention::new(&prometheus::Registry::new()).expect("node two"),
    );
    let (a, b) = tokio::join!(one.run_once(&app.state), two.run_once(&app.state));
    let (a, b) = (a.expect("pass one"), b.expect("pass two"));
    // This node's own task may have run a pass meanwhile: what it deleted counts too.
    let own = |kind: &str| {
        series(
            &app,
            &format!("adam_retention_deleted_total{{kind=\"{kind}\"}}"),
        ) as u64
    };
    assert_eq!(a.sessions + b.sessions + own("sessions"), 700);
    assert_eq!(a.turns + b.turns + own("turns"), 1050);
    for id in &ids {
        assert!(!exists(&app, id).await);
    }
}

#[tokio::test]
async fn deleting_a_finished_conversation_deletes_its_transcript_gaps_and_lead_emails() {
    let app = spawn_app_with(|_| {}).await;
    let w = world(&app).await;
    let id = seed(
        &app,
        &w.a,
        Some(app.clock.now()),
        &[
            ("Do you sell boats?", "I don't have that information."),
            ("Call me at 555-010-2030", "Will do."),
        ],
    )
    .await;
    let lead = lead_row(&app, &w.a, Some(&id), "Phone: 555-010-2030").await;
    let other = seed(&app, &w.a, Some(app.clock.now()), &[("Hours?", "Eight.")]).await;
    let other_lead = lead_row(&app, &w.a, Some(&other), "Phone: 555-010-9999").await;
    let gaps = || async {
        gaps::unanswered(&app.state.db, Tenant::Only(&w.a), 10)
            .await
            .expect("gaps")
            .len()
    };
    assert_eq!(gaps().await, 1);

    let resp = app
        .delete(&format!("/v1/sessions/{id}"), Some(&w.admin_a.access))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(turn_count(&app, &id).await, 0);
    assert_eq!(gaps().await, 0, "the knowledge gap was one of its turns");
    assert!(!outbox_has(&app, &lead).await, "the lead email quoted it");
    assert!(exists(&app, &other).await);
    assert!(outbox_has(&app, &other_lead).await);
}

#[tokio::test]
async fn erasing_a_phone_number_deletes_every_conversation_mentioning_it_however_written() {
    let app = spawn_app_with(|_| {}).await;
    let w = world(&app).await;
    let now = app.clock.now();
    let resp = app
        .patch(
            &format!("/v1/dealerships/{}", w.a),
            Some(&w.admin_a.access),
            json!({"lead_email": "sales@alpha.test"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let written = seed(
        &app,
        &w.a,
        Some(now),
        &[
            ("Is the hybrid in stock?", "Yes, two."),
            ("Please call me back at (555) 010-2030.", "We will."),
        ],
    )
    .await;
    // A lead email is queued as it would be when the conversation ends.
    adam::leads::follow_up(&app.state.db, &app.state.email, &written).await;
    let lead = outbox::list(&app.state.db)
        .await
        .expect("outbox")
        .into_iter()
        .find(|e| e.kind == "lead")
        .expect("a lead email");
    assert_eq!(lead.session_id.as_deref(), Some(written.as_str()));
    let repeated = seed(
        &app,
        &w.a,
        Some(now),
        &[("Hi", "So that's 555.010.2030, is that right?")],
    )
    .await;
    let another_caller = seed(
        &app,
        &w.a,
        Some(now),
        &[("Call me on 555-010-2031", "Sure.")],
    )
    .await;
    let other_dealership = seed(
        &app,
        &w.b,
        Some(now),
        &[("My number is 555-010-2030", "Ok.")],
    )
    .await;

    let resp = app
        .post(
            "/v1/privacy/erase",
            Some(&w.admin_a.access),
            json!({"phone": "555-010-2030"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let erased = json_body(resp).await;
    assert_eq!(
        erased,
        json!({"sessions": 2, "live_sessions_ended": 0, "turns": 3, "lead_emails": 1})
    );
    assert!(!exists(&app, &written).await);
    assert!(!exists(&app, &repeated).await);
    assert!(!outbox_has(&app, &lead.id).await);
    assert!(
        exists(&app, &another_caller).await,
        "another caller's stays"
    );
    assert!(
        exists(&app, &other_dealership).await,
        "a dealership_admin erases in their own dealership"
    );

    // The audit trail says what was done, without the number.
    let log = json_body(app.get("/v1/audit-log", Some(&w.admin_a.access)).await).await;
    let entry = log
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "privacy.erase")
        .expect("audited")
        .clone();
    assert_eq!(entry["details"]["deleted"]["sessions"], 2);
    assert_eq!(
        entry["details"]["phone_sha256"].as_str().map(str::len),
        Some(64)
    );
    let text = entry.to_string();
    assert!(
        !text.contains("5550102030") && !text.contains("010-2030"),
        "{text}"
    );

    // A super_admin erases across every dealership.
    let resp = app
        .post(
            "/v1/privacy/erase",
            Some(&w.root.access),
            json!({"phone": "+1 (555) 010-2030"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["sessions"], 1);
    assert!(!exists(&app, &other_dealership).await);
    assert!(exists(&app, &another_caller).await);
}

#[tokio::test]
async fn erasing_an_email_address_finds_it_in_any_case_spoken_or_in_a_lead_email() {
    let app = spawn_app_with(|_| {}).await;
    let w = world(&app).await;
    let now = app.clock.now();
    let spoken = seed(
        &app,
        &w.a,
        Some(now),
        &[("You can write to jane dot doe at example dot com", "Noted.")],
    )
    .await;
    let shouted = seed(
        &app,
        &w.a,
        Some(now),
        &[("JANE.DOE@EXAMPLE.COM please", "Ok.")],
    )
    .await;
    let namesake = seed(&app, &w.a, Some(now), &[("john.doe@example.com", "Ok.")]).await;
    // A lead email whose conversation was deleted before leads were linked to theirs.
    let orphan = lead_row(&app, &w.a, None, "Email: Jane.Doe@example.com").await;
    let unrelated = lead_row(&app, &w.a, None, "Email: john.doe@example.com").await;

    let resp = app
        .post(
            "/v1/privacy/erase",
            Some(&w.root.access),
            json!({"email": "Jane.Doe@Example.com", "dealership_id": w.a}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_body(resp).await,
        json!({"sessions": 2, "live_sessions_ended": 0, "turns": 2, "lead_emails": 1})
    );
    assert!(!exists(&app, &spoken).await);
    assert!(!exists(&app, &shouted).await);
    assert!(!outbox_has(&app, &orphan).await);
    assert!(exists(&app, &namesake).await);
    assert!(outbox_has(&app, &unrelated).await);
}

#[tokio::test]
async fn an_erasure_request_is_checked_and_needs_an_admin() {
    let app = spawn_app_with(|_| {}).await;
    let w = world(&app).await;
    let admin = Some(w.admin_a.access.as_str());
    let cases = [
        (json!({}), 422, "email"),
        (json!({"email": "not an address"}), 422, "email"),
        (json!({"phone": "12-34"}), 422, "phone"),
        (json!({"phone": "call 555 010 2030"}), 422, "phone"),
        (
            json!({"phone": "555-010-2030", "name": "Jane"}),
            422,
            "name",
        ),
    ];
    for (body, status, field) in cases {
        let resp = app.post("/v1/privacy/erase", admin, body.clone()).await;
        assert_eq!(resp.status(), status, "{body}");
        let error = json_body(resp).await;
        assert_eq!(error["error"]["code"], "validation_failed", "{body}");
        assert_eq!(error["error"]["field"], field, "{body}");
    }
    let resp = app
        .client
        .post(app.url("/v1/privacy/erase"))
        .bearer_auth(&w.admin_a.access)
        .header("content-type", "application/json")
        .body("{\"phone\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["error"]["code"], "bad_request");
    let resp = app
        .request(reqwest::Method::POST, "/v1/privacy/erase", admin, None)
        .await;
    assert_eq!(resp.status(), 415);

    let phone = json!({"phone": "555-010-2030"});
    let resp = app
        .post("/v1/privacy/erase", Some(&w.user_a.access), phone.clone())
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        app.post("/v1/privacy/erase", None, phone).await.status(),
        401
    );
    let resp = app
        .post(
            "/v1/privacy/erase",
            Some(&w.root.access),
            json!({"phone": "555-010-2030", "dealership_id": new_id()}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json_body(resp).await["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_live_conversation_mentioning_the_number_is_ended_then_erased() {
    let app = spawn_app_with(simulated).await;
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;
    ask(&mut ws, "Please call me back at 555 010 2030.").await;
    read_until(&mut ws, "response.done").await;
    let saved = eventually(Duration::from_secs(5), || async {
        turn_count(&app, &id).await == 1
    })
    .await;
    assert!(saved, "the turn is stored");

    let root = app.admin().await;
    let resp = app
        .post(
            "/v1/privacy/erase",
            Some(&root.access),
            json!({"phone": "(555) 010-2030"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_body(resp).await,
        json!({"sessions": 1, "live_sessions_ended": 1, "turns": 1, "lead_emails": 0})
    );
    assert_eq!(close_code(&mut ws).await, Some(1000));
    assert!(
        eventually(Duration::from_secs(3), || async {
            app.state.realtime.registry.count().await == 0
        })
        .await
    );
    // What the ending session still wrote found no conversation to write to.
    app.state
        .realtime
        .flush_transcripts(Duration::from_secs(5))
        .await;
    assert!(!exists(&app, &id).await);
    assert_eq!(turn_count(&app, &id).await, 0);
    let leads = outbox::list(&app.state.db).await.expect("outbox");
    assert!(leads.iter().all(|e| e.kind != "lead"), "no lead about it");
}

#[tokio::test]
async fn the_session_ticket_carries_the_dealerships_recording_notice() {
    let app = spawn_app_with(|_| {}).await;
    let root = app.admin().await;
    let token = Some(root.access.as_str());
    let list = json_body(app.get("/v1/dealerships", token).await).await;
    let dealership = list[0]["id"].as_str().expect("demo").to_owned();
    let path = format!("/v1/dealerships/{dealership}");
    let notice = || async {
        let resp = app
            .post("/v1/sessions", token, json!({"dealership_id": dealership}))
            .await;
        assert_eq!(resp.status(), 201);
        json_body(resp).await["recording_notice"].clone()
    };
    let node_default = app.state.settings.privacy.recording_notice.clone();
    assert_eq!(notice().await, node_default.as_str());

    let resp = app
        .patch(
            &path,
            token,
            json!({"recording_notice": "Calls are recorded for quality.",
                   "allowed_origins": ["https://www.dealer.test"]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let key = json_body(resp).await["embed_key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert_eq!(notice().await, "Calls are recorded for quality.");
    // Anonymous visitors of the widget get it too.
    let resp = app
        .client
        .post(app.url("/v1/sessions"))
        .header("x-embed-key", key)
        .header("origin", "https://www.dealer.test")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 201);
    assert_eq!(
        json_body(resp).await["recording_notice"],
        "Calls are recorded for quality."
    );

    let resp = app
        .patch(&path, token, json!({"recording_notice": null}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(notice().await, node_default.as_str());
}
