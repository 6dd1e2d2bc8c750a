//! A cloud vendor that hangs or fails at each stage (transcription, embeddings, answer,
//! speech), with no fallback configured: what the customer sees, and the next turn.

use super::{Client, error_codes, events, metrics, quick, root_and_dealership, value};
use crate::cloud::fakes::elevenlabs::{FakeElevenLabs, Mode};
use crate::cloud::fakes::openai::{FakeOpenAi, Reply};
use crate::helpers::TestApp;
use crate::realtime::Item;

/// Tight limits so a hanging provider fails in about a second; one attempt per call and
/// no circuit breaker, so each scripted fault costs exactly one turn.
fn strict(r: &mut adam_providers::cloud::resilience::ResilienceConfig) {
    r.connect_timeout_ms = 500;
    r.first_byte_timeout_ms = 800;
    r.idle_timeout_ms = 800;
    r.total_timeout_ms = 2_000;
    r.max_retries = 0;
    r.breaker_failures = 0;
}

/// One stage on a fake vendor, with no fallback: the vendor's faults reach the customer.
async fn one_cloud_stage(
    stage: &'static str,
    openai: &FakeOpenAi,
    eleven: &FakeElevenLabs,
) -> TestApp {
    let (base, eleven_base) = (openai.base_url(), eleven.base_url());
    crate::helpers::spawn_app_with(move |s| {
        quick(s);
        s.knowledge.demo_dir = None;
        let p = &mut s.providers;
        match stage {
            "stt" => p.stt = vec![adam_providers::registry::SttVendor::OpenAi],
            "answer" => p.answer = vec![adam_providers::registry::AnswerVendor::OpenRouter],
            "embeddings" => p.embeddings = adam_providers::registry::EmbeddingsVendor::OpenAi,
            _ => p.tts = vec![adam_providers::registry::TtsVendor::ElevenLabs],
        }
        p.openai.embeddings.base_url = base.clone();
        p.openai.embeddings.dimension = 8;
        p.openai.embeddings.request_dimensions = true;
        strict(&mut p.openai.embeddings.resilience);
        p.openai.transcription.base_url = base.clone();
        strict(&mut p.openai.transcription.resilience);
        p.openrouter.base_url = base;
        strict(&mut p.openrouter.resilience);
        p.elevenlabs.base_url = eleven_base;
        p.elevenlabs.voice_id = "voice-1".into();
        strict(&mut p.elevenlabs.resilience);
        p.keys.set(
            adam_providers::registry::Account::OpenAi,
            "sk-openai-test".to_owned().into(),
        );
        p.keys.set(
            adam_providers::registry::Account::OpenRouter,
            "sk-or-test".to_owned().into(),
        );
        p.keys.set(
            adam_providers::registry::Account::ElevenLabs,
            crate::cloud::fakes::elevenlabs::KEY.to_owned().into(),
        );
    })
    .await
}

#[tokio::test]
async fn a_transcription_service_that_hangs_or_fails_costs_one_turn_each_and_the_next_is_answered()
{
    let (openai, eleven) = (FakeOpenAi::start().await, FakeElevenLabs::start().await);
    let app = one_cloud_stage("stt", &openai, &eleven).await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut client = Client::open(&app, &token, &dealership).await;
    for fault in [Reply::Hang, Reply::error(500, "upstream down")] {
        openai.push(fault.clone());
        let items = client.speak().await;
        assert_eq!(error_codes(&items), ["transcription_failed"], "{fault:?}");
        assert_eq!(events(&items, "response.created").count(), 0, "{items:?}");
    }
    let items = client.speak().await;
    let heard = events(
        &items,
        "conversation.item.input_audio_transcription.completed",
    )
    .next()
    .expect("transcript");
    assert_eq!(heard["transcript"], "When do you open on Saturday?");
    let done = events(&items, "response.done").next().expect("answer");
    assert_eq!(done["response"]["status"], "completed");
    assert!(items.iter().any(|i| matches!(i, Item::Audio(_))));
}

#[tokio::test]
async fn an_answer_service_that_hangs_or_fails_gets_a_spoken_apology_and_the_next_question_is_answered()
 {
    let (openai, eleven) = (FakeOpenAi::start().await, FakeElevenLabs::start().await);
    let app = one_cloud_stage("answer", &openai, &eleven).await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut client = Client::open(&app, &token, &dealership).await;
    for fault in [Reply::Hang, Reply::error(503, "overloaded")] {
        openai.push(fault.clone());
        client.ask("When do you open on Saturday?").await;
        let items = client.until("response.done").await;
        assert_eq!(error_codes(&items), ["answer_failed"], "{fault:?}");
        let done = events(&items, "response.done").next().expect("done");
        assert_eq!(done["response"]["status"], "failed");
        assert!(
            done["response"]["output_text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Sorry")),
            "{done}"
        );
        assert!(
            items.iter().any(|i| matches!(i, Item::Audio(_))),
            "the apology is spoken"
        );
    }
    client.ask("When do you open on Saturday?").await;
    let items = client.until("response.done").await;
    let done = events(&items, "response.done").next().expect("done");
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(
        done["response"]["output_text"],
        "We open at 8 on Saturdays."
    );
}

#[tokio::test]
async fn an_embedding_service_that_hangs_or_fails_still_gets_the_question_answered() {
    let (openai, eleven) = (FakeOpenAi::start().await, FakeElevenLabs::start().await);
    let app = one_cloud_stage("embeddings", &openai, &eleven).await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut client = Client::open(&app, &token, &dealership).await;
    for fault in [
        Reply::Hang,
        Reply::error(500, "upstream down"),
        Reply::Normal,
    ] {
        openai.push(fault.clone());
        client.ask("When do you open?").await;
        let items = client.until("response.done").await;
        // Without its embedding the question skips the cache and the documents; the
        // customer still gets an answer, and no error.
        assert_eq!(error_codes(&items), Vec::<String>::new(), "{fault:?}");
        let done = events(&items, "response.done").next().expect("done");
        assert_eq!(done["response"]["status"], "completed", "{fault:?}");
        assert_eq!(done["response"]["output_text"], "We open at eight.");
    }
    let embedded = openai
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/embeddings")
        .count();
    assert_eq!(
        embedded, 3,
        "each question asked the embedding service once"
    );
    let m = metrics(&app).await;
    for outcome in ["timeout", "unavailable", "ok"] {
        let series = format!(
            "adam_provider_requests_total{{outcome=\"{outcome}\",provider=\"openai-embeddings\",stage=\"embed\"}}"
        );
        assert_eq!(value(&m, &series), 1.0, "{series}\n{m}");
    }
}

#[tokio::test]
async fn a_speech_service_that_hangs_or_refuses_gets_a_written_apology_and_the_next_answer_is_spoken()
 {
    let (openai, eleven) = (FakeOpenAi::start().await, FakeElevenLabs::start().await);
    let app = one_cloud_stage("tts", &openai, &eleven).await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut client = Client::open(&app, &token, &dealership).await;
    for fault in [
        Mode::Silent,
        Mode::Refuse {
            code: 500,
            headers: Vec::new(),
        },
    ] {
        eleven.push(fault.clone());
        client.ask("When do you open?").await;
        let items = client.until("response.done").await;
        assert_eq!(error_codes(&items), ["tts_failed"], "{fault:?}");
        let done = events(&items, "response.done").next().expect("done");
        assert_eq!(done["response"]["status"], "failed");
        assert!(
            done["response"]["output_text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Sorry")),
            "{done}"
        );
    }
    client.ask("When do you open?").await;
    let items = client.until("response.done").await;
    let done = events(&items, "response.done").next().expect("done");
    assert_eq!(done["response"]["status"], "completed");
    assert!(items.iter().any(|i| matches!(i, Item::Audio(_))));
}
