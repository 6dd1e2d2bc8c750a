//! Conversations on cloud providers, each pointed at a fake of its vendor's wire protocol
//! (the fakes of `providers/tests/cloud/fakes`): a spoken turn through OpenAI
//! transcription, an OpenRouter-style streamed answer and ElevenLabs speech; a dead
//! speech socket and a failing LLM falling back to the profile's providers; startup
//! refusing a chain whose key is missing; Deepgram's endpointing ending turns, and the
//! local VAD taking over when its stream fails.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};
use crate::realtime::{Item, connect, event, new_session, read_until, stream_audio};

#[allow(dead_code, unreachable_pub)]
#[path = "../../providers/tests/cloud/fakes/mod.rs"]
pub(crate) mod fakes;

use fakes::deepgram::{FakeDeepgram, Mode as DeepgramMode};
use fakes::elevenlabs::{FakeElevenLabs, Mode};
use fakes::openai::{FakeOpenAi, Reply};

/// Fast resilience for tests: short timeouts, one retry.
fn quick(r: &mut adam_providers::cloud::resilience::ResilienceConfig) {
    r.connect_timeout_ms = 1_000;
    r.first_byte_timeout_ms = 2_000;
    r.idle_timeout_ms = 1_000;
    r.total_timeout_ms = 5_000;
    r.max_retries = 1;
    r.backoff_initial_ms = 10;
    r.backoff_max_ms = 20;
}

async fn cloud_app(openai: &FakeOpenAi, eleven: &FakeElevenLabs) -> TestApp {
    let (base, eleven_base) = (openai.base_url(), eleven.base_url());
    spawn_app_with(move |s| {
        s.session.silence_ms = 300;
        let p = &mut s.providers;
        p.simulated.answer = "The simulated answer.".into();
        p.simulated.tts_ms_per_char = 10;
        p.stt = vec![adam_providers::registry::SttVendor::OpenAi];
        p.answer = vec![
            adam_providers::registry::AnswerVendor::OpenRouter,
            adam_providers::registry::AnswerVendor::Profile,
        ];
        p.tts = vec![
            adam_providers::registry::TtsVendor::ElevenLabs,
            adam_providers::registry::TtsVendor::Profile,
        ];
        p.openai.transcription.base_url = base.clone();
        quick(&mut p.openai.transcription.resilience);
        p.openrouter.base_url = base;
        quick(&mut p.openrouter.resilience);
        p.elevenlabs.base_url = eleven_base;
        p.elevenlabs.voice_id = "voice-1".into();
        quick(&mut p.elevenlabs.resilience);
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
            fakes::elevenlabs::KEY.to_owned().into(),
        );
    })
    .await
}

/// Speaks one turn (1 s of tone, then silence) and reads until the response is done.
async fn spoken_turn(app: &TestApp) -> Vec<Item> {
    let (_, url) = new_session(app).await;
    let mut ws = connect(&url, None).await.expect("ws");
    stream_audio(&mut ws, true, 1_000).await;
    let silence = tokio::spawn(async move {
        stream_audio(&mut ws, false, 1_500).await;
        ws
    });
    let mut ws = silence.await.expect("silence");
    read_until(&mut ws, "response.done").await
}

/// The turn's transcript was the fakes' question, and its response completed; that
/// `response.done`.
fn heard_and_answered(items: &[Item]) -> &serde_json::Value {
    let transcript = event(
        items,
        "conversation.item.input_audio_transcription.completed",
    );
    assert_eq!(transcript["transcript"], "When do you open on Saturday?");
    let done = event(items, "response.done");
    assert_eq!(done["response"]["status"], "completed", "{done}");
    done
}

fn audio_frames(items: &[Item]) -> usize {
    items.iter().filter(|i| matches!(i, Item::Audio(_))).count()
}

#[tokio::test]
async fn a_spoken_turn_runs_on_cloud_stt_llm_and_tts() {
    let openai = FakeOpenAi::start().await;
    let eleven = FakeElevenLabs::start().await;
    let app = cloud_app(&openai, &eleven).await;
    let items = spoken_turn(&app).await;
    let done = heard_and_answered(&items);
    // The streamed answer, citation markers taken out.
    assert_eq!(
        done["response"]["output_text"],
        "We open at 8 on Saturdays."
    );
    assert!(
        audio_frames(&items) > 0,
        "ElevenLabs audio reached the client"
    );
    let paths: Vec<String> = openai.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/audio/transcriptions")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("/chat/completions")),
        "{paths:?}"
    );
    let conns = eleven.conns();
    assert!(!conns.is_empty(), "speech came from the ElevenLabs fake");
    assert_eq!(conns[0].key.as_deref(), Some(fakes::elevenlabs::KEY));
    assert_eq!(conns[0].voice, "voice-1");
    // The provider series are exported.
    let metrics = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    assert!(
        metrics.contains(
            "adam_provider_requests_total{outcome=\"ok\",provider=\"openrouter\",stage=\"answer\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_dead_speech_socket_and_a_failing_llm_fall_back_to_the_local_providers() {
    let openai = FakeOpenAi::start().await;
    let eleven = FakeElevenLabs::start().await;
    let app = cloud_app(&openai, &eleven).await;
    // Transcription works; then the LLM answers 500 to the first try and its retry.
    openai.push(Reply::Normal);
    openai.push(Reply::status(
        500,
        json!({"error": {"message": "upstream down", "code": 500}}),
    ));
    openai.push(Reply::status(
        500,
        json!({"error": {"message": "upstream down", "code": 500}}),
    ));
    // ElevenLabs accepts and then goes silent, every time.
    for _ in 0..4 {
        eleven.push(Mode::Silent);
    }
    let started = std::time::Instant::now();
    let items = spoken_turn(&app).await;
    let done = event(&items, "response.done");
    assert_eq!(done["response"]["status"], "completed", "{done}");
    assert_eq!(
        done["response"]["output_text"], "The simulated answer.",
        "the local answer engine took over"
    );
    assert!(audio_frames(&items) > 0, "the local voice spoke it");
    assert!(
        !eleven.conns().is_empty(),
        "ElevenLabs was tried (its socket accepted, then went silent)"
    );
    // The dead socket was given up on within its idle limit, not after a minute.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_chain_naming_a_service_without_its_key_stops_startup() {
    let mut settings = crate::helpers::test_settings();
    settings.data_dir = std::env::temp_dir().join(format!("adam-cloud-{}", uuid::Uuid::new_v4()));
    settings.database.url = format!("sqlite://{}", settings.data_dir.join("adam.db").display());
    std::fs::create_dir_all(&settings.data_dir).expect("dir");
    settings.providers.tts = vec![adam_providers::registry::TtsVendor::ElevenLabs];
    let err =
        adam::startup::Application::build_with_clock(settings, adam::clock::Clock::adjustable())
            .await
            .err()
            .expect("refused");
    assert!(
        format!("{err:#}").contains("ADAM__PROVIDERS__ELEVENLABS__API_KEY"),
        "{err:#}"
    );
}

/// An app whose speech-to-text is the Deepgram fake, streaming, Deepgram ending turns.
async fn deepgram_app(deepgram: &FakeDeepgram, local_silence_ms: u32) -> TestApp {
    let url = deepgram.url();
    spawn_app_with(move |s| {
        s.session.silence_ms = local_silence_ms;
        let p = &mut s.providers;
        p.simulated.answer = "The simulated answer.".into();
        p.simulated.tts_ms_per_char = 10;
        p.stt = vec![
            adam_providers::registry::SttVendor::Deepgram,
            adam_providers::registry::SttVendor::Profile,
        ];
        p.deepgram.url = url;
        p.deepgram.end_of_turn = true;
        p.deepgram.endpointing_ms = 300;
        quick(&mut p.deepgram.resilience);
        p.keys.set(
            adam_providers::registry::Account::Deepgram,
            fakes::deepgram::KEY.to_owned().into(),
        );
    })
    .await
}

#[tokio::test]
async fn deepgram_endpointing_ends_the_turn_where_the_local_silence_would_not() {
    let deepgram = FakeDeepgram::start().await;
    deepgram.push(DeepgramMode::Endpointing);
    // The local VAD would wait 5 s of silence; only 1.5 s comes, then nothing at all.
    let app = deepgram_app(&deepgram, 5_000).await;
    let items = spoken_turn(&app).await;
    heard_and_answered(&items);
    let deltas: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Event(e) if e["type"] == "conversation.item.input_audio_transcription.delta" => {
                e["delta"].as_str()
            }
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["when do"], "Deepgram's interim text, as deltas");
    // One stream heard the whole conversation; no utterance was sent on its own.
    let conns = deepgram.conns();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].query["endpointing"], "300");
    assert!(
        conns[0].audio_bytes >= 16_000 * 2 * 2,
        "the stream got the audio as it came: {} bytes",
        conns[0].audio_bytes
    );
}

#[tokio::test]
async fn a_failed_deepgram_stream_hands_the_turns_to_the_local_vad() {
    let deepgram = FakeDeepgram::start().await;
    // The stream dies at once; the utterance then goes to Deepgram on its own.
    deepgram.push(DeepgramMode::CloseWith {
        code: 1011,
        reason: "NET-0001",
    });
    let app = deepgram_app(&deepgram, 300).await;
    let items = spoken_turn(&app).await;
    heard_and_answered(&items);
    let conns = deepgram.conns();
    assert_eq!(conns.len(), 2, "the stream, then the utterance: {conns:?}");
    assert!(
        conns[1].controls.contains(&"Finalize".to_owned()),
        "{conns:?}"
    );
}

#[tokio::test]
async fn the_deepgram_stream_is_biased_with_the_dealerships_names() {
    let deepgram = FakeDeepgram::start().await;
    deepgram.push(DeepgramMode::Endpointing);
    let dir = std::env::temp_dir().join(format!("adam-vocab-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("team.md"),
        "Our service manager is Callum Whitcombe, in Port Ellery.\n\
         Ask Callum Whitcombe about the Aurora.\n\
         Every Aurora is serviced in Port Ellery.\n",
    )
    .expect("document");
    let url = deepgram.url();
    let demo = dir.clone();
    let app = spawn_app_with(move |s| {
        s.session.silence_ms = 5_000;
        s.knowledge.demo_dir = Some(demo);
        s.vocabulary.enabled = true;
        let p = &mut s.providers;
        p.simulated.answer = "The simulated answer.".into();
        p.stt = vec![
            adam_providers::registry::SttVendor::Deepgram,
            adam_providers::registry::SttVendor::Profile,
        ];
        p.deepgram.url = url;
        p.deepgram.end_of_turn = true;
        quick(&mut p.deepgram.resilience);
        p.keys.set(
            adam_providers::registry::Account::Deepgram,
            fakes::deepgram::KEY.to_owned().into(),
        );
    })
    .await;
    let root = app.admin().await;
    let ready = crate::helpers::eventually(Duration::from_secs(30), || async {
        let docs =
            crate::helpers::json_body(app.get("/v1/documents", Some(&root.access)).await).await;
        docs.as_array()
            .is_some_and(|d| !d.is_empty() && d.iter().all(|d| d["status"] == "ready"))
    })
    .await;
    assert!(ready, "the document was not ingested");
    let _ = std::fs::remove_dir_all(dir);
    let items = spoken_turn(&app).await;
    heard_and_answered(&items);
    let conns = deepgram.conns();
    for name in ["Aurora", "Callum Whitcombe", "Port Ellery"] {
        assert!(
            conns[0].keyterms.iter().any(|k| k == name),
            "{name} in {:?}",
            conns[0].keyterms
        );
    }
}

/// Every `adam_*` series the Grafana dashboard reads (histogram suffixes taken off).
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/dashboards/adam.json"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    fn exprs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value.as_str()) {
                        ("expr", Some(expr)) => out.push(expr),
                        _ => exprs(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| exprs(i, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    exprs(&json, &mut all);
    let mut names = std::collections::BTreeSet::new();
    for expr in all {
        for (at, _) in expr.match_indices("adam_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .map_or(name.clone(), str::to_owned);
            names.insert(name);
        }
    }
    names
}

#[tokio::test]
async fn the_grafana_dashboard_reads_only_series_adam_exports() {
    let wanted = dashboard_metrics();
    for must in [
        "adam_live_sessions",
        "adam_voice_to_voice_seconds",
        "adam_cache_lookups_total",
        "adam_provider_requests_total",
        "adam_actor_restarts_total",
    ] {
        assert!(
            wanted.contains(must),
            "the dashboard shows {must}: {wanted:?}"
        );
    }
    // A conversation on cloud providers (one of them failing), the same question twice
    // (a semantic-cache hit), a restarted child actor and a refused session make every
    // series appear.
    let openai = FakeOpenAi::start().await;
    let eleven = FakeElevenLabs::start().await;
    eleven.push(Mode::Refuse {
        code: 503,
        headers: Vec::new(),
    });
    let app = cloud_app(&openai, &eleven).await;
    let (id, url) = new_session(&app).await;
    let mut ws = connect(&url, None).await.expect("ws");
    let session = app.state.realtime.registry.get(&id).await.expect("live");
    session.inject_panic(adam_actors::session::ChildKind::Tts);
    for _ in 0..2 {
        stream_audio(&mut ws, true, 1_000).await;
        stream_audio(&mut ws, false, 1_500).await;
        read_until(&mut ws, "response.done").await;
    }
    let exported = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    let names: std::collections::BTreeSet<&str> = exported
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|name| {
            !names.contains(name.as_str()) && !names.contains(format!("{name}_bucket").as_str())
        })
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{exported}");
}
