//! The ring algorithm, over any memory that can be seen as a slice of `AtomicU64` words: a heap
//! buffer in unit, property and loom tests, the shared mapping in production.
//!
//! The protocol (layout, orderings, crash states) is described in [`crate::protocol`]; its
//! Release/Acquire pairs carry labels (`SYNC tail`, `SYNC intent`, `SYNC head`, `SYNC counters`,
//! `SYNC topics`, `SYNC index`) at both ends. By role:
//!
//! * this module: the word views of a ring ([`Ring`] loads, [`RingMut`] also stores), the
//!   validation both sides share, the heap memory of the tests;
//! * `writer`: the single writer (append, commit, recovery of a ring a dead writer left);
//! * `reader`: a reader's cursor (copy, validate, lap recovery and loss counts);
//! * `seek`: positioning (oldest, newest, block `n`) through records and the block index;
//! * `loom_tests`: the loom models.

use crate::layout::{
    self, HEADER_LEN, Kind, RECORD_HEADER_LEN, RecordHeader, TOPIC_NAME_MAX, TOPIC_SLOTS, off,
    record_len,
};
#[cfg(any(feature = "writer", test, loom))]
use crate::layout::{INDEX_SLOTS, StaticHeader};
#[cfg(any(test, loom))]
use crate::sync::AtomicU64;
use crate::sync::{Ordering, Word, Words, fence};
#[cfg(any(feature = "writer", test, loom))]
use crate::sync::{WordMut, WordsMut};
use zerocopy::{FromBytes, IntoBytes};

/// Record flag: the first record written for a block (padding included).
pub(crate) const FLAG_BLOCK_START: u8 = 2;

/// Something that owns the ring's memory.
pub(crate) trait Memory {
    /// The whole ring (header and data region) as words that can only be loaded.
    fn words(&self) -> Words<'_>;
}

impl<M: Memory + ?Sized> Memory for std::sync::Arc<M> {
    fn words(&self) -> Words<'_> {
        (**self).words()
    }
}

/// Memory this process may write: the writer's mapping, a heap buffer.
#[cfg(any(feature = "writer", test, loom))]
pub(crate) trait MemoryMut: Memory {
    /// The whole ring as words that can be loaded and stored.
    fn words_mut(&self) -> WordsMut<'_>;
}

#[cfg(any(feature = "writer", test, loom))]
impl<M: MemoryMut + ?Sized> MemoryMut for std::sync::Arc<M> {
    fn words_mut(&self) -> WordsMut<'_> {
        (**self).words_mut()
    }
}

/// A ring in ordinary heap memory: unit, property and loom tests.
#[cfg(any(test, loom))]
pub(crate) struct HeapMemory(Box<[AtomicU64]>);

#[cfg(any(test, loom))]
impl HeapMemory {
    /// A zeroed buffer for a ring of `capacity` data bytes, header initialised.
    pub(crate) fn new(capacity: u64) -> HeapMemory {
        let words = (HEADER_LEN + capacity as usize) / 8;
        let mem = HeapMemory((0..words).map(|_| AtomicU64::new(0)).collect());
        init_header(mem.words_mut(), capacity, 0);
        mem
    }
}

#[cfg(any(test, loom))]
impl Memory for HeapMemory {
    fn words(&self) -> Words<'_> {
        Words::new(&self.0)
    }
}

#[cfg(any(test, loom))]
impl MemoryMut for HeapMemory {
    fn words_mut(&self) -> WordsMut<'_> {
        WordsMut::new(&self.0)
    }
}

#[cfg(any(feature = "writer", test, loom))]
/// Write the static header of a fresh ring into `words` (which nobody else sees yet).
pub(crate) fn init_header(words: WordsMut<'_>, capacity: u64, created_ns: u64) {
    let header = StaticHeader {
        magic: layout::MAGIC,
        version: layout::VERSION,
        endian: layout::ENDIAN_TAG,
        header_len: HEADER_LEN as u64,
        capacity,
        topic_slots: TOPIC_SLOTS as u32,
        index_slots: INDEX_SLOTS as u32,
        created_ns,
        reserved: [0; 2],
    };
    for (i, chunk) in header.as_bytes().chunks_exact(8).enumerate() {
        // Relaxed: the ring is not shared yet; publication happens through the file system.
        words.get(i).store(
            u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8])),
            Ordering::Relaxed,
        );
    }
}

#[cold]
fn unreachable_layout() -> ! {
    // Both sides are 64 bytes (asserted at compile time in layout.rs).
    unreachable!("static header is 64 bytes")
}

/// Shared view of a ring's words with the geometry already validated.
#[derive(Clone, Copy)]
pub(crate) struct Ring<'a> {
    words: Words<'a>,
    capacity: u64,
}

impl<'a> Ring<'a> {
    /// View `words` as a ring of `capacity` data bytes. The caller has validated the header:
    /// `capacity` is a power of two and `words` spans exactly `HEADER_LEN + capacity` bytes.
    pub(crate) fn new(words: Words<'a>, capacity: u64) -> Ring<'a> {
        debug_assert!(capacity.is_power_of_two());
        debug_assert_eq!(words.len() * 8, HEADER_LEN + capacity as usize);
        Ring { words, capacity }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    fn at(&self, byte_off: usize) -> Word<'a> {
        self.words.get(byte_off / 8)
    }

    /// Word index of data position `pos`.
    fn data_word(&self, pos: u64) -> usize {
        (HEADER_LEN + (pos & (self.capacity - 1)) as usize) / 8
    }

    /// Bytes left between `pos` and the end of the data region.
    fn room(&self, pos: u64) -> u64 {
        self.capacity - (pos & (self.capacity - 1))
    }

    fn load_record_header(&self, pos: u64) -> RecordHeader {
        let first = self.data_word(pos);
        let mut raw = [0u64; 8];
        for (i, w) in raw.iter_mut().enumerate() {
            // Relaxed: validated afterwards against the tail intent (SYNC intent).
            *w = self.words.get(first + i).load(Ordering::Relaxed);
        }
        RecordHeader::read_from_bytes(raw.as_bytes()).unwrap_or_else(|_| unreachable_layout())
    }

    /// Whether the bytes at `pos..` were possibly overwritten, judged after the loads that read
    /// them. SYNC intent (reader side): the Acquire fence orders the preceding relaxed data loads
    /// before the intent load, so if any of them saw a byte the writer stored after raising the
    /// intent (writer: intent store, Release fence, data stores), this load sees that intent.
    fn overwritten(&self, pos: u64) -> bool {
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence above.
        let intent = self.at(off::TAIL_INTENT).load(Ordering::Relaxed);
        // The writer overwrites position `p` when it writes `p + capacity`; everything below
        // `intent` may have been written, so `pos` survives while `pos + capacity >= intent`.
        intent > pos.saturating_add(self.capacity)
    }

    /// Committed tail. SYNC tail (reader side): Acquire pairs with the writer's Release store at
    /// commit, making every record before the tail visible.
    pub(crate) fn tail(&self) -> u64 {
        self.at(off::TAIL).load(Ordering::Acquire)
    }

    /// Oldest position not yet overwritten, at least as fresh as the tail intent loaded here.
    /// SYNC head (reader side): the Acquire load of the intent pairs with the writer's Release
    /// store of it, which follows its store of the head; so the head read afterwards is at
    /// least `intent - capacity` for the intent seen. A reader that keeps finding the head
    /// overwritten therefore only retries while the writer really moves on.
    pub(crate) fn head(&self) -> u64 {
        let _ = self.at(off::TAIL_INTENT).load(Ordering::Acquire);
        // Relaxed: ordered by the Acquire load above.
        self.at(off::HEAD).load(Ordering::Relaxed)
    }

    pub(crate) fn epoch(&self) -> u64 {
        // Relaxed: a plain counter, compared for change only.
        self.at(off::EPOCH).load(Ordering::Relaxed)
    }

    pub(crate) fn pid(&self) -> u64 {
        // Relaxed: informational.
        self.at(off::PID).load(Ordering::Relaxed)
    }

    pub(crate) fn heartbeat_ns(&self) -> u64 {
        // Relaxed: informational.
        self.at(off::HEARTBEAT).load(Ordering::Relaxed)
    }

    /// The word readers sleep on (its low 32 bits are the futex word).
    pub(crate) fn notify_word(&self) -> Word<'a> {
        self.at(off::NOTIFY)
    }

    /// Registered topic names, in id order.
    pub(crate) fn topic_names(&self) -> Vec<String> {
        // SYNC topics (reader side): Acquire pairs with the Release store of the count after the
        // name words were written.
        let count = self
            .at(off::TOPIC_COUNT)
            .load(Ordering::Acquire)
            .min(TOPIC_SLOTS as u64);
        (0..count as usize).map(|id| self.topic_name(id)).collect()
    }

    fn topic_name(&self, id: usize) -> String {
        let mut bytes = [0u8; TOPIC_NAME_MAX];
        for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            // Relaxed: published by SYNC topics; names never change once registered.
            let w = self
                .at(layout::topic_slot(id) + i * 8)
                .load(Ordering::Relaxed);
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(TOPIC_NAME_MAX);
        String::from_utf8_lossy(&bytes[..len]).into_owned()
    }

    /// Size of the record at `pos` as it would be skipped: implicit padding when less than a
    /// header fits before the end; otherwise from the header, bounds-checked.
    fn skip_len(&self, pos: u64, header: &RecordHeader) -> Result<u64, &'static str> {
        let room = self.room(pos);
        let kind = Kind::from_u8(header.kind).ok_or("unknown record kind")?;
        let len = match kind {
            Kind::Padding => {
                if u64::from(header.len) + RECORD_HEADER_LEN as u64 != room {
                    return Err("padding record does not reach the end of the region");
                }
                room
            }
            Kind::Op | Kind::BlockEnd | Kind::Gap | Kind::Fork => {
                let len = record_len(header.len as usize) as u64;
                if len > room {
                    return Err("record runs past the end of the region");
                }
                if kind == Kind::BlockEnd && header.len != 0 {
                    return Err("block end record with a payload");
                }
                if kind == Kind::Gap && header.len as usize != layout::GAP_PAYLOAD_LEN {
                    return Err("gap notice with a payload of the wrong size");
                }
                let fork_sizes =
                    layout::fork_payload_len(1)..=layout::fork_payload_len(layout::FORK_MAX_BLOCKS);
                if kind == Kind::Fork && !fork_sizes.contains(&(header.len as usize)) {
                    return Err("fork notice with a payload of the wrong size");
                }
                // The reader never copies (or allocates for) more than the writer can write.
                if kind == Kind::Op && u64::from(header.len) > max_payload(self.capacity) {
                    return Err("op payload longer than the writer's maximum");
                }
                len
            }
        };
        Ok(len)
    }
}

/// A ring in memory this process may write: the writer's view. Loads go through the
/// [`Ring`] it dereferences to; [`RingMut::at`] also stores.
#[cfg(any(feature = "writer", test, loom))]
#[derive(Clone, Copy)]
pub(crate) struct RingMut<'a> {
    ring: Ring<'a>,
    words: WordsMut<'a>,
}

#[cfg(any(feature = "writer", test, loom))]
impl<'a> RingMut<'a> {
    /// View `words` as a ring of `capacity` data bytes (see [`Ring::new`]).
    pub(crate) fn new(words: WordsMut<'a>, capacity: u64) -> RingMut<'a> {
        RingMut {
            ring: Ring::new(words.view(), capacity),
            words,
        }
    }

    fn at(&self, byte_off: usize) -> WordMut<'a> {
        self.words.get(byte_off / 8)
    }
}

#[cfg(any(feature = "writer", test, loom))]
impl<'a> std::ops::Deref for RingMut<'a> {
    type Target = Ring<'a>;

    fn deref(&self) -> &Ring<'a> {
        &self.ring
    }
}

/// Metadata of one op as the writer receives it.
#[cfg(any(feature = "writer", test, loom))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpMeta {
    /// Index of the transaction in its block.
    pub trx_index: u32,
    /// Transaction id, 20 raw bytes (all zero for virtual ops without one).
    pub trx_id: [u8; 20],
    /// Index of the op in its transaction.
    pub op_index: u32,
    /// Produced by the chain itself (`get_ops_in_block` with `only_virtual`).
    pub virtual_op: bool,
}

/// Largest op payload a ring of `capacity` bytes takes: one op and its block end fit the
/// quarter of the ring a block may use.
pub(crate) fn max_payload(capacity: u64) -> u64 {
    capacity / 4 - 2 * RECORD_HEADER_LEN as u64
}

/// A topic name is 1 to 56 bytes of `[a-z0-9_]`.
#[cfg(any(feature = "writer", test, loom))]
pub(crate) fn validate_topic(name: &str) -> Result<(), ()> {
    let ok = !name.is_empty()
        && name.len() <= TOPIC_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(()) }
}

/// Why a reader cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadFault {
    /// The bytes at `pos` are not a record this protocol writes.
    Corrupt { pos: u64, reason: String },
    /// The writer kept overwriting the ring faster than the reader could find a valid record.
    Overrun,
}

fn corrupt(pos: u64, reason: impl Into<String>) -> ReadFault {
    ReadFault::Corrupt {
        pos,
        reason: reason.into(),
    }
}

/// A committed tail must be 8-byte aligned, follow a whole block-end record and not exceed
/// the tail intent.
fn check_tail(ring: &Ring<'_>, tail: u64) -> Result<(), ReadFault> {
    // Relaxed: the tail was loaded with Acquire (SYNC tail), and the writer raised the intent
    // above it before storing it, so this load sees an intent at least that high.
    let intent = ring.at(off::TAIL_INTENT).load(Ordering::Relaxed);
    let whole_end = tail == 0
        || (tail >= RECORD_HEADER_LEN as u64
            && ring.room(tail - RECORD_HEADER_LEN as u64) >= RECORD_HEADER_LEN as u64);
    if tail % 8 != 0 || !whole_end || tail > intent {
        return Err(corrupt(
            tail,
            format!("impossible committed tail {tail} (tail intent {intent})"),
        ));
    }
    Ok(())
}

/// A walk over records never covers more than a ring: a longer one runs in circles through
/// bytes that are not this protocol's.
fn check_walk(ring: &Ring<'_>, from: u64, at: u64) -> Result<(), ReadFault> {
    if at - from > ring.capacity() {
        return Err(corrupt(
            from,
            "records from here run in circles past a whole ring",
        ));
    }
    Ok(())
}

mod reader;
mod seek;
#[cfg(any(feature = "writer", test, loom))]
mod writer;

// Under loom only the protocol core is built, so the file-layer users of these are missing.
pub use reader::LagPolicy;
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use reader::{Polled, ReaderCore};
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use seek::{
    BlockIdFound, Branch, Seek, last_committed_block, seek_block, seek_block_id, seek_earliest,
    seek_latest,
};
#[cfg(feature = "test-hooks")]
#[cfg_attr(loom, allow(unused_imports))]
pub use writer::CommitStep;
#[cfg(any(feature = "writer", test, loom))]
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use writer::{WriteFault, WriterCore};

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
