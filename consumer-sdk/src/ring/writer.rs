//! The single writer: appending records, committing blocks, taking over a ring a dead writer
//! left. Every store into the ring is here; the orderings pair with the reader's loads in
//! `reader.rs` and `seek.rs` under the same `SYNC` labels.

use super::{FLAG_BLOCK_START, OpMeta, Ring, RingMut, max_payload, validate_topic};
use crate::layout::{
    self, FLAG_VIRTUAL, INDEX_SLOTS, Kind, RECORD_HEADER_LEN, RecordHeader, TOPIC_NAME_MAX,
    TOPIC_SLOTS, off, record_len,
};
use crate::sync::{Ordering, fence};
use zerocopy::IntoBytes;

#[cfg(any(feature = "writer", test, loom))]
/// Why the writer refused an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteFault {
    NoBlock,
    BlockOpen,
    BlockNotAfter {
        block: u64,
        last: u64,
    },
    ForkWithoutBlocks,
    ForkRange {
        block: u64,
        orphaned: u64,
        last: u64,
    },
    ForkLastId {
        block: u64,
        given: [u8; 20],
        last: [u8; 20],
    },
    BlockTooLarge {
        limit: u64,
    },
    PayloadTooLarge {
        len: usize,
    },
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
    pub(super) pos: u64,
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
    /// Where the next record goes: bytes written since the ring was created.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

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
            // Only a fork notice takes the numbers back, to the first block it orphans.
            if last_block.is_some_and(|b| h.block < b) && Kind::from_u8(h.kind) != Some(Kind::Fork)
            {
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
                Some(Kind::Fork) => {
                    // It orphans the blocks from its own number through the last one before it.
                    // Relaxed: the writer's lock is held and no other writer runs; these
                    // committed words are only read, like the headers above.
                    let word = |i: usize| {
                        ring.words
                            .get(ring.data_word(pos) + 8 + i)
                            .load(Ordering::Relaxed)
                    };
                    let (first, last) = (word(0), word(1));
                    let fits = first == h.block
                        && last_block.is_none_or(|b| last == b)
                        && first <= last
                        && h.len as usize == layout::fork_payload_len(last - first + 1);
                    if !fits {
                        return Err(format!(
                            "record at {pos}: fork notice for blocks {first}..={last} in block {} after block {}",
                            h.block,
                            last_block.map_or("none".to_owned(), |b| b.to_string())
                        ));
                    }
                    next_seq = Some(h.seq);
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
        if let Some(last) = self.last_block
            && number <= last
        {
            return Err(WriteFault::BlockNotAfter {
                block: number,
                last,
            });
        }
        self.open_block(number, timestamp, id)
    }

    #[cfg(feature = "writer")]
    /// Start block `number` of another branch, whose first record is a fork notice: the
    /// committed blocks `number..=last` (their ids `orphaned`, oldest first) were orphaned, and
    /// `previous` is the id of block `number - 1`, which both branches share. The caller
    /// checks the ids against the ring; here the numbers are checked.
    pub(crate) fn begin_fork(
        &mut self,
        ring: &RingMut<'_>,
        number: u64,
        timestamp: u32,
        id: [u8; 20],
        previous: [u8; 20],
        orphaned: &[[u8; 20]],
    ) -> Result<(), WriteFault> {
        let last = self.last_block.ok_or(WriteFault::ForkWithoutBlocks)?;
        let count = orphaned.len() as u64;
        if count == 0
            || count > layout::FORK_MAX_BLOCKS
            || number.checked_add(count - 1) != Some(last)
        {
            return Err(WriteFault::ForkRange {
                block: number,
                orphaned: count,
                last,
            });
        }
        if let (Some((last_id, _)), Some(&newest)) = (self.last_end, orphaned.last())
            && newest != last_id
        {
            return Err(WriteFault::ForkLastId {
                block: number,
                given: newest,
                last: last_id,
            });
        }
        self.open_block(number, timestamp, id)?;
        let mut payload = Vec::with_capacity(layout::fork_payload_len(count));
        payload.extend_from_slice(&number.to_ne_bytes());
        payload.extend_from_slice(&last.to_ne_bytes());
        for orphan in orphaned {
            payload.extend_from_slice(orphan);
        }
        let header = RecordHeader {
            len: payload.len() as u32,
            kind: Kind::Fork as u8,
            seq: self.next_seq,
            block: number,
            timestamp,
            trx_id: previous,
            ..RecordHeader::default()
        };
        let written = self.append(ring, header, &payload);
        if written.is_err() {
            self.abort();
        }
        written
    }

    fn open_block(&mut self, number: u64, timestamp: u32, id: [u8; 20]) -> Result<(), WriteFault> {
        if self.block.is_some() {
            return Err(WriteFault::BlockOpen);
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

    #[cfg(feature = "writer")]
    /// Append a gap notice (blocks `from..=to` lost upstream, `ops` ops) to the open block; the
    /// caller checks that it comes before the block's first op and that the range is sound.
    pub(crate) fn gap(
        &mut self,
        ring: &RingMut<'_>,
        from: u64,
        to: u64,
        ops: u64,
    ) -> Result<(), WriteFault> {
        let Some(block) = self.block.as_ref() else {
            return Err(WriteFault::NoBlock);
        };
        let header = RecordHeader {
            len: layout::GAP_PAYLOAD_LEN as u32,
            kind: Kind::Gap as u8,
            seq: self.next_seq,
            block: block.number,
            timestamp: block.timestamp,
            ..RecordHeader::default()
        };
        let mut payload = [0u8; layout::GAP_PAYLOAD_LEN];
        for (chunk, v) in payload.chunks_exact_mut(8).zip([from, to, ops]) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        self.append(ring, header, &payload)
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
        let whole = bytes.chunks_exact(8);
        let rest = whole.remainder();
        let mut i = first;
        // Whole words without a call per word (a variable-length copy into a scratch word would
        // be one `memcpy` call each).
        for chunk in whole {
            let w = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
            // Relaxed: ordered after the intent by the Release fence in `append` (SYNC intent)
            // and published by the tail store at commit (SYNC tail).
            ring.words.get(i).store(w, Ordering::Relaxed);
            i += 1;
        }
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // Relaxed: as above.
            ring.words
                .get(i)
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
