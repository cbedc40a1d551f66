//! Integration tests of `consumer-sdk`, through its public API only.
//!
//! * `props`: property tests of the ring against a model of its documented semantics (delivery
//!   in order, exact lag reports, positioning, crash recovery), on real files with small
//!   capacities so that wraps and laps happen all the time.
//! * `crash`: a writer process killed between any two steps of a commit, and readers lapped in
//!   that state or by a writer at full speed: exact loss counts, every committed op read.
//! * `files`: the file layer against its environment: a full file system, a file whose size
//!   changes under the reader, a ring planted by another user, a writer whose pid was reused.
//! * `corrupt`: files that are not rings, and rings full of hostile bytes: every open and every
//!   receive must end in a typed error, never a panic, a hang or an absurd allocation.
//!
//! Every ring lives in its own temporary directory.

mod bot;
mod chain;
mod corrupt;
mod crash;
mod files;
mod fork;
mod gap;
mod processes;
mod props;
#[cfg(feature = "tokio")]
mod stream;
mod typed;
mod wake;

use consumer_sdk::{CreateOptions, Publisher};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// A ring file in a temporary directory that is removed on drop.
pub struct TempRing {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempRing {
    /// Create a ring of `capacity` data bytes and return its first publisher.
    pub fn create(capacity: u64) -> (TempRing, Publisher) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("test.ring");
        let ring = TempRing { dir, path };
        let publisher = Publisher::create(
            ring.name(),
            &CreateOptions {
                capacity,
                mode: 0o600,
            },
        )
        .expect("create the ring");
        (ring, publisher)
    }

    /// The ring's path as the `&str` the SDK's constructors take (it contains a `/`, so it is
    /// used as a path, not as a name under `/dev/shm`).
    pub fn name(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the ring, for sibling files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Delegates to the system allocator and remembers, per thread, the largest single request and
/// the number of requests, so a test can check that hostile bytes never make the SDK allocate
/// in proportion to a length it read from the file, and that reading allocates nothing per op.
struct PeakAlloc;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note_request(size: usize) {
    // `try_with`: the thread-locals hold no destructor, but stay quiet if they are unreachable.
    let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

/// Allocations (and reallocations) requested on this thread so far.
/// `Publisher::open`, waiting up to two seconds while the writer's lock is held. Another test
/// of this binary may be spawning a process at this very moment: the child holds a copy of
/// every open file description of this process, a ring just dropped included, until it execs,
/// and the lock belongs to the description, so a reopen right after a drop can find it held
/// for that moment.
pub fn reopen(ring: &str) -> Result<Publisher, consumer_sdk::Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match Publisher::open(ring) {
            Err(consumer_sdk::Error::WriterActive { .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

pub fn alloc_count() -> u64 {
    COUNT.try_with(Cell::get).unwrap_or(0)
}

/// Forget the largest allocation seen so far on this thread.
pub fn reset_peak_alloc() {
    let _ = PEAK.try_with(|p| p.set(0));
}

/// Largest single allocation requested on this thread since [`reset_peak_alloc`].
pub fn peak_alloc() -> usize {
    PEAK.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so this
// allocator upholds exactly the guarantees `System` does; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_request(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_request(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_request(new_size);
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`; the caller
        // upholds `GlobalAlloc::realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;
