//! `spawn_app()`: a real Adam on a random port with a fresh database (SQLite by
//! default, PostgreSQL when `ADAM_TEST_DATABASE_URL` names a server), an adjustable
//! clock, and HTTP helpers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adam::clock::Clock;
use adam::settings::Settings;
use adam::startup::Application;
use adam::state::AppState;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::Notify;

pub const ADMIN_EMAIL: &str = "root@adam.test";
pub const ADMIN_PASSWORD: &str = "root-password-1";
pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "test-secret-0123456789-0123456789-abcdef";

pub struct TestApp {
    pub base: String,
    /// `http://host:port` of the metrics listener, when `metrics.listen` is set.
    pub metrics_base: Option<String>,
    pub client: reqwest::Client,
    pub state: AppState,
    pub clock: Clock,
    pub shutdown: Arc<Notify>,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    data_dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A database URL for one test: a new SQLite file, or a new PostgreSQL database.
pub async fn fresh_database(data_dir: &std::path::Path) -> String {
    match std::env::var("ADAM_TEST_DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let name = format!("adam_t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to the test PostgreSQL server");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let _ = conn.close().await;
            let (base, _) = admin_url.rsplit_once('/').expect("url has a database");
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}", data_dir.join("adam.db").display()),
    }
}

pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    // The compiled-in default is the embedded models; tests choose the simulated providers
    // (tests that need the models set `embedded` again).
    settings.providers.profile = adam_providers::registry::Profile::Simulated;
    settings.http.listen = "127.0.0.1:0".parse().expect("addr");
    settings.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
    settings.bootstrap.admin_email = ADMIN_EMAIL.into();
    settings.bootstrap.admin_password = Some(SecretString::from(ADMIN_PASSWORD));
    settings.rate_limit.per_ip_per_minute = 100_000;
    settings.rate_limit.per_ip_burst = 100_000;
    settings.rate_limit.per_user_per_minute = 100_000;
    settings.rate_limit.per_user_burst = 100_000;
    // Tests open many sessions from one address; the quota tests lower these again.
    settings.limits.sessions_per_minute_per_ip = 10_000;
    settings.limits.turns_per_minute = 600;
    settings.database.max_connections = 5;
    settings.http.shutdown_grace_secs = 2;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = std::env::temp_dir().join(format!("adam-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).expect("temp dir");
    let mut settings = test_settings();
    settings.data_dir = data_dir.clone();
    settings.database.url = fresh_database(&data_dir).await;
    configure(&mut settings);
    settings.validate().expect("test settings are valid");
    let clock = Clock::adjustable();
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("application builds");
    let base = format!("http://{}", app.local_addr());
    let metrics_base = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let state = app.state();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        metrics_base,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        state,
        clock,
        shutdown,
        server,
        data_dir,
    }
}

/// A token pair from a successful login.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, path, token, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path, token, None)
            .await
    }

    pub async fn try_login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let resp = self.try_login(email, password).await;
        assert_eq!(resp.status(), 200, "login of {email} failed");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 1800);
        Tokens {
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    pub async fn admin(&self) -> Tokens {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Creates a dealership as `token` and returns its id.
    pub async fn create_dealership(&self, token: &str, name: &str) -> String {
        let resp = self
            .post("/v1/dealerships", Some(token), json!({"name": name}))
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("json");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Creates a user with [`PASSWORD`] as `token` and returns its id.
    pub async fn create_user(
        &self,
        token: &str,
        email: &str,
        role: &str,
        dealership: Option<&str>,
    ) -> String {
        let resp = self
            .post(
                "/v1/users",
                Some(token),
                json!({"email": email, "password": PASSWORD, "role": role, "dealership_id": dealership}),
            )
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }
}

/// Reads a JSON body, panicking with the text on failure.
pub async fn json_body(resp: reqwest::Response) -> Value {
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Two dealerships, each with an admin and a user, for tenancy tests.
pub struct World {
    pub root: Tokens,
    pub a: String,
    pub b: String,
    pub admin_a: Tokens,
    pub admin_a_id: String,
    pub admin_b: Tokens,
    pub user_a: Tokens,
    pub user_a_id: String,
    pub user_b_id: String,
    pub user_a2_id: String,
}

pub async fn world(app: &TestApp) -> World {
    let root = app.admin().await;
    let a = app.create_dealership(&root.access, "Alpha Autos").await;
    let b = app.create_dealership(&root.access, "Bravo Cars").await;
    let admin_a_id = app
        .create_user(
            &root.access,
            "admin@alpha.test",
            "dealership_admin",
            Some(&a),
        )
        .await;
    app.create_user(
        &root.access,
        "admin@bravo.test",
        "dealership_admin",
        Some(&b),
    )
    .await;
    let user_a_id = app
        .create_user(&root.access, "user@alpha.test", "user", Some(&a))
        .await;
    let user_a2_id = app
        .create_user(&root.access, "user2@alpha.test", "user", Some(&a))
        .await;
    let user_b_id = app
        .create_user(&root.access, "user@bravo.test", "user", Some(&b))
        .await;
    World {
        admin_a: app.login("admin@alpha.test", PASSWORD).await,
        admin_b: app.login("admin@bravo.test", PASSWORD).await,
        user_a: app.login("user@alpha.test", PASSWORD).await,
        root,
        a,
        b,
        admin_a_id,
        user_a_id,
        user_b_id,
        user_a2_id,
    }
}

/// Polls `check` until it returns true or the timeout passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's Prometheus text.
pub async fn metrics(app: &TestApp) -> String {
    app.get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics")
}

/// The value of one series in Prometheus text (labels included in `series`), if present.
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
