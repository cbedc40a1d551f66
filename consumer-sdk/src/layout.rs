//! The ring's fixed layout: file header, topic table, block index and record header.
//!
//! Every multi-byte value is native-endian (the ring is shared between processes of one host;
//! [`ENDIAN_TAG`] makes a file written on a host of the other byte order fail to open). Every
//! field is addressed as a byte offset from the start of the file, never through a pointer, and
//! every offset and size is a multiple of 8 so the whole file can be accessed as 64-bit words.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The first eight bytes of every ring file.
pub const MAGIC: [u8; 8] = *b"SHVRING\0";
/// The layout version this crate reads and writes. Bumped on any incompatible change.
pub const VERSION: u32 = 2;
/// Written as a native `u32`; reads back differently on a host of the other byte order.
pub const ENDIAN_TAG: u32 = 0x0102_0304;

/// Number of slots in the topic table (topic ids are `0..TOPIC_SLOTS`).
#[cfg(not(loom))]
pub const TOPIC_SLOTS: usize = 256;
/// Loom models a smaller header (the algorithm does not depend on the table sizes).
#[cfg(loom)]
pub const TOPIC_SLOTS: usize = 4;
/// Bytes of one topic slot: name (up to [`TOPIC_NAME_MAX`] bytes, NUL padded), then the counter.
pub const TOPIC_SLOT_LEN: usize = 64;
/// Longest topic name, in bytes.
pub const TOPIC_NAME_MAX: usize = 56;
/// Number of (block number, position) pairs kept in the block index.
#[cfg(not(loom))]
pub const INDEX_SLOTS: usize = 4096;
/// Loom models a smaller header.
#[cfg(loom)]
pub const INDEX_SLOTS: usize = 4;
/// Bytes of one block index slot.
pub const INDEX_SLOT_LEN: usize = 16;

/// Byte offset of the topic table.
pub const TOPICS_OFFSET: usize = 512;
/// Byte offset of the block index.
pub const INDEX_OFFSET: usize = TOPICS_OFFSET + TOPIC_SLOTS * TOPIC_SLOT_LEN;
/// Size of the whole header; the data region starts here (page aligned).
#[cfg(not(loom))]
pub const HEADER_LEN: usize = (INDEX_OFFSET + INDEX_SLOTS * INDEX_SLOT_LEN).next_multiple_of(4096);
/// Loom models a smaller header: every word is an object loom tracks.
#[cfg(loom)]
pub const HEADER_LEN: usize = (INDEX_OFFSET + INDEX_SLOTS * INDEX_SLOT_LEN).next_multiple_of(64);

/// Smallest data capacity a ring may have.
pub const MIN_CAPACITY: u64 = 4096;
/// Largest data capacity a ring may have (positions stay far from `u64` overflow and a mapping
/// of this size fits any 64-bit address space).
pub const MAX_CAPACITY: u64 = 1 << 40;

/// The part of the header written once, before the file becomes visible under its name, and
/// never changed afterwards. Read with plain (non-atomic) reads during open.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StaticHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// [`ENDIAN_TAG`].
    pub endian: u32,
    /// Bytes before the data region ([`HEADER_LEN`]).
    pub header_len: u64,
    /// Bytes in the data region; a power of two.
    pub capacity: u64,
    /// [`TOPIC_SLOTS`].
    pub topic_slots: u32,
    /// [`INDEX_SLOTS`].
    pub index_slots: u32,
    /// When the file was created, in nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// Zero.
    pub reserved: [u64; 2],
}

const _: () = assert!(size_of::<StaticHeader>() == 64);

/// Byte offsets of the words that change while the ring is in use. Words written on every
/// record or every block sit on their own cache line, so a reader polling the tail does not
/// share a line with the heartbeat.
pub mod off {
    /// Producer epoch: incremented by every writer that opens the ring.
    pub const EPOCH: usize = 64;
    /// Process id of the writer that last opened the ring (informational: liveness is judged by
    /// the writer's file lock, which survives neither its process nor pid reuse).
    pub const PID: usize = 72;
    /// Chain id of the ring's chain: 32 raw bytes (all zero with [`CHAIN_NAME`] empty: no chain
    /// recorded). Written when the ring is created, or once by the first writer that names its
    /// chain on a ring created without one; never changed afterwards.
    pub const CHAIN_ID: usize = 80;
    /// Chain name: ASCII, NUL-padded to 16 bytes (`steem`, `hive`, ...). Its first word is
    /// stored last, so a reader that sees it non-zero sees the whole chain.
    pub const CHAIN_NAME: usize = 112;
    /// Last sign of life of the writer, nanoseconds on the host's `CLOCK_BOOTTIME` (never the
    /// wall clock, which jumps).
    pub const HEARTBEAT: usize = 128;
    /// Tail intent: end position of the bytes the writer may be writing now. Only grows.
    pub const TAIL_INTENT: usize = 192;
    /// Committed tail: end position of the last committed block. Only grows.
    pub const TAIL: usize = 256;
    /// Number of the last committed block, plus one (0: no block yet). A hint for humans and
    /// for `Block(n)` errors; the truth is the block-end record just before the tail.
    #[cfg_attr(not(any(feature = "writer", test)), allow(dead_code))]
    pub const LAST_BLOCK: usize = 264;
    /// Incremented after every commit; its low 32 bits are the futex word readers sleep on.
    pub const NOTIFY: usize = 272;
    /// Position of the oldest record that has not been overwritten.
    pub const HEAD: usize = 320;
    /// Number of registered topics.
    pub const TOPIC_COUNT: usize = 392;
    /// Number of block index entries ever written.
    pub const INDEX_NEXT: usize = 400;
}

/// Byte offset of topic slot `id`.
pub const fn topic_slot(id: usize) -> usize {
    TOPICS_OFFSET + id * TOPIC_SLOT_LEN
}

/// Byte offset of the counter word of topic `id` (records of that topic ever committed).
pub const fn topic_counter(id: usize) -> usize {
    topic_slot(id) + TOPIC_NAME_MAX
}

/// Byte offset of block index slot `i`: block number, then position of the block's first record.
pub const fn index_slot(i: usize) -> usize {
    INDEX_OFFSET + i * INDEX_SLOT_LEN
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Filler up to the end of the data region; readers skip it.
    Padding = 1,
    /// One operation.
    Op = 2,
    /// Closes a block: `block`, `timestamp`, block id in `trx_id`, op count in `topic_seq`.
    BlockEnd = 3,
    /// Fork notice, the first record of the block it precedes: the committed blocks
    /// `block..=last` were orphaned (the chain switched to another branch), and the block it
    /// opens is the new branch's block `block`, so block numbers go back to `block` here.
    /// `trx_id` holds the id of block `block - 1`, the last block both branches share. Its
    /// payload: the first and last orphaned block number (native `u64`s; the first is the
    /// record's `block`), then the orphaned blocks' 20-byte ids, oldest first. Like a block end
    /// it takes no sequence number. At most [`FORK_MAX_BLOCKS`] blocks.
    Fork = 4,
    /// Gap notice, the first record of the block it precedes: blocks were lost upstream before
    /// they reached this ring. Its payload is [`GAP_PAYLOAD_LEN`] bytes: first and last block
    /// number lost, then the ops lost ([`GAP_OPS_UNKNOWN`] when unknown), native `u64`s. Like a
    /// block end it takes no sequence number: `seq` is the one the next op will get.
    Gap = 5,
}

/// Payload bytes of a [`Kind::Gap`] record.
pub const GAP_PAYLOAD_LEN: usize = 24;
/// Ops-lost value of a gap notice when the number is not known.
pub const GAP_OPS_UNKNOWN: u64 = u64::MAX;

/// Most blocks one fork notice can orphan (far deeper than either chain's reversible blocks).
pub const FORK_MAX_BLOCKS: u64 = 1024;

/// Payload bytes of a [`Kind::Fork`] record orphaning `blocks` blocks.
pub const fn fork_payload_len(blocks: u64) -> usize {
    16 + 20 * blocks as usize
}

impl Kind {
    /// The kind for a raw header byte, if it names one.
    pub fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Padding),
            2 => Some(Kind::Op),
            3 => Some(Kind::BlockEnd),
            4 => Some(Kind::Fork),
            5 => Some(Kind::Gap),
            _ => None,
        }
    }
}

/// Record flag: the operation is virtual (produced by the chain, not signed by anyone).
pub const FLAG_VIRTUAL: u8 = 1;

/// Bytes of a record header. Records start on 8-byte boundaries and never straddle the end of
/// the data region; when fewer than `RECORD_HEADER_LEN` bytes are left before the end, they are
/// implicit padding and the next record starts at the beginning of the region.
pub const RECORD_HEADER_LEN: usize = 64;

/// Bytes a reader copies out of the ring in one pass (more only for a longer record it needs
/// whole): a run of records validated once (`SYNC batch` in the ring's reader).
pub const READ_BATCH_BYTES: u64 = 16 * 1024;

/// Header of every record in the data region, followed by `len` payload bytes and zero padding
/// up to the next multiple of 8.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct RecordHeader {
    /// Payload length in bytes (padding records: bytes after the header up to the region's end).
    pub len: u32,
    /// [`Kind`] as a byte.
    pub kind: u8,
    /// [`FLAG_VIRTUAL`] or 0.
    pub flags: u8,
    /// Topic id (ops only).
    pub topic: u16,
    /// Global sequence of the op (ops); for other kinds, the sequence the next op will get.
    pub seq: u64,
    /// Sequence of the op among ops of its topic (ops); op count of the block (block ends).
    pub topic_seq: u64,
    /// Block number.
    pub block: u64,
    /// Index of the transaction in the block.
    pub trx_index: u32,
    /// Index of the op in its transaction.
    pub op_index: u32,
    /// Block timestamp, seconds since the Unix epoch (UTC).
    pub timestamp: u32,
    /// Transaction id (ops) or block id (block ends), 20 raw bytes.
    pub trx_id: [u8; 20],
}

const _: () = assert!(size_of::<RecordHeader>() == RECORD_HEADER_LEN);
const _: () = assert!(HEADER_LEN % 64 == 0 && INDEX_OFFSET % 8 == 0);
#[cfg(not(loom))]
const _: () = assert!(HEADER_LEN % 4096 == 0);
const _: () = assert!(off::INDEX_NEXT + 8 <= TOPICS_OFFSET);
const _: () = assert!(off::CHAIN_NAME + crate::chain::CHAIN_NAME_MAX <= off::HEARTBEAT);

/// Bytes a record with a payload of `len` bytes occupies.
pub const fn record_len(len: usize) -> usize {
    RECORD_HEADER_LEN + len.next_multiple_of(8)
}
