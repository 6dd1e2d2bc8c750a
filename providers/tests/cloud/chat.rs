//! `ChatCompletions` against the fake OpenAI-compatible server.

use std::time::{Duration, Instant};

use adam_actors::ports::{
    AnswerEngine, AnswerRequest, AnswerUsage, CancellationToken, ContextTurn, Passage,
    ProviderError,
};
use adam_providers::cloud::chat::{ChatCompletions, ChatConfig, MaxTokensField};
use adam_providers::cloud::resilience::ResilienceConfig;
use serde_json::json;
use tokio::sync::mpsc;

use crate::fakes::openai::{FakeOpenAi, Piece, Reply, chunk};
use crate::support::{
    eventually, key, metrics, no_retries, only_idle_timeout, resilience, value, within,
};

pub fn passage(title: &str, text: &str) -> Passage {
    Passage {
        document_id: title.to_lowercase(),
        title: title.into(),
        text: text.into(),
        score: 0.8,
        page: None,
    }
}

pub fn request() -> AnswerRequest {
    AnswerRequest {
        tenant: "riverside".into(),
        question: "When do you open on Saturday?".into(),
        search_query: "When do you open on Saturday?".into(),
        history: vec![ContextTurn {
            user: "Hi".into(),
            assistant: "Hello! How can I help?".into(),
        }],
        persona: "You are Emma at Riverside Auto.".into(),
        timezone: String::new(),
        passages: vec![
            passage("Hours", "Saturday 8 am to 2 pm."),
            passage("Service", "Oil changes take 30 minutes."),
        ],
    }
}

pub fn config(fake: &FakeOpenAi, resilience: ResilienceConfig) -> ChatConfig {
    ChatConfig {
        base_url: fake.base_url(),
        model: "openai/gpt-4o-mini".into(),
        resilience,
        ..ChatConfig::default()
    }
}

fn client(fake: &FakeOpenAi, resilience: ResilienceConfig) -> ChatCompletions {
    ChatCompletions::new(
        config(fake, resilience),
        Some(key("sk-or-test")),
        metrics().1,
    )
    .expect("client")
}

/// Runs an answer; returns the result and every token received.
pub async fn answer(
    engine: &dyn AnswerEngine,
    cancel: CancellationToken,
) -> (Result<AnswerUsage, ProviderError>, Vec<String>) {
    let (tx, mut rx) = mpsc::channel(64);
    let result = within(
        Duration::from_secs(10),
        engine.answer(request(), tx, cancel),
    )
    .await;
    let mut tokens = Vec::new();
    while let Ok(t) = rx.try_recv() {
        tokens.push(t);
    }
    (result, tokens)
}

#[tokio::test]
async fn streams_an_answer_without_citation_markers_and_reports_usage() {
    let fake = FakeOpenAi::start().await;
    let mut cfg = config(&fake, resilience());
    cfg.app_url = Some("https://adam.example".into());
    cfg.app_title = Some("Adam".into());
    let (registry, metrics) = metrics();
    let engine = ChatCompletions::new(cfg, Some(key("sk-or-test")), metrics).expect("client");

    let (result, tokens) = answer(&engine, CancellationToken::new()).await;

    let usage = result.expect("answer");
    assert_eq!(tokens.concat(), "We open at 8 on Saturdays.");
    assert!(tokens.len() >= 3, "streamed in pieces: {tokens:?}");
    assert_eq!(
        usage,
        AnswerUsage {
            prompt_tokens: 57,
            completion_tokens: 9,
            cited: Some(vec![0]),
            unanswered: false,
        }
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.headers["authorization"], "Bearer sk-or-test");
    assert_eq!(sent.headers["http-referer"], "https://adam.example");
    assert_eq!(sent.headers["x-title"], "Adam");
    assert_eq!(sent.json["stream"], json!(true));
    assert_eq!(sent.json["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent.json["model"], "openai/gpt-4o-mini");
    assert_eq!(sent.json["max_tokens"], 300);
    assert_eq!(sent.json["temperature"], 0.3);
    let messages = sent.json["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4, "system, one earlier turn, the question");
    let system = messages[0]["content"].as_str().expect("system");
    assert!(system.starts_with("You are Emma at Riverside Auto."));
    assert!(
        system.contains(
            "[1] Hours: Saturday 8 am to 2 pm.\n[2] Service: Oil changes take 30 minutes."
        )
    );
    assert_eq!(
        messages[3],
        json!({"role": "user", "content": "When do you open on Saturday?"})
    );
    assert_eq!(
        value(
            &registry,
            "provider_requests_total",
            &[("provider", "openrouter"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &registry,
            "provider_latency_seconds",
            &[("stage", "answer")]
        ),
        1.0
    );
}

#[tokio::test]
async fn the_prompt_fits_the_token_budget() {
    let fake = FakeOpenAi::start().await;
    let mut cfg = config(&fake, resilience());
    cfg.max_prompt_tokens = 170;
    let engine = ChatCompletions::new(cfg, None, metrics().1).expect("client");
    let mut req = request();
    req.passages
        .push(passage("Manual", &"torque spec ".repeat(500)));
    req.history = (0..20)
        .map(|i| ContextTurn {
            user: format!("question {i}"),
            assistant: format!("answer {i} {}", "blah ".repeat(10)),
        })
        .collect();
    let prompt = engine.prompt(&req).expect("prompt");
    assert!(prompt.tokens <= 170, "{} tokens", prompt.tokens);
    assert_eq!(prompt.sources, [0, 1], "the huge passage is left out");
    assert!(prompt.history_turns < 20);
}

#[tokio::test]
async fn a_local_server_gets_no_key_and_usage_is_estimated_when_not_sent() {
    let fake = FakeOpenAi::start().await;
    fake.set_answer(&["Eight", " to two."], None);
    let mut cfg = config(&fake, resilience());
    cfg.citations = false;
    cfg.max_tokens_field = MaxTokensField::MaxCompletionTokens;
    cfg.temperature = None;
    let engine = ChatCompletions::new(cfg, None, metrics().1).expect("client");
    let (result, tokens) = answer(&engine, CancellationToken::new()).await;
    let usage = result.expect("answer");
    assert_eq!(tokens.concat(), "Eight to two.");
    let sent = &fake.requests()[0];
    assert!(sent.headers.get("authorization").is_none());
    assert_eq!(sent.json["max_completion_tokens"], 300);
    assert!(sent.json.get("max_tokens").is_none() && sent.json.get("temperature").is_none());
    assert!(
        usage.prompt_tokens > 20 && usage.completion_tokens > 0,
        "{usage:?}"
    );
    assert_eq!(usage.cited, None);
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Status {
        code: 429,
        headers: vec![("retry-after", "1")],
        body: json!({"error": {"code": 429, "message": "Rate limit exceeded"}}).to_string(),
    });
    let engine = client(&fake, resilience());
    let started = Instant::now();
    let (result, tokens) = answer(&engine, CancellationToken::new()).await;
    assert!(result.is_ok());
    assert_eq!(tokens.concat(), "We open at 8 on Saturdays.");
    assert_eq!(fake.request_count(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_refusals_are_not() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::error(502, "Upstream model is down"));
    fake.push(Reply::error(503, "No provider available"));
    let engine = client(&fake, resilience());
    let (result, tokens) = answer(&engine, CancellationToken::new()).await;
    assert!(result.is_ok());
    assert_eq!(tokens.concat(), "We open at 8 on Saturdays.", "spoken once");
    assert_eq!(fake.request_count(), 3);

    let fake = FakeOpenAi::start().await;
    fake.push(Reply::error(401, "No auth credentials found"));
    let engine = client(&fake, resilience());
    let (result, _) = answer(&engine, CancellationToken::new()).await;
    assert_eq!(
        result,
        Err(ProviderError::Rejected(
            "openrouter: HTTP 401: No auth credentials found".into()
        ))
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn a_mid_stream_error_after_output_is_not_retried() {
    let fake = FakeOpenAi::start().await;
    let error = json!({
        "id": "gen-1", "object": "chat.completion.chunk",
        "error": {"code": "server_error", "message": "Provider disconnected"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    });
    fake.push(Reply::Body(vec![
        Piece::text(&chunk(json!({"content": "We open"}), None)),
        Piece::text(&format!("data: {error}\n\n")),
    ]));
    let engine = client(&fake, resilience());
    let (result, tokens) = answer(&engine, CancellationToken::new()).await;
    assert_eq!(
        result,
        Err(ProviderError::Unavailable(
            "openrouter: Provider disconnected".into()
        ))
    );
    assert_eq!(tokens, ["We open"]);
    assert_eq!(
        fake.request_count(),
        1,
        "no second attempt once words were out"
    );
}

#[tokio::test]
async fn a_mid_stream_error_before_any_output_is_retried() {
    let fake = FakeOpenAi::start().await;
    let error = json!({"error": {"code": 502, "message": "Upstream error"}});
    fake.push(Reply::Body(vec![
        Piece::text(": OPENROUTER PROCESSING\n\n"),
        Piece::text(&format!("data: {error}\n\n")),
    ]));
    let engine = client(&fake, resilience());
    let (result, tokens) = answer(&engine, CancellationToken::new()).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(tokens.concat(), "We open at 8 on Saturdays.");
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn malformed_events_and_cut_streams_fail() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Body(vec![Piece::text(
        "data: {\"choices\": [oops\n\n",
    )]));
    let engine = client(&fake, no_retries());
    let (result, _) = answer(&engine, CancellationToken::new()).await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(ref m)) if m.contains("malformed")),
        "{result:?}"
    );

    // The connection breaks after some output.
    fake.push(Reply::Body(vec![
        Piece::text(&chunk(json!({"content": "We"}), None)),
        Piece::Abort,
    ]));
    let (result, tokens) = answer(&engine, CancellationToken::new()).await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(tokens, ["We"]);

    // A 200 with a JSON error instead of an event stream.
    fake.push(Reply::status(
        200,
        json!({"error": {"message": "Model overloaded", "code": 503}}),
    ));
    let (result, _) = answer(&engine, CancellationToken::new()).await;
    assert_eq!(
        result,
        Err(ProviderError::Unavailable(
            "openrouter: Model overloaded".into()
        ))
    );

    // The body ends cleanly but without [DONE] or a finish reason.
    fake.push(Reply::Body(vec![Piece::text(&chunk(
        json!({"content": "We"}),
        None,
    ))]));
    let (result, _) = answer(&engine, CancellationToken::new()).await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(ref m)) if m.contains("[DONE]")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Hang);
    fake.push(Reply::Hang);
    let engine = client(
        &fake,
        ResilienceConfig {
            first_byte_timeout_ms: 200,
            max_retries: 1,
            ..resilience()
        },
    );
    let (result, _) = answer(&engine, CancellationToken::new()).await;
    assert_eq!(result, Err(ProviderError::Timeout));
    assert_eq!(fake.request_count(), 2, "one retry after the first timeout");
}

#[tokio::test]
async fn a_stream_that_stops_mid_answer_times_out_without_retry() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Body(vec![
        Piece::text(&chunk(json!({"content": "We open"}), None)),
        Piece::Hang,
    ]));
    let engine = client(&fake, only_idle_timeout());
    let (result, tokens) = answer(&engine, CancellationToken::new()).await;
    assert_eq!(result, Err(ProviderError::Timeout));
    assert_eq!(tokens, ["We open"]);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn keep_alive_comments_hold_the_stream_open_and_cancellation_ends_it() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Body(vec![
        Piece::text(&chunk(json!({"content": "We open"}), None)),
        Piece::Trickle,
    ]));
    let engine = client(&fake, resilience());
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(8);
    let call = engine.answer(request(), tx, cancel.clone());
    let cancel_after_first_token = async {
        assert_eq!(rx.recv().await.as_deref(), Some("We open"));
        // Comments every 20 ms carry the stream past the 300 ms idle timeout.
        eventually("half a second of keep-alives", || fake.trickled() >= 25).await;
        cancel.cancel();
    };
    let (result, ()) = within(Duration::from_secs(5), async {
        tokio::join!(call, cancel_after_first_token)
    })
    .await;
    assert_eq!(result, Err(ProviderError::Cancelled));
    eventually("the fake saw the client hang up", || fake.abandoned() == 1).await;
}
