//! Adam: realtime voice and avatar session server.
//!
//! Module map:
//! - [`settings`]: typed configuration (file < environment < CLI), secrets from the
//!   environment, and the rules across sections; each section lives next to its feature.
//! - [`startup`]: [`startup::Application`] (build, bind, serve, drain) and
//!   [`startup::start_realtime`]; [`state`]: [`state::AppState`].
//! - [`cli`]: the `adam` command (serve, migrate, dealership/user creation);
//!   [`providers_check`]: `adam providers check`, one real call per configured vendor.
//! - [`api`]: HTTP routes under `/v1`, health, metrics, OpenAPI; [`api::error::ApiError`].
//! - [`middleware`]: security headers, CORS, rate limits, request ids, metrics, JSON errors.
//! - [`auth`]: roles, JWT tokens, passwords, login throttling, the `Principal` extractor.
//! - [`db`]: SQLite/PostgreSQL pool, migrations and tenant-scoped repositories.
//! - [`knowledge`]: documents → text (tables as records) → chunks → vectors (local,
//!   pgvector, Pinecone) → retrieval (BM25 fusion); one question asked outside a turn.
//! - [`eval`]: `adam eval`, answer quality on a question set or a corpus (dev / held-out).
//! - [`email`]: templates, the durable outbox and its worker, log/SMTP/Mailgun transports,
//!   invitation, password-reset and lead emails.
//! - [`realtime`]: the node's actor system, session tickets, the transcript sink and the
//!   transports (one driver in `realtime::transport`, WebSocket and WebRTC adapters);
//!   [`leads`]: a lead found in a finished conversation's transcript.
//! - [`privacy`]: transcript retention (a background task on every node), finding and
//!   erasing what is held about one caller's contact details, the recording notice.
//! - [`bootstrap`]: first-run demo dealership and super_admin.
//! - [`cluster`]: several nodes on one Redis: session directory and cross-node control,
//!   shared semantic-cache tier, tickets and rate-limit counters.
//! - [`metrics`]: the Prometheus registry.
//! - [`clock`]: injectable time; [`telemetry`]: tracing setup; [`traces`]: one OTLP trace per
//!   conversation turn.
//!
//! The conversation actor tree lives in the `adam-actors` crate, which knows nothing of
//! HTTP or SQL.

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod db;
pub mod email;
pub mod eval;
pub mod knowledge;
pub mod leads;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod privacy;
pub mod providers_check;
pub mod realtime;
pub mod reporting;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod traces;
