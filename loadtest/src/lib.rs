//! `adam-loadtest`: opens N real conversations with a running Adam over the wire
//! (WebSocket or WebRTC), streams speech at real-time pace, and measures what a customer
//! would feel.
//!
//! Latencies are measured from the **intended** send times (an open model: sessions
//! arrive on a schedule and every audio frame has a due time), so a stalled client or
//! server cannot hide its own delay (no coordinated omission).
//!
//! Modules: [`audio`] (the utterance), [`client`] (one virtual customer), [`link`] (the
//! two transports), [`report`]
//! (HDR histograms, JSON, Markdown and the SVG plot).

pub mod audio;
pub mod client;
pub mod link;
pub mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::Mutex;

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Base URL of Adam, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// WebSocket or WebRTC.
    pub transport: link::Transport,
    /// How sessions authenticate.
    #[serde(skip)]
    pub auth: Auth,
    /// Concurrent sessions to open in total.
    pub sessions: usize,
    /// New sessions per second (open model).
    pub ramp_per_sec: f64,
    /// Turns per session.
    pub turns: usize,
    /// Pause between a turn's answer and the next question.
    pub think: Duration,
    /// Talk over every answer this long after its first audio (barge-in), if set.
    pub barge_in_after: Option<Duration>,
    /// Longest the whole run may take.
    pub max_duration: Duration,
    /// Provider latency included in voice-to-voice (end-of-turn silence + STT + first token
    /// + first TTS byte), subtracted to report what the server itself adds.
    pub provider_latency: Duration,
}

/// Credentials.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// A user's access token, for the dealership given (super_admin) or the user's own.
    Bearer {
        /// Access token.
        token: String,
        /// Dealership (super_admin only).
        dealership_id: Option<String>,
    },
    /// An anonymous visitor with a public embed key from an allowed origin.
    EmbedKey {
        /// `pk_…`
        key: String,
        /// Origin header to send.
        origin: String,
    },
    /// Not set.
    #[default]
    None,
}

/// Logs in and returns an access token.
pub async fn login(url: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .context("login request")?;
    anyhow::ensure!(
        resp.status().is_success(),
        "login failed: {}",
        resp.status()
    );
    let body: serde_json::Value = resp.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access_token in the login answer")
}

/// Reads one series from Prometheus text, e.g. `adam_process_resident_memory_bytes`.
pub async fn scrape(url: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Runs the load and returns the report.
pub async fn run(
    config: Config,
    utterance: audio::Utterance,
    progress: bool,
) -> anyhow::Result<report::Report> {
    let rss_before = scrape(&config.url, "adam_process_resident_memory_bytes").await;
    let stats = Arc::new(Mutex::new(report::Recorder::new()));
    let utterance = Arc::new(utterance);
    let started = Instant::now();
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new(config.sessions as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} sessions {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let gap = Duration::from_secs_f64(1.0 / config.ramp_per_sec.max(0.001));
    let mut tasks = Vec::with_capacity(config.sessions);
    // A sampler records live sessions and server memory once a second.
    let sampler = {
        let stats = stats.clone();
        let url = config.url.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let rss = scrape(&url, "adam_process_resident_memory_bytes").await;
                let live = scrape(&url, "adam_live_sessions").await;
                stats.lock().await.sample(started.elapsed(), live, rss);
            }
        })
    };
    for i in 0..config.sessions {
        let intended = started + gap.mul_f64(i as f64);
        let config = config.clone();
        let stats = stats.clone();
        let utterance = utterance.clone();
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(intended.into()).await;
            let outcome = client::run_session(&config, &utterance, intended).await;
            let mut s = stats.lock().await;
            s.record(outcome);
            if let Some(bar) = bar {
                bar.inc(1);
                bar.set_message(s.live_summary());
            }
        }));
    }
    let all = futures_util::future::join_all(tasks);
    if tokio::time::timeout(config.max_duration, all)
        .await
        .is_err()
    {
        stats.lock().await.note_timeout();
    }
    sampler.abort();
    if let Some(bar) = &bar {
        bar.finish();
    }
    let rss_after = scrape(&config.url, "adam_process_resident_memory_bytes").await;
    let recorder = std::mem::take(&mut *stats.lock().await);
    Ok(recorder.finish(&config, started.elapsed(), rss_before, rss_after))
}
