//! `nats-to-ring`: rebuild a local ring from the stream `ring-to-nats` writes.

mod common;

use anyhow::Context;
use bridge::receiver::{ReceiverConfig, run};
use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use std::time::Duration;

/// Read a NATS JetStream stream written by `ring-to-nats` and write whole blocks into a local
/// ring, resuming after the ring's last committed block; bots on this host read that ring as
/// usual. Blocks the source lost reach the ring's readers as a gap notice.
#[derive(Debug, Parser)]
#[command(name = "nats-to-ring", version)]
struct Cli {
    /// NATS server URL.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// JetStream stream name.
    #[arg(long, default_value = "STEEM")]
    stream: String,
    /// The local ring: a name under /dev/shm, or a path (with a `/`); created when missing.
    #[arg(long, env = "RING")]
    ring: String,
    /// Data capacity of a new ring in MiB (a power of two, at least 1).
    #[arg(long, default_value_t = 64, value_parser = parse_mib)]
    ring_mib: u64,
    /// Longest silence from the server before reconnecting.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    heartbeat: Duration,
}

fn parse_mib(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of MiB"))?;
    if n == 0 || !n.is_power_of_two() || n > 1 << 20 {
        return Err(format!("{n} MiB: use a power of two from 1 to 1048576"));
    }
    Ok(n << 20)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.heartbeat < std::time::Duration::from_millis(100) {
        Cli::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                "--heartbeat must be at least 100ms",
            )
            .exit();
    }
    common::init_logging();
    let cfg = ReceiverConfig {
        nats: cli.nats,
        stream: cli.stream,
        ring: cli.ring,
        ring_size: cli.ring_mib,
        heartbeat: cli.heartbeat,
    };
    common::run("nats-to-ring", |stop| async move {
        run(&cfg, stop).await.with_context(|| {
            format!(
                "nats-to-ring {} stream {} -> {}",
                cfg.nats, cfg.stream, cfg.ring
            )
        })
    })
}
