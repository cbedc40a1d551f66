//! `ring-to-nats`: publish every op of a ring into a NATS JetStream stream.

mod common;

use anyhow::Context;
use bridge::sender::{SenderConfig, StartAt, run};
use clap::{CommandFactory, Parser, ValueEnum};
use std::process::ExitCode;
use std::time::Duration;

/// Publish every op of a ring into a NATS JetStream stream, exactly once and in order: one
/// message per op (`PREFIX.op.TYPE`), one per block end (`PREFIX.block`), a `PREFIX.gap`
/// message if the ring ever laps this process. Restarts resume after the stream's last message.
#[derive(Debug, Parser)]
#[command(name = "ring-to-nats", version)]
struct Cli {
    /// The ring: a name under /dev/shm, or a path (with a `/`).
    #[arg(long, env = "RING")]
    ring: String,
    /// NATS server URL.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// JetStream stream name (created when missing).
    #[arg(long, default_value = "STEEM")]
    stream: String,
    /// Subject prefix (default: the name of the ring's chain, `steem` or `hive`; `steem` when the ring records none).
    #[arg(long, value_name = "PREFIX")]
    subject: Option<String>,
    /// A new stream drops messages older than this.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "7d")]
    max_age: Duration,
    /// A new stream drops its oldest messages beyond this size (bytes, or with a unit: 512MiB,
    /// 8GiB). The server must have that much room in its JetStream store.
    #[arg(long, env = "NATS_STREAM_MAX_BYTES", default_value = "8GiB", value_parser = parse_size)]
    max_bytes: i64,
    /// A new stream's de-duplication window (by `Nats-Msg-Id`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
    duplicate_window: Duration,
    /// Publishes whose acks may be outstanding at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    max_in_flight: u16,
    /// Longest wait for one ack or JetStream API reply.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    ack_timeout: Duration,
    /// Where to start when the stream is empty.
    #[arg(long, value_enum, default_value_t = From::Earliest)]
    from: From,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum From {
    /// The oldest whole block in the ring.
    Earliest,
    /// Blocks committed from now on.
    Latest,
}

/// A size in bytes, with or without a unit (`1048576`, `512MiB`, `8 GiB`), as JetStream's `i64`.
fn parse_size(text: &str) -> Result<i64, String> {
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|e| format!("not a size ({e}); write bytes or a size like 512MiB or 8GiB"))?;
    i64::try_from(size.as_u64()).map_err(|_| "too large".to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let invalid = |msg: &str| {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, msg)
            .exit()
    };
    if cli.duplicate_window > cli.max_age {
        invalid("--duplicate-window must not be longer than --max-age (JetStream refuses it)");
    }
    if cli.ack_timeout.is_zero() || cli.max_age.is_zero() || cli.max_bytes <= 0 {
        invalid("--ack-timeout, --max-age and --max-bytes must be positive");
    }
    common::init_logging();
    let cfg = SenderConfig {
        ring: cli.ring,
        nats: cli.nats,
        stream: cli.stream,
        prefix: cli.subject,
        max_age: cli.max_age,
        max_bytes: cli.max_bytes,
        duplicate_window: cli.duplicate_window,
        max_in_flight: usize::from(cli.max_in_flight),
        ack_timeout: cli.ack_timeout,
        from: match cli.from {
            From::Earliest => StartAt::Earliest,
            From::Latest => StartAt::Latest,
        },
    };
    common::run("ring-to-nats", |stop| async move {
        run(&cfg, stop).await.with_context(|| {
            format!(
                "ring-to-nats {} -> {} stream {}",
                cfg.ring, cfg.nats, cfg.stream
            )
        })
    })
}
