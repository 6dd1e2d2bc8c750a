//! A dealership whose avatar is HeyGen LiveAvatar, against the fake LiveAvatar API (the
//! fake of `providers/tests/cloud/fakes/heygen.rs`): the browser gets `avatar.stream`, the
//! answer's audio reaches LiveAvatar as `agent.speak` pieces and `agent.speak_end`, a
//! cancel interrupts it, the end of the conversation stops it; an avatar that cannot start,
//! or that LiveAvatar reports an `error` for, leaves the built-in one; the avatar setting
//! is validated.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cloud::fakes::heygen::{FakeHeyGen, KEY, LIVEKIT_URL, Mode};
use crate::helpers::{TestApp, eventually, json_body, spawn_app_with};
use crate::realtime::{Item, Ws, ask, connect, event, read_until};

const ANSWER: &str = "We open at eight on weekdays and at nine on Saturdays. \
                      Would you like me to book a visit?";
const WAIT: Duration = Duration::from_secs(10);

async fn heygen_app(fake: &FakeHeyGen, key: &str) -> TestApp {
    let (base, key) = (fake.base_url(), key.to_owned());
    spawn_app_with(move |s| {
        let p = &mut s.providers;
        p.simulated.answer = ANSWER.into();
        p.simulated.tts_ms_per_char = 16;
        p.simulated.answer_first_token_ms = 10;
        p.simulated.answer_tokens_per_sec = 400.0;
        p.simulated.tts_first_byte_ms = 10;
        p.heygen.base_url = base;
        p.heygen.resilience.max_retries = 0;
        p.keys
            .set(adam_providers::registry::Account::HeyGen, key.into());
    })
    .await
}

/// A dealership with `avatar`, and a WebSocket session with it (read up to
/// `session.created`).
async fn session_with_avatar(app: &TestApp, avatar: Value) -> Ws {
    let root = app.admin().await;
    let resp = app
        .post(
            "/v1/dealerships",
            Some(&root.access),
            json!({"name": "Avatar Autos", "avatar": avatar}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let dealership = json_body(resp).await["id"].as_str().expect("id").to_owned();
    let resp = app
        .post(
            "/v1/sessions",
            Some(&root.access),
            json!({"dealership_id": dealership}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    assert_eq!(
        body["avatar"]["provider"], "heygen",
        "the client sees the setting"
    );
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        body["ws_url"].as_str().expect("ws_url")
    );
    let mut ws = connect(&url, None).await.expect("upgrade");
    read_until(&mut ws, "session.created").await;
    ws
}

fn audio_samples(items: &[Item]) -> usize {
    items
        .iter()
        .map(|i| match i {
            Item::Audio(bytes) => bytes / 2,
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn a_heygen_dealership_gets_the_avatar_stream_and_the_avatar_speaks_the_answers() {
    let fake = FakeHeyGen::start().await;
    let app = heygen_app(&fake, KEY).await;
    let mut ws = session_with_avatar(
        &app,
        json!({"provider": "heygen", "avatar_id": "avatar-42"}),
    )
    .await;

    let items = read_until(&mut ws, "avatar.stream").await;
    let stream = event(&items, "avatar.stream");
    let session = fake.session();
    assert_eq!(stream["provider"], "heygen");
    assert_eq!(stream["livekit_url"], LIVEKIT_URL);
    assert_eq!(
        stream["access_token"],
        format!("livekit-client-{}", session.id)
    );
    assert_eq!(session.token_body["mode"], "LITE");
    assert_eq!(session.token_body["avatar_id"], "avatar-42");

    // A typed question: Adam still sends its own audio (24 kHz), and the same audio
    // reaches LiveAvatar in pieces, then the end of the response.
    ask(&mut ws, "When do you open?").await;
    let items = read_until(&mut ws, "response.done").await;
    let done = event(&items, "response.done");
    assert_eq!(done["response"]["status"], "completed", "{done}");
    let response_id = done["response"]["id"].as_str().expect("id").to_owned();
    let sent = audio_samples(&items);
    assert!(sent > 24_000, "over a second of answer audio: {sent}");
    assert!(
        eventually(WAIT, || async {
            fake.session().speak_ends() == [response_id.clone()]
        })
        .await,
        "agent.speak_end for {response_id}: {:?}",
        fake.session().commands
    );
    let session = fake.session();
    let spoken = session.spoken_samples();
    // Adam pads its last 20 ms frame with silence; LiveAvatar gets the audio as is.
    assert!(
        spoken <= sent && sent - spoken < 480,
        "LiveAvatar got {spoken} samples, the client {sent}"
    );
    assert!(
        session
            .speak_event_ids
            .iter()
            .all(|id| id.as_deref() == Some(response_id.as_str())),
        "every piece carries the response's event_id: {:?}",
        session.speak_event_ids
    );
    let speaks = session.speaks();
    assert!(
        speaks.len() >= 2 && speaks[0] == 24_000 && speaks.iter().all(|n| *n <= 24_000),
        "one-second pieces as the audio is produced, the rest at the end: {speaks:?}"
    );

    // A cancelled answer interrupts the avatar.
    ask(&mut ws, "And on Sundays?").await;
    read_until(&mut ws, "response.output_audio.started").await;
    ws_send(&mut ws, json!({"type": "response.cancel"})).await;
    let items = read_until(&mut ws, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "cancelled"
    );
    assert!(
        eventually(WAIT, || async { fake.session().interrupts() == 1 }).await,
        "agent.interrupt: {:?}",
        fake.session().commands
    );

    // The conversation ends: the LiveAvatar session is stopped.
    drop(ws);
    assert!(
        eventually(WAIT, || async { fake.session().stops == ["USER_CLOSED"] }).await,
        "stopped: {:?}",
        fake.session().stops
    );
}

async fn ws_send(ws: &mut Ws, event: Value) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::Text(event.to_string().into()))
        .await
        .expect("send");
}

#[tokio::test]
async fn an_avatar_that_cannot_start_leaves_the_builtin_avatar() {
    let fake = FakeHeyGen::start().await;
    let app = heygen_app(&fake, "a-wrong-key").await;
    let mut ws = session_with_avatar(
        &app,
        json!({"provider": "heygen", "avatar_id": "avatar-42"}),
    )
    .await;
    let items = read_until(&mut ws, "error").await;
    assert_eq!(event(&items, "error")["error"]["code"], "avatar_failed");
    assert_eq!(fake.token_calls(), 1, "LiveAvatar refused the key");

    ask(&mut ws, "When do you open?").await;
    let items = read_until(&mut ws, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
    assert!(audio_samples(&items) > 0);
    event(&items, "avatar.viseme");
    assert!(
        !items
            .iter()
            .any(|i| matches!(i, Item::Event(e) if e["type"] == "avatar.stream")),
        "no remote avatar"
    );
}

#[tokio::test]
async fn a_liveavatar_error_event_falls_back_to_the_builtin_avatar() {
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::ErrorOnSpeak);
    let app = heygen_app(&fake, KEY).await;
    let mut ws = session_with_avatar(
        &app,
        json!({"provider": "heygen", "avatar_id": "avatar-42"}),
    )
    .await;
    read_until(&mut ws, "avatar.stream").await;

    // The first agent.speak is answered with an `error` event: the avatar is silent.
    ask(&mut ws, "When do you open?").await;
    let mut items = read_until(&mut ws, "response.done").await;
    if !items
        .iter()
        .any(|i| matches!(i, Item::Event(e) if e["type"] == "error"))
    {
        items = read_until(&mut ws, "error").await;
    }
    assert_eq!(event(&items, "error")["error"]["code"], "avatar_failed");
    assert!(
        eventually(WAIT, || async { fake.session().stops == ["SERVER_ERROR"] }).await,
        "the failed LiveAvatar session is stopped: {:?}",
        fake.session().stops
    );
    let speaks = fake.session().speaks().len();

    // The next answer is drawn by the built-in avatar; nothing more goes to LiveAvatar.
    ask(&mut ws, "And on Saturdays?").await;
    let items = read_until(&mut ws, "response.done").await;
    assert_eq!(
        event(&items, "response.done")["response"]["status"],
        "completed"
    );
    event(&items, "avatar.viseme");
    assert_eq!(fake.session().speaks().len(), speaks);
}

#[tokio::test]
async fn the_avatar_setting_is_validated() {
    let fake = FakeHeyGen::start().await;
    let app = heygen_app(&fake, KEY).await;
    let root = app.admin().await;
    for (avatar, field) in [
        (json!({"provider": "vidyard"}), "avatar.provider"),
        (json!({"provider": "heygen"}), "avatar.avatar_id"),
        (
            json!({"provider": "heygen", "avatar_id": ""}),
            "avatar.avatar_id",
        ),
        (
            json!({"provider": "heygen", "avatar_id": 7}),
            "avatar.avatar_id",
        ),
    ] {
        let resp = app
            .post(
                "/v1/dealerships",
                Some(&root.access),
                json!({"name": "Bad Avatar", "avatar": avatar}),
            )
            .await;
        assert_eq!(resp.status(), 422, "{avatar}");
        assert_eq!(json_body(resp).await["error"]["field"], field, "{avatar}");
    }
    let id = app.create_dealership(&root.access, "Good Avatar").await;
    let resp = app
        .patch(
            &format!("/v1/dealerships/{id}"),
            Some(&root.access),
            json!({"avatar": {"provider": "heygen", "avatar_id": "avatar-1", "background": "#fff"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["avatar"]["avatar_id"], "avatar-1");
    let resp = app
        .patch(
            &format!("/v1/dealerships/{id}"),
            Some(&root.access),
            json!({"avatar": {"provider": "builtin"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn heygen_as_the_node_default_without_its_key_stops_startup() {
    let mut settings = crate::helpers::test_settings();
    settings.data_dir = std::env::temp_dir().join(format!("adam-heygen-{}", uuid::Uuid::new_v4()));
    settings.database.url = format!("sqlite://{}", settings.data_dir.join("adam.db").display());
    std::fs::create_dir_all(&settings.data_dir).expect("dir");
    settings.providers.avatar = adam_providers::registry::AvatarVendor::HeyGen;
    settings.providers.heygen.avatar_id = "avatar-1".into();
    let err =
        adam::startup::Application::build_with_clock(settings, adam::clock::Clock::adjustable())
            .await
            .err()
            .expect("refused");
    assert!(
        format!("{err:#}").contains("ADAM__PROVIDERS__HEYGEN__API_KEY"),
        "{err:#}"
    );
}
