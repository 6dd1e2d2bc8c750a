//! Spoken conversations with the embedded models (Silero, Whisper, MiniLM, the grounded
//! engine, espeak-ng): questions are synthesized with espeak-ng at test time, streamed
//! over the WebSocket at real-time pace, and the spoken answers are transcribed again.
//! Needs the models installed by `scripts/models/fetch.sh` (the test command runs it).

use std::sync::Arc;
use std::time::Duration;

use adam_actors::audio::Resampler;
use adam_actors::ports::{CancellationToken, SpeechToText, SttRequest};
use adam_providers::pool::{ModelPool, PoolMetrics};
use adam_providers::whisper::{WhisperConfig, WhisperStt};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, eventually, json_body, spawn_app_with};
use crate::realtime::{Ws, ask, connect, event, new_session, read_until};

const PASSAGES: &str = "\
# Riverside Auto

## Service department
The service department opens at 7 am on weekdays and at 8 am on Saturday. It is closed on Sunday.

A standard oil change costs 49 dollars and takes about 45 minutes.

## Loaner cars
Free loaner cars are available for repairs that take longer than one day.

## Sales
Test drives are available every day without an appointment. We accept trade-ins of any make.
";

/// (question, a word the answer must contain)
const QUESTIONS: &[(&str, &str)] = &[
    (
        "What time does the service department open on Saturday?",
        "8",
    ),
    ("How much does an oil change cost?", "49"),
    ("How long does an oil change take?", "45"),
    ("Do I need an appointment for a test drive?", "appointment"),
    ("Are you open on Sunday?", "closed"),
];

/// The embedded profile with `PASSAGES` as the first dealership's document, ingested
/// (MiniLM vectors in the local store or pgvector) before the test goes on.
pub(crate) async fn voice_app() -> TestApp {
    voice_app_with(PASSAGES).await
}

/// The embedded profile with `passages` as the first dealership's document.
async fn voice_app_with(passages: &str) -> TestApp {
    let dir = std::env::temp_dir().join(format!("adam-voice-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("riverside.md"), passages).expect("passages");
    let demo = dir.clone();
    let app = spawn_app_with(move |s| {
        s.providers.profile = adam_providers::registry::Profile::Embedded;
        s.knowledge.demo_dir = Some(demo);
        s.session.silence_ms = 600;
        s.session.early_transcription_ms = 250;
    })
    .await;
    let root = app.admin().await;
    let ready = eventually(Duration::from_secs(60), || async {
        let docs = json_body(app.get("/v1/documents", Some(&root.access)).await).await;
        docs.as_array()
            .is_some_and(|d| !d.is_empty() && d.iter().all(|d| d["status"] == "ready"))
    })
    .await;
    assert!(ready, "the demo document was not ingested");
    let _ = std::fs::remove_dir_all(dir);
    app
}

/// espeak-ng speech of `text`, as 16 kHz PCM16.
pub(crate) fn speak(text: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en", text])
        .output()
        .expect("espeak-ng is installed (scripts/setup.sh)");
    assert!(out.status.success(), "espeak-ng failed");
    let wav = out.stdout;
    // RIFF header: sample rate at 24, data after the "data" chunk header.
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk")
        + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Resampler::new(rate, 16_000).process(&samples)
}

/// Deterministic white noise at speech-like loudness.
fn noise(ms: usize) -> Vec<i16> {
    let mut x: u32 = 0x1234_5678;
    (0..ms * 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((x % 8000) as i32 - 4000) as i16
        })
        .collect()
}

/// Streams samples in 20 ms frames on a real-time timer.
async fn stream(ws: &mut Ws, samples: &[i16]) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for chunk in samples.chunks(320) {
        tick.tick().await;
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        ws.send(Message::Binary(bytes.into()))
            .await
            .expect("send audio");
    }
}

/// What one spoken turn produced.
#[derive(Debug, Default)]
struct Turn {
    events: Vec<Value>,
    audio: Vec<i16>,
}

impl Turn {
    fn event(&self, kind: &str) -> &Value {
        self.events
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {:?}", self.types()))
    }
    fn types(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect()
    }
}

/// Reads events and audio until `response.done`.
async fn read_turn(ws: &mut Ws) -> Turn {
    let mut turn = Turn::default();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("the server answers within a minute");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let event: Value = serde_json::from_str(t.as_str()).expect("json event");
                let done = event["type"] == "response.done";
                turn.events.push(event);
                if done {
                    return turn;
                }
            }
            Some(Ok(Message::Binary(b))) => turn
                .audio
                .extend(b.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]]))),
            Some(Ok(_)) => {}
            other => panic!("socket ended mid-turn: {other:?}; got {:?}", turn.types()),
        }
    }
}

/// Lower-case words without punctuation, numbers as digits ("forty five" and "45" are
/// the same words, "$49" is "49 dollars"), so WER counts recognition errors, not spelling.
fn normalise(text: &str) -> Vec<String> {
    use adam_actors::speech_text::{ONES as UNITS, TENS};
    let mut out: Vec<String> = Vec::new();
    let mut pending_tens: Option<usize> = None;
    for raw in text.split(|c: char| c.is_whitespace() || c == '-') {
        let dollars = raw.starts_with('$');
        let w: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        if w.is_empty() {
            continue;
        }
        if let Some(t) = TENS.iter().position(|t| *t == w).filter(|&t| t > 0) {
            if let Some(p) = pending_tens.take() {
                out.push((p * 10).to_string());
            }
            pending_tens = Some(t);
            continue;
        }
        if let Some(u) = UNITS.iter().position(|u| *u == w) {
            match pending_tens.take() {
                Some(t) if u < 10 => out.push((t * 10 + u).to_string()),
                Some(t) => {
                    out.push((t * 10).to_string());
                    out.push(u.to_string());
                }
                None => out.push(u.to_string()),
            }
            continue;
        }
        if let Some(p) = pending_tens.take() {
            out.push((p * 10).to_string());
        }
        // "7am" is "7 am".
        match w.find(|c: char| !c.is_ascii_digit()) {
            Some(i) if i > 0 => {
                out.push(w[..i].to_owned());
                out.push(w[i..].to_owned());
            }
            _ => out.push(w),
        }
        if dollars {
            out.push("dollars".into());
        }
    }
    if let Some(p) = pending_tens {
        out.push((p * 10).to_string());
    }
    out
}

/// Word error rate of `hypothesis` against `reference` (edit distance over words).
fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let cost = usize::from(rw != hw);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[h.len()] as f64 / r.len().max(1) as f64
}

async fn whisper() -> WhisperStt {
    let pool = ModelPool::new("whisper-test", 1, 8, PoolMetrics::unregistered());
    tokio::task::spawn_blocking(move || WhisperStt::load(&WhisperConfig::default(), pool))
        .await
        .expect("join")
        .expect("Whisper model installed by scripts/models/fetch.sh")
}

async fn open(app: &TestApp) -> Ws {
    let (_, url) = new_session(app).await;
    let mut ws = connect(&url, None).await.expect("connect");
    // Answers at 16 kHz, so they can be transcribed again as they are.
    ws.send(Message::Text(
        json!({"type": "session.update", "session": {"output_sample_rate": 16000}})
            .to_string()
            .into(),
    ))
    .await
    .expect("session.update");
    ws
}

#[test]
fn numbers_are_compared_as_digits() {
    assert_eq!(
        normalise("Forty-five minutes, $49."),
        ["45", "minutes", "49", "dollars"]
    );
    assert_eq!(normalise("at eight, twenty"), ["at", "8", "20"]);
    assert_eq!(normalise("7am or 8 a.m."), ["7", "am", "or", "8", "am"]);
    assert!((wer("a b c d", "a x c") - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn spoken_questions_get_spoken_answers_from_the_passages() {
    let app = voice_app().await;
    let stt = whisper().await;
    let mut ws = open(&app).await;
    let (mut errors, mut words) = (0.0, 0usize);
    let (mut reply_errors, mut reply_words) = (0.0, 0usize);
    for (question, fact) in QUESTIONS {
        let mut audio = speak(question);
        audio.extend(std::iter::repeat_n(0, 16 * 1200));
        stream(&mut ws, &audio).await;
        let turn = read_turn(&mut ws).await;

        let heard =
            turn.event("conversation.item.input_audio_transcription.completed")["transcript"]
                .as_str()
                .expect("transcript")
                .to_owned();
        errors += wer(question, &heard) * normalise(question).len() as f64;
        words += normalise(question).len();

        let done = &turn.event("response.done")["response"];
        assert_eq!(done["status"], "completed", "{done}");
        let reply = done["output_text"].as_str().expect("reply").to_owned();
        assert!(
            normalise(&reply).iter().any(|w| w == fact),
            "{question:?} was answered {reply:?} (heard {heard:?}), which lacks {fact:?}"
        );
        assert!(
            !done["citations"].as_array().expect("citations").is_empty(),
            "a document answer cites its passage: {done}"
        );

        // Audio came back, and it says the reply.
        let audio_ms = turn.audio.len() as u32 / 16;
        assert!(audio_ms > 500, "only {audio_ms} ms of answer audio");
        let said = stt
            .transcribe(
                SttRequest {
                    audio: Arc::from(turn.audio.clone()),
                    sample_rate: 16_000,
                    vocabulary: Default::default(),
                },
                tokio::sync::mpsc::channel(1).0,
                CancellationToken::new(),
            )
            .await
            .expect("transcribe the answer");
        reply_errors += wer(&reply, &said) * normalise(&reply).len() as f64;
        reply_words += normalise(&reply).len();

        // Every viseme lies inside this answer's audio.
        let visemes: Vec<&Value> = turn
            .events
            .iter()
            .filter(|e| e["type"] == "avatar.viseme")
            .collect();
        assert!(!visemes.is_empty(), "no visemes in {:?}", turn.types());
        for v in visemes {
            let start = v["audio_offset_ms"].as_u64().expect("offset") as u32;
            let end = start + v["duration_ms"].as_u64().expect("duration") as u32;
            assert!(
                end <= audio_ms,
                "viseme {v} ends after the audio ({audio_ms} ms)"
            );
        }
        eprintln!(
            "{question:?} → heard {heard:?} → {reply:?} → heard back {said:?}; v2v {} ms",
            done["metrics"]["voice_to_voice_ms"]
        );
    }
    let total_wer = errors / words as f64;
    assert!(
        total_wer <= 0.10,
        "transcripts WER {total_wer:.3} over {words} words"
    );
    let reply_wer = reply_errors / reply_words as f64;
    assert!(
        reply_wer <= 0.25,
        "the spoken answers transcribe back with WER {reply_wer:.3} over {reply_words} words"
    );
}

#[tokio::test]
async fn a_price_is_spoken_as_words_and_written_as_figures() {
    let app = voice_app_with(
        "# Harbor Motors\n\n## New cars\nThe Aurora sedan starts at $27,900 before tax.\n",
    )
    .await;
    let stt = whisper().await;
    let mut ws = open(&app).await;
    ask(&mut ws, "How much is the Aurora sedan?").await;
    let turn = read_turn(&mut ws).await;
    let done = &turn.event("response.done")["response"];
    let reply = done["output_text"].as_str().expect("reply");
    // The written answer keeps the figures.
    assert!(reply.contains("$27,900"), "{reply:?}");
    let said = stt
        .transcribe(
            SttRequest {
                audio: Arc::from(turn.audio.clone()),
                sample_rate: 16_000,
                vocabulary: Default::default(),
            },
            tokio::sync::mpsc::channel(1).0,
            CancellationToken::new(),
        )
        .await
        .expect("transcribe the answer");
    // The voice said "twenty-seven thousand nine hundred dollars"; read as written
    // ("dollar twenty seven thousand nine hundred") Whisper hears no such price.
    let words = normalise(&said);
    let at = words.iter().position(|w| w == "27900");
    assert!(
        at.is_some_and(|i| words.get(i + 1).is_some_and(|w| w == "dollars")),
        "{reply:?} is heard as {said:?} ({words:?})"
    );
}

#[tokio::test]
async fn an_unanswerable_question_gets_an_honest_reply_without_numbers() {
    let app = voice_app().await;
    let mut ws = open(&app).await;
    let mut audio = speak("How much does a Tesla Model Y cost?");
    audio.extend(std::iter::repeat_n(0, 16 * 1200));
    stream(&mut ws, &audio).await;
    let turn = read_turn(&mut ws).await;
    let done = &turn.event("response.done")["response"];
    let reply = done["output_text"].as_str().expect("reply");
    assert!(
        reply.contains("don't have that information"),
        "unexpected reply {reply:?}"
    );
    assert!(
        !reply.chars().any(|c| c.is_ascii_digit()),
        "invented a number: {reply:?}"
    );
    assert!(done["citations"].as_array().expect("citations").is_empty());
}

#[tokio::test]
async fn silence_and_white_noise_make_no_turn_but_speech_does() {
    let app = voice_app().await;
    let mut ws = open(&app).await;
    // Two seconds of silence, two of white noise, one of silence (so the speech's
    // pre-roll is not noise), then speech.
    let quiet_ms = 5000;
    let mut audio = vec![0i16; 16 * 2000];
    audio.extend(noise(2000));
    audio.extend(std::iter::repeat_n(0, 16 * 1000));
    audio.extend(speak("Hello, I have a question about my car."));
    audio.extend(std::iter::repeat_n(0, 16 * 1200));
    stream(&mut ws, &audio).await;
    let turn = read_turn(&mut ws).await;
    let started: Vec<u64> = turn
        .events
        .iter()
        .filter(|e| e["type"] == "input_audio_buffer.speech_started")
        .map(|e| e["audio_start_ms"].as_u64().expect("audio_start_ms"))
        .collect();
    assert_eq!(started.len(), 1, "one turn, for the speech: {started:?}");
    assert!(
        started[0] + 300 >= quiet_ms,
        "speech detected at {} ms, inside the silence/noise",
        started[0]
    );
    let heard = turn.event("conversation.item.input_audio_transcription.completed")["transcript"]
        .as_str()
        .expect("transcript")
        .to_lowercase();
    assert!(
        heard.contains("question") && heard.contains("car"),
        "heard {heard:?}"
    );
}

/// Sends typed questions in one session; returns each `response.done` response.
async fn typed(app: &TestApp, questions: &[&str]) -> Vec<Value> {
    let mut ws = open(app).await;
    let mut out = Vec::new();
    for q in questions {
        ask(&mut ws, q).await;
        let items = read_until(&mut ws, "response.done").await;
        out.push(event(&items, "response.done")["response"].clone());
    }
    out
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_paraphrase_is_answered_from_the_semantic_cache_and_an_unrelated_question_is_not() {
    let app = voice_app().await;
    let generated = "adam_answers_generated_total";
    let before = metric(&app, generated).await;
    let done = typed(
        &app,
        &[
            "How much does an oil change cost?",
            "What is the price of an oil change?",
            "Do I need an appointment for a test drive?",
        ],
    )
    .await;
    let text = |i: usize| done[i]["output_text"].as_str().expect("text").to_owned();
    assert!(text(0).contains("49"), "{}", text(0));
    assert_eq!(done[0]["metrics"]["cache_hit"], false);
    assert_eq!(
        done[1]["metrics"]["cache_hit"],
        true,
        "paraphrase: {}",
        text(1)
    );
    assert_eq!(text(1), text(0));
    assert_eq!(
        done[2]["metrics"]["cache_hit"],
        false,
        "unrelated: {}",
        text(2)
    );
    assert!(text(2).contains("appointment"), "{}", text(2));
    // The answer engine ran for the first and third question only.
    assert_eq!(metric(&app, generated).await - before, 2.0);
    assert_eq!(
        metric(
            &app,
            r#"adam_cache_lookups_total{level="semantic",result="hit"}"#
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_follow_up_question_is_read_with_the_one_before_it() {
    let app = voice_app().await;
    let done = typed(
        &app,
        &[
            "What time does the service department open on Saturday?",
            "And on Sunday?",
        ],
    )
    .await;
    let first = done[0]["output_text"].as_str().expect("text");
    let second = done[1]["output_text"].as_str().expect("text");
    assert!(first.contains('8'), "{first}");
    assert!(
        second.to_lowercase().contains("closed on sunday"),
        "{second} {}",
        done[1]["metrics"]
    );
    assert!(
        metric(
            &app,
            r#"adam_cache_lookups_total{level="context",result="hit"}"#
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_spoken_question_over_webrtc_is_heard_word_for_word() {
    let app = voice_app().await;
    let (mut client, _) = crate::webrtc::connect(&app, &crate::webrtc::caller(&app).await).await;
    let question = "What time does the service department open on Saturday?";
    let mut audio = vec![0i16; 48_000 / 2];
    audio.extend(Resampler::new(16_000, 48_000).process(&speak(question)));
    audio.extend(vec![0i16; 48_000 * 2]);
    client.send_pcm(&audio).await;
    let heard = client
        .next("conversation.item.input_audio_transcription.completed")
        .await;
    let heard = heard["transcript"].as_str().unwrap_or("").to_lowercase();
    assert!(
        heard.starts_with("what time does the service department open on saturday"),
        "Opus at 48 kHz through the session's resampler keeps the whole question: {heard}"
    );
    let done = client.next("response.done").await;
    assert!(
        done["response"]["output_text"]
            .as_str()
            .unwrap_or("")
            .contains('8'),
        "{done}"
    );
}

#[tokio::test]
async fn unanswered_questions_are_listed_as_knowledge_gaps_until_a_document_answers_them() {
    let app = voice_app().await;
    let root = app.admin().await;
    let gaps = || async {
        json_body(app.get("/v1/knowledge-gaps", Some(&root.access)).await).await["gaps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(gaps().await.is_empty(), "no gap before anything is asked");
    let answers = typed(
        &app,
        &[
            "Can I bring my dog into the showroom?",
            "Can I bring my dog into the showroom with me?",
            "How much does an oil change cost?",
        ],
    )
    .await;
    assert!(
        answers[2]["output_text"]
            .as_str()
            .unwrap_or_default()
            .contains("49")
    );
    // The turns are written off the session's mailbox: poll.
    let listed = eventually(Duration::from_secs(10), || async {
        let g = gaps().await;
        g.len() == 1 && g[0]["count"] == 2
    })
    .await;
    let g = gaps().await;
    assert!(
        listed,
        "the two dog questions are one gap asked twice: {g:?}"
    );
    assert!(
        g[0]["question"]
            .as_str()
            .unwrap_or_default()
            .contains("dog")
    );
    assert_eq!(g[0]["similar"].as_array().map(Vec::len), Some(1));

    // A document that answers it clears the gap.
    let dealership = g[0]["dealership_id"]
        .as_str()
        .expect("dealership")
        .to_owned();
    let id = crate::documents::upload_ok(
        &app,
        &root.access,
        &format!("?dealership_id={dealership}"),
        "pets.md",
        b"# Pets\n\nDogs on a leash are welcome in the showroom and the service lounge.\n".to_vec(),
    )
    .await;
    let doc = crate::documents::settled(&app, &root.access, &id).await;
    assert_eq!(doc["status"], "ready");
    let cleared = eventually(Duration::from_secs(10), || async {
        gaps().await.is_empty()
    })
    .await;
    assert!(cleared, "the gap is answered now: {:?}", gaps().await);
}
