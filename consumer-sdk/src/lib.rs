//! Read the stream of Steem/Hive operations that the broadcaster publishes into a shared-memory
//! ring, and (with the `writer` feature) publish into one.
//!
//! One broadcaster process follows the chain and writes every operation into a ring file
//! (`/dev/shm/steem`, `/dev/shm/hive`, ...); any number of bot processes read it, each at its
//! own pace. A bot never talks to an API node: it cannot be slowed, crashed or fed garbage by
//! one, and a slow or dead bot holds nobody up.
//!
//! # A bot in a few lines
//!
//! [`Bot`] is the loop every bot needs: it waits for the ring to appear, stops cleanly on
//! SIGINT/SIGTERM, saves its cursor after each op it handled, reports lag, gaps and a dead
//! broadcaster once each (on stderr, or to a handler of yours) and says when it has caught up.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let ring = dir.path().join("hive.ring");
//! # let ring = ring.to_str().unwrap();
//! # consumer_sdk::doc_support::demo_ring(ring)?;
//! # let cursor = dir.path().join("new-posts.cursor");
//! use consumer_sdk::{Bot, Start, ops::{Comment, OpView}};
//!
//! let mut bot = Bot::builder(ring)            // a name under /dev/shm, or a path
//!     .topics([Comment::TOPIC])               // filtered on record headers: other ops cost nothing
//!     .start(Start::Earliest)                 // when there is no saved cursor
//!     .cursor_file(cursor)                    // resume here after a restart
//! #   .until_block(3)
//!     .open()?;
//! bot.run(|op| {
//!     let post: Comment = op.view()?;         // fails (naming both types) on another op type
//!     if post.is_post() {
//!         println!("{} https://hive.blog/@{}/{}", op.time(), post.author, post.permlink);
//!     }
//!     Ok::<_, consumer_sdk::ops::ViewError>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The `examples/` folder has whole bots: an upvoter, transfer totals per asset, a
//! `custom_json` follower parsing its JSON, a dispatcher over many op types, and an async bot
//! making an HTTP call per op. Run one with `cargo run -p consumer-sdk --example NAME -- ARGS`.
//!
//! # Ops
//!
//! Every op carries its topic (the op type without `_operation`: `vote`, `comment`,
//! `custom_json`, ...), its block number and time, its transaction and its position, and its
//! body: the JSON the node sent. [`ops`] has a typed, borrowing view of every op type in today's
//! traffic of both chains, an [`ops::Operation`] enum to `match` on several types, and
//! [`ops::Asset`] amounts that add, compare and total. Assets are spelled in the ring's chain
//! ([`Subscriber::chain`]): a Hive ring says `HIVE` and `HBD`, even for a body that came in NAI
//! form, and `HIVE` never equals `STEEM`.
//!
//! # Where reading starts
//!
//! * [`Start::Latest`]: only blocks committed from now on. For bots that react to what happens.
//! * [`Start::Earliest`]: the oldest whole block still in the ring. The ring holds a bounded
//!   window (its capacity: typically hours to days of blocks); it is not an archive.
//! * [`Start::Block`]`(n)`: the first block numbered `n` or more, if the ring still holds it
//!   ([`Error::BlockGone`] otherwise; a [`Bot`] waits for a block not reached yet).
//! * [`Start::After`]`(cursor)`: just after an op a bot handled before, to resume after a
//!   restart ([`CursorFile`] stores one; [`BotBuilder::cursor_file`] does it all).
//!
//! History older than the ring (a bot that was down for longer than the ring's window, a
//! backfill from a given date) must come from API nodes (`get_block`, or account history); the
//! ring then takes over from the block after.
//!
//! # Lag
//!
//! The writer never waits for a reader. A reader that falls more than a ring's worth behind is
//! *lapped*: it gets [`RecvError::Lagged`] with the exact number of records it lost (all topics,
//! and those of its own topics), and continues with the oldest whole block still in the ring
//! ([`LagPolicy::Oldest`]; a reader overwritten again while it catches up resumes further ahead,
//! never with an error), or with the newest block ([`LagPolicy::Newest`], see
//! [`Builder::on_lag`]). [`Bot`] reports it ([`Notice::Lagged`]) and reads on. A bot that must not lose ops keeps up
//! (handles ops quickly, hands slow work to other threads or tasks) or runs on a larger ring.
//!
//! # Delivery: at least once
//!
//! Readers see whole blocks or nothing, in increasing block order (numbers go back only after a
//! fork notice, see below), each op once. Across a bot's
//! restart, an op is delivered again only if the bot did not save its cursor after it: a bot
//! handles an op, then saves. If it dies in between, it handles that op again after the
//! restart; nothing is ever skipped. Bots whose effects must not repeat make them idempotent
//! (key them by [`Op::cursor`]) or save before acting (at most once).
//!
//! # Restarts and forks
//!
//! When the broadcaster dies mid-block, that block is never seen; a new broadcaster resumes
//! after the last committed block, so readers keep going with no gap and no duplicate (a new
//! [epoch](Subscriber::epoch)). A ring file that is replaced is followed too: readers continue
//! after the last block they finished, or report [`RecvError::Gap`] if the new file lacks
//! blocks. [`Subscriber::producer_status`] tells a live broadcaster from a silent or dead one.
//! A ring filled from a copy of another ring (`nats-to-ring` does that) may carry a *gap
//! notice* where its source lost blocks: readers get [`RecvError::UpstreamGap`] with the lost
//! block range and op count just before the first block after the gap, and keep going.
//!
//! A broadcaster in irreversible mode only publishes blocks that can no longer change and that
//! link to the block before, so bots never see a fork. In head mode, blocks arrive sooner (about
//! a minute on Steem, seconds on Hive) but may be orphaned by a fork. The broadcaster switches
//! branch only when two nodes, or the last irreversible block, confirm it; then the ring carries
//! a *fork notice* naming the orphaned blocks (numbers and ids), followed by the new branch's
//! blocks, whose numbers repeat the orphaned ones. Readers get it as [`Event::Fork`] (op-only
//! receives: [`RecvError::Forked`]; [`Bot`]: [`Step::Fork`] and [`Notice::Fork`]) exactly where
//! it stands: after the orphaned blocks, before any op of the new branch. A bot that acts on head
//! blocks undoes what it did for the orphaned blocks there:
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let ring = dir.path().join("hive.ring");
//! # let ring = ring.to_str().unwrap();
//! # consumer_sdk::doc_support::demo_forked_ring(ring)?;
//! use consumer_sdk::{Event, Start, Subscriber};
//! use std::collections::BTreeMap;
//!
//! let mut sub = Subscriber::open(ring)?.topics(["vote"]).start(Start::Earliest)?;
//! // Votes seen per block, so that a fork can take back those of orphaned blocks.
//! let mut per_block: BTreeMap<u64, u64> = BTreeMap::new();
//! while let Some(event) = sub.try_recv()? {
//!     match event {
//!         Event::Op(op) => *per_block.entry(op.block()).or_default() += 1,
//!         Event::BlockEnd(_) => {}
//!         // Blocks `first_block..` were orphaned: forget them; the new branch follows.
//!         Event::Fork(fork) => drop(per_block.split_off(&fork.first_block)),
//!     }
//! }
//! // Blocks 1 to 3, then a fork orphaning 2 and 3, then blocks 2 to 4 of the new branch.
//! assert_eq!(per_block.into_iter().collect::<Vec<_>>(), [(1, 1), (2, 1), (3, 1), (4, 1)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Cursors stay exact across a fork: those of block ends and of fork notices carry their
//! block's id and resume on their own branch (see [`Cursor`](Cursor#across-a-fork)).
//!
//! # Async
//!
//! With the `tokio` feature, `Subscriber::into_stream` turns a subscriber into a `Stream` of
//! ops, read on a thread of its own, so waiting for the ring never blocks a runtime worker.
//!
//! # Safety of readers
//!
//! Readers map the file read-only, copy each record out and validate the copy before handing it
//! over: no reference into live ring memory ever leaves this crate, and any bytes in the file
//! give an error, never a panic, an out-of-bounds read or an unbounded allocation.
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
// The file layout is internal; the crate's own tests (and crash tests elsewhere) reach it
// through the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod layout;
#[cfg(not(feature = "test-hooks"))]
mod layout;
pub mod ops;
pub mod protocol;
mod ring;
mod sleepers;
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
mod waiters;

#[cfg(not(loom))]
pub use bot::{Bot, BotBuilder, BotError, CursorSaves, Notice, Step};
pub use chain::{CHAIN_NAME_MAX, Chain, ChainError, ChainId};
#[cfg(not(loom))]
pub use cursor::{Cursor, CursorFile};
#[cfg(all(not(loom), feature = "writer"))]
pub use error::WriteError;
#[cfg(not(loom))]
pub use error::{Error, RecvError};
#[cfg(not(loom))]
pub use file::{RingPath, SHM_DIR, remove_ring};
/// Most blocks one fork notice can orphan: a bot that keeps what it needs to undo its newest
/// blocks never needs more than this many.
pub use layout::FORK_MAX_BLOCKS;
#[cfg(all(not(loom), feature = "writer"))]
pub use publisher::{CreateOptions, Publisher, TopicId};
#[cfg(all(not(loom), feature = "test-hooks"))]
#[doc(hidden)]
pub use ring::CommitStep;
pub use ring::LagPolicy;
#[cfg(feature = "writer")]
pub use ring::OpMeta;
#[cfg(all(not(loom), feature = "tokio"))]
pub use stream::OpStream;
#[cfg(not(loom))]
pub use subscriber::{
    BlockEnd, Builder, Event, EventRef, Fork, ForkRef, Iter, Op, OpRef, ProducerStatus, Start,
    Subscriber, Wait,
};
