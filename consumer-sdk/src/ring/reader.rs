//! A reader's private cursor: copy a record out, validate the copy against the writer's tail
//! intent, follow the committed tail, and recover from a lap with exact loss counts.

use super::seek::{
    block_start_from, first_block_start, last_block_start, newest_block_start, seq_at,
};
use super::{ReadFault, Ring, check_tail, check_walk, corrupt};
use crate::layout::{self, Kind, READ_BATCH_BYTES, RECORD_HEADER_LEN, RecordHeader, TOPIC_SLOTS};
use crate::sync::Ordering;
use zerocopy::{FromBytes, IntoBytes};

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
    /// A gap notice: blocks `from..=to` were lost upstream, `ops` ops (or
    /// [`layout::GAP_OPS_UNKNOWN`]); it opens block `header.block`.
    Gap {
        header: RecordHeader,
        from: u64,
        to: u64,
        ops: u64,
    },
    /// A fork notice: the blocks `header.block..=last` read before were orphaned; their ids
    /// are in the payload, after two words. It opens block `header.block` of the new branch.
    Fork { header: RecordHeader, last: u64 },
    /// The writer overwrote records before the reader got to them; the reader moved to the
    /// oldest whole block still in the ring.
    Lagged { lost: u64, lost_matching: u64 },
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

/// Topic filter: subscribed names, resolved to ids as the writer registers them.
pub(super) struct Filter {
    names: Vec<String>,
    bits: [u64; TOPIC_SLOTS.div_ceil(64)],
    /// For subscribed ids: records of that topic before the reader's position.
    pub(super) expected: Vec<u64>,
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

/// A reader's private cursor over the ring.
pub(crate) struct ReaderCore {
    pos: u64,
    tail: u64,
    /// A validated copy of the ring's bytes `batch_pos..batch_end`.
    ///
    /// SYNC batch: a run of whole committed records is copied with relaxed word loads and
    /// validated with one fence and one intent load ([`Ring::overwritten`] of its first byte:
    /// every later byte of the run is overwritten only after that one). Records are then parsed
    /// from the private copy, so a reader draining a backlog touches the writer's cache lines
    /// once per run instead of twice per record. A copy once validated stays what the writer
    /// committed at those positions, so it is delivered even if the writer overwrites the ring
    /// meanwhile; the lap shows at the next run.
    batch: Vec<u64>,
    batch_pos: u64,
    batch_end: u64,
    /// Bytes of the last op's or gap notice's payload within `batch`.
    payload: std::ops::Range<usize>,
    next_seq: u64,
    topics: Vec<String>,
    pub(super) filter: Option<Filter>,
    lag: LagPolicy,
    /// Ops of the current block already passed, all topics.
    in_block: u32,
}

/// Native `u64` number `i` of a notice's payload (0 past its end; lengths are checked apart).
fn payload_word(payload: &[u8], i: usize) -> u64 {
    payload
        .get(i * 8..i * 8 + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
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
            batch: Vec::new(),
            batch_pos: pos,
            batch_end: pos,
            payload: 0..0,
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

    /// The payload of the op or gap notice the last [`ReaderCore::poll`] returned: a private,
    /// validated copy (never live ring memory).
    pub(crate) fn payload(&self) -> &[u8] {
        self.batch
            .as_bytes()
            .get(self.payload.clone())
            .unwrap_or_default()
    }

    /// Bytes the reader has allocated for its copies (tests: nothing unbounded is copied).
    #[cfg(test)]
    pub(crate) fn copy_capacity(&self) -> usize {
        self.batch.capacity() * 8
    }

    /// Whether the validated copy holds the ring's bytes `pos..pos + len`.
    fn copied(&self, pos: u64, len: u64) -> bool {
        pos >= self.batch_pos && pos + len <= self.batch_end
    }

    /// Copy the committed run from the reader's position (at least `need` bytes, at most
    /// [`READ_BATCH_BYTES`] unless `need` is more, never past the tail or the region's end) and
    /// validate it (SYNC batch). `false`: the position was overwritten meanwhile.
    fn refill(&mut self, ring: &Ring<'_>, need: u64) -> Result<bool, ReadFault> {
        // The freshest tail: the longest run.
        let tail = ring.tail();
        if tail < self.tail {
            return Err(corrupt(
                self.pos,
                format!("committed tail went back from {} to {tail}", self.tail),
            ));
        }
        check_tail(ring, tail)?;
        self.tail = tail;
        let start = self.pos;
        let end = (start + READ_BATCH_BYTES.max(need))
            .min(tail)
            .min(start + ring.room(start));
        let words = ((end - start) / 8) as usize;
        self.batch.clear();
        self.batch.reserve(words);
        let first = ring.data_word(start);
        let src = ring.words;
        // Relaxed: validated below against the tail intent (SYNC batch).
        self.batch
            .extend((first..first + words).map(|i| src.get(i).load(Ordering::Relaxed)));
        self.batch_pos = start;
        self.batch_end = end;
        if ring.overwritten(start) {
            self.batch_end = start;
            return Ok(false);
        }
        Ok(true)
    }

    /// The copy of the record header at `pos` (which [`ReaderCore::copied`] holds).
    fn copied_header(&self, pos: u64) -> RecordHeader {
        let at = (pos - self.batch_pos) as usize;
        let bytes = &self.batch.as_bytes()[at..at + RECORD_HEADER_LEN];
        RecordHeader::read_from_bytes(bytes).unwrap_or_else(|_| unreachable_header())
    }

    /// Byte range of the payload of the record at `pos` within the copy.
    fn copied_payload(&self, pos: u64, len: u32) -> std::ops::Range<usize> {
        let at = (pos - self.batch_pos) as usize + RECORD_HEADER_LEN;
        at..at + len as usize
    }

    /// Next record passing the filter, block end, lag report, or nothing new. An op's or gap
    /// notice's payload is then in [`ReaderCore::payload`].
    pub(crate) fn poll(&mut self, ring: &Ring<'_>) -> Result<Polled, ReadFault> {
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
            // A header the validated copy holds is read from it; any other is judged here.
            if !self.copied(self.pos, RECORD_HEADER_LEN as u64) {
                if self.tail - self.pos > cap {
                    return self.recover(ring);
                }
                if self.tail - self.pos < RECORD_HEADER_LEN as u64 {
                    return Err(corrupt(self.pos, "record runs past the committed tail"));
                }
                if !self.refill(ring, RECORD_HEADER_LEN as u64)? {
                    return self.recover(ring);
                }
            }
            let h = self.copied_header(self.pos);
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
                Some(Kind::Gap) => {
                    // Every reader gets it, whatever its topics.
                    if !self.copied(self.pos, len) && !self.refill(ring, len)? {
                        return self.recover(ring);
                    }
                    self.payload = self.copied_payload(self.pos, h.len);
                    let payload = self.payload();
                    let (from, to, ops) = (
                        payload_word(payload, 0),
                        payload_word(payload, 1),
                        payload_word(payload, 2),
                    );
                    if from > to || to >= h.block {
                        return Err(corrupt(
                            self.pos,
                            format!("gap notice for blocks {from}..={to} in block {}", h.block),
                        ));
                    }
                    self.pos += len;
                    return Ok(Polled::Gap {
                        header: h,
                        from,
                        to,
                        ops,
                    });
                }
                Some(Kind::Fork) => {
                    // Every reader gets it, whatever its topics.
                    if !self.copied(self.pos, len) && !self.refill(ring, len)? {
                        return self.recover(ring);
                    }
                    self.payload = self.copied_payload(self.pos, h.len);
                    let payload = self.payload();
                    let (first, last) = (payload_word(payload, 0), payload_word(payload, 1));
                    let sound = first == h.block
                        && first <= last
                        && last - first < layout::FORK_MAX_BLOCKS
                        && payload.len() == layout::fork_payload_len(last - first + 1);
                    if !sound {
                        return Err(corrupt(
                            self.pos,
                            format!(
                                "fork notice for blocks {first}..={last} ({} bytes) in block {}",
                                payload.len(),
                                h.block
                            ),
                        ));
                    }
                    // The ids follow the two words.
                    self.payload.start += 16;
                    self.pos += len;
                    return Ok(Polled::Fork { header: h, last });
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
                // Copied whole (padding and ops of other topics never are): copy again from its
                // start if the run holds only a part of it.
                if !self.copied(self.pos, len) && !self.refill(ring, len)? {
                    return self.recover(ring);
                }
                self.payload = self.copied_payload(self.pos, h.len);
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
            self.batch_end = self.batch_pos;
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

#[cold]
fn unreachable_header() -> ! {
    // The slice is exactly RECORD_HEADER_LEN bytes, the header's size (asserted in layout.rs).
    unreachable!("record header is RECORD_HEADER_LEN bytes")
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
