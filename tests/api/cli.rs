//! The `adam` command line, run as a process.

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
