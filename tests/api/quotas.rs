//! Per-dealership usage limits and metering, end to end: concurrent sessions per
//! dealership (anonymous and signed-in apart), session starts per client IP, a
//! `response.create` storm, monthly caps, and the usage report.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, World, eventually, json_body, spawn_app_with, world};
use crate::realtime::{Item, Ws, ask, close_code, connect, next_item, read_until};

const ORIGIN: &str = "https://www.dealer.test";

async fn app() -> TestApp {
    spawn_app_with(|s| {
        let sim = &mut s.providers.simulated;
        sim.answer = "We are open until six.".into();
        sim.tts_ms_per_char = 2;
        sim.stt_delay_ms = 10;
        sim.answer_first_token_ms = 10;
        sim.answer_tokens_per_sec = 500.0;
        sim.tts_first_byte_ms = 5;
    })
    .await
}

/// Sets a dealership's limits (as the super_admin) and lets the widget embed it; returns
/// its public embed key.
async fn limit(app: &TestApp, w: &World, dealership: &str, limits: Value) -> String {
    let resp = app
        .patch(
            &format!("/v1/dealerships/{dealership}"),
            Some(&w.root.access),
            json!({"limits": limits, "allowed_origins": [ORIGIN]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    assert_eq!(body["limits"], limits, "limits stored as sent");
    body["embed_key"].as_str().expect("key").to_owned()
}

/// `POST /v1/sessions` as an anonymous visitor with the embed key.
async fn anonymous(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/sessions"))
        .header("x-embed-key", key)
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("sent")
}

async fn open(app: &TestApp, ticket: reqwest::Response) -> Ws {
    assert_eq!(ticket.status(), 201);
    let body = json_body(ticket).await;
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        body["ws_url"].as_str().expect("url")
    );
    let mut ws = connect(&url, Some(ORIGIN)).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;
    ws
}

async fn code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body = json_body(resp).await;
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn a_dealership_at_its_session_limit_is_refused_while_another_still_gets_sessions() {
    let app = app().await;
    let w = world(&app).await;
    let key_a = limit(&app, &w, &w.a, json!({"anonymous_sessions": 2})).await;
    let key_b = limit(&app, &w, &w.b, json!({})).await;

    let first = open(&app, anonymous(&app, &key_a).await).await;
    let _second = open(&app, anonymous(&app, &key_a).await).await;
    let refused = anonymous(&app, &key_a).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(code(refused).await, (429, "quota_exceeded".into()));

    // Another dealership, and signed-in users of the same one, are not affected.
    let _other = open(&app, anonymous(&app, &key_b).await).await;
    let signed_in = app
        .post("/v1/sessions", Some(&w.user_a.access), json!({}))
        .await;
    assert_eq!(signed_in.status(), 201);

    // A visitor leaving frees a place.
    drop(first);
    let freed = eventually(Duration::from_secs(5), || async {
        let resp = anonymous(&app, &key_a).await;
        resp.status() == 201
    })
    .await;
    assert!(freed, "a session is granted again once one ended");
}

#[tokio::test]
async fn one_client_starting_sessions_too_fast_is_slowed_down() {
    let app = app().await;
    let w = world(&app).await;
    let key_a = limit(&app, &w, &w.a, json!({"sessions_per_minute_per_ip": 2})).await;
    let key_b = limit(&app, &w, &w.b, json!({})).await;
    for _ in 0..2 {
        assert_eq!(anonymous(&app, &key_a).await.status(), 201);
    }
    let refused = anonymous(&app, &key_a).await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "retry after {retry}");
    assert_eq!(code(refused).await, (429, "rate_limited".into()));
    // The same client may still talk to another dealership.
    assert_eq!(anonymous(&app, &key_b).await.status(), 201);
}

#[tokio::test]
async fn a_response_create_storm_gets_rate_limited_then_closed_and_stores_nothing_more() {
    let app = app().await;
    let w = world(&app).await;
    let key = limit(&app, &w, &w.a, json!({"turns_per_minute": 3})).await;
    let ticket = anonymous(&app, &key).await;
    let ticket_body = json_body(ticket).await;
    let id = ticket_body["session_id"].as_str().expect("id").to_owned();
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        ticket_body["ws_url"].as_str().expect("url")
    );
    let mut ws = connect(&url, Some(ORIGIN)).await.expect("upgrade");
    for n in 0..40 {
        ask(&mut ws, &format!("question number {n}")).await;
    }
    let mut limited = 0;
    let code = loop {
        match next_item(&mut ws).await {
            Item::Event(e) if e["type"] == "error" && e["error"]["code"] == "rate_limited" => {
                limited += 1;
            }
            Item::Closed(code) => break code,
            _ => {}
        }
    };
    assert_eq!(code, Some(1008), "the storm ends the session");
    assert_eq!(limited, 3, "refusals before the close");

    let path = format!("/v1/sessions/{id}");
    let ended = eventually(Duration::from_secs(5), || async {
        json_body(app.get(&path, Some(&w.root.access)).await).await["ended_at"].is_string()
    })
    .await;
    assert!(ended);
    let body = json_body(app.get(&path, Some(&w.root.access)).await).await;
    assert_eq!(body["end_reason"], "turn rate");
    let turns = body["turns"].as_array().expect("turns");
    assert_eq!(
        turns.len(),
        3,
        "only the allowed turns are stored: {turns:?}"
    );
}

#[tokio::test]
async fn usage_is_metered_per_dealership_and_a_monthly_cap_ends_new_sessions() {
    let app = app().await;
    let w = world(&app).await;
    let key = limit(&app, &w, &w.a, json!({"monthly_turns": 1})).await;
    // Two tickets while the month is still empty.
    let first = anonymous(&app, &key).await;
    let second = anonymous(&app, &key).await;
    assert_eq!(second.status(), 201);
    let second_body = json_body(second).await;

    let mut ws = open(&app, first).await;
    ask(&mut ws, "When do you close?").await;
    let items = read_until(&mut ws, "response.done").await;
    let done = match items.last() {
        Some(Item::Event(e)) => e.clone(),
        _ => unreachable!(),
    };
    assert!(done["response"]["usage"]["tts_characters"].as_u64() > Some(10));
    drop(ws);

    // The report shows the turn under dealership A only.
    let counted = eventually(Duration::from_secs(5), || async {
        let report = json_body(app.get("/v1/usage", Some(&w.admin_a.access)).await).await;
        report["dealerships"][0]["month_turns"] == 1
    })
    .await;
    assert!(counted, "the turn is metered");
    let report = json_body(app.get("/v1/usage", Some(&w.admin_a.access)).await).await;
    let mine = report["dealerships"].as_array().expect("list");
    assert_eq!(mine.len(), 1, "an admin sees their own dealership only");
    assert_eq!(mine[0]["dealership_id"], w.a.as_str());
    assert_eq!(mine[0]["monthly_turns_cap"], 1);
    let totals = &mine[0]["totals"];
    assert_eq!(totals["turns"], 1);
    assert!(totals["sessions"].as_i64() >= Some(1));
    assert_eq!(
        totals["tts_characters"],
        done["response"]["usage"]["tts_characters"]
    );
    assert_eq!(mine[0]["days"].as_array().map(Vec::len), Some(1));
    let all = json_body(app.get("/v1/usage", Some(&w.root.access)).await).await;
    let b = all["dealerships"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["dealership_id"] == w.b.as_str())
        .expect("dealership b listed")
        .clone();
    assert_eq!(b["totals"]["turns"], 0);

    // The cap is reached: no new session, with a clear error …
    assert_eq!(
        code(anonymous(&app, &key).await).await,
        (429, "usage_cap_reached".into())
    );
    // … and a ticket granted before it says so aloud, then closes.
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        second_body["ws_url"].as_str().expect("url")
    );
    let mut late = connect(&url, Some(ORIGIN)).await.expect("upgrade");
    let items = read_until(&mut late, "response.done").await;
    assert!(items.iter().any(|i| matches!(i, Item::Audio(_))), "spoken");
    let said = match items.last() {
        Some(Item::Event(e)) => e["response"]["output_text"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        _ => unreachable!(),
    };
    assert!(said.contains("busy"), "{said}");
    assert_eq!(close_code(&mut late).await, Some(1013));

    let bad = app
        .get("/v1/usage?from=2026-13-01", Some(&w.root.access))
        .await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn only_a_super_admin_changes_limits_and_bad_values_are_refused() {
    let app = app().await;
    let w = world(&app).await;
    let path = format!("/v1/dealerships/{}", w.a);
    let own = app
        .patch(
            &path,
            Some(&w.admin_a.access),
            json!({"limits": {"anonymous_sessions": 100000}}),
        )
        .await;
    assert_eq!(own.status(), 403);
    for bad in [
        json!({"limits": {"turns_per_minute": 0}}),
        json!({"limits": {"no_such_limit": 1}}),
        json!({"limits": {"anonymous_sessions": -1}}),
    ] {
        let resp = app.patch(&path, Some(&w.root.access), bad.clone()).await;
        assert_eq!(resp.status(), 422, "{bad}");
    }
    let body = json_body(app.get(&path, Some(&w.admin_a.access)).await).await;
    assert_eq!(
        body["limits"],
        json!({}),
        "nothing stored by refused changes"
    );
}
