//! The `dispatchd` binary: parse the command line, set up logging, run it.
use std::io::IsTerminal;

use clap::Parser;
use dispatchd::config::{Cli, LogFormat};

/// mimalloc: less resident memory than the system allocator for many small, long-lived
/// allocations (idle subscriptions), measured by `cargo bench --bench notifications`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let format = cli.command.log_format();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: in a file or a collector they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match dispatchd::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A fault's cause is what the reader needs (the database that does not exist, the
            // server that does not answer), not "internal error".
            let message = match &e {
                dispatchd::error::Error::Internal(cause) => cause.to_string(),
                e => e.to_string(),
            };
            match format {
                // Every line on stderr is a JSON object, the last one too (shaped as the log's
                // lines, and written whatever RUST_LOG filters out).
                LogFormat::Json => eprintln!(
                    "{}",
                    serde_json::json!({
                        "timestamp": chrono::Utc::now().to_rfc3339(),
                        "level": "ERROR",
                        "fields": {"message": message},
                        "target": "dispatchd",
                    })
                ),
                LogFormat::Text => eprintln!("error: {message}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
