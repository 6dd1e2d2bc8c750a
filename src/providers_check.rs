//! `adam providers check`: one short real call per configured cloud vendor, so that an
//! operator can check a deployment's keys in one command. A vendor whose key is not set
//! is reported as not configured (and not called); any failure makes the command fail.
//!
//! The calls: OpenRouter and OpenAI a chat completion; OpenAI also an embedding, the
//! transcription of a bundled WAV and a spoken sentence; Deepgram the same WAV over its
//! live socket, ended with `Finalize`; ElevenLabs a spoken sentence; HeyGen LiveAvatar a
//! session token (no session is started, so nothing is streamed or billed by the minute).

use std::sync::Arc;
use std::time::{Duration, Instant};

use adam_actors::ports::{
    AnswerEngine, AnswerRequest, CancellationToken, ProviderError, SpeechToText, SttRequest,
    TextToSpeech, TtsRequest,
};
use adam_providers::cloud::chat::{ChatCompletions, ChatConfig};
use adam_providers::cloud::deepgram::DeepgramStt;
use adam_providers::cloud::elevenlabs::ElevenLabsTts;
use adam_providers::cloud::embeddings::OpenAiEmbedder;
use adam_providers::cloud::heygen::HeyGen;
use adam_providers::cloud::metrics::ProviderMetrics;
use adam_providers::cloud::openai_stt::OpenAiTranscriber;
use adam_providers::cloud::openai_tts::OpenAiTts;
use secrecy::SecretString;
use tokio::sync::mpsc;

use adam_providers::registry::{Account, AnswerVendor, ProviderSettings};

/// The bundled recording the speech-to-text checks transcribe ("When do you open on
/// Saturday?", espeak-ng, 16 kHz mono PCM16).
const CHECK_WAV: &[u8] = include_bytes!("../examples/providers-check.wav");
/// The sentence the speech checks synthesize.
const CHECK_SENTENCE: &str = "Adam's speech check.";
/// The longest a vendor's calls may take together, on top of each client's own limits.
const VENDOR_DEADLINE: Duration = Duration::from_secs(60);

/// What one vendor's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every call succeeded; what they returned, briefly.
    Ok(String),
    /// A call failed, with the vendor's error.
    Failed(String),
    /// No key (the variable named): nothing was called.
    NotConfigured(String),
}

/// One vendor's line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorCheck {
    /// `openrouter`, `openai`, `deepgram`, `elevenlabs` or `heygen`.
    pub vendor: &'static str,
    /// The result.
    pub outcome: Outcome,
}

impl std::fmt::Display for VendorCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (status, detail) = match &self.outcome {
            Outcome::Ok(d) => ("ok", d.as_str()),
            Outcome::Failed(d) => ("failed", d.as_str()),
            Outcome::NotConfigured(d) => ("not configured", d.as_str()),
        };
        write!(f, "{:<11} {:<15} {detail}", self.vendor, status)
    }
}

/// Checks every vendor, in a fixed order, one after the other.
pub async fn check_all(settings: &ProviderSettings) -> Vec<VendorCheck> {
    let metrics = match ProviderMetrics::register(&prometheus::Registry::new()) {
        Ok(m) => m,
        Err(e) => {
            let failed = |vendor| VendorCheck {
                vendor,
                outcome: Outcome::Failed(format!("provider metrics: {e}")),
            };
            return Account::ALL.iter().map(|a| failed(a.name())).collect();
        }
    };
    let mut report = Vec::with_capacity(Account::ALL.len());
    for account in Account::ALL {
        let vendor = account.name();
        let key = settings.keys.get(account).cloned();
        // OpenRouter's key is optional for a local OpenAI-compatible server in the chain.
        let configured = key.is_some()
            || (account == Account::OpenRouter
                && settings.answer.contains(&AnswerVendor::OpenRouter));
        if !configured {
            report.push(VendorCheck {
                vendor,
                outcome: Outcome::NotConfigured(format!("{} is not set", account.env_var())),
            });
            continue;
        }
        let Some(key) = key else {
            report.push(run(vendor, chat(&settings.openrouter, None, &metrics)).await);
            continue;
        };
        report.push(match account {
            Account::OpenRouter => {
                run(vendor, chat(&settings.openrouter, Some(key), &metrics)).await
            }
            Account::OpenAi => run(vendor, openai(settings, &key, &metrics)).await,
            Account::Deepgram => run(vendor, deepgram(settings, &key, &metrics)).await,
            Account::ElevenLabs => run(vendor, elevenlabs(settings, &key, &metrics)).await,
            Account::HeyGen => run(vendor, heygen(settings, &key, &metrics)).await,
        });
    }
    report
}

async fn run(
    vendor: &'static str,
    calls: impl Future<Output = Result<String, ProviderError>>,
) -> VendorCheck {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(VENDOR_DEADLINE, calls).await {
        Ok(Ok(detail)) => Outcome::Ok(format!(
            "{detail} ({:.1} s)",
            started.elapsed().as_secs_f64()
        )),
        Ok(Err(error)) => Outcome::Failed(error.to_string()),
        Err(_) => Outcome::Failed(format!("no answer within {} s", VENDOR_DEADLINE.as_secs())),
    };
    VendorCheck { vendor, outcome }
}

/// Labels a failed call with what it was.
fn step(what: &'static str) -> impl Fn(ProviderError) -> ProviderError {
    move |error| match error {
        ProviderError::Rejected(m) => ProviderError::Rejected(format!("{what}: {m}")),
        ProviderError::Unavailable(m) => ProviderError::Unavailable(format!("{what}: {m}")),
        other => ProviderError::Unavailable(format!("{what}: {other}")),
    }
}

async fn chat(
    config: &ChatConfig,
    key: Option<SecretString>,
    metrics: &ProviderMetrics,
) -> Result<String, ProviderError> {
    let client = ChatCompletions::new(config.clone(), key, metrics.clone())?;
    let request = AnswerRequest {
        tenant: "providers-check".into(),
        question: "Reply with the single word OK.".into(),
        search_query: String::new(),
        history: Vec::new(),
        persona: "You are a connectivity check.".into(),
        timezone: String::new(),
        passages: Vec::new(),
    };
    let (tx, mut rx) = mpsc::channel(256);
    let answered = client.answer(request, tx, CancellationToken::new());
    let collect = async {
        let mut text = String::new();
        while let Some(piece) = rx.recv().await {
            text.push_str(&piece);
        }
        text
    };
    let (usage, text) = tokio::join!(answered, collect);
    let usage = usage.map_err(step("chat completion"))?;
    Ok(format!(
        "chat completion ({}, {} tokens): {:?}",
        config.model,
        usage.prompt_tokens + usage.completion_tokens,
        shorten(text.trim())
    ))
}

async fn openai(
    settings: &ProviderSettings,
    key: &SecretString,
    metrics: &ProviderMetrics,
) -> Result<String, ProviderError> {
    let o = &settings.openai;
    let chatted = chat(&o.chat, Some(key.clone()), metrics).await?;
    let embedder = OpenAiEmbedder::new(o.embeddings.clone(), Some(key.clone()), metrics.clone())?;
    embedder
        .probe(CancellationToken::new())
        .await
        .map_err(step("embedding"))?;
    let transcriber =
        OpenAiTranscriber::new(o.transcription.clone(), key.clone(), metrics.clone())?;
    let heard = transcribe(&transcriber)
        .await
        .map_err(step("transcription"))?;
    let tts = OpenAiTts::new(o.speech.clone(), key.clone(), metrics.clone())?;
    let spoken = speak(&tts).await.map_err(step("speech"))?;
    Ok(format!(
        "{chatted}; embedding ({}, {} dimensions); transcription: {heard:?}; speech: {spoken}",
        o.embeddings.model, o.embeddings.dimension
    ))
}

async fn deepgram(
    settings: &ProviderSettings,
    key: &SecretString,
    metrics: &ProviderMetrics,
) -> Result<String, ProviderError> {
    // A live stream: the recording, then `Finalize` and `CloseStream`.
    let client = DeepgramStt::new(settings.deepgram.clone(), key.clone(), metrics.clone())?;
    let heard = transcribe(&client)
        .await
        .map_err(step("live transcription"))?;
    Ok(format!("live stream with Finalize: {heard:?}"))
}

async fn elevenlabs(
    settings: &ProviderSettings,
    key: &SecretString,
    metrics: &ProviderMetrics,
) -> Result<String, ProviderError> {
    let client = ElevenLabsTts::new(settings.elevenlabs.clone(), key.clone(), metrics.clone())?;
    let spoken = speak(&client).await.map_err(step("speech"))?;
    Ok(format!("speech: {spoken}"))
}

async fn heygen(
    settings: &ProviderSettings,
    key: &SecretString,
    metrics: &ProviderMetrics,
) -> Result<String, ProviderError> {
    let client = HeyGen::new(settings.heygen.clone(), key.clone(), metrics.clone())?;
    let avatar = settings.heygen.avatar_id.trim();
    // The token call needs an avatar; any id serves to check the key.
    let avatar = if avatar.is_empty() { "default" } else { avatar };
    client
        .session_token(avatar, CancellationToken::new())
        .await
        .map_err(step("LiveAvatar session token"))?;
    Ok(format!("LiveAvatar session token (LITE, avatar {avatar})"))
}

async fn transcribe(stt: &dyn SpeechToText) -> Result<String, ProviderError> {
    let (audio, sample_rate) = check_audio()?;
    let (tx, _rx) = mpsc::channel(64);
    let request = SttRequest {
        audio: Arc::from(audio),
        sample_rate,
        vocabulary: Default::default(),
    };
    let text = stt
        .transcribe(request, tx, CancellationToken::new())
        .await?;
    if text.trim().is_empty() {
        return Err(ProviderError::Unavailable(
            "the bundled recording came back as an empty transcript".into(),
        ));
    }
    Ok(shorten(text.trim()))
}

async fn speak(tts: &dyn TextToSpeech) -> Result<String, ProviderError> {
    let (tx, mut rx) = mpsc::channel(256);
    let request = TtsRequest {
        text: CHECK_SENTENCE.into(),
        voice: "default".into(),
    };
    let spoken = tts.synthesize(request, tx, CancellationToken::new());
    let collect = async {
        let (mut samples, mut rate) = (0usize, 0u32);
        while let Some(chunk) = rx.recv().await {
            samples += chunk.samples.len();
            rate = chunk.sample_rate;
        }
        (samples, rate)
    };
    let (result, (samples, rate)) = tokio::join!(spoken, collect);
    result?;
    if samples == 0 || rate == 0 {
        return Err(ProviderError::Unavailable("no audio came back".into()));
    }
    Ok(format!(
        "{:.1} s of audio at {rate} Hz",
        samples as f64 / f64::from(rate)
    ))
}

/// The bundled WAV as PCM16 mono samples and their rate.
fn check_audio() -> Result<(Vec<i16>, u32), ProviderError> {
    pcm16_wav(CHECK_WAV)
        .ok_or_else(|| ProviderError::Rejected("the bundled WAV is not 16-bit mono PCM".into()))
}

/// Reads a RIFF/WAVE file of 16-bit mono PCM.
fn pcm16_wav(bytes: &[u8]) -> Option<(Vec<i16>, u32)> {
    if bytes.get(0..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let (mut at, mut rate, mut data) = (12, None, None);
    while at + 8 <= bytes.len() {
        let id = bytes.get(at..at + 4)?;
        let len = u32::from_le_bytes(bytes.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        let body = bytes.get(at + 8..(at + 8 + len).min(bytes.len()))?;
        match id {
            b"fmt " => {
                let format = u16::from_le_bytes(body.get(0..2)?.try_into().ok()?);
                let channels = u16::from_le_bytes(body.get(2..4)?.try_into().ok()?);
                let bits = u16::from_le_bytes(body.get(14..16)?.try_into().ok()?);
                if format != 1 || channels != 1 || bits != 16 {
                    return None;
                }
                rate = Some(u32::from_le_bytes(body.get(4..8)?.try_into().ok()?));
            }
            b"data" => data = Some(body),
            _ => {}
        }
        at += 8 + len + len % 2;
    }
    let samples = data?
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Some((samples, rate?))
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_recording_reads_as_speech() {
        let (samples, rate) = check_audio().expect("a 16-bit mono WAV");
        assert_eq!(rate, 16_000);
        assert!(samples.len() > rate as usize, "over a second of audio");
        assert!(
            samples.iter().any(|s| s.unsigned_abs() > 1_000),
            "not silence"
        );
    }

    #[test]
    fn lines_read_one_per_vendor() {
        let line = VendorCheck {
            vendor: "deepgram",
            outcome: Outcome::NotConfigured("ADAM__PROVIDERS__DEEPGRAM__API_KEY is not set".into()),
        };
        assert_eq!(
            line.to_string(),
            "deepgram    not configured  ADAM__PROVIDERS__DEEPGRAM__API_KEY is not set"
        );
    }
}
