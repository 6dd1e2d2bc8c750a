//! Recording and reporting: HDR histograms (microsecond resolution), errors by kind, a
//! timeline of live sessions and server memory, and the JSON / Markdown / SVG outputs.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;

use crate::client::SessionOutcome;
use crate::{Config, STAGES, ServerSnapshot, StageHistogram};

/// An empty histogram of microseconds.
pub(crate) fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min, 3 significant figures; the bounds are constants that are valid.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Collects outcomes during the run.
pub struct Recorder {
    connect: Histogram<u64>,
    ready: Histogram<u64>,
    voice_to_voice: Histogram<u64>,
    from_vad_end: Histogram<u64>,
    barge_in: Histogram<u64>,
    send_lag: Histogram<u64>,
    answer_audio_secs: f64,
    sessions: usize,
    sessions_ok: usize,
    sessions_cut: usize,
    turns: usize,
    errors: BTreeMap<String, usize>,
    error_events: BTreeMap<String, usize>,
    timeline: Vec<Sample>,
    v2v_points: Vec<(f64, f64)>,
    start: std::time::Instant,
    timed_out: bool,
}

/// One timeline point.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the run began.
    pub t_secs: f64,
    /// Live sessions on the server.
    pub live_sessions: Option<f64>,
    /// Server resident memory, MiB.
    pub server_rss_mib: Option<f64>,
    /// Actors alive on the server.
    pub live_actors: Option<f64>,
    /// Tokio tasks alive on the server.
    pub tokio_tasks: Option<f64>,
    /// Open file descriptors of the server.
    pub open_fds: Option<f64>,
}

/// One server-side stage during the run, from the difference of the server's histograms
/// before and after it: the mean, and percentiles as the upper bound of the bucket that
/// holds them (Prometheus buckets, so "≤ 50 ms" rather than an exact figure).
#[derive(Debug, Clone, Serialize)]
pub struct ServerStage {
    /// What the stage is.
    pub stage: String,
    /// Observations during the run.
    pub count: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Bucket bound at or above the median, ms (`None`: above the largest bucket).
    pub p50_le_ms: Option<f64>,
    /// Bucket bound at or above the 99th percentile, ms.
    pub p99_le_ms: Option<f64>,
}

impl ServerStage {
    fn between(stage: &str, before: Option<&StageHistogram>, after: &StageHistogram) -> Self {
        let empty = StageHistogram::default();
        let before = before.unwrap_or(&empty);
        let count = (after.count - before.count).max(0.0);
        let below = |le: f64| {
            let at = |h: &StageHistogram| {
                h.buckets
                    .iter()
                    .find(|(b, _)| *b == le)
                    .map_or(0.0, |(_, n)| *n)
            };
            at(after) - at(before)
        };
        let quantile = |q: f64| {
            after
                .buckets
                .iter()
                .find(|(le, _)| below(*le) >= q * count)
                .map(|(le, _)| *le * 1000.0)
                .filter(|ms| ms.is_finite())
        };
        Self {
            stage: stage.to_owned(),
            count: count as u64,
            mean_ms: if count > 0.0 {
                (after.sum - before.sum) / count * 1000.0
            } else {
                0.0
            },
            p50_le_ms: quantile(0.5),
            p99_le_ms: quantile(0.99),
        }
    }
}

/// Percentiles of one latency, ms.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }

    fn minus(&self, ms: f64) -> Self {
        let d = |v: f64| (v - ms).max(0.0);
        Self {
            count: self.count,
            p50_ms: d(self.p50_ms),
            p90_ms: d(self.p90_ms),
            p95_ms: d(self.p95_ms),
            p99_ms: d(self.p99_ms),
            p999_ms: d(self.p999_ms),
            max_ms: d(self.max_ms),
            mean_ms: d(self.mean_ms),
        }
    }
}

/// The run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What ran.
    pub config: Config,
    /// Wall time of the run, s.
    pub duration_secs: f64,
    /// Sessions attempted.
    pub sessions: usize,
    /// Sessions that completed every turn.
    pub sessions_ok: usize,
    /// Sessions without error still talking when the run's time limit ended them.
    pub sessions_cut: usize,
    /// Turns completed.
    pub turns: usize,
    /// Failed sessions by kind.
    pub errors: BTreeMap<String, usize>,
    /// `error` events by code (the session went on).
    pub error_events: BTreeMap<String, usize>,
    /// Intended start → WebSocket open.
    pub connect: Latency,
    /// Intended start → `session.created`.
    pub ready: Latency,
    /// Intended end of speech → first answer audio.
    pub voice_to_voice: Latency,
    /// Voice-to-voice minus the configured provider latency: what the server adds.
    pub server_added: Latency,
    /// The same, measured from the audio where the server's VAD put the end of speech
    /// (removes the detector's own offset from the utterance's loudness-based end).
    pub server_added_after_vad: Latency,
    /// Barge-in speech start → audio cleared.
    pub barge_in_stop: Latency,
    /// Audio frame due → sent by the generator: large values mean the generator, not the
    /// server, fell behind.
    pub send_lag: Latency,
    /// Mean answer audio per turn, s.
    pub answer_audio_mean_secs: f64,
    /// Server memory before the run, MiB.
    pub server_rss_before_mib: Option<f64>,
    /// Peak server memory during the run, MiB.
    pub server_rss_peak_mib: Option<f64>,
    /// Server memory after the run, MiB.
    pub server_rss_after_mib: Option<f64>,
    /// (peak − before) / sessions, MiB.
    pub server_rss_per_session_mib: Option<f64>,
    /// Peak live sessions seen on the server.
    pub peak_live_sessions: Option<f64>,
    /// The server before the first session.
    pub server_before: ServerSnapshot,
    /// The server after the last session: once it reported no live session or actor and
    /// no more tasks or descriptors than before (or those stopped moving for 2 s), at most
    /// 15 s later.
    pub server_after: ServerSnapshot,
    /// The server's own stage latencies during the run (from `/metrics`).
    pub server_stages: Vec<ServerStage>,
    /// Once-a-second samples.
    pub timeline: Vec<Sample>,
    /// The run hit its maximum duration.
    pub timed_out: bool,
    #[serde(skip)]
    v2v_points: Vec<(f64, f64)>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// Empty.
    pub fn new() -> Self {
        Self {
            connect: histogram(),
            ready: histogram(),
            voice_to_voice: histogram(),
            from_vad_end: histogram(),
            barge_in: histogram(),
            send_lag: histogram(),
            answer_audio_secs: 0.0,
            sessions: 0,
            sessions_ok: 0,
            sessions_cut: 0,
            turns: 0,
            errors: BTreeMap::new(),
            error_events: BTreeMap::new(),
            timeline: Vec::new(),
            v2v_points: Vec::new(),
            start: std::time::Instant::now(),
            timed_out: false,
        }
    }

    fn add(h: &mut Histogram<u64>, d: Duration) {
        let _ = h.record((d.as_micros() as u64).clamp(1, 600_000_000));
    }

    /// Adds one session's outcome.
    pub fn record(&mut self, outcome: SessionOutcome) {
        self.sessions += 1;
        if let Some(d) = outcome.connect {
            Self::add(&mut self.connect, d);
        }
        if let Some(d) = outcome.ready {
            Self::add(&mut self.ready, d);
        }
        for turn in &outcome.turns {
            self.turns += 1;
            self.answer_audio_secs += turn.answer_audio_secs;
            if let Some(d) = turn.voice_to_voice {
                Self::add(&mut self.voice_to_voice, d);
                let t = turn
                    .finished
                    .saturating_duration_since(self.start)
                    .as_secs_f64();
                self.v2v_points.push((t, d.as_secs_f64() * 1000.0));
            }
            if let Some(d) = turn.from_vad_end {
                Self::add(&mut self.from_vad_end, d);
            }
            if let Some(d) = turn.barge_in_stop {
                Self::add(&mut self.barge_in, d);
            }
        }
        for code in outcome.error_events {
            *self.error_events.entry(code).or_default() += 1;
        }
        if let Some(lag) = &outcome.send_lag {
            let _ = self.send_lag.add(lag);
        }
        match outcome.error {
            Some(kind) => *self.errors.entry(kind).or_default() += 1,
            None if outcome.cut => self.sessions_cut += 1,
            None => self.sessions_ok += 1,
        }
    }

    /// Adds a timeline sample.
    pub fn sample(&mut self, t: Duration, server: ServerSnapshot) {
        self.timeline.push(Sample {
            t_secs: t.as_secs_f64(),
            live_sessions: server.live_sessions,
            server_rss_mib: server.rss_mib,
            live_actors: server.live_actors,
            tokio_tasks: server.tokio_tasks,
            open_fds: server.open_fds,
        });
    }

    /// Marks that the run hit its time limit.
    pub fn note_timeout(&mut self) {
        self.timed_out = true;
    }

    /// One line for the progress bar.
    pub fn live_summary(&self) -> String {
        let v = Latency::of(&self.voice_to_voice);
        let errors: usize = self.errors.values().sum();
        format!(
            "v2v p50 {:.0} ms p99 {:.0} ms, errors {errors}",
            v.p50_ms, v.p99_ms
        )
    }

    /// The final report.
    pub fn finish(
        self,
        config: &Config,
        elapsed: Duration,
        server_before: ServerSnapshot,
        server_after: ServerSnapshot,
    ) -> Report {
        let peak = self
            .timeline
            .iter()
            .filter_map(|s| s.server_rss_mib)
            .chain(server_after.rss_mib)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let before = server_before.rss_mib;
        let v2v = Latency::of(&self.voice_to_voice);
        Report {
            config: config.clone(),
            duration_secs: elapsed.as_secs_f64(),
            sessions: self.sessions,
            sessions_ok: self.sessions_ok,
            sessions_cut: self.sessions_cut,
            turns: self.turns,
            errors: self.errors,
            error_events: self.error_events,
            connect: Latency::of(&self.connect),
            ready: Latency::of(&self.ready),
            server_added: v2v.minus(config.provider_latency.as_secs_f64() * 1000.0),
            server_added_after_vad: Latency::of(&self.from_vad_end)
                .minus(config.provider_latency.as_secs_f64() * 1000.0),
            voice_to_voice: v2v,
            barge_in_stop: Latency::of(&self.barge_in),
            send_lag: Latency::of(&self.send_lag),
            answer_audio_mean_secs: if self.turns > 0 {
                self.answer_audio_secs / self.turns as f64
            } else {
                0.0
            },
            server_rss_before_mib: before,
            server_rss_peak_mib: peak,
            server_rss_after_mib: server_after.rss_mib,
            server_rss_per_session_mib: match (before, peak) {
                (Some(b), Some(p)) if self.sessions > 0 => {
                    Some((p - b).max(0.0) / self.sessions as f64)
                }
                _ => None,
            },
            peak_live_sessions: self
                .timeline
                .iter()
                .filter_map(|s| s.live_sessions)
                .reduce(f64::max),
            server_stages: STAGES
                .iter()
                .filter_map(|(series, stage)| {
                    let after = server_after.stages.iter().find(|(s, _)| s == series)?;
                    let before = server_before.stages.iter().find(|(s, _)| s == series);
                    Some(ServerStage::between(stage, before.map(|b| &b.1), &after.1))
                })
                .filter(|s| s.count > 0)
                .collect(),
            server_before,
            server_after,
            timeline: self.timeline,
            timed_out: self.timed_out,
            v2v_points: self.v2v_points,
        }
    }
}

impl Report {
    /// A Markdown summary.
    pub fn markdown(&self) -> String {
        let row = |name: &str, l: &Latency| {
            format!(
                "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            )
        };
        let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.1}"));
        let mut md = format!(
            "# adam-loadtest report\n\n{} sessions ({} completed every turn, {} still talking when the time limit ended them, {} failed), {} turns in {:.1} s; ramp {} sessions/s, {} turns each{}.\n\n",
            self.sessions,
            self.sessions_ok,
            self.sessions_cut,
            self.errors.values().sum::<usize>(),
            self.turns,
            self.duration_secs,
            self.config.ramp_per_sec,
            self.config.turns,
            if self.config.barge_in_after.is_some() {
                ", barge-in on every answer"
            } else {
                ""
            }
        );
        md.push_str("| latency (ms) | count | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|\n");
        md.push_str(&row("connect", &self.connect));
        md.push_str(&row("session ready", &self.ready));
        md.push_str(&row("voice-to-voice", &self.voice_to_voice));
        md.push_str(&row(
            &format!(
                "server-added (v2v − {} ms providers)",
                self.config.provider_latency.as_millis()
            ),
            &self.server_added,
        ));
        md.push_str(&row(
            "server-added from the VAD's end of speech",
            &self.server_added_after_vad,
        ));
        if self.barge_in_stop.count > 0 {
            md.push_str(&row("barge-in stop", &self.barge_in_stop));
        }
        md.push_str(&row(
            "generator send lag (frame due → sent)",
            &self.send_lag,
        ));
        if !self.server_stages.is_empty() {
            let le = |v: Option<f64>| v.map_or("> 5000".to_owned(), |v| format!("≤ {v:.0}"));
            md.push_str("\n| server stage (its `/metrics`) | count | mean (ms) | p50 (ms) | p99 (ms) |\n|---|---|---|---|---|\n");
            for s in &self.server_stages {
                md.push_str(&format!(
                    "| {} | {} | {:.1} | {} | {} |\n",
                    s.stage,
                    s.count,
                    s.mean_ms,
                    le(s.p50_le_ms),
                    le(s.p99_le_ms)
                ));
            }
        }
        md.push_str("\n| server | live sessions | live actors | tokio tasks | open fds | RSS (MiB) |\n|---|---|---|---|---|---|\n");
        for (name, snap) in [
            ("before", &self.server_before),
            ("after", &self.server_after),
        ] {
            md.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} |\n",
                opt(snap.live_sessions),
                opt(snap.live_actors),
                opt(snap.tokio_tasks),
                opt(snap.open_fds),
                opt(snap.rss_mib),
            ));
        }
        md.push_str(&format!(
            "\nServer memory: {} MiB before, {} MiB peak, {} MiB after; {} MiB per session. Peak live sessions: {}.\n",
            opt(self.server_rss_before_mib),
            opt(self.server_rss_peak_mib),
            opt(self.server_rss_after_mib),
            self.server_rss_per_session_mib.map_or("n/a".to_owned(), |v| format!("{v:.3}")),
            opt(self.peak_live_sessions),
        ));
        md.push_str(&format!(
            "Mean answer audio per turn: {:.2} s.\n",
            self.answer_audio_mean_secs
        ));
        if self.errors.is_empty() {
            md.push_str("\nErrors: none.\n");
        } else {
            md.push_str("\nErrors by kind:\n");
            for (k, n) in &self.errors {
                md.push_str(&format!("- {k}: {n}\n"));
            }
        }
        if !self.error_events.is_empty() {
            md.push_str("\n`error` events by code:\n");
            for (k, n) in &self.error_events {
                md.push_str(&format!("- {k}: {n}\n"));
            }
        }
        md
    }

    /// Voice-to-voice percentiles per 5 s window and live sessions over time, as SVG.
    pub fn plot_svg(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(320);
        let end = self.duration_secs.max(1.0);
        // Percentiles per 5 s window.
        let mut windows: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for &(t, ms) in &self.v2v_points {
            windows.entry((t / 5.0) as u64).or_default().push(ms);
        }
        let pct = |v: &mut Vec<f64>, q: f64| {
            v.sort_by(f64::total_cmp);
            v[((v.len() - 1) as f64 * q).round() as usize]
        };
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for (w, mut v) in windows {
            let t = w as f64 * 5.0 + 2.5;
            p50.push((t, pct(&mut v, 0.5)));
            p99.push((t, pct(&mut v, 0.99)));
        }
        let y_max = p99.iter().map(|p| p.1).fold(100.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .caption(
                "voice-to-voice latency (ms), per 5 s window",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..end, 0f64..y_max)?;
        chart.configure_mesh().x_desc("seconds").draw()?;
        chart
            .draw_series(LineSeries::new(p50, &BLUE))?
            .label("p50")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(p99, &RED))?
            .label("p99")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart.configure_series_labels().border_style(BLACK).draw()?;
        let live: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .filter_map(|s| Some((s.t_secs, s.live_sessions?)))
            .collect();
        let live_max = live.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&bottom)
            .caption("live sessions on the server", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..end, 0f64..live_max)?;
        chart.configure_mesh().x_desc("seconds").draw()?;
        chart.draw_series(LineSeries::new(live, &GREEN))?;
        root.present()?;
        Ok(())
    }
}
