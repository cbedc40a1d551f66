//! The ring algorithm, over any memory that can be seen as a slice of `AtomicU64` words: a heap
//! buffer in unit, property and loom tests, the shared mapping in production.
//!
//! Writer and reader live side by side so that every Release/Acquire pair is in this file. The
//! pairs carry labels (`SYNC tail`, `SYNC intent`, `SYNC counters`, `SYNC topics`, `SYNC index`)
//! and the crate docs' `# Protocol` section explains them.

use crate::layout::{
    self, HEADER_LEN, INDEX_SLOTS, Kind, RECORD_HEADER_LEN, RecordHeader, TOPIC_NAME_MAX,
    TOPIC_SLOTS, off, record_len,
};
#[cfg(any(feature = "writer", test, loom))]
use crate::layout::{FLAG_VIRTUAL, StaticHeader};
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
            Kind::Op | Kind::BlockEnd => {
                let len = record_len(header.len as usize) as u64;
                if len > room {
                    return Err("record runs past the end of the region");
                }
                if kind == Kind::BlockEnd && header.len != 0 {
                    return Err("block end record with a payload");
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

#[cfg(any(feature = "writer", test, loom))]
/// Why the writer refused an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteFault {
    NoBlock,
    BlockOpen,
    BlockNotAfter { block: u64, last: u64 },
    BlockTooLarge { limit: u64 },
    PayloadTooLarge { len: usize },
    TopicName(String),
    TopicTableFull,
    UnknownTopic(u16),
}

#[cfg(any(feature = "writer", test, loom))]
/// What the writer knows about the block being written.
struct OpenBlock {
    number: u64,
    timestamp: u32,
    id: [u8; 20],
    start: u64,
    /// Bytes of the block's records so far, padding excluded.
    bytes: u64,
    ops: u64,
    first_written: bool,
}

/// Metadata of one op as the writer receives it.
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

/// The steps of a commit, in order: a test (feature `test-hooks`) can stop a writer after any
/// of them to leave the ring in each state a crash can leave it in.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStep {
    /// Every record of the block and its block end are written; nothing is committed.
    RecordsWritten,
    /// The block index entry and count are written too.
    IndexWritten,
    /// The tail store: the block is committed; no topic counter is updated yet.
    TailStored,
    /// The first of the block's topic counters is updated (only if the block has ops).
    FirstCounterStored,
    /// Every topic counter is updated; the last-block hint and the wake-up are left.
    CountersStored,
}

/// A function a test runs at each commit step (feature `test-hooks`).
#[cfg(feature = "test-hooks")]
pub(crate) type CommitHook = Box<dyn FnMut(CommitStep) + Send>;

#[cfg(any(feature = "writer", test, loom))]
/// The single writer's private state.
pub(crate) struct WriterCore {
    #[cfg(feature = "test-hooks")]
    pub(crate) hook: Option<CommitHook>,
    /// Where the next record goes.
    pos: u64,
    /// Highest tail intent published (may exceed `pos` after a reopen discarded a partial block).
    intent: u64,
    /// Oldest position not yet overwritten.
    head: u64,
    next_seq: u64,
    last_block: Option<u64>,
    /// Id and timestamp of the last committed block.
    last_end: Option<([u8; 20], u32)>,
    topics: Vec<String>,
    /// Committed records per topic (what the header counters say after the last commit).
    committed: Vec<u64>,
    /// Records per topic in the open block.
    pending: Vec<u64>,
    /// Topics with a non-zero `pending` count.
    dirty: Vec<u16>,
    index_next: u64,
    block: Option<OpenBlock>,
}

#[cfg(any(feature = "writer", test, loom))]
impl WriterCore {
    /// A writer for a freshly initialised, empty ring.
    pub(crate) fn fresh() -> WriterCore {
        WriterCore {
            #[cfg(feature = "test-hooks")]
            hook: None,
            pos: 0,
            intent: 0,
            head: 0,
            next_seq: 0,
            last_block: None,
            last_end: None,
            topics: Vec::new(),
            committed: Vec::new(),
            pending: Vec::new(),
            dirty: Vec::new(),
            index_next: 0,
            block: None,
        }
    }

    /// Take over an existing ring: validate every committed record from the head to the tail,
    /// recompute the writer state and discard anything after the tail (an uncommitted block).
    pub(crate) fn recover(ring: &Ring<'_>) -> Result<WriterCore, String> {
        let load = |o| ring.at(o).load(Ordering::Relaxed);
        let (tail, intent, head) = (load(off::TAIL), load(off::TAIL_INTENT), load(off::HEAD));
        let cap = ring.capacity();
        if !(head <= tail
            && tail <= intent
            && intent - head <= cap
            && (head | tail | intent) % 8 == 0)
        {
            return Err(format!(
                "inconsistent positions: head {head}, tail {tail}, tail intent {intent}, capacity {cap}"
            ));
        }
        let topics = ring.topic_names();
        if topics.iter().any(|t| validate_topic(t).is_err()) {
            return Err("topic table holds an invalid name".into());
        }
        let mut counts: Vec<u64> = (0..topics.len())
            .map(|id| load(layout::topic_counter(id)))
            .collect();
        let mut next_seq = None;
        let mut last_block: Option<u64> = None;
        let mut last_end = None;
        let mut pos = head;
        while pos < tail {
            if ring.room(pos) < RECORD_HEADER_LEN as u64 {
                pos += ring.room(pos);
                continue;
            }
            let h = ring.load_record_header(pos);
            let len = ring
                .skip_len(pos, &h)
                .map_err(|e| format!("record at {pos}: {e}"))?;
            if let Some(expected) = next_seq
                && h.seq != expected
            {
                return Err(format!(
                    "record at {pos}: sequence {} where {expected} was due",
                    h.seq
                ));
            }
            if last_block.is_some_and(|b| h.block < b) {
                return Err(format!("record at {pos}: block number goes backwards"));
            }
            match Kind::from_u8(h.kind) {
                Some(Kind::Op) => {
                    let t = usize::from(h.topic);
                    if t >= topics.len() {
                        return Err(format!("record at {pos}: unregistered topic {t}"));
                    }
                    counts[t] = h
                        .topic_seq
                        .checked_add(1)
                        .ok_or("topic sequence overflows")?;
                    next_seq = Some(h.seq.checked_add(1).ok_or("sequence overflows")?);
                }
                Some(Kind::BlockEnd) => {
                    next_seq = Some(h.seq);
                    last_end = Some(pos);
                }
                _ => next_seq = Some(h.seq),
            }
            last_block = Some(h.block);
            pos += len;
        }
        if pos != tail {
            return Err(format!("records overrun the tail ({pos} > {tail})"));
        }
        if tail > 0 && last_end.map(|e| e + RECORD_HEADER_LEN as u64) != Some(tail) {
            return Err("the committed tail does not follow a block end record".into());
        }
        let last_end_header = last_end.map(|e| ring.load_record_header(e));
        Ok(WriterCore {
            #[cfg(feature = "test-hooks")]
            hook: None,
            pos: tail,
            intent,
            head,
            next_seq: next_seq.unwrap_or(0),
            last_block: last_end_header.map(|h| h.block),
            last_end: last_end_header.map(|h| (h.trx_id, h.timestamp)),
            pending: vec![0; topics.len()],
            topics,
            committed: counts,
            dirty: Vec::new(),
            index_next: load(off::INDEX_NEXT),
            block: None,
        })
    }

    #[cfg(feature = "writer")]
    /// After [`WriterCore::recover`]: write the recomputed topic counters and last block back
    /// (a dead writer may have left some of them unwritten).
    pub(crate) fn republish(&mut self, ring: &RingMut<'_>) {
        for (t, &n) in self.committed.iter().enumerate() {
            // Release: SYNC counters (writer side), as in `commit`. A dead writer may have left
            // some counters of its last committed block unwritten; these are the exact values
            // for the committed tail, which readers accept as well as the ones before.
            ring.at(layout::topic_counter(t))
                .store(n, Ordering::Release);
        }
        // Relaxed: a hint.
        ring.at(off::LAST_BLOCK).store(
            self.last_block.map_or(0, |b| b.saturating_add(1)),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn last_block(&self) -> Option<u64> {
        self.last_block
    }

    #[cfg(feature = "writer")]
    /// Id and timestamp of the last committed block.
    pub(crate) fn last_end(&self) -> Option<([u8; 20], u32)> {
        self.last_end
    }

    #[cfg(test)]
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    #[cfg(test)]
    pub(crate) fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Id of topic `name`, registering it if new.
    pub(crate) fn topic(&mut self, ring: &RingMut<'_>, name: &str) -> Result<u16, WriteFault> {
        if let Some(id) = self.topics.iter().position(|t| t == name) {
            return Ok(id as u16);
        }
        validate_topic(name).map_err(|_| WriteFault::TopicName(name.to_string()))?;
        let id = self.topics.len();
        if id >= TOPIC_SLOTS {
            return Err(WriteFault::TopicTableFull);
        }
        let mut bytes = [0u8; TOPIC_NAME_MAX];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let w = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
            // Relaxed: published by the Release store of the count below (SYNC topics).
            ring.at(layout::topic_slot(id) + i * 8)
                .store(w, Ordering::Relaxed);
        }
        // Relaxed: a new slot's counter is zero; counters are published under SYNC counters.
        ring.at(layout::topic_counter(id))
            .store(0, Ordering::Relaxed);
        // SYNC topics (writer side): readers that load this count with Acquire see the name.
        ring.at(off::TOPIC_COUNT)
            .store(id as u64 + 1, Ordering::Release);
        self.topics.push(name.to_string());
        self.committed.push(0);
        self.pending.push(0);
        Ok(id as u16)
    }

    /// Start block `number`; it becomes visible to readers only at [`WriterCore::commit`].
    pub(crate) fn begin(
        &mut self,
        number: u64,
        timestamp: u32,
        id: [u8; 20],
    ) -> Result<(), WriteFault> {
        if self.block.is_some() {
            return Err(WriteFault::BlockOpen);
        }
        if let Some(last) = self.last_block
            && number <= last
        {
            return Err(WriteFault::BlockNotAfter {
                block: number,
                last,
            });
        }
        self.block = Some(OpenBlock {
            number,
            timestamp,
            id,
            start: self.pos,
            bytes: 0,
            ops: 0,
            first_written: false,
        });
        Ok(())
    }

    /// Append one op of the open block.
    pub(crate) fn push(
        &mut self,
        ring: &RingMut<'_>,
        topic: u16,
        meta: &OpMeta,
        payload: &[u8],
    ) -> Result<(), WriteFault> {
        if usize::from(topic) >= self.topics.len() {
            return Err(WriteFault::UnknownTopic(topic));
        }
        if payload.len() as u64 > max_payload(ring.capacity()) || payload.len() > u32::MAX as usize
        {
            return Err(WriteFault::PayloadTooLarge { len: payload.len() });
        }
        let Some(block) = self.block.as_ref() else {
            return Err(WriteFault::NoBlock);
        };
        let t = usize::from(topic);
        let header = RecordHeader {
            len: payload.len() as u32,
            kind: Kind::Op as u8,
            flags: if meta.virtual_op { FLAG_VIRTUAL } else { 0 },
            topic,
            seq: self.next_seq,
            topic_seq: self.committed[t] + self.pending[t],
            block: block.number,
            trx_index: meta.trx_index,
            op_index: meta.op_index,
            timestamp: block.timestamp,
            trx_id: meta.trx_id,
        };
        self.append(ring, header, payload)?;
        self.next_seq += 1;
        if self.pending[t] == 0 {
            self.dirty.push(topic);
        }
        self.pending[t] += 1;
        if let Some(b) = self.block.as_mut() {
            b.ops += 1;
        }
        Ok(())
    }

    /// Drop the open block: its records stay invisible (the tail never covered them) and the
    /// next block overwrites them.
    pub(crate) fn abort(&mut self) {
        if let Some(block) = self.block.take() {
            self.pos = block.start;
            self.next_seq -= block.ops;
            for t in self.dirty.drain(..) {
                self.pending[usize::from(t)] = 0;
            }
        }
    }

    /// Close the open block and make it visible to readers in one step (the tail store).
    pub(crate) fn commit(&mut self, ring: &RingMut<'_>) -> Result<u64, WriteFault> {
        let Some(block) = self.block.as_ref() else {
            return Err(WriteFault::NoBlock);
        };
        let (number, start) = (block.number, block.start);
        let end = RecordHeader {
            len: 0,
            kind: Kind::BlockEnd as u8,
            flags: 0,
            topic: 0,
            seq: self.next_seq,
            topic_seq: block.ops,
            block: number,
            trx_index: 0,
            op_index: 0,
            timestamp: block.timestamp,
            trx_id: block.id,
        };
        self.append(ring, end, &[])?;
        self.block = None;
        self.hook(CommitStep::RecordsWritten);

        let slot = (self.index_next % INDEX_SLOTS as u64) as usize;
        // Relaxed: readers check an index entry against the record it points to (SYNC index is
        // content validation, see `Reader::seek_block`), and the tail store below publishes it.
        ring.at(layout::index_slot(slot))
            .store(number, Ordering::Relaxed);
        ring.at(layout::index_slot(slot) + 8)
            .store(start, Ordering::Relaxed);
        self.index_next = self.index_next.wrapping_add(1);

        // Relaxed: the tail store below publishes it; readers also validate entries by content.
        ring.at(off::INDEX_NEXT)
            .store(self.index_next, Ordering::Relaxed);
        self.hook(CommitStep::IndexWritten);
        // SYNC tail (writer side): Release publishes every record of the block, the block end
        // and the index entry to readers that load the tail with Acquire. This single store is
        // the commit: a crash before it leaves the block invisible, after it the block is whole.
        ring.at(off::TAIL).store(self.pos, Ordering::Release);
        self.hook(CommitStep::TailStored);
        for (i, t) in self.dirty.drain(..).enumerate() {
            let t = usize::from(t);
            self.committed[t] += self.pending[t];
            self.pending[t] = 0;
            // Release: SYNC counters (writer side). After the tail store, so a reader that sees
            // this value (Acquire) and then loads the tail sees this block committed.
            ring.at(layout::topic_counter(t))
                .store(self.committed[t], Ordering::Release);
            if i == 0 {
                let step = CommitStep::FirstCounterStored;
                #[cfg(feature = "test-hooks")]
                if let Some(h) = self.hook.as_mut() {
                    h(step);
                }
                let _ = step;
            }
        }
        self.hook(CommitStep::CountersStored);
        // Relaxed: a hint, never used for positioning.
        ring.at(off::LAST_BLOCK)
            .store(number.saturating_add(1), Ordering::Relaxed);
        self.last_block = Some(number);
        self.last_end = Some((end.trx_id, end.timestamp));
        // Release: a reader woken by this change finds the new tail (it re-reads it with Acquire).
        let notify = ring.at(off::NOTIFY);
        notify.store(
            notify.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Release,
        );
        Ok(number)
    }

    /// Run the test hook, if any, for commit step `step`.
    #[inline]
    fn hook(&mut self, step: CommitStep) {
        #[cfg(feature = "test-hooks")]
        if let Some(h) = self.hook.as_mut() {
            h(step);
        }
        let _ = step;
    }

    /// Reserve room for a record of `len` bytes (padding to the end of the region first if it
    /// does not fit), advance the head past what it will overwrite, raise the tail intent, then
    /// write the record.
    fn append(
        &mut self,
        ring: &RingMut<'_>,
        header: RecordHeader,
        payload: &[u8],
    ) -> Result<(), WriteFault> {
        let cap = ring.capacity();
        let len = record_len(payload.len()) as u64;
        let room = ring.room(self.pos);
        let start = if room < len {
            self.pos + room
        } else {
            self.pos
        };
        let end = start + len;
        let Some(block) = self.block.as_mut() else {
            return Err(WriteFault::NoBlock);
        };
        // Records of one block (its end included, padding excluded) take at most a quarter of
        // the ring; a block wraps at most once, with less than a quarter of padding, so it spans
        // less than half the ring. Whatever an open (or crashed) block overwrites, the last
        // committed block stays whole: recovery finds it, and a lapped reader always has a
        // whole block to resume at. The limit does not depend on where the block starts.
        if block.bytes + len > cap / 4 {
            return Err(WriteFault::BlockTooLarge { limit: cap / 4 });
        }
        block.bytes += len;
        let mut flags = header.flags;
        let mut pad_flags = 0;
        if !block.first_written {
            block.first_written = true;
            if start != self.pos && room >= RECORD_HEADER_LEN as u64 {
                pad_flags = FLAG_BLOCK_START;
            } else {
                flags |= FLAG_BLOCK_START;
            }
        }
        let block_number = block.number;

        // The head moves before the intent so that, even after a crash, head >= intent - cap.
        while self.head + cap < end {
            self.head += self.own_record_len(ring, self.head);
        }
        // Relaxed: published by the Release store of the intent below (SYNC head).
        ring.at(off::HEAD).store(self.head, Ordering::Relaxed);
        if end > self.intent {
            self.intent = end;
            // Release: SYNC head (writer side), the head stored above is visible to a reader
            // that loads this intent with Acquire.
            ring.at(off::TAIL_INTENT).store(end, Ordering::Release);
        }
        // SYNC intent (writer side): a reader that sees any byte stored below sees the intent
        // above after its Acquire fence.
        fence(Ordering::Release);

        if start != self.pos && room >= RECORD_HEADER_LEN as u64 {
            let pad = RecordHeader {
                len: (room - RECORD_HEADER_LEN as u64) as u32,
                kind: Kind::Padding as u8,
                flags: pad_flags,
                seq: header.seq,
                block: block_number,
                timestamp: header.timestamp,
                ..RecordHeader::default()
            };
            self.store_bytes(ring, self.pos, pad.as_bytes());
        }
        let header = RecordHeader { flags, ..header };
        self.store_bytes(ring, start, header.as_bytes());
        self.store_bytes(ring, start + RECORD_HEADER_LEN as u64, payload);
        self.pos = end;
        Ok(())
    }

    /// Length of a record this writer wrote (or validated at recovery).
    fn own_record_len(&self, ring: &Ring<'_>, pos: u64) -> u64 {
        let room = ring.room(pos);
        if room < RECORD_HEADER_LEN as u64 {
            return room;
        }
        let h = ring.load_record_header(pos);
        // The writer's own records are well formed; the fallback keeps the loop finite anyway.
        ring.skip_len(pos, &h).unwrap_or(room)
    }

    /// Store `bytes` at data position `pos` as whole words, zero-padding the last one.
    fn store_bytes(&self, ring: &RingMut<'_>, pos: u64, bytes: &[u8]) {
        let first = ring.data_word(pos);
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            // Relaxed: ordered after the intent by the Release fence in `append` (SYNC intent)
            // and published by the tail store at commit (SYNC tail).
            ring.words
                .get(first + i)
                .store(u64::from_ne_bytes(w), Ordering::Relaxed);
        }
    }

    #[cfg(feature = "writer")]
    /// Record who writes the ring now: a new epoch, our pid, a fresh heartbeat.
    pub(crate) fn claim(&self, ring: &RingMut<'_>, pid: u64, now_ns: u64) -> u64 {
        let epoch = ring.epoch().wrapping_add(1);
        // Relaxed: liveness fields are independent, informational words.
        ring.at(off::EPOCH).store(epoch, Ordering::Relaxed);
        ring.at(off::PID).store(pid, Ordering::Relaxed);
        ring.at(off::HEARTBEAT).store(now_ns, Ordering::Relaxed);
        epoch
    }

    #[cfg(feature = "writer")]
    /// Refresh the heartbeat.
    pub(crate) fn heartbeat(&self, ring: &RingMut<'_>, now_ns: u64) {
        // Relaxed: informational.
        ring.at(off::HEARTBEAT).store(now_ns, Ordering::Relaxed);
    }
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

/// What one step of a reader produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    /// Nothing committed beyond the reader's position.
    Empty,
    /// An op that passes the filter; its payload is in the caller's buffer.
    Op {
        header: RecordHeader,
        index_in_block: u32,
    },
    /// The end of a block (every op of it has been passed).
    BlockEnd(RecordHeader),
    /// The writer overwrote records before the reader got to them; the reader moved to the
    /// oldest whole block still in the ring.
    Lagged { lost: u64, lost_matching: u64 },
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

/// Where `Block(n)` leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seek {
    /// Position of the first record of the first block numbered `n` or more.
    Found(u64),
    /// Block `n` was overwritten; `earliest` is the oldest whole block left.
    Gone { earliest: u64 },
    /// Block `n` is not committed yet; `last` is the last committed block.
    NotYet { last: Option<u64> },
}

/// Topic filter: subscribed names, resolved to ids as the writer registers them.
struct Filter {
    names: Vec<String>,
    bits: [u64; TOPIC_SLOTS.div_ceil(64)],
    /// For subscribed ids: records of that topic before the reader's position.
    expected: Vec<u64>,
}

impl Filter {
    fn contains(&self, id: u16) -> bool {
        let id = usize::from(id);
        id < TOPIC_SLOTS && self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        (0..TOPIC_SLOTS as u16).filter(|&id| self.contains(id))
    }
}

/// Where a lapped subscriber resumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LagPolicy {
    /// At the oldest whole block still in the ring, or, when the writer is overwriting the ring
    /// faster than the reader can count what it lost from there, at a block a safe distance
    /// (half the ring, then less) behind the writer: the fewest records lost.
    #[default]
    Oldest,
    /// At the newest committed block: skip the backlog and catch up with the writer at once.
    Newest,
}

/// A reader's private cursor over the ring.
pub(crate) struct ReaderCore {
    pos: u64,
    tail: u64,
    next_seq: u64,
    topics: Vec<String>,
    filter: Option<Filter>,
    lag: LagPolicy,
    /// Ops of the current block already passed, all topics.
    in_block: u32,
}

/// Give up finding a valid record after this many laps in a row (and try again on the next
/// poll: a reader never fails because the writer is fast).
const MAX_RECOVERY_ATTEMPTS: usize = 64;
/// Lap recovery attempts that keep a safety margin (half the ring, a quarter, ...) behind the
/// writer before resuming at the newest block.
const MARGIN_STEPS: usize = 4;

impl ReaderCore {
    /// A reader at block boundary `pos` (a position returned by the seek functions below),
    /// passing only ops whose topic is in `topics` (all ops for `None`). `Err(Overrun)`: `pos`
    /// was overwritten before the reader could count the records of its topics before it.
    pub(crate) fn new(
        ring: &Ring<'_>,
        pos: u64,
        topics: Option<&[String]>,
    ) -> Result<ReaderCore, ReadFault> {
        let next_seq = seq_at(ring, pos)?.ok_or(ReadFault::Overrun)?;
        let mut reader = ReaderCore {
            pos,
            tail: pos,
            next_seq,
            topics: Vec::new(),
            filter: topics.map(|names| Filter {
                names: names.to_vec(),
                bits: [0; TOPIC_SLOTS.div_ceil(64)],
                expected: vec![0; TOPIC_SLOTS],
            }),
            lag: LagPolicy::Oldest,
            in_block: 0,
        };
        reader.refresh_topics(ring);
        if let Some(f) = reader.filter.as_mut() {
            let ids: Vec<u16> = f.ids().collect();
            let counts = topic_counts_at(ring, &ids, pos)?.ok_or(ReadFault::Overrun)?;
            for (id, n) in counts {
                f.expected[usize::from(id)] = n;
            }
        }
        Ok(reader)
    }

    /// Where to resume after being lapped.
    pub(crate) fn set_lag_policy(&mut self, lag: LagPolicy) {
        self.lag = lag;
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Name of topic `id` as registered in the ring.
    pub(crate) fn topic_name(&self, id: u16) -> &str {
        self.topics.get(usize::from(id)).map_or("", String::as_str)
    }

    /// Re-read the topic table and resolve subscribed names that appeared since.
    fn refresh_topics(&mut self, ring: &Ring<'_>) {
        let names = ring.topic_names();
        if let Some(f) = self.filter.as_mut() {
            for (id, name) in names.iter().enumerate().skip(self.topics.len()) {
                if f.names.iter().any(|n| n == name) {
                    f.bits[id / 64] |= 1 << (id % 64);
                    // A topic registered after the reader's last count has no record before
                    // its position: records of it are appended after the registration.
                    f.expected[id] = 0;
                }
            }
        }
        self.topics = names;
    }

    /// Next record passing the filter, block end, lag report, or nothing new.
    pub(crate) fn poll(&mut self, ring: &Ring<'_>, buf: &mut Vec<u8>) -> Result<Polled, ReadFault> {
        let cap = ring.capacity();
        loop {
            if self.pos >= self.tail {
                self.tail = ring.tail();
                if self.pos == self.tail {
                    return Ok(Polled::Empty);
                }
                if self.pos > self.tail {
                    return Err(corrupt(
                        self.pos,
                        format!("committed tail {} went backwards", self.tail),
                    ));
                }
                check_tail(ring, self.tail)?;
            }
            // Bytes too few for a header at the region's end are skipped before judging a lap:
            // the record that follows starts at the region's beginning.
            let room = ring.room(self.pos);
            if room < RECORD_HEADER_LEN as u64 {
                self.pos += room;
                continue;
            }
            if self.tail - self.pos > cap {
                return self.recover(ring);
            }
            let h = ring.load_record_header(self.pos);
            if ring.overwritten(self.pos) {
                return self.recover(ring);
            }
            let len = ring
                .skip_len(self.pos, &h)
                .map_err(|e| corrupt(self.pos, e))?;
            if self.pos + len > self.tail {
                return Err(corrupt(self.pos, "record runs past the committed tail"));
            }
            if h.seq != self.next_seq {
                return Err(corrupt(
                    self.pos,
                    format!("sequence {} where {} was due", h.seq, self.next_seq),
                ));
            }
            match Kind::from_u8(h.kind) {
                Some(Kind::Op) => {}
                Some(Kind::BlockEnd) => {
                    self.pos += len;
                    self.in_block = 0;
                    return Ok(Polled::BlockEnd(h));
                }
                _ => {
                    self.pos += len;
                    continue;
                }
            }
            if usize::from(h.topic) >= self.topics.len() {
                self.refresh_topics(ring);
                if usize::from(h.topic) >= self.topics.len() {
                    return Err(corrupt(
                        self.pos,
                        format!("unregistered topic id {}", h.topic),
                    ));
                }
            }
            let wanted = self.filter.as_ref().is_none_or(|f| f.contains(h.topic));
            if wanted {
                copy_payload(
                    ring,
                    self.pos + RECORD_HEADER_LEN as u64,
                    h.len as usize,
                    buf,
                );
                if ring.overwritten(self.pos) {
                    return self.recover(ring);
                }
                if let Some(f) = self.filter.as_mut() {
                    f.expected[usize::from(h.topic)] = h.topic_seq.wrapping_add(1);
                }
            }
            let index_in_block = self.in_block;
            self.in_block = self.in_block.wrapping_add(1);
            self.next_seq = (self.next_seq.checked_add(1))
                .ok_or_else(|| corrupt(self.pos, "sequence number overflows"))?;
            self.pos += len;
            if wanted {
                return Ok(Polled::Op {
                    header: h,
                    index_in_block,
                });
            }
        }
    }

    /// Move to a whole block still in the ring (per the lag policy) and count what was lost. A
    /// lap is always reported, also when it lost no op (only block ends or padding were
    /// overwritten): a bot waiting for a block's end must know it will not come.
    ///
    /// A filtered reader counts the records of its topics it lost by walking the record
    /// headers from where it resumes to the tail; a writer overwriting the ring faster than
    /// that walk goes makes it resume closer to the writer (half a ring behind it, then a
    /// quarter, ...), then at the newest block. If even that fails the reader stays where it is
    /// and the next poll tries again: being lapped is never an error.
    fn recover(&mut self, ring: &Ring<'_>) -> Result<Polled, ReadFault> {
        for attempt in 0..MAX_RECOVERY_ATTEMPTS {
            let start = match (self.lag, attempt) {
                (LagPolicy::Oldest, 0) => first_block_start(ring, ring.head())?,
                (LagPolicy::Oldest, a) if a <= MARGIN_STEPS => {
                    let tail = ring.tail();
                    let margin = (ring.capacity() / 2) >> (a - 1);
                    block_start_from(ring, tail.saturating_sub(margin))?
                }
                _ => newest_block_start(ring)?,
            };
            let Some(start) = start else {
                continue;
            };
            let Some(seq) = seq_at(ring, start)? else {
                continue;
            };
            if seq < self.next_seq {
                return Err(corrupt(
                    start,
                    format!("sequence {seq} behind the reader's {}", self.next_seq),
                ));
            }
            let counts = match self.filter {
                Some(_) => {
                    self.refresh_topics(ring);
                    let ids: Vec<u16> = self.filter.iter().flat_map(Filter::ids).collect();
                    match topic_counts_at(ring, &ids, start)? {
                        Some(c) => Some(c),
                        None => continue,
                    }
                }
                None => None,
            };
            let lost = seq - self.next_seq;
            let lost_matching = match (self.filter.as_mut(), counts) {
                (Some(f), Some(counts)) => {
                    let mut n = 0u64;
                    for (id, count) in counts {
                        let e = &mut f.expected[usize::from(id)];
                        n = n.saturating_add(count.saturating_sub(*e));
                        *e = count;
                    }
                    // Never more than all records lost (counters come from shared memory).
                    n.min(lost)
                }
                _ => lost,
            };
            if lost == 0 && start == self.pos {
                return Err(corrupt(
                    start,
                    "lapped, yet the oldest block is the reader's own position",
                ));
            }
            self.pos = start;
            self.tail = start;
            self.next_seq = seq;
            self.in_block = 0;
            return Ok(Polled::Lagged {
                lost,
                lost_matching,
            });
        }
        // Lapped again during every attempt: the reader keeps its place and the next poll
        // (which finds it lapped again) tries anew.
        Ok(Polled::Empty)
    }
}

/// Copy `len` payload bytes at `pos` into `buf` with word-wise atomic loads.
fn copy_payload(ring: &Ring<'_>, pos: u64, len: usize, buf: &mut Vec<u8>) {
    buf.clear();
    buf.reserve(len.next_multiple_of(8));
    let first = ring.data_word(pos);
    for i in 0..len.div_ceil(8) {
        // Relaxed: validated afterwards against the tail intent (SYNC intent).
        buf.extend_from_slice(
            &ring
                .words
                .get(first + i)
                .load(Ordering::Relaxed)
                .to_ne_bytes(),
        );
    }
    buf.truncate(len);
}

/// The global sequence at block boundary `pos` (`None`: overwritten meanwhile).
fn seq_at(ring: &Ring<'_>, pos: u64) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    if pos % 8 != 0 {
        return Err(corrupt(pos, "position not 8-byte aligned"));
    }
    if pos > tail {
        return Err(corrupt(
            pos,
            format!("position beyond the committed tail {tail}"),
        ));
    }
    let at = if pos == tail {
        if tail == 0 {
            return Ok(Some(0));
        }
        tail - RECORD_HEADER_LEN as u64
    } else if ring.room(pos) < RECORD_HEADER_LEN as u64 {
        pos + ring.room(pos)
    } else {
        pos
    };
    let h = ring.load_record_header(at);
    if ring.overwritten(at) {
        return Ok(None);
    }
    if pos == tail && Kind::from_u8(h.kind) != Some(Kind::BlockEnd) {
        return Err(corrupt(
            at,
            "the committed tail does not follow a block end record",
        ));
    }
    Ok(Some(h.seq))
}

/// First block boundary at or after `from` (the tail if no block starts before it).
/// `None`: the records walked were overwritten meanwhile.
fn first_block_start(ring: &Ring<'_>, from: u64) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    if from % 8 != 0 {
        return Err(corrupt(from, "head not 8-byte aligned"));
    }
    let mut pos = from;
    while pos < tail {
        check_walk(ring, from, pos)?;
        let room = ring.room(pos);
        if room < RECORD_HEADER_LEN as u64 {
            pos += room;
            continue;
        }
        let h = ring.load_record_header(pos);
        if ring.overwritten(pos) {
            return Ok(None);
        }
        if h.flags & FLAG_BLOCK_START != 0 {
            return Ok(Some(pos));
        }
        pos += ring.skip_len(pos, &h).map_err(|e| corrupt(pos, e))?;
    }
    Ok(Some(tail.max(from)))
}

/// Records of each topic in `ids` before block boundary `pos`, exact whatever state the writer
/// is (or died) in: `None` if the records needed were overwritten meanwhile.
///
/// SYNC counters (reader side). The writer stores a topic's counter (records of it committed)
/// with Release after the tail store that commits a block of it. Loaded here between two
/// Acquire loads of the tail, `t1` (block `k1` ends there) and `t2` (block `k2`), a counter is
/// at least its value after block `k1 - 1` (those stores precede the store of `t1`) and at most
/// its value after block `k2` (a counter store seen implies its tail store is seen by the load
/// of `t2`). For a topic with no record in blocks `k1..=k2` both are the same: its counter is
/// exact. The records of every other topic are counted by walking from the start of block
/// `k1` (or from `pos` if earlier) to `t2`, where each op carries its sequence within its topic.
/// No lock is involved, so a writer that died (or stopped) in the middle of a commit changes
/// nothing.
fn topic_counts_at(
    ring: &Ring<'_>,
    ids: &[u16],
    pos: u64,
) -> Result<Option<Vec<(u16, u64)>>, ReadFault> {
    let t1 = ring.tail();
    check_tail(ring, t1)?;
    if pos > t1 {
        return Err(corrupt(
            pos,
            format!("position beyond the committed tail {t1}"),
        ));
    }
    if ids.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let counters: Vec<u64> = ids
        .iter()
        // Acquire: SYNC counters, see above.
        .map(|&id| {
            ring.at(layout::topic_counter(usize::from(id)))
                .load(Ordering::Acquire)
        })
        .collect();
    let t2 = ring.tail();
    check_tail(ring, t2)?;
    if t2 < t1 {
        return Err(corrupt(t2, format!("committed tail went back from {t1}")));
    }
    let Some(last_start) = last_block_start(ring, t1)? else {
        return Ok(None);
    };
    let from = pos.min(last_start);
    if t2 - from > ring.capacity() {
        return Ok(None);
    }
    // Per topic: sequence of its first record at or after `pos`, else one past its last record
    // before `pos`.
    let mut after: Vec<Option<u64>> = vec![None; ids.len()];
    let mut before: Vec<Option<u64>> = vec![None; ids.len()];
    let mut p = from;
    while p < t2 {
        let room = ring.room(p);
        if room < RECORD_HEADER_LEN as u64 {
            p += room;
            continue;
        }
        check_walk(ring, from, p)?;
        let h = ring.load_record_header(p);
        if ring.overwritten(p) {
            return Ok(None);
        }
        if Kind::from_u8(h.kind) == Some(Kind::Op)
            && let Some(i) = ids.iter().position(|&id| id == h.topic)
        {
            if p >= pos {
                after[i].get_or_insert(h.topic_seq);
            } else {
                before[i] = Some(h.topic_seq.saturating_add(1));
            }
        }
        p += ring.skip_len(p, &h).map_err(|e| corrupt(p, e))?;
    }
    if p != t2 {
        return Err(corrupt(from, "records run past the committed tail"));
    }
    Ok(Some(
        ids.iter()
            .enumerate()
            .map(|(i, &id)| (id, after[i].or(before[i]).unwrap_or(counters[i])))
            .collect(),
    ))
}

/// Start of the block that ends at committed tail `tail` (`Some(0)` for an empty ring; `None`
/// if it was overwritten meanwhile). Found through the block index, whose entry for that block
/// was written before its commit; if the index does not have it, the oldest block start.
fn last_block_start(ring: &Ring<'_>, tail: u64) -> Result<Option<u64>, ReadFault> {
    if tail == 0 {
        return Ok(Some(0));
    }
    let end = tail - RECORD_HEADER_LEN as u64;
    let h = ring.load_record_header(end);
    if ring.overwritten(end) {
        return Ok(None);
    }
    if Kind::from_u8(h.kind) != Some(Kind::BlockEnd) {
        return Err(corrupt(
            end,
            "the committed tail does not follow a block end record",
        ));
    }
    if let Some(p) = indexed_block_starts(ring, tail)?
        .into_iter()
        .find(|&(block, _)| block == h.block)
        .map(|(_, p)| p)
    {
        return Ok(Some(p));
    }
    match first_block_start(ring, ring.head())? {
        Some(p) if p < tail => Ok(Some(p)),
        _ => Ok(None),
    }
}

/// Valid (block number, start) pairs of the block index below `tail`, newest first. SYNC
/// index (reader side): entries are checked against the records they point to.
fn indexed_block_starts(ring: &Ring<'_>, tail: u64) -> Result<Vec<(u64, u64)>, ReadFault> {
    // Relaxed: the count is stored before the tail store that publishes it (SYNC tail), and
    // each entry is validated by content below anyway.
    let written = ring.at(off::INDEX_NEXT).load(Ordering::Relaxed);
    let mut found = Vec::new();
    for e in (written.saturating_sub(INDEX_SLOTS as u64)..written).rev() {
        let slot = (e % INDEX_SLOTS as u64) as usize;
        // Relaxed: validated below by content.
        let block = ring.at(layout::index_slot(slot)).load(Ordering::Relaxed);
        let pos = ring
            .at(layout::index_slot(slot) + 8)
            .load(Ordering::Relaxed);
        if pos < tail
            && tail - pos <= ring.capacity()
            && pos % 8 == 0
            && block_at(ring, pos)? == Some(block)
        {
            found.push((block, pos));
        }
    }
    Ok(found)
}

/// The oldest block start at or after `from` known to the index (the newest block's start if
/// none is): where a reader resumes to keep a margin behind the writer.
fn block_start_from(ring: &Ring<'_>, from: u64) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    let best = indexed_block_starts(ring, tail)?
        .into_iter()
        .map(|(_, p)| p)
        .filter(|&p| p >= from)
        .min();
    match best {
        Some(p) => Ok(Some(p)),
        None => newest_block_start(ring),
    }
}

/// Start of the newest committed block (the tail of an empty ring).
fn newest_block_start(ring: &Ring<'_>) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    last_block_start(ring, tail)
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

/// Oldest whole block still in the ring (its first record's position), or the tail.
pub(crate) fn seek_earliest(ring: &Ring<'_>) -> Result<u64, ReadFault> {
    for _ in 0..MAX_RECOVERY_ATTEMPTS {
        if let Some(p) = first_block_start(ring, ring.head())? {
            return Ok(p);
        }
    }
    Err(ReadFault::Overrun)
}

/// The committed tail, a block boundary: where a reader that wants only new blocks starts.
pub(crate) fn seek_latest(ring: &Ring<'_>) -> u64 {
    ring.tail()
}

/// Last committed block, read from the block end record before the tail.
pub(crate) fn last_committed_block(ring: &Ring<'_>) -> Result<Option<u64>, ReadFault> {
    for _ in 0..MAX_RECOVERY_ATTEMPTS {
        let tail = ring.tail();
        check_tail(ring, tail)?;
        if tail == 0 {
            return Ok(None);
        }
        let at = tail - RECORD_HEADER_LEN as u64;
        let h = ring.load_record_header(at);
        if ring.overwritten(at) {
            continue;
        }
        if Kind::from_u8(h.kind) != Some(Kind::BlockEnd) {
            return Err(corrupt(
                at,
                "the committed tail does not follow a block end record",
            ));
        }
        return Ok(Some(h.block));
    }
    Err(ReadFault::Overrun)
}

/// Position of the first block numbered `n` or more.
pub(crate) fn seek_block(ring: &Ring<'_>, n: u64) -> Result<Seek, ReadFault> {
    for _ in 0..MAX_RECOVERY_ATTEMPTS {
        let last = last_committed_block(ring)?;
        if last.is_none_or(|last| n > last) {
            return Ok(Seek::NotYet { last });
        }
        let tail = ring.tail();
        let Some(oldest) = first_block_start(ring, ring.head())? else {
            continue;
        };
        if oldest >= tail {
            // Everything before the tail was overwritten while we looked; `last` is gone too.
            continue;
        }
        let Some(oldest_block) = block_at(ring, oldest)? else {
            continue;
        };
        if n < oldest_block {
            return Ok(Seek::Gone {
                earliest: oldest_block,
            });
        }
        // Start from the newest index entry at or before `n` that still checks out.
        // SYNC index (reader side): entries are validated against the records they point to.
        let written = ring.at(off::INDEX_NEXT).load(Ordering::Acquire);
        let mut from = oldest;
        for e in written.saturating_sub(INDEX_SLOTS as u64)..written {
            let slot = (e % INDEX_SLOTS as u64) as usize;
            // Relaxed: validated below by content.
            let block = ring.at(layout::index_slot(slot)).load(Ordering::Relaxed);
            let pos = ring
                .at(layout::index_slot(slot) + 8)
                .load(Ordering::Relaxed);
            if block <= n && pos > from && pos < tail && block_at(ring, pos)? == Some(block) {
                from = pos;
            }
        }
        let mut p = from;
        let mut lapped = false;
        while p < tail {
            let room = ring.room(p);
            if room < RECORD_HEADER_LEN as u64 {
                p += room;
                continue;
            }
            check_walk(ring, from, p)?;
            let h = ring.load_record_header(p);
            if ring.overwritten(p) {
                lapped = true;
                break;
            }
            if h.flags & FLAG_BLOCK_START != 0 && h.block >= n {
                return Ok(Seek::Found(p));
            }
            p += ring.skip_len(p, &h).map_err(|e| corrupt(p, e))?;
        }
        if !lapped {
            return Ok(Seek::Found(tail));
        }
    }
    Err(ReadFault::Overrun)
}

/// Block number of the block starting at `pos` (`None`: not a block start, or overwritten).
fn block_at(ring: &Ring<'_>, pos: u64) -> Result<Option<u64>, ReadFault> {
    let at = if ring.room(pos) < RECORD_HEADER_LEN as u64 {
        pos + ring.room(pos)
    } else {
        pos
    };
    if at % 8 != 0 {
        return Ok(None);
    }
    let h = ring.load_record_header(at);
    if ring.overwritten(at) || h.flags & FLAG_BLOCK_START == 0 {
        return Ok(None);
    }
    Ok(Some(h.block))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A heap ring with its writer, for driving the protocol in tests.
    pub(crate) struct Fixture {
        pub mem: HeapMemory,
        pub cap: u64,
        pub writer: WriterCore,
    }

    impl Fixture {
        pub fn new(cap: u64) -> Fixture {
            Fixture {
                mem: HeapMemory::new(cap),
                cap,
                writer: WriterCore::fresh(),
            }
        }
        pub fn ring(&self) -> Ring<'_> {
            Ring::new(self.mem.words(), self.cap)
        }
        /// Write block `n` with one op per payload, topics cycling through `topics`.
        pub fn block(&mut self, n: u64, topics: &[&str], payloads: &[Vec<u8>]) {
            let ring = RingMut::new(self.mem.words_mut(), self.cap);
            self.writer.begin(n, n as u32, [n as u8; 20]).unwrap();
            for (i, p) in payloads.iter().enumerate() {
                let t = self.writer.topic(&ring, topics[i % topics.len()]).unwrap();
                let meta = OpMeta {
                    trx_index: i as u32,
                    op_index: 0,
                    trx_id: [1; 20],
                    virtual_op: false,
                };
                self.writer.push(&ring, t, &meta, p).unwrap();
            }
            self.writer.commit(&ring).unwrap();
        }
    }

    fn drain(ring: &Ring<'_>, r: &mut ReaderCore) -> Vec<Result<(u64, Vec<u8>), Polled>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match r.poll(ring, &mut buf).unwrap() {
                Polled::Empty => return out,
                Polled::Op { header, .. } => out.push(Ok((header.block, buf.clone()))),
                Polled::BlockEnd(_) => {}
                lag => out.push(Err(lag)),
            }
        }
    }

    #[test]
    fn reader_sees_committed_blocks_only() {
        let mut f = Fixture::new(4096);
        let mut r = ReaderCore::new(&f.ring(), 0, None).unwrap();
        assert!(drain(&f.ring(), &mut r).is_empty());
        f.block(10, &["vote"], &[b"{\"a\":1}".to_vec(), b"{}".to_vec()]);
        let ring = RingMut::new(f.mem.words_mut(), f.cap);
        f.writer.begin(11, 0, [0; 20]).unwrap();
        f.writer
            .push(&ring, 0, &OpMeta::default(), b"partial")
            .unwrap();
        let got = drain(&f.ring(), &mut r);
        assert_eq!(
            got,
            vec![Ok((10, b"{\"a\":1}".to_vec())), Ok((10, b"{}".to_vec()))]
        );
        f.writer.abort();
        f.block(11, &["vote"], &[b"x".to_vec()]);
        assert_eq!(drain(&f.ring(), &mut r), vec![Ok((11, b"x".to_vec()))]);
    }

    #[test]
    fn lapped_reader_gets_exact_loss_then_oldest_whole_block() {
        let mut f = Fixture::new(4096);
        let mut r = ReaderCore::new(&f.ring(), 0, None).unwrap();
        for n in 1..=100 {
            f.block(n, &["vote", "comment"], &[vec![7; 100], vec![8; 30]]);
        }
        let got = drain(&f.ring(), &mut r);
        let Err(Polled::Lagged {
            lost,
            lost_matching,
        }) = got[0]
        else {
            panic!("{got:?}")
        };
        assert_eq!(lost, lost_matching);
        let delivered = got.len() as u64 - 1;
        assert_eq!(lost + delivered, 200);
        let first_block = got[1].as_ref().unwrap().0;
        assert_eq!(lost, (first_block - 1) * 2);
    }

    #[test]
    fn filtered_reader_counts_only_its_topics() {
        let mut f = Fixture::new(4096);
        let mut r = ReaderCore::new(&f.ring(), 0, Some(&["comment".to_string()])).unwrap();
        for n in 1..=100 {
            f.block(
                n,
                &["vote", "vote", "comment"],
                &[vec![7; 50], vec![7; 50], vec![8; 30]],
            );
        }
        let got = drain(&f.ring(), &mut r);
        let Err(Polled::Lagged {
            lost,
            lost_matching,
        }) = got[0]
        else {
            panic!("{got:?}")
        };
        let delivered = got.len() as u64 - 1;
        assert_eq!(lost_matching + delivered, 100);
        assert_eq!(lost, lost_matching * 3);
    }

    #[test]
    fn seek_block_finds_sparse_blocks_and_reports_bounds() {
        let mut f = Fixture::new(1 << 16);
        for n in (10..200).step_by(10) {
            f.block(n, &["vote"], &[vec![1; 40]]);
        }
        let ring = f.ring();
        assert_eq!(seek_block(&ring, 300), Ok(Seek::NotYet { last: Some(190) }));
        let Ok(Seek::Found(p)) = seek_block(&ring, 55) else {
            panic!()
        };
        let mut r = ReaderCore::new(&ring, p, None).unwrap();
        assert_eq!(drain(&ring, &mut r)[0], Ok((60, vec![1; 40])));
        for n in 200..2000 {
            f.block(n, &["vote"], &[vec![1; 40]]);
        }
        let ring = f.ring();
        let Ok(Seek::Gone { earliest }) = seek_block(&ring, 55) else {
            panic!()
        };
        let Ok(Seek::Found(p)) = seek_block(&ring, earliest) else {
            panic!()
        };
        assert_eq!(p, seek_earliest(&ring).unwrap());
        assert!(earliest > 1500 && earliest < 1990, "{earliest}");
        let Ok(Seek::Found(p)) = seek_block(&ring, earliest + 10) else {
            panic!()
        };
        let mut r = ReaderCore::new(&ring, p, None).unwrap();
        let got = drain(&ring, &mut r);
        assert_eq!(got.len() as u64, 1999 - (earliest + 10) + 1);
        assert_eq!(got[0], Ok((earliest + 10, vec![1; 40])));
    }

    #[test]
    fn recover_resumes_after_the_last_committed_block() {
        let mut f = Fixture::new(4096);
        for n in 1..=50 {
            f.block(n, &["vote", "comment"], &[vec![1; 60], vec![2; 10]]);
        }
        let ring = RingMut::new(f.mem.words_mut(), f.cap);
        f.writer.begin(51, 0, [0; 20]).unwrap();
        f.writer
            .push(&ring, 0, &OpMeta::default(), &[9; 500])
            .unwrap();
        // The writer dies here; a new one takes over.
        let mut w = WriterCore::recover(&f.ring()).unwrap();
        assert_eq!(w.last_block(), Some(50));
        assert_eq!(w.next_seq(), 100);
        assert_eq!(w.topics(), ["vote", "comment"]);
        w.begin(51, 0, [0; 20]).unwrap();
        w.push(&ring, 1, &OpMeta::default(), b"c").unwrap();
        w.commit(&ring).unwrap();
        let mut r = ReaderCore::new(&ring, seek_earliest(&ring).unwrap(), None).unwrap();
        let got = drain(&ring, &mut r);
        assert_eq!(got.last(), Some(&Ok((51, b"c".to_vec()))));
        assert!(got.iter().all(|g| g.is_ok()));
    }

    #[test]
    fn a_payload_longer_than_the_writer_writes_is_corrupt_not_copied() {
        let mut f = Fixture::new(4096);
        f.block(1, &["vote"], &[vec![1; 40]]);
        let mut r = ReaderCore::new(&f.ring(), 0, None).unwrap();
        // The op's length word (the low half of its first word), well inside the region.
        let max = max_payload(f.cap) as u32;
        let first = f.ring().data_word(0);
        let w = f.mem.words_mut().get(first);
        let mut bytes = w.load(Ordering::Relaxed).to_ne_bytes();
        bytes[..4].copy_from_slice(&(max + 8).to_ne_bytes());
        w.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
        let mut buf = Vec::new();
        match r.poll(&f.ring(), &mut buf) {
            Err(ReadFault::Corrupt { pos: 0, reason }) => {
                assert!(reason.contains("maximum"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(buf.capacity() < max as usize, "nothing was copied");
    }
}

/// Loom models of the protocol: `RUSTFLAGS="--cfg loom" cargo test -p consumer-sdk --lib
/// --release loom`. Loom explores thread interleavings and the weak-memory outcomes the
/// orderings allow, so a missing Release/Acquire shows up as a torn or partial read here.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The payload of op `seq`: `len` bytes that differ from those of every other op.
    fn payload(seq: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| (seq * 31 + i) as u8 ^ 0x5A)
            .collect()
    }

    /// The writer publishes `blocks` blocks of `per_block` ops (payload = the op's sequence);
    /// the reader returns what it received until it has passed the last block end.
    /// The first `before` blocks are written before the reader and writer threads run (to
    /// keep the model small); the rest concurrently with the reader.
    fn run(cap: u64, blocks: u64, before: u64, per_block: u64, len: usize) -> Vec<Polled> {
        let mem = Arc::new(HeapMemory::new(cap));
        let ring = Ring::new(mem.words(), cap);
        let mut w = WriterCore::fresh();
        let topic = w
            .topic(&RingMut::new(mem.words_mut(), cap), "vote")
            .unwrap();
        let mut seq = 0;
        let mut write = move |ring: &RingMut<'_>, b: u64| {
            w.begin(b, 0, [0; 20]).unwrap();
            for _ in 0..per_block {
                w.push(ring, topic, &OpMeta::default(), &payload(seq, len))
                    .unwrap();
                seq += 1;
            }
            w.commit(ring).unwrap();
        };
        for b in 1..=before {
            write(&RingMut::new(mem.words_mut(), cap), b);
        }
        // Positioned before the writer goes on, as a subscriber is before it reads.
        let mut r = ReaderCore::new(&ring, 0, None).unwrap();
        let wmem = mem.clone();
        let writer = thread::spawn(move || {
            let ring = RingMut::new(wmem.words_mut(), cap);
            for b in before + 1..=blocks {
                write(&ring, b);
            }
        });
        let mut got = Vec::new();
        let mut buf = Vec::new();
        loop {
            match r.poll(&ring, &mut buf).unwrap() {
                Polled::Empty => thread::yield_now(),
                Polled::Op { header, .. } => {
                    assert_eq!(
                        buf,
                        payload(header.seq, len),
                        "torn or stale payload for seq {}",
                        header.seq
                    );
                    got.push(Polled::Op {
                        header,
                        index_in_block: 0,
                    });
                }
                end @ Polled::BlockEnd(h) => {
                    got.push(end);
                    if h.block == blocks {
                        break;
                    }
                }
                lag => got.push(lag),
            }
        }
        writer.join().unwrap();
        got
    }

    /// Exploration budget of one model, in seconds. Each model completes in a few seconds with
    /// three preemptions (about 11 s for all three, measured on a shared, busy 2-core machine),
    /// so three models stay well inside CI's time even on a slower runner.
    /// `RING_LOOM_BUDGET_SECS` changes it.
    const BUDGET_SECS: u64 = 60;

    /// Explore `f` exhaustively: every interleaving with at most three preemptions (a writer
    /// preempted between any of its stores while the reader runs, and vice versa;
    /// `LOOM_MAX_PREEMPTIONS` changes it) and every value the memory model lets each load
    /// return.
    /// A model that has not finished within its budget fails: a silently partial exploration
    /// would pass as proof. Loom's own duration and permutation caps end the exploration quietly,
    /// so they are switched off and the budget is checked at the start of every iteration.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let budget = std::env::var("RING_LOOM_BUDGET_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(BUDGET_SECS);
        model_within(std::time::Duration::from_secs(budget), f);
    }

    fn model_within(budget: std::time::Duration, f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = builder.preemption_bound.or(Some(3));
        builder.max_duration = None;
        builder.max_permutations = None;
        builder.max_branches = 50_000;
        let start = std::time::Instant::now();
        let iterations = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = iterations.clone();
        builder.check(move || {
            // Relaxed: a plain counter of this model's iterations, read on this thread.
            let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert!(
                start.elapsed() < budget,
                "loom model ran out of its {budget:?} budget after {i} iterations: the \
                 exploration is incomplete (raise RING_LOOM_BUDGET_SECS or shrink the model)"
            );
            f();
        });
        eprintln!(
            "loom model explored completely: {} iterations in {:.1?}",
            iterations.load(std::sync::atomic::Ordering::Relaxed),
            start.elapsed()
        );
    }

    #[test]
    #[should_panic(expected = "ran out of its")]
    fn loom_a_model_out_of_budget_fails() {
        model_within(std::time::Duration::ZERO, || {
            let _ = run(4096, 1, 0, 1, 8);
        });
    }

    #[test]
    fn loom_whole_blocks_in_order() {
        model(|| {
            let got = run(4096, 2, 0, 1, 16);
            let seqs: Vec<u64> = got
                .iter()
                .filter_map(|p| match p {
                    Polled::Op { header, .. } => Some(header.seq),
                    _ => None,
                })
                .collect();
            assert_eq!(seqs, [0, 1]);
            // Block 1's op comes before its end, which comes before block 2's op.
            assert!(matches!(got[1], Polled::BlockEnd(h) if h.block == 1 && h.topic_seq == 1));
        });
    }

    #[test]
    fn loom_lapped_reader_never_sees_torn_payloads_and_counts_exactly() {
        model(|| {
            // A 1024-byte ring. Block 1 is one op with a 16-byte payload (bytes 0..80) and its
            // end (80..144); blocks 2 to 6 fill the ring exactly. The op of block 7 (the same
            // shape) is pushed while the reader copies block 1: it lands on block 1's op, word
            // for word (its commit, which needs no more proof here, is left out to keep the
            // model small enough to explore completely). The reader must either deliver block
            // 1's payload intact or report the lap, and the first op after a lap must be exactly
            // the one the report says.
            let cap = 1024;
            let mem = Arc::new(HeapMemory::new(cap));
            let mut w = WriterCore::fresh();
            let ring = RingMut::new(mem.words_mut(), cap);
            let topic = w.topic(&ring, "vote").unwrap();
            let sizes = [16, 48, 48, 48, 48, 48, 16];
            let mut write = move |ring: &RingMut<'_>, b: u64, commit: bool| {
                w.begin(b, 0, [0; 20]).unwrap();
                let len = sizes[b as usize - 1];
                w.push(ring, topic, &OpMeta::default(), &payload(b - 1, len))
                    .unwrap();
                if commit {
                    w.commit(ring).unwrap();
                }
                w.pos
            };
            for b in 1..=6 {
                write(&ring, b, true);
            }
            assert_eq!(ring.tail(), 1024);
            let ring = Ring::new(mem.words(), cap);
            let mut r = ReaderCore::new(&ring, 0, None).unwrap();
            let wmem = mem.clone();
            let writer =
                thread::spawn(move || write(&RingMut::new(wmem.words_mut(), cap), 7, false));
            let mut buf = Vec::new();
            let mut expected = 0;
            loop {
                match r.poll(&ring, &mut buf).unwrap() {
                    Polled::Op { header, .. } => {
                        assert_eq!(header.seq, expected, "op after {expected} accounted for");
                        let len = sizes[header.seq as usize];
                        assert_eq!(buf, payload(header.seq, len), "torn payload");
                        break;
                    }
                    Polled::Lagged {
                        lost,
                        lost_matching,
                    } => {
                        assert_eq!((expected, lost_matching), (0, lost), "one lap, exact");
                        assert!(lost >= 1);
                        expected = lost;
                    }
                    Polled::BlockEnd(_) => unreachable!("an op comes first"),
                    Polled::Empty => thread::yield_now(),
                }
            }
            assert_eq!(writer.join().unwrap(), 1024 + 80);
        });
    }

    #[test]
    fn loom_filtered_reader_counts_exactly_while_a_commit_runs() {
        model(|| {
            // Block 1 has an op of `b`, block 2 one of `a`; block 3, committed while a reader
            // filtered on `b` positions itself at the tail, has one of `b`. The reader counts
            // `b` from block 2 on by records and takes the rest from `b`'s counter: whatever
            // tail it finds and whatever counter value it loads, its count of `b` records
            // before its position must be the truth there.
            let cap = 4096;
            let mem = Arc::new(HeapMemory::new(cap));
            let mut w = WriterCore::fresh();
            let ring = RingMut::new(mem.words_mut(), cap);
            let (a, b) = (w.topic(&ring, "a").unwrap(), w.topic(&ring, "b").unwrap());
            for (n, t) in [(1, b), (2, a)] {
                w.begin(n, 0, [0; 20]).unwrap();
                w.push(&ring, t, &OpMeta::default(), &payload(n, 8))
                    .unwrap();
                w.commit(&ring).unwrap();
            }
            let end_of_2 = w.pos;
            let wmem = mem.clone();
            let writer = thread::spawn(move || {
                let ring = RingMut::new(wmem.words_mut(), cap);
                w.begin(3, 0, [0; 20]).unwrap();
                w.push(&ring, b, &OpMeta::default(), &payload(3, 8))
                    .unwrap();
                w.commit(&ring).unwrap();
            });
            let ring = Ring::new(mem.words(), cap);
            let pos = seek_latest(&ring);
            let r = ReaderCore::new(&ring, pos, Some(&["b".to_string()])).unwrap();
            let counted = r.filter.as_ref().unwrap().expected[usize::from(b)];
            let truth = if pos == end_of_2 { 1 } else { 2 };
            assert_eq!(counted, truth, "records of b before position {pos}");
            writer.join().unwrap();
        });
    }
}
