//! Read the stream of Steem/Hive operations that the broadcaster publishes into a shared-memory
//! ring, and (with the `writer` feature) publish into one.
//!
//! # Semantics
//!
//! One broadcaster process writes; any number of bot processes read, each with its own cursor.
//! The writer never waits for a reader: a reader that falls more than a ring's worth behind is
//! *lapped*. It then gets [`RecvError::Lagged`] with the exact number of records it lost (all
//! topics, and those of its own topics), and continues with the oldest whole block still in the
//! ring. Readers see whole blocks or nothing: every record of a block becomes visible at once,
//! followed by an [`Event::BlockEnd`]. Blocks are published in strictly increasing order, each
//! once; when the broadcaster dies mid-block, the partial block is never seen, and the next
//! broadcaster resumes after the last committed block. Readers keep going across such restarts
//! (same file, new [epoch](Subscriber::epoch)) and across a replaced ring file (they continue
//! after the last block they finished, or report [`RecvError::Gap`]).
//!
//! Readers map the file read-only, copy each record out and validate the copy before handing it
//! over: no reference into live ring memory ever leaves this crate, and any bytes in the file
//! give an error, never a panic, an out-of-bounds read or an unbounded allocation.
//!
//! ```no_run
//! use consumer_sdk::{CursorFile, RecvError, Start, Subscriber, ops::Comment};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cursor = CursorFile::new("new-posts.cursor");
//! let start = cursor.load()?.map_or(Start::Latest, Start::After);
//! let mut sub = Subscriber::open("steem")?.topics(["comment"]).start(start)?;
//! for op in sub.iter() {
//!     let op = match op {
//!         Ok(op) => op,
//!         Err(e @ RecvError::Lagged { .. }) => { eprintln!("{e}"); continue }
//!         Err(e) => return Err(e.into()),
//!     };
//!     let c: Comment = op.decode()?;
//!     if c.parent_author.is_empty() {
//!         println!("https://steemit.com/@{}/{}", c.author, c.permlink);
//!     }
//!     cursor.save(&op.cursor())?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Protocol
//!
//! The file (see [`layout`]) is a 84 KiB header followed by a data region whose capacity `C` is a
//! power of two. Positions are monotonic byte counts (`u64`); a position's place in the region is
//! `pos & (C - 1)`. Records are 8-byte aligned, start with a 64-byte [`layout::RecordHeader`] and
//! never straddle the end of the region: the writer fills the rest with a padding record (or,
//! when fewer than 64 bytes are left, readers and writer both skip them implicitly).
//!
//! Header words that change: `tail` (end of the last committed block), `tail intent` (end of
//! what the writer may be writing; never decreases), `head` (oldest record not yet overwritten),
//! producer `epoch`, `pid` and `heartbeat`, `last block`, a `notify` word, a table of 256 topics
//! (name and committed record count each) and a 4096-entry index of (block number, position)
//! pairs.
//!
//! Every op record carries its global sequence number and its sequence within its topic. Each
//! block ends with a block-end record (block number, timestamp, id, op count); the first record
//! of each block is flagged.
//!
//! All accesses to shared memory are atomic 64-bit loads and stores, so concurrent access is
//! never a data race. The orderings that matter come in labelled pairs (see `ring.rs`):
//!
//! * **SYNC intent.** Before overwriting bytes, the writer stores the new tail intent and issues
//!   a Release fence; then it stores the bytes. A reader loads a record's words, issues an
//!   Acquire fence, then loads the tail intent. If any loaded word came from a store after the
//!   writer's fence, the fences synchronise and the reader sees an intent that reveals the
//!   overwrite. So a copy taken at `pos` is valid exactly when `intent <= pos + C` afterwards;
//!   otherwise the reader was lapped. Lapping is detected from the writer's counter, never from
//!   record contents (which might be half-written).
//! * **SYNC tail.** The writer stores every record of a block and its block-end record, then
//!   stores `tail` with Release: this single store is the commit. Readers load `tail` with
//!   Acquire and only read below it, so they see whole blocks or nothing. A writer that dies
//!   before the store leaves the block invisible.
//! * **SYNC counters.** After the tail store, the writer stores the counter of each topic of
//!   the block with Release. A reader loads the tail (Acquire), the counters (Acquire), and the
//!   tail again: each counter is then exact for every topic without a record in the blocks
//!   between the two tails, and the others are counted from the records themselves (each op
//!   carries its sequence within its topic) by walking from the start of the first of those
//!   blocks. No lock is involved, so the counts are exact whatever step of a commit the writer
//!   died (or stopped) in.
//! * **SYNC topics.** The writer stores a topic's name, then the topic count with Release;
//!   readers load the count with Acquire before reading names.
//! * **SYNC index.** Index entries are written before the commit and validated by readers
//!   against the record they point to (which must be the flagged first record of that block),
//!   so a torn or stale entry is detected and skipped.
//!
//! When lapped, a reader resumes at a whole block (see [`LagPolicy`]: the oldest one, or one a
//! safe distance behind the writer when it overwrites faster than the reader can count, or the
//! newest) and computes `lost` as that block's first sequence number minus the one it expected,
//! and `lost_matching` from the topic counts at both positions.
//!
//! A writer holds an exclusive open-file-description lock (`F_OFD_SETLK`) on the ring for its
//! whole life; the kernel drops it when the writer dies, and readers probe it (`F_OFD_GETLK`) to
//! tell a live writer from a dead one, which stays right after pid reuse and across pid
//! namespaces. The heartbeat runs on `CLOCK_BOOTTIME` and tells a live writer from a hung one. A
//! writer that opens an existing ring takes the lock, validates every record from head to tail,
//! recomputes its sequence numbers and topic counts, keeps the tail intent (so readers keep
//! judging overwritten bytes correctly), bumps the epoch and continues at the committed tail,
//! overwriting any partial block.
//!
//! Readers wait by spinning briefly, yielding, then sleeping on a futex over the `notify` word,
//! which the writer bumps and wakes after every commit ([`Wait`]).
//!
//! # Memory model tests
//! The algorithm runs over any slice of atomic words: a heap buffer in unit, property and loom
//! tests, the shared mapping in production. The loom models
//! (`RUSTFLAGS="--cfg loom" cargo test -p consumer-sdk --lib --release loom`) race real payload
//! copies against an overwrite, a filtered reader's counts against a commit, and whole-block
//! delivery against commits; each explores every interleaving with up to three preemptions
//! completely, and fails if it does not finish within its budget (60 s, see
//! `RING_LOOM_BUDGET_SECS`) rather than pass on a partial exploration. Miri needs a nightly
//! toolchain: `cargo +nightly miri test -p consumer-sdk --lib ring` runs the heap-backed tests
//! under it.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// Under loom only the protocol core is built; the file and subscriber layers that use the rest
// are left out.
#![cfg_attr(loom, allow(dead_code))]

#[cfg(not(target_has_atomic = "64"))]
compile_error!(
    "consumer-sdk needs 64-bit atomics: every word of the shared ring is accessed as an AtomicU64"
);

pub mod layout;
pub mod ops;
mod ring;
mod sync;

#[cfg(not(loom))]
mod cursor;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod file;
#[cfg(all(not(loom), feature = "writer"))]
mod publisher;
#[cfg(not(loom))]
mod subscriber;

#[cfg(not(loom))]
pub use cursor::{Cursor, CursorFile};
#[cfg(all(not(loom), feature = "writer"))]
pub use error::WriteError;
#[cfg(not(loom))]
pub use error::{Error, RecvError};
#[cfg(not(loom))]
pub use file::{SHM_DIR, resolve};
#[cfg(all(not(loom), feature = "writer"))]
pub use publisher::{CreateOptions, Publisher, TopicId};
#[cfg(all(not(loom), feature = "test-hooks"))]
#[doc(hidden)]
pub use ring::CommitStep;
pub use ring::{LagPolicy, OpMeta};
#[cfg(not(loom))]
pub use subscriber::{BlockEnd, Builder, Event, Iter, Op, ProducerStatus, Start, Subscriber, Wait};
