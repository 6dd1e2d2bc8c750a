//! Typed settings: `config.toml` < `ADAM__SECTION__KEY` environment < CLI flags,
//! validated at startup with messages that name the key at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use adam_providers::cloud::keys;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Everything Adam can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `development` or `production`.
    pub environment: Environment,
    /// Folder for the SQLite file, generated keys and uploads.
    pub data_dir: PathBuf,
    /// HTTP listener and browser-facing policy.
    pub http: HttpSettings,
    /// Database connection.
    pub database: DatabaseSettings,
    /// Tokens and login throttling.
    pub auth: AuthSettings,
    /// Request rate limits.
    pub rate_limit: RateLimitSettings,
    /// Logging.
    pub log: LogSettings,
    /// First-run bootstrap.
    pub bootstrap: BootstrapSettings,
    /// Live conversations.
    pub session: SessionSettings,
    /// Speech, language and avatar providers.
    pub providers: ProviderSettings,
    /// Shared caches.
    pub cache: CacheSettings,
    /// Documents, chunking, vector store and retrieval.
    pub knowledge: KnowledgeSettings,
    /// The WebRTC transport.
    pub webrtc: WebRtcSettings,
    /// The browser client and admin pages.
    pub web: WebSettings,
    /// Outgoing email.
    pub email: crate::email::EmailSettings,
    /// Test-only switches, all off by default.
    pub testing: TestingSettings,
    /// Several nodes sharing Redis.
    pub cluster: ClusterSettings,
    /// Per-dealership usage limits (node defaults).
    pub limits: crate::limits::LimitSettings,
    /// Transcript retention and the recording notice (node defaults).
    pub privacy: crate::privacy::PrivacySettings,
    /// Where Prometheus reads `/metrics`, and the token it needs.
    pub metrics: MetricsSettings,
}

/// `[metrics]`: `/metrics` on its own listener (kept off the public one) and/or behind a
/// bearer token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of a listener serving only `GET /metrics` (port 0 picks a free one); the
    /// main listener then answers 404 for `/metrics`. Unset: `/metrics` is served by the
    /// main listener (loopback-only by default).
    pub listen: Option<SocketAddr>,
    /// Bearer token `/metrics` requires wherever it is served, from
    /// `ADAM__METRICS__TOKEN` only (refused in the file); unset: no token.
    #[serde(skip)]
    pub token: Option<SecretString>,
}

/// `[testing]`: switches for fault-injection tests; refused in `production`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingSettings {
    /// Enables `POST /v1/sessions/{id}/faults` (super_admin only), which makes a live
    /// session's child actor panic. Off by default; never allowed in production.
    pub fault_injection: bool,
}

/// `[cluster]`: several nodes behind a load balancer share PostgreSQL and Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `redis://[:password@]host:port[/db]` shared by every node, from
    /// `ADAM__CLUSTER__REDIS_URL` only (it may hold a password); unset: a single node.
    #[serde(skip_serializing)]
    pub redis_url: Option<SecretString>,
    /// This node's name in the session directory (empty: generated at start).
    pub node_id: String,
    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    pub namespace: String,
    /// How long a node waits for another to answer a control request, ms.
    pub request_timeout_ms: u64,
    /// Lifetime of a session's directory entry, refreshed by its node while it lives, s.
    pub session_ttl_secs: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            node_id: String::new(),
            namespace: "adam".into(),
            request_timeout_ms: 2000,
            session_ttl_secs: 30,
        }
    }
}

/// `[webrtc]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcSettings {
    /// Offer the WebRTC transport (`POST /v1/sessions/{id}/webrtc`).
    pub enabled: bool,
    /// Local IPs the media sockets bind; `0.0.0.0` means every non-loopback interface.
    pub udp_bind_ips: Vec<String>,
    /// UDP ports for media, inclusive (one port per connection); 0 and 0: any free port.
    pub udp_port_min: u16,
    /// See `udp_port_min`.
    pub udp_port_max: u16,
    /// Public IPs to advertise instead of the bound ones (a 1:1 NAT, e.g. a cloud VM).
    pub nat_1to1_ips: Vec<String>,
    /// STUN servers (`stun:host:port`), given to browsers and used for Adam's own candidates.
    pub stun_urls: Vec<String>,
    /// TURN servers (`turn:host:3478?transport=udp`, `turns:…`) given to browsers.
    pub turn_urls: Vec<String>,
    /// Shared secret of the TURN server's REST API (coturn `use-auth-secret`), from
    /// `ADAM__WEBRTC__TURN_SHARED_SECRET`: each session gets its own expiring credential.
    #[serde(skip_serializing)]
    pub turn_shared_secret: Option<SecretString>,
    /// Lifetime of a TURN credential, seconds.
    pub turn_credential_ttl_secs: u64,
    /// Seconds for the peer connection to come up after the answer.
    pub connect_timeout_secs: u64,
    /// Longest wait for Adam's own ICE candidates before answering, ms.
    pub gather_timeout_ms: u64,
    /// Opus encoder complexity for Adam's voice, 0–10. Encoding is the largest single cost
    /// of a WebRTC session (about 40 % of the server's CPU at 100 sessions): a 20 ms frame
    /// of speech costs about 266 µs at 10 (libopus' default), 158 µs at 5 and 85 µs at 1
    /// (`cargo bench -p adam --bench opus`). 5 is what mobile WebRTC stacks use; speech
    /// quality differs little from 10.
    pub opus_complexity: u8,
}

impl Default for WebRtcSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            udp_bind_ips: vec!["0.0.0.0".into(), "127.0.0.1".into()],
            udp_port_min: 0,
            udp_port_max: 0,
            nat_1to1_ips: Vec::new(),
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_shared_secret: None,
            turn_credential_ttl_secs: 3600,
            connect_timeout_secs: 15,
            gather_timeout_ms: 3000,
            opus_complexity: 5,
        }
    }
}

/// `[web]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Folder of the built browser client (`scripts/web.sh` builds `web/dist`).
    pub dir: PathBuf,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("web/dist"),
        }
    }
}

/// `[knowledge]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// `auto` (local on SQLite, pgvector on PostgreSQL), `local`, `pgvector` or `pinecone`.
    pub vector_store: String,
    /// Largest accepted upload, bytes (larger: 413).
    pub max_upload_bytes: usize,
    /// Chunk size and overlap, in tokens of `tokenizer`.
    pub chunk_max_tokens: usize,
    /// Tokens shared by consecutive chunks of a section.
    pub chunk_overlap_tokens: usize,
    /// A Hugging Face `tokenizer.json` to count tokens with (the embedder's); when the
    /// file is missing, tokens are estimated from words.
    pub tokenizer: PathBuf,
    /// Passages retrieved per question.
    pub top_k: usize,
    /// Tokens of passages (title and text) given to the answer engine at most; the best
    /// passage is always given.
    pub context_max_tokens: usize,
    /// Fetch more candidates from the vector store and re-rank them with BM25 (reciprocal
    /// rank fusion with the vector ranking).
    pub lexical_fusion: bool,
    /// Texts embedded per call while ingesting (small batches keep live questions from
    /// waiting long behind an ingestion).
    pub embed_batch: usize,
    /// Files ingested for the first-run dealership (a folder of PDF/DOCX/Markdown/text).
    pub demo_dir: Option<PathBuf>,
    /// Zip and PDF limits applied before extraction.
    pub limits: crate::knowledge::extract::Limits,
    /// The in-process index of the local store.
    pub local: crate::knowledge::local::LocalIndexConfig,
    /// Pinecone index and key (the key from `ADAM__KNOWLEDGE__PINECONE__API_KEY`).
    pub pinecone: crate::knowledge::pinecone::PineconeConfig,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self {
            vector_store: "auto".into(),
            max_upload_bytes: 20 * 1024 * 1024,
            chunk_max_tokens: 200,
            chunk_overlap_tokens: 40,
            tokenizer: PathBuf::from("models/minilm/tokenizer.json"),
            top_k: 8,
            context_max_tokens: 2048,
            lexical_fusion: true,
            embed_batch: 8,
            demo_dir: None,
            limits: Default::default(),
            local: Default::default(),
            pinecone: Default::default(),
        }
    }
}

/// `[session]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Live sessions this node accepts before answering "busy".
    pub max_sessions: usize,
    /// Default client input rate (PCM16 mono).
    pub input_sample_rate: u32,
    /// Default output rate sent to clients.
    pub output_sample_rate: u32,
    /// Silence that ends a user turn, ms.
    pub silence_ms: u32,
    /// Speech needed before a turn (and a barge-in) counts, ms.
    pub min_speech_ms: u32,
    /// Longest user turn, ms.
    pub max_turn_ms: u32,
    /// Turns kept as conversation context.
    pub history_turns: usize,
    /// Lifetime of a WebSocket ticket, seconds.
    pub ticket_ttl_secs: u64,
    /// Largest WebSocket message accepted (larger closes with 1009).
    pub max_message_bytes: usize,
    /// Messages per second a client may send (more closes with 1008).
    pub max_messages_per_sec: u32,
    /// Seconds without any client message before the session closes.
    pub idle_timeout_secs: u64,
    /// Items queued towards a client before dropping.
    pub outbound_queue: usize,
    /// Consecutive drops after which a slow client is closed.
    pub slow_client_drops: u32,
    /// On shutdown, seconds live answers get to finish before sessions are cut.
    pub drain_timeout_secs: u64,
    /// Start transcribing after this much end-of-turn silence, before the turn is over
    /// (0: off). Must be below `silence_ms` to help.
    pub early_transcription_ms: u32,
}

/// `[providers]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// `embedded` (local models, the default, also without `config.toml`) or `simulated`
    /// (deterministic, made-up transcripts and answers with configurable latencies; tests
    /// and load tests only, refused in `production`): voice activity detection, and every
    /// stage whose chain below is empty or names `profile`.
    pub profile: String,
    /// Latencies and texts of the simulated providers.
    pub simulated: adam_actors::simulated::SimulatedConfig,
    /// Model files and pools of the embedded providers.
    pub embedded: adam_providers::embedded::EmbeddedConfig,
    /// Speech to text, tried in order while nothing was produced: `profile`, `openai`,
    /// `deepgram`. Empty: the profile's own.
    pub stt: Vec<String>,
    /// Answers: `profile`, `openrouter`, `openai`.
    pub answer: Vec<String>,
    /// Speech: `profile`, `elevenlabs`, `openai`.
    pub tts: Vec<String>,
    /// Embeddings (one, since documents are indexed with it): `profile` or `openai`.
    pub embeddings: String,
    /// OpenRouter (or any OpenAI-compatible chat server).
    pub openrouter: adam_providers::cloud::chat::ChatConfig,
    /// OpenAI's chat, embeddings, transcription and speech.
    pub openai: OpenAiSettings,
    /// Deepgram live transcription.
    pub deepgram: adam_providers::cloud::deepgram::DeepgramConfig,
    /// ElevenLabs speech.
    pub elevenlabs: adam_providers::cloud::elevenlabs::ElevenLabsConfig,
    /// The avatar of dealerships whose `avatar` setting names no `provider`: `builtin`
    /// (drawn by the web client) or `heygen` (needs the HeyGen key and
    /// `providers.heygen.avatar_id`).
    pub avatar: String,
    /// HeyGen LiveAvatar (LITE mode): built when its key is set, or when `avatar` is
    /// `heygen`.
    pub heygen: adam_providers::cloud::heygen::HeyGenConfig,
    /// API keys, from the environment only (`ADAM__PROVIDERS__<NAME>__API_KEY`).
    #[serde(skip)]
    pub keys: ProviderKeys,
}

/// `[providers.openai]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSettings {
    /// Chat completions.
    pub chat: adam_providers::cloud::chat::ChatConfig,
    /// Embeddings.
    pub embeddings: adam_providers::cloud::embeddings::EmbeddingsConfig,
    /// Transcription.
    pub transcription: adam_providers::cloud::openai_stt::TranscriptionConfig,
    /// Speech.
    pub speech: adam_providers::cloud::openai_tts::OpenAiTtsConfig,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            chat: adam_providers::cloud::chat::ChatConfig {
                name: "openai".into(),
                base_url: "https://api.openai.com/v1".into(),
                model: "gpt-4o-mini".into(),
                ..Default::default()
            },
            embeddings: Default::default(),
            transcription: Default::default(),
            speech: Default::default(),
        }
    }
}

/// Cloud API keys (never in files).
#[derive(Debug, Clone, Default)]
pub struct ProviderKeys {
    /// `ADAM__PROVIDERS__OPENROUTER__API_KEY`.
    pub openrouter: Option<SecretString>,
    /// `ADAM__PROVIDERS__OPENAI__API_KEY`.
    pub openai: Option<SecretString>,
    /// `ADAM__PROVIDERS__DEEPGRAM__API_KEY`.
    pub deepgram: Option<SecretString>,
    /// `ADAM__PROVIDERS__ELEVENLABS__API_KEY`.
    pub elevenlabs: Option<SecretString>,
    /// `ADAM__PROVIDERS__HEYGEN__API_KEY`.
    pub heygen: Option<SecretString>,
}

/// `[cache]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Query embeddings kept.
    pub embedding_capacity: usize,
    /// Cosine similarity for a semantic cache hit.
    pub semantic_threshold: f32,
    /// Seconds a cached answer stays valid.
    pub semantic_ttl_secs: u64,
    /// Cached answers kept per dealership.
    pub semantic_per_tenant: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            max_sessions: 2000,
            input_sample_rate: 16_000,
            output_sample_rate: 24_000,
            silence_ms: 500,
            min_speech_ms: 200,
            max_turn_ms: 30_000,
            history_turns: 6,
            ticket_ttl_secs: 30,
            max_message_bytes: 64 * 1024,
            max_messages_per_sec: 200,
            idle_timeout_secs: 60,
            outbound_queue: 512,
            slow_client_drops: 250,
            drain_timeout_secs: 30,
            early_transcription_ms: 0,
        }
    }
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            profile: "embedded".into(),
            simulated: adam_actors::simulated::SimulatedConfig::default(),
            embedded: adam_providers::embedded::EmbeddedConfig::default(),
            stt: Vec::new(),
            answer: Vec::new(),
            tts: Vec::new(),
            embeddings: "profile".into(),
            openrouter: Default::default(),
            openai: OpenAiSettings::default(),
            deepgram: Default::default(),
            elevenlabs: Default::default(),
            avatar: "builtin".into(),
            heygen: Default::default(),
            keys: ProviderKeys::default(),
        }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            embedding_capacity: 10_000,
            semantic_threshold: 0.92,
            semantic_ttl_secs: 3600,
            semantic_per_tenant: 1000,
        }
    }
}

/// Deployment mode; production refuses to invent secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Local use: a JWT key is generated and kept under `data_dir` if none is set.
    Development,
    /// Deployed: every secret must come from the environment.
    Production,
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The URL people open.
    pub public_url: String,
    /// Largest request body, bytes.
    pub body_limit_bytes: usize,
    /// CORS allowlist (credentials allowed only for these).
    pub cors_allowed_origins: Vec<String>,
    /// Take the client IP from the last `X-Forwarded-For` hop (behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Seconds in-flight requests get after a shutdown signal.
    pub shutdown_grace_secs: u64,
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// SQLite only: how long a statement waits for another writer's lock before failing
    /// with "database is locked", ms.
    pub busy_timeout_ms: u64,
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 signing key; from `ADAM__AUTH__JWT_SECRET` only.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<SecretString>,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Access token lifetime, seconds.
    pub access_ttl_secs: i64,
    /// Refresh token lifetime from login (absolute), seconds.
    pub refresh_ttl_secs: i64,
    /// Clock skew tolerated, seconds.
    pub leeway_secs: i64,
    /// Failures per (account, IP) before throttling.
    pub login_max_failures: u32,
    /// Failures per IP before throttling.
    pub login_max_failures_per_ip: u32,
    /// Window over which failures are counted, seconds.
    pub login_window_secs: i64,
    /// Longest throttle, seconds.
    pub login_max_lockout_secs: i64,
}

/// `[rate_limit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per minute per client IP.
    pub per_ip_per_minute: u32,
    /// Burst per client IP.
    pub per_ip_burst: u32,
    /// Sustained requests per minute per authenticated user.
    pub per_user_per_minute: u32,
    /// Burst per authenticated user.
    pub per_user_burst: u32,
    /// Sustained `POST /v1/auth/password-reset/confirm` per minute per client IP (IPv6 per
    /// /64), on top of the per-IP limit: the route needs no account and may hash a password.
    pub password_reset_confirm_per_minute: u32,
    /// Burst of `password_reset_confirm_per_minute`.
    pub password_reset_confirm_burst: u32,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// EnvFilter directives.
    pub filter: String,
    /// OTLP/HTTP collector for one trace per conversation turn (e.g.
    /// `http://otel-collector:4318`); empty: no traces.
    pub otlp_endpoint: String,
    /// `service.name` of the exported traces.
    pub otlp_service_name: String,
    /// Sentry-compatible DSN that `ERROR` events and panics are reported to; from
    /// `ADAM__LOG__ERROR_REPORTING_DSN` only.
    #[serde(skip_serializing)]
    pub error_reporting_dsn: Option<SecretString>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line for log shippers.
    Json,
}

/// `[bootstrap]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapSettings {
    /// Name of the demo dealership created on an empty database.
    pub dealership_name: String,
    /// Email of the first super_admin.
    pub admin_email: String,
    /// Password of the first super_admin; from the environment only.
    #[serde(skip_serializing)]
    pub admin_password: Option<SecretString>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            data_dir: PathBuf::from("data"),
            http: HttpSettings::default(),
            database: DatabaseSettings::default(),
            auth: AuthSettings::default(),
            rate_limit: RateLimitSettings::default(),
            log: LogSettings::default(),
            bootstrap: BootstrapSettings::default(),
            session: SessionSettings::default(),
            providers: ProviderSettings::default(),
            cache: CacheSettings::default(),
            knowledge: KnowledgeSettings::default(),
            webrtc: WebRtcSettings::default(),
            web: WebSettings::default(),
            email: Default::default(),
            testing: TestingSettings::default(),
            cluster: ClusterSettings::default(),
            limits: Default::default(),
            privacy: Default::default(),
            metrics: MetricsSettings::default(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            body_limit_bytes: 1 << 20,
            cors_allowed_origins: vec![
                "http://127.0.0.1:8080".into(),
                "http://localhost:8080".into(),
            ],
            trust_forwarded_for: false,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/adam.db".into(),
            max_connections: 8,
            busy_timeout_ms: 10_000,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            issuer: "adam".into(),
            audience: "adam-api".into(),
            access_ttl_secs: 30 * 60,
            refresh_ttl_secs: 7 * 24 * 3600,
            leeway_secs: 5,
            login_max_failures: 5,
            login_max_failures_per_ip: 50,
            login_window_secs: 900,
            login_max_lockout_secs: 900,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 600,
            per_ip_burst: 120,
            per_user_per_minute: 300,
            per_user_burst: 60,
            password_reset_confirm_per_minute: 10,
            password_reset_confirm_burst: 10,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info,adam=info,sqlx=warn,tower_http=info".into(),
            otlp_endpoint: String::new(),
            otlp_service_name: "adam".into(),
            error_reporting_dsn: None,
        }
    }
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self {
            dealership_name: "Demo Motors".into(),
            admin_email: "admin@adam.local".into(),
            admin_password: None,
        }
    }
}

/// A setting that failed to load or validate; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file or an environment variable could not be parsed.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value parsed but makes no sense.
    #[error("configuration key `{key}`: {problem}")]
    Invalid {
        /// Dotted key, e.g. `auth.access_ttl_secs`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Flags given on the command line; they win over file and environment.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CliOverrides {
    /// `--listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--log-format`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Secret settings and the environment variables they come from, read verbatim.
const SECRET_VARS: [(&str, &str); 14] = [
    ("cluster.redis_url", "ADAM__CLUSTER__REDIS_URL"),
    ("metrics.token", "ADAM__METRICS__TOKEN"),
    ("auth.jwt_secret", "ADAM__AUTH__JWT_SECRET"),
    ("log.error_reporting_dsn", "ADAM__LOG__ERROR_REPORTING_DSN"),
    (
        "bootstrap.admin_password",
        "ADAM__BOOTSTRAP__ADMIN_PASSWORD",
    ),
    (
        "knowledge.pinecone.api_key",
        crate::knowledge::pinecone::PineconeConfig::API_KEY_ENV,
    ),
    (
        "webrtc.turn_shared_secret",
        "ADAM__WEBRTC__TURN_SHARED_SECRET",
    ),
    (
        "email.smtp.password",
        crate::email::SmtpSettings::PASSWORD_ENV,
    ),
    (
        "email.mailgun.api_key",
        crate::email::MailgunSettings::API_KEY_ENV,
    ),
    ("providers.openrouter.api_key", keys::OPENROUTER),
    ("providers.openai.api_key", keys::OPENAI),
    ("providers.deepgram.api_key", keys::DEEPGRAM),
    ("providers.elevenlabs.api_key", keys::ELEVENLABS),
    ("providers.heygen.api_key", keys::HEYGEN),
];

impl Settings {
    /// Loads `config_path` (if it exists), then `ADAM__…` variables, then CLI flags.
    pub fn load(config_path: &Path, cli: &CliOverrides) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(config_path))
            .merge(
                Env::prefixed("ADAM__")
                    .split("__")
                    .lowercase(true)
                    .ignore(&SECRET_VARS.map(|(key, _)| key)),
            );
        if let Some(listen) = cli.listen {
            figment = figment.merge(Serialized::default("http.listen", listen));
        }
        if let Some(url) = &cli.database_url {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        if let Some(format) = cli.log_format {
            figment = figment.merge(Serialized::default("log.format", format));
        }
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        // Secrets are taken verbatim: figment would turn `00012345` into a number.
        for (key, var) in SECRET_VARS {
            if let Ok(value) = std::env::var(var).map(|v| v.trim().to_owned())
                && !value.is_empty()
            {
                let secret = Some(SecretString::from(value));
                match key {
                    "auth.jwt_secret" => settings.auth.jwt_secret = secret,
                    "log.error_reporting_dsn" => settings.log.error_reporting_dsn = secret,
                    "knowledge.pinecone.api_key" => settings.knowledge.pinecone.api_key = secret,
                    "webrtc.turn_shared_secret" => settings.webrtc.turn_shared_secret = secret,
                    "email.smtp.password" => settings.email.smtp.password = secret,
                    "email.mailgun.api_key" => settings.email.mailgun.api_key = secret,
                    "providers.openrouter.api_key" => settings.providers.keys.openrouter = secret,
                    "providers.openai.api_key" => settings.providers.keys.openai = secret,
                    "providers.deepgram.api_key" => settings.providers.keys.deepgram = secret,
                    "providers.elevenlabs.api_key" => settings.providers.keys.elevenlabs = secret,
                    "providers.heygen.api_key" => settings.providers.keys.heygen = secret,
                    "cluster.redis_url" => settings.cluster.redis_url = secret,
                    "metrics.token" => settings.metrics.token = secret,
                    _ => settings.bootstrap.admin_password = secret,
                }
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
            SettingsError::Invalid {
                key,
                problem: problem.into(),
            }
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                format!("`{url}` must start with sqlite:, postgres:// or postgresql://"),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        self.providers
            .embedded
            .silero
            .validate()
            .map_err(|problem| invalid("providers.embedded.silero", problem))?;
        if let Err((field, problem)) = self.limits.check() {
            return Err(SettingsError::Invalid {
                key: "limits",
                problem: format!("{field} {problem}"),
            });
        }
        let notice = self.privacy.recording_notice.trim();
        if notice.is_empty() || notice.chars().count() > 500 {
            return Err(invalid(
                "privacy.recording_notice",
                "must be 1 to 500 characters",
            ));
        }
        if self.privacy.retention_days > 36_500 {
            return Err(invalid(
                "privacy.retention_days",
                "must be between 0 (keep forever) and 36500",
            ));
        }
        if !(1..=604_800).contains(&self.privacy.retention_interval_secs) {
            return Err(invalid(
                "privacy.retention_interval_secs",
                "must be between 1 and 604800 (a week)",
            ));
        }
        if self.auth.access_ttl_secs < 60 {
            return Err(invalid("auth.access_ttl_secs", "must be at least 60"));
        }
        if self.auth.refresh_ttl_secs <= self.auth.access_ttl_secs {
            return Err(invalid(
                "auth.refresh_ttl_secs",
                "must be longer than auth.access_ttl_secs",
            ));
        }
        if !(0..=60).contains(&self.auth.leeway_secs) {
            return Err(invalid("auth.leeway_secs", "must be between 0 and 60"));
        }
        if self.auth.login_max_failures == 0 {
            return Err(invalid("auth.login_max_failures", "must be at least 1"));
        }
        if self.auth.login_max_failures_per_ip == 0 {
            return Err(invalid(
                "auth.login_max_failures_per_ip",
                "must be at least 1",
            ));
        }
        if self.auth.login_window_secs < 1 {
            return Err(invalid("auth.login_window_secs", "must be at least 1"));
        }
        if self.auth.login_max_lockout_secs < 1 {
            return Err(invalid("auth.login_max_lockout_secs", "must be at least 1"));
        }
        if let Some(secret) = &self.auth.jwt_secret
            && secret.expose_secret().len() < 32
        {
            return Err(invalid(
                "auth.jwt_secret",
                "must be at least 32 bytes (use e.g. `openssl rand -hex 32`)",
            ));
        }
        if self.environment == Environment::Production && self.testing.fault_injection {
            return Err(invalid(
                "testing.fault_injection",
                "must be false in production: it lets an admin crash live conversations",
            ));
        }
        if self.environment == Environment::Production && self.auth.jwt_secret.is_none() {
            return Err(invalid(
                "auth.jwt_secret",
                "is required in production: set ADAM__AUTH__JWT_SECRET",
            ));
        }
        let rl = &self.rate_limit;
        for (key, value) in [
            ("rate_limit.per_ip_per_minute", rl.per_ip_per_minute),
            ("rate_limit.per_ip_burst", rl.per_ip_burst),
            ("rate_limit.per_user_per_minute", rl.per_user_per_minute),
            ("rate_limit.per_user_burst", rl.per_user_burst),
            (
                "rate_limit.password_reset_confirm_per_minute",
                rl.password_reset_confirm_per_minute,
            ),
            (
                "rate_limit.password_reset_confirm_burst",
                rl.password_reset_confirm_burst,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let k = &self.knowledge;
        let postgres = !url.starts_with("sqlite:");
        match (k.vector_store.as_str(), postgres) {
            ("auto", _) | ("local", false) | ("pgvector", true) | ("pinecone", _) => {}
            ("local", true) => {
                return Err(invalid(
                    "knowledge.vector_store",
                    "`local` keeps vectors in SQLite; with PostgreSQL use `pgvector` (or `auto`)",
                ));
            }
            ("pgvector", false) => {
                return Err(invalid(
                    "knowledge.vector_store",
                    "`pgvector` needs a PostgreSQL database.url; with SQLite use `local` (or `auto`)",
                ));
            }
            (other, _) => {
                return Err(invalid(
                    "knowledge.vector_store",
                    format!("`{other}` is not one of auto, local, pgvector, pinecone"),
                ));
            }
        }
        if k.max_upload_bytes < 1024 {
            return Err(invalid(
                "knowledge.max_upload_bytes",
                "must be at least 1024",
            ));
        }
        if k.chunk_max_tokens < 16 || k.chunk_overlap_tokens >= k.chunk_max_tokens {
            return Err(invalid(
                "knowledge.chunk_max_tokens",
                "must be at least 16 and larger than chunk_overlap_tokens",
            ));
        }
        if !(1..=50).contains(&k.top_k) || k.embed_batch == 0 {
            return Err(invalid(
                "knowledge.top_k",
                "must be 1 to 50 (and embed_batch at least 1)",
            ));
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(invalid("http.body_limit_bytes", "must be at least 1024"));
        }
        for origin in &self.http.cors_allowed_origins {
            if origin == "*" || !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(
                    "http.cors_allowed_origins",
                    format!("`{origin}` must be an http(s) origin; wildcards are not allowed"),
                ));
            }
        }
        let rate_ok = |r: u32| (8_000..=48_000).contains(&r);
        if !rate_ok(self.session.input_sample_rate) {
            return Err(invalid(
                "session.input_sample_rate",
                "must be 8000 to 48000",
            ));
        }
        if !rate_ok(self.session.output_sample_rate) {
            return Err(invalid(
                "session.output_sample_rate",
                "must be 8000 to 48000",
            ));
        }
        let w = &self.webrtc;
        if (w.udp_port_min == 0) != (w.udp_port_max == 0) || w.udp_port_min > w.udp_port_max {
            return Err(invalid(
                "webrtc.udp_port_min",
                "set both udp_port_min and udp_port_max (min ≤ max), or neither",
            ));
        }
        if w.opus_complexity > 10 {
            return Err(invalid("webrtc.opus_complexity", "must be 0 to 10"));
        }
        for ip in w.udp_bind_ips.iter().chain(&w.nat_1to1_ips) {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(
                    "webrtc.udp_bind_ips",
                    format!("`{ip}` is not an IP address"),
                ));
            }
        }
        if w.enabled && w.udp_bind_ips.is_empty() {
            return Err(invalid("webrtc.udp_bind_ips", "needs at least one IP"));
        }
        for url in w.stun_urls.iter().chain(&w.turn_urls) {
            if !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|p| url.starts_with(p))
            {
                return Err(invalid(
                    "webrtc.stun_urls",
                    format!("`{url}` must start with stun:, stuns:, turn: or turns:"),
                ));
            }
        }
        if !w.turn_urls.is_empty() && w.turn_shared_secret.is_none() {
            return Err(invalid(
                "webrtc.turn_urls",
                "TURN needs ADAM__WEBRTC__TURN_SHARED_SECRET",
            ));
        }
        let c = &self.cluster;
        if let Some(url) = &c.redis_url
            && !url.expose_secret().starts_with("redis://")
        {
            return Err(invalid(
                "cluster.redis_url",
                "must start with redis:// (set ADAM__CLUSTER__REDIS_URL)",
            ));
        }
        let name_ok = |s: &str| {
            s.len() <= 64
                && s.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        };
        if !name_ok(&c.node_id) {
            return Err(invalid(
                "cluster.node_id",
                "use at most 64 letters, digits, `-`, `_` or `.`",
            ));
        }
        if c.namespace.is_empty() || !name_ok(&c.namespace) {
            return Err(invalid(
                "cluster.namespace",
                "use 1 to 64 letters, digits, `-`, `_` or `.`",
            ));
        }
        if !(100..=60_000).contains(&c.request_timeout_ms) {
            return Err(invalid(
                "cluster.request_timeout_ms",
                "must be 100 to 60000",
            ));
        }
        if !(3..=3600).contains(&c.session_ttl_secs) {
            return Err(invalid("cluster.session_ttl_secs", "must be 3 to 3600"));
        }
        if self.session.max_sessions == 0 {
            return Err(invalid("session.max_sessions", "must be at least 1"));
        }
        if !(100..=5_000).contains(&self.session.silence_ms) {
            return Err(invalid("session.silence_ms", "must be 100 to 5000"));
        }
        if self.session.min_speech_ms > 2_000 {
            return Err(invalid("session.min_speech_ms", "must be at most 2000"));
        }
        if !(1_000..=120_000).contains(&self.session.max_turn_ms) {
            return Err(invalid("session.max_turn_ms", "must be 1000 to 120000"));
        }
        if self.session.max_message_bytes < 1024 {
            return Err(invalid(
                "session.max_message_bytes",
                "must be at least 1024",
            ));
        }
        if self.session.outbound_queue < 16 || self.session.slow_client_drops == 0 {
            return Err(invalid(
                "session.outbound_queue",
                "must be at least 16 (and slow_client_drops at least 1)",
            ));
        }
        if self.session.max_messages_per_sec == 0
            || self.session.ticket_ttl_secs == 0
            || self.session.idle_timeout_secs == 0
        {
            return Err(invalid(
                "session",
                "max_messages_per_sec, ticket_ttl_secs and idle_timeout_secs must be positive",
            ));
        }
        let p = &self.providers;
        for (key, chain, known) in [
            (
                "providers.stt",
                &p.stt,
                &["profile", "openai", "deepgram"][..],
            ),
            (
                "providers.answer",
                &p.answer,
                &["profile", "openrouter", "openai"][..],
            ),
            (
                "providers.tts",
                &p.tts,
                &["profile", "elevenlabs", "openai"][..],
            ),
        ] {
            if let Some(unknown) = chain.iter().find(|n| !known.contains(&n.as_str())) {
                return Err(invalid(
                    key,
                    format!("`{unknown}` is not one of {}", known.join(", ")),
                ));
            }
        }
        // OpenAI answers 400 to every sentence otherwise: refuse it now, naming the key.
        if p.tts.iter().any(|n| n == "openai")
            && let Some((field, problem)) = p.openai.speech.unsupported()
        {
            let key = match field {
                "voice" => "providers.openai.speech.voice",
                _ => "providers.openai.speech.instructions",
            };
            return Err(invalid(key, problem));
        }
        if !["profile", "openai"].contains(&p.embeddings.as_str()) {
            return Err(invalid(
                "providers.embeddings",
                format!("`{}` is not one of profile, openai", p.embeddings),
            ));
        }
        match p.avatar.as_str() {
            "builtin" => {}
            "heygen" if p.heygen.avatar_id.trim().is_empty() => {
                return Err(invalid(
                    "providers.heygen.avatar_id",
                    "is required when providers.avatar is \"heygen\"",
                ));
            }
            "heygen" => {}
            other => {
                return Err(invalid(
                    "providers.avatar",
                    format!("`{other}` is not one of builtin, heygen"),
                ));
            }
        }
        if !["embedded", "simulated"].contains(&self.providers.profile.as_str()) {
            return Err(invalid(
                "providers.profile",
                format!(
                    "`{}` is not a profile; use \"embedded\" or \"simulated\"",
                    self.providers.profile
                ),
            ));
        }
        if self.environment == Environment::Production && self.providers.profile == "simulated" {
            return Err(invalid(
                "providers.profile",
                "must not be \"simulated\" in production: it answers with made-up transcripts; \
                 use \"embedded\" (the local models)",
            ));
        }
        if !(0.0..=1.0).contains(&self.cache.semantic_threshold) {
            return Err(invalid(
                "cache.semantic_threshold",
                "must be between 0 and 1",
            ));
        }
        let m = &self.metrics;
        if let Some(token) = &m.token
            && token.expose_secret().len() < 16
        {
            return Err(invalid(
                "metrics.token",
                "must be at least 16 bytes (use e.g. `openssl rand -hex 16`)",
            ));
        }
        if m.listen
            .is_some_and(|addr| addr == self.http.listen && addr.port() != 0)
        {
            return Err(invalid(
                "metrics.listen",
                "must differ from http.listen (unset it to serve /metrics there)",
            ));
        }
        if self.environment == Environment::Production && m.listen.is_none() && m.token.is_none() {
            return Err(invalid(
                "metrics.listen",
                "production must not serve /metrics on the public listener without a token: set \
                 metrics.listen (e.g. 127.0.0.1:9464, or 0.0.0.0:9464 on a private network) \
                 or ADAM__METRICS__TOKEN",
            ));
        }
        if self.bootstrap.admin_email.trim().is_empty() || !self.bootstrap.admin_email.contains('@')
        {
            return Err(invalid("bootstrap.admin_email", "must be an email address"));
        }
        self.email
            .validate()
            .map_err(|(key, problem)| invalid(key, problem))?;
        if self.environment == Environment::Production
            && self.email.transport == crate::email::TransportKind::Log
            && !self.email.allow_log_transport_in_production
        {
            return Err(invalid(
                "email.transport",
                "is \"log\" in production: emails would be written to disk, never sent; choose \
                 \"smtp\" or \"mailgun\" (see docs/DEPLOYMENT.md), or set \
                 email.allow_log_transport_in_production = true",
            ));
        }
        Ok(())
    }

    /// Path of the SQLite file when the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.database.url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_committed_config_file() {
        let from_file: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"),
            ))
            .extract()
            .expect("config.toml parses");
        assert_eq!(from_file.http.listen, Settings::default().http.listen);
        assert_eq!(from_file.database.url, "sqlite://data/adam.db");
        assert_eq!(from_file.auth.access_ttl_secs, 1800);
        assert_eq!(from_file.auth.refresh_ttl_secs, 7 * 24 * 3600);
        assert_eq!(from_file.log.filter, Settings::default().log.filter);
        assert_eq!(
            from_file.rate_limit.per_user_burst,
            Settings::default().rate_limit.per_user_burst
        );
        from_file.validate().expect("committed config is valid");
    }

    #[test]
    fn validation_names_the_key() {
        let mut settings = Settings::default();
        settings.rate_limit.per_user_burst = 0;
        let err = settings.validate().expect_err("zero burst");
        assert!(
            err.to_string().contains("`rate_limit.per_user_burst`"),
            "{err}"
        );

        let mut settings = Settings::default();
        settings.database.url = "mysql://x".into();
        let err = settings.validate().expect_err("mysql is refused");
        assert!(err.to_string().contains("`database.url`"), "{err}");

        let settings = Settings {
            environment: Environment::Production,
            ..Settings::default()
        };
        let err = settings.validate().expect_err("production needs a key");
        assert!(err.to_string().contains("auth.jwt_secret"), "{err}");

        let mut settings = Settings {
            environment: Environment::Production,
            ..Settings::default()
        };
        settings.auth.jwt_secret = Some(SecretString::from("k".repeat(32)));
        let err = settings
            .validate()
            .expect_err("production keeps /metrics off the public listener");
        assert!(err.to_string().contains("`metrics.listen`"), "{err}");
        settings.metrics.listen = Some("127.0.0.1:9464".parse().expect("addr"));
        let err = settings
            .validate()
            .expect_err("production refuses the log email transport");
        assert!(err.to_string().contains("`email.transport`"), "{err}");
        settings.email.allow_log_transport_in_production = true;
        assert!(settings.validate().is_ok(), "unless explicitly allowed");
        settings.email.allow_log_transport_in_production = false;
        settings.email.transport = crate::email::TransportKind::Smtp;
        settings.email.smtp.host = "smtp.example.com".into();
        assert!(settings.validate().is_ok(), "a real transport");
        settings.testing.fault_injection = true;
        let err = settings
            .validate()
            .expect_err("fault injection is refused in production");
        assert!(
            err.to_string().contains("`testing.fault_injection`"),
            "{err}"
        );
    }

    #[test]
    fn openai_speech_options_its_model_lacks_are_refused_naming_the_key() {
        let mut settings = Settings::default();
        settings.providers.tts = vec!["openai".into(), "profile".into()];
        settings.providers.openai.speech.model = "tts-1".into();
        settings.providers.openai.speech.voice = "ballad".into();
        let err = settings
            .validate()
            .expect_err("ballad needs gpt-4o-mini-tts");
        assert!(
            err.to_string().contains("`providers.openai.speech.voice`"),
            "{err}"
        );
        settings.providers.openai.speech.voice = "alloy".into();
        settings.providers.openai.speech.model = "tts-1-hd".into();
        settings.providers.openai.speech.instructions = "Speak warmly.".into();
        let err = settings
            .validate()
            .expect_err("tts-1-hd takes no instructions");
        assert!(
            err.to_string()
                .contains("`providers.openai.speech.instructions`"),
            "{err}"
        );
        settings.providers.openai.speech.model = "gpt-4o-mini-tts".into();
        settings.providers.openai.speech.voice = "marin".into();
        assert!(settings.validate().is_ok(), "the newer model takes both");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn the_cluster_redis_url_comes_from_the_environment_and_is_checked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("adam.toml", "[cluster]\nnode_id = \"adam-1\"\n")?;
            let settings =
                Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
            assert!(
                settings.cluster.redis_url.is_none(),
                "a single node by default"
            );
            jail.set_env(
                "ADAM__CLUSTER__REDIS_URL",
                "redis://:s3cret@10.0.0.5:6379/0",
            );
            let settings =
                Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
            let url = settings.cluster.redis_url.clone().expect("url set");
            assert_eq!(url.expose_secret(), "redis://:s3cret@10.0.0.5:6379/0");
            assert_eq!(settings.cluster.node_id, "adam-1");
            assert!(!format!("{settings:?}").contains("s3cret"), "never printed");

            jail.set_env("ADAM__CLUSTER__REDIS_URL", "http://10.0.0.5");
            let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
                .expect_err("not redis");
            assert!(err.to_string().contains("`cluster.redis_url`"), "{err}");
            Ok(())
        });
        let mut settings = Settings::default();
        settings.cluster.node_id = "node a/1".into();
        let err = settings.validate().expect_err("spaces and slashes");
        assert!(err.to_string().contains("`cluster.node_id`"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn the_metrics_token_comes_from_the_environment_and_production_needs_it_or_a_listener() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("adam.toml", "environment = \"production\"\n[metrics]\n")?;
            jail.set_env("ADAM__AUTH__JWT_SECRET", "k".repeat(32));
            jail.set_env("ADAM__EMAIL__ALLOW_LOG_TRANSPORT_IN_PRODUCTION", "true");
            let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
                .expect_err("public /metrics without a token");
            assert!(err.to_string().contains("`metrics.listen`"), "{err}");
            jail.set_env("ADAM__METRICS__TOKEN", "short");
            let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
                .expect_err("a short token");
            assert!(err.to_string().contains("`metrics.token`"), "{err}");
            jail.set_env("ADAM__METRICS__TOKEN", "0123456789abcdef0123");
            let settings =
                Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
            let token = settings.metrics.token.clone().expect("token");
            assert_eq!(token.expose_secret(), "0123456789abcdef0123");
            assert!(
                !format!("{settings:?}").contains("0123456789abcdef"),
                "never printed"
            );
            jail.create_file(
                "leaky.toml",
                "[metrics]\ntoken = \"0123456789abcdef0123\"\n",
            )?;
            let err = Settings::load(Path::new("leaky.toml"), &CliOverrides::default())
                .expect_err("a token in the file is refused");
            assert!(err.to_string().contains("token"), "{err}");
            jail.set_env("ADAM__METRICS__TOKEN", "");
            jail.set_env("ADAM__METRICS__LISTEN", "127.0.0.1:9464");
            let settings =
                Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
            assert_eq!(
                settings.metrics.listen,
                Some("127.0.0.1:9464".parse().expect("addr"))
            );
            jail.set_env("ADAM__METRICS__LISTEN", "127.0.0.1:8080");
            let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
                .expect_err("the main listener's address");
            assert!(err.to_string().contains("`metrics.listen`"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn without_a_config_file_the_profile_is_embedded_and_production_refuses_simulated() {
        figment::Jail::expect_with(|_| {
            let settings =
                Settings::load(Path::new("no-such-config.toml"), &CliOverrides::default())
                    .expect("loads from the compiled-in defaults");
            assert_eq!(settings.providers.profile, "embedded");
            Ok(())
        });
        let mut settings = Settings {
            environment: Environment::Production,
            ..Settings::default()
        };
        settings.auth.jwt_secret = Some(SecretString::from("k".repeat(32)));
        settings.email.allow_log_transport_in_production = true;
        settings.metrics.listen = Some("127.0.0.1:9464".parse().expect("addr"));
        settings.validate().expect("embedded in production");
        settings.providers.profile = "simulated".into();
        let err = settings.validate().expect_err("simulated in production");
        assert!(err.to_string().contains("`providers.profile`"), "{err}");
        assert!(err.to_string().contains("made-up"), "{err}");
        settings.environment = Environment::Development;
        settings.validate().expect("simulated in development");
    }

    #[test]
    fn a_heygen_default_avatar_needs_an_avatar_id() {
        let mut settings = Settings::default();
        settings.providers.avatar = "heygen".into();
        let err = settings.validate().expect_err("no avatar_id");
        assert!(
            err.to_string().contains("`providers.heygen.avatar_id`"),
            "{err}"
        );
        settings.providers.heygen.avatar_id = "avatar-1".into();
        settings.validate().expect("valid");
        settings.providers.avatar = "vidyard".into();
        let err = settings.validate().expect_err("unknown");
        assert!(err.to_string().contains("`providers.avatar`"), "{err}");
    }

    #[test]
    fn privacy_settings_are_checked() {
        let mut settings = Settings::default();
        settings.privacy.retention_interval_secs = 0;
        let err = settings.validate().expect_err("a pass every 0 s");
        assert!(
            err.to_string()
                .contains("`privacy.retention_interval_secs`"),
            "{err}"
        );
        let mut settings = Settings::default();
        settings.privacy.retention_days = 40_000;
        let err = settings.validate().expect_err("over a century");
        assert!(
            err.to_string().contains("`privacy.retention_days`"),
            "{err}"
        );
        let mut settings = Settings::default();
        settings.privacy.recording_notice = "  ".into();
        let err = settings.validate().expect_err("a blank notice");
        assert!(
            err.to_string().contains("`privacy.recording_notice`"),
            "{err}"
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn environment_overrides_file_and_cli_overrides_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("adam.toml", "[http]\nlisten = \"127.0.0.1:1111\"\n")?;
            jail.set_env("ADAM__HTTP__LISTEN", "127.0.0.1:2222");
            jail.set_env("ADAM__DATABASE__URL", "sqlite://env.db");
            let cli = CliOverrides {
                database_url: Some("sqlite://cli.db".into()),
                ..Default::default()
            };
            let settings = Settings::load(Path::new("adam.toml"), &cli).expect("loads");
            assert_eq!(settings.http.listen.port(), 2222);
            assert_eq!(settings.database.url, "sqlite://cli.db");

            // Secrets are kept verbatim, even when they look like numbers.
            jail.set_env("ADAM__BOOTSTRAP__ADMIN_PASSWORD", "00012345");
            jail.set_env("ADAM__AUTH__JWT_SECRET", "1".repeat(40));
            let settings = Settings::load(Path::new("adam.toml"), &cli).expect("loads");
            let password = settings.bootstrap.admin_password.expect("password set");
            assert_eq!(password.expose_secret(), "00012345");
            let key = settings.auth.jwt_secret.expect("key set");
            assert_eq!(key.expose_secret(), "1".repeat(40));

            jail.set_env("ADAM__AUTH__ACCESS_TTL_SECS", "not-a-number");
            let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
                .expect_err("bad number");
            assert!(
                err.to_string()
                    .to_lowercase()
                    .contains("auth.access_ttl_secs"),
                "{err}"
            );
            Ok(())
        });
    }
}
