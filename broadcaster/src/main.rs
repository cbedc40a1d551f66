//! The `broadcaster` binary: parses the command line, sets up logging and signals, and calls
//! [`broadcaster::run`].

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use broadcaster::config::{Cli, Source};
use broadcaster::{RingSink, Shutdown};
use clap::{CommandFactory, Parser};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    keep_freed_memory();
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
            error!("{}", causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// Catching up, every response body and parsed block is a large short-lived allocation. With
/// glibc's defaults each of them is a fresh `mmap` (or heap growth) that the kernel must fault
/// in and zero, and is returned to the kernel when freed: half of the broadcaster's CPU time
/// was system time, mostly page faults and page clearing. Serving allocations up to 32 MiB from
/// the heap and keeping up to 64 MiB of freed memory for reuse halves that system time (1,000
/// composed blocks: 0.15-0.25 s of system time before, 0.08-0.12 s after); the heap's peak is
/// unchanged (the in-flight work is bounded by `--fetch-buffer`), it is only not given back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any other thread
    // exists. A parameter it refuses leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Other allocators keep their own policy.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// The error and its causes, joined by ": ", each said once: an error whose message already
/// includes its source's (`"{path}: {source}"`) is not followed by that source again.
fn causes(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Opens or creates the ring; a ring that cannot be created names its directory (the ring is
/// created under a temporary name there first, which would otherwise be the name reported).
fn open_ring(path: &Path, size: u64) -> anyhow::Result<RingSink> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => anyhow::bail!("the ring's directory {} is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("the ring's directory {} does not exist", dir.display())
        }
        Err(e) => {
            return Err(e).with_context(|| format!("the ring's directory {}", dir.display()));
        }
    }
    let existed = path.exists();
    RingSink::open_or_create(path, size).map_err(|e| {
        let denied = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
        if denied && !existed {
            anyhow::anyhow!(
                "cannot create the ring {}: no permission to create files in {}",
                path.display(),
                dir.display()
            )
        } else if e.to_string().contains(&path.display().to_string()) {
            // The SDK's errors name the file already: say it once.
            anyhow::Error::new(e).context("opening the ring")
        } else {
            anyhow::Error::new(e).context(format!("opening the ring {}", path.display()))
        }
    })
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
    // The replay file is checked before the ring exists: a wrong path creates no ring.
    if let Source::Replay { path, .. } = &config.source {
        broadcaster::replay::check(path, config.skip_bad_lines)
            .context("cannot replay the file")?;
    }
    if let Some(addr) = config.metrics {
        let bound = broadcaster::metrics::serve(addr)?;
        info!(address = %bound, "serving metrics at http://{bound}/metrics");
    }
    let mut sink = open_ring(&config.ring_path, config.ring_size)?;
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
