//! Clients that misbehave or vanish: one that stops reading, one that leaves mid-turn,
//! broken audio, floods, an idle WebRTC peer.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{Client, error_codes, events, metrics, quick, root_and_dealership, value};
use crate::helpers::{eventually, json_body};
use crate::realtime::{Item, Ws};

/// Opens a WebSocket whose receive buffer is a few kilobytes, so a client that stops
/// reading holds the server's writes back as soon as the server's own kernel buffer is
/// full (Linux grows it up to `tcp_wmem` max, 4 MiB by default: about 30 s of 48 kHz
/// audio).
async fn connect_with_small_buffer(url: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let request = url.into_client_request().expect("request");
    let host = request.uri().host().expect("host").to_owned();
    let port = request.uri().port_u16().expect("port");
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let stream = socket.connect(addr).await.expect("connect");
    let (ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade");
    ws
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_audio_not_memory_and_is_closed_as_too_slow() {
    let answer = "We are open from eight in the morning until six in the evening. ".repeat(40);
    let app = crate::helpers::spawn_app_with(|s| {
        quick(s);
        s.providers.simulated.answer = answer;
        s.providers.simulated.tts_ms_per_char = 60;
        s.session.outbound_queue = 64;
        s.session.slow_client_drops = 100;
    })
    .await;
    let (token, dealership) = root_and_dealership(&app).await;
    let resp = app
        .post(
            "/v1/sessions",
            Some(&token),
            json!({"dealership_id": dealership}),
        )
        .await;
    let body = json_body(resp).await;
    let id = body["session_id"].as_str().expect("id").to_owned();
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        body["ws_url"].as_str().expect("url")
    );
    let mut ws = connect_with_small_buffer(&url).await;
    // The most audio per second: 48 kHz.
    for event in [
        json!({"type": "session.update", "session": {"output_sample_rate": 48000}}),
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "When are you open?"}]}}),
        json!({"type": "response.create"}),
    ] {
        ws.send(Message::Text(event.to_string().into()))
            .await
            .expect("send");
    }
    let started = std::time::Instant::now();
    // The client reads nothing now. The server drops what does not fit, then gives up.
    let closed = eventually(Duration::from_secs(60), || async {
        value(&metrics(&app).await, "adam_live_sessions") == 0.0
    })
    .await;
    let m = metrics(&app).await;
    assert!(closed, "session still live after 60 s\n{m}");
    let dropped = value(&m, "adam_dropped_frames_total{reason=\"outbound_full\"}");
    eprintln!(
        "slow client closed after {:.1} s; {dropped} items dropped",
        started.elapsed().as_secs_f64()
    );
    assert!(dropped >= 100.0, "{m}");
    assert!(
        eventually(Duration::from_secs(3), || async {
            value(&metrics(&app).await, "adam_live_actors") == 0.0
        })
        .await
    );
    // When it reads again, it finds the start of the answer, then the end of the line.
    let mut audio = 0;
    let mut end = None;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        match msg {
            Ok(Message::Binary(_)) => audio += 1,
            Ok(Message::Close(frame)) => {
                end = Some(frame.map(|f| u16::from(f.code)));
                break;
            }
            Ok(_) => {}
            Err(_) => {
                end = Some(None);
                break;
            }
        }
    }
    assert!(audio > 0, "some audio was delivered");
    assert!(end.is_some(), "the connection ended");
    let session = json_body(app.get(&format!("/v1/sessions/{id}"), Some(&token)).await).await;
    assert_eq!(session["end_reason"], "client too slow", "{session}");
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test]
async fn a_client_that_vanishes_at_any_stage_of_a_turn_leaves_no_session_actor_or_task_after_a_second()
 {
    let app = crate::helpers::spawn_app_with(|s| {
        quick(s);
        let sim = &mut s.providers.simulated;
        sim.answer = "We are open from eight in the morning until six in the evening.".into();
        sim.tts_ms_per_char = 40;
        // Slow enough that the client is gone while each stage is still at work.
        sim.stt_delay_ms = 1_000;
        sim.answer_first_token_ms = 1_000;
    })
    .await;
    let (token, dealership) = root_and_dealership(&app).await;
    let gone = |baseline: usize| {
        let app = &app;
        async move {
            eventually(Duration::from_secs(1), || async {
                let m = metrics(app).await;
                value(&m, "adam_live_sessions") == 0.0
                    && value(&m, "adam_live_actors") == 0.0
                    && alive_tasks() <= baseline
            })
            .await
        }
    };
    // A whole turn first, so that what is pooled (HTTP and database connections) exists
    // before the baseline is taken.
    let mut client = Client::open(&app, &token, &dealership).await;
    client.ask("When do you open?").await;
    client.until("response.done").await;
    drop(client);
    assert!(
        eventually(Duration::from_secs(5), || async {
            value(&metrics(&app).await, "adam_live_actors") == 0.0
        })
        .await
    );
    metrics(&app).await;
    let baseline = alive_tasks();

    for stage in ["speaking up", "transcribing", "thinking", "answering aloud"] {
        let mut client = Client::open(&app, &token, &dealership).await;
        match stage {
            "speaking up" => {
                client.stream(true, 400).await;
                client.until("input_audio_buffer.speech_started").await;
            }
            "transcribing" => {
                client.stream(true, 600).await;
                client.stream(false, 400).await;
                client.until("input_audio_buffer.speech_stopped").await;
            }
            "thinking" => {
                client.ask("When do you open?").await;
                client.until("response.created").await;
            }
            _ => {
                client.ask("When do you open?").await;
                client.until("response.output_audio.started").await;
            }
        }
        drop(client);
        assert!(
            gone(baseline).await,
            "after leaving while {stage}: tasks {} (baseline {baseline})\n{}",
            alive_tasks(),
            metrics(&app).await
        );
    }
}

#[tokio::test]
async fn malformed_and_truncated_audio_is_refused_or_absorbed_and_the_customer_is_still_understood()
{
    let app = crate::helpers::spawn_app_with(quick).await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut client = Client::open(&app, &token, &dealership).await;
    // Speech whose frames come broken in every way a client or network can break them.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut odd = 0;
    for n in 0..60 {
        tick.tick().await;
        let mut frame = crate::realtime::frame(true, n);
        match n % 6 {
            // Nothing at all.
            1 => frame.clear(),
            // Cut mid-sample: not PCM16.
            2 => {
                frame.truncate(321);
                odd += 1;
            }
            // Cut at a sample boundary: a shorter frame.
            3 => frame.truncate(100),
            // Clipped to the extremes.
            4 => {
                frame = [i16::MIN, i16::MAX]
                    .repeat(160)
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect();
            }
            // Several frames in one message.
            5 => frame = frame.repeat(12),
            _ => {}
        }
        client.send_bytes(frame).await;
    }
    client.stream(false, 600).await;
    let items = client.until("response.done").await;
    assert_eq!(
        error_codes(&items),
        vec!["invalid_audio"; odd],
        "one error per frame that is not PCM16"
    );
    let heard = events(
        &items,
        "conversation.item.input_audio_transcription.completed",
    )
    .next()
    .expect("a transcript");
    assert!(
        heard["transcript"].as_str().is_some_and(|t| !t.is_empty()),
        "{heard}"
    );
    let done = events(&items, "response.done").next().expect("done");
    assert_eq!(done["response"]["status"], "completed");

    // The microphone stream stops mid-word (the network dropped it); the client then
    // commits what it sent, and that is answered.
    client.stream(true, 600).await;
    client.until("input_audio_buffer.speech_started").await;
    client
        .send(json!({"type": "input_audio_buffer.commit"}))
        .await;
    let items = client.until("response.done").await;
    assert!(
        events(&items, "input_audio_buffer.speech_stopped")
            .next()
            .is_some(),
        "{items:?}"
    );
    let done = events(&items, "response.done").next().expect("done");
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(value(&metrics(&app).await, "adam_live_sessions"), 1.0);
}

#[tokio::test]
async fn a_flooding_client_is_cut_off_without_disturbing_its_neighbour() {
    let app = crate::helpers::spawn_app_with(|s| {
        quick(s);
        s.session.max_messages_per_sec = 100;
    })
    .await;
    let (token, dealership) = root_and_dealership(&app).await;
    let mut neighbour = Client::open(&app, &token, &dealership).await;
    let mut flooder = Client::open(&app, &token, &dealership).await;
    let steady = value(&metrics(&app).await, "adam_live_actors");

    // Just under the limit: questions, cancellations and updates, 80 messages a second
    // for 2 s, while the neighbour asks its own question.
    neighbour.ask("When do you open?").await;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..20 {
        tick.tick().await;
        for _ in 0..2 {
            flooder.ask("When do you open?").await;
            flooder.send(json!({"type": "response.cancel"})).await;
            flooder
                .send(json!({"type": "session.update", "session": {}}))
                .await;
        }
    }
    let items = neighbour.until("response.done").await;
    let done = events(&items, "response.done").next().expect("done");
    assert_eq!(done["response"]["status"], "completed");
    // The flooder's session kept up with all of it (its last message is answered last),
    // and still answers.
    let mut updated = 0;
    while updated < 40 {
        let items = flooder.until("session.updated").await;
        assert!(
            events(&items, "error").next().is_none(),
            "{:?}",
            error_codes(&items)
        );
        updated += 1;
    }
    flooder.ask("When do you open?").await;
    let items = flooder.until("response.done").await;
    assert_eq!(
        events(&items, "response.done").last().expect("done")["response"]["status"],
        "completed"
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            value(&metrics(&app).await, "adam_live_actors") == steady
        })
        .await,
        "every cancelled answer's actor stopped\n{}",
        metrics(&app).await
    );

    // Over the limit: the flooder is closed with 1008, the neighbour goes on.
    for _ in 0..150 {
        if flooder
            .tx
            .send(Message::Text(
                json!({"type": "session.update", "session": {}})
                    .to_string()
                    .into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), flooder.rx.recv()).await {
            Ok(Some(Item::Closed(code))) => break code,
            Ok(Some(_)) => continue,
            other => panic!("no close: {other:?}"),
        }
    };
    assert_eq!(code, Some(1008));
    neighbour.ask("And on Saturday?").await;
    let items = neighbour.until("response.done").await;
    let done = events(&items, "response.done").next().expect("done");
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(value(&metrics(&app).await, "adam_live_sessions"), 1.0);
}

/// The outbox's own policies (idle timeout, a client too slow) close a WebRTC client
/// too; its session must end with it, not live on without a transport.
#[tokio::test]
async fn an_idle_webrtc_client_is_closed_and_its_session_ends_with_it() {
    let app = crate::helpers::spawn_app_with(|s| {
        quick(s);
        s.session.idle_timeout_secs = 1;
        s.webrtc.udp_bind_ips = vec!["127.0.0.1".into()];
    })
    .await;
    let who = crate::webrtc::caller(&app).await;
    let (mut client, id) = crate::webrtc::connect(&app, &who).await;
    let closed = client.next("session.closed").await;
    assert_eq!(closed["reason"], "idle timeout", "{closed}");
    let (token, _) = root_and_dealership(&app).await;
    let ended = eventually(Duration::from_secs(5), || async {
        let m = metrics(&app).await;
        value(&m, "adam_live_sessions") == 0.0 && value(&m, "adam_live_actors") == 0.0
    })
    .await;
    assert!(ended, "session still live\n{}", metrics(&app).await);
    let session = json_body(app.get(&format!("/v1/sessions/{id}"), Some(&token)).await).await;
    assert_eq!(session["end_reason"], "idle timeout", "{session}");
}
