//! `OpenAiTranscriber` against the fake OpenAI server.

use std::sync::Arc;
use std::time::Duration;

use adam_actors::ports::{CancellationToken, ProviderError, SpeechToText, SttRequest, Vocabulary};
use adam_providers::cloud::openai_stt::{OpenAiTranscriber, TranscriptionConfig};
use tokio::sync::mpsc;

use crate::fakes::openai::{FakeOpenAi, Reply};
use crate::support::{eventually, key, metrics, no_retries, resilience, within};

fn client(
    fake: &FakeOpenAi,
    resilience: adam_providers::cloud::resilience::ResilienceConfig,
) -> OpenAiTranscriber {
    OpenAiTranscriber::new(
        TranscriptionConfig {
            base_url: fake.base_url(),
            prompt: "Riverside Auto".into(),
            resilience,
            ..TranscriptionConfig::default()
        },
        key("sk-test"),
        metrics().1,
    )
    .expect("client")
}

fn turn() -> SttRequest {
    SttRequest {
        audio: Arc::from((0..8_000).map(|i| (i % 300) as i16).collect::<Vec<_>>()),
        sample_rate: 16_000,
        vocabulary: Vocabulary::new(vec!["Aurora".into(), "Port Ellery".into()]),
    }
}

async fn transcribe(
    stt: &dyn SpeechToText,
    cancel: CancellationToken,
) -> Result<String, ProviderError> {
    let (tx, _rx) = mpsc::channel(8);
    within(Duration::from_secs(5), stt.transcribe(turn(), tx, cancel)).await
}

#[tokio::test]
async fn the_turn_is_uploaded_as_a_wav_file() {
    let fake = FakeOpenAi::start().await;
    let stt = client(&fake, resilience());
    assert_eq!(
        transcribe(&stt, CancellationToken::new()).await,
        Ok("When do you open on Saturday?".into())
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.headers["authorization"], "Bearer sk-test");
    assert!(
        sent.headers["content-type"]
            .to_str()
            .expect("header")
            .starts_with("multipart/form-data; boundary=")
    );
    let wav = &sent.form["file"];
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(&wav[8..12], b"WAVE");
    assert_eq!(
        u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
        16_000
    );
    assert_eq!(wav.len(), 44 + 16_000, "8000 samples of 2 bytes");
    assert_eq!(sent.form["file_name"], b"turn.wav");
    assert_eq!(sent.form["model"], b"gpt-4o-mini-transcribe");
    assert_eq!(sent.form["response_format"], b"json");
    assert_eq!(sent.form["language"], b"en");
    // The configured hint, then the dealership's words.
    assert_eq!(sent.form["prompt"], b"Riverside Auto Aurora, Port Ellery.");
}

#[tokio::test]
async fn rate_limits_are_retried_and_malformed_replies_fail() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Status {
        code: 429,
        headers: vec![("retry-after-ms", "50")],
        body: r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#.into(),
    });
    let stt = client(&fake, resilience());
    assert!(transcribe(&stt, CancellationToken::new()).await.is_ok());
    assert_eq!(fake.request_count(), 2);

    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Body(vec![crate::fakes::openai::Piece::text(
        "{\"txt\": 1}",
    )]));
    let stt = client(&fake, no_retries());
    let result = transcribe(&stt, CancellationToken::new()).await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(ref m)) if m.contains("malformed")),
        "{result:?}"
    );
}

#[tokio::test]
async fn cancellation_stops_a_pending_upload() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Hang);
    let stt = client(&fake, resilience());
    let cancel = CancellationToken::new();
    let (tx, _rx) = mpsc::channel(8);
    let call = stt.transcribe(turn(), tx, cancel.clone());
    let (result, ()) = within(Duration::from_secs(3), async {
        tokio::join!(call, async {
            eventually("the upload reached the fake", || fake.request_count() == 1).await;
            cancel.cancel();
        })
    })
    .await;
    assert_eq!(result, Err(ProviderError::Cancelled));
}
