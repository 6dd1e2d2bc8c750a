//! `adam-loadtest`: drives N concurrent real sessions against a running Adam and writes
//! `report.json`, `report.md` and `latency.svg`.

use std::path::PathBuf;
use std::time::Duration;

use adam_loadtest::audio::Utterance;
use adam_loadtest::{Auth, Config};
use clap::Parser;

/// Drive concurrent voice sessions against a running Adam over WebSocket or WebRTC.
///
/// Authenticate with --email (password from ADAM_LOADTEST_PASSWORD) or with
/// --embed-key and --origin. Latencies are measured from intended send times.
#[derive(Debug, Parser)]
#[command(name = "adam-loadtest", version, about, long_about)]
struct Args {
    /// Adam's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Sign in as this user (password from ADAM_LOADTEST_PASSWORD).
    #[arg(long)]
    email: Option<String>,
    /// Dealership to talk to (when signed in as super_admin).
    #[arg(long)]
    dealership: Option<String>,
    /// Public embed key (anonymous visitors).
    #[arg(long)]
    embed_key: Option<String>,
    /// Origin header for the embed key.
    #[arg(long)]
    origin: Option<String>,
    /// Transport: PCM16 over a WebSocket, or Opus over WebRTC with the events data channel.
    #[arg(long, value_enum, default_value = "websocket")]
    transport: adam_loadtest::link::Transport,
    /// Sessions to open.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// New sessions per second.
    #[arg(long, default_value_t = 10.0)]
    ramp: f64,
    /// Turns per session.
    #[arg(long, default_value_t = 2)]
    turns: usize,
    /// Pause between turns, ms.
    #[arg(long, default_value_t = 500)]
    think_ms: u64,
    /// Talk over each answer this many ms after its first audio.
    #[arg(long)]
    barge_in_ms: Option<u64>,
    /// WAV file to speak (PCM16; resampled to 16 kHz); otherwise a synthetic tone with
    /// `--vad energy`, and `loadtest/speech.wav` with `--vad silero`.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// The server's voice activity detection (`providers.simulated.vad`): Silero hears no
    /// speech in the synthetic tone, so `silero` speaks the espeak-ng utterance that
    /// `scripts/loadtest-speech.sh` writes to `loadtest/speech.wav`.
    #[arg(long, value_enum, default_value = "energy")]
    vad: Vad,
    /// A microphone's noise floor added to every frame, RMS in PCM16 units (0: digital
    /// silence between words and turns; 30 is about −61 dBFS, a quiet room).
    #[arg(long, default_value_t = 0.0)]
    noise_rms: f32,
    /// Silence after the speech, ms (must exceed the server's end-of-turn silence).
    #[arg(long, default_value_t = 800)]
    trailing_silence_ms: usize,
    /// Provider latency inside voice-to-voice, ms (end-of-turn silence + STT + first token
    /// + first TTS byte; 500 + 150 + 250 + 120 with the default simulated profile).
    #[arg(long, default_value_t = 1020)]
    provider_latency_ms: u64,
    /// Opus complexity of the WebRTC clients' encoders (0–10).
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(i32).range(0..=10))]
    opus_complexity: i32,
    /// Stop after this many seconds: sessions still talking close at their next frame and
    /// are reported as cut (with the turns they finished); sessions not yet due never open.
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
    /// Where the reports go (`report.json`, `report.md`, `latency.svg`).
    #[arg(long, default_value = "loadtest-report")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The server's VAD, which decides what the customer must sound like.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Vad {
    /// An RMS threshold: any loud sound is speech.
    Energy,
    /// The Silero model: only speech is speech.
    Silero,
}

/// The utterance `--vad silero` speaks unless `--audio` names another.
const SPEECH_WAV: &str = "loadtest/speech.wav";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let auth = match (&args.email, &args.embed_key) {
        (Some(email), _) => {
            let password = std::env::var("ADAM_LOADTEST_PASSWORD")
                .map_err(|_| anyhow::anyhow!("set ADAM_LOADTEST_PASSWORD for --email"))?;
            Auth::Bearer {
                token: adam_loadtest::login(&args.url, email, &password).await?,
                dealership_id: args.dealership.clone(),
            }
        }
        (None, Some(key)) => Auth::EmbedKey {
            key: key.clone(),
            origin: args
                .origin
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--embed-key needs --origin"))?,
        },
        (None, None) => anyhow::bail!("give --email or --embed-key"),
    };
    let utterance = match (&args.audio, args.vad) {
        (Some(path), _) => Utterance::from_wav(path, args.trailing_silence_ms)?,
        (None, Vad::Silero) => {
            let path = std::path::Path::new(SPEECH_WAV);
            anyhow::ensure!(
                path.is_file(),
                "{SPEECH_WAV} is missing: run scripts/loadtest-speech.sh (or pass --audio)"
            );
            Utterance::from_wav(path, args.trailing_silence_ms)?
        }
        (None, Vad::Energy) => Utterance::synthetic(1200, args.trailing_silence_ms),
    }
    .with_noise_floor(args.noise_rms);
    let config = Config {
        url: args.url.clone(),
        transport: args.transport,
        auth,
        sessions: args.sessions,
        ramp_per_sec: args.ramp,
        turns: args.turns,
        think: Duration::from_millis(args.think_ms),
        barge_in_after: args.barge_in_ms.map(Duration::from_millis),
        max_duration: Duration::from_secs(args.max_secs),
        provider_latency: Duration::from_millis(args.provider_latency_ms),
        opus_complexity: args.opus_complexity,
    };
    let report = adam_loadtest::run(config, utterance, !args.quiet).await?;
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let md = report.markdown();
    std::fs::write(args.out.join("report.md"), &md)?;
    report.plot_svg(&args.out.join("latency.svg"))?;
    eprintln!("{md}");
    eprintln!("reports in {}", args.out.display());
    if !report.errors.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
