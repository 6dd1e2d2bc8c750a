//! `ElevenLabsTts` against the fake `stream-input` WebSocket.

use std::time::Duration;

use adam_actors::ports::{
    CancellationToken, ProviderError, TextToSpeech, TtsChunk, TtsRequest, WordTiming,
};
use adam_providers::cloud::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use adam_providers::cloud::resilience::ResilienceConfig;
use serde_json::json;
use tokio::sync::mpsc;

use crate::fakes::elevenlabs::{
    CHUNKS, FakeElevenLabs, KEY, MS_PER_CHAR, Mode, TRAILING_SILENCE_MS, samples_for,
};
use crate::support::{eventually, key, metrics, no_retries, only_idle_timeout, resilience, within};

pub const SENTENCE: &str = "Hello there, we open at eight.";

pub fn config(fake: &FakeElevenLabs, resilience: ResilienceConfig) -> ElevenLabsConfig {
    ElevenLabsConfig {
        base_url: fake.base_url(),
        sample_rate: 16_000,
        resilience,
        ..ElevenLabsConfig::default()
    }
}

pub fn client(fake: &FakeElevenLabs, resilience: ResilienceConfig) -> ElevenLabsTts {
    ElevenLabsTts::new(config(fake, resilience), key(KEY), metrics().1).expect("client")
}

pub fn sentence(voice: &str) -> TtsRequest {
    TtsRequest {
        text: SENTENCE.into(),
        voice: voice.into(),
    }
}

/// Runs a synthesis; returns its result and the chunks received.
pub async fn speak(
    tts: &dyn TextToSpeech,
    request: TtsRequest,
) -> (Result<(), ProviderError>, Vec<TtsChunk>) {
    let (tx, mut rx) = mpsc::channel(64);
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

/// One 20 ms audio frame: how far a mouth shape may be from its sound.
const FRAME_MS: u32 = 20;

/// Each word of `SENTENCE` starts and ends within a frame of where its letters are in the
/// fake's audio (`MS_PER_CHAR` each), and so do the visemes the avatar draws from it; none
/// outlasts the `audio_ms` of audio.
fn assert_in_sync(words: &[WordTiming], audio_ms: u32) {
    let mut from = 0;
    for w in words {
        let at = from + SENTENCE[from..].find(w.word.as_str()).expect("the word");
        from = at + w.word.len();
        let (start, end) = ((at * MS_PER_CHAR) as u32, (from * MS_PER_CHAR) as u32);
        assert!(
            w.start_ms.abs_diff(start) <= FRAME_MS && w.end_ms.abs_diff(end) <= FRAME_MS,
            "{w:?}: its letters are at {start}–{end} ms"
        );
        for v in adam_actors::visemes::for_word(&w.word, w.start_ms, w.end_ms) {
            assert!(
                v.offset_ms + FRAME_MS >= start && v.offset_ms + v.duration_ms <= end + FRAME_MS,
                "{v:?} of {w:?} is outside {start}–{end} ms"
            );
            assert!(
                v.offset_ms + v.duration_ms <= audio_ms,
                "{v:?} after the audio"
            );
        }
    }
}

#[tokio::test]
async fn a_sentence_streams_as_pcm_with_word_timings() {
    let fake = FakeElevenLabs::start().await;
    let tts = client(&fake, resilience());
    let (result, chunks) = speak(&tts, sentence("default")).await;
    result.expect("spoken");

    let samples: Vec<i16> = chunks.iter().flat_map(|c| c.samples.clone()).collect();
    let speech = samples_for(SENTENCE, 16_000);
    assert_eq!(samples[..speech.len()], speech[..]);
    assert_eq!(
        samples.len() - speech.len(),
        16 * TRAILING_SILENCE_MS,
        "the trailing audio without alignment is passed on too"
    );
    assert!(chunks.iter().all(|c| c.sample_rate == 16_000));
    assert!(
        chunks.iter().filter(|c| !c.samples.is_empty()).count() == CHUNKS + 1,
        "streamed, not buffered"
    );
    // "there," and "eight." span chunks; the fake's alignments run short and long (as
    // ElevenLabs' do), and the words still match where their letters are in the audio.
    let words: Vec<WordTiming> = chunks.iter().flat_map(|c| c.words.clone()).collect();
    let names: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
    assert_eq!(names, ["Hello", "there", "we", "open", "at", "eight"]);
    assert_in_sync(&words, samples.len() as u32 / 16);

    let conn = &fake.conns()[0];
    assert_eq!(
        conn.voice, "21m00Tcm4TlvDq8ikWAM",
        "the configured voice for `default`"
    );
    assert_eq!(conn.key.as_deref(), Some(KEY));
    assert_eq!(conn.query["model_id"], "eleven_flash_v2_5");
    assert_eq!(conn.query["output_format"], "pcm_16000");
    assert_eq!(conn.query["sync_alignment"], "true");
    assert_eq!(conn.messages[0]["text"], " ");
    assert!(conn.messages[0]["voice_settings"]["stability"].is_number());
    assert_eq!(
        conn.messages[1],
        json!({"text": format!("{SENTENCE} "), "flush": true})
    );
    assert_eq!(conn.messages[2], json!({"text": ""}));
}

#[tokio::test]
async fn a_request_naming_an_elevenlabs_voice_gets_it() {
    let fake = FakeElevenLabs::start().await;
    let tts = client(&fake, resilience());
    speak(&tts, sentence("pNInz6obpgDQGcFmaJgB"))
        .await
        .0
        .expect("spoken");
    assert_eq!(fake.conns()[0].voice, "pNInz6obpgDQGcFmaJgB");
}

#[tokio::test]
async fn a_dead_socket_fails_fast_with_a_timeout() {
    let fake = FakeElevenLabs::start().await;
    fake.push(Mode::Silent);
    // Only the 300 ms idle timeout is short: the 5 s limit of `speak` proves it fired.
    let tts = client(&fake, only_idle_timeout());
    let (result, chunks) = speak(&tts, sentence("default")).await;
    assert_eq!(result, Err(ProviderError::Timeout));
    assert!(chunks.is_empty());
    eventually("the socket was closed", || fake.conns()[0].ended).await;
}

#[tokio::test]
async fn a_socket_that_dies_mid_sentence_is_not_retried() {
    let fake = FakeElevenLabs::start().await;
    fake.push(Mode::SilentAfterFirst);
    let tts = client(
        &fake,
        ResilienceConfig {
            max_retries: 2,
            ..only_idle_timeout()
        },
    );
    let (result, chunks) = speak(&tts, sentence("default")).await;
    assert_eq!(result, Err(ProviderError::Timeout));
    assert_eq!(chunks.len(), 1, "the first chunk was delivered once");
    assert_eq!(fake.attempts(), 1, "no second voice for half a sentence");
}

#[tokio::test]
async fn handshake_refusals_are_retried_on_5xx_and_not_on_401() {
    let fake = FakeElevenLabs::start().await;
    fake.push(Mode::Refuse {
        code: 503,
        headers: vec![],
    });
    let tts = client(&fake, resilience());
    let (result, chunks) = speak(&tts, sentence("default")).await;
    result.expect("spoken after a retry");
    assert!(!chunks.is_empty());
    assert_eq!(fake.attempts(), 2);

    let fake = FakeElevenLabs::start().await;
    let tts =
        ElevenLabsTts::new(config(&fake, resilience()), key("bad"), metrics().1).expect("client");
    let (result, _) = speak(&tts, sentence("default")).await;
    assert_eq!(
        result,
        Err(ProviderError::Rejected(
            "elevenlabs: HTTP 401: Invalid API key".into()
        ))
    );
    assert_eq!(fake.attempts(), 1);
}

#[tokio::test]
async fn error_messages_and_malformed_frames_fail() {
    let fake = FakeElevenLabs::start().await;
    fake.push(Mode::Error {
        error: "quota_exceeded",
        message: "This request exceeds your quota of 10000.",
    });
    let tts = client(&fake, resilience());
    let (result, _) = speak(&tts, sentence("default")).await;
    assert_eq!(
        result,
        Err(ProviderError::Rejected(
            "elevenlabs: This request exceeds your quota of 10000.".into()
        ))
    );
    assert_eq!(fake.attempts(), 1, "a quota is not retried");

    fake.push(Mode::Malformed);
    let tts = client(&fake, no_retries());
    let (result, _) = speak(&tts, sentence("default")).await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(ref m)) if m.contains("malformed")),
        "{result:?}"
    );
}

#[tokio::test]
async fn cancellation_closes_the_socket() {
    let fake = FakeElevenLabs::start().await;
    fake.push(Mode::Silent);
    let tts = client(&fake, resilience());
    let cancel = CancellationToken::new();
    let (tx, _rx) = mpsc::channel(8);
    let call = tts.synthesize(sentence("default"), tx, cancel.clone());
    let (result, ()) = within(Duration::from_secs(3), async {
        tokio::join!(call, async {
            eventually("the sentence reached the fake", || {
                fake.conns().first().is_some_and(|c| c.messages.len() == 3)
            })
            .await;
            cancel.cancel();
        })
    })
    .await;
    assert_eq!(result, Err(ProviderError::Cancelled));
    eventually("the fake saw the socket close", || fake.conns()[0].ended).await;
}
