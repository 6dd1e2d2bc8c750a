//! The `adam` command line: serve, migrate, create dealerships and users, check the
//! models and the cloud vendors' keys, evaluate answers.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::auth::{Role, password};
use crate::db::dealerships::{self, NewDealership};
use crate::db::users::{self, NewUser};
use crate::db::{Db, Tenant, is_unique_violation};
use crate::settings::{CliOverrides, LogFormat, Settings};
use crate::startup::Application;

/// Adam: realtime voice and avatar session server.
///
/// Settings come from the config file, then ADAM__SECTION__KEY environment variables
/// (e.g. ADAM__DATABASE__URL), then these flags. Secrets (ADAM__AUTH__JWT_SECRET,
/// provider keys) come only from the environment.
#[derive(Debug, Parser)]
#[command(name = "adam", version, about, long_about)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "config.toml",
        env = "ADAM_CONFIG"
    )]
    pub config: PathBuf,
    /// Database URL (sqlite://PATH or postgres://…); overrides the file and environment.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_parser = ["human", "json"])]
    pub log_format: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage dealerships.
    #[command(subcommand)]
    Dealership(DealershipCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect the embedded models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Check the cloud vendors' keys.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Measure retrieval and answers on a question set: hit@1, hit@3, answer
    /// correctness and search latency.
    Eval {
        /// Question file: one JSON object per line, {"question", "expect": [facts]} or
        /// {"question", "unanswerable": true}.
        #[arg(long, default_value = "examples/demo-kb-questions.jsonl")]
        questions: PathBuf,
        /// Ingest this folder into a throwaway database and evaluate on it.
        #[arg(long, conflicts_with = "dealership")]
        documents: Option<PathBuf>,
        /// Evaluate this dealership (id or exact name) of the configured database.
        #[arg(long)]
        dealership: Option<String>,
        /// Evaluate a corpus: every subfolder with `docs/`, `dev.jsonl` and `heldout.jsonl`
        /// (e.g. `eval/`), each split reported per dealership and in total.
        #[arg(long, conflicts_with_all = ["documents", "dealership"])]
        corpus: Option<PathBuf>,
        /// Print every question with its answer, not only the failures (corpus mode).
        #[arg(long)]
        verbose: bool,
        /// Also ask every corpus question spoken: espeak-ng speech transcribed by the
        /// configured speech-to-text, then answered.
        #[arg(long, requires = "corpus")]
        spoken: bool,
        /// Only this split (`dev` or `heldout`): tuning runs ask only `dev` (corpus mode).
        #[arg(long, requires = "corpus")]
        split: Option<String>,
        /// Print the passages retrieved for every question listed (corpus mode).
        #[arg(long, requires = "corpus")]
        explain: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `adam models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Report each configured model file: path, size, sha256 and status. Exits 1 when a
    /// model is missing or does not match its pinned checksum.
    Check,
}

/// `adam providers …`
#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// One short real call per cloud vendor whose key is set (chat completion, embedding,
    /// transcription, speech, a Deepgram live stream, a LiveAvatar token); one line per
    /// vendor: ok, failed with the vendor's error, or not configured. Exits 1 when a call
    /// failed.
    Check,
}

/// `adam dealership …`
#[derive(Debug, Subcommand)]
pub enum DealershipCommand {
    /// Create a dealership and print its id and public embed key.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
    },
}

/// `adam user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (first line) when it is
    /// not a terminal, otherwise prompted for twice; it is never a command-line argument.
    Create {
        /// Email (unique).
        #[arg(long)]
        email: String,
        /// super_admin, dealership_admin or user.
        #[arg(long, value_parser = ["super_admin", "dealership_admin", "user"])]
        role: String,
        /// Dealership id or exact name (required unless super_admin).
        #[arg(long)]
        dealership: Option<String>,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
    },
}

impl Cli {
    /// Settings for this invocation.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let listen = match &self.command {
            Command::Serve { listen } => *listen,
            _ => None,
        };
        let overrides = CliOverrides {
            listen,
            database_url: self.database_url.clone(),
            log_format: self.log_format.as_deref().map(|f| match f {
                "json" => LogFormat::Json,
                _ => LogFormat::Human,
            }),
        };
        Ok(Settings::load(&self.config, &overrides)?)
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { .. } => serve(settings).await,
        Command::Models(ModelsCommand::Check) => models_check(&settings),
        Command::Providers(ProvidersCommand::Check) => providers_check(&settings).await,
        Command::Eval {
            questions,
            documents,
            dealership,
            corpus,
            verbose,
            spoken,
            split,
            explain,
            json,
        } => match corpus {
            Some(corpus) => {
                let listing = Listing {
                    all: verbose,
                    split,
                    explain,
                };
                eval_corpus(settings, &corpus, &listing, spoken, json).await
            }
            None => eval(settings, &questions, documents, dealership, json).await,
        },
        Command::Migrate => {
            let db = Db::connect(&settings.database)
                .await
                .context("connecting to the database")?;
            db.migrate().await.context("running migrations")?;
            db.close().await;
            say("migrations applied");
            Ok(())
        }
        Command::Dealership(DealershipCommand::Create { name }) => {
            let db = open(&settings).await?;
            let name = name.trim().to_owned();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let d = dealerships::insert(
                &db,
                NewDealership {
                    name,
                    allowed_origins: "[]".into(),
                    persona: dealerships::DEFAULT_PERSONA.into(),
                    voice: "default".into(),
                    avatar: "{}".into(),
                    lead_email: None,
                },
                crate::clock::Clock::system().now(),
            )
            .await?;
            let key = dealerships::active_embed_key(&db, Tenant::All, &d.id).await?;
            say(&format!(
                "dealership {} created: id {} embed key {}",
                d.name,
                d.id,
                key.unwrap_or_default()
            ));
            Ok(())
        }
        Command::User(UserCommand::Create {
            email,
            role,
            dealership,
            name,
        }) => create_user(&settings, email, &role, dealership, name).await,
    }
}

async fn open(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database)
        .await
        .context("connecting to the database")?;
    db.migrate().await.context("running migrations")?;
    Ok(db)
}

async fn create_user(
    settings: &Settings,
    email: String,
    role: &str,
    dealership: Option<String>,
    name: String,
) -> anyhow::Result<()> {
    let role = Role::parse(role).context("unknown role")?;
    let email = email.trim().to_lowercase();
    anyhow::ensure!(email.contains('@'), "--email must be an email address");
    let db = open(settings).await?;
    let dealership_id = match (role, dealership) {
        (Role::SuperAdmin, None) => None,
        (Role::SuperAdmin, Some(_)) => {
            anyhow::bail!("a super_admin belongs to no dealership: drop --dealership")
        }
        (_, None) => anyhow::bail!("--dealership is required for role {}", role.as_str()),
        (_, Some(key)) => {
            let found = match dealerships::get(&db, Tenant::All, &key).await? {
                Some(d) => Some(d),
                None => dealerships::find_by_name(&db, &key).await?,
            };
            Some(
                found
                    .with_context(|| format!("no dealership with id or name `{key}`"))?
                    .id,
            )
        }
    };
    let plain = read_password()?;
    password::check_rules(&plain).map_err(|e| anyhow::anyhow!("password {e}"))?;
    let hash = password::hash(plain, &password::HashCounter::none()).await?;
    let new = NewUser {
        email,
        password_hash: hash,
        role: role.as_str().into(),
        dealership_id,
        display_name: name,
    };
    match users::insert(&db, new, crate::clock::Clock::system().now()).await {
        Ok(user) => {
            say(&format!(
                "user {} created: id {} role {}",
                user.email, user.id, user.role
            ));
            Ok(())
        }
        Err(e) if is_unique_violation(&e) => anyhow::bail!("a user with this email already exists"),
        Err(e) => Err(e.into()),
    }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == second, "the passwords do not match");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(!line.is_empty(), "no password on standard input");
        Ok(line)
    }
}

async fn providers_check(settings: &Settings) -> anyhow::Result<()> {
    use crate::providers_check::Outcome;
    let report = crate::providers_check::check_all(&settings.providers).await;
    for line in &report {
        say(&line.to_string());
    }
    let failed: Vec<&str> = report
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
        .map(|c| c.vendor)
        .collect();
    anyhow::ensure!(failed.is_empty(), "failed: {}", failed.join(", "));
    let checked = report
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Ok(_)))
        .count();
    if checked == 0 {
        say("no vendor key is set: nothing was checked");
    } else {
        say(&format!("{checked} vendor(s) checked, all ok"));
    }
    Ok(())
}

fn models_check(settings: &Settings) -> anyhow::Result<()> {
    let models = adam_providers::embedded::check(&settings.providers.embedded);
    for m in &models {
        say(&format!(
            "{:<34} {:<8} {:>12}  {}  {}",
            m.name,
            if m.ok { "ok" } else { "PROBLEM" },
            m.size
                .map(|s| format!("{:.1} MB", s as f64 / 1e6))
                .unwrap_or_default(),
            m.path.display(),
            m.sha256.as_deref().unwrap_or("-"),
        ));
        if !m.ok {
            say(&format!("{:<34} {}", "", m.status));
        }
    }
    if models.iter().all(|m| m.ok) {
        say("all models ready");
        Ok(())
    } else {
        anyhow::bail!(
            "some models are not ready; run `{}`",
            adam_providers::embedded::SETUP_COMMAND
        )
    }
}

/// Which corpus questions `adam eval` lists.
struct Listing {
    /// Every one, not only the failures.
    all: bool,
    /// Only this split's.
    split: Option<String>,
    /// With the passages retrieved.
    explain: bool,
}

async fn eval_corpus(
    settings: Settings,
    corpus: &std::path::Path,
    listing: &Listing,
    spoken: bool,
    json: bool,
) -> anyhow::Result<()> {
    let rows = crate::eval::run_corpus(settings, corpus, listing.split.as_deref(), spoken).await?;
    if json {
        say(&serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for row in &rows {
        for o in &row.report.outcomes {
            if listing.all || !o.correct {
                say(&format!(
                    "{:<5} {:<4} {} {} {:<12} {}\n      → {}",
                    if o.correct { "ok" } else { "WRONG" },
                    o.rank.map_or("-".into(), |r| format!("@{r}")),
                    row.split,
                    row.mode,
                    o.kind.as_deref().unwrap_or("-"),
                    o.question,
                    o.answer
                ));
                if listing.explain {
                    for p in &o.passages {
                        say(&format!("        | {}", p.replace('\n', "\n        | ")));
                    }
                }
            }
        }
    }
    say(&crate::eval::corpus_table(&rows));
    Ok(())
}

async fn eval(
    settings: Settings,
    questions: &std::path::Path,
    documents: Option<PathBuf>,
    dealership: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let set = crate::eval::load_questions(questions)?;
    let folder = documents.unwrap_or_else(|| PathBuf::from("examples/demo-kb"));
    let source = match &dealership {
        Some(d) => crate::eval::Source::Dealership(d),
        None => crate::eval::Source::Folder(&folder),
    };
    let report = crate::eval::run(settings, source, &set).await?;
    if json {
        say(&serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for o in &report.outcomes {
        say(&format!(
            "{:<5} {:<4} {:>7} µs  {}\n                        → {}",
            if o.correct { "ok" } else { "WRONG" },
            o.rank.map_or("-".into(), |r| format!("@{r}")),
            o.search_us,
            o.question,
            o.answer
        ));
    }
    say(&format!(
        "\n{} answerable questions over {} chunks: hit@1 {:.1} %, hit@3 {:.1} %, answers correct {:.1} %\n\
         {} unanswerable questions: {:.1} % answered honestly\n\
         retrieval (search + fusion): p50 {} µs, p99 {} µs",
        report.answerable,
        report.chunks,
        report.hit_at_1 * 100.0,
        report.hit_at_3 * 100.0,
        report.answer_correct * 100.0,
        report.unanswerable,
        report.unanswerable_correct * 100.0,
        report.search_p50_us,
        report.search_p99_us,
    ));
    Ok(())
}

/// Prints a line for the operator (the CLI's output, not a log).
#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public_url = settings.http.public_url.clone();
    let app = Application::build(settings).await?;
    if let Some(first) = app.bootstrapped() {
        match &first.generated_password {
            Some(password) => say(&format!(
                "\nFirst run: created super_admin {} with password {password}\n\
                 (shown once: change it with PATCH /v1/me, or set ADAM__BOOTSTRAP__ADMIN_PASSWORD before the first run)\n",
                first.admin_email
            )),
            None => say(&format!(
                "First run: created super_admin {}",
                first.admin_email
            )),
        }
    }
    let listening = format!("http://{}", app.local_addr());
    // The configured public URL is what people open behind a proxy; with the default
    // left in place, the address actually bound is the one to show.
    let open = if public_url == crate::settings::HttpSettings::default().public_url {
        listening.clone()
    } else {
        public_url
    };
    say(&format!(
        "Adam is listening on {listening} — open {open}/ (API docs at {open}/docs)"
    ));
    if let Some(addr) = app.metrics_addr() {
        say(&format!("Prometheus metrics at http://{addr}/metrics"));
    }
    app.run_until_stopped().await
}
