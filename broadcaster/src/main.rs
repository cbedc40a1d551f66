//! The `broadcaster` binary: parses the command line, sets up logging and signals, and calls
//! [`broadcaster::run`].

use std::process::ExitCode;

use anyhow::Context;
use broadcaster::config::Cli;
use broadcaster::{RingSink, Shutdown};
use clap::{CommandFactory, Parser};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    if let Err(e) = load_dotenv() {
        eprintln!("broadcaster: {e:#}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: run.sh writes this output to log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `.env` from the working directory, if there is one.
fn load_dotenv() -> anyhow::Result<()> {
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("reading .env"),
    }
}

fn run(config: broadcaster::Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    let signal_handle = signals.handle();
    let on_signal = shutdown.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            info!(signal, "stop signal received");
            on_signal.trigger();
        }
    });
    let mut sink = RingSink::open_or_create(&config.ring_path, config.ring_size)
        .with_context(|| format!("opening the ring {}", config.ring_path.display()))?;
    info!(
        ring = %sink.publisher().path().display(),
        epoch = sink.publisher().epoch(),
        last_block = ?sink.publisher().last_block(),
        "ring open"
    );
    let summary = broadcaster::run(&config, &mut sink, &shutdown).context("broadcaster failed")?;
    signal_handle.close();
    info!(
        reason = ?summary.reason,
        last_block = ?summary.last_block,
        blocks = summary.blocks,
        ops = summary.ops,
        "stopped"
    );
    Ok(())
}
