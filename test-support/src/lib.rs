//! Helpers shared by the workspace's tests and benchmarks. Not published.
//!
//! - [`compose`]: a deterministic generator of today-sized blocks built from the real op bodies
//!   in the repository's `data/` folder, in both op encodings.
//! - [`fake_node`]: a fake Steem/Hive API node on 127.0.0.1 with scriptable faults, for the
//!   broadcaster's tests and the end-to-end benchmarks (also as the `fake-node` binary).
//! - [`panics`]: catching a panic without printing its report, for property tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compose;
pub mod fake_node;
pub mod panics;
