//! Emails through the `log` transport (each email a `.eml` file in `data_dir/mail`):
//! invitations and password resets end to end with their one-time links, lead emails to
//! a dealership's lead address, and the outbox's one-sender-per-row claim.

use std::path::PathBuf;
use std::time::Duration;

use adam::db::outbox;
use adam::email::lead::{LeadContact, LeadEmail, queue_lead};
use adam::settings::Settings;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, eventually, json_body, spawn_app_with};

const NEW_PASSWORD: &str = "a brand new password";
const WAIT: Duration = Duration::from_secs(20);

/// A received email, decoded.
#[derive(Debug)]
pub struct Mail {
    pub to: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Decodes a MIME message with a text and an HTML part.
pub fn parse_mail(raw: &[u8]) -> Mail {
    let mail = mailparse::parse_mail(raw).expect("a MIME message");
    let header = |name: &str| {
        mail.headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
    };
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    let part = |mime: &str| {
        mail.subparts
            .iter()
            .find(|p| p.ctype.mimetype == mime)
            .unwrap_or_else(|| panic!("no {mime} part"))
            .get_body()
            .expect("decodable body")
    };
    Mail {
        to: header("To").expect("To"),
        reply_to: header("Reply-To"),
        subject: header("Subject").expect("Subject"),
        text: part("text/plain"),
        html: part("text/html"),
    }
}

/// The token of the set-password link in a text body.
pub fn link_token(text: &str) -> String {
    let (_, rest) = text
        .split_once("/admin/#/set-password?token=")
        .unwrap_or_else(|| panic!("no set-password link in {text}"));
    rest.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Test settings with a fast-polling email worker.
pub fn fast_mail(settings: &mut Settings) {
    settings.email.poll_interval_ms = 50;
}

fn mail_dir(app: &TestApp) -> PathBuf {
    app.state.settings.data_dir.join("mail")
}

/// The `.eml` files written so far, oldest first (their names are time-ordered ids).
fn mail_files(app: &TestApp) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(mail_dir(app))
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Waits for the `n`-th email (from 1) to be written, and decodes it.
pub(crate) async fn nth_mail(app: &TestApp, n: usize) -> Mail {
    assert!(
        eventually(WAIT, || async { mail_files(app).len() >= n }).await,
        "email {n} never written"
    );
    parse_mail(&std::fs::read(&mail_files(app)[n - 1]).expect("read eml"))
}

pub(crate) async fn outbox_rows(app: &TestApp) -> Vec<outbox::OutboxEmail> {
    outbox::list(&app.state.db).await.expect("outbox")
}

pub(crate) async fn confirm(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post(
        "/v1/auth/password-reset/confirm",
        None,
        json!({"token": token, "password": password}),
    )
    .await
}

async fn invite(app: &TestApp, token: &str, email: &str, dealership: &str) -> reqwest::Response {
    app.post(
        "/v1/users",
        Some(token),
        json!({"email": email, "role": "user", "dealership_id": dealership,
               "display_name": "Ana", "invite": true}),
    )
    .await
}

#[tokio::test]
async fn an_invited_user_sets_their_password_once_with_the_emailed_link() {
    let app = spawn_app_with(fast_mail).await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;

    // Exactly one of a password and an invitation.
    for body in [
        json!({"email": "x@alpha.test", "role": "user", "dealership_id": d}),
        json!({"email": "x@alpha.test", "role": "user", "dealership_id": d, "password": PASSWORD, "invite": true}),
    ] {
        let resp = app.post("/v1/users", Some(&root.access), body).await;
        assert_eq!(resp.status(), 422);
        assert_eq!(json_body(resp).await["error"]["field"], "password");
    }

    let resp = invite(&app, &root.access, "Ana@Alpha.test", &d).await;
    assert_eq!(resp.status(), 201);
    let user = json_body(resp).await;
    assert_eq!(user["email"], "ana@alpha.test");

    let mail = nth_mail(&app, 1).await;
    assert_eq!(mail.to, "ana@alpha.test");
    assert!(mail.subject.contains("Alpha Autos"), "{}", mail.subject);
    assert!(mail.text.contains("Hello Ana"), "{}", mail.text);
    let link_start = format!(
        "{}/admin/#/set-password?token=",
        app.state.settings.http.public_url
    );
    assert!(mail.text.contains(&link_start), "{}", mail.text);
    let token = link_token(&mail.text);
    assert_eq!(token.len(), 43);
    assert!(mail.html.contains(&token), "the HTML part has the link too");
    assert!(
        eventually(WAIT, || async {
            outbox_rows(&app).await[0].status == "sent"
        })
        .await
    );
    let row = &outbox_rows(&app).await[0];
    assert_eq!((row.kind.as_str(), row.attempts), ("invite", 1));
    assert!(!row.body_text.is_empty() && row.sent_at.is_some());

    // Nobody can sign in before the password is chosen.
    assert_eq!(
        app.try_login("ana@alpha.test", PASSWORD).await.status(),
        401
    );
    // A password against the rules is refused without spending the link.
    let resp = confirm(&app, &token, "short").await;
    assert_eq!(resp.status(), 422);
    assert_eq!(json_body(resp).await["error"]["field"], "password");

    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    app.login("ana@alpha.test", NEW_PASSWORD).await;

    let resp = confirm(&app, &token, "another password 2").await;
    assert_eq!(resp.status(), 400, "a link works once");
    let body = json_body(resp).await;
    assert_eq!(body["error"]["code"], "token_used");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already used")
    );
    app.login("ana@alpha.test", NEW_PASSWORD).await;

    let resp = app.get("/v1/audit-log", Some(&root.access)).await;
    let actions: Vec<Value> = json_body(resp)
        .await
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(
        actions.contains(&json!("user.invite_accept")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn expired_unknown_and_superseded_links_are_refused() {
    let app = spawn_app_with(fast_mail).await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    let resp = invite(&app, &root.access, "late@alpha.test", &d).await;
    let user_id = json_body(resp).await["id"].as_str().expect("id").to_owned();
    let first = link_token(&nth_mail(&app, 1).await.text);

    let resp = confirm(&app, "not-a-token-at-all", NEW_PASSWORD).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["error"]["code"], "token_invalid");

    // An admin sends the invitation again; both links work until one is used...
    let resp = app
        .post(
            &format!("/v1/users/{user_id}/invite"),
            Some(&root.access),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    assert!(json_body(resp).await["email_id"].is_string());
    let second = link_token(&nth_mail(&app, 2).await.text);
    assert_ne!(first, second);

    // ...and each lives `email.invite_ttl_secs` (72 hours).
    app.clock.advance(72 * 3600 + 1);
    let resp = confirm(&app, &first, NEW_PASSWORD).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["error"]["code"], "token_expired");

    let root = app.admin().await;
    let resp = app
        .post(
            &format!("/v1/users/{user_id}/invite"),
            Some(&root.access),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let third = link_token(&nth_mail(&app, 3).await.text);
    // A password an admin sets meanwhile retires the links sent before it.
    app.clock.advance(1);
    let resp = app
        .patch(
            &format!("/v1/users/{user_id}"),
            Some(&root.access),
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = confirm(&app, &third, NEW_PASSWORD).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["error"]["code"], "token_invalid");
    app.login("late@alpha.test", PASSWORD).await;
}

#[tokio::test]
async fn password_reset_answers_alike_for_any_address_and_the_link_resets_once() {
    let app = spawn_app_with(fast_mail).await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    app.create_user(&root.access, "bo@alpha.test", "user", Some(&d))
        .await;
    let session_one = app.login("bo@alpha.test", PASSWORD).await;
    let session_two = app.login("bo@alpha.test", PASSWORD).await;

    let request =
        |email: &'static str| app.post("/v1/auth/password-reset", None, json!({"email": email}));
    let unknown = request("nobody@alpha.test").await;
    let known = request("  BO@alpha.TEST ").await;
    assert_eq!(unknown.status(), 202);
    assert_eq!(known.status(), 202);
    let header = |r: &reqwest::Response, h: &str| r.headers().get(h).cloned();
    assert_eq!(
        header(&unknown, "content-type"),
        header(&known, "content-type")
    );
    let (unknown, known) = (
        unknown.bytes().await.expect("body"),
        known.bytes().await.expect("body"),
    );
    assert_eq!(unknown, known, "the answer reveals nothing");

    let mail = nth_mail(&app, 1).await;
    assert_eq!(mail.to, "bo@alpha.test");
    assert!(mail.subject.contains("Reset"), "{}", mail.subject);
    assert!(mail.text.contains("expires in 1 hour"), "{}", mail.text);
    let token = link_token(&mail.text);
    let rows = outbox_rows(&app).await;
    assert_eq!(rows.len(), 1, "nothing is sent for an unknown address");
    assert_eq!(rows[0].kind, "password_reset");

    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    for old in [&session_one.refresh, &session_two.refresh] {
        assert_eq!(
            app.refresh(old).await.status(),
            401,
            "old sessions are revoked"
        );
    }
    assert_eq!(app.try_login("bo@alpha.test", PASSWORD).await.status(), 401);
    app.login("bo@alpha.test", NEW_PASSWORD).await;
    let resp = confirm(&app, &token, "yet another password").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["error"]["code"], "token_used");

    // A reset link lives `email.reset_ttl_secs` (1 hour).
    assert_eq!(request("bo@alpha.test").await.status(), 202);
    let late = link_token(&nth_mail(&app, 2).await.text);
    app.clock.advance(3601);
    let resp = confirm(&app, &late, "yet another password").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["error"]["code"], "token_expired");
    app.login("bo@alpha.test", NEW_PASSWORD).await;
}

#[tokio::test]
async fn password_reset_requests_are_throttled_per_address_alike_for_unknown_ones() {
    let app = spawn_app_with(fast_mail).await;
    for email in ["root@adam.test", "nobody@adam.test"] {
        for _ in 0..3 {
            let resp = app
                .post("/v1/auth/password-reset", None, json!({"email": email}))
                .await;
            assert_eq!(resp.status(), 202);
        }
        let resp = app
            .post("/v1/auth/password-reset", None, json!({"email": email}))
            .await;
        assert_eq!(resp.status(), 429, "{email}");
        let wait: u64 = resp.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=3600).contains(&wait));
        assert_eq!(json_body(resp).await["error"]["code"], "rate_limited");
    }
    let resp = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"email": "other@adam.test"}),
        )
        .await;
    assert_eq!(resp.status(), 202, "another address is unaffected");
    let resp = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"email": "not an address"}),
        )
        .await;
    assert_eq!(resp.status(), 422);
    app.clock.advance(3600);
    let resp = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"email": "root@adam.test"}),
        )
        .await;
    assert_eq!(resp.status(), 202, "the window ends");
    // Only the real account's requests became emails.
    assert!(eventually(WAIT, || async { mail_files(&app).len() == 4 }).await);
    assert!(
        outbox_rows(&app)
            .await
            .iter()
            .all(|r| r.to_addr == "root@adam.test")
    );
}

#[tokio::test]
async fn a_lead_is_emailed_to_the_dealerships_lead_address() {
    let app = spawn_app_with(fast_mail).await;
    let root = app.admin().await;
    let resp = app
        .post(
            "/v1/dealerships",
            Some(&root.access),
            json!({"name": "Alpha <Autos>", "lead_email": "not-an-address"}),
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(json_body(resp).await["error"]["field"], "lead_email");
    let resp = app
        .post(
            "/v1/dealerships",
            Some(&root.access),
            json!({"name": "Alpha <Autos>"}),
        )
        .await;
    let d = json_body(resp).await;
    assert_eq!(d["lead_email"], Value::Null);
    let d = d["id"].as_str().expect("id").to_owned();
    let other = app.create_dealership(&root.access, "Bravo Cars").await;
    let session = adam::db::sessions::Session {
        id: adam::db::new_id(),
        dealership_id: d.clone(),
        user_id: None,
        transport: "websocket".into(),
        started_at: app.clock.now(),
        ended_at: None,
        end_reason: None,
    };
    adam::db::sessions::insert(&app.state.db, &session)
        .await
        .expect("session");
    let contact = LeadContact {
        name: Some("Cleo <b>Park</b>".into()),
        phone: Some("+1 555 0100".into()),
        email: Some("cleo@example.com".into()),
        callback: Some("tomorrow morning".into()),
        note: None,
    };
    let summary = "Wants to test drive the <script>EV</script> & get a trade-in quote.";

    // No lead address yet: nothing is queued.
    let queued = queue_lead(&app.state.email, &d, &session.id, summary, &contact).await;
    assert!(matches!(queued, Ok(LeadEmail::NoLeadAddress)), "{queued:?}");

    let resp = app
        .patch(
            &format!("/v1/dealerships/{d}"),
            Some(&root.access),
            json!({"lead_email": "sales@alpha.test"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["lead_email"], "sales@alpha.test");
    // Another dealership's session is not this dealership's lead.
    let queued = queue_lead(&app.state.email, &other, &session.id, summary, &contact).await;
    assert!(
        matches!(queued, Err(adam::email::EmailError::NotFound)),
        "{queued:?}"
    );

    let queued = queue_lead(&app.state.email, &d, &session.id, summary, &contact)
        .await
        .expect("queued");
    let id = queued.queued().expect("a lead address").to_owned();
    let mail = nth_mail(&app, 1).await;
    assert_eq!(mail.to, "sales@alpha.test");
    // An anonymous visitor's address is shown as unverified, never made the Reply-To.
    assert_eq!(mail.reply_to, None);
    assert!(
        mail.text.contains("NOT VERIFIED") && mail.text.contains("cleo@example.com (unverified)"),
        "{}",
        mail.text
    );
    assert!(
        mail.html.contains("not verified") && mail.html.contains("cleo@example.com (unverified)"),
        "{}",
        mail.html
    );
    assert!(
        mail.subject.contains("Cleo <b>Park</b>"),
        "{}",
        mail.subject
    );
    for part in [&mail.text, &mail.html] {
        assert!(
            part.contains("+1 555 0100") && part.contains("tomorrow morning"),
            "{part}"
        );
        assert!(
            part.contains(&format!("/admin/#/sessions/{}", session.id))
                || part.contains(&format!("sessions&#x2f;{}", session.id)),
            "{part}"
        );
    }
    assert!(mail.text.contains(summary), "{}", mail.text);
    assert!(
        mail.html
            .contains("&lt;script&gt;EV&lt;&#x2f;script&gt; &amp; get"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<script>") && !mail.html.contains("<b>Park"));
    let row = outbox::get(&app.state.db, &id)
        .await
        .expect("row")
        .expect("exists");
    assert_eq!(
        (row.kind.as_str(), row.dealership_id.as_deref()),
        ("lead", Some(d.as_str()))
    );

    // `null` stops leads.
    let resp = app
        .patch(
            &format!("/v1/dealerships/{d}"),
            Some(&root.access),
            json!({"lead_email": null}),
        )
        .await;
    assert_eq!(json_body(resp).await["lead_email"], Value::Null);
    let queued = queue_lead(&app.state.email, &d, &session.id, summary, &contact).await;
    assert!(matches!(queued, Ok(LeadEmail::NoLeadAddress)), "{queued:?}");
    assert!(
        eventually(WAIT, || async {
            app.state
                .metrics
                .render()
                .contains("adam_emails_total{outcome=\"sent\"} 1")
        })
        .await
    );
}

/// A session of dealership `d`, started by `user_id` (`None`: a visitor with the embed key).
async fn lead_session(app: &TestApp, d: &str, user_id: Option<String>) -> String {
    let session = adam::db::sessions::Session {
        id: adam::db::new_id(),
        dealership_id: d.to_owned(),
        user_id,
        transport: "websocket".into(),
        started_at: app.clock.now(),
        ended_at: None,
        end_reason: None,
    };
    adam::db::sessions::insert(&app.state.db, &session)
        .await
        .expect("session");
    session.id
}

#[tokio::test]
async fn a_signed_in_users_lead_keeps_the_reply_to() {
    let app = spawn_app_with(fast_mail).await;
    let root = app.admin().await;
    let resp = app
        .post(
            "/v1/dealerships",
            Some(&root.access),
            json!({"name": "Alpha Autos", "lead_email": "sales@alpha.test"}),
        )
        .await;
    let d = json_body(resp).await["id"].as_str().expect("id").to_owned();
    let me = json_body(app.get("/v1/me", Some(&root.access)).await).await;
    let session = lead_session(&app, &d, me["id"].as_str().map(str::to_owned)).await;
    let contact = LeadContact {
        email: Some("cleo@example.com".into()),
        ..LeadContact::default()
    };
    let queued = queue_lead(&app.state.email, &d, &session, "Test drive.", &contact)
        .await
        .expect("queued");
    assert!(queued.queued().is_some(), "{queued:?}");
    let mail = nth_mail(&app, 1).await;
    assert_eq!(mail.reply_to.as_deref(), Some("cleo@example.com"));
    assert!(!mail.text.contains("unverified"), "{}", mail.text);
}

#[tokio::test]
async fn lead_emails_are_throttled_per_dealership_and_hour() {
    let app = spawn_app_with(|s| {
        fast_mail(s);
        s.email.lead_max_per_hour = 2;
    })
    .await;
    let root = app.admin().await;
    let mut dealerships = Vec::new();
    for name in ["Alpha Autos", "Bravo Cars"] {
        let resp = app
            .post(
                "/v1/dealerships",
                Some(&root.access),
                json!({"name": name, "lead_email": format!("sales@{}.test", name.len())}),
            )
            .await;
        dealerships.push(json_body(resp).await["id"].as_str().expect("id").to_owned());
    }
    let (a, b) = (&dealerships[0], &dealerships[1]);
    let contact = LeadContact {
        phone: Some("555-0100".into()),
        ..LeadContact::default()
    };
    let lead = |d: String| {
        let app = &app;
        let contact = contact.clone();
        async move {
            let session = lead_session(app, &d, None).await;
            queue_lead(&app.state.email, &d, &session, "Call me.", &contact)
                .await
                .expect("no error")
        }
    };
    assert!(lead(a.clone()).await.queued().is_some());
    app.clock.advance(600);
    assert!(lead(a.clone()).await.queued().is_some());
    // A third within the hour is not emailed; another dealership is not affected.
    assert_eq!(lead(a.clone()).await, LeadEmail::Throttled);
    assert!(lead(b.clone()).await.queued().is_some());
    let to_a = |rows: &[outbox::OutboxEmail]| {
        rows.iter()
            .filter(|r| r.dealership_id.as_deref() == Some(a.as_str()))
            .count()
    };
    assert_eq!(
        to_a(&outbox_rows(&app).await),
        2,
        "the throttled lead queued nothing"
    );
    let metrics = app.state.metrics.render();
    assert!(
        metrics.contains("adam_lead_emails_total{outcome=\"throttled\"} 1")
            && metrics.contains("adam_lead_emails_total{outcome=\"queued\"} 3"),
        "{metrics}"
    );
    // An hour after the first, one more fits again.
    app.clock.advance(3000);
    assert!(lead(a.clone()).await.queued().is_some());
    assert_eq!(lead(a.clone()).await, LeadEmail::Throttled);
    assert_eq!(to_a(&outbox_rows(&app).await), 3);
}

#[tokio::test]
async fn of_many_senders_racing_for_a_due_email_exactly_one_claims_it() {
    let app = spawn_app_with(fast_mail).await;
    // Due an hour from now, so this app's own worker leaves it alone.
    let later = app.clock.now() + 3600;
    let email = outbox::NewEmail {
        kind: "lead",
        dealership_id: None,
        to_addr: "race@adam.test".into(),
        reply_to: None,
        subject: "race".into(),
        body_text: "race".into(),
        body_html: "<p>race</p>".into(),
        session_id: None,
    };
    let id = outbox::insert(&app.state.db, &email, later)
        .await
        .expect("insert");
    let claims = (0..8).map(|i| {
        let db = app.state.db.clone();
        async move { outbox::claim_next(&db, &format!("lease-{i}"), later, later + 60).await }
    });
    let claimed: Vec<_> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .filter_map(|r| r.expect("claim"))
        .collect();
    assert_eq!(claimed.len(), 1, "exactly one sender holds the email");
    let row = &claimed[0];
    assert_eq!(
        (row.id.as_str(), row.attempts, row.next_attempt_at),
        (id.as_str(), 1, later + 60)
    );
    // While leased it is nobody else's; when the lease runs out it is due again.
    assert!(
        outbox::claim_next(&app.state.db, "late", later + 59, later + 120)
            .await
            .expect("claim")
            .is_none()
    );
    let again = outbox::claim_next(&app.state.db, "late", later + 60, later + 120)
        .await
        .expect("claim")
        .expect("due again");
    assert_eq!(again.attempts, 2);
    // Only the current holder records the outcome.
    let holder = row.lease_id.as_deref().expect("lease");
    let retained = outbox::Retained {
        subject: &row.subject,
        body_text: &row.body_text,
        body_html: &row.body_html,
    };
    assert!(
        !outbox::mark_sent(&app.state.db, &id, holder, None, retained, later)
            .await
            .expect("update")
    );
    assert!(
        outbox::mark_sent(&app.state.db, &id, "late", Some("ok"), retained, later)
            .await
            .expect("update")
    );
}

#[tokio::test]
async fn a_conversation_where_the_customer_asks_for_a_call_back_emails_a_lead() {
    let app = spawn_app_with(|s| {
        fast_mail(s);
        let sim = &mut s.providers.simulated;
        sim.answer = "Of course, someone will call you.".into();
        sim.tts_ms_per_char = 2;
        sim.answer_first_token_ms = 5;
        sim.tts_first_byte_ms = 5;
    })
    .await;
    let root = app.admin().await;
    let list = json_body(app.get("/v1/dealerships", Some(&root.access)).await).await;
    let dealership = list[0]["id"].as_str().expect("demo dealership").to_owned();
    let resp = app
        .patch(
            &format!("/v1/dealerships/{dealership}"),
            Some(&root.access),
            json!({"lead_email": "sales@demo-motors.example"}),
        )
        .await;
    assert_eq!(resp.status(), 200);

    // A conversation without contact details is no lead.
    let (_, url) = crate::realtime::new_session(&app).await;
    let mut ws = crate::realtime::connect(&url, None).await.expect("ws");
    crate::realtime::ask(&mut ws, "What are your opening hours?").await;
    crate::realtime::read_until(&mut ws, "response.done").await;
    drop(ws);
    // The lead-bearing one: the customer asks for a call back and leaves a number.
    let (id, url) = crate::realtime::new_session(&app).await;
    let mut ws = crate::realtime::connect(&url, None).await.expect("ws");
    crate::realtime::ask(&mut ws, "Is the hybrid in stock?").await;
    crate::realtime::read_until(&mut ws, "response.done").await;
    crate::realtime::ask(
        &mut ws,
        "My name is Jane Doe. Please call me back tomorrow at 555-123-4567.",
    )
    .await;
    crate::realtime::read_until(&mut ws, "response.done").await;
    drop(ws);

    let mail = nth_mail(&app, 1).await;
    assert_eq!(mail.to, "sales@demo-motors.example");
    assert!(mail.text.contains("Jane Doe"), "{}", mail.text);
    assert!(mail.text.contains("555-123-4567"), "{}", mail.text);
    assert!(
        mail.text.contains("Is the hybrid in stock?"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains(&id),
        "the transcript link: {}",
        mail.text
    );
    // Both sessions have ended and been followed up; only one was a lead.
    let both_ended = eventually(WAIT, || async {
        let sessions = json_body(app.get("/v1/sessions", Some(&root.access)).await).await;
        sessions
            .as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|s| !s["ended_at"].is_null()))
    })
    .await;
    assert!(both_ended);
    assert_eq!(
        mail_files(&app).len(),
        1,
        "the conversation without details is no lead"
    );
}
