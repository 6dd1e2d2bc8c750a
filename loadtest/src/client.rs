//! One virtual customer: opens a session, speaks its turns at real-time pace (every 20 ms
//! frame has a due time), and times what comes back against those due times.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::audio::{FRAME, Utterance};
use crate::{Auth, Config};

/// Frame period.
const TICK: Duration = Duration::from_millis(20);
/// Longest a turn may take before it counts as an error.
const TURN_TIMEOUT: Duration = Duration::from_secs(30);

/// What one session saw.
#[derive(Debug, Default)]
pub struct SessionOutcome {
    /// Intended start → WebSocket open.
    pub connect: Option<Duration>,
    /// Intended start → `session.created`.
    pub ready: Option<Duration>,
    /// Completed turns.
    pub turns: Vec<TurnOutcome>,
    /// Why the session failed, if it did (`http_503`, `ws_connect`, `closed_1008`, …).
    pub error: Option<String>,
    /// `error` events received (code), which do not end the session.
    pub error_events: Vec<String>,
}

/// What one turn saw.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    /// Intended end of the customer's speech → first answer audio frame.
    pub voice_to_voice: Option<Duration>,
    /// Seconds of answer audio received.
    pub answer_audio_secs: f64,
    /// Intended start of the barge-in speech → `response.output_audio.cleared`.
    pub barge_in_stop: Option<Duration>,
    /// `response.done` status of the first answer.
    pub status: String,
    /// When the turn ended.
    pub finished: Instant,
}

fn ws_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}{path}")
}

/// Runs one session to the end; never panics on server misbehaviour.
pub async fn run_session(
    config: &Config,
    utterance: &Utterance,
    intended: Instant,
) -> SessionOutcome {
    let mut outcome = SessionOutcome::default();
    if let Err(kind) = drive(config, utterance, intended, &mut outcome).await {
        outcome.error = Some(kind);
    }
    outcome
}

async fn drive(
    config: &Config,
    utterance: &Utterance,
    intended: Instant,
    out: &mut SessionOutcome,
) -> Result<(), String> {
    let http = reqwest::Client::new();
    let mut req = http.post(format!("{}/v1/sessions", config.url.trim_end_matches('/')));
    let mut origin = None;
    match &config.auth {
        Auth::Bearer {
            token,
            dealership_id,
        } => {
            req = req.bearer_auth(token);
            if let Some(d) = dealership_id {
                req = req.json(&serde_json::json!({"dealership_id": d}));
            }
        }
        Auth::EmbedKey { key, origin: o } => {
            req = req.header("x-embed-key", key).header("origin", o);
            origin = Some(o.clone());
        }
        Auth::None => return Err("no_credentials".into()),
    }
    let resp = req.send().await.map_err(|_| "http_connect".to_owned())?;
    if resp.status().as_u16() != 201 {
        return Err(format!("http_{}", resp.status().as_u16()));
    }
    let ticket: serde_json::Value = resp.json().await.map_err(|_| "http_body".to_owned())?;
    let path = ticket["ws_url"].as_str().ok_or("http_body")?;
    let mut request = ws_url(&config.url, path)
        .into_client_request()
        .map_err(|_| "ws_url".to_owned())?;
    if let Some(o) = origin {
        request
            .headers_mut()
            .insert("origin", o.parse().map_err(|_| "origin".to_owned())?);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|_| "ws_connect".to_owned())?;
    out.connect = Some(intended.elapsed());
    // Wait for session.created.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"session.created\"") => break,
            Ok(Some(Ok(_))) => continue,
            _ => return Err("no_session_created".into()),
        }
    }
    out.ready = Some(intended.elapsed());

    let silence = vec![0i16; FRAME];
    let barge_frames = Utterance::speech_frames(600);
    for turn in 0..config.turns {
        if turn > 0 && !config.think.is_zero() {
            tokio::time::sleep(config.think).await;
        }
        let start = Instant::now();
        let speech_end = start + TICK * utterance.speech_end_frame as u32;
        let deadline = start + TURN_TIMEOUT;
        let mut k = 0usize;
        let mut first_audio: Option<Instant> = None;
        let mut barge_start: Option<Instant> = None;
        let mut barge_k = 0usize;
        let mut rate = 24_000f64;
        let mut answer_audio = 0f64;
        let mut result = TurnOutcome {
            voice_to_voice: None,
            answer_audio_secs: 0.0,
            barge_in_stop: None,
            status: String::new(),
            finished: start,
        };
        let mut answers_left = if config.barge_in_after.is_some() {
            2
        } else {
            1
        };
        loop {
            let due = start + TICK * k as u32;
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {
                    let now = Instant::now();
                    if now > deadline {
                        return Err("turn_timeout".into());
                    }
                    let frame = match barge_start {
                        Some(b) if now >= b && barge_k < barge_frames.len() => {
                            barge_k += 1;
                            &barge_frames[barge_k - 1]
                        }
                        _ => utterance.frames.get(k).unwrap_or(&silence),
                    };
                    let bytes: Vec<u8> = frame.iter().flat_map(|s| s.to_le_bytes()).collect();
                    ws.send(Message::Binary(bytes.into())).await.map_err(|_| "ws_send".to_owned())?;
                    k += 1;
                }
                msg = ws.next() => {
                    let now = Instant::now();
                    match msg {
                        Some(Ok(Message::Binary(b))) => {
                            answer_audio += b.len() as f64 / 2.0 / rate;
                            if first_audio.is_none() {
                                first_audio = Some(now);
                                result.voice_to_voice = Some(now.saturating_duration_since(speech_end));
                                if let Some(after) = config.barge_in_after {
                                    // Align the interruption to the frame grid.
                                    let at = now + after;
                                    let frames_in = (at.saturating_duration_since(start).as_millis() / 20) as u32 + 1;
                                    barge_start = Some(start + TICK * frames_in);
                                }
                            }
                        }
                        Some(Ok(Message::Text(t))) => {
                            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                            match v["type"].as_str().unwrap_or_default() {
                                "response.output_audio.started" => {
                                    rate = v["sample_rate"].as_f64().unwrap_or(24_000.0);
                                }
                                "response.output_audio.cleared" => {
                                    if let Some(b) = barge_start {
                                        result.barge_in_stop.get_or_insert(now.saturating_duration_since(b));
                                    }
                                }
                                "response.done" => {
                                    if result.status.is_empty() {
                                        result.status = v["response"]["status"].as_str().unwrap_or_default().to_owned();
                                    }
                                    answers_left -= 1;
                                    if answers_left == 0 {
                                        break;
                                    }
                                }
                                "error" => out.error_events.push(v["error"]["code"].as_str().unwrap_or("unknown").to_owned()),
                                _ => {}
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            return Err(format!("closed_{}", frame.map(|f| u16::from(f.code)).unwrap_or(1005)));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return Err("ws_read".into()),
                    }
                }
            }
        }
        result.answer_audio_secs = answer_audio;
        result.finished = Instant::now();
        out.turns.push(result);
    }
    let _ = ws.close(None).await;
    Ok(())
}
