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
//! after the last block they finished, or report [`RecvError::Gap`]). A ring filled from a copy
//! of another ring (`nats-to-ring` does that) may carry a *gap notice* where its source lost
//! blocks: readers get [`RecvError::UpstreamGap`] with the lost block range and op count just
//! before the first block after the gap, and keep going.
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
//! How the ring works (layout, memory orderings, crash states, liveness) is on its own page:
//! [`protocol`].
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// Under loom only the protocol core is built; the file and subscriber layers that use the rest
// are left out.
#![cfg_attr(loom, allow(dead_code))]

#[cfg(not(target_has_atomic = "64"))]
compile_error!(
    "consumer-sdk needs 64-bit atomics: every word of the shared ring is accessed as an AtomicU64"
);

mod chain;
pub mod layout;
pub mod ops;
pub mod protocol;
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
#[cfg(all(not(loom), feature = "test-hooks"))]
#[doc(hidden)]
pub use ring::CommitStep;
pub use ring::{LagPolicy, OpMeta};
#[cfg(not(loom))]
pub use subscriber::{
    BlockEnd, Builder, Event, EventRef, Iter, Op, OpRef, ProducerStatus, Start, Subscriber, Wait,
};
