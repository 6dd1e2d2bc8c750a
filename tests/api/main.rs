//! Integration tests: one binary, each test against a real server on a random port with
//! its own database. Run against PostgreSQL by setting `ADAM_TEST_DATABASE_URL`.

mod accounts;
mod api_keys;
mod auth_tokens;
mod cli;
mod cloud;
mod cluster;
mod documents;
mod email;
mod email_delivery;
mod fake_mailgun;
mod fake_pinecone;
mod fake_smtp;
mod faults;
mod headers;
mod helpers;
mod heygen;
mod nodes;
mod openai_realtime;
mod ops;
mod pinecone;
mod privacy;
mod quotas;
mod realtime;
mod refresh;
mod roles;
mod tenancy;
mod throttling;
mod traces;
mod voice;
mod webrtc;
