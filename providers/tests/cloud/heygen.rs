//! `HeyGen` and `HeyGenSession` against the fake LiveAvatar API.

use std::time::Duration;

use adam_actors::ports::{AvatarBackend, AvatarSettings, CancellationToken, ProviderError};
use adam_providers::cloud::heygen::{HeyGen, HeyGenConfig, HeyGenSession};
use adam_providers::cloud::resilience::ResilienceConfig;

use crate::fakes::heygen::{Command, FakeHeyGen, KEY, LIVEKIT_URL, Mode};
use crate::support::{eventually, key, metrics, no_retries, only_idle_timeout, resilience, within};

fn config(fake: &FakeHeyGen, resilience: ResilienceConfig) -> HeyGenConfig {
    HeyGenConfig {
        base_url: fake.base_url(),
        avatar_id: "avatar-default".into(),
        resilience,
        ..HeyGenConfig::default()
    }
}

fn client(fake: &FakeHeyGen, resilience: ResilienceConfig) -> HeyGen {
    HeyGen::new(config(fake, resilience), key(KEY), metrics().1).expect("client")
}

async fn start(heygen: &HeyGen, avatar_id: &str) -> Result<HeyGenSession, ProviderError> {
    within(
        Duration::from_secs(5),
        heygen.open(avatar_id, CancellationToken::new()),
    )
    .await
}

/// 100 ms of PCM16 at 16 kHz, as a speech synthesizer hands it over.
fn piece() -> Vec<i16> {
    vec![1000; 1600]
}

#[tokio::test]
async fn a_session_starts_speaks_in_one_second_pieces_and_stops() {
    let fake = FakeHeyGen::start().await;
    let heygen = client(&fake, resilience());
    let mut session = start(&heygen, "avatar-1").await.expect("started");
    let s = fake.session();
    assert_eq!(session.livekit_url(), LIVEKIT_URL);
    assert_eq!(session.access_token(), format!("livekit-client-{}", s.id));
    assert_eq!(session.session_id(), s.id);
    assert_eq!(s.token_body["mode"], "LITE");
    assert_eq!(s.token_body["avatar_id"], "avatar-1");
    assert_eq!(s.token_body["is_sandbox"], false);
    assert!(s.started && s.socket_opened);

    // 2.5 s of 16 kHz audio: two 1 s pieces at 24 kHz as it fills, the rest at the end.
    for _ in 0..25 {
        session.speak("resp_1", &piece(), 16_000).expect("queued");
    }
    session.speak_end("resp_1").expect("queued");
    eventually("the response's end reached the fake", || {
        fake.session().speak_ends() == ["resp_1"]
    })
    .await;
    let speaks = fake.session().speaks();
    assert_eq!(speaks.len(), 3, "{speaks:?}");
    // LiveAvatar's LITE guide: every chunk of one response carries the same event_id.
    assert_eq!(
        fake.session().speak_event_ids,
        vec![Some("resp_1".to_owned()); 3]
    );
    assert_eq!(speaks[..2], [24_000, 24_000]);
    let total = fake.session().spoken_samples();
    assert!(
        (59_900..=60_000).contains(&total),
        "2.5 s at 24 kHz: {total}"
    );

    within(Duration::from_secs(5), session.close())
        .await
        .expect("stopped");
    let s = fake.session();
    assert_eq!(s.stops, ["USER_CLOSED"]);
    eventually("the socket closed", || fake.session().socket_ended).await;
}

#[tokio::test]
async fn an_interrupt_is_sent_and_drops_the_audio_not_yet_sent() {
    let fake = FakeHeyGen::start().await;
    let heygen = client(&fake, resilience());
    let mut session = start(&heygen, "").await.expect("started");
    assert_eq!(
        fake.session().token_body["avatar_id"],
        "avatar-default",
        "the configured avatar when none is asked for"
    );
    session
        .speak("resp_1", &vec![7; 24_000], 24_000)
        .expect("queued");
    eventually("a second of audio arrived", || {
        fake.session().speaks() == [24_000]
    })
    .await;
    // Half a second still waiting for a full piece: dropped by the interrupt.
    session
        .speak("resp_1", &vec![7; 12_000], 24_000)
        .expect("queued");
    session.interrupt().expect("interrupted");
    session
        .speak("resp_2", &vec![7; 6_000], 24_000)
        .expect("queued");
    session.speak_end("resp_2").expect("queued");
    eventually("the next response's end arrived", || {
        fake.session().speak_ends() == ["resp_2"]
    })
    .await;
    assert_eq!(
        fake.session().commands,
        [
            Command::Speak(24_000),
            Command::Interrupt,
            Command::Speak(6_000),
            Command::SpeakEnd("resp_2".into()),
        ]
    );
    assert_eq!(fake.session().interrupts(), 1);
}

#[tokio::test]
async fn a_bad_key_is_rejected_and_not_retried() {
    let fake = FakeHeyGen::start().await;
    let heygen =
        HeyGen::new(config(&fake, resilience()), key("wrong"), metrics().1).expect("client");
    let result = start(&heygen, "avatar-1").await;
    assert_eq!(
        result.map(|_| ()),
        Err(ProviderError::Rejected(
            "heygen: HTTP 401: Invalid API key".into()
        ))
    );
    assert_eq!(fake.token_calls(), 1);
    assert!(fake.sessions().is_empty());
}

#[tokio::test]
async fn a_failed_start_is_retried_on_5xx_reported_and_the_session_stopped() {
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::RefuseStart(503));
    let heygen = client(&fake, resilience());
    let result = start(&heygen, "avatar-1").await;
    assert!(
        matches!(&result, Err(ProviderError::Unavailable(m)) if m.contains("503")),
        "{result:?}"
    );
    assert_eq!(fake.start_calls(), 3, "the first try and two retries");
    assert_eq!(
        fake.session().stops,
        ["SERVER_ERROR"],
        "the token's session is freed"
    );

    let fake = FakeHeyGen::start().await;
    fake.push(Mode::RefuseStart(402));
    let heygen = client(&fake, resilience());
    let result = start(&heygen, "avatar-1").await;
    assert!(
        matches!(&result, Err(ProviderError::Rejected(m)) if m.contains("402")),
        "{result:?}"
    );
    assert_eq!(fake.start_calls(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_socket_that_never_connects_fails_the_start_and_stops_the_session() {
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::NeverConnected);
    let heygen = client(
        &fake,
        ResilienceConfig {
            first_byte_timeout_ms: 300,
            ..no_retries()
        },
    );
    let result = start(&heygen, "avatar-1").await;
    assert_eq!(result.map(|_| ()), Err(ProviderError::Timeout));
    let s = fake.session();
    assert!(s.socket_opened);
    assert_eq!(s.stops, ["SERVER_ERROR"]);
}

#[tokio::test]
async fn a_cancelled_start_stops_the_half_started_session() {
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::NeverConnected);
    let heygen = client(&fake, only_idle_timeout());
    let cancel = CancellationToken::new();
    let (result, ()) = within(Duration::from_secs(5), async {
        tokio::join!(heygen.open("avatar-1", cancel.clone()), async {
            eventually("the socket opened", || {
                fake.sessions().first().is_some_and(|s| s.socket_opened)
            })
            .await;
            cancel.cancel();
        })
    })
    .await;
    assert_eq!(result.map(|_| ()), Err(ProviderError::Cancelled));
    assert_eq!(fake.session().stops, ["SERVER_ERROR"]);
}

#[tokio::test]
async fn a_dead_socket_fails_the_session_and_stops_it() {
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::Unresponsive);
    // Only the 300 ms idle limit is short: the 5 s bound proves the pings found it dead.
    let heygen = client(&fake, only_idle_timeout());
    let mut session = start(&heygen, "avatar-1").await.expect("started");
    let error = within(Duration::from_secs(5), session.failed()).await;
    assert_eq!(error, ProviderError::Timeout);
    assert_eq!(
        session.speak("resp_1", &piece(), 16_000),
        Err(ProviderError::Timeout)
    );
    assert_eq!(session.interrupt(), Err(ProviderError::Timeout));
    eventually("the session was stopped", || {
        fake.session().stops == ["SERVER_ERROR"]
    })
    .await;

    // A socket dropped without a close frame.
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::Drop);
    let heygen = client(&fake, only_idle_timeout());
    let session = start(&heygen, "avatar-1").await.expect("started");
    let error = within(Duration::from_secs(5), session.failed()).await;
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn a_quiet_session_is_kept_alive_and_stopped_when_dropped() {
    let fake = FakeHeyGen::start().await;
    let heygen = HeyGen::new(
        HeyGenConfig {
            keep_alive_interval_ms: 200,
            ..config(
                &fake,
                ResilienceConfig {
                    idle_timeout_ms: 1_000,
                    ..only_idle_timeout()
                },
            )
        },
        key(KEY),
        metrics().1,
    )
    .expect("client");
    let mut session = start(&heygen, "avatar-1").await.expect("started");
    // Eleven keep-alives 200 ms apart: past twice the 1 s idle limit with nothing said,
    // and the session lives on because the fake answers the pings.
    within(Duration::from_secs(20), async {
        while fake.session().keep_alives < 11 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    session
        .speak("resp_1", &piece(), 16_000)
        .expect("still alive");
    assert!(fake.session().stops.is_empty());
    drop(session);
    eventually("the dropped session was stopped", || {
        let s = fake.session();
        s.stops == ["USER_CLOSED"] && s.socket_ended
    })
    .await;
}

#[tokio::test]
async fn as_an_avatar_backend_it_starts_the_dealerships_avatar() {
    let fake = FakeHeyGen::start().await;
    let heygen = client(&fake, resilience());
    let settings = AvatarSettings {
        provider: "heygen".into(),
        avatar_id: Some("dealer-avatar".into()),
    };
    let mut remote = within(
        Duration::from_secs(5),
        AvatarBackend::start(&heygen, "sess_1", &settings, CancellationToken::new()),
    )
    .await
    .expect("started")
    .expect("a remote avatar");
    let stream = remote.stream();
    assert_eq!(stream.provider, "heygen");
    assert_eq!(stream.livekit_url, LIVEKIT_URL);
    assert_eq!(fake.session().token_body["avatar_id"], "dealer-avatar");
    remote.audio("resp_1", &piece(), 16_000).expect("queued");
    remote.end_of_response("resp_1").expect("queued");
    eventually("the piece and the end arrived", || {
        fake.session().speak_ends() == ["resp_1"]
    })
    .await;
    assert_eq!(fake.session().speaks().len(), 1);
    within(Duration::from_secs(5), remote.stop())
        .await
        .expect("stopped");
    assert_eq!(fake.session().stops, ["USER_CLOSED"]);
}

#[tokio::test]
async fn no_avatar_at_all_is_refused_before_any_call() {
    let fake = FakeHeyGen::start().await;
    let heygen = HeyGen::new(
        HeyGenConfig {
            avatar_id: String::new(),
            ..config(&fake, resilience())
        },
        key(KEY),
        metrics().1,
    )
    .expect("client");
    let result = start(&heygen, " ").await;
    assert!(
        matches!(&result, Err(ProviderError::Rejected(m)) if m.contains("avatar_id")),
        "{result:?}"
    );
    assert_eq!(fake.token_calls(), 0);
}

#[tokio::test]
async fn the_socket_is_opened_with_the_ws_url_alone() {
    let fake = FakeHeyGen::start().await;
    let heygen = client(&fake, resilience());
    let session = start(&heygen, "avatar-1").await.expect("started");
    // The fake's socket asks for no header: the opaque ws_url is the credential.
    assert!(fake.session().socket_opened);
    assert!(fake.session().ws_path.starts_with("ws-secret-"));
    within(Duration::from_secs(5), session.close())
        .await
        .expect("stopped");
}

#[tokio::test]
async fn a_server_error_event_fails_the_session_and_stops_it() {
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::ErrorOnSpeak);
    let heygen = client(&fake, resilience());
    let mut session = start(&heygen, "avatar-1").await.expect("started");
    session
        .speak("resp_1", &vec![7; 24_000], 24_000)
        .expect("queued");
    let error = within(Duration::from_secs(5), session.failed()).await;
    assert!(
        matches!(&error, ProviderError::Rejected(m) if m.contains("Invalid audio payload")),
        "{error:?}"
    );
    // Audio after the error is refused instead of streamed to a silent avatar.
    assert_eq!(session.speak("resp_1", &piece(), 16_000), Err(error));
    eventually("the session was stopped", || {
        fake.session().stops == ["SERVER_ERROR"]
    })
    .await;
}

#[tokio::test]
async fn a_start_answered_with_a_data_less_4xx_code_is_not_retried() {
    let fake = FakeHeyGen::start().await;
    fake.push(Mode::StartWithoutData(400004));
    let heygen = client(&fake, resilience());
    let result = start(&heygen, "avatar-1").await;
    assert!(
        matches!(&result, Err(ProviderError::Rejected(m)) if m.contains("400004")),
        "{result:?}"
    );
    assert_eq!(fake.start_calls(), 1, "a refusal is not retried");
    assert_eq!(fake.session().stops, ["SERVER_ERROR"]);

    let fake = FakeHeyGen::start().await;
    fake.push(Mode::StartWithoutData(500001));
    let heygen = client(&fake, resilience());
    let result = start(&heygen, "avatar-1").await;
    assert!(
        matches!(&result, Err(ProviderError::Unavailable(m)) if m.contains("500001")),
        "{result:?}"
    );
    assert_eq!(fake.start_calls(), 3, "a service error is retried");
}
