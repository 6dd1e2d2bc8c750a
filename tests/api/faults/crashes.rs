//! Components of live conversations crashing: 1,000 panics across 100 sessions, and the
//! test-only route that injects them.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use super::{Client, error_codes, events, metrics, root_and_dealership, value};
use crate::helpers::{TestApp, eventually};
use crate::realtime::Item;

fn restarts(metrics: &str, kind: &str) -> f64 {
    value(
        metrics,
        &format!("adam_actor_restarts_total{{kind=\"{kind}\"}}"),
    )
}

async fn inject(app: &TestApp, token: &str, session: &str, child: &str) -> reqwest::Response {
    app.post(
        &format!("/v1/sessions/{session}/faults"),
        Some(token),
        json!({"panic": child}),
    )
    .await
}

/// 100 live sessions, ten panics each, spread over all four components: every session
/// stays open and answers afterwards. A component restarts at most three times per 10 s
/// before its session is closed (docs/protocol.md); the schedule gives no session more
/// than three crashes of any one restartable component in the whole test, so the limit
/// is respected without relying on timing. Answer crashes (`turn`) never count towards
/// it.
#[tokio::test]
async fn a_thousand_injected_panics_across_a_hundred_live_sessions_lose_no_session() {
    const SESSIONS: usize = 100;
    let app = crate::helpers::spawn_app_with(|s| {
        s.testing.fault_injection = true;
        let sim = &mut s.providers.simulated;
        sim.answer = "We open at eight.".into();
        sim.tts_ms_per_char = 8;
        // Long enough that a panic sent after `response.created` finds the answer running.
        sim.answer_first_token_ms = 2_500;
        sim.answer_tokens_per_sec = 200.0;
        sim.tts_first_byte_ms = 10;
    })
    .await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut clients = Vec::new();
    for _ in 0..SESSIONS {
        clients.push(Client::open(&app, &token, &dealership).await);
    }
    let schedule = [
        "stt", "tts", "avatar", "turn", "stt", "tts", "avatar", "turn", "stt", "tts",
    ];
    let mut expected: HashMap<&str, f64> = HashMap::new();
    let started = std::time::Instant::now();
    for (round, child) in schedule.iter().enumerate() {
        if *child == "turn" {
            for c in clients.iter_mut() {
                c.ask("When do you open?").await;
            }
            for c in clients.iter_mut() {
                c.until("response.created").await;
            }
        }
        let sent = futures_util::future::join_all(
            clients.iter().map(|c| inject(&app, &token, &c.id, child)),
        )
        .await;
        assert!(sent.iter().all(|r| r.status() == 202), "round {round}");
        let want = expected.entry(child).or_default();
        *want += SESSIONS as f64;
        let want = *want;
        let restarted = eventually(Duration::from_secs(30), || async {
            restarts(&metrics(&app).await, child) >= want
        })
        .await;
        assert!(
            restarted,
            "round {round}: {child} restarts {} of {want}",
            restarts(&metrics(&app).await, child)
        );
        if *child == "turn" {
            for c in clients.iter_mut() {
                let items = c.until("response.done").await;
                let done = events(&items, "response.done").next().expect("done");
                assert_eq!(done["response"]["status"], "failed", "{done}");
                assert_eq!(error_codes(&items), ["turn_failed"]);
            }
        }
    }
    // Every session is still there, and answers.
    for c in clients.iter_mut() {
        c.ask("When do you open?").await;
    }
    for c in clients.iter_mut() {
        let items = c.until("response.done").await;
        let done = events(&items, "response.done").last().expect("done");
        assert_eq!(done["response"]["status"], "completed", "{}", c.id);
        assert_eq!(done["response"]["output_text"], "We open at eight.");
    }
    let m = metrics(&app).await;
    let injected: f64 = ["stt", "turn", "tts", "avatar"]
        .iter()
        .map(|k| restarts(&m, k))
        .sum();
    let live = value(&m, "adam_live_sessions");
    eprintln!(
        "panics injected and restarted: {injected} (stt {}, turn {}, tts {}, avatar {}); \
         live sessions {live} of {SESSIONS}; {:.1} s",
        restarts(&m, "stt"),
        restarts(&m, "turn"),
        restarts(&m, "tts"),
        restarts(&m, "avatar"),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(injected, 1_000.0);
    assert_eq!(live, SESSIONS as f64);
    for c in clients.iter_mut() {
        let late = c.drain();
        assert!(
            !late.iter().any(|i| matches!(i, Item::Closed(_))),
            "{} closed: {late:?}",
            c.id
        );
    }
}

#[tokio::test]
async fn the_fault_route_exists_only_when_enabled_and_only_for_super_admins() {
    let app = crate::helpers::spawn_app().await;
    let (token, dealership) = root_and_dealership(&app).await;
    let client = Client::open(&app, &token, &dealership).await;
    assert_eq!(inject(&app, &token, &client.id, "stt").await.status(), 404);

    let app = crate::helpers::spawn_app_with(|s| s.testing.fault_injection = true).await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut client = Client::open(&app, &token, &dealership).await;
    let world = crate::helpers::world(&app).await;
    assert_eq!(
        inject(&app, &world.admin_a.access, &client.id, "stt")
            .await
            .status(),
        403
    );
    assert_eq!(
        inject(&app, &token, "no-such-session", "stt")
            .await
            .status(),
        404
    );
    assert_eq!(inject(&app, &token, &client.id, "stt").await.status(), 202);
    let items = client.until("error").await;
    assert_eq!(error_codes(&items), ["stt_failed"]);
}
