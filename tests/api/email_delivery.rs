//! Emails leaving through SMTP (a local sink) and Mailgun (a local fake of its API):
//! what arrives, what is retried with backoff, what fails for good, and that a queued
//! email survives a relay outage and a restart.

use std::time::Duration;

use adam::clock::Clock;
use adam::db::outbox::{self, OutboxEmail};
use adam::email::lead::{LeadContact, queue_lead};
use adam::email::{StartTls, TransportKind};
use adam::settings::Settings;
use adam::startup::Application;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use crate::email::{fast_mail, link_token, parse_mail};
use crate::helpers::{TestApp, eventually, json_body, spawn_app_with};
use crate::{fake_mailgun, fake_smtp};

const WAIT: Duration = Duration::from_secs(20);
const MAILGUN_KEY: &str = "key-0123456789abcdef";
const MAILGUN_DOMAIN: &str = "mg.adam.test";

fn smtp_to(port: u16) -> impl FnOnce(&mut Settings) {
    move |s| {
        fast_mail(s);
        s.email.transport = TransportKind::Smtp;
        s.email.smtp.host = "127.0.0.1".into();
        s.email.smtp.port = port;
        s.email.smtp.starttls = StartTls::None;
        s.email.send_timeout_secs = 5;
    }
}

fn mailgun_at(base_url: String, key: &'static str) -> impl FnOnce(&mut Settings) {
    move |s| {
        fast_mail(s);
        s.email.transport = TransportKind::Mailgun;
        s.email.mailgun.domain = MAILGUN_DOMAIN.into();
        s.email.mailgun.base_url = base_url;
        s.email.mailgun.api_key = Some(SecretString::from(key));
        s.email.send_timeout_secs = 5;
    }
}

async fn rows(app: &TestApp) -> Vec<OutboxEmail> {
    outbox::list(&app.state.db).await.expect("outbox")
}

/// Waits until the only outbox row satisfies `check`, and returns it.
async fn row_when(app: &TestApp, check: impl Fn(&OutboxEmail) -> bool) -> OutboxEmail {
    let ok = eventually(WAIT, || async {
        rows(app).await.first().is_some_and(&check)
    })
    .await;
    let rows = rows(app).await;
    assert!(ok, "outbox never got there: {rows:?}");
    rows[0].clone()
}

/// A dealership with a lead address and a session; queues one lead email.
async fn queue_a_lead(app: &TestApp) -> String {
    let root = app.admin().await;
    let resp = app
        .post(
            "/v1/dealerships",
            Some(&root.access),
            json!({"name": "Alpha Autos", "lead_email": "sales@alpha.test"}),
        )
        .await;
    let d = json_body(resp).await["id"].as_str().expect("id").to_owned();
    // A signed-in user's conversation: its lead email has the visitor's Reply-To.
    let me = json_body(app.get("/v1/me", Some(&root.access)).await).await;
    let session = adam::db::sessions::Session {
        id: adam::db::new_id(),
        dealership_id: d.clone(),
        user_id: me["id"].as_str().map(str::to_owned),
        transport: "webrtc".into(),
        started_at: app.clock.now(),
        ended_at: None,
        end_reason: None,
    };
    adam::db::sessions::insert(&app.state.db, &session)
        .await
        .expect("session");
    let contact = LeadContact {
        name: Some("Dana".into()),
        email: Some("dana@example.com".into()),
        ..LeadContact::default()
    };
    queue_lead(
        &app.state.email,
        &d,
        &session.id,
        "Asks for a call about financing.",
        &contact,
    )
    .await
    .expect("queued")
    .queued()
    .expect("lead address set")
    .to_owned()
}

#[tokio::test]
async fn smtp_delivers_both_parts_to_the_recipient() {
    let sink = fake_smtp::start().await;
    let app = spawn_app_with(smtp_to(sink.addr.port())).await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Alpha Autos").await;
    let resp = app
        .post(
            "/v1/users",
            Some(&root.access),
            json!({"email": "eve@alpha.test", "role": "user", "dealership_id": d, "invite": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);

    assert!(eventually(WAIT, || async { !sink.received().is_empty() }).await);
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.recipients, ["eve@alpha.test"]);
    assert_eq!(message.from, "no-reply@adam.local");
    assert_eq!(
        message.hello, "[127.0.0.1]",
        "greets with the public URL's host"
    );
    let mail = parse_mail(&message.data);
    assert_eq!(mail.to, "eve@alpha.test");
    assert_eq!(mail.subject, "You are invited to Alpha Autos on Adam");
    assert!(
        mail.text.contains("Choose your password here"),
        "{}",
        mail.text
    );
    assert!(
        mail.html.contains("<a href=") && mail.html.contains("Choose your password</a>"),
        "{}",
        mail.html
    );
    let token = link_token(&mail.text);
    assert!(mail.html.contains(&token));

    let row = row_when(&app, |r| r.status == "sent").await;
    assert_eq!(row.attempts, 1);
    assert_eq!(
        row.provider_ref.as_deref(),
        Some("2.0.0 Ok: queued as SINK1")
    );
    // The link in the relayed email works.
    let resp = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": "eve's own password"}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    app.login("eve@alpha.test", "eve's own password").await;
}

#[tokio::test]
async fn an_email_is_retried_while_the_relay_is_down_and_arrives_when_it_is_back() {
    let down = fake_smtp::closed_port().await;
    let app = spawn_app_with(smtp_to(down.port())).await;
    let id = queue_a_lead(&app).await;

    let row = row_when(&app, |r| r.attempts >= 1 && r.last_error.is_some()).await;
    assert_eq!(row.id, id);
    assert_eq!(row.status, "queued", "a failed attempt is not the end");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("smtp"),
        "{row:?}"
    );
    // Backoff: the next attempt is 15–30 s away (retry_base_secs = 30, jittered).
    let wait = row.next_attempt_at - app.clock.now();
    assert!((14..=30).contains(&wait), "next attempt in {wait} s");
    assert!(
        app.state
            .metrics
            .render()
            .contains("adam_emails_total{outcome=\"retried\"}")
    );

    let sink = fake_smtp::start_on(down).await;
    app.clock.advance(31);
    let row = row_when(&app, |r| r.status == "sent").await;
    assert_eq!(row.attempts, 2);
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].recipients, ["sales@alpha.test"]);
    let mail = parse_mail(&received[0].data);
    assert_eq!(mail.reply_to.as_deref(), Some("dana@example.com"));
    assert!(mail.text.contains("Asks for a call about financing."));
}

#[tokio::test]
async fn smtp_refusals_are_retried_when_transient_and_final_when_permanent() {
    let sink = fake_smtp::start().await;
    sink.refuse_next("451 4.3.0 Try again later");
    let app = spawn_app_with(smtp_to(sink.addr.port())).await;
    queue_a_lead(&app).await;
    let row = row_when(&app, |r| r.attempts == 1 && r.last_error.is_some()).await;
    assert_eq!(row.status, "queued");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("451"),
        "{row:?}"
    );
    sink.refuse_next("550 5.7.1 Relaying denied");
    app.clock.advance(31);
    let row = row_when(&app, |r| r.status == "failed").await;
    assert_eq!(row.attempts, 2, "a permanent refusal is not retried");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("550"),
        "{row:?}"
    );
    assert!(sink.received().is_empty());
    assert!(
        app.state
            .metrics
            .render()
            .contains("adam_emails_total{outcome=\"failed\"} 1")
    );
}

#[tokio::test]
async fn queued_emails_are_sent_after_a_restart() {
    let down = fake_smtp::closed_port().await;
    let mut first = spawn_app_with(smtp_to(down.port())).await;
    queue_a_lead(&first).await;
    row_when(&first, |r| r.attempts >= 1 && r.lease_id.is_none()).await;
    first.shutdown.notify_one();
    (&mut first.server)
        .await
        .expect("joined")
        .expect("stopped cleanly");

    // The same database, another process: the relay is back.
    let sink = fake_smtp::start_on(down).await;
    let settings = (*first.state.settings).clone();
    let clock = Clock::adjustable();
    clock.advance(3600);
    let second = Application::build_with_clock(settings, clock)
        .await
        .expect("second start");
    let state = second.state();
    let server = tokio::spawn(second.run_until_stopped());
    let sent = eventually(WAIT, || async {
        outbox::list(&state.db)
            .await
            .expect("outbox")
            .first()
            .is_some_and(|r| r.status == "sent")
    })
    .await;
    assert!(sent, "{:?}", outbox::list(&state.db).await);
    assert_eq!(sink.received().len(), 1);
    server.abort();
}

#[tokio::test]
async fn mailgun_gets_the_documented_form_with_basic_auth() {
    let mailgun = fake_mailgun::start(MAILGUN_KEY, MAILGUN_DOMAIN).await;
    let app = spawn_app_with(mailgun_at(mailgun.base_url.clone(), MAILGUN_KEY)).await;
    let id = queue_a_lead(&app).await;
    let row = row_when(&app, |r| r.status == "sent").await;
    assert_eq!(row.id, id);
    assert_eq!(
        row.provider_ref.as_deref(),
        Some("<20261205.1@mg.adam.test>")
    );
    let accepted = mailgun.accepted();
    assert_eq!(accepted.len(), 1);
    let form = &accepted[0];
    assert_eq!(form["from"], "Adam <no-reply@adam.local>");
    assert_eq!(form["to"], "sales@alpha.test");
    assert_eq!(form["h:Reply-To"], "dana@example.com");
    assert!(
        form["subject"].starts_with("New lead from Dana"),
        "{}",
        form["subject"]
    );
    assert!(form["text"].contains("Asks for a call about financing."));
    assert!(
        form["html"].contains("<h2") && form["html"].contains("Asks for a call about financing.")
    );
}

#[tokio::test]
async fn mailgun_429_and_5xx_are_retried_until_it_accepts() {
    let mailgun = fake_mailgun::start(MAILGUN_KEY, MAILGUN_DOMAIN).await;
    mailgun.fail_next(&[
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
    ]);
    let app = spawn_app_with(mailgun_at(mailgun.base_url.clone(), MAILGUN_KEY)).await;
    queue_a_lead(&app).await;
    for attempt in 1..=2 {
        let row = row_when(&app, |r| r.attempts == attempt && r.lease_id.is_none()).await;
        assert_eq!(row.status, "queued");
        let error = row.last_error.unwrap_or_default();
        assert!(
            error.contains(if attempt == 1 { "429" } else { "503" }),
            "{error}"
        );
        app.clock.advance(3600);
    }
    let row = row_when(&app, |r| r.status == "sent").await;
    assert_eq!(row.attempts, 3);
    assert_eq!(mailgun.requests(), 3);
    assert_eq!(mailgun.accepted().len(), 1);
    let metrics = app.state.metrics.render();
    assert!(
        metrics.contains("adam_emails_total{outcome=\"retried\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("adam_emails_total{outcome=\"sent\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn mailgun_refusals_fail_at_once_and_the_email_is_kept() {
    // A wrong key: 401 from the basic auth check.
    let mailgun = fake_mailgun::start(MAILGUN_KEY, MAILGUN_DOMAIN).await;
    let app = spawn_app_with(mailgun_at(mailgun.base_url.clone(), "key-wrong")).await;
    let id = queue_a_lead(&app).await;
    let row = row_when(&app, |r| r.status == "failed").await;
    assert_eq!((row.id.as_str(), row.attempts), (id.as_str(), 1));
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("401"),
        "{row:?}"
    );
    assert_eq!(mailgun.requests(), 1);
    assert!(mailgun.accepted().is_empty());
    assert!(
        row.body_text.contains("financing"),
        "the failed email is kept whole"
    );

    // Any other 4xx is final too.
    let app = spawn_app_with(mailgun_at(mailgun.base_url.clone(), MAILGUN_KEY)).await;
    mailgun.fail_next(&[StatusCode::BAD_REQUEST]);
    queue_a_lead(&app).await;
    let row = row_when(&app, |r| r.status == "failed").await;
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("400"),
        "{row:?}"
    );
    assert_eq!(mailgun.requests(), 2);
}
