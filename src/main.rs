//! The `dispatchd` binary: parse the command line, set up logging, run it.
use std::io::IsTerminal;

use clap::Parser;
use dispatchd::config::{Cli, Command, LogFormat};

/// mimalloc: less resident memory than the system allocator for many small, long-lived
/// allocations (idle subscriptions), measured by `cargo bench --bench notifications`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let format = cli.command.log_format();
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into())
    };
    // Only `serve` traces, and only when an endpoint is set.
    let endpoint = match &cli.command {
        Command::Serve(args) => dispatchd::telemetry::endpoint(args.trace.otlp_endpoint.as_deref()),
        _ => None,
    };
    let telemetry = match endpoint {
        // Off: the logs alone, set up as they always were.
        None => {
            let logs = tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                // Colours only for a person at a terminal: in a file or a collector they are noise.
                .with_ansi(std::io::stderr().is_terminal());
            match format {
                LogFormat::Text => logs.init(),
                LogFormat::Json => logs.json().init(),
            }
            None
        }
        // On: the logs keep `RUST_LOG` as their own filter; the OpenTelemetry layer has its own,
        // so that operation, service and SQL spans reach it whatever the logs show.
        Some(endpoint) => {
            use tracing_subscriber::prelude::*;
            let (telemetry, otel) = match dispatchd::telemetry::Telemetry::install(endpoint) {
                Ok(installed) => installed,
                Err(e) => {
                    eprintln!("error: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let logs = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal());
            let registry = tracing_subscriber::registry().with(otel);
            match format {
                LogFormat::Text => registry.with(logs.with_filter(filter())).init(),
                LogFormat::Json => {
                    let json = tracing_subscriber::fmt::format().json();
                    let logs = logs
                        .json()
                        .event_format(dispatchd::telemetry::WithTraceIds(json))
                        .with_filter(filter());
                    registry.with(logs).init()
                }
            }
            Some(telemetry)
        }
    };
    let result = dispatchd::cli::run(cli).await;
    if let Some(telemetry) = telemetry {
        // The spans still queued are sent before the process exits.
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    }
    match result {
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
