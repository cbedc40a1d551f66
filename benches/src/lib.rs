//! Benchmarks of the operation ring against the transports it replaces.
//!
//! The bench binaries (`benches/fanout.rs`, `benches/decode.rs`, `benches/ring.rs`) are thin;
//! the shared pieces live here so that `cargo clippy --all-targets` and `cargo test --benches`
//! check them once:
//!
//! * [`data`]: the real Steem/Hive bodies and blocks the benches send and parse;
//! * [`clock`]: a system-wide monotonic clock, so a timestamp written by one process can be
//!   compared with the time another process reads it;
//! * [`stats`]: latency histograms, the one-line reports child processes print, and peak
//!   memory from `/proc`;
//! * [`alloc`]: a counting global allocator, for allocations per record;
//! * [`fanout`]: the cross-process fan-out harness (one writer, N reader processes) and every
//!   peer it measures in the same run.
//!
//! Unsafe code is limited to libc calls in [`clock`] and [`stats`] and the forwarding
//! allocator in [`alloc`].

pub mod alloc;
pub mod clock;
pub mod data;
pub mod fanout;
pub mod stats;
