//! `DeepgramStt` and `DeepgramSession` against the fake Deepgram endpoint.

use std::sync::Arc;
use std::time::Duration;

use adam_actors::ports::{CancellationToken, ProviderError, SpeechToText, SttRequest, Vocabulary};
use adam_providers::cloud::deepgram::{DeepgramConfig, DeepgramSession, DeepgramStt, SttEvent};
use adam_providers::cloud::resilience::ResilienceConfig;
use tokio::sync::mpsc;

use crate::fakes::deepgram::{FINAL_1, FINAL_2, FakeDeepgram, INTERIM, KEY, Mode};
use crate::support::{eventually, key, metrics, no_retries, only_idle_timeout, resilience, within};

fn config(fake: &FakeDeepgram, resilience: ResilienceConfig) -> DeepgramConfig {
    DeepgramConfig {
        url: fake.url(),
        keepalive_ms: 100,
        resilience,
        ..DeepgramConfig::default()
    }
}

fn client(fake: &FakeDeepgram, resilience: ResilienceConfig) -> DeepgramStt {
    DeepgramStt::new(config(fake, resilience), key(KEY), metrics().1).expect("client")
}

async fn next(session: &mut DeepgramSession) -> SttEvent {
    within(Duration::from_secs(3), session.next_event())
        .await
        .expect("an event")
        .expect("no error")
}

/// Half a second of audio at 16 kHz.
fn turn() -> SttRequest {
    SttRequest {
        audio: Arc::from(vec![100i16; 8_000]),
        sample_rate: 16_000,
        vocabulary: Vocabulary::new(vec!["Aurora".into(), "Port Ellery".into()]),
    }
}

async fn transcribe(stt: &DeepgramStt) -> (Result<String, ProviderError>, Vec<String>) {
    let (tx, mut rx) = mpsc::channel(16);
    let result = within(
        Duration::from_secs(5),
        stt.transcribe(turn(), tx, CancellationToken::new()),
    )
    .await;
    let mut partials = Vec::new();
    while let Ok(p) = rx.try_recv() {
        partials.push(p);
    }
    (result, partials)
}

#[tokio::test]
async fn an_utterance_is_streamed_finalized_and_assembled() {
    let fake = FakeDeepgram::start().await;
    let stt = client(&fake, resilience());
    let (result, partials) = transcribe(&stt).await;
    assert_eq!(result, Ok(format!("{FINAL_1} {FINAL_2}")));
    assert_eq!(partials, [INTERIM]);
    let conn = &fake.conns()[0];
    assert_eq!(conn.auth.as_deref(), Some(&*format!("Token {KEY}")));
    for (k, v) in [
        ("encoding", "linear16"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", "300"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
        ("model", "nova-3"),
    ] {
        assert_eq!(conn.query.get(k).map(String::as_str), Some(v), "{k}");
    }
    // The dealership's words go as Nova-3 key terms, phrases whole.
    assert_eq!(conn.keyterms, ["Aurora", "Port Ellery"]);
    assert_eq!(
        conn.audio_bytes, 16_000,
        "every sample, as 16-bit little-endian"
    );
    assert_eq!(conn.controls, ["Finalize", "CloseStream"]);
}

#[tokio::test]
async fn an_older_model_gets_the_vocabulary_as_boosted_keywords_within_the_cap() {
    let fake = FakeDeepgram::start().await;
    let stt = DeepgramStt::new(
        DeepgramConfig {
            model: "nova-2".into(),
            keyterms: vec!["Ridgeline".into()],
            ..config(&fake, resilience())
        },
        key(KEY),
        metrics().1,
    )
    .expect("client");
    let mut terms = vec!["Port Ellery".to_owned(), "ridgeline".to_owned()];
    terms.extend((0..100).map(|i| format!("Trim{i}")));
    let (tx, _rx) = mpsc::channel(16);
    let request = SttRequest {
        vocabulary: Vocabulary::new(terms),
        ..turn()
    };
    let result = within(
        Duration::from_secs(5),
        stt.transcribe(request, tx, CancellationToken::new()),
    )
    .await;
    assert!(result.is_ok(), "{result:?}");
    let conn = &fake.conns()[0];
    assert!(conn.keyterms.is_empty(), "key terms are Nova-3 only");
    // The configured word first, then the dealership's, a word each, no repeats.
    assert_eq!(
        conn.keywords[..4],
        ["Ridgeline:2", "Port:2", "Ellery:2", "Trim0:2"]
    );
    assert_eq!(
        conn.keywords.len(),
        adam_providers::cloud::deepgram::MAX_TERMS
    );
}

#[tokio::test]
async fn a_refused_handshake_is_retried_on_429_and_not_on_401() {
    let fake = FakeDeepgram::start().await;
    fake.push(Mode::Refuse {
        code: 429,
        headers: vec![("retry-after", "0")],
    });
    let stt = client(&fake, resilience());
    assert!(transcribe(&stt).await.0.is_ok());
    assert_eq!(fake.attempts(), 2);

    let fake = FakeDeepgram::start().await;
    let stt =
        DeepgramStt::new(config(&fake, resilience()), key("wrong"), metrics().1).expect("client");
    let (result, _) = transcribe(&stt).await;
    assert!(
        matches!(result, Err(ProviderError::Rejected(ref m)) if m.contains("401") && m.contains("Invalid credentials")),
        "{result:?}"
    );
    assert_eq!(fake.attempts(), 1);
}

#[tokio::test]
async fn a_silent_socket_times_out_instead_of_hanging() {
    let fake = FakeDeepgram::start().await;
    fake.push(Mode::Silent);
    let stt = client(&fake, only_idle_timeout());
    let (result, _) = transcribe(&stt).await;
    assert_eq!(result, Err(ProviderError::Timeout));
    eventually("the socket was closed", || fake.conns()[0].ended).await;
}

#[tokio::test]
async fn close_codes_map_to_errors() {
    let fake = FakeDeepgram::start().await;
    fake.push(Mode::CloseWith {
        code: 1011,
        reason: "NET-0000: no audio received",
    });
    let stt = client(&fake, no_retries());
    let (result, _) = transcribe(&stt).await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(ref m)) if m.contains("1011")),
        "{result:?}"
    );

    fake.push(Mode::CloseWith {
        code: 1008,
        reason: "DATA-0000: the payload cannot be decoded as audio",
    });
    let (result, _) = transcribe(&stt).await;
    assert!(
        matches!(result, Err(ProviderError::Rejected(ref m)) if m.contains("DATA-0000")),
        "{result:?}"
    );
}

#[tokio::test]
async fn cancellation_closes_the_socket_promptly() {
    let fake = FakeDeepgram::start().await;
    fake.push(Mode::Silent);
    let stt = client(&fake, resilience());
    let cancel = CancellationToken::new();
    let (tx, _rx) = mpsc::channel(8);
    let call = stt.transcribe(turn(), tx, cancel.clone());
    let (result, ()) = within(Duration::from_secs(3), async {
        tokio::join!(call, async {
            eventually("audio reached the fake", || {
                fake.conns().first().is_some_and(|c| c.audio_bytes > 0)
            })
            .await;
            cancel.cancel();
        })
    })
    .await;
    assert_eq!(result, Err(ProviderError::Cancelled));
    eventually("the fake saw the socket close", || fake.conns()[0].ended).await;
}

#[tokio::test]
async fn a_streaming_session_reports_endpointing_and_keeps_the_socket_alive() {
    let fake = FakeDeepgram::start().await;
    let stt = client(&fake, resilience());
    let mut session = stt
        .open_session(16_000, &Default::default(), CancellationToken::new())
        .await
        .expect("session");
    // Idle: keep-alives go out instead of audio.
    eventually("a KeepAlive", || {
        fake.conns()[0].controls.iter().any(|c| c == "KeepAlive")
    })
    .await;
    for _ in 0..4 {
        session.send_audio(&[50; 1_600]).await.expect("audio");
    }
    let mut events = Vec::new();
    events.push(next(&mut session).await);
    events.push(next(&mut session).await);
    session.finalize().await.expect("finalize");
    for _ in 0..3 {
        events.push(next(&mut session).await);
    }
    assert_eq!(events[0], SttEvent::SpeechStarted { at_secs: 0.1 });
    assert!(
        matches!(&events[1], SttEvent::Transcript { text, is_final: false, .. } if text == INTERIM)
    );
    assert!(
        matches!(&events[2], SttEvent::Transcript { text, is_final: true, speech_final: false, .. } if text == FINAL_1)
    );
    assert!(matches!(
        &events[3],
        SttEvent::Transcript { text, is_final: true, speech_final: false, from_finalize: true } if text == FINAL_2
    ));
    assert_eq!(
        events[4],
        SttEvent::UtteranceEnd {
            last_word_end_secs: 1.9
        }
    );
    session.close().await.expect("close");
    assert!(matches!(
        next(&mut session).await,
        SttEvent::Metadata { .. }
    ));
    assert_eq!(next(&mut session).await, SttEvent::Closed);
    assert!(session.next_event().await.is_none());
    eventually("the fake saw the end", || fake.conns()[0].ended).await;
}

#[tokio::test]
async fn dropping_a_session_says_goodbye() {
    let fake = FakeDeepgram::start().await;
    let stt = client(&fake, resilience());
    let session = stt
        .open_session(16_000, &Default::default(), CancellationToken::new())
        .await
        .expect("session");
    session.send_audio(&[1; 160]).await.expect("audio");
    eventually("audio arrived", || fake.conns()[0].audio_bytes == 320).await;
    drop(session);
    eventually("CloseStream and the socket closed", || {
        let c = &fake.conns()[0];
        c.ended && c.controls.last().is_some_and(|k| k == "CloseStream")
    })
    .await;
}

#[tokio::test]
async fn a_long_turn_with_many_interim_results_does_not_stall() {
    let fake = FakeDeepgram::start().await;
    fake.push(Mode::Chatty);
    let stt = client(&fake, resilience());
    // 30 s of audio: 300 frames, each answered with an interim result.
    let request = SttRequest {
        audio: Arc::from(vec![7i16; 480_000]),
        sample_rate: 16_000,
        vocabulary: Vocabulary::default(),
    };
    let (tx, _rx) = mpsc::channel(4);
    let result = within(
        Duration::from_secs(10),
        stt.transcribe(request, tx, CancellationToken::new()),
    )
    .await;
    assert_eq!(result, Ok(format!("{FINAL_1} {FINAL_2}")));
    assert_eq!(fake.conns()[0].audio_bytes, 960_000);
}

#[tokio::test]
async fn split_halves_close_when_the_sender_is_dropped() {
    let fake = FakeDeepgram::start().await;
    let stt = client(&fake, resilience());
    let session = stt
        .open_session(16_000, &Default::default(), CancellationToken::new())
        .await
        .expect("session");
    let (sender, mut events) = session.split();
    sender.send_audio(&[9; 3_200]).await.expect("audio");
    drop(sender);
    let mut seen = Vec::new();
    while let Some(event) = within(Duration::from_secs(3), events.next()).await {
        seen.push(event.expect("no error"));
    }
    assert!(matches!(seen.first(), Some(SttEvent::SpeechStarted { .. })));
    assert!(matches!(seen[seen.len() - 2], SttEvent::Metadata { .. }));
    assert_eq!(seen.last(), Some(&SttEvent::Closed));
    assert_eq!(
        fake.conns()[0].controls.last().map(String::as_str),
        Some("CloseStream")
    );
}

#[tokio::test]
async fn listening_turns_deepgram_endpointing_into_ends_of_turns() {
    use adam_actors::ports::{ListenEvent, ListenInput, ListeningStt};
    let fake = FakeDeepgram::start().await;
    fake.push(Mode::Endpointing);
    let stt = DeepgramStt::new(
        DeepgramConfig {
            endpointing_ms: 300,
            ..config(&fake, resilience())
        },
        key(KEY),
        metrics().1,
    )
    .expect("client");
    let mut listening = within(
        Duration::from_secs(3),
        stt.listen(16_000, Vocabulary::default(), CancellationToken::new()),
    )
    .await
    .expect("a stream");
    // 600 ms of loud audio, then 400 ms of silence: past the 300 ms endpointing.
    for n in 0..50 {
        let level = if n < 30 { 3_000 } else { 0 };
        listening
            .audio
            .send(ListenInput::Audio(vec![level; 320]))
            .await
            .expect("sent");
    }
    let mut heard = Vec::new();
    while !matches!(heard.last(), Some(ListenEvent::EndOfTurn(_))) {
        let event = within(Duration::from_secs(3), listening.events.recv())
            .await
            .expect("an event")
            .expect("no error");
        heard.push(event);
    }
    assert_eq!(heard[0], ListenEvent::SpeechStarted);
    assert!(
        heard.contains(&ListenEvent::Interim(INTERIM.into())),
        "{heard:?}"
    );
    // The first final shows as interim text until the one with speech_final ends the turn.
    assert!(
        heard.contains(&ListenEvent::Interim(FINAL_1.into())),
        "{heard:?}"
    );
    assert_eq!(
        heard.last(),
        Some(&ListenEvent::EndOfTurn(format!("{FINAL_1} {FINAL_2}")))
    );
    // Dropping the input closes the stream the documented way.
    drop(listening.audio);
    eventually("the stream closed", || {
        fake.conns().first().is_some_and(|c| c.ended)
    })
    .await;
    assert!(fake.conns()[0].controls.contains(&"CloseStream".to_owned()));
}

/// A listening stream at `endpointing_ms`, against the endpointing fake.
async fn listening(
    fake: &FakeDeepgram,
    endpointing_ms: u32,
    idle_timeout_ms: u64,
) -> (DeepgramStt, adam_actors::ports::Listening) {
    fake.push(Mode::Endpointing);
    let stt = DeepgramStt::new(
        DeepgramConfig {
            endpointing_ms,
            ..config(
                fake,
                ResilienceConfig {
                    idle_timeout_ms,
                    ..resilience()
                },
            )
        },
        key(KEY),
        metrics().1,
    )
    .expect("client");
    let listening = within(
        Duration::from_secs(3),
        adam_actors::ports::ListeningStt::listen(
            &stt,
            16_000,
            Vocabulary::new(vec!["Meridian".into()]),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("a stream");
    (stt, listening)
}

async fn send_frames(listening: &adam_actors::ports::Listening, level: i16, frames: usize) {
    for _ in 0..frames {
        listening
            .audio
            .send(adam_actors::ports::ListenInput::Audio(vec![level; 320]))
            .await
            .expect("sent");
    }
}

/// Events until the first end of turn (3 s at most per event).
async fn until_end_of_turn(
    listening: &mut adam_actors::ports::Listening,
) -> Vec<adam_actors::ports::ListenEvent> {
    use adam_actors::ports::ListenEvent;
    let mut heard = Vec::new();
    while !matches!(heard.last(), Some(ListenEvent::EndOfTurn(_))) {
        let event = within(Duration::from_secs(3), listening.events.recv())
            .await
            .expect("an event")
            .expect("no error");
        heard.push(event);
    }
    heard
}

#[tokio::test]
async fn a_finalize_deepgram_does_not_answer_still_ends_the_turn_with_its_finals() {
    use adam_actors::ports::{ListenEvent, ListenInput};
    let fake = FakeDeepgram::start().await;
    // Endpointing far away: the words are finalised at the pause, speech_final never comes.
    let (_stt, mut listening) = listening(&fake, 5_000, 5_000).await;
    send_frames(&listening, 3_000, 30).await;
    send_frames(&listening, 0, 15).await;
    let mut heard = Vec::new();
    while !heard.contains(&ListenEvent::Interim(FINAL_1.into())) {
        let event = within(Duration::from_secs(3), listening.events.recv())
            .await
            .expect("an event")
            .expect("no error");
        heard.push(event);
    }
    // A manual commit now: every word is final, so Deepgram sends nothing back.
    let committed = tokio::time::Instant::now();
    listening
        .audio
        .send(ListenInput::Finalize)
        .await
        .expect("sent");
    let heard = until_end_of_turn(&mut listening).await;
    assert_eq!(heard.last(), Some(&ListenEvent::EndOfTurn(FINAL_1.into())));
    // Well before the session's 2.5 s fallback that would transcribe the audio again.
    assert!(committed.elapsed() < Duration::from_millis(2_000));
    let conn = &fake.conns()[0];
    assert!(conn.controls.contains(&"Finalize".to_owned()), "{conn:?}");
}

#[tokio::test]
async fn a_finalize_answer_without_speech_final_ends_the_turn_at_once() {
    use adam_actors::ports::{ListenEvent, ListenInput};
    let fake = FakeDeepgram::start().await;
    let (_stt, mut listening) = listening(&fake, 5_000, 5_000).await;
    // Still speaking when the commit comes: Deepgram answers with `from_finalize` only.
    send_frames(&listening, 3_000, 30).await;
    listening
        .audio
        .send(ListenInput::Finalize)
        .await
        .expect("sent");
    let heard = until_end_of_turn(&mut listening).await;
    assert_eq!(
        heard.last(),
        Some(&ListenEvent::EndOfTurn(format!("{FINAL_1} {FINAL_2}")))
    );
}

#[tokio::test]
async fn a_quiet_deepgram_is_pinged_not_declared_dead() {
    use adam_actors::ports::ListenEvent;
    let fake = FakeDeepgram::start().await;
    // A 400 ms idle limit; Deepgram says nothing while it hears silence.
    let (_stt, mut listening) = listening(&fake, 300, 400).await;
    // 1.6 s of silence at the real pace (20 ms frames), four idle limits.
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..80 {
        pace.tick().await;
        send_frames(&listening, 0, 1).await;
    }
    assert!(
        listening.events.try_recv().is_err(),
        "the quiet stream failed or spoke"
    );
    // And it still hears the next turn.
    send_frames(&listening, 3_000, 30).await;
    send_frames(&listening, 0, 20).await;
    let heard = until_end_of_turn(&mut listening).await;
    assert_eq!(
        heard.last(),
        Some(&ListenEvent::EndOfTurn(format!("{FINAL_1} {FINAL_2}")))
    );
}
