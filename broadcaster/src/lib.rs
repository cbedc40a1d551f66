//! The broadcaster: follows Steem or Hive through flaky public API nodes (or replays recorded
//! blocks) and publishes every operation, block by block, into a [`Sink`].
//!
//! Data flow: a source (API nodes through a [`failover::Pool`] with its [`node`] clients, or a
//! [`replay`] file) decodes each block ([`block`]) and hands blocks in order to [`run`]'s
//! publisher, which publishes each one whole into the sink ([`sink`]). [`config`] turns the command line into a
//! [`Config`]; [`RingSink`] is the production sink. (The fake node the tests and benchmarks
//! follow lives in the `test-support` crate.)
//!
//! ```no_run
//! use broadcaster::{Config, MemorySink, Shutdown, config::Pace, run};
//!
//! let mut config = Config::for_replay("data/demo-blocks.jsonl", Pace::Max);
//! config.stop_block = Some(1_000_010);
//! let mut sink = MemorySink::new();
//! let summary = run(&config, &mut sink, &Shutdown::new())?;
//! println!("published {} blocks, {} ops", summary.blocks, summary.ops);
//! # Ok::<(), broadcaster::RunError>(())
//! ```
#![forbid(unsafe_code)]

pub mod block;
pub mod config;
pub mod failover;
mod follow;
mod json;
pub mod metrics;
pub mod node;
pub mod replay;
pub mod ring_sink;
mod run;
pub mod sink;

pub use block::{DecodeError, DecodedBlock, DecodedOp, decode_block, decode_ops_in_block};
pub use config::Config;
pub use json::JsonError;
pub use ring_sink::RingSink;
pub use run::{IDLE_PROGRESS_EVERY, RunError, RunSummary, Shutdown, StopReason, run};
pub use sink::{MemorySink, Sink, SinkError};
