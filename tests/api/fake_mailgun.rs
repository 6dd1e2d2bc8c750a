//! A local stand-in for Mailgun's send endpoint, `POST /v3/{domain}/messages`.
//!
//! Like Mailgun it wants HTTP basic auth `api:KEY` (401 `Forbidden` otherwise), knows
//! one domain (404 otherwise), reads the multipart form and requires `from`, `to`,
//! `subject` and `text` or `html` (400 `{"message": "…"}` otherwise), and answers
//! `200 {"id": "<…>", "message": "Queued. Thank you."}`. It can be told to answer the
//! next requests with given statuses (429 comes with `Retry-After: 1`), and counts
//! every request.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::json;

/// One accepted message: its form fields.
pub type Fields = HashMap<String, String>;

struct Shared {
    api_key: String,
    domain: String,
    requests: Mutex<usize>,
    accepted: Mutex<Vec<Fields>>,
    scripted: Mutex<VecDeque<StatusCode>>,
}

pub struct FakeMailgun {
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMailgun {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a fake that accepts `api_key` for `domain`.
pub async fn start(api_key: &str, domain: &str) -> FakeMailgun {
    let shared = Arc::new(Shared {
        api_key: api_key.to_owned(),
        domain: domain.to_owned(),
        requests: Mutex::new(0),
        accepted: Mutex::new(Vec::new()),
        scripted: Mutex::new(VecDeque::new()),
    });
    let app = Router::new()
        .route("/v3/{domain}/messages", post(messages))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake mailgun");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeMailgun {
        base_url: format!("http://{addr}"),
        shared,
        server,
    }
}

impl FakeMailgun {
    /// Messages accepted so far.
    pub fn accepted(&self) -> Vec<Fields> {
        self.shared.accepted.lock().expect("fake").clone()
    }

    /// Requests received so far, whatever the answer.
    pub fn requests(&self) -> usize {
        *self.shared.requests.lock().expect("fake")
    }

    /// Answers the next requests (with a valid key) with these statuses, in order.
    pub fn fail_next(&self, statuses: &[StatusCode]) {
        self.shared
            .scripted
            .lock()
            .expect("fake")
            .extend(statuses.iter().copied());
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({"message": text}))).into_response()
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Path(domain): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    *shared.requests.lock().expect("fake") += 1;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{}", shared.api_key))
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "Forbidden").into_response();
    }
    if domain != shared.domain {
        return message(
            StatusCode::NOT_FOUND,
            &format!("Domain not found: {domain}"),
        );
    }
    let scripted = shared.scripted.lock().expect("fake").pop_front();
    if let Some(status) = scripted {
        let mut response = message(status, "scripted failure");
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().expect("header"));
        }
        return response;
    }
    let mut fields = Fields::new();
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                match field.text().await {
                    Ok(value) => {
                        fields.insert(name, value);
                    }
                    Err(_) => return message(StatusCode::BAD_REQUEST, "unreadable field"),
                }
            }
            Ok(None) => break,
            Err(_) => return message(StatusCode::BAD_REQUEST, "not a multipart form"),
        }
    }
    for required in ["from", "to", "subject"] {
        if !fields.contains_key(required) {
            return message(
                StatusCode::BAD_REQUEST,
                &format!("'{required}' parameter is missing"),
            );
        }
    }
    if !fields.contains_key("text") && !fields.contains_key("html") {
        return message(
            StatusCode::BAD_REQUEST,
            "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified",
        );
    }
    let mut accepted = shared.accepted.lock().expect("fake");
    accepted.push(fields);
    let id = format!("<20261205.{}@{}>", accepted.len(), shared.domain);
    axum::Json(json!({"id": id, "message": "Queued. Thank you."})).into_response()
}
