//! The `adam` command line, run as a process; `adam providers check` against the cloud
//! fakes, and against the real vendors when their keys are in the environment.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::spawn_app_with;

fn adam(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adam"))
        .current_dir(dir)
        .args(["--config", "none.toml"])
        .args(args)
        .env_remove("ADAM__DATABASE__URL")
        // Without config.toml the default is the embedded models; these runs use the simulated.
        .env("ADAM__PROVIDERS__PROFILE", "simulated")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("adam runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("exit");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn help_reads_well() {
    let dir = std::env::temp_dir();
    let (ok, out, _) = adam(&dir, &["--help"], None);
    assert!(ok);
    for word in ["serve", "migrate", "dealership", "user", "ADAM__"] {
        assert!(out.contains(word), "--help mentions {word}: {out}");
    }
    let (ok, out, _) = adam(&dir, &["user", "create", "--help"], None);
    assert!(ok);
    assert!(out.contains("--email") && out.contains("--role") && !out.contains("--password"));
}

#[tokio::test]
async fn cli_creates_a_dealership_and_a_user_who_can_log_in() {
    let dir = std::env::temp_dir().join(format!("adam-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite://{}", dir.join("cli.db").display());

    let (ok, out, err) = adam(&dir, &["--database-url", &db, "migrate"], None);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));

    let (ok, out, err) = adam(
        &dir,
        &[
            "--database-url",
            &db,
            "dealership",
            "create",
            "--name",
            "Echo Autos",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("Echo Autos") && out.contains("pk_"), "{out}");

    let args = [
        "--database-url",
        &db,
        "user",
        "create",
        "--email",
        "Cli@Echo.test",
        "--role",
        "dealership_admin",
        "--dealership",
        "Echo Autos",
    ];
    let (ok, out, err) = adam(&dir, &args, Some("cli-password-1\n"));
    assert!(ok, "{err}");
    assert!(out.contains("cli@echo.test"), "{out}");
    assert!(!out.contains("cli-password-1") && !err.contains("cli-password-1"));

    let (ok, _, err) = adam(&dir, &args, Some("cli-password-1\n"));
    assert!(!ok, "duplicate refused");
    assert!(err.contains("already exists"), "{err}");

    let (ok, _, err) = adam(
        &dir,
        &[
            "--database-url",
            &db,
            "user",
            "create",
            "--email",
            "x@y.test",
            "--role",
            "user",
        ],
        Some("pw-long-enough\n"),
    );
    assert!(!ok);
    assert!(err.contains("--dealership"), "{err}");

    let (ok, _, err) = adam(&dir, &["--database-url", "mysql://nope", "migrate"], None);
    assert!(!ok);
    assert!(err.contains("database.url"), "names the key: {err}");

    // The created user logs in through a server on the same database.
    let url = db.clone();
    let app = spawn_app_with(move |s| {
        s.database.url = url;
    })
    .await;
    let tokens = app.login("cli@echo.test", "cli-password-1").await;
    let me = crate::helpers::json_body(app.get("/v1/me", Some(&tokens.access)).await).await;
    assert_eq!(me["role"], "dealership_admin");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn eval_reports_retrieval_hits_and_answers_on_a_question_set() {
    let dir = std::env::temp_dir().join(format!("adam-eval-{}", uuid::Uuid::new_v4()));
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).expect("dir");
    std::fs::write(
        docs.join("service.md"),
        "# Service\n\nThe Zephyr valet service costs 75 dollars per visit.\n",
    )
    .expect("doc");
    std::fs::write(
        docs.join("hours.txt"),
        "The Vega showroom opens at 9 am every weekday.\n",
    )
    .expect("doc");
    std::fs::write(
        dir.join("questions.jsonl"),
        concat!(
            r#"{"question": "How much does the Zephyr valet service cost?", "expect": ["75 dollars"]}"#,
            "\n",
            r#"{"question": "When does the Vega showroom open?", "expect": ["9 am"], "document": "hours.txt"}"#,
            "\n",
        ),
    )
    .expect("questions");
    let (ok, out, err) = adam(
        &dir,
        &[
            "eval",
            "--documents",
            "docs",
            "--questions",
            "questions.jsonl",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["answerable"], 2);
    assert_eq!(report["hit_at_1"], 1.0, "{report}");
    assert_eq!(report["answer_correct"], 1.0, "{report}");
    assert!(report["chunks"].as_u64().expect("chunks") >= 2);
    // A malformed question file is a clear error naming the line.
    std::fs::write(dir.join("bad.jsonl"), "{\"question\": 1}\n").expect("bad");
    let (ok, _, err) = adam(
        &dir,
        &["eval", "--documents", "docs", "--questions", "bad.jsonl"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("bad.jsonl:1"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn serve_without_a_config_file_runs_the_embedded_models() {
    use std::io::{BufRead, BufReader};

    let dir = std::env::temp_dir().join(format!("adam-noconfig-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = std::fs::File::create(dir.join("stderr.log")).expect("log file");
    // From the repository, where `models/` is, with a config file that does not exist: only
    // the compiled-in defaults (and the environment, which names no profile) apply.
    let mut child = Command::new(env!("CARGO_BIN_EXE_adam"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--config", "no-such-config.toml", "serve"])
        .env_remove("ADAM__PROVIDERS__PROFILE")
        .env_remove("RUST_LOG")
        .env("ADAM__DATA_DIR", &dir)
        .env(
            "ADAM__DATABASE__URL",
            format!("sqlite://{}", dir.join("adam.db").display()),
        )
        .env("ADAM__HTTP__LISTEN", "127.0.0.1:0")
        .env("ADAM__BOOTSTRAP__ADMIN_PASSWORD", "no-config-password")
        .env("ADAM__LOG__FILTER", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("adam starts");
    let stdout = child.stdout.take().expect("stdout");
    let listening = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("listening on"))
    });
    let listening = tokio::time::timeout(std::time::Duration::from_secs(180), listening).await;
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(listening, Ok(Ok(true))),
        "adam serve did not start: {log}"
    );
    assert!(
        log.contains("embedded models loaded"),
        "the embedded models were not loaded: {log}"
    );
}

/// The vendors' key variables.
const VENDOR_KEYS: [&str; 5] = [
    "ADAM__PROVIDERS__OPENROUTER__API_KEY",
    "ADAM__PROVIDERS__OPENAI__API_KEY",
    "ADAM__PROVIDERS__DEEPGRAM__API_KEY",
    "ADAM__PROVIDERS__ELEVENLABS__API_KEY",
    "ADAM__PROVIDERS__HEYGEN__API_KEY",
];

/// `adam providers check` with only these vendor variables; (success, stdout, stderr).
async fn providers_check(env: Vec<(&'static str, String)>) -> (bool, String, String) {
    run_providers_check(env, false).await
}

/// `adam providers check`, keeping this environment's vendor keys when `real`.
async fn run_providers_check(
    env: Vec<(&'static str, String)>,
    real: bool,
) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_adam"));
        if !real {
            for key in VENDOR_KEYS {
                command.env_remove(key);
            }
        }
        let out = command
            .current_dir(std::env::temp_dir())
            .args(["--config", "none.toml", "providers", "check"])
            .env("ADAM__PROVIDERS__PROFILE", "simulated")
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .expect("adam runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("joined")
}

/// The report's line for `vendor`.
fn line<'a>(out: &'a str, vendor: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(vendor))
        .unwrap_or_else(|| panic!("no line for {vendor}: {out}"))
}

#[tokio::test]
async fn providers_check_calls_each_configured_vendor_once_and_skips_the_others() {
    use crate::cloud::fakes::{deepgram, elevenlabs, heygen, openai};
    let openai = openai::FakeOpenAi::start().await;
    let deepgram = deepgram::FakeDeepgram::start().await;
    let eleven = elevenlabs::FakeElevenLabs::start().await;
    let heygen = heygen::FakeHeyGen::start().await;
    let env = vec![
        ("ADAM__PROVIDERS__OPENAI__API_KEY", "sk-test".to_owned()),
        ("ADAM__PROVIDERS__OPENAI__CHAT__BASE_URL", openai.base_url()),
        (
            "ADAM__PROVIDERS__OPENAI__EMBEDDINGS__BASE_URL",
            openai.base_url(),
        ),
        (
            "ADAM__PROVIDERS__OPENAI__EMBEDDINGS__DIMENSION",
            "8".to_owned(),
        ),
        (
            "ADAM__PROVIDERS__OPENAI__TRANSCRIPTION__BASE_URL",
            openai.base_url(),
        ),
        (
            "ADAM__PROVIDERS__OPENAI__SPEECH__BASE_URL",
            openai.base_url(),
        ),
        (
            "ADAM__PROVIDERS__DEEPGRAM__API_KEY",
            deepgram::KEY.to_owned(),
        ),
        ("ADAM__PROVIDERS__DEEPGRAM__URL", deepgram.url()),
        (
            "ADAM__PROVIDERS__ELEVENLABS__API_KEY",
            elevenlabs::KEY.to_owned(),
        ),
        ("ADAM__PROVIDERS__ELEVENLABS__BASE_URL", eleven.base_url()),
        ("ADAM__PROVIDERS__HEYGEN__API_KEY", heygen::KEY.to_owned()),
        ("ADAM__PROVIDERS__HEYGEN__BASE_URL", heygen.base_url()),
    ];
    let (ok, out, err) = providers_check(env).await;
    assert!(ok, "{out}{err}");
    report_skipped(&out);
    // OpenRouter has no key: reported, not called (a real-vendor run skips it the same way).
    assert!(
        line(&out, "openrouter").contains("not configured")
            && line(&out, "openrouter").contains("ADAM__PROVIDERS__OPENROUTER__API_KEY"),
        "{out}"
    );
    for vendor in ["openai", "deepgram", "elevenlabs", "heygen"] {
        let l = line(&out, vendor);
        assert!(l.split_whitespace().nth(1) == Some("ok"), "{l}");
    }
    assert!(
        line(&out, "openai").contains("When do you open on Saturday?"),
        "{out}"
    );
    assert!(line(&out, "deepgram").contains("Finalize"), "{out}");
    assert!(
        !out.contains("sk-test") && !err.contains("sk-test"),
        "no key in the output"
    );

    // One short call per check: a chat, an embedding, a transcription and a sentence.
    let paths: Vec<String> = openai.requests().iter().map(|r| r.path.clone()).collect();
    for path in [
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/audio/transcriptions",
        "/v1/audio/speech",
    ] {
        assert_eq!(paths.iter().filter(|p| *p == path).count(), 1, "{paths:?}");
    }
    let conn = &deepgram.conns()[0];
    assert!(
        conn.audio_bytes > 32_000,
        "the bundled recording was streamed"
    );
    assert_eq!(conn.controls, ["Finalize", "CloseStream"]);
    assert_eq!(eleven.conns().len(), 1);
    assert_eq!(heygen.token_calls(), 1);
    assert_eq!(
        heygen.start_calls(),
        0,
        "a token only: no session is started"
    );
}

#[tokio::test]
async fn providers_check_fails_with_the_vendors_error() {
    use crate::cloud::fakes::deepgram;
    let deepgram = deepgram::FakeDeepgram::start().await;
    let env = vec![
        (
            "ADAM__PROVIDERS__DEEPGRAM__API_KEY",
            "a-revoked-key".to_owned(),
        ),
        ("ADAM__PROVIDERS__DEEPGRAM__URL", deepgram.url()),
    ];
    let (ok, out, err) = providers_check(env).await;
    assert!(!ok, "a failed vendor fails the command: {out}");
    let l = line(&out, "deepgram");
    assert!(l.contains("failed") && l.contains("401"), "{l}");
    assert!(err.contains("deepgram"), "{err}");
    for vendor in ["openrouter", "openai", "elevenlabs", "heygen"] {
        assert!(line(&out, vendor).contains("not configured"), "{out}");
    }
}

/// Says which vendors a run skipped (no key): they were not checked.
fn report_skipped(out: &str) {
    for l in out.lines().filter(|l| l.contains("not configured")) {
        let vendor = l.split_whitespace().next().unwrap_or_default();
        eprintln!("{vendor}: skipped (no key in the environment)");
    }
}

/// The real vendors, for an operator or a CI job holding keys: every vendor whose key is
/// in this environment is called once and must answer; the others are reported as
/// skipped. Without any key the whole test is skipped (and says so).
#[tokio::test]
async fn providers_check_against_the_real_vendors_whose_keys_are_set() {
    let present: Vec<&str> = VENDOR_KEYS
        .iter()
        .copied()
        .filter(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
        .collect();
    if present.is_empty() {
        eprintln!("skipped: no ADAM__PROVIDERS__*__API_KEY in the environment");
        return;
    }
    let (ok, out, err) = run_providers_check(Vec::new(), true).await;
    eprintln!("{out}");
    report_skipped(&out);
    assert!(ok, "a configured vendor failed:\n{out}{err}");
}
