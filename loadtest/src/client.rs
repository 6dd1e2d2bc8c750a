//! One virtual customer: opens a session, speaks its turns at real-time pace (every 20 ms
//! frame has a due time), and times what comes back against those due times.

use std::time::{Duration, Instant};

use crate::audio::Utterance;
use crate::link::{Incoming, Link};
use crate::{Auth, Config};

/// Frame period.
const TICK: Duration = Duration::from_millis(20);
/// Longest a turn may go without hearing from Adam (no event, no audio) before it counts as
/// an error: a long answer that keeps streaming is not a timeout.
const TURN_TIMEOUT: Duration = Duration::from_secs(30);

/// What one session saw.
#[derive(Debug, Default)]
pub struct SessionOutcome {
    /// Intended start → transport open (WebSocket upgraded, or WebRTC answer applied).
    pub connect: Option<Duration>,
    /// Intended start → `session.created`.
    pub ready: Option<Duration>,
    /// Completed turns.
    pub turns: Vec<TurnOutcome>,
    /// Why the session failed, if it did (`http_503`, `ws_connect`, `closed_1008`, …).
    pub error: Option<String>,
    /// `error` events received (code), which do not end the session.
    pub error_events: Vec<String>,
    /// The run's time limit ended the session before its last turn (not an error).
    pub cut: bool,
    /// How late each audio frame left the generator after its due time, µs: when this
    /// grows, the generator (not the server) is the bottleneck.
    pub send_lag: Option<hdrhistogram::Histogram<u64>>,
}

/// What one turn saw.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    /// Intended end of the customer's speech → first answer audio frame.
    pub voice_to_voice: Option<Duration>,
    /// Intended send time of the audio where the server's VAD put the end of speech
    /// (`speech_stopped.audio_end_ms`) → first answer audio frame: voice-to-voice without
    /// the detector's own offset from the utterance's loudness-based end (Silero's decision
    /// differs from it by tens of ms, the energy VAD's does not).
    pub from_vad_end: Option<Duration>,
    /// Seconds of answer audio received.
    pub answer_audio_secs: f64,
    /// Intended start of the barge-in speech → `response.output_audio.cleared`.
    pub barge_in_stop: Option<Duration>,
    /// `response.done` status of the first answer.
    pub status: String,
    /// When the turn ended.
    pub finished: Instant,
}

/// Runs one session to the end; never panics on server misbehaviour.
///
/// At `stop_at` the session closes its connection at the next frame and is marked `cut`.
pub async fn run_session(
    config: &Config,
    http: &reqwest::Client,
    utterance: &Utterance,
    intended: Instant,
    stop_at: Instant,
) -> SessionOutcome {
    let mut outcome = SessionOutcome {
        send_lag: Some(crate::report::histogram()),
        ..SessionOutcome::default()
    };
    if let Err(kind) = drive(config, http, utterance, intended, stop_at, &mut outcome).await {
        outcome.error = Some(kind);
    }
    outcome
}

async fn drive(
    config: &Config,
    http: &reqwest::Client,
    utterance: &Utterance,
    intended: Instant,
    stop_at: Instant,
    out: &mut SessionOutcome,
) -> Result<(), String> {
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
    let mut link = Link::open(config, &ticket, origin.as_deref()).await?;
    out.connect = Some(intended.elapsed());
    // Wait for session.created.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), link.next()).await {
            Ok(Incoming::Event(e)) if e["type"] == "session.created" => break,
            Ok(Incoming::Event(_) | Incoming::Audio(_)) => continue,
            _ => return Err("no_session_created".into()),
        }
    }
    out.ready = Some(intended.elapsed());

    let silence = &utterance.silence;
    let barge_frames = &utterance.barge;
    // Audio sent so far, ms: the server's `audio_end_ms` counts from the first frame.
    let mut audio_sent_ms = 0u64;
    for turn in 0..config.turns {
        if turn > 0 && !config.think.is_zero() {
            tokio::time::sleep_until((Instant::now() + config.think).min(stop_at).into()).await;
        }
        if Instant::now() >= stop_at {
            out.cut = true;
            break;
        }
        let start = Instant::now();
        let speech_end = start + TICK * utterance.speech_end_frame as u32;
        let mut deadline = start + TURN_TIMEOUT;
        let mut k = 0usize;
        let mut first_audio: Option<Instant> = None;
        let mut barge_start: Option<Instant> = None;
        let mut barge_k = 0usize;
        let mut answer_audio = 0f64;
        let mut result = TurnOutcome {
            voice_to_voice: None,
            from_vad_end: None,
            answer_audio_secs: 0.0,
            barge_in_stop: None,
            status: String::new(),
            finished: start,
        };
        let turn_origin_ms = audio_sent_ms;
        let mut vad_end: Option<Instant> = None;
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
                    if now >= stop_at {
                        out.cut = true;
                        link.close().await;
                        return Ok(());
                    }
                    if now > deadline {
                        return Err("turn_timeout".into());
                    }
                    if let Some(lag) = out.send_lag.as_mut() {
                        let _ = lag.record((now.saturating_duration_since(due).as_micros() as u64).max(1));
                    }
                    let frame = match barge_start {
                        Some(b) if now >= b && barge_k < barge_frames.len() => {
                            barge_k += 1;
                            &barge_frames[barge_k - 1]
                        }
                        _ => utterance.frames.get(k).unwrap_or(silence),
                    };
                    link.send_frame(frame).await?;
                    k += 1;
                }
                incoming = link.next() => {
                    let now = Instant::now();
                    deadline = deadline.max(now + TURN_TIMEOUT);
                    match incoming {
                        Incoming::Audio(secs) => {
                            answer_audio += secs;
                            if first_audio.is_none() {
                                first_audio = Some(now);
                                result.voice_to_voice = Some(now.saturating_duration_since(speech_end));
                                result.from_vad_end = vad_end.map(|end| now.saturating_duration_since(end));
                                if let Some(after) = config.barge_in_after {
                                    // Align the interruption to the frame grid.
                                    let at = now + after;
                                    let frames_in = (at.saturating_duration_since(start).as_millis() / 20) as u32 + 1;
                                    barge_start = Some(start + TICK * frames_in);
                                }
                            }
                        }
                        Incoming::Event(v) => match v["type"].as_str().unwrap_or_default() {
                            "input_audio_buffer.speech_stopped" if first_audio.is_none() => {
                                if let Some(end) = v["audio_end_ms"].as_u64().and_then(|ms| ms.checked_sub(turn_origin_ms)) {
                                    vad_end = Some(start + Duration::from_millis(end));
                                }
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
                        },
                        Incoming::Closed(reason) => return Err(reason),
                    }
                }
            }
        }
        audio_sent_ms += k as u64 * TICK.as_millis() as u64;
        result.answer_audio_secs = answer_audio;
        result.finished = Instant::now();
        out.turns.push(result);
    }
    link.close().await;
    Ok(())
}
