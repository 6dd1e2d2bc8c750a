//! The WebRTC transport end to end, driven by a webrtc-rs client (no browser): the offer
//! and answer over HTTP, Opus audio both ways, the `events` data channel carrying the
//! same events as the WebSocket, refusals, endings, and 100 sessions that leave no peer
//! connection, handler, task or actor behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCSessionDescription,
};

use adam::realtime::webrtc::opus_codec;

use crate::helpers::{TestApp, eventually, json_body, metric, metrics, spawn_app_with};

/// A server with a short, quick simulated answer, media on loopback only.
async fn rtc_app() -> TestApp {
    spawn_app_with(|s| {
        let sim = &mut s.providers.simulated;
        sim.answer = "We open at eight.".into();
        sim.tts_ms_per_char = 20;
        sim.stt_delay_ms = 20;
        sim.answer_first_token_ms = 20;
        sim.answer_tokens_per_sec = 200.0;
        sim.tts_first_byte_ms = 10;
        s.session.silence_ms = 300;
        s.webrtc.udp_bind_ips = vec!["127.0.0.1".into()];
    })
    .await
}

struct ClientHandler {
    gathered: watch::Sender<bool>,
    packets: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ClientHandler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let packets = self.packets.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event
                    && !p.payload.is_empty()
                {
                    packets.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
}

/// A browser stand-in: a microphone track, the `events` channel, received packets.
pub(crate) struct Client {
    pc: Arc<dyn PeerConnection>,
    channel: Arc<dyn DataChannel>,
    events: mpsc::UnboundedReceiver<Value>,
    packets: Arc<AtomicU32>,
    mic: Arc<TrackLocalStaticRTP>,
    mic_ssrc: u32,
    encoder: opus::Encoder,
    sequence: u16,
    timestamp: u32,
}

/// Builds a client and its offer (ICE gathered).
async fn client() -> (Client, String) {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )
        .expect("opus");
    let (gathered_tx, mut gathered) = watch::channel(false);
    let packets = Arc::new(AtomicU32::new(0));
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_handler(Arc::new(ClientHandler {
            gathered: gathered_tx,
            packets: packets.clone(),
        }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("client peer connection");
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let mic_ssrc = rand::random::<u32>();
    let mic = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "mic".into(),
        "mic-track".into(),
        "Microphone".into(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(mic_ssrc),
                ..Default::default()
            },
            codec: opus_codec(),
            ..Default::default()
        }],
    )));
    pc.add_track(mic.clone() as Arc<dyn TrackLocal>)
        .await
        .expect("mic track");
    let channel = pc
        .create_data_channel("events", None)
        .await
        .expect("events channel");
    let (events_tx, events) = mpsc::unbounded_channel();
    let reader = channel.clone();
    tokio::spawn(async move {
        while let Some(event) = reader.poll().await {
            match event {
                DataChannelEvent::OnMessage(m) => {
                    let value: Value = serde_json::from_slice(&m.data).expect("event is JSON");
                    if events_tx.send(value).is_err() {
                        return;
                    }
                }
                DataChannelEvent::OnClose => return,
                _ => {}
            }
        }
    });
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer).await.expect("local offer");
    tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g))
        .await
        .expect("client gathered its candidates")
        .expect("gathering");
    let sdp = pc.local_description().await.expect("offer sdp").sdp;
    let encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).expect("encoder");
    (
        Client {
            pc,
            channel,
            events,
            packets,
            mic,
            mic_ssrc,
            encoder,
            sequence: 0,
            timestamp: 0,
        },
        sdp,
    )
}

/// Who opens sessions: the bootstrap admin, for the demo dealership.
pub(crate) struct Caller {
    token: String,
    dealership: String,
}

pub(crate) async fn caller(app: &TestApp) -> Caller {
    let root = app.admin().await;
    let list = json_body(app.get("/v1/dealerships", Some(&root.access)).await).await;
    Caller {
        dealership: list[0]["id"].as_str().expect("demo dealership").to_owned(),
        token: root.access,
    }
}

/// A new session's ticket response.
async fn ticket(app: &TestApp, caller: &Caller) -> Value {
    let resp = app
        .post(
            "/v1/sessions",
            Some(&caller.token),
            json!({"dealership_id": caller.dealership}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    json_body(resp).await
}

async fn post_offer(app: &TestApp, url: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(url))
        .json(&body)
        .send()
        .await
        .expect("offer request")
}

/// A connected client: offer posted, answer applied, `session.created` received.
pub(crate) async fn connect(app: &TestApp, caller: &Caller) -> (Client, String) {
    let ticket = ticket(app, caller).await;
    let (mut client, offer) = client().await;
    let url = ticket["webrtc_url"].as_str().expect("webrtc_url");
    let resp = post_offer(app, url, json!({"type": "offer", "sdp": offer})).await;
    assert_eq!(resp.status(), 201);
    let answer = json_body(resp).await;
    assert_eq!(answer["type"], "answer");
    let sdp = answer["sdp"].as_str().expect("answer sdp").to_owned();
    assert!(sdp.contains("opus/48000"), "the answer carries Opus: {sdp}");
    client
        .pc
        .set_remote_description(RTCSessionDescription::answer(sdp).expect("answer"))
        .await
        .expect("remote answer");
    let created = client.next("session.created").await;
    assert_eq!(created["session"]["input_sample_rate"], 48_000);
    assert_eq!(created["session"]["output_sample_rate"], 48_000);
    let id = ticket["session_id"].as_str().expect("id").to_owned();
    (client, id)
}

impl Client {
    /// The next event of type `kind` (earlier ones are skipped), within 10 s.
    pub(crate) async fn next(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) if event["type"] == kind => return event,
                Ok(Some(_)) => {}
                Ok(None) => panic!("events channel closed while waiting for {kind}"),
                Err(_) => panic!("no {kind} within 10 s"),
            }
        }
    }

    async fn send_event(&self, event: Value) {
        self.channel
            .send_text(&event.to_string())
            .await
            .expect("send event");
    }

    /// `ms` of loud noise (speech to the simulated VAD) or silence, Opus at 20 ms pace.
    async fn speak(&mut self, ms: usize, loud: bool) {
        let mut x: u32 = 0x9e37_79b9;
        let samples: Vec<i16> = (0..ms * 48)
            .map(|_| {
                if !loud {
                    return 0;
                }
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                ((x % 8000) as i32 - 4000) as i16
            })
            .collect();
        self.send_pcm(&samples).await;
    }

    /// 48 kHz PCM as the microphone: Opus packets of 20 ms on a real-time timer.
    pub(crate) async fn send_pcm(&mut self, samples: &[i16]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for chunk in samples.chunks(960) {
            tick.tick().await;
            let mut frame = chunk.to_vec();
            frame.resize(960, 0);
            let mut out = [0u8; 1500];
            let len = self.encoder.encode(&frame, &mut out).expect("encode");
            self.sequence = self.sequence.wrapping_add(1);
            self.timestamp = self.timestamp.wrapping_add(960);
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    payload_type: 111,
                    sequence_number: self.sequence,
                    timestamp: self.timestamp,
                    ssrc: self.mic_ssrc,
                    ..Default::default()
                },
                payload: Bytes::copy_from_slice(&out[..len]),
            };
            self.mic.write_rtp(packet).await.expect("write rtp");
        }
    }
}

fn gauge(metrics: &str, name: &str) -> i64 {
    metric(metrics, name).map_or(-1, |v| v as i64)
}

#[tokio::test]
async fn a_spoken_turn_over_webrtc_gets_events_and_opus_audio() {
    let app = rtc_app().await;
    let (mut client, id) = connect(&app, &caller(&app).await).await;
    client.speak(1000, true).await;
    let speaker = tokio::spawn(async move {
        client.speak(1500, false).await;
        client
    });
    let mut client = speaker.await.expect("speaker");
    client.next("input_audio_buffer.speech_started").await;
    let transcript = client
        .next("conversation.item.input_audio_transcription.completed")
        .await;
    assert!(!transcript["transcript"].as_str().unwrap_or("").is_empty());
    let started = client.next("response.output_audio.started").await;
    assert_eq!(started["sample_rate"], 48_000, "{started}");
    let done = client.next("response.done").await;
    assert_eq!(done["response"]["status"], "completed", "{done}");
    assert_eq!(done["response"]["output_text"], "We open at eight.");
    // "We open at eight." at 20 ms a character is ~340 ms: at least a dozen 20 ms packets.
    let got = eventually(Duration::from_secs(5), || {
        let packets = client.packets.clone();
        async move { packets.load(Ordering::SeqCst) >= 12 }
    })
    .await;
    assert!(
        got,
        "the answer's audio arrived as RTP: {} packets",
        client.packets.load(Ordering::SeqCst)
    );
    // The transcript is saved with its transport.
    let root = app.admin().await;
    let saved = eventually(Duration::from_secs(5), || async {
        let s = json_body(
            app.get(&format!("/v1/sessions/{id}"), Some(&root.access))
                .await,
        )
        .await;
        s["transport"] == "webrtc" && s["turns"].as_array().is_some_and(|t| t.len() == 1)
    })
    .await;
    assert!(saved, "the turn was saved for the webrtc session");
    let _ = client.pc.close().await;
}

#[tokio::test]
async fn typed_events_and_errors_travel_on_the_data_channel() {
    let app = rtc_app().await;
    let (mut client, _) = connect(&app, &caller(&app).await).await;
    client
        .send_event(json!({"type": "session.update", "session": {"input_sample_rate": 16000}}))
        .await;
    let error = client.next("error").await;
    assert_eq!(error["error"]["code"], "invalid_session_update", "{error}");
    client.send_event(json!({"type": "no.such.event"})).await;
    let error = client.next("error").await;
    assert_eq!(error["error"]["code"], "unknown_event", "{error}");
    client
        .send_event(json!({"type": "session.update", "session": {"voice": "default"}}))
        .await;
    client.next("session.updated").await;
    client
        .send_event(json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "When do you open?"}]}}))
        .await;
    client.send_event(json!({"type": "response.create"})).await;
    let done = client.next("response.done").await;
    assert_eq!(done["response"]["status"], "completed", "{done}");
    let _ = client.pc.close().await;
}

#[tokio::test]
async fn bad_offers_and_tickets_are_refused_with_clear_errors() {
    let app = rtc_app().await;
    let (_client, offer) = client().await;
    let who = caller(&app).await;
    let t = ticket(&app, &who).await;
    let id = t["session_id"].as_str().expect("id");
    let url = t["webrtc_url"].as_str().expect("url").to_owned();
    let ticket_value = t["ticket"].as_str().expect("ticket");
    assert!(url.ends_with(&format!("?ticket={ticket_value}")));

    let resp = post_offer(
        &app,
        &format!("/v1/sessions/{id}/webrtc"),
        json!({"type": "offer", "sdp": offer}),
    )
    .await;
    assert_eq!(resp.status(), 401, "no ticket");

    let resp = app
        .client
        .post(app.url(&url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400, "broken JSON");
    let resp = post_offer(&app, &url, json!({"type": "answer", "sdp": offer})).await;
    assert_eq!(resp.status(), 422, "an answer is not an offer");
    let body = json_body(resp).await;
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");

    // Every use burns the ticket, so each refusal below uses a new one.
    let t = ticket(&app, &who).await;
    let resp = post_offer(
        &app,
        t["webrtc_url"].as_str().expect("url"),
        json!({"type": "offer", "sdp": "v=0\r\nthis is not sdp"}),
    )
    .await;
    assert_eq!(resp.status(), 422, "garbage SDP");
    let body = json_body(resp).await;
    assert_eq!(body["error"]["field"], "sdp", "{body}");

    let t = ticket(&app, &who).await;
    let resp = app
        .client
        .post(app.url(t["webrtc_url"].as_str().expect("url")))
        .header("origin", "https://evil.example")
        .json(&json!({"type": "offer", "sdp": offer}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403, "an origin the ticket does not allow");

    let t = ticket(&app, &who).await;
    let url = t["webrtc_url"].as_str().expect("url");
    let (_second, offer) = client().await;
    let resp = post_offer(&app, url, json!({"type": "offer", "sdp": offer})).await;
    assert_eq!(resp.status(), 201);
    let resp = post_offer(&app, url, json!({"type": "offer", "sdp": offer})).await;
    assert_eq!(resp.status(), 401, "a ticket works once");
    // Nothing failed above left a session or a peer connection behind, but the one good one.
    let one = eventually(Duration::from_secs(5), || async {
        let m = metrics(&app).await;
        gauge(&m, "adam_webrtc_peer_connections") == 1 && gauge(&m, "adam_live_sessions") == 1
    })
    .await;
    assert!(one, "{}", metrics(&app).await);
}

#[tokio::test]
async fn an_admin_ending_the_session_closes_the_peer_with_a_reason() {
    let app = rtc_app().await;
    let (mut client, id) = connect(&app, &caller(&app).await).await;
    let root = app.admin().await;
    let resp = app
        .delete(&format!("/v1/sessions/{id}"), Some(&root.access))
        .await;
    assert_eq!(resp.status(), 204);
    let closed = client.next("session.closed").await;
    assert_eq!(closed["code"], 1000);
    assert_eq!(closed["reason"], "ended by admin");
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while client.events.recv().await.is_some() {}
    })
    .await;
    assert!(
        gone.is_ok(),
        "the server closed the events channel after session.closed"
    );
    let _ = client.pc.close().await;
}

#[tokio::test]
async fn a_client_that_leaves_ends_its_session() {
    let app = rtc_app().await;
    let (client, id) = connect(&app, &caller(&app).await).await;
    client.channel.close().await.expect("close channel");
    client.pc.close().await.expect("close");
    let root = app.admin().await;
    let ended = eventually(Duration::from_secs(10), || async {
        let s = json_body(
            app.get(&format!("/v1/sessions/{id}"), Some(&root.access))
                .await,
        )
        .await;
        s["end_reason"] == "client_disconnected"
    })
    .await;
    assert!(ended, "the session ended when the client left");
}

#[tokio::test]
async fn a_hundred_sessions_leave_no_connection_task_or_actor_behind() {
    let app = rtc_app().await;
    let who = caller(&app).await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let round = |round: usize| {
        let (app, who) = (&app, &who);
        async move {
            let clients = futures_util::future::join_all((0..10).map(|_| connect(app, who))).await;
            for (i, (client, id)) in clients.into_iter().enumerate() {
                // Half leave on their own, half are ended by the server.
                if (round + i).is_multiple_of(2) {
                    client.pc.close().await.expect("close");
                } else {
                    let resp = app
                        .delete(&format!("/v1/sessions/{id}"), Some(&who.token))
                        .await;
                    assert_eq!(resp.status(), 204);
                    let mut client = client;
                    client.next("session.closed").await;
                    client.pc.close().await.expect("close");
                }
            }
        }
    };
    let settled = |expected_tasks: Option<usize>| {
        let app = &app;
        async move {
            eventually(Duration::from_secs(20), || async move {
                let m = metrics(app).await;
                gauge(&m, "adam_webrtc_peer_connections") == 0
                    && gauge(&m, "adam_webrtc_handlers") == 0
                    && gauge(&m, "adam_live_sessions") == 0
                    && gauge(&m, "adam_live_actors") == 0
                    && expected_tasks.is_none_or(|t| tasks() <= t)
            })
            .await
        }
    };
    // A first round warms up what is pooled (HTTP keep-alive connections on both sides,
    // database connections), then the baseline is taken.
    round(0).await;
    assert!(settled(None).await, "{}", metrics(&app).await);
    let baseline = tasks();
    for r in 1..=10 {
        round(r).await;
    }
    let clean = settled(Some(baseline)).await;
    assert!(
        clean,
        "after 100 sessions: tasks {} (baseline {baseline})\n{}",
        tasks(),
        metrics(&app).await
    );
}

#[tokio::test]
async fn media_ports_come_from_the_configured_range_and_are_returned() {
    // Two ports, chosen where no other test binds (ephemeral ports start at 32768).
    let base = 20_000 + (std::process::id() % 5_000) as u16 * 2;
    let app = spawn_app_with(move |s| {
        s.webrtc.udp_bind_ips = vec!["127.0.0.1".into()];
        s.webrtc.udp_port_min = base;
        s.webrtc.udp_port_max = base + 1;
    })
    .await;
    let who = caller(&app).await;
    let (first, _) = connect(&app, &who).await;
    let (second, _) = connect(&app, &who).await;
    for c in [&first, &second] {
        let answer = c.pc.remote_description().await.expect("answer").sdp;
        assert!(
            answer.contains(&format!(" {base} typ host"))
                || answer.contains(&format!(" {} typ host", base + 1)),
            "the answer's candidate uses a port of the range: {answer}"
        );
    }
    // The range is exhausted: the third offer is refused as busy, and burns no port.
    let t = ticket(&app, &who).await;
    let (_third, offer) = client().await;
    let resp = post_offer(
        &app,
        t["webrtc_url"].as_str().expect("url"),
        json!({"type": "offer", "sdp": offer}),
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(json_body(resp).await["error"]["code"], "busy");
    // A session that ends gives its port back.
    first.pc.close().await.expect("close");
    let freed = eventually(Duration::from_secs(10), || async {
        gauge(&metrics(&app).await, "adam_webrtc_peer_connections") == 1
    })
    .await;
    assert!(freed, "the first session ended");
    let (fourth, _) = connect(&app, &who).await;
    let _ = fourth.pc.close().await;
    let _ = second.pc.close().await;
}

#[tokio::test]
async fn a_flood_on_the_events_channel_ends_the_session_with_1008() {
    let app = rtc_app().await;
    let (mut client, _) = connect(&app, &caller(&app).await).await;
    let ping = json!({"type": "session.update", "session": {}}).to_string();
    for _ in 0..400 {
        if client.channel.send_text(&ping).await.is_err() {
            break;
        }
    }
    let closed = client.next("session.closed").await;
    assert_eq!(closed["code"], 1008, "{closed}");
    assert_eq!(closed["reason"], "message flood");
    let _ = client.pc.close().await;
}
