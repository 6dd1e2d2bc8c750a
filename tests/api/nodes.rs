//! Processes for the two-node tests: `adam serve` nodes started with `ADAM__…` variables
//! on a shared PostgreSQL and Redis, pairs of them, and a redis-server of a test's own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, eventually, fresh_database, json_body,
};

/// The PostgreSQL and Redis URLs, or `None` (with a notice) when the tests must skip.
pub(crate) fn shared_services() -> Option<(String, String)> {
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
pub(crate) struct Node {
    pub(crate) base: String,
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) http: reqwest::Client,
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
    pub(crate) async fn start(name: &str, env: &[(String, String)]) -> Node {
        let dir = std::env::temp_dir().join(format!("adam-node-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("node dir");
        let log = std::fs::File::create(dir.join("stderr.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_adam"))
            .current_dir(&dir)
            .args(["--config", "none.toml", "serve"])
            .env("ADAM__DATA_DIR", &dir)
            .env("ADAM__CLUSTER__NODE_ID", name)
            // Without config.toml the default is the embedded models; nodes use the simulated.
            .env("ADAM__PROVIDERS__PROFILE", "simulated")
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

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn ws(&self, path: &str) -> String {
        format!("{}{path}", self.base.replace("http://", "ws://"))
    }

    pub(crate) async fn send(
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

    pub(crate) async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub(crate) async fn login(&self) -> String {
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
    pub(crate) async fn new_session(&self, token: &str, dealership: &str) -> (String, String) {
        let resp = self.request_session(token, dealership).await;
        let status = resp.status();
        let body = json_body(resp).await;
        assert_eq!(status, 201, "{body}");
        let id = body["session_id"].as_str().expect("id").to_owned();
        (id, self.ws(body["ws_url"].as_str().expect("ws_url")))
    }

    pub(crate) async fn request_session(&self, token: &str, dealership: &str) -> reqwest::Response {
        self.send(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(token),
            Some(json!({"dealership_id": dealership})),
        )
        .await
    }

    pub(crate) async fn metrics(&self) -> String {
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
    pub(crate) fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "SIGTERM sent");
    }
}

/// Nodes `a` and `b` on one fresh PostgreSQL database and one Redis namespace.
pub(crate) struct Pair {
    pub(crate) a: Node,
    pub(crate) b: Node,
    pub(crate) token: String,
    pub(crate) dealership: String,
    /// What the nodes were started with (a third node joins with it).
    pub(crate) env: Vec<(String, String)>,
}

pub(crate) async fn pair(extra: &[(&str, &str)]) -> Option<Pair> {
    // The database URL names the server; each pair gets a database of its own there.
    let (_, redis) = shared_services()?;
    Some(pair_on(&redis, extra).await)
}

/// Nodes `a` and `b` on a fresh database and the Redis at `redis`.
pub(crate) async fn pair_on(redis: &str, extra: &[(&str, &str)]) -> Pair {
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
        ("ADAM__LIMITS__SESSIONS_PER_MINUTE_PER_IP", "10000"),
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
pub(crate) struct OwnRedis {
    pub(crate) port: u16,
    pub(crate) server: Child,
}

impl OwnRedis {
    pub(crate) fn start(port: u16) -> OwnRedis {
        let server = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/redis.sh install)");
        OwnRedis { port, server }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) async fn wait_ready(&self) {
        let addr = format!("127.0.0.1:{}", self.port);
        let up = eventually(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
        assert!(up, "redis-server listens on {addr}");
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
