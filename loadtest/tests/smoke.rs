//! The load tester against a real Adam on a random port (simulated providers).

use std::time::Duration;

use adam::clock::Clock;
use adam::settings::Settings;
use adam::startup::Application;
use adam_loadtest::audio::Utterance;
use adam_loadtest::link::Transport;
use adam_loadtest::{Auth, Config};
use secrecy::SecretString;

const PASSWORD: &str = "loadtest-password";

async fn server(
    answer: &str,
) -> (
    String,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    std::path::PathBuf,
) {
    let dir = std::env::temp_dir().join(format!(
        "adam-loadtest-{}",
        std::process::id() as u128 * 1_000_000 + rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut s = Settings::default();
    s.providers.profile = adam_providers::registry::Profile::Simulated;
    s.http.listen = "127.0.0.1:0".parse().expect("addr");
    s.data_dir = dir.clone();
    s.database.url = format!("sqlite://{}", dir.join("adam.db").display());
    s.auth.jwt_secret = Some(SecretString::from("loadtest-secret-0123456789-0123456789"));
    s.bootstrap.admin_email = "load@adam.test".into();
    s.bootstrap.admin_password = Some(SecretString::from(PASSWORD));
    s.rate_limit.per_user_burst = 100_000;
    s.rate_limit.per_user_per_minute = 100_000;
    s.rate_limit.per_ip_burst = 100_000;
    s.rate_limit.per_ip_per_minute = 100_000;
    s.session.silence_ms = 300;
    s.webrtc.udp_bind_ips = vec!["127.0.0.1".into()];
    let sim = &mut s.providers.simulated;
    sim.answer = answer.into();
    sim.tts_ms_per_char = 8;
    sim.stt_delay_ms = 20;
    sim.answer_first_token_ms = 20;
    sim.answer_tokens_per_sec = 200.0;
    sim.tts_first_byte_ms = 10;
    let app = Application::build_with_clock(s, Clock::system())
        .await
        .expect("app");
    let url = format!("http://{}", app.local_addr());
    (url, tokio::spawn(app.run_until_stopped()), dir)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u128::from(d.subsec_nanos()))
        .unwrap_or(0)
}

async fn config(url: &str, sessions: usize, turns: usize, barge_in: Option<Duration>) -> Config {
    let token = adam_loadtest::login(url, "load@adam.test", PASSWORD)
        .await
        .expect("login");
    let dealerships: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/v1/dealerships"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    Config {
        url: url.to_owned(),
        transport: Transport::Websocket,
        auth: Auth::Bearer {
            token,
            dealership_id: dealerships[0]["id"].as_str().map(str::to_owned),
        },
        sessions,
        ramp_per_sec: 20.0,
        turns,
        think: Duration::from_millis(100),
        barge_in_after: barge_in,
        max_duration: Duration::from_secs(60),
        provider_latency: Duration::from_millis(300 + 20 + 20 + 10),
        opus_complexity: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_sessions_and_reports_latency_memory_and_no_errors() {
    let (url, server, dir) = server("We open at eight on weekdays.").await;
    let cfg = config(&url, 5, 2, None).await;
    let report = adam_loadtest::run(cfg, Utterance::synthetic(800, 600), false)
        .await
        .expect("run");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.sessions_ok, 5);
    assert_eq!(report.turns, 10);
    assert_eq!(report.voice_to_voice.count, 10);
    // End-of-turn silence alone is 300 ms: voice-to-voice cannot be shorter.
    assert!(
        report.voice_to_voice.p50_ms >= 300.0,
        "{}",
        report.voice_to_voice.p50_ms
    );
    assert!(report.answer_audio_mean_secs > 0.1);
    assert!(report.server_rss_peak_mib.is_some_and(|m| m > 1.0));
    // The server's own view of the same turns, from its /metrics.
    let server_v2v = report
        .server_stages
        .iter()
        .find(|s| s.stage.starts_with("voice-to-voice"))
        .expect("server voice-to-voice");
    assert_eq!(server_v2v.count, 10, "{:?}", report.server_stages);
    assert!(server_v2v.mean_ms >= 300.0, "{server_v2v:?}");
    assert!(
        server_v2v
            .p99_le_ms
            .is_some_and(|ms| ms >= server_v2v.mean_ms)
    );
    assert!(
        report
            .markdown()
            .contains("| voice-to-voice (server) | 10 |")
    );
    let md = report.markdown();
    assert!(md.contains("voice-to-voice") && md.contains("Errors: none."));
    let svg = dir.join("latency.svg");
    report.plot_svg(&svg).expect("plot");
    let text = std::fs::read_to_string(&svg).expect("svg");
    assert!(text.starts_with("<svg") && text.contains("live sessions"));
    server.abort();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_barge_in_stop_latency() {
    let long = "We are open from eight in the morning until six in the evening on weekdays, \
                and from nine until one on Saturdays. Sundays we are closed.";
    let (url, server, dir) = server(long).await;
    let mut cfg = config(&url, 2, 1, Some(Duration::from_millis(100))).await;
    cfg.ramp_per_sec = 10.0;
    let report = adam_loadtest::run(cfg, Utterance::synthetic(800, 600), false)
        .await
        .expect("run");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.barge_in_stop.count, 2, "{report:?}");
    // Cleared follows the speech that triggered it: at least the 200 ms minimum speech.
    assert!(
        report.barge_in_stop.p50_ms >= 200.0,
        "{}",
        report.barge_in_stop.p50_ms
    );
    server.abort();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_webrtc_sessions_with_opus_and_the_events_channel() {
    let (url, server, dir) = server("We open at eight on weekdays.").await;
    let mut cfg = config(&url, 4, 2, None).await;
    cfg.transport = Transport::Webrtc;
    let report = adam_loadtest::run(cfg, Utterance::synthetic(800, 600), false)
        .await
        .expect("run");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.sessions_ok, 4);
    assert_eq!(report.turns, 8);
    assert_eq!(report.voice_to_voice.count, 8);
    assert!(
        report.voice_to_voice.p50_ms >= 300.0,
        "{}",
        report.voice_to_voice.p50_ms
    );
    // Answer audio counted from the RTP packets (20 ms each).
    assert!(report.answer_audio_mean_secs > 0.1, "{report:?}");
    server.abort();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_ends_sessions_mid_run_and_the_report_keeps_their_turns() {
    let (url, server, dir) = server("We open at eight on weekdays.").await;
    let mut cfg = config(&url, 3, 50, None).await;
    cfg.max_duration = Duration::from_secs(4);
    let report = adam_loadtest::run(cfg, Utterance::synthetic(800, 600), false)
        .await
        .expect("run");
    // 50 turns cannot fit in 4 s: every session is cut, none failed.
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.sessions, 3);
    assert_eq!(report.sessions_cut, 3, "{report:?}");
    assert_eq!(report.sessions_ok, 0);
    assert!(!report.timed_out, "sessions ended themselves at the limit");
    // The turns they finished before the limit are in the figures.
    assert!(report.turns >= 3, "{}", report.turns);
    assert_eq!(report.voice_to_voice.count as usize, report.turns);
    assert!(report.duration_secs < 10.0, "{}", report.duration_secs);
    assert!(report.send_lag.count > 100, "{:?}", report.send_lag);
    // The server let go of every conversation afterwards.
    assert_eq!(report.server_after.live_sessions, Some(0.0));
    assert_eq!(report.server_after.live_actors, Some(0.0));
    assert!(
        report
            .markdown()
            .contains("3 still talking when the time limit ended them")
    );
    server.abort();
    let _ = std::fs::remove_dir_all(dir);
}
