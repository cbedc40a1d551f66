//! Atomics facade: `std` in normal builds, `loom` under `--cfg loom`, so the ring's
//! protocol can be model-checked without changing a line of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Yield the current thread (loom needs to see every spin to explore schedules).
#[cfg(loom)]
pub(crate) fn yield_now() {
    loom::thread::yield_now();
}
/// Yield the current thread.
#[cfg(not(loom))]
pub(crate) fn yield_now() {
    std::thread::yield_now();
}
