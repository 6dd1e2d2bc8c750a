//! `OpenAiTts` against the fake OpenAI server.

use std::time::Duration;

use adam_actors::ports::{CancellationToken, ProviderError, TextToSpeech, TtsChunk, TtsRequest};
use adam_providers::cloud::openai_tts::{OpenAiTts, OpenAiTtsConfig};
use adam_providers::cloud::resilience::ResilienceConfig;
use tokio::sync::mpsc;

use crate::fakes::openai::{FakeOpenAi, Piece, Reply, speech_samples};
use crate::support::{key, metrics, resilience, within};

pub fn client(fake: &FakeOpenAi, resilience: ResilienceConfig) -> OpenAiTts {
    OpenAiTts::new(
        OpenAiTtsConfig {
            base_url: fake.base_url(),
            resilience,
            ..OpenAiTtsConfig::default()
        },
        key("sk-test"),
        metrics().1,
    )
    .expect("client")
}

async fn speak(tts: &OpenAiTts, voice: &str) -> (Result<(), ProviderError>, Vec<TtsChunk>) {
    let (tx, mut rx) = mpsc::channel(64);
    let request = TtsRequest {
        text: "We open at eight.".into(),
        voice: voice.into(),
    };
    let result = within(
        Duration::from_secs(5),
        tts.synthesize(request, tx, CancellationToken::new()),
    )
    .await;
    let mut chunks = Vec::new();
    while let Ok(c) = rx.try_recv() {
        chunks.push(c);
    }
    (result, chunks)
}

#[tokio::test]
async fn raw_pcm_is_streamed_at_24_khz() {
    let fake = FakeOpenAi::start().await;
    let tts = client(&fake, resilience());
    let (result, chunks) = speak(&tts, "en-us").await;
    result.expect("spoken");
    let samples: Vec<i16> = chunks.iter().flat_map(|c| c.samples.clone()).collect();
    assert_eq!(samples, speech_samples(), "odd-sized pieces reassembled");
    assert!(chunks.len() >= 2, "streamed");
    assert!(
        chunks
            .iter()
            .all(|c| c.sample_rate == 24_000 && c.words.is_empty())
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.headers["authorization"], "Bearer sk-test");
    assert_eq!(sent.json["model"], "gpt-4o-mini-tts");
    assert_eq!(sent.json["input"], "We open at eight.");
    assert_eq!(
        sent.json["voice"], "alloy",
        "not an OpenAI voice: the configured one"
    );
    assert_eq!(sent.json["response_format"], "pcm");

    speak(&tts, "Coral").await.0.expect("spoken");
    assert_eq!(fake.requests()[1].json["voice"], "coral");
}

#[tokio::test]
async fn a_5xx_is_retried_but_a_stall_after_audio_is_not() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::error(500, "Internal error"));
    let tts = client(&fake, resilience());
    let (result, chunks) = speak(&tts, "alloy").await;
    result.expect("spoken");
    assert_eq!(
        chunks.iter().map(|c| c.samples.len()).sum::<usize>(),
        speech_samples().len()
    );
    assert_eq!(fake.request_count(), 2);

    fake.push(Reply::Body(vec![
        Piece::Bytes(vec![1, 0, 2, 0]),
        Piece::Hang,
    ]));
    let (result, chunks) = speak(&tts, "alloy").await;
    assert_eq!(result, Err(ProviderError::Timeout));
    assert_eq!(chunks.len(), 1);
    assert_eq!(fake.request_count(), 3, "no retry after audio went out");
}

#[tokio::test]
async fn tts_1_is_refused_a_newer_voice_or_instructions_and_never_sent_one() {
    let fake = FakeOpenAi::start().await;
    let with = |model: &str, voice: &str, instructions: &str| {
        OpenAiTts::new(
            OpenAiTtsConfig {
                base_url: fake.base_url(),
                model: model.into(),
                voice: voice.into(),
                instructions: instructions.into(),
                ..OpenAiTtsConfig::default()
            },
            key("sk-test"),
            metrics().1,
        )
    };
    assert!(
        matches!(with("tts-1", "cedar", ""), Err(ProviderError::Rejected(m)) if m.contains("voice")),
    );
    assert!(
        matches!(with("tts-1-hd", "alloy", "Calm."), Err(ProviderError::Rejected(m)) if m.contains("instructions")),
    );
    // A session asking for a newer voice gets the configured one from tts-1 (the fake,
    // like OpenAI, answers 400 to anything else).
    let tts = with("tts-1", "alloy", "").expect("a supported configuration");
    let (result, chunks) = speak(&tts, "marin").await;
    result.expect("spoken");
    assert!(!chunks.is_empty());
    assert_eq!(fake.requests()[0].json["voice"], "alloy");
    // gpt-4o-mini-tts takes it.
    let tts = with("gpt-4o-mini-tts", "alloy", "Calm.").expect("client");
    speak(&tts, "marin").await.0.expect("spoken");
    assert_eq!(fake.requests()[1].json["voice"], "marin");
    assert_eq!(fake.requests()[1].json["instructions"], "Calm.");
}
