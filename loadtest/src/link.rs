//! The wire under one virtual customer: a WebSocket (PCM16 frames and JSON text) or a
//! WebRTC peer connection (Opus over RTP both ways, events on the `events` data
//! channel), behind one interface so the turn loop is the same for both.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCSessionDescription,
};

use crate::audio::RATE;

/// The transports the load tester speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `ws_url`: PCM16 binary frames and JSON text.
    Websocket,
    /// `webrtc_url`: Opus over RTP and the `events` data channel.
    Webrtc,
}

/// What came from the server.
#[derive(Debug)]
pub enum Incoming {
    /// This many seconds of answer audio.
    Audio(f64),
    /// A JSON event.
    Event(Value),
    /// The connection ended (`closed_1008`, `ws_read`, `webrtc_closed`, …).
    Closed(String),
}

/// One open connection.
pub enum Link {
    /// WebSocket.
    Ws(Box<WsLink>),
    /// WebRTC.
    Rtc(Box<RtcLink>),
}

impl Link {
    /// Opens the transport for a ticket from `POST /v1/sessions`.
    pub async fn open(
        config: &crate::Config,
        ticket: &Value,
        origin: Option<&str>,
    ) -> Result<Self, String> {
        let base = config.url.as_str();
        match config.transport {
            Transport::Websocket => Ok(Link::Ws(Box::new(
                WsLink::open(base, ticket, origin).await?,
            ))),
            Transport::Webrtc => Ok(Link::Rtc(Box::new(
                RtcLink::open(base, ticket, origin, config.opus_complexity).await?,
            ))),
        }
    }

    /// Sends one 20 ms frame of 16 kHz microphone audio.
    pub async fn send_frame(&mut self, frame: &[i16]) -> Result<(), String> {
        match self {
            Link::Ws(ws) => ws.send_frame(frame).await,
            Link::Rtc(rtc) => rtc.send_frame(frame).await,
        }
    }

    /// The next thing the server sent.
    pub async fn next(&mut self) -> Incoming {
        match self {
            Link::Ws(ws) => ws.next().await,
            Link::Rtc(rtc) => rtc
                .incoming
                .recv()
                .await
                .unwrap_or_else(|| Incoming::Closed("webrtc_closed".into())),
        }
    }

    /// Ends the conversation from the client side.
    pub async fn close(self) {
        match self {
            Link::Ws(mut ws) => {
                let _ = ws.ws.close(None).await;
            }
            Link::Rtc(rtc) => {
                let _ = rtc.pc.close().await;
            }
        }
    }
}

/// A WebSocket conversation.
pub struct WsLink {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    rate: f64,
}

fn absolute(base: &str, path: &str, websocket: bool) -> String {
    let base = base.trim_end_matches('/');
    if !websocket {
        return format!("{base}{path}");
    }
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}{path}")
}

impl WsLink {
    async fn open(base: &str, ticket: &Value, origin: Option<&str>) -> Result<Self, String> {
        let path = ticket["ws_url"].as_str().ok_or("http_body")?;
        let mut request = absolute(base, path, true)
            .into_client_request()
            .map_err(|_| "ws_url".to_owned())?;
        if let Some(o) = origin {
            request
                .headers_mut()
                .insert("origin", o.parse().map_err(|_| "origin".to_owned())?);
        }
        // A small read buffer: tungstenite zero-fills all of it before each socket read
        // (128 KiB by default), which at hundreds of sessions is most of the generator's CPU.
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .map_err(|_| "ws_connect".to_owned())?;
        Ok(Self { ws, rate: 24_000.0 })
    }

    async fn send_frame(&mut self, frame: &[i16]) -> Result<(), String> {
        let bytes: Vec<u8> = frame.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(|_| "ws_send".to_owned())
    }

    async fn next(&mut self) -> Incoming {
        loop {
            return match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => Incoming::Audio(b.len() as f64 / 2.0 / self.rate),
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    if v["type"] == "response.output_audio.started" {
                        self.rate = v["sample_rate"].as_f64().unwrap_or(24_000.0);
                    }
                    Incoming::Event(v)
                }
                Some(Ok(Message::Close(frame))) => Incoming::Closed(format!(
                    "closed_{}",
                    frame.map(|f| u16::from(f.code)).unwrap_or(1005)
                )),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => Incoming::Closed("ws_read".into()),
            };
        }
    }
}

/// A WebRTC conversation: what a browser does, with Opus at 48 kHz.
pub struct RtcLink {
    pc: Arc<dyn PeerConnection>,
    mic: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    encoder: opus::Encoder,
    sequence: u16,
    timestamp: u32,
    last: i16,
    incoming: mpsc::UnboundedReceiver<Incoming>,
}

struct Handler {
    gathered: watch::Sender<bool>,
    incoming: mpsc::UnboundedSender<Incoming>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let incoming = self.incoming.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event
                    && !p.payload.is_empty()
                    && incoming.send(Incoming::Audio(0.02)).is_err()
                {
                    return;
                }
            }
        });
    }
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

impl RtcLink {
    async fn open(
        base: &str,
        ticket: &Value,
        origin: Option<&str>,
        complexity: i32,
    ) -> Result<Self, String> {
        let url = ticket["webrtc_url"].as_str().ok_or("no_webrtc_url")?;
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: opus_codec(),
                    payload_type: 111,
                },
                RtpCodecKind::Audio,
            )
            .map_err(|_| "webrtc_setup".to_owned())?;
        let (gathered_tx, mut gathered) = watch::channel(false);
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_handler(Arc::new(Handler {
                gathered: gathered_tx,
                incoming: incoming_tx.clone(),
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .map_err(|_| "webrtc_setup".to_owned())?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrc = rand_u32();
        let mic = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "mic".into(),
            "mic".into(),
            "Microphone".into(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: opus_codec(),
                ..Default::default()
            }],
        )));
        let result = async {
            pc.add_track(mic.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(|_| "webrtc_setup".to_owned())?;
            let channel = pc
                .create_data_channel("events", None)
                .await
                .map_err(|_| "webrtc_setup".to_owned())?;
            tokio::spawn(read_events(channel, incoming_tx));
            let offer = pc
                .create_offer(None)
                .await
                .map_err(|_| "webrtc_offer".to_owned())?;
            pc.set_local_description(offer)
                .await
                .map_err(|_| "webrtc_offer".to_owned())?;
            let _ = tokio::time::timeout(Duration::from_secs(2), gathered.wait_for(|g| *g)).await;
            let sdp = pc.local_description().await.ok_or("webrtc_offer")?.sdp;
            let mut req = reqwest::Client::new()
                .post(absolute(base, url, false))
                .json(&serde_json::json!({"type": "offer", "sdp": sdp}));
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            let resp = req.send().await.map_err(|_| "http_connect".to_owned())?;
            if resp.status().as_u16() != 201 {
                return Err(format!("webrtc_http_{}", resp.status().as_u16()));
            }
            let answer: Value = resp.json().await.map_err(|_| "http_body".to_owned())?;
            let answer = RTCSessionDescription::answer(
                answer["sdp"].as_str().unwrap_or_default().to_owned(),
            )
            .map_err(|_| "webrtc_answer".to_owned())?;
            pc.set_remote_description(answer)
                .await
                .map_err(|_| "webrtc_answer".to_owned())
        }
        .await;
        if let Err(e) = result {
            let _ = pc.close().await;
            return Err(e);
        }
        Ok(Self {
            pc,
            mic,
            ssrc,
            encoder: {
                let mut encoder =
                    opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
                        .map_err(|_| "opus".to_owned())?;
                encoder
                    .set_complexity(complexity)
                    .map_err(|_| "opus".to_owned())?;
                encoder
            },
            sequence: 0,
            timestamp: rand_u32(),
            last: 0,
            incoming,
        })
    }

    async fn send_frame(&mut self, frame: &[i16]) -> Result<(), String> {
        // 16 kHz → 48 kHz by linear interpolation: the simulated providers only need the
        // energy, and the embedded ones resample again anyway.
        let factor = (48_000 / RATE) as usize;
        let mut pcm = Vec::with_capacity(frame.len() * factor);
        for &s in frame {
            for i in 1..=factor {
                let t = i as f32 / factor as f32;
                pcm.push((f32::from(self.last) * (1.0 - t) + f32::from(s) * t) as i16);
            }
            self.last = s;
        }
        let mut out = [0u8; 1500];
        let len = self
            .encoder
            .encode(&pcm, &mut out)
            .map_err(|_| "opus".to_owned())?;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(pcm.len() as u32);
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 111,
                sequence_number: self.sequence,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(&out[..len]),
        };
        self.mic
            .write_rtp(packet)
            .await
            .map_err(|_| "rtp_send".to_owned())
    }
}

async fn read_events(channel: Arc<dyn DataChannel>, incoming: mpsc::UnboundedSender<Incoming>) {
    while let Some(event) = channel.poll().await {
        let item = match event {
            DataChannelEvent::OnMessage(m) => {
                let v: Value = serde_json::from_slice(&m.data).unwrap_or_default();
                if v["type"] == "session.closed" {
                    Incoming::Closed(format!("closed_{}", v["code"].as_u64().unwrap_or(1005)))
                } else {
                    Incoming::Event(v)
                }
            }
            DataChannelEvent::OnClose => Incoming::Closed("webrtc_closed".into()),
            _ => continue,
        };
        if incoming.send(item).is_err() {
            return;
        }
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now()) as u32
}
