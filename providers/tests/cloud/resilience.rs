//! Across clients: the circuit breaker, fallback chains, the metrics, and `Guarded`
//! around a provider that has no guard of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use adam_actors::ports::{
    AnswerEngine, BoxFuture, CancellationToken, ProviderError, TextToSpeech, TtsChunk, TtsRequest,
};
use adam_providers::cloud::chat::ChatCompletions;
use adam_providers::cloud::elevenlabs::ElevenLabsTts;
use adam_providers::cloud::fallback::{FallbackAnswer, FallbackTts};
use adam_providers::cloud::guarded::Guarded;
use adam_providers::cloud::resilience::{ProviderGuard, ResilienceConfig, Stage};
use prometheus::Registry;
use tokio::sync::mpsc;

use crate::chat::{answer, config as chat_config};
use crate::elevenlabs::{config as eleven_config, sentence, speak};
use crate::fakes::elevenlabs::{FakeElevenLabs, KEY, Mode};
use crate::fakes::openai::{FakeOpenAi, Reply, speech_samples};
use crate::openai_tts::client as openai_tts;
use crate::support::{key, metrics, no_retries, resilience, until, value};

fn breaker(failures: u32) -> ResilienceConfig {
    ResilienceConfig {
        breaker_failures: failures,
        breaker_cooldown_ms: 200,
        ..no_retries()
    }
}

fn circuit_open(registry: &Registry, provider: &str) -> f64 {
    value(registry, "provider_circuit_open", &[("provider", provider)])
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_and_recovers_through_a_probe() {
    let fake = FakeOpenAi::start().await;
    for _ in 0..3 {
        fake.push(Reply::error(503, "overloaded"));
    }
    let (registry, metrics) = metrics();
    let engine = ChatCompletions::new(chat_config(&fake, breaker(2)), Some(key("k")), metrics)
        .expect("client");

    for _ in 0..2 {
        let (result, _) = answer(&engine, CancellationToken::new()).await;
        assert!(matches!(result, Err(ProviderError::Unavailable(ref m)) if m.contains("503")));
    }
    assert_eq!(circuit_open(&registry, "openrouter"), 1.0);
    // Open: refused at once, without a request.
    let (result, _) = answer(&engine, CancellationToken::new()).await;
    assert_eq!(
        result,
        Err(ProviderError::Unavailable(
            "openrouter: circuit breaker open".into()
        ))
    );
    assert_eq!(fake.request_count(), 2);

    // After the cool-down one probe goes through; it meets the third 503, so the breaker
    // opens again; a later probe succeeds and closes it.
    let engine = &engine;
    until("a probe closed the breaker", || async move {
        answer(engine, CancellationToken::new()).await.0.is_ok()
    })
    .await;
    assert_eq!(
        fake.request_count(),
        4,
        "only the two probes reached the server"
    );
    assert_eq!(circuit_open(&registry, "openrouter"), 0.0);
    assert!(
        answer(engine, CancellationToken::new()).await.0.is_ok(),
        "closed again"
    );
    let count = |outcome: &str| {
        value(
            &registry,
            "provider_requests_total",
            &[("provider", "openrouter"), ("outcome", outcome)],
        )
    };
    assert_eq!(count("unavailable"), 3.0);
    assert_eq!(count("ok"), 2.0);
    assert!(count("circuit_open") >= 1.0);
}

#[tokio::test]
async fn speech_falls_back_to_the_second_provider_when_the_first_fails_before_speaking() {
    let eleven = FakeElevenLabs::start().await;
    let openai = FakeOpenAi::start().await;
    eleven.push(Mode::Refuse {
        code: 503,
        headers: vec![],
    });
    let (registry, metrics) = metrics();
    let first =
        ElevenLabsTts::new(eleven_config(&eleven, breaker(1)), key(KEY), metrics).expect("client");
    let chain = FallbackTts(vec![
        Arc::new(first),
        Arc::new(openai_tts(&openai, resilience())),
    ]);

    let (result, chunks) = speak(&chain, sentence("default")).await;
    result.expect("spoken by the second provider");
    let samples: Vec<i16> = chunks.iter().flat_map(|c| c.samples.clone()).collect();
    assert_eq!(samples, speech_samples());
    assert_eq!(openai.request_count(), 1);

    // ElevenLabs' breaker is now open: the chain moves on without trying it.
    assert_eq!(circuit_open(&registry, "elevenlabs"), 1.0);
    let (result, _) = speak(&chain, sentence("default")).await;
    result.expect("spoken");
    assert_eq!(eleven.attempts(), 1);
    assert_eq!(openai.request_count(), 2);
}

#[tokio::test]
async fn no_fallback_once_the_first_provider_has_spoken() {
    let eleven = FakeElevenLabs::start().await;
    let openai = FakeOpenAi::start().await;
    eleven.push(Mode::SilentAfterFirst);
    let first = ElevenLabsTts::new(eleven_config(&eleven, no_retries()), key(KEY), metrics().1)
        .expect("client");
    let chain = FallbackTts(vec![
        Arc::new(first),
        Arc::new(openai_tts(&openai, resilience())),
    ]);
    let (result, chunks) = speak(&chain, sentence("default")).await;
    assert_eq!(result, Err(ProviderError::Timeout));
    assert_eq!(chunks.len(), 1, "half a sentence, in one voice only");
    assert_eq!(openai.request_count(), 0);
}

#[tokio::test]
async fn answers_fall_back_from_openrouter_to_a_local_server() {
    let openrouter = FakeOpenAi::start().await;
    let local = FakeOpenAi::start().await;
    openrouter.push(Reply::error(402, "Insufficient credits"));
    local.set_answer(&["Eight", " to two."], Some((40, 4)));
    let mut local_config = chat_config(&local, resilience());
    local_config.name = "local".into();
    local_config.citations = false;
    let chain = FallbackAnswer(vec![
        Arc::new(
            ChatCompletions::new(
                chat_config(&openrouter, resilience()),
                Some(key("k")),
                metrics().1,
            )
            .expect("client"),
        ),
        Arc::new(ChatCompletions::new(local_config, None, metrics().1).expect("client")),
    ]);
    let (result, tokens) = answer(&chain, CancellationToken::new()).await;
    assert_eq!(tokens.concat(), "Eight to two.");
    assert_eq!(result.expect("answered").completion_tokens, 4);
    assert_eq!(openrouter.request_count(), 1, "402 is not retried");
    assert!(local.requests()[0].headers.get("authorization").is_none());
}

/// A provider without a guard: fails with 5xx-like errors a set number of times.
struct Flaky {
    failures: usize,
    calls: AtomicUsize,
}

impl TextToSpeech for Flaky {
    fn synthesize<'a>(
        &'a self,
        _request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        _cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                return Err(ProviderError::Unavailable("worker died".into()));
            }
            let chunk = TtsChunk {
                samples: vec![1, 2, 3],
                sample_rate: 22_050,
                words: Vec::new(),
            };
            out.send(chunk).await.map_err(|_| ProviderError::Cancelled)
        })
    }
}

#[tokio::test]
async fn guarded_adds_retries_and_metrics_to_any_provider() {
    let (registry, metrics) = metrics();
    let tts = Guarded::new(
        Flaky {
            failures: 2,
            calls: AtomicUsize::new(0),
        },
        ProviderGuard::new("espeak", Stage::Tts, resilience(), metrics),
    );
    let (result, chunks) = speak(&tts, sentence("en")).await;
    result.expect("third attempt works");
    assert_eq!(chunks.len(), 1);
    let count = |outcome: &str| {
        value(
            &registry,
            "provider_requests_total",
            &[
                ("provider", "espeak"),
                ("stage", "tts"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(count("unavailable"), 2.0);
    assert_eq!(count("ok"), 1.0);
    assert_eq!(
        value(
            &registry,
            "provider_latency_seconds",
            &[("provider", "espeak")]
        ),
        1.0
    );
}

#[tokio::test]
async fn an_answer_engine_behind_a_guard_times_out_before_its_first_token() {
    struct Stuck;
    impl AnswerEngine for Stuck {
        fn answer<'a>(
            &'a self,
            _request: adam_actors::ports::AnswerRequest,
            _tokens: mpsc::Sender<String>,
            _cancel: CancellationToken,
        ) -> BoxFuture<'a, Result<adam_actors::ports::AnswerUsage, ProviderError>> {
            Box::pin(std::future::pending())
        }
    }
    let engine = Guarded::new(
        Stuck,
        ProviderGuard::new(
            "local-llm",
            Stage::Answer,
            ResilienceConfig {
                first_byte_timeout_ms: 100,
                ..no_retries()
            },
            metrics().1,
        ),
    );
    let (result, _) = answer(&engine, CancellationToken::new()).await;
    assert_eq!(result, Err(ProviderError::Timeout));
}
