//! The ring against a model of its documented semantics.
//!
//! The model keeps every committed block with the byte positions its records occupy (records
//! are a 64-byte header plus the payload rounded up to 8 bytes, never straddle the end of the
//! region, and the first record of a block is flagged, or the padding before it when at least a
//! header fits there). From those positions and the highest end the writer ever reserved (the
//! tail intent) it knows which blocks are still whole, so it can say exactly what each
//! subscriber must receive next: the next op of its topics, a block end, nothing, or one
//! `Lagged { lost, lost_matching }` counting what it skipped, followed by the oldest whole block.

use crate::TempRing;
use consumer_sdk::layout::{self, RECORD_HEADER_LEN};
use consumer_sdk::{
    CreateOptions, Cursor, CursorFile, Error, Event, OpMeta, ProducerStatus, Publisher, RecvError,
    Start, Subscriber, WriteError,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

const HDR: u64 = RECORD_HEADER_LEN as u64;
/// Bytes a reader copies out and validates in one pass.
const BATCH: u64 = layout::READ_BATCH_BYTES;

/// Topics the writer uses, registered lazily on first use.
const TOPICS: [&str; 4] = ["vote", "comment", "transfer", "custom_json"];

/// Subscriber topic filters; `never_used` is never registered by the writer, and the empty
/// filter passes block ends only.
const FILTERS: [Option<&[&str]>; 6] = [
    None,
    Some(&[]),
    Some(&["vote"]),
    Some(&["comment", "transfer"]),
    Some(&["custom_json", "never_used"]),
    Some(&["never_used"]),
];

/// Subscribers alive at once; opening more drops the oldest one opened by a step.
const MAX_SUBS: usize = 8;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ----- generated scripts

#[derive(Debug, Clone)]
struct OpSpec {
    topic: usize,
    /// 0: tiny, 1: up to 1/16 of the capacity, 2: up to a quarter, 3: over a quarter.
    size_class: u8,
    size: u32,
    seed: u8,
    trx_index: u32,
    op_index: u32,
    virtual_op: bool,
    /// Let every subscriber poll once after this push (the block is still open).
    poll_after: bool,
}

impl OpSpec {
    fn len(&self, cap: u64) -> usize {
        let size = u64::from(self.size);
        let len = match self.size_class {
            0 => size % 48,
            1 => size % (cap / 16),
            2 => size % (max_payload(cap) + 1),
            _ => max_payload(cap) + 1 + size % 64,
        };
        len as usize
    }
}

#[derive(Debug, Clone)]
enum End {
    Commit,
    Abort,
    /// Drop the publisher with the block open (the process dies), then reopen the ring.
    Crash,
}

#[derive(Debug, Clone)]
enum StartSpec {
    Latest,
    Earliest,
    /// Picks a block number around the ring's current range.
    Block(u32),
    /// Resumes after the position of the subscriber this picks.
    After(u32),
}

#[derive(Debug, Clone)]
enum Step {
    Block {
        gap: u64,
        ops: Vec<OpSpec>,
        end: End,
    },
    /// Drop the publisher between blocks and open the ring again.
    Reopen,
    Open {
        start: StartSpec,
        filter: usize,
        speed: usize,
    },
}

#[derive(Debug, Clone)]
struct SubSpec {
    filter: usize,
    speed: usize,
    earliest: bool,
}

#[derive(Debug, Clone)]
struct Script {
    cap: u64,
    subs: Vec<SubSpec>,
    steps: Vec<Step>,
}

fn speed() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), Just(1), Just(2), Just(4), Just(1000)]
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    (
        0..TOPICS.len(),
        prop_oneof![10 => Just(0u8), 6 => Just(1), 3 => Just(2), 1 => Just(3)],
        any::<u32>(),
        any::<u8>(),
        0..40u32,
        0..4u32,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(topic, size_class, size, seed, trx_index, op_index, virtual_op, poll_after)| OpSpec {
                topic,
                size_class,
                size,
                seed,
                trx_index,
                op_index,
                virtual_op,
                poll_after,
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    let end = prop_oneof![16 => Just(End::Commit), 2 => Just(End::Abort), 1 => Just(End::Crash)];
    let start = prop_oneof![
        Just(StartSpec::Latest),
        Just(StartSpec::Earliest),
        any::<u32>().prop_map(StartSpec::Block),
        any::<u32>().prop_map(StartSpec::After),
    ];
    prop_oneof![
        20 => (1..4u64, prop::collection::vec(op_spec(), 0..8), end)
            .prop_map(|(gap, ops, end)| Step::Block { gap, ops, end }),
        1 => Just(Step::Reopen),
        3 => (start, 0..FILTERS.len(), speed())
            .prop_map(|(start, filter, speed)| Step::Open { start, filter, speed }),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    let cap = prop_oneof![4 => Just(4096u64), 3 => Just(8192), 2 => Just(16384), 1 => Just(65536)];
    let sub =
        (0..FILTERS.len(), speed(), any::<bool>()).prop_map(|(filter, speed, earliest)| SubSpec {
            filter,
            speed,
            earliest,
        });
    (
        cap,
        prop::collection::vec(sub, 1..=4),
        prop::collection::vec(step(), 1..100),
    )
        .prop_map(|(cap, subs, steps)| Script { cap, subs, steps })
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed ^ (i as u8).wrapping_mul(31) ^ (i >> 8) as u8)
        .collect()
}

fn block_meta(number: u64) -> (u32, [u8; 20]) {
    (
        number as u32 ^ 0x5a5a_0000,
        std::array::from_fn(|i| (number as u8).wrapping_mul(7) ^ i as u8),
    )
}

// ----- the model

#[derive(Debug, Clone)]
struct MOp {
    topic: usize,
    payload: Vec<u8>,
    meta: OpMeta,
    seq: u64,
    topic_seq: u64,
    /// Position just after the record.
    end: u64,
}

#[derive(Debug, Clone)]
struct MBlock {
    number: u64,
    timestamp: u32,
    id: [u8; 20],
    /// Position of the flagged first record (or of the flagged padding before it).
    flag: u64,
    /// Position just after the block end record: the tail once committed.
    end: u64,
    ops: Vec<MOp>,
}

struct MOpen {
    block: MBlock,
    /// Where the block started (the tail when it was begun).
    begin: u64,
    /// Bytes of the block's records so far, wrap padding excluded.
    bytes: u64,
    flagged: bool,
}

/// The writer as the documentation describes it.
struct Model {
    cap: u64,
    /// Where the next record goes.
    pos: u64,
    /// Highest record end ever reserved.
    intent: u64,
    topics: Vec<String>,
    committed: Vec<u64>,
    committed_ops: u64,
    blocks: Vec<MBlock>,
    open: Option<MOpen>,
    epoch: u64,
}

impl Model {
    fn new(cap: u64) -> Model {
        Model {
            cap,
            pos: 0,
            intent: 0,
            topics: Vec::new(),
            committed: Vec::new(),
            committed_ops: 0,
            blocks: Vec::new(),
            open: None,
            epoch: 1,
        }
    }

    fn tail(&self) -> u64 {
        self.blocks.last().map_or(0, |b| b.end)
    }

    fn last(&self) -> Option<u64> {
        self.blocks.last().map(|b| b.number)
    }

    fn topic(&mut self, name: &str) -> usize {
        if let Some(id) = self.topics.iter().position(|t| t == name) {
            return id;
        }
        self.topics.push(name.to_string());
        self.committed.push(0);
        self.topics.len() - 1
    }

    /// Index of the oldest block whose every byte is still intact.
    fn oldest(&self) -> usize {
        self.blocks
            .iter()
            .position(|b| b.flag + self.cap >= self.intent)
            .unwrap_or(self.blocks.len())
    }

    fn begin(&mut self, number: u64) {
        let (timestamp, id) = block_meta(number);
        let block = MBlock {
            number,
            timestamp,
            id,
            flag: self.pos,
            end: self.pos,
            ops: Vec::new(),
        };
        self.open = Some(MOpen {
            block,
            begin: self.pos,
            bytes: 0,
            flagged: false,
        });
    }

    /// Reserve a record of `len` bytes in the open block; its end position. The records of one
    /// block, its end included and wrap padding excluded, may take at most a quarter of the
    /// capacity (see `a_block_within_the_limits_is_accepted_wherever_it_starts`).
    fn reserve(&mut self, len: u64) -> Result<u64, WriteError> {
        let cap = self.cap;
        let open = self.open.as_mut().expect("a block is open");
        let room = cap - self.pos % cap;
        let start = if room < len {
            self.pos + room
        } else {
            self.pos
        };
        let end = start + len;
        if open.bytes + len > cap / 4 {
            return Err(WriteError::BlockTooLarge { limit: cap / 4 });
        }
        open.bytes += len;
        if !open.flagged {
            open.flagged = true;
            open.block.flag = if start != self.pos && room >= HDR {
                self.pos
            } else {
                start
            };
        }
        self.intent = self.intent.max(end);
        self.pos = end;
        Ok(end)
    }

    fn push(&mut self, topic: usize, meta: OpMeta, payload: Vec<u8>) -> Result<(), WriteError> {
        if payload.len() as u64 > max_payload(self.cap) {
            return Err(WriteError::PayloadTooLarge { len: payload.len() });
        }
        let end = self.reserve(HDR + (payload.len() as u64).next_multiple_of(8))?;
        let open = self.open.as_mut().expect("a block is open");
        let seq = self.committed_ops + open.block.ops.len() as u64;
        let topic_seq = self.committed[topic]
            + open.block.ops.iter().filter(|o| o.topic == topic).count() as u64;
        open.block.ops.push(MOp {
            topic,
            payload,
            meta,
            seq,
            topic_seq,
            end,
        });
        Ok(())
    }

    fn commit(&mut self) -> Result<(), WriteError> {
        let end = self.reserve(HDR)?;
        let mut open = self.open.take().expect("a block is open");
        open.block.end = end;
        for op in &open.block.ops {
            self.committed[op.topic] += 1;
        }
        self.committed_ops += open.block.ops.len() as u64;
        self.blocks.push(open.block);
        Ok(())
    }

    fn abort(&mut self) {
        if let Some(open) = self.open.take() {
            self.pos = open.begin;
        }
    }

    /// Where `Start::Block(n)` must lead: the index of the first block numbered `n` or more.
    fn seek(&self, n: u64) -> Result<usize, (Option<u64>, Option<u64>)> {
        let last = self.last();
        if last.is_none_or(|l| n > l) {
            return Err((None, last));
        }
        let oldest = &self.blocks[self.oldest()];
        if n < oldest.number {
            return Err((Some(oldest.number), last));
        }
        Ok(self
            .blocks
            .iter()
            .position(|b| b.number >= n)
            .expect("n <= last"))
    }
}

/// What a receive produced, in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Op {
        topic: String,
        block: u64,
        timestamp: u32,
        trx_index: u32,
        trx_id: [u8; 20],
        op_index: u32,
        index_in_block: u32,
        virtual_op: bool,
        seq: u64,
        topic_seq: u64,
        payload: Vec<u8>,
    },
    End {
        block: u64,
        timestamp: u32,
        block_id: [u8; 20],
        op_count: u64,
    },
}

fn seen(ev: Event) -> Result<Seen, TestCaseError> {
    Ok(match ev {
        Event::Op(op) => {
            let cursor = Cursor {
                block: op.block(),
                index_in_block: op.index_in_block(),
                trx_index: op.trx_index(),
                op_index: op.op_index(),
                block_id: None,
            };
            prop_assert_eq!(op.cursor(), cursor);
            let hex: String = op.trx_id().iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(op.trx_id_hex(), hex);
            Seen::Op {
                topic: op.topic().to_string(),
                block: op.block(),
                timestamp: op.timestamp(),
                trx_index: op.trx_index(),
                trx_id: op.trx_id(),
                op_index: op.op_index(),
                index_in_block: op.index_in_block(),
                virtual_op: op.is_virtual(),
                seq: op.seq(),
                topic_seq: op.topic_seq(),
                payload: op.payload().to_vec(),
            }
        }
        Event::BlockEnd(b) => Seen::End {
            block: b.block,
            timestamp: b.timestamp,
            block_id: b.block_id,
            op_count: b.op_count,
        },
        Event::Fork(f) => panic!("the model publishes no fork: {f:?}"),
    })
}

/// A subscriber as the documentation describes it.
#[derive(Debug, Clone)]
struct MReader {
    filter: Option<Vec<String>>,
    /// Next record: op `oi` of block `bi` (`oi == ops.len()`: its block end).
    bi: usize,
    oi: usize,
    /// Byte position just after the last record passed.
    raw: u64,
    skip: Option<Cursor>,
    pending: Option<RecvError>,
    last_block: Option<u64>,
    last_op: Option<Cursor>,
    /// Positions the reader holds a validated copy of: read from it, never judged again.
    copy: (u64, u64),
}

impl MReader {
    fn at(filter: Option<&[&str]>, m: &Model, bi: usize) -> MReader {
        MReader {
            filter: filter.map(|f| f.iter().map(|s| s.to_string()).collect()),
            bi,
            oi: 0,
            raw: m.blocks.get(bi).map_or(m.tail(), |b| b.flag),
            skip: None,
            pending: None,
            last_block: None,
            last_op: None,
            copy: (0, 0),
        }
    }

    /// The reader reads `need` bytes at `at`: from its copy if that holds them, else it copies
    /// the committed run from `at` (to the tail, the region's end, at most `BATCH` bytes unless
    /// `need` is more) unless `at` was overwritten, which is a lap.
    fn touch(&mut self, m: &Model, at: u64, need: u64) -> Result<(), RecvError> {
        if at >= self.copy.0 && at + need <= self.copy.1 {
            return Ok(());
        }
        if m.intent > at + m.cap {
            return Err(self.lag(m));
        }
        let region_end = at + (m.cap - at % m.cap);
        self.copy = (at, (at + BATCH.max(need)).min(m.tail()).min(region_end));
        Ok(())
    }

    fn wants(&self, topic: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.iter().any(|t| t == topic))
    }

    fn lag(&mut self, m: &Model) -> RecvError {
        let k = m.oldest();
        let (mut lost, mut lost_matching) = (0, 0);
        for (bi, b) in m.blocks.iter().enumerate().take(k).skip(self.bi) {
            let from = if bi == self.bi { self.oi } else { 0 };
            for op in &b.ops[from..] {
                lost += 1;
                lost_matching += u64::from(self.wants(&m.topics[op.topic]));
            }
        }
        self.bi = k;
        self.oi = 0;
        self.raw = m.blocks.get(k).map_or(m.tail(), |b| b.flag);
        self.copy = (0, 0);
        RecvError::Lagged {
            lost,
            lost_matching,
        }
    }

    /// What the next `try_recv` must return.
    fn expect(&mut self, m: &Model) -> Result<Option<Seen>, RecvError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        loop {
            let Some(b) = m.blocks.get(self.bi) else {
                return Ok(None);
            };
            // The next record: where it starts, its length, whether the reader needs it whole
            // (an op it wants; a block end is only a header).
            let (start, len, whole) = match b.ops.get(self.oi) {
                Some(op) => {
                    let len = HDR + (op.payload.len() as u64).next_multiple_of(8);
                    (op.end - len, len, self.wants(&m.topics[op.topic]))
                }
                None => (b.end - HDR, HDR, false),
            };
            // From `raw` to it: implicit padding (fewer than a header's bytes before the end),
            // or a padding record, whose header is read.
            let room = m.cap - self.raw % m.cap;
            let at = if room < HDR {
                self.raw + room
            } else {
                self.raw
            };
            if at != start {
                self.touch(m, at, HDR)?;
            }
            self.touch(m, start, HDR)?;
            if whole {
                self.touch(m, start, len)?;
            }
            if let Some(op) = b.ops.get(self.oi) {
                let index = self.oi as u32;
                self.oi += 1;
                self.raw = op.end;
                let topic = &m.topics[op.topic];
                if !self.wants(topic) {
                    continue;
                }
                if let Some(c) = self.skip {
                    if b.number < c.block || (b.number == c.block && index <= c.index_in_block) {
                        continue;
                    }
                    self.skip = None;
                }
                self.last_op = Some(Cursor {
                    block: b.number,
                    index_in_block: index,
                    trx_index: op.meta.trx_index,
                    op_index: op.meta.op_index,
                    block_id: None,
                });
                return Ok(Some(Seen::Op {
                    topic: topic.clone(),
                    block: b.number,
                    timestamp: b.timestamp,
                    trx_index: op.meta.trx_index,
                    trx_id: op.meta.trx_id,
                    op_index: op.meta.op_index,
                    index_in_block: index,
                    virtual_op: op.meta.virtual_op,
                    seq: op.seq,
                    topic_seq: op.topic_seq,
                    payload: op.payload.clone(),
                }));
            }
            self.bi += 1;
            self.oi = 0;
            self.raw = b.end;
            if let Some(c) = self.skip {
                if b.number < c.block {
                    continue;
                }
                if b.number == c.block {
                    self.skip = None;
                }
            }
            self.last_block = Some(b.number);
            return Ok(Some(Seen::End {
                block: b.number,
                timestamp: b.timestamp,
                block_id: b.id,
                op_count: b.ops.len() as u64,
            }));
        }
    }
}

// ----- running a script against the SDK and the model side by side

struct Sub {
    sub: Subscriber,
    model: MReader,
    speed: usize,
    label: String,
}

struct World {
    ring: TempRing,
    publisher: Option<Publisher>,
    m: Model,
    subs: Vec<Sub>,
    /// Subscribers opened at the start (never dropped to make room).
    initial: usize,
    /// Receive right after opening a subscriber (twice when the first receive only reports a
    /// gap), before the writer moves on.
    poll_on_open: bool,
}

impl World {
    fn new(cap: u64, poll_on_open: bool) -> World {
        let (ring, publisher) = TempRing::create(cap);
        World {
            ring,
            publisher: Some(publisher),
            m: Model::new(cap),
            subs: Vec::new(),
            initial: 0,
            poll_on_open,
        }
    }

    fn publisher(&mut self) -> &mut Publisher {
        self.publisher.as_mut().expect("a publisher is open")
    }

    fn open(&self, filter: usize) -> Result<consumer_sdk::Builder, TestCaseError> {
        let b =
            Subscriber::open(self.ring.name()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(match FILTERS[filter] {
            Some(f) => b.topics(f.iter().copied()),
            None => b,
        })
    }

    fn add(
        &mut self,
        sub: Subscriber,
        model: MReader,
        speed: usize,
        label: String,
    ) -> Result<(), TestCaseError> {
        if self.subs.len() >= MAX_SUBS {
            self.subs.remove(self.initial);
        }
        self.subs.push(Sub {
            sub,
            model,
            speed,
            label,
        });
        if self.poll_on_open {
            let i = self.subs.len() - 1;
            let gap = self.subs[i].model.pending.is_some();
            self.poll(i)?;
            if gap {
                self.poll(i)?;
            }
        }
        Ok(())
    }

    /// One `try_recv` on subscriber `i`, checked against the model. `Ok(false)`: nothing new.
    fn poll(&mut self, i: usize) -> Result<bool, TestCaseError> {
        let s = &mut self.subs[i];
        let got = match s.sub.try_recv() {
            Ok(Some(ev)) => Ok(Some(seen(ev)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let want = s.model.expect(&self.m);
        prop_assert_eq!(&got, &want, "subscriber {} ({})", i, s.label);
        prop_assert_eq!(
            s.sub.last_block(),
            s.model.last_block,
            "last_block of {}",
            s.label
        );
        prop_assert_eq!(s.sub.position(), s.model.last_op, "position of {}", s.label);
        if got == Ok(None) {
            prop_assert_eq!(s.sub.epoch(), self.m.epoch, "epoch seen by {}", s.label);
        }
        Ok(got != Ok(None))
    }

    fn poll_all(&mut self, times: Option<usize>) -> Result<(), TestCaseError> {
        for i in 0..self.subs.len() {
            for _ in 0..times.unwrap_or(self.subs[i].speed) {
                if !self.poll(i)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn drain(&mut self, i: usize) -> Result<(), TestCaseError> {
        for _ in 0..1_000_000 {
            if !self.poll(i)? {
                return Ok(());
            }
        }
        Err(TestCaseError::fail("a subscriber never ran dry"))
    }

    fn reopen(&mut self) -> Result<(), TestCaseError> {
        drop(self.publisher.take());
        self.m.abort();
        self.m.epoch += 1;
        let p = crate::reopen(self.ring.name()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(p.last_block(), self.m.last());
        prop_assert_eq!(p.epoch(), self.m.epoch);
        self.publisher = Some(p);
        Ok(())
    }

    fn block(&mut self, gap: u64, ops: &[OpSpec], end: &End) -> Result<(), TestCaseError> {
        let last = self.m.last();
        if let Some(last) = last {
            let refused = self.publisher().begin_block(last, 0, [0; 20]);
            prop_assert_eq!(
                refused,
                Err(WriteError::BlockNotAfter { block: last, last })
            );
        }
        let number = last.unwrap_or(0) + gap;
        let (timestamp, id) = block_meta(number);
        self.publisher()
            .begin_block(number, timestamp, id)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        self.m.begin(number);
        let mut too_large = false;
        for spec in ops {
            let name = TOPICS[spec.topic];
            let tid = self
                .publisher()
                .topic(name)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let topic = self.m.topic(name);
            let meta = OpMeta {
                trx_index: spec.trx_index,
                trx_id: std::array::from_fn(|i| spec.seed.wrapping_add(i as u8)),
                op_index: spec.op_index,
                virtual_op: spec.virtual_op,
            };
            let body = payload(spec.len(self.m.cap), spec.seed);
            let got = self.publisher().push(tid, &meta, &body);
            let want = self.m.push(topic, meta, body);
            prop_assert_eq!(&got, &want);
            if let Err(WriteError::BlockTooLarge { .. }) = want {
                too_large = true;
                break;
            }
            if spec.poll_after {
                self.poll_all(Some(1))?;
            }
        }
        if !too_large {
            match end {
                End::Commit => {
                    let got = self.publisher().commit();
                    let want = self.m.commit();
                    prop_assert_eq!(&got, &want);
                    too_large = want.is_err();
                }
                End::Abort => {
                    self.publisher().abort_block();
                    self.m.abort();
                }
                End::Crash => self.reopen()?,
            }
        }
        if too_large {
            self.publisher().abort_block();
            self.m.abort();
        }
        let (p_last, m_last) = (self.publisher().last_block(), self.m.last());
        prop_assert_eq!(p_last, m_last);
        if let Some(s) = self.subs.first() {
            prop_assert_eq!(s.sub.committed_block(), m_last);
        }
        Ok(())
    }

    fn open_step(
        &mut self,
        start: &StartSpec,
        filter: usize,
        speed: usize,
    ) -> Result<(), TestCaseError> {
        let f = FILTERS[filter];
        let label = format!("{start:?} {f:?}");
        let (start, model) = match *start {
            StartSpec::Latest => (Start::Latest, MReader::at(f, &self.m, self.m.blocks.len())),
            StartSpec::Earliest => (Start::Earliest, MReader::at(f, &self.m, self.m.oldest())),
            StartSpec::Block(pick) => {
                let (lo, hi) = match (self.m.blocks.get(self.m.oldest()), self.m.last()) {
                    (Some(o), Some(l)) => (o.number.saturating_sub(2), l + 2),
                    _ => (0, 4),
                };
                let n = lo + u64::from(pick) % (hi - lo + 1);
                let got = self.open(filter)?.start(Start::Block(n));
                return match (got, self.m.seek(n)) {
                    (Ok(sub), Ok(bi)) => {
                        let model = MReader::at(f, &self.m, bi);
                        self.add(sub, model, speed, label)
                    }
                    (Err(Error::BlockGone { block, earliest }), Err((Some(e), _))) => {
                        prop_assert_eq!((block, earliest), (n, e));
                        Ok(())
                    }
                    (Err(Error::BlockNotYet { block, last }), Err((None, l))) => {
                        prop_assert_eq!((block, last), (n, l));
                        Ok(())
                    }
                    (got, want) => Err(TestCaseError::fail(format!(
                        "Start::Block({n}): got {got:?}, want {want:?}"
                    ))),
                };
            }
            StartSpec::After(pick) => {
                let Some(c) = self
                    .subs
                    .iter()
                    .filter_map(|s| s.sub.position())
                    .nth(pick as usize % self.subs.len())
                else {
                    return Ok(());
                };
                let file = CursorFile::new(self.ring.dir().join("bot.cursor"));
                file.save(&c)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let c = file
                    .load()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
                    .expect("saved");
                let mut model = match self.m.seek(c.block) {
                    Ok(bi) => MReader::at(f, &self.m, bi),
                    Err((Some(earliest), _)) => {
                        let mut r = MReader::at(f, &self.m, self.m.oldest());
                        r.pending = Some(RecvError::Gap {
                            last_seen: c.block,
                            resumed_at: earliest,
                        });
                        r
                    }
                    Err((None, _)) => MReader::at(f, &self.m, self.m.blocks.len()),
                };
                model.skip = Some(c);
                (Start::After(c), model)
            }
        };
        let sub = self
            .open(filter)?
            .start(start)
            .map_err(|e| TestCaseError::fail(format!("{label}: {e}")))?;
        self.add(sub, model, speed, label)
    }
}

fn run(script: &Script, poll_on_open: bool) -> Result<(), TestCaseError> {
    let mut w = World::new(script.cap, poll_on_open);
    for spec in &script.subs {
        let f = FILTERS[spec.filter];
        let start = if spec.earliest {
            Start::Earliest
        } else {
            Start::Latest
        };
        let sub = w
            .open(spec.filter)?
            .start(start)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // On the empty ring both starts are the same place: before the first block.
        let model = MReader::at(f, &w.m, 0);
        w.add(sub, model, spec.speed, format!("initial {f:?}"))?;
    }
    w.initial = w.subs.len();
    for step in &script.steps {
        match step {
            Step::Block { gap, ops, end } => w.block(*gap, ops, end)?,
            Step::Reopen => w.reopen()?,
            Step::Open {
                start,
                filter,
                speed,
            } => w.open_step(start, *filter, *speed)?,
        }
        w.poll_all(None)?;
    }
    for i in 0..w.subs.len() {
        w.drain(i)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(640))]

    /// Every subscriber receives exactly what the model says, through wraps, laps, aborted and
    /// oversized blocks, crashes mid-block, reopens and subscribers opened at any moment.
    ///
    /// Each subscriber receives once as soon as it is opened: see
    /// `subscribers_lapped_before_their_first_receive` for why.
    #[test]
    fn subscribers_follow_the_model(script in script()) {
        run(&script, true)?;
    }

    /// The same, but a subscriber may be lapped before it ever receives.
    #[test]
    fn subscribers_lapped_before_their_first_receive(script in script()) {
        run(&script, false)?;
    }
}

// ----- deterministic scenarios

/// Publish block `n` with one op per `(topic, payload length)`.
fn publish(p: &mut Publisher, n: u64, ops: &[(&str, usize)]) {
    let (timestamp, id) = block_meta(n);
    p.begin_block(n, timestamp, id).expect("begin");
    for (i, &(topic, len)) in ops.iter().enumerate() {
        let t = p.topic(topic).expect("topic");
        let meta = OpMeta {
            trx_index: i as u32,
            ..OpMeta::default()
        };
        p.push(t, &meta, &payload(len, n as u8)).expect("push");
    }
    p.commit().expect("commit");
}

/// Receive until nothing is left: ops as (block, index in block, topic), block ends as
/// (block, u32::MAX, ""), errors as they come.
fn received(sub: &mut Subscriber) -> Vec<Result<(u64, u32, String), RecvError>> {
    let mut out = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(Some(Event::Op(op))) => out.push(Ok((
                op.block(),
                op.index_in_block(),
                op.topic().to_string(),
            ))),
            Ok(Some(Event::BlockEnd(b))) => out.push(Ok((b.block, u32::MAX, String::new()))),
            Ok(Some(Event::Fork(f))) => panic!("no fork was published: {f:?}"),
            Ok(None) => return out,
            Err(e) => out.push(Err(e)),
        }
    }
}

#[test]
fn the_publisher_refuses_misuse_with_typed_errors() {
    let (ring, mut p) = TempRing::create(4096);
    let vote = p.topic("vote").expect("topic");
    assert_eq!(p.topic("vote"), Ok(vote), "a topic is registered once");
    assert_eq!(
        p.push(vote, &OpMeta::default(), b"x"),
        Err(WriteError::NoBlock)
    );
    assert_eq!(p.commit(), Err(WriteError::NoBlock));
    let long = "a".repeat(57);
    for bad in ["", "Vote", "vote_operation!", "a-b", "é", long.as_str()] {
        assert_eq!(p.topic(bad), Err(WriteError::TopicName(bad.to_string())));
    }
    assert!(p.topic(&"z".repeat(56)).is_ok());
    p.begin_block(5, 0, [0; 20]).expect("begin");
    assert_eq!(p.begin_block(6, 0, [0; 20]), Err(WriteError::BlockOpen));
    assert_eq!(
        p.push(vote, &OpMeta::default(), &[0; 897]),
        Err(WriteError::PayloadTooLarge { len: 897 })
    );
    p.push(vote, &OpMeta::default(), &[0; 896])
        .expect("a quarter of the ring less 128 bytes is allowed");
    p.commit().expect("commit");
    for n in [0, 4, 5] {
        assert_eq!(
            p.begin_block(n, 0, [0; 20]),
            Err(WriteError::BlockNotAfter { block: n, last: 5 })
        );
    }

    let (_other_ring, mut other) = TempRing::create(4096);
    let foreign = (0..4)
        .map(|i| other.topic(&format!("t{i}")).expect("topic"))
        .last()
        .expect("four topics");
    p.begin_block(6, 0, [0; 20]).expect("begin");
    assert_eq!(
        p.push(foreign, &OpMeta::default(), b"x"),
        Err(WriteError::UnknownTopic(3))
    );
    p.abort_block();

    for i in 2..layout::TOPIC_SLOTS {
        p.topic(&format!("topic_{i}")).expect("room in the table");
    }
    assert_eq!(p.topic("one_too_many"), Err(WriteError::TopicTableFull));
    let last = p
        .topic(&format!("topic_{}", layout::TOPIC_SLOTS - 1))
        .expect("registered");
    drop(p);
    let mut p = crate::reopen(ring.name()).expect("reopen with a full topic table");
    let mut sub = Subscriber::open(ring.name())
        .expect("open")
        .topics([format!("topic_{}", layout::TOPIC_SLOTS - 1)])
        .start(Start::Latest)
        .expect("start");
    p.begin_block(7, 0, [0; 20]).expect("begin");
    p.push(last, &OpMeta::default(), b"last").expect("push");
    p.commit().expect("commit");
    let got = received(&mut sub);
    assert_eq!(
        got,
        [
            Ok((7, 0, format!("topic_{}", layout::TOPIC_SLOTS - 1))),
            Ok((7, u32::MAX, String::new()))
        ]
    );
}

#[test]
fn a_block_left_open_by_a_dead_publisher_is_never_seen() {
    let (ring, mut p) = TempRing::create(4096);
    // Seven blocks of 512 bytes: the tail is at 3584.
    for n in 1..=7 {
        publish(&mut p, n, &[("vote", 300), ("comment", 20)]);
    }
    let mut reading = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Earliest)
        .expect("start");
    let mut filtered = Subscriber::open(ring.name())
        .expect("open")
        .topics(["comment"])
        .start(Start::Earliest)
        .expect("start");
    assert_eq!(received(&mut reading).len(), 21);
    assert_eq!(received(&mut filtered).len(), 14);
    assert_eq!(reading.epoch(), 1);

    // Block 8 is half written when the process dies; it wraps and overwrites block 1.
    p.begin_block(8, 0, [8; 20]).expect("begin");
    let vote = p.topic("vote").expect("topic");
    for len in [560, 300] {
        p.push(vote, &OpMeta::default(), &vec![0xee; len])
            .expect("push");
        assert_eq!(reading.try_recv(), Ok(None));
    }
    drop(p);
    assert_eq!(reading.try_recv(), Ok(None));

    let mut p = crate::reopen(ring.name()).expect("reopen");
    assert_eq!(p.last_block(), Some(7));
    assert_eq!(p.epoch(), 2);
    assert_eq!(reading.try_recv(), Ok(None));
    assert_eq!(reading.epoch(), 2);
    publish(&mut p, 8, &[("comment", 8)]);
    publish(&mut p, 9, &[("vote", 8), ("comment", 8)]);

    let mut seqs = Vec::new();
    loop {
        match reading.try_recv().expect("no error") {
            Some(Event::Op(op)) => {
                assert!(!op.payload().contains(&0xee), "bytes of the dead block");
                seqs.push((op.block(), op.index_in_block(), op.seq(), op.topic_seq()));
            }
            Some(Event::BlockEnd(_)) => {}
            Some(Event::Fork(f)) => panic!("no fork was published: {f:?}"),
            None => break,
        }
    }
    // Fourteen ops before the crash: the next global sequence is 14, comment's is 7.
    assert_eq!(seqs, [(8, 0, 14, 7), (9, 0, 15, 7), (9, 1, 16, 8)]);
    assert_eq!(
        received(&mut filtered),
        [
            Ok((8, 0, "comment".into())),
            Ok((8, u32::MAX, String::new())),
            Ok((9, 1, "comment".into())),
            Ok((9, u32::MAX, String::new()))
        ]
    );
    let fresh = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Block(8))
        .expect("block 8");
    assert_eq!(fresh.committed_block(), Some(9));
}

#[test]
fn topics_registered_after_a_subscriber_started_are_delivered() {
    let (ring, mut p) = TempRing::create(4096);
    publish(&mut p, 1, &[("vote", 10)]);
    let open = |topics: Option<[&str; 2]>| {
        let b = Subscriber::open(ring.name()).expect("open");
        let b = match topics {
            Some(t) => b.topics(t),
            None => b,
        };
        b.start(Start::Latest).expect("start")
    };
    let mut late = open(Some(["late", "later"]));
    let mut all = open(None);
    assert_eq!(late.try_recv(), Ok(None));
    publish(&mut p, 2, &[("vote", 10), ("late", 10), ("vote", 10)]);
    assert_eq!(
        received(&mut late),
        [Ok((2, 1, "late".into())), Ok((2, u32::MAX, String::new()))]
    );
    assert_eq!(received(&mut all)[1], Ok((2, 1, "late".into())));

    // `later` appears, and all its records are overwritten before the subscriber looks.
    for n in 3..40 {
        publish(&mut p, n, &[("later", 200)]);
    }
    let got = received(&mut late);
    let Err(RecvError::Lagged {
        lost,
        lost_matching,
    }) = got[0]
    else {
        panic!("{got:?}")
    };
    let first = match &got[1] {
        Ok((block, 0, topic)) if topic == "later" => *block,
        other => panic!("{other:?}"),
    };
    assert_eq!((lost, lost_matching), (first - 3, first - 3));
    assert!(
        got[1..]
            .iter()
            .all(|g| matches!(g, Ok((_, i, t)) if *i == u32::MAX || t == "later"))
    );
}

#[test]
fn every_block_can_be_found_beyond_the_block_index() {
    // More blocks than index slots, in one lap: the oldest ones are found by walking.
    let (ring, mut p) = TempRing::create(1 << 20);
    let blocks: Vec<u64> = (0..layout::INDEX_SLOTS as u64 + 1500)
        .map(|i| 100 + 3 * i)
        .collect();
    for &n in &blocks {
        publish(&mut p, n, &[("vote", 0)]);
    }
    for n in [
        0, 100, 101, 102, 103, 500, 4000, 9000, 12_000, 15_000, 16_993, 16_995, 16_996,
    ] {
        let got = Subscriber::open(ring.name())
            .expect("open")
            .start(Start::Block(n));
        let last = *blocks.last().expect("blocks");
        match got {
            Ok(mut sub) => {
                let first = blocks.iter().copied().find(|&b| b >= n).expect("n <= last");
                let Ok(Some(Event::Op(op))) = sub.try_recv() else {
                    panic!("Block({n})")
                };
                assert_eq!(op.block(), first, "Block({n})");
            }
            Err(Error::BlockNotYet { block, last: l }) => {
                assert!(block == n && n > last && l == Some(last))
            }
            // Nothing was overwritten, but blocks before the first one count as gone.
            Err(Error::BlockGone { block, earliest }) => {
                assert!(block == n && n < 100 && earliest == 100)
            }
            Err(e) => panic!("Block({n}): {e}"),
        }
    }
}

#[test]
fn resuming_after_a_cursor_survives_a_publisher_restart() {
    let (ring, mut p) = TempRing::create(8192);
    for n in 1..=4 {
        publish(&mut p, n * 10, &[("vote", 5), ("comment", 5), ("vote", 5)]);
    }
    let mut bot = Subscriber::open(ring.name())
        .expect("open")
        .topics(["vote"])
        .start(Start::Earliest)
        .expect("start");
    let mut handled = Vec::new();
    while handled.len() < 3 {
        if let Some(Event::Op(op)) = bot.try_recv().expect("receive") {
            handled.push(op.cursor());
        }
    }
    let file = CursorFile::new(ring.dir().join("bot.cursor"));
    file.save(&handled[2]).expect("save");
    assert_eq!((handled[2].block, handled[2].index_in_block), (20, 0));
    drop(bot);
    drop(p);
    let mut p = crate::reopen(ring.name()).expect("reopen");
    publish(&mut p, 50, &[("vote", 5)]);
    let cursor = file.load().expect("load").expect("saved");
    let mut bot = Subscriber::open(ring.name())
        .expect("open")
        .topics(["vote"])
        .start(Start::After(cursor))
        .expect("start");
    let ops: Vec<(u64, u32)> = std::iter::from_fn(|| bot.try_recv_op().expect("receive"))
        .map(|op| (op.block(), op.index_in_block()))
        .collect();
    assert_eq!(ops, [(20, 2), (30, 0), (30, 2), (40, 0), (40, 2), (50, 0)]);
}

/// Create a ring under `name` next to `ring`, publish `blocks` into it, and rename it over
/// `ring`'s file; its publisher.
fn replace_ring(ring: &TempRing, name: &str, blocks: &[u64]) -> Publisher {
    let path = ring.dir().join(name);
    let options = CreateOptions {
        capacity: 4096,
        mode: 0o600,
    };
    let mut p = Publisher::create(path.to_str().expect("UTF-8"), &options).expect("create");
    for &n in blocks {
        publish(&mut p, n, &[("vote", 10)]);
    }
    std::fs::rename(&path, ring.path()).expect("rename over the ring");
    p
}

/// A subscriber that has read blocks 1 to 3 of a fresh ring.
fn reader_of_three_blocks() -> (TempRing, Subscriber) {
    let (ring, mut p) = TempRing::create(4096);
    let mut sub = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Latest)
        .expect("start");
    for n in 1..=3 {
        publish(&mut p, n, &[("vote", 10)]);
    }
    assert_eq!(received(&mut sub).len(), 6);
    (ring, sub)
}

#[test]
fn subscribers_follow_a_replaced_ring_file() {
    let (ring, mut sub) = reader_of_three_blocks();
    // A replacement that repeats blocks 2 and 3: the subscriber goes on at block 4. (The first
    // file's writer is gone already.)
    assert!(matches!(sub.producer_status(), ProducerStatus::Dead { .. }));
    drop(replace_ring(&ring, "b.ring", &[2, 3, 4, 5, 6]));
    assert_eq!(sub.producer_status(), ProducerStatus::Replaced);
    let first = sub
        .recv_timeout(Duration::from_secs(10))
        .expect("receive")
        .expect("the new file's blocks");
    assert!(
        matches!(&first, Event::Op(op) if op.block() == 4),
        "{first:?}"
    );
    assert_eq!(received(&mut sub).len(), 5);
    assert_eq!(sub.last_block(), Some(6));
    assert_ne!(
        sub.producer_status(),
        ProducerStatus::Replaced,
        "it moved to the new file"
    );

    // One without the blocks after 6: a gap, then its oldest block.
    drop(replace_ring(&ring, "c.ring", &[100, 101]));
    let gap = sub.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        gap,
        Err(RecvError::Gap {
            last_seen: 6,
            resumed_at: 100
        })
    );
    assert_eq!(received(&mut sub).len(), 4);

    // An empty one whose writer goes on after block 101.
    let mut p = replace_ring(&ring, "d.ring", &[]);
    assert_eq!(sub.recv_timeout(Duration::from_millis(600)), Ok(None));
    publish(&mut p, 102, &[("vote", 10)]);
    assert_eq!(
        received(&mut sub),
        [
            Ok((102, 0, "vote".into())),
            Ok((102, u32::MAX, String::new()))
        ]
    );
}

#[test]
fn a_replacement_that_repeats_the_last_block_does_not_repeat_its_end() {
    let (ring, mut sub) = reader_of_three_blocks();
    // The new ring is empty when the subscriber switches to it; its writer starts over at 3.
    let mut p = replace_ring(&ring, "b.ring", &[]);
    assert_eq!(sub.recv_timeout(Duration::from_millis(600)), Ok(None));
    publish(&mut p, 3, &[("vote", 10)]);
    publish(&mut p, 4, &[("vote", 10)]);
    assert_eq!(
        received(&mut sub),
        [Ok((4, 0, "vote".into())), Ok((4, u32::MAX, String::new()))]
    );
}

#[test]
fn blocking_receives_wait_time_out_and_stop() {
    let (ring, mut p) = TempRing::create(4096);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut sub = Subscriber::open(ring.name())
        .expect("open")
        .stop_flag(stop.clone())
        .start(Start::Latest)
        .expect("start");
    assert_eq!(sub.recv_timeout(Duration::from_millis(20)), Ok(None));
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        publish(&mut p, 1, &[("vote", 3)]);
        p
    });
    let woke = sub.recv().expect("woken by the commit");
    assert!(
        matches!(&woke, Event::Op(op) if op.block() == 1),
        "{woke:?}"
    );
    let mut p = writer.join().expect("writer");
    assert!(matches!(sub.recv(), Ok(Event::BlockEnd(b)) if b.block == 1));

    for n in 2..=60 {
        publish(&mut p, n, &[("vote", 200)]);
    }
    let mut ops = sub.iter();
    assert!(matches!(ops.next(), Some(Err(RecvError::Lagged { .. }))));
    let next = ops.next();
    assert!(
        matches!(&next, Some(Ok(op)) if op.index_in_block() == 0),
        "{next:?}"
    );
    // A raised flag stops a subscriber that still has a backlog.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(ops.next().is_none());
    assert_eq!(sub.recv(), Err(RecvError::Stopped));
    assert_eq!(
        sub.recv_timeout(Duration::from_secs(1)),
        Err(RecvError::Stopped)
    );
}

#[test]
fn producer_status_and_capacity_of_an_existing_ring() {
    let (ring, p) = TempRing::create(4096);
    let sub = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Latest)
        .expect("start");
    let pid = u64::from(std::process::id());
    assert_eq!(
        sub.producer_status(),
        ProducerStatus::Alive { pid, epoch: 1 }
    );
    let quick = Subscriber::open(ring.name())
        .expect("open")
        .stale_after(Duration::ZERO)
        .start(Start::Latest)
        .expect("start");
    match quick.producer_status() {
        ProducerStatus::Stale { pid: p, epoch, .. } => assert_eq!((p, epoch), (pid, 1)),
        other => panic!("{other:?}"),
    }
    drop(p);
    // The writer's lock went with it: dead at once, whatever the heartbeat says.
    assert_eq!(
        sub.producer_status(),
        ProducerStatus::Dead { pid, epoch: 1 }
    );
    let options = CreateOptions {
        capacity: 1 << 16,
        mode: 0o600,
    };
    let p = Publisher::open_or_create(ring.name(), &options).expect("open the existing ring");
    assert_eq!((p.capacity(), p.epoch()), (4096, 2));
}

// ----- one writer and several readers on threads

/// Blocks in the threaded test; block `n` holds `1 + n % 3` ops, op `i` of topic `b` when
/// `(n + i) % 3 == 0` and `a` otherwise.
const THREADED_BLOCKS: u64 = 3000;

fn threaded_ops(n: u64) -> u64 {
    1 + n % 3
}

fn threaded_topic(n: u64, i: u64) -> &'static str {
    if (n + i) % 3 == 0 { "b" } else { "a" }
}

fn threaded_payload(n: u64, i: u64) -> Vec<u8> {
    payload(((n * 7 + i * 13) % 200) as usize, (n ^ i) as u8)
}

/// Every op of the threaded stream, indexed by global sequence.
struct Stream {
    /// Global sequence of the first op of block `n`, for `n` in `1..=THREADED_BLOCKS + 1`.
    start: Vec<u64>,
    /// (block, index in block, topic, sequence within the topic).
    ops: Vec<(u64, u32, &'static str, u64)>,
}

impl Stream {
    fn new() -> Stream {
        let (mut start, mut ops, mut per_topic) = (vec![0, 0], Vec::new(), [0u64; 2]);
        for n in 1..=THREADED_BLOCKS {
            for i in 0..threaded_ops(n) {
                let topic = threaded_topic(n, i);
                let t = usize::from(topic == "b");
                ops.push((n, i as u32, topic, per_topic[t]));
                per_topic[t] += 1;
            }
            start.push(ops.len() as u64);
        }
        Stream { start, ops }
    }
}

/// Checks one reader's events against [`Stream`], whatever the timing: every op exactly as
/// published, in order, nothing of its topics skipped except in a lag report, whose counts
/// must match the records between where the reader was and the block it resumed at.
struct Checker<'a> {
    s: &'a Stream,
    only: Option<&'static str>,
    /// Global sequence of the next op not yet passed.
    next: u64,
    /// Block whose end has not been received yet.
    block: u64,
    lagged: Option<(u64, u64)>,
}

impl Checker<'_> {
    fn wanted_between(&self, from: u64, to: u64) -> u64 {
        self.s.ops[from as usize..to as usize]
            .iter()
            .filter(|o| self.only.is_none_or(|t| t == o.2))
            .count() as u64
    }

    /// After a lag report, the next event shows where the reader resumed.
    fn resume(&mut self, block: u64) -> Result<(), String> {
        if let Some((lost, lost_matching)) = self.lagged.take() {
            let at = self.s.start[block as usize];
            let want = (at - self.next, self.wanted_between(self.next, at));
            // A filtered reader may pass ops of other topics and only then find itself lapped:
            // those were read, not lost. Lapped twice before its next delivery, the ops it
            // passed lie between the two laps, so only their number can be checked: never more
            // than the ops of other topics in the range.
            let passed = want.0.saturating_sub(lost);
            let passed_ok = passed == 0 || (self.only.is_some() && passed <= want.0 - want.1);
            if lost_matching != want.1 || lost > want.0 || !passed_ok {
                return Err(format!(
                    "resumed at block {block}: lagged {lost}/{lost_matching}, want {want:?}"
                ));
            }
            self.next = at;
            self.block = block;
        }
        Ok(())
    }

    fn event(&mut self, ev: Event) -> Result<(), String> {
        match ev {
            Event::Op(op) => {
                self.resume(op.block())?;
                let seq = op.seq();
                let &(block, index, topic, topic_seq) = self
                    .s
                    .ops
                    .get(seq as usize)
                    .ok_or(format!("sequence {seq} never published"))?;
                let seen = (op.block(), op.index_in_block(), op.topic(), op.topic_seq());
                if seen != (block, index, topic, topic_seq)
                    || op.payload() != threaded_payload(block, u64::from(index))
                {
                    return Err(format!(
                        "op {seq}: {seen:?}, want {:?}",
                        (block, index, topic, topic_seq)
                    ));
                }
                if block != self.block
                    || seq < self.next
                    || self.wanted_between(self.next, seq) != 0
                {
                    return Err(format!(
                        "op {seq} of block {block} after {} of block {}",
                        self.next, self.block
                    ));
                }
                if self.only.is_some_and(|t| t != topic) {
                    return Err(format!("op {seq} of topic {topic} passed the filter"));
                }
                self.next = seq + 1;
            }
            Event::Fork(f) => return Err(format!("a fork notice that was never published: {f:?}")),
            Event::BlockEnd(end) => {
                self.resume(end.block)?;
                let after = self.s.start[end.block as usize + 1];
                if end.block != self.block || end.op_count != threaded_ops(end.block) {
                    return Err(format!(
                        "end of block {} ({} ops) in block {}",
                        end.block, end.op_count, self.block
                    ));
                }
                if self.wanted_between(self.next, after) != 0 {
                    return Err(format!(
                        "end of block {} before op {}",
                        end.block, self.next
                    ));
                }
                self.next = after;
                self.block += 1;
            }
        }
        Ok(())
    }
}

/// How a threaded reader receives.
#[derive(Clone, Copy)]
enum Pace {
    Spin,
    /// Stalls now and then, so the writer laps it.
    Stalling,
    Blocking,
}

/// Open a subscriber at the start of the stream, wait until every party is ready, then read
/// and check the whole stream.
fn threaded_reader(
    name: &str,
    only: Option<&'static str>,
    pace: Pace,
    s: &Stream,
    ready: &std::sync::Barrier,
) -> Result<(), String> {
    let b = Subscriber::open(name).map_err(|e| e.to_string())?;
    let b = match only {
        Some(t) => b.topics([t]),
        None => b,
    };
    let started = b.start(Start::Earliest).map_err(|e| e.to_string());
    ready.wait();
    let mut sub = started?;
    let mut c = Checker {
        s,
        only,
        next: 0,
        block: 1,
        lagged: None,
    };
    let mut events = 0u64;
    while c.block <= THREADED_BLOCKS {
        let got = match pace {
            Pace::Blocking => sub.recv_timeout(Duration::from_millis(20)),
            Pace::Spin | Pace::Stalling => sub.try_recv(),
        };
        match got {
            Ok(Some(ev)) => {
                c.event(ev)?;
                events += 1;
                if !matches!(pace, Pace::Spin) && events % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
            Ok(None) => std::hint::spin_loop(),
            Err(RecvError::Lagged {
                lost,
                lost_matching,
            }) => {
                // Lapped again before receiving anything: the two reports add up.
                let (l, m) = c.lagged.unwrap_or_default();
                c.lagged = Some((l + lost, m + lost_matching));
            }
            Err(RecvError::Overrun { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

#[test]
fn readers_on_threads_see_exactly_the_published_stream() {
    let (ring, mut p) = TempRing::create(4096);
    let stream = Arc::new(Stream::new());
    let readers = [
        (None, Pace::Spin),
        (Some("b"), Pace::Stalling),
        (None, Pace::Stalling),
        (Some("a"), Pace::Blocking),
    ];
    let ready = Arc::new(Barrier::new(readers.len() + 1));
    let (tx, rx) = mpsc::channel();
    for (only, pace) in readers {
        let (name, s, ready, tx) = (
            ring.name().to_string(),
            stream.clone(),
            ready.clone(),
            tx.clone(),
        );
        std::thread::spawn(move || {
            let _ = tx.send(threaded_reader(&name, only, pace, &s, &ready));
        });
    }
    ready.wait();
    for n in 1..=THREADED_BLOCKS {
        let (timestamp, id) = block_meta(n);
        p.begin_block(n, timestamp, id).expect("begin");
        for i in 0..threaded_ops(n) {
            let t = p.topic(threaded_topic(n, i)).expect("topic");
            p.push(t, &OpMeta::default(), &threaded_payload(n, i))
                .expect("push");
        }
        p.commit().expect("commit");
        if n % 16 == 0 {
            std::thread::yield_now();
        }
    }
    for _ in readers {
        // A generous bound that only catches a reader that never gets to the last block.
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("reader: {e}"),
            Err(e) => panic!("a reader neither finished nor failed: {e}"),
        }
    }
}

// ----- what the model found, as minimal reproductions

#[test]
fn a_filtered_subscriber_lapped_before_its_first_receive_counts_only_what_it_skipped() {
    let (ring, mut p) = TempRing::create(4096);
    for n in 1..=10 {
        publish(&mut p, n, &[("vote", 100)]);
    }
    let mut sub = Subscriber::open(ring.name())
        .expect("open")
        .topics(["vote"])
        .start(Start::Latest)
        .expect("start");
    for n in 11..=100 {
        publish(&mut p, n, &[("vote", 100)]);
    }
    let got = received(&mut sub);
    let Err(RecvError::Lagged {
        lost,
        lost_matching,
    }) = got[0]
    else {
        panic!("{got:?}")
    };
    let Ok((first, 0, _)) = &got[1] else {
        panic!("{got:?}")
    };
    // Every record is a vote: it skipped blocks 11 up to the first one it receives.
    assert_eq!(lost, first - 11);
    assert_eq!(
        lost_matching, lost,
        "lost_matching counts the 10 votes published before it started"
    );
}

#[test]
fn no_lag_is_reported_when_nothing_was_overwritten() {
    let (ring, mut p) = TempRing::create(8192);
    // Three blocks of 2048 bytes and one of 1992: the tail is at 8136, 56 bytes before the end.
    for n in 1..=3 {
        publish(&mut p, n, &[("vote", 1920)]);
    }
    publish(&mut p, 4, &[("vote", 1864)]);
    let mut sub = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Latest)
        .expect("start");
    assert_eq!(sub.try_recv(), Ok(None));
    // Four blocks of exactly 2048 bytes from 8192: the tail reaches 16384, one capacity after
    // the reader's next record, which is intact.
    for n in 5..=8 {
        publish(&mut p, n, &[("vote", 1920)]);
    }
    let got = received(&mut sub);
    assert_eq!(got.first(), Some(&Ok((5, 0, "vote".into()))), "{got:?}");
    assert_eq!(got.len(), 8);
}

#[test]
fn a_block_within_the_limits_is_accepted_wherever_it_starts() {
    let (_ring, mut p) = TempRing::create(4096);
    // Blocks of 928, 928, 928 and 828 bytes leave the tail 484 bytes before the end.
    for n in 1..=3 {
        publish(&mut p, n, &[("vote", 800)]);
    }
    publish(&mut p, 4, &[("vote", 700)]);
    let vote = p.topic("vote").expect("topic");
    // The largest payload: 960 bytes of record and 64 of block end, exactly a quarter of the
    // ring, after 484 bytes of padding.
    p.begin_block(5, 0, [0; 20]).expect("begin");
    assert_eq!(
        p.push(vote, &OpMeta::default(), &[1; 4096 / 4 - 128]),
        Ok(())
    );
    assert_eq!(p.commit(), Ok(()));
    p.begin_block(6, 0, [0; 20]).expect("begin");
    let refused = p.push(vote, &OpMeta::default(), &[1; 4096 / 4 - 127]);
    assert_eq!(
        refused,
        Err(WriteError::PayloadTooLarge {
            len: 4096 / 4 - 127
        })
    );
}

/// The largest payload a ring of `cap` bytes takes (documented on `WriteError::PayloadTooLarge`).
fn max_payload(cap: u64) -> u64 {
    cap / 4 - 128
}

#[test]
fn the_largest_block_number_commits_or_is_refused() {
    let (_ring, mut p) = TempRing::create(4096);
    if p.begin_block(u64::MAX, 0, [0; 20]).is_ok() {
        let vote = p.topic("vote").expect("topic");
        p.push(vote, &OpMeta::default(), b"{}").expect("push");
        assert_eq!(p.commit(), Ok(()));
        assert_eq!(p.last_block(), Some(u64::MAX));
    }
}

#[test]
fn receiving_by_reference_allocates_nothing_per_op() {
    let (ring, mut p) = TempRing::create(1 << 20);
    let vote = p.topic("vote").expect("topic");
    let comment = p.topic("comment").expect("topic");
    let mut sub = Subscriber::open(ring.name())
        .expect("open")
        .topics(["vote", "comment"])
        .start(Start::Latest)
        .expect("start");
    let body = |n: u64, i: u64| format!("{{\"n\":{n},\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(150));
    for n in 1..=200 {
        p.begin_block(n, 0, [0; 20]).expect("begin");
        for i in 0..5 {
            let t = if i % 2 == 0 { vote } else { comment };
            p.push(t, &OpMeta::default(), body(n, i).as_bytes())
                .expect("push");
        }
        p.commit().expect("commit");
    }
    // The first block grows the buffer and learns the topic names.
    let mut seen = 0;
    while let Some(ev) = sub.try_recv_ref().expect("receive") {
        if let consumer_sdk::EventRef::BlockEnd(e) = ev {
            assert_eq!(e.block, 1);
            break;
        }
    }
    let before = crate::alloc_count();
    let mut checksum = 0u64;
    loop {
        match sub.try_recv_ref().expect("receive") {
            Some(consumer_sdk::EventRef::Op(op)) => {
                seen += 1;
                checksum += op.payload().len() as u64 + op.topic().len() as u64 + op.seq();
            }
            Some(consumer_sdk::EventRef::BlockEnd(_) | consumer_sdk::EventRef::Fork(_)) => {}
            None => break,
        }
    }
    let allocations = crate::alloc_count() - before;
    assert_eq!(seen, 199 * 5);
    assert!(checksum > 0);
    assert_eq!(allocations, 0, "{allocations} allocations for {seen} ops");
    // The owned path still works on the same subscriber, and copies what it hands out.
    p.begin_block(201, 0, [0; 20]).expect("begin");
    p.push(vote, &OpMeta::default(), b"{}").expect("push");
    p.commit().expect("commit");
    let Some(Event::Op(op)) = sub.try_recv().expect("receive") else {
        panic!("expected an op")
    };
    assert_eq!(
        (op.block(), op.topic(), op.payload()),
        (201, "vote", &b"{}"[..])
    );
}
