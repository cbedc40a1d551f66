//! `fake-node`: serves recorded Steem/Hive blocks over JSON-RPC on 127.0.0.1, with optional
//! fault injection, for trying the broadcaster and for benchmarks. See
//! [`test_support::fake_node`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use test_support::fake_node::{Chain, FakeNode, FakeOptions, Fault, HeadSchedule, Rule, Symbols};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChainKind {
    Steem,
    Hive,
}

/// A fake Steem/Hive API node serving recorded blocks, with fault injection.
#[derive(Debug, Parser)]
#[command(name = "fake-node", version)]
struct Args {
    /// Port on 127.0.0.1 (0: pick a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The data directory (canned answers, and the recorded blocks unless --blocks is given)
    #[arg(
        long,
        value_name = "DIR",
        env = "FAKE_NODE_DATA",
        default_value = "data"
    )]
    data: PathBuf,
    /// Serve the blocks of this JSONL file (repeatable) instead of the recorded data set
    #[arg(long, value_name = "FILE")]
    blocks: Vec<PathBuf>,
    /// Asset symbols when converting --blocks from appbase to legacy encoding
    #[arg(long, value_enum, default_value = "hive")]
    symbols: ChainKind,
    /// Fixed head block (default: the last block held)
    #[arg(long, value_name = "N", conflicts_with = "advance_ms")]
    head: Option<u64>,
    /// Advance the head by one block every MS milliseconds, from --from
    #[arg(long, value_name = "MS")]
    advance_ms: Option<u64>,
    /// First head block when advancing (default: the first block held)
    #[arg(long, value_name = "N", requires = "advance_ms")]
    from: Option<u64>,
    /// Last irreversible block = head - N
    #[arg(long, value_name = "N", default_value_t = 0)]
    lib_lag: u64,
    /// Probability of a random transient fault per request (0..1)
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed of the fault generator
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The chain id the node reports: steem, hive or 64 hex digits
    #[arg(long, value_name = "steem|hive|CHAIN_ID", default_value = "hive")]
    chain_id: consumer_sdk::Chain,
    /// Serve the blocks with other ids (linked among themselves): another chain's node
    #[arg(long)]
    foreign_ids: bool,
    /// Wait this long before each answer (a distant node's round trip)
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Answer "Could not find method" to this JSON-RPC method (repeatable), like a node
    /// without that API
    #[arg(long, value_name = "METHOD")]
    without: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fault_rate),
        "--fault-rate must be between 0 and 1"
    );
    let chain = if args.blocks.is_empty() {
        Chain::recorded(&args.data)?
    } else {
        let symbols = match args.symbols {
            ChainKind::Steem => Symbols::Steem,
            ChainKind::Hive => Symbols::Hive,
        };
        let mut chain = Chain::new(&args.data)?;
        for file in &args.blocks {
            chain.insert_jsonl(file, symbols)?;
        }
        chain
    };
    let numbers = chain.numbers();
    let (first, last) = match (numbers.first(), numbers.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => anyhow::bail!("no blocks to serve"),
    };
    let head = match args.advance_ms {
        Some(ms) => {
            HeadSchedule::advancing(args.from.unwrap_or(first), Duration::from_millis(ms.max(1)))
        }
        None => HeadSchedule::Fixed(args.head.unwrap_or(last)),
    };
    let mut options = FakeOptions::fixed(last);
    options.port = args.port;
    options.head = head;
    options.irreversible_lag = args.lib_lag;
    options.fault_rate = args.fault_rate;
    options.seed = args.seed;
    options.chain_id = args.chain_id.id();
    options.foreign_ids = args.foreign_ids;
    options.latency = Duration::from_millis(args.latency_ms);
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    let node = FakeNode::start(Arc::new(chain), options)?;
    for method in args.without {
        node.add_rule(Rule {
            method: Some(method),
            block: None,
            fault: Fault::MethodNotFound,
            times: None,
        });
    }
    let mut out = std::io::stdout();
    writeln!(out, "{}", node.url())?;
    out.flush()?;
    eprintln!(
        "fake-node: {} blocks ({first}..={last}) on {}; stop with Ctrl-C",
        numbers.len(),
        node.url()
    );
    signals.forever().next();
    drop(node);
    Ok(())
}
