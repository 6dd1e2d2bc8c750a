//! The OpenAI Realtime API at `/v1/realtime`: authentication by dealership API key or
//! access token, the event shapes over a raw WebSocket with the simulated providers, and
//! real turns driven by the official OpenAI Python SDK (installed by
//! `scripts/openai-sdk.sh`) against the embedded models.

use std::time::Duration;

use adam_actors::audio::Resampler;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, json_body, spawn_app_with};
use crate::realtime::Ws;
use crate::voice::{speak, voice_app};

async fn first_dealership(app: &TestApp, token: &str) -> String {
    let list = json_body(app.get("/v1/dealerships", Some(token)).await).await;
    list[0]["id"].as_str().expect("demo dealership").to_owned()
}

/// A new API key of the first dealership with `scopes`.
async fn api_key(app: &TestApp, scopes: &[&str]) -> String {
    let root = app.admin().await;
    let dealership = first_dealership(app, &root.access).await;
    let resp = app
        .post(
            &format!("/v1/dealerships/{dealership}/api-keys"),
            Some(&root.access),
            json!({"name": "sdk test", "scopes": scopes}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    json_body(resp).await["key"]
        .as_str()
        .expect("key")
        .to_owned()
}

async fn open(app: &TestApp, token: &str) -> Result<Ws, u16> {
    let url = format!(
        "{}/v1/realtime?model=gpt-realtime-mini",
        app.base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn send(ws: &mut Ws, event: Value) {
    ws.send(Message::Text(event.to_string().into()))
        .await
        .expect("send");
}

/// Events until one of type `kind` (inclusive).
async fn until(ws: &mut Ws, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(message)) = ws.next().await {
            match message {
                Message::Text(text) => {
                    let event: Value = serde_json::from_str(&text).expect("JSON event");
                    let done = event["type"] == kind;
                    seen.push(event);
                    if done {
                        return true;
                    }
                }
                Message::Binary(_) => panic!("binary frame on the OpenAI endpoint"),
                _ => {}
            }
        }
        false
    })
    .await;
    let types: Vec<&str> = seen.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(found, Ok(true), "no {kind}; saw {types:?}");
    seen
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

async fn simulated_app() -> TestApp {
    spawn_app_with(|s| {
        let sim = &mut s.providers.simulated;
        sim.answer = "We open at eight.".into();
        sim.tts_ms_per_char = 8;
        sim.answer_first_token_ms = 20;
        sim.answer_tokens_per_sec = 200.0;
        sim.tts_first_byte_ms = 10;
    })
    .await
}

#[tokio::test]
async fn keys_tokens_and_scopes_decide_who_may_connect() {
    let app = simulated_app().await;
    assert_eq!(open(&app, "adam_sk_nonsense").await.err(), Some(401));
    let management = api_key(&app, &["management"]).await;
    assert_eq!(open(&app, &management).await.err(), Some(403));
    let root = app.admin().await;
    // A super_admin's token must name the dealership; a key has its own.
    assert_eq!(open(&app, &root.access).await.err(), Some(422));
    let key = api_key(&app, &["realtime"]).await;
    let mut ws = open(&app, &key).await.expect("a realtime key connects");
    let created = until(&mut ws, "session.created").await;
    let session = &created[0]["session"];
    assert_eq!(session["type"], "realtime");
    assert_eq!(session["model"], "gpt-realtime-mini", "the model is echoed");
    assert_eq!(session["audio"]["input"]["format"]["type"], "audio/pcm");
    assert_eq!(session["audio"]["input"]["format"]["rate"], 24000);
    assert_eq!(
        session["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );
    assert!(created[0]["event_id"].is_string());

    // The key's use is visible to its dealership's admins.
    let dealership = first_dealership(&app, &root.access).await;
    let keys = json_body(
        app.get(
            &format!("/v1/dealerships/{dealership}/api-keys"),
            Some(&root.access),
        )
        .await,
    )
    .await;
    let used = keys
        .as_array()
        .expect("list")
        .iter()
        .find(|k| k["scopes"] == json!(["realtime"]))
        .expect("the realtime key");
    assert!(used["last_used_at"].is_string(), "{used}");
    // Revoked: refused at once.
    let id = used["id"].as_str().expect("id");
    app.delete(
        &format!("/v1/dealerships/{dealership}/api-keys/{id}"),
        Some(&root.access),
    )
    .await;
    assert_eq!(open(&app, &key).await.err(), Some(401));
}

#[tokio::test]
async fn a_typed_turn_has_the_apis_event_sequence_and_errors_have_its_shape() {
    let app = simulated_app().await;
    let key = api_key(&app, &["realtime"]).await;
    let mut ws = open(&app, &key).await.expect("connect");
    until(&mut ws, "session.created").await;

    send(
        &mut ws,
        json!({"type": "session.update", "event_id": "evt_1", "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/opus"}}}}}),
    )
    .await;
    let refused = until(&mut ws, "error").await;
    let error = &refused.last().expect("error")["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "session.audio.input.format.type");
    assert_eq!(error["event_id"], "evt_1");

    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief.", "output_modalities": ["audio"], "tools": [{"type": "function", "name": "lookup", "parameters": {}}]}}),
    )
    .await;
    let updated = until(&mut ws, "session.updated").await;
    assert_eq!(
        updated.last().expect("updated")["session"]["instructions"],
        "Be brief."
    );

    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "When do you open?"}]}}),
    )
    .await;
    let item = until(&mut ws, "conversation.item.done").await;
    assert_eq!(
        types(&item),
        ["conversation.item.added", "conversation.item.done"]
    );
    send(&mut ws, json!({"type": "response.create"})).await;
    let turn = until(&mut ws, "response.done").await;
    let kinds = types(&turn);
    let head: Vec<&str> = kinds.iter().copied().take(4).collect();
    assert_eq!(
        head,
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added"
        ]
    );
    let tail: Vec<&str> = kinds.iter().rev().take(6).rev().copied().collect();
    assert_eq!(
        tail,
        [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done"
        ]
    );
    assert!(kinds.contains(&"response.output_audio_transcript.delta"));
    let audio: Vec<&Value> = turn
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .collect();
    assert!(!audio.is_empty(), "{kinds:?}");
    let bytes: usize = audio
        .iter()
        .map(|e| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(e["delta"].as_str().expect("delta"))
                .expect("base64")
                .len()
        })
        .sum();
    // The simulated voice speaks 8 ms a character: 17 characters, 136 ms or more.
    assert!(bytes >= 6_400, "over 130 ms of 24 kHz PCM16: {bytes}");
    assert_eq!(
        bytes % 960,
        0,
        "whole 20 ms frames of 24 kHz PCM16: {bytes}"
    );
    let done = &turn.last().expect("done")["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["output"][0]["content"][0]["transcript"],
        "We open at eight."
    );
    assert!(done["usage"]["total_tokens"].is_u64());
    let item_id = done["output"][0]["id"]
        .as_str()
        .expect("item id")
        .to_owned();

    // Truncating the played answer is acknowledged; an unknown item is an error.
    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 300}),
    )
    .await;
    let truncated = until(&mut ws, "conversation.item.truncated").await;
    assert_eq!(truncated.last().expect("event")["audio_end_ms"], 300);
    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 1}),
    )
    .await;
    let error = until(&mut ws, "error").await;
    assert_eq!(error.last().expect("error")["error"]["param"], "item_id");

    // An empty commit and an unknown event: errors, the session goes on.
    send(&mut ws, json!({"type": "input_audio_buffer.commit"})).await;
    let error = until(&mut ws, "error").await;
    assert_eq!(
        error.last().expect("error")["error"]["code"],
        "input_audio_buffer_commit_empty"
    );
    send(&mut ws, json!({"type": "bogus.event", "event_id": "e9"})).await;
    let error = until(&mut ws, "error").await;
    assert_eq!(error.last().expect("error")["error"]["event_id"], "e9");
    send(&mut ws, json!({"type": "input_audio_buffer.clear"})).await;
    until(&mut ws, "input_audio_buffer.cleared").await;
}

#[tokio::test]
async fn g711_formats_carry_eight_khz_audio_both_ways() {
    let app = simulated_app().await;
    let key = api_key(&app, &["realtime"]).await;
    let mut ws = open(&app, &key).await.expect("connect");
    until(&mut ws, "session.created").await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcma"}}}}}),
    )
    .await;
    let updated = until(&mut ws, "session.updated").await;
    let session = &updated.last().expect("updated")["session"];
    assert_eq!(session["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(session["audio"]["output"]["format"]["type"], "audio/pcma");
    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hours?"}]}}),
    )
    .await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let turn = until(&mut ws, "response.done").await;
    use base64::Engine;
    let bytes: Vec<u8> = turn
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .flat_map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["delta"].as_str().expect("delta"))
                .expect("base64")
        })
        .collect();
    // One byte per sample at 8 kHz: 20 ms frames of 160 bytes, over 130 ms of speech.
    assert!(bytes.len() >= 1_040, "{}", bytes.len());
    let first = turn
        .iter()
        .find(|e| e["type"] == "response.output_audio.delta")
        .expect("audio");
    let frame = base64::engine::general_purpose::STANDARD
        .decode(first["delta"].as_str().expect("delta"))
        .expect("base64");
    assert_eq!(frame.len(), 160, "one 20 ms frame of A-law at 8 kHz");
}

// ---- the official SDK against the embedded models --------------------------------------

/// espeak-ng speech of `text` as a 24 kHz PCM16 file for the SDK script.
fn speech_file(text: &str) -> std::path::PathBuf {
    let samples = Resampler::new(16_000, 24_000).process(&speak(text));
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let path = std::env::temp_dir().join(format!("adam-sdk-{}.pcm", uuid::Uuid::new_v4()));
    std::fs::write(&path, bytes).expect("write speech");
    path
}

/// Runs one scenario of `tests/openai_sdk/realtime_turns.py` with the SDK's virtualenv.
async fn sdk(app: &TestApp, key: &str, scenario: &str, args: &[&str]) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tokio::process::Command::new("bash")
        .arg(format!("{root}/scripts/openai-sdk.sh"))
        .output()
        .await
        .expect("bash");
    assert!(
        out.status.success(),
        "the OpenAI SDK could not be installed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let run = tokio::process::Command::new(&python)
        .arg(format!("{root}/tests/openai_sdk/realtime_turns.py"))
        .arg(&app.base)
        .arg(key)
        .arg(scenario)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the SDK script finished in time")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "no report: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!("{scenario}: {report}");
    assert_eq!(report["ok"], true, "{scenario}: {report:#}");
    assert_eq!(
        report["invalid"],
        json!([]),
        "every event parses: {report:#}"
    );
    assert_eq!(report["model"], "gpt-realtime");
    assert_eq!(report["instructions"], "Answer in one short sentence.");
    report
}

fn says(text: &Value, word: &str) -> bool {
    text.as_str()
        .is_some_and(|t| t.to_lowercase().contains(&word.to_lowercase()))
}

#[tokio::test]
async fn the_official_sdk_completes_typed_spoken_manual_and_interrupted_turns() {
    let app = voice_app().await;
    let key = api_key(&app, &["realtime"]).await;

    let typed = sdk(
        &app,
        &key,
        "typed",
        &["What time does the service department open on Saturday?"],
    )
    .await;
    assert!(says(&typed["answer"], "8"), "{typed:#}");
    assert!(typed["audio_bytes"].as_u64() > Some(24_000), "{typed:#}");

    let question = speech_file("How much does an oil change cost?");
    let q = question.to_str().expect("path");
    let spoken = sdk(&app, &key, "spoken_vad", &[q]).await;
    assert!(says(&spoken["heard"], "oil change"), "{spoken:#}");
    assert!(says(&spoken["answer"], "49"), "{spoken:#}");
    assert_eq!(spoken["status"], "completed");
    assert!(spoken["speech_started"].as_u64() >= Some(1));

    let manual = sdk(&app, &key, "manual_commit", &[q]).await;
    assert_eq!(manual["committed_item"], manual["transcribed_item"]);
    assert!(says(&manual["heard"], "oil change"), "{manual:#}");
    assert!(says(&manual["answer"], "49"), "{manual:#}");
    assert_eq!(
        manual["speech_started"], 0,
        "no VAD events with turn_detection null"
    );

    let barge = speech_file("Are you open on Sunday?");
    let interrupted = sdk(
        &app,
        &key,
        "barge_in",
        &[
            "Tell me about the service department hours and loaner cars.",
            barge.to_str().expect("path"),
        ],
    )
    .await;
    assert_eq!(
        interrupted["cancelled_status"], "cancelled",
        "{interrupted:#}"
    );
    assert_eq!(interrupted["cancelled_reason"], "turn_detected");
    assert_eq!(interrupted["cancelled_id"], interrupted["first_response"]);
    assert_eq!(interrupted["truncated_item"], interrupted["item_id"]);
    assert_eq!(interrupted["second_status"], "completed");
    assert!(
        says(&interrupted["second_answer"], "closed"),
        "{interrupted:#}"
    );
    let _ = std::fs::remove_file(question);
    let _ = std::fs::remove_file(barge);
}

#[tokio::test]
async fn a_client_secret_opens_one_session_configured_as_minted() {
    let app = simulated_app().await;
    let key = api_key(&app, &["realtime"]).await;
    let mint = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            app.client
                .post(app.url("/v1/realtime/client_secrets"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("request")
        }
    };
    let refused = mint(json!({"expires_after": {"anchor": "created_at", "seconds": 5}})).await;
    assert_eq!(refused.status(), 422);
    let refused = mint(json!({"session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/opus"}}}}})).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        json_body(refused).await["error"]["field"],
        "session.audio.input.format.type"
    );
    let minted = mint(json!({
        "expires_after": {"anchor": "created_at", "seconds": 60},
        "session": {"type": "realtime", "model": "gpt-realtime-mini", "instructions": "Be brief.",
                    "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": null}}},
    }))
    .await;
    assert_eq!(minted.status(), 200);
    let minted = json_body(minted).await;
    let secret = minted["value"].as_str().expect("value").to_owned();
    assert!(secret.starts_with("ek_"), "{minted}");
    assert!(minted["expires_at"].as_i64() > Some(app.clock.now()));
    assert_eq!(
        minted["session"]["audio"]["input"]["format"]["type"],
        "audio/pcmu"
    );

    // As a browser sends it: in the subprotocols, not a header.
    let connect = |secret: String| {
        let url = format!("{}/v1/realtime", app.base.replace("http://", "ws://"));
        async move {
            let mut request = url.into_client_request().expect("request");
            request.headers_mut().insert(
                "sec-websocket-protocol",
                format!("realtime, openai-insecure-api-key.{secret}")
                    .parse()
                    .expect("header"),
            );
            tokio_tungstenite::connect_async(request).await
        }
    };
    let (mut ws, response) = connect(secret.clone())
        .await
        .expect("the secret opens a session");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("realtime")
    );
    let created = until(&mut ws, "session.created").await;
    let session = &created.last().expect("created")["session"];
    assert_eq!(session["model"], "gpt-realtime-mini");
    assert_eq!(session["instructions"], "Be brief.");
    assert_eq!(session["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(session["audio"]["input"]["turn_detection"], Value::Null);
    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hours?"}]}}),
    )
    .await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let turn = until(&mut ws, "response.done").await;
    assert!(
        !types(&turn).contains(&"session.updated"),
        "the secret's configuration is not announced as a change: {:?}",
        types(&turn)
    );

    // Once only.
    match connect(secret).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401);
        }
        other => panic!("a used secret opened a session: {:?}", other.map(|_| ())),
    }
}

/// Asks `question` as a typed turn and returns its `response.done`.
async fn ask(ws: &mut Ws, question: &str) -> Value {
    send(
        ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}}),
    )
    .await;
    send(ws, json!({"type": "response.create"})).await;
    let turn = until(ws, "response.done").await;
    turn.last().expect("done")["response"].clone()
}

#[tokio::test]
async fn a_client_with_its_own_instructions_bypasses_the_shared_answer_cache() {
    let app = simulated_app().await;
    let key = api_key(&app, &["realtime"]).await;
    let mut plain = open(&app, &key).await.expect("connect");
    until(&mut plain, "session.created").await;
    ask(&mut plain, "When does the showroom open on weekdays?").await;
    let again = ask(&mut plain, "When does the showroom open on weekdays?").await;
    assert_eq!(
        again["adam"]["metrics"]["cache_hit"], true,
        "the dealership's cache answers a repeated question: {again}"
    );

    // Answers shaped by one client's instructions are that client's alone.
    let mut instructed = open(&app, &key).await.expect("connect");
    until(&mut instructed, "session.created").await;
    send(
        &mut instructed,
        json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Answer like a pirate."}}),
    )
    .await;
    until(&mut instructed, "session.updated").await;
    let own = ask(&mut instructed, "When does the showroom open on weekdays?").await;
    assert_eq!(own["adam"]["metrics"]["cache_hit"], false, "{own}");
    assert_eq!(own["status"], "completed");
}
