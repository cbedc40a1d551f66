//! Helpers shared by the workspace's tests and benchmarks. Not published.
//!
//! - [`compose`]: a deterministic generator of today-sized blocks built from the real op bodies
//!   in the repository's `data/` folder, in both op encodings.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compose;
