//! Several nodes: two real `adam` processes sharing PostgreSQL (`ADAM_TEST_DATABASE_URL`)
//! and Redis (`ADAM_TEST_REDIS_URL`). Without both the two-node tests print a notice and
//! pass, unless `ADAM_REQUIRE_CLUSTER_TESTS=1` (scripts/test.sh) makes that a failure.
//! The last test needs neither: a node whose Redis is down keeps serving.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, eventually, fresh_database, json_body, spawn_app_with,
};
use crate::realtime::{ask, close_code, connect, event, read_until};

/// The PostgreSQL and Redis URLs, or `None` (with a notice) when the tests must skip.
fn shared_services() -> Option<(String, String)> {
    let db = std::env::var("ADAM_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"));
    let redis = std::env::var("ADAM_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    match (db, redis) {
        (Some(db), Some(redis)) => Some((db, redis)),
        _ => {
            assert_ne!(
                std::env::var("ADAM_REQUIRE_CLUSTER_TESTS").as_deref(),
                Ok("1"),
                "ADAM_REQUIRE_CLUSTER_TESTS=1 but ADAM_TEST_DATABASE_URL (postgres://…) or \
                 ADAM_TEST_REDIS_URL is missing"
            );
            eprintln!(
                "skipping the two-node test: set ADAM_TEST_DATABASE_URL (PostgreSQL) and \
                 ADAM_TEST_REDIS_URL (e.g. scripts/redis.sh start DIR PORT)"
            );
            None
        }
    }
}

/// One `adam serve` process.
struct Node {
    base: String,
    child: Child,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Node {
    /// Starts a node and waits until it is ready.
    async fn start(name: &str, env: &[(String, String)]) -> Node {
        let dir = std::env::temp_dir().join(format!("adam-node-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("node dir");
        let log = std::fs::File::create(dir.join("stderr.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_adam"))
            .current_dir(&dir)
            .args(["--config", "none.toml", "serve"])
            .env("ADAM__DATA_DIR", &dir)
            .env("ADAM__CLUSTER__NODE_ID", name)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("adam starts");
        // The node prints the address it bound (port 0 picks a free one).
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let base = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .expect("join")
            .unwrap_or_else(|_| panic!("node {name} did not start: see {}", dir.display()));
        let node = Node {
            base,
            child,
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
        };
        let ready = eventually(Duration::from_secs(30), || async {
            node.http
                .get(node.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(ready, "node {name} became ready");
        node
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn ws(&self, path: &str) -> String {
        format!("{}{path}", self.base.replace("http://", "ws://"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn login(&self) -> String {
        let body = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
        let resp = self
            .send(reqwest::Method::POST, "/v1/auth/login", None, Some(body))
            .await;
        assert_eq!(resp.status(), 200);
        json_body(resp).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Asks this node for a session of `dealership`: (session id, ws URL on this node).
    async fn new_session(&self, token: &str, dealership: &str) -> (String, String) {
        let resp = self.request_session(token, dealership).await;
        let status = resp.status();
        let body = json_body(resp).await;
        assert_eq!(status, 201, "{body}");
        let id = body["session_id"].as_str().expect("id").to_owned();
        (id, self.ws(body["ws_url"].as_str().expect("ws_url")))
    }

    async fn request_session(&self, token: &str, dealership: &str) -> reqwest::Response {
        self.send(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(token),
            Some(json!({"dealership_id": dealership})),
        )
        .await
    }

    async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Sends SIGTERM, as an orchestrator draining the node would.
    fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "SIGTERM sent");
    }
}

/// Nodes `a` and `b` on one fresh PostgreSQL database and one Redis namespace.
struct Pair {
    a: Node,
    b: Node,
    token: String,
    dealership: String,
    /// What the nodes were started with (a third node joins with it).
    env: Vec<(String, String)>,
}

async fn pair(extra: &[(&str, &str)]) -> Option<Pair> {
    // The database URL names the server; each pair gets a database of its own there.
    let (_, redis) = shared_services()?;
    Some(pair_on(&redis, extra).await)
}

/// Nodes `a` and `b` on a fresh database and the Redis at `redis`.
async fn pair_on(redis: &str, extra: &[(&str, &str)]) -> Pair {
    let scratch = std::env::temp_dir();
    let database = fresh_database(&scratch).await;
    let namespace = format!("adam-test-{}", uuid::Uuid::new_v4().simple());
    let mut env: Vec<(String, String)> = [
        ("ADAM__DATABASE__URL", database.as_str()),
        ("ADAM__DATABASE__MAX_CONNECTIONS", "5"),
        ("ADAM__HTTP__LISTEN", "127.0.0.1:0"),
        ("ADAM__HTTP__SHUTDOWN_GRACE_SECS", "2"),
        ("ADAM__AUTH__JWT_SECRET", JWT_SECRET),
        ("ADAM__BOOTSTRAP__ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADAM__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("ADAM__CLUSTER__REDIS_URL", redis),
        ("ADAM__CLUSTER__NAMESPACE", namespace.as_str()),
        ("ADAM__CLUSTER__REQUEST_TIMEOUT_MS", "1000"),
        ("ADAM__LOG__FILTER", "warn,adam=info"),
        ("ADAM__WEBRTC__ENABLED", "false"),
        ("ADAM__PROVIDERS__PROFILE", "simulated"),
        ("ADAM__PROVIDERS__SIMULATED__ANSWER", "We open at eight."),
        ("ADAM__PROVIDERS__SIMULATED__TTS_MS_PER_CHAR", "8"),
        ("ADAM__PROVIDERS__SIMULATED__ANSWER_FIRST_TOKEN_MS", "20"),
        ("ADAM__PROVIDERS__SIMULATED__TTS_FIRST_BYTE_MS", "10"),
        ("ADAM__RATE_LIMIT__PER_IP_PER_MINUTE", "100000"),
        ("ADAM__RATE_LIMIT__PER_IP_BURST", "100000"),
        ("ADAM__RATE_LIMIT__PER_USER_PER_MINUTE", "100000"),
        ("ADAM__RATE_LIMIT__PER_USER_BURST", "100000"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push(((*key).to_owned(), (*value).to_owned()));
    }
    // One after the other: the first one bootstraps the empty database.
    let a = Node::start("a", &env).await;
    let b = Node::start("b", &env).await;
    let token = a.login().await;
    let list = json_body(b.get("/v1/dealerships", &token).await).await;
    let dealership = list[0]["id"].as_str().expect("demo dealership").to_owned();
    Pair {
        a,
        b,
        token,
        dealership,
        env,
    }
}

/// A redis-server of the test's own, so it can be stopped and started again.
struct OwnRedis {
    port: u16,
    server: Child,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let server = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/redis.sh install)");
        OwnRedis { port, server }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        let addr = format!("127.0.0.1:{}", self.port);
        let up = eventually(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
        assert!(up, "redis-server listens on {addr}");
    }

    fn stop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

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
