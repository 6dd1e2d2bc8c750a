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
    /// Opus encoder complexity of the WebRTC clients' microphones (0–10; browsers use 9
    /// or 10 on desktops, 5 on phones). Lower costs the generator less CPU.
    pub opus_complexity: i32,
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

/// What the server's `/metrics` said at one moment: the figures a run compares before,
/// during and after (a churn run must end where it began).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerSnapshot {
    /// Live conversations.
    pub live_sessions: Option<f64>,
    /// Actors alive in conversation trees.
    pub live_actors: Option<f64>,
    /// Tokio tasks alive in the server's runtime.
    pub tokio_tasks: Option<f64>,
    /// Open file descriptors of the server process.
    pub open_fds: Option<f64>,
    /// Resident memory, MiB.
    pub rss_mib: Option<f64>,
    /// The server's stage histograms (cumulative since it started), by series name.
    #[serde(skip)]
    pub stages: Vec<(&'static str, StageHistogram)>,
}

/// The server-side stages the report reads from `/metrics`: (series, name in the report).
pub const STAGES: [(&str, &str); 4] = [
    ("adam_stage_stt_seconds", "end of speech → transcript"),
    (
        "adam_stage_answer_first_token_seconds",
        "transcript → first answer token",
    ),
    (
        "adam_stage_tts_first_audio_seconds",
        "first token → first audio",
    ),
    ("adam_voice_to_voice_seconds", "voice-to-voice (server)"),
];

/// One cumulative Prometheus histogram: sum, count and the cumulative bucket counts.
#[derive(Debug, Clone, Default)]
pub struct StageHistogram {
    /// Sum of observations, seconds.
    pub sum: f64,
    /// Observations.
    pub count: f64,
    /// (upper bound in seconds, cumulative count), ascending.
    pub buckets: Vec<(f64, f64)>,
}

impl StageHistogram {
    fn parse(text: &str, name: &str) -> Option<Self> {
        let mut h = Self {
            sum: series(text, &format!("{name}_sum"))?,
            count: series(text, &format!("{name}_count"))?,
            buckets: Vec::new(),
        };
        let prefix = format!("{name}_bucket{{le=\"");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(prefix.as_str()) else {
                continue;
            };
            let Some((le, value)) = rest.split_once("\"} ") else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            h.buckets.push((le, value.trim().parse().ok()?));
        }
        Some(h)
    }
}

impl ServerSnapshot {
    /// Scrapes `url/metrics` once; `None` fields for series the server does not export (or
    /// an unreachable server).
    pub async fn scrape(http: &reqwest::Client, url: &str) -> Self {
        let text = match http.get(format!("{url}/metrics")).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        Self {
            live_sessions: series(&text, "adam_live_sessions"),
            live_actors: series(&text, "adam_live_actors"),
            tokio_tasks: series(&text, "adam_tokio_alive_tasks"),
            open_fds: series(&text, "adam_process_open_fds"),
            rss_mib: series(&text, "adam_process_resident_memory_bytes").map(|b| b / 1_048_576.0),
            stages: STAGES
                .iter()
                .filter_map(|(name, _)| Some((*name, StageHistogram::parse(&text, name)?)))
                .collect(),
        }
    }
}

/// One unlabelled series from Prometheus text, e.g. `adam_process_resident_memory_bytes`.
pub fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Longest the run waits after the last session for the server to report no live session
/// or actor and no more tasks or descriptors than before the run (it stops earlier once
/// those figures have not moved for two seconds).
const SETTLE: Duration = Duration::from_secs(15);

/// Runs the load and returns the report.
///
/// Sessions arrive on the ramp's schedule; at `max_duration` every session still talking
/// ends its connection at the next frame and is reported as cut (its finished turns count),
/// and sessions not yet due are not opened.
pub async fn run(
    config: Config,
    utterance: audio::Utterance,
    progress: bool,
) -> anyhow::Result<report::Report> {
    // One HTTP client for the run: building one per session costs milliseconds of CPU
    // (TLS roots), which at 50 arrivals a second stalls the generator's own timers.
    let http = reqwest::Client::new();
    // Snapshots go through a client that keeps no connection open, so they do not count
    // one of their own among the server's descriptors and tasks.
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    let before = ServerSnapshot::scrape(&probe, &config.url).await;
    let stats = Arc::new(Mutex::new(report::Recorder::new()));
    let utterance = Arc::new(utterance);
    let started = Instant::now();
    let stop_at = started + config.max_duration;
    let gap = Duration::from_secs_f64(1.0 / config.ramp_per_sec.max(0.001));
    let due: Vec<Instant> = (0..config.sessions)
        .map(|i| started + gap.mul_f64(i as f64))
        .take_while(|&at| at < stop_at)
        .collect();
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new(due.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} sessions {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    // A sampler records the server's live sessions and memory once a second.
    let sampler = {
        let stats = stats.clone();
        let url = config.url.clone();
        let http = probe.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = ServerSnapshot::scrape(&http, &url).await;
                stats.lock().await.sample(started.elapsed(), now);
            }
        })
    };
    let mut tasks = Vec::with_capacity(due.len());
    for intended in due {
        let config = config.clone();
        let stats = stats.clone();
        let utterance = utterance.clone();
        let bar = bar.clone();
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(intended.into()).await;
            let outcome = client::run_session(&config, &http, &utterance, intended, stop_at).await;
            let mut s = stats.lock().await;
            s.record(outcome);
            if let Some(bar) = bar {
                bar.inc(1);
                bar.set_message(s.live_summary());
            }
        }));
    }
    // Sessions end themselves at `stop_at`; the grace covers closing handshakes.
    let all = futures_util::future::join_all(tasks);
    if tokio::time::timeout_at((stop_at + Duration::from_secs(30)).into(), all)
        .await
        .is_err()
    {
        stats.lock().await.note_timeout();
    }
    let elapsed = started.elapsed();
    sampler.abort();
    if let Some(bar) = &bar {
        bar.finish();
    }
    // Close the sessions' keep-alive connections, then give the server a moment to tear
    // down what the last sessions left: back to the baseline, or as far as it gets.
    drop(http);
    let settle_until = Instant::now() + SETTLE;
    let mut after = ServerSnapshot::scrape(&probe, &config.url).await;
    let above = |now: Option<f64>, base: Option<f64>| now.unwrap_or(0.0) > base.unwrap_or(0.0);
    let conversing =
        |s: &ServerSnapshot| above(s.live_sessions, None) || above(s.live_actors, None);
    let settling = |s: &ServerSnapshot| {
        conversing(s)
            || above(s.tokio_tasks, before.tokio_tasks)
            || above(s.open_fds, before.open_fds)
    };
    // Settled: back at the baseline, or no conversation left and tasks and descriptors
    // unchanged for two seconds (a pool that grew during the run stays grown).
    let mut steady_since = Instant::now();
    while settling(&after) && Instant::now() < settle_until {
        if !conversing(&after) && steady_since.elapsed() >= Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let next = ServerSnapshot::scrape(&probe, &config.url).await;
        if conversing(&next)
            || (next.tokio_tasks, next.open_fds) != (after.tokio_tasks, after.open_fds)
        {
            steady_since = Instant::now();
        }
        after = next;
    }
    let recorder = std::mem::take(&mut *stats.lock().await);
    Ok(recorder.finish(&config, elapsed, before, after))
}
