//! The database going away mid-conversation and coming back: PostgreSQL cut by a proxy,
//! SQLite locked by another writer; transcript writes that are repeated.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Client, events, metrics, quick, root_and_dealership, value};
use crate::helpers::{TestApp, eventually, json_body};

/// A TCP proxy between Adam and PostgreSQL that the test can cut and restore.
struct DbProxy {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

impl DbProxy {
    /// A proxy to the server of `ADAM_TEST_DATABASE_URL`, when the suite runs on PostgreSQL.
    async fn for_test_database() -> Option<Self> {
        let admin = std::env::var("ADAM_TEST_DATABASE_URL").ok()?;
        let url = reqwest::Url::parse(&admin).expect("database url");
        let upstream = format!(
            "{}:{}",
            url.host_str().expect("host"),
            url.port().unwrap_or(5432)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (up, conns) = (up.clone(), conns.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    // Down: accept and hang up at once, as a proxy in front of a stopped
                    // server does.
                    if !up.load(Ordering::SeqCst) {
                        continue;
                    }
                    let upstream = upstream.clone();
                    let relay = tokio::spawn(async move {
                        if let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        }
                    });
                    conns.lock().expect("lock").push(relay.abort_handle());
                }
            }
        });
        Some(Self {
            addr,
            up,
            conns,
            task,
        })
    }

    /// `url` with the proxy as its host and port.
    fn route(&self, url: &str) -> String {
        let mut url = reqwest::Url::parse(url).expect("database url");
        url.set_ip_host(self.addr.ip()).expect("host");
        url.set_port(Some(self.addr.port())).expect("port");
        url.to_string()
    }

    /// Closes every connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for relay in self.conns.lock().expect("lock").drain(..) {
            relay.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Takes the database away from a running Adam, and gives it back.
enum Outage {
    /// PostgreSQL: the proxy cuts every connection and hangs up on new ones.
    Network(DbProxy),
    /// SQLite: another connection holds the write lock (a backup, an administrator's open
    /// transaction): reads work, every write fails with "database is locked".
    Locked(String, Option<sqlx::SqliteConnection>),
}

impl Outage {
    async fn begin(&mut self) {
        match self {
            Outage::Network(proxy) => proxy.cut(),
            Outage::Locked(url, holder) => {
                use sqlx::{ConnectOptions, Connection};
                let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .expect("url")
                    .busy_timeout(Duration::from_secs(20))
                    .connect()
                    .await
                    .expect("second connection");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .expect("write lock");
                let _ = conn.ping().await;
                *holder = Some(conn);
            }
        }
    }

    async fn end(&mut self) {
        match self {
            Outage::Network(proxy) => proxy.restore(),
            Outage::Locked(_, holder) => {
                use sqlx::Connection;
                let mut conn = holder.take().expect("lock held");
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("release");
                conn.close().await.expect("close");
            }
        }
    }
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let resp = app.get("/readyz", None).await;
    (resp.status().as_u16(), json_body(resp).await)
}

#[tokio::test]
async fn a_database_outage_mid_conversation_keeps_it_talking_turns_readiness_red_and_loses_no_transcript()
 {
    let proxy = DbProxy::for_test_database().await;
    let app = crate::helpers::spawn_app_with(|s| {
        quick(s);
        // SQLite writes fail soon after the lock is taken, not after 10 s.
        s.database.busy_timeout_ms = 300;
        s.knowledge.demo_dir = None;
        if let Some(proxy) = &proxy {
            s.database.url = proxy.route(&s.database.url);
        }
    })
    .await;
    let mut outage = match proxy {
        Some(proxy) => Outage::Network(proxy),
        None => Outage::Locked(app.state.settings.database.url.clone(), None),
    };
    let (token, dealership) = root_and_dealership(&app).await;
    let mut client = Client::open(&app, &token, &dealership).await;
    let questions = ["When do you open?", "And on Saturday?", "Where are you?"];
    client.ask(questions[0]).await;
    let items = client.until("response.done").await;
    let done = events(&items, "response.done").next().expect("done");
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(readiness(&app).await.0, 200);

    let outage_began = tokio::time::Instant::now();
    outage.begin().await;
    // The customer goes on talking, and is answered.
    for question in &questions[1..] {
        client.ask(question).await;
        let items = client.until("response.done").await;
        let done = events(&items, "response.done").next().expect("done");
        assert_eq!(done["response"]["status"], "completed", "{question}");
        assert_eq!(done["response"]["output_text"], "We open at eight.");
    }
    let red = eventually(Duration::from_secs(5), || async {
        readiness(&app).await
            == (
                503,
                json!({"status": "unavailable", "database": app.state.db.kind()}),
            )
    })
    .await;
    assert!(red, "readiness red: {:?}", readiness(&app).await);
    // What could not be written waits.
    let pending = value(&metrics(&app).await, "adam_transcript_writes_pending");
    assert!(pending >= 2.0, "{pending} writes waiting");
    let first = client.id.clone();
    let mut opened_during = None;
    match &outage {
        // Nothing can be read either: new conversations are refused, and say why.
        Outage::Network(_) => {
            let resp = app
                .post(
                    "/v1/sessions",
                    Some(&token),
                    json!({"dealership_id": dealership}),
                )
                .await;
            assert_eq!(resp.status(), 503);
            assert_eq!(json_body(resp).await["error"]["code"], "unavailable");
        }
        // Reads work: a new conversation starts and talks, and is saved later too.
        Outage::Locked(..) => {
            let mut other = Client::open(&app, &token, &dealership).await;
            other.ask(questions[0]).await;
            let items = other.until("response.done").await;
            let done = events(&items, "response.done").next().expect("done");
            assert_eq!(done["response"]["status"], "completed");
            opened_during = Some(other.id.clone());
        }
    }
    // The customer leaves while the database is still away.
    drop(client);
    assert!(
        eventually(Duration::from_secs(3), || async {
            value(&metrics(&app).await, "adam_live_sessions") == 0.0
        })
        .await
    );
    // The outage lasts longer than a few quick retries would cover (the writer used to
    // give up after six attempts, about 3 s).
    tokio::time::sleep_until(outage_began + Duration::from_secs(8)).await;
    outage.end().await;

    let green = eventually(Duration::from_secs(10), || async {
        readiness(&app).await.0 == 200
    })
    .await;
    assert!(green, "readiness green again: {:?}", readiness(&app).await);
    let written = eventually(Duration::from_secs(10), || async {
        value(&metrics(&app).await, "adam_transcript_writes_pending") == 0.0
    })
    .await;
    assert!(written, "{}", metrics(&app).await);
    let transcript = |id: String| {
        let (app, token) = (&app, &token);
        async move { json_body(app.get(&format!("/v1/sessions/{id}"), Some(token)).await).await }
    };
    let session = transcript(first).await;
    let turns = session["turns"].as_array().expect("turns");
    let said: Vec<&str> = turns
        .iter()
        .map(|t| t["user_text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(said, questions, "{session}");
    assert!(
        turns.iter().all(|t| t["status"] == "completed"),
        "{session}"
    );
    assert!(session["ended_at"].is_string(), "{session}");
    if let Some(id) = opened_during {
        let session = transcript(id).await;
        assert_eq!(session["turns"][0]["user_text"], questions[0], "{session}");
        assert!(session["ended_at"].is_string(), "{session}");
    }
    assert_eq!(
        value(&metrics(&app).await, "adam_transcript_writes_lost_total"),
        0.0
    );
}

/// The connection can break after the database committed a write and before its answer
/// arrived; the transcript writer then writes it again. The retry must land as a no-op,
/// not as a refusal that would stall or drop the writes behind it.
#[tokio::test]
async fn a_transcript_write_repeated_after_a_lost_answer_is_saved_once() {
    let app = crate::helpers::spawn_app().await;
    let (token, dealership) = root_and_dealership(&app).await;
    let id = uuid::Uuid::new_v4().to_string();
    let session = adam::db::sessions::Session {
        id: id.clone(),
        dealership_id: dealership,
        user_id: None,
        transport: "websocket".into(),
        started_at: app.clock.now(),
        ended_at: None,
        end_reason: None,
    };
    let turn = |row_id: String| adam::db::sessions::Turn {
        id: row_id,
        session_id: id.clone(),
        seq: 0,
        user_text: "When do you open?".into(),
        assistant_text: "We open at eight.".into(),
        interrupted: false,
        citations: "[]".into(),
        latency_ms: None,
        started_at: app.clock.now(),
        status: "completed".into(),
        metrics: "{}".into(),
        unanswered: false,
        usage: "{}".into(),
    };
    for _ in 0..2 {
        adam::db::sessions::insert(&app.state.db, &session)
            .await
            .expect("session written");
        // The writer gives every attempt a fresh row id.
        adam::db::sessions::insert_turn(&app.state.db, &turn(uuid::Uuid::new_v4().to_string()))
            .await
            .expect("turn written");
    }
    let saved = json_body(app.get(&format!("/v1/sessions/{id}"), Some(&token)).await).await;
    assert_eq!(saved["turns"].as_array().map(Vec::len), Some(1), "{saved}");
}
