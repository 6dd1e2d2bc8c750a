//! Several nodes: two real `adam` processes sharing PostgreSQL (`ADAM_TEST_DATABASE_URL`)
//! and Redis (`ADAM_TEST_REDIS_URL`). Without both the two-node tests print a notice and
//! pass, unless `ADAM_REQUIRE_CLUSTER_TESTS=1` (scripts/test.sh) makes that a failure.
//! `a_node_whose_redis_is_down_keeps_serving_and_counts_the_failures` needs neither.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, json_body, spawn_app_with};
use crate::nodes::{Node, OwnRedis, Pair, pair, pair_on, shared_services};
use crate::realtime::{ask, close_code, connect, event, read_until};

/// Asks `question` in a new session on `node`; whether the answer came from the cache.
async fn cache_hit(node: &Node, token: &str, dealership: &str, question: &str) -> bool {
    let (_, url) = node.new_session(token, dealership).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    ask(&mut ws, question).await;
    let items = read_until(&mut ws, "response.done").await;
    let done = &event(&items, "response.done")["response"];
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output_text"], "We open at eight.");
    done["metrics"]["cache_hit"].as_bool().expect("flag")
}

/// Semantic-cache entries `node` holds, for one dealership or (`None`) all.
async fn semantic_entries(node: &Node, token: &str, dealership: Option<&str>) -> u64 {
    let path = match dealership {
        Some(d) => format!("/v1/cache/stats?dealership_id={d}"),
        None => "/v1/cache/stats".to_owned(),
    };
    json_body(node.get(&path, token).await).await["semantic"]["entries"]
        .as_u64()
        .expect("entries")
}

#[tokio::test]
async fn an_admin_on_node_b_inspects_and_ends_a_session_living_on_node_a() {
    let Some(Pair {
        a,
        b,
        token,
        dealership,
        ..
    }) = pair(&[]).await
    else {
        return;
    };
    let (id, url) = a.new_session(&token, &dealership).await;
    let mut customer = connect(&url, None).await.expect("upgrade on a");
    read_until(&mut customer, "session.created").await;
    ask(&mut customer, "When are you open?").await;
    read_until(&mut customer, "response.done").await;

    // Node b lists and describes the live session, held by a.
    let listed = json_body(b.get("/v1/sessions", &token).await).await;
    let row = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["id"] == id.as_str())
        .cloned()
        .expect("listed on b");
    assert_eq!(row["node"], "a", "{row}");
    let detail = json_body(b.get(&format!("/v1/sessions/{id}"), &token).await).await;
    assert_eq!(detail["live"]["node"], "a", "{detail}");
    assert_eq!(detail["live"]["turns"], 1, "{detail}");

    // The admin ends it through b: the customer's socket on a closes normally.
    let ended = b
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(ended.status(), 204);
    assert_eq!(close_code(&mut customer).await, Some(1000));
    let recorded = eventually(Duration::from_secs(5), || async {
        let s = json_body(b.get(&format!("/v1/sessions/{id}"), &token).await).await;
        s["end_reason"] == "ended by admin" && s["live"].is_null() && s["node"].is_null()
    })
    .await;
    assert!(recorded, "the end is recorded and the directory forgets it");

    // A node that dies with a live session cannot be asked: b says so plainly.
    let (orphan, url) = a.new_session(&token, &dealership).await;
    let mut stranded = connect(&url, None).await.expect("upgrade on a");
    read_until(&mut stranded, "session.created").await;
    let known = eventually(Duration::from_secs(5), || async {
        let resp = b.get(&format!("/v1/sessions/{orphan}"), &token).await;
        resp.status() == 200 && json_body(resp).await["live"]["node"] == "a"
    })
    .await;
    assert!(known, "b sees the second session live on a");
    let mut a = a;
    a.child.kill().expect("kill a");
    a.child.wait().expect("a exited");
    let refused = b
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/{orphan}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(refused.status(), 504);
    let body = json_body(refused).await;
    assert_eq!(body["error"]["code"], "node_unreachable", "{body}");
    let metrics = b.metrics().await;
    assert!(
        metrics.contains(
            r#"adam_cluster_control_requests_total{command="end",outcome="no_answer"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_answer_cached_on_node_a_is_a_hit_on_node_b_until_cleared_anywhere() {
    let Some(Pair {
        a,
        b,
        token,
        dealership: demo,
        env,
    }) = pair(&[]).await
    else {
        return;
    };
    let question = "What are your opening hours?";
    assert!(!cache_hit(&a, &token, &demo, question).await);
    let replicated = eventually(Duration::from_secs(5), || async {
        semantic_entries(&b, &token, None).await == 1
    })
    .await;
    assert!(replicated, "b holds the answer a stored");
    assert!(
        cache_hit(&b, &token, &demo, "what are your opening hours").await,
        "b answers a similar question from the cache"
    );
    let metrics = b.metrics().await;
    assert!(
        metrics.contains(r#"adam_cache_lookups_total{level="semantic",result="hit"} 1"#),
        "{metrics}"
    );

    // Another dealership's customers never get the demo dealership's answers.
    let resp = a
        .send(
            reqwest::Method::POST,
            "/v1/dealerships",
            Some(&token),
            Some(json!({"name": "Bravo Cars"})),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let bravo = json_body(resp).await["id"].as_str().expect("id").to_owned();
    assert!(!cache_hit(&b, &token, &bravo, question).await);

    // A node that joins later loads the shared tier.
    let c = Node::start("c", &env).await;
    let loaded = eventually(Duration::from_secs(5), || async {
        semantic_entries(&c, &token, None).await == 2
    })
    .await;
    assert!(loaded, "c loaded both dealerships' answers at start");

    // Clearing one dealership's answers on b clears them on every node, and only them.
    let cleared = b
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/cache?dealership_id={demo}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(cleared.status(), 204);
    let forgotten = eventually(Duration::from_secs(5), || async {
        let mut left = Vec::new();
        for node in [&a, &c] {
            left.push(semantic_entries(node, &token, Some(&demo)).await);
            left.push(semantic_entries(node, &token, Some(&bravo)).await);
        }
        left == [0, 1, 0, 1]
    })
    .await;
    assert!(
        forgotten,
        "a and c forgot the demo answers b cleared, not bravo's"
    );
    assert!(!cache_hit(&a, &token, &demo, question).await);
    assert!(cache_hit(&a, &token, &bravo, question).await);
}

#[tokio::test]
async fn the_rate_limit_holds_across_both_nodes() {
    let Some(Pair { a, b, .. }) = pair(&[
        ("ADAM__RATE_LIMIT__PER_IP_PER_MINUTE", "1"),
        ("ADAM__RATE_LIMIT__PER_IP_BURST", "8"),
    ])
    .await
    else {
        return;
    };
    // The pair's setup took 2 of the 8 (a login on a, a listing on b): 6 are left for
    // both nodes together, whichever answers.
    let mut allowed = 0;
    let mut refused = None;
    for n in 0..20 {
        let node = if n % 2 == 0 { &a } else { &b };
        let resp = node.send(reqwest::Method::GET, "/v1/me", None, None).await;
        if resp.status() == 429 {
            refused = Some(resp);
            break;
        }
        assert_eq!(resp.status(), 401);
        allowed += 1;
    }
    let refused = refused.expect("the shared limit refused a request");
    assert_eq!(allowed, 6, "8 requests in all across both nodes");
    assert!(refused.headers().contains_key("retry-after"));
    let body = json_body(refused).await;
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Each node alone would still have allowed these: the other refuses too.
    for node in [&a, &b] {
        let resp = node.send(reqwest::Method::GET, "/v1/me", None, None).await;
        assert_eq!(resp.status(), 429);
    }
}

#[tokio::test]
async fn a_dealerships_session_limit_holds_across_both_nodes() {
    let Some(Pair {
        a,
        b,
        token,
        dealership,
        ..
    }) = pair(&[("ADAM__LIMITS__SIGNED_IN_SESSIONS", "1")]).await
    else {
        return;
    };
    let (_, url) = a.new_session(&token, &dealership).await;
    let mut held = connect(&url, None).await.expect("upgrade on a");
    read_until(&mut held, "session.created").await;
    // Node b counts the session node a holds.
    let refused = b.request_session(&token, &dealership).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(json_body(refused).await["error"]["code"], "quota_exceeded");
    drop(held);
    let freed = eventually(Duration::from_secs(10), || async {
        b.request_session(&token, &dealership).await.status() == 201
    })
    .await;
    assert!(freed, "the place is given back when the session on a ends");
}

#[tokio::test]
async fn while_node_a_drains_new_sessions_go_to_node_b() {
    let long_answer = "We are open from eight in the morning until six in the evening on \
                       weekdays, and on Saturdays from nine until one. Sundays we are closed.";
    let Some(Pair {
        a,
        b,
        token,
        dealership,
        ..
    }) = pair(&[
        ("ADAM__PROVIDERS__SIMULATED__ANSWER", long_answer),
        // About 5 s of speech: a is still draining while the test talks to it.
        ("ADAM__PROVIDERS__SIMULATED__TTS_MS_PER_CHAR", "35"),
        ("ADAM__SESSION__DRAIN_TIMEOUT_SECS", "20"),
    ])
    .await
    else {
        return;
    };
    let (_, url) = a.new_session(&token, &dealership).await;
    let mut on_a = connect(&url, None).await.expect("upgrade on a");
    ask(&mut on_a, "When are you open?").await;
    read_until(&mut on_a, "response.output_audio.started").await;

    a.terminate();
    let red = eventually(Duration::from_secs(5), || async {
        match a.http.get(a.url("/readyz")).send().await {
            Ok(r) => r.status() == 503,
            Err(_) => false,
        }
    })
    .await;
    assert!(
        red,
        "a's readiness turns red, so the load balancer stops sending to it"
    );
    let refused = a.request_session(&token, &dealership).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(json_body(refused).await["error"]["code"], "draining");

    // A new customer goes to b and is answered there.
    let (_, url) = b.new_session(&token, &dealership).await;
    let mut on_b = connect(&url, None).await.expect("upgrade on b");
    ask(&mut on_b, "When are you open?").await;
    let items = read_until(&mut on_b, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );

    // The customer on a hears the end of the answer and is told a is going away.
    let items = read_until(&mut on_a, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
    assert!(items.iter().any(|i| matches!(
        i,
        crate::realtime::Item::Event(e) if e["type"] == "session.closing"
    )));
    assert_eq!(close_code(&mut on_a).await, Some(1001));
    let mut a = a;
    let exited = eventually(Duration::from_secs(15), || {
        let done = matches!(a.child.try_wait(), Ok(Some(_)));
        async move { done }
    })
    .await;
    assert!(exited, "a exits after its drain");
}

#[tokio::test]
async fn conversations_go_on_while_redis_is_down_and_nodes_share_again_when_it_is_back() {
    if shared_services().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut redis = OwnRedis::start(port);
    redis.wait_ready().await;
    let Pair {
        a,
        b,
        token,
        dealership,
        ..
    } = pair_on(&redis.url(), &[]).await;
    let (id, url) = a.new_session(&token, &dealership).await;
    let mut customer = connect(&url, None).await.expect("upgrade on a");
    ask(&mut customer, "When are you open?").await;
    read_until(&mut customer, "response.done").await;

    redis.stop();
    // The conversation goes on, and new ones start on either node.
    ask(&mut customer, "And on Saturdays?").await;
    let items = read_until(&mut customer, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
    let (_, url) = b.new_session(&token, &dealership).await;
    let mut other = connect(&url, None)
        .await
        .expect("a ticket b issued without Redis");
    ask(&mut other, "When are you open?").await;
    read_until(&mut other, "response.done").await;
    for node in [&a, &b] {
        let resp = node.send(reqwest::Method::GET, "/v1/me", None, None).await;
        assert_eq!(
            resp.status(),
            401,
            "rate limits fall back to the node's own"
        );
        assert!(node.metrics().await.contains("adam_redis_up 0"));
    }

    let redis = OwnRedis::start(port);
    redis.wait_ready().await;
    // The restarted Redis is empty: a puts its session back into the directory when it
    // reconnects (long before the 10 s refresh), and b can end it again.
    let known = eventually(Duration::from_secs(30), || async {
        let resp = b.get(&format!("/v1/sessions/{id}"), &token).await;
        resp.status() == 200 && json_body(resp).await["live"]["node"] == "a"
    })
    .await;
    assert!(known, "the directory and a's listener are back");
    let ended = b
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(ended.status(), 204);
    assert_eq!(close_code(&mut customer).await, Some(1000));
}

#[tokio::test]
async fn a_node_whose_redis_is_down_keeps_serving_and_counts_the_failures() {
    // Port 1 on loopback: nothing listens, every Redis call fails at once.
    let app = spawn_app_with(|s| {
        s.cluster.redis_url = Some(secrecy::SecretString::from("redis://127.0.0.1:1"));
        s.rate_limit.per_ip_burst = 12;
        s.rate_limit.per_ip_per_minute = 1;
        let sim = &mut s.providers.simulated;
        sim.answer = "We open at eight.".into();
        sim.tts_ms_per_char = 8;
        sim.answer_first_token_ms = 20;
        sim.tts_first_byte_ms = 10;
    })
    .await;
    // Tickets fall back to this node, so a conversation works as on a single node.
    let (_, url) = crate::realtime::new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("upgrade");
    ask(&mut ws, "When are you open?").await;
    let items = read_until(&mut ws, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
    // Rate limits fall back to this node's own buckets: a 429 in time, never a 500.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let status = app.get("/v1/me", None).await.status().as_u16();
        statuses.push(status);
        if status == 429 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    let metrics = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"adam_redis_errors_total{op="rate_limit"} "#))
        .and_then(|n| n.parse().ok())
        .expect("rate-limit failures counted");
    assert!(failures >= statuses.len() as u64, "{metrics}");
    assert!(metrics.contains("adam_redis_up 0"), "{metrics}");
}

#[tokio::test]
async fn disabling_a_user_on_node_b_closes_their_conversation_on_node_a() {
    let Some(Pair {
        a,
        b,
        token,
        dealership,
        ..
    }) = pair(&[]).await
    else {
        return;
    };
    let created = b
        .send(
            reqwest::Method::POST,
            "/v1/users",
            Some(&token),
            Some(
                json!({"email": "ana@cluster.test", "password": "ana-password-1",
                        "role": "user", "dealership_id": dealership}),
            ),
        )
        .await;
    assert_eq!(created.status(), 201);
    let user_id = json_body(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let login = a
        .send(
            reqwest::Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "ana@cluster.test", "password": "ana-password-1"})),
        )
        .await;
    let ana = json_body(login).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, url) = a.new_session(&ana, &dealership).await;
    let mut customer = connect(&url, None).await.expect("upgrade on a");
    read_until(&mut customer, "session.created").await;
    // The admin's own conversation on a goes on.
    let (_, url) = a.new_session(&token, &dealership).await;
    let mut admin = connect(&url, None).await.expect("upgrade on a");
    read_until(&mut admin, "session.created").await;

    let disabled = b
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/users/{user_id}"),
            Some(&token),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match customer.next().await {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    assert_eq!(closed, Some((1000, "account disabled".to_owned())));
    ask(&mut admin, "When are you open?").await;
    read_until(&mut admin, "response.done").await;
}
