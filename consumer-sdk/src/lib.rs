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
//! producer `epoch`, `pid` and `heartbeat`, `last block`, a `notify` word, a sequence lock over a
//! table of 256 topics (name and committed record count each) and a 4096-entry index of
//! (block number, position) pairs.
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
//! * **SYNC counters.** The writer makes the sequence lock odd, issues a Release fence, stores
//!   `tail` and the topic counters, and makes the lock even with Release. A lapped reader
//!   snapshots tail and counters under the lock (Acquire, loads, Acquire fence, re-check) and
//!   subtracts the records of its topics between its new position and that tail: this gives the
//!   exact count of its topics' records it lost.
//! * **SYNC topics.** The writer stores a topic's name, then the topic count with Release;
//!   readers load the count with Acquire before reading names.
//! * **SYNC index.** Index entries are written before the commit and validated by readers
//!   against the record they point to (which must be the flagged first record of that block),
//!   so a torn or stale entry is detected and skipped.
//!
//! When lapped, a reader starts from `head`, walks to the first flagged block start (validating
//! each header as above) and computes `lost` as that record's sequence number minus the one it
//! expected. A writer that opens an existing ring takes an exclusive `flock`, validates every
//! record from head to tail, recomputes its sequence numbers and topic counts, keeps the tail
//! intent (so readers keep judging overwritten bytes correctly), bumps the epoch and continues
//! at the committed tail, overwriting any partial block.
//!
//! Readers wait by spinning briefly, yielding, then sleeping on a futex over the `notify` word,
//! which the writer bumps and wakes after every commit ([`Wait`]).
//!
//! # Memory model tests
//! The algorithm runs over any slice of atomic words: a heap buffer in unit, property and loom
//! tests (`RUSTFLAGS="--cfg loom" cargo test -p consumer-sdk --lib --release loom`; each model
//! explores for at most two minutes unless `LOOM_MAX_DURATION` says otherwise), the shared
//! mapping in production. Miri needs a nightly toolchain: `cargo +nightly miri test -p
//! consumer-sdk --lib ring` runs the heap-backed tests under it.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// Under loom only the protocol core is built; the file and subscriber layers that use the rest
// are left out.
#![cfg_attr(loom, allow(dead_code))]

mod chain;
pub mod layout;
pub mod ops;
mod ring;
mod sync;

#[cfg(not(loom))]
mod bot;
#[cfg(not(loom))]
mod cursor;
#[cfg(all(not(loom), feature = "writer"))]
#[doc(hidden)]
pub mod doc_support;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod file;
#[cfg(all(not(loom), feature = "writer"))]
mod publisher;
#[cfg(all(not(loom), feature = "tokio"))]
mod stream;
#[cfg(not(loom))]
mod subscriber;

#[cfg(not(loom))]
pub use bot::{Bot, BotBuilder, BotError, Notice, Step};
pub use chain::{CHAIN_NAME_MAX, Chain, ChainError, ChainId};
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
pub use ring::OpMeta;
#[cfg(all(not(loom), feature = "tokio"))]
pub use stream::OpStream;
#[cfg(not(loom))]
pub use subscriber::{BlockEnd, Builder, Event, Iter, Op, ProducerStatus, Start, Subscriber, Wait};
