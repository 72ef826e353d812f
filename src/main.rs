//! The `dispatchd` binary: parse the command line and run it.
use clap::Parser;

/// mimalloc: less resident memory than the system allocator for many small, long-lived
/// allocations (idle subscriptions), measured by `cargo bench --bench notifications`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match dispatchd::cli::run(dispatchd::config::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let dispatchd::error::Error::Internal(cause) = &e {
                eprintln!("  cause: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
