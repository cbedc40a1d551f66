//! Error types.

use std::io;
use std::path::PathBuf;

/// Opening, creating or positioning on a ring failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused an operation on the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The ring or cursor file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// No ring exists at this path.
    #[error("{}: no ring here (has the broadcaster created it yet?)", path.display())]
    NotFound {
        /// Where the ring was looked for.
        path: PathBuf,
    },
    /// The path is a symbolic link; rings are never opened through one.
    #[error("{}: is a symbolic link; refusing to open a ring through a link", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The file is not a ring written by this protocol.
    #[error("{}: not a ring file: {reason}", path.display())]
    NotARing {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The ring was written with another layout version.
    #[error("{}: ring layout version {found}, but this build reads version {expected}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build supports.
        expected: u32,
    },
    /// The file is shorter than its header says.
    #[error("{}: truncated ring: {len} bytes, but its header announces {expected}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Actual size.
        len: u64,
        /// Size the header implies.
        expected: u64,
    },
    /// The ring's contents break the protocol's invariants.
    #[error("{}: corrupt ring: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which invariant broke.
        reason: String,
    },
    /// The file system cannot hold the whole ring. The writer reserves every byte of the file
    /// when it creates or reopens a ring, so a full file system is this error at start, never a
    /// `SIGBUS` when a page is first written later.
    #[error(
        "{}: cannot reserve {requested} bytes for the ring ({source}); {available} bytes are free on its file system",
        path.display()
    )]
    NoSpace {
        /// The ring file.
        path: PathBuf,
        /// Size of the whole file, in bytes.
        requested: u64,
        /// Bytes the file system had free for this user when the reservation failed.
        available: u64,
        /// What the OS said (`ENOSPC`, `EFBIG`, `EDQUOT`).
        source: io::Error,
    },
    /// The file's owner or permissions make it untrustworthy: someone other than its owner may
    /// write it (and so forge ops or truncate it under its mappers), or, for the writer, it
    /// belongs to another user.
    #[error(
        "{}: refusing a ring owned by uid {owner} with mode {mode:04o}: {reason}",
        path.display()
    )]
    Permissions {
        /// The ring file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// `CreateOptions::mode` would let someone other than the owner write the ring, or not let
    /// the owner read and write it.
    #[error(
        "invalid ring file mode {mode:04o}: the owner must read and write it, nobody else may write it (e.g. 0600, or 0640 for readers in the owner's group)"
    )]
    InvalidMode {
        /// What was asked for.
        mode: u32,
    },
    /// Another writer has the ring open.
    #[error("{}: another writer (pid {pid}) is publishing into this ring", path.display())]
    WriterActive {
        /// The file.
        path: PathBuf,
        /// The pid the header names.
        pid: u64,
    },
    /// While positioning a new subscriber, the writer kept overwriting the place found before
    /// the subscriber could settle there (a ring far too small for the writer's pace).
    #[error(
        "{}: the writer kept overwriting the ring faster than a new reader could position itself in it; use a larger ring",
        path.display()
    )]
    Overrun {
        /// The ring file.
        path: PathBuf,
    },
    /// The ring name or path is unusable.
    #[error("invalid ring name {name:?}: {reason}")]
    InvalidName {
        /// What was given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A requested data capacity is not allowed.
    #[error(
        "invalid ring capacity {capacity}: must be a power of two between {min} and {max} bytes"
    )]
    InvalidCapacity {
        /// What was asked for.
        capacity: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// `Start::Block(n)`: block `n` was overwritten already.
    #[error(
        "block {block} is not in the ring (any more); the oldest whole block in it is {earliest}"
    )]
    BlockGone {
        /// The block asked for.
        block: u64,
        /// The oldest block still readable.
        earliest: u64,
    },
    /// `Start::Block(n)`: block `n` is not committed yet.
    #[error("block {block} is not in the ring yet (last committed block: {})", last.map_or("none".into(), |b| b.to_string()))]
    BlockNotYet {
        /// The block asked for.
        block: u64,
        /// The last committed block, if any.
        last: Option<u64>,
    },
    /// A cursor file could not be read or holds something else than a cursor.
    #[error("cursor file {}: {reason}", path.display())]
    Cursor {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Receiving from a ring failed, or something the reader must know happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The writer overwrote records before this reader read them. The reader has moved on to
    /// the oldest whole block still in the ring; receiving again continues from there.
    #[error(
        "lagged behind the writer: {lost} records lost ({lost_matching} of the subscribed topics)"
    )]
    Lagged {
        /// Records lost, all topics.
        lost: u64,
        /// Records lost that the topic filter would have passed.
        lost_matching: u64,
    },
    /// The ring file was replaced by a new one that does not hold the blocks after the last
    /// one this reader finished; it continues at `resumed_at`.
    #[error(
        "ring file replaced: blocks after {last_seen} are not in the new ring, which resumes at block {resumed_at}"
    )]
    Gap {
        /// Last block this reader finished before the replacement.
        last_seen: u64,
        /// First block it reads from the new file.
        resumed_at: u64,
    },
    /// Blocks were lost before they reached this ring: its writer copies the stream from
    /// elsewhere (e.g. `nats-to-ring`) and the source lost blocks `from_block..=to_block` (a
    /// range of block numbers; with sparse numbering not each was a block). The next block this
    /// reader receives comes after the gap; nothing of the lost blocks will come.
    #[error(
        "blocks {from_block}..={to_block} were lost upstream and never reached this ring ({})",
        lost_ops.map_or("number of ops lost unknown".to_string(), |n| format!("{n} ops lost"))
    )]
    UpstreamGap {
        /// First block number of the gap.
        from_block: u64,
        /// Last block number of the gap.
        to_block: u64,
        /// Ops the lost blocks held, when the source could count them.
        lost_ops: Option<u64>,
    },
    /// Op-only receives ([`crate::Subscriber::recv_op`], its iterator and stream): blocks
    /// `first_block..=last_block` given before were orphaned by a fork (the
    /// [`crate::Event::Fork`] of event receives); undo what was done for them. The ops that
    /// follow are the new branch's, from block `first_block` on.
    #[error(
        "fork: blocks {first_block}..={last_block} were orphaned; the new branch follows from block {first_block}"
    )]
    Forked {
        /// The first orphaned block.
        first_block: u64,
        /// The last orphaned block.
        last_block: u64,
    },
    /// The ring holds bytes this protocol never writes.
    #[error("{}: corrupt ring at position {pos}: {reason}", path.display())]
    Corrupt {
        /// The ring file.
        path: PathBuf,
        /// Byte position (monotonic, not masked) where it was found.
        pos: u64,
        /// What was wrong.
        reason: String,
    },
    /// The writer overwrote the ring faster than this reader could find a valid record. A
    /// lapped reader no longer reports this (it retries, see [`crate::LagPolicy`]); the variant
    /// is kept so existing matches still compile.
    #[error("{}: the writer kept overwriting the ring faster than this reader could resynchronise", path.display())]
    Overrun {
        /// The ring file.
        path: PathBuf,
    },
    /// The stop flag given to the subscriber was raised.
    #[error("stopped")]
    Stopped,
}

/// Publishing into a ring failed. Nothing of an open block is visible to readers until commit.
#[cfg(feature = "writer")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// `push` or `commit` without `begin_block`.
    #[error("no block is open")]
    NoBlock,
    /// `begin_block` while another block is open.
    #[error("a block is already open")]
    BlockOpen,
    /// Blocks must be published in strictly increasing order, each once.
    #[error("block {block} is not after the last committed block {last}")]
    BlockNotAfter {
        /// The block offered.
        block: u64,
        /// The last committed block.
        last: u64,
    },
    /// The records of one block may take at most a quarter of the ring.
    #[error("block exceeds {limit} bytes, a quarter of the ring's capacity; use a larger ring")]
    BlockTooLarge {
        /// Bytes one block may use.
        limit: u64,
    },
    /// One op payload may take at most a quarter of the ring, less 128 bytes.
    #[error(
        "op payload of {len} bytes exceeds a quarter of the ring's capacity (less 128 bytes); use a larger ring"
    )]
    PayloadTooLarge {
        /// Payload size.
        len: usize,
    },
    /// Topic names are 1 to 56 bytes of `[a-z0-9_]`.
    #[error("invalid topic name {0:?}: use 1 to 56 characters of a-z, 0-9 and _")]
    TopicName(String),
    /// All 256 topic slots are taken.
    #[error("the topic table is full (256 topics)")]
    TopicTableFull,
    /// A topic id that was not returned by `Publisher::topic`.
    #[error("unknown topic id {0}")]
    UnknownTopic(u16),
    /// `Publisher::gap` with a range that does not lie between the last committed block and
    /// the open block, or after the open block's first op.
    #[error("gap notice for blocks {from}..={to} refused: {reason}")]
    InvalidGap {
        /// First block of the gap.
        from: u64,
        /// Last block of the gap.
        to: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `Publisher::begin_fork` that does not orphan exactly the newest committed blocks, from
    /// the block it opens to the last committed one.
    #[error("fork notice before block {block} refused: {reason}")]
    InvalidFork {
        /// The block the notice would open.
        block: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The ring records another chain than the one the publisher follows.
    #[error(
        "the ring carries chain {ring} (id {}), not {asked} (id {}); use another ring",
        ring.id(),
        asked.id()
    )]
    OtherChain {
        /// The chain the ring records.
        ring: crate::Chain,
        /// The chain the publisher asked for.
        asked: crate::Chain,
    },
    /// The ring's chain record is not a valid chain.
    #[error("the ring's chain record is invalid: {0}")]
    ChainRecord(#[source] crate::ChainError),
}

#[cfg(feature = "writer")]
impl From<crate::ring::WriteFault> for WriteError {
    fn from(f: crate::ring::WriteFault) -> WriteError {
        use crate::ring::WriteFault as F;
        match f {
            F::NoBlock => WriteError::NoBlock,
            F::BlockOpen => WriteError::BlockOpen,
            F::BlockNotAfter { block, last } => WriteError::BlockNotAfter { block, last },
            F::ForkWithoutBlocks => WriteError::InvalidFork {
                block: 0,
                reason: "the ring holds no committed block to orphan".into(),
            },
            F::ForkRange {
                block,
                orphaned,
                last,
            } => WriteError::InvalidFork {
                block,
                reason: format!(
                    "{orphaned} orphaned block ids given; it must name blocks {block}..={last}, \
                     the newest committed ones, at most {}",
                    crate::layout::FORK_MAX_BLOCKS
                ),
            },
            F::ForkLastId { block, given, last } => WriteError::InvalidFork {
                block,
                reason: format!(
                    "the last orphaned id {} is not the id of the last committed block, {}",
                    const_hex::encode(given),
                    const_hex::encode(last)
                ),
            },
            F::BlockTooLarge { limit } => WriteError::BlockTooLarge { limit },
            F::PayloadTooLarge { len } => WriteError::PayloadTooLarge { len },
            F::TopicName(n) => WriteError::TopicName(n),
            F::TopicTableFull => WriteError::TopicTableFull,
            F::UnknownTopic(t) => WriteError::UnknownTopic(t),
        }
    }
}
