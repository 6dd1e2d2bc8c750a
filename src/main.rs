//! The `adam` binary: parse the CLI, load settings, set up telemetry, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = adam::cli::Cli::parse();
    let settings = cli.settings()?;
    adam::telemetry::init(&settings);
    adam::cli::run(cli, settings).await
}
