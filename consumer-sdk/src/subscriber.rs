//! The reading side: any number of subscribers per ring, each with its own cursor.

use crate::chain::Chain;
use crate::cursor::Cursor;
use crate::error::{Error, RecvError};
use crate::file::{self, Mapped};
use crate::layout::{FLAG_VIRTUAL, RecordHeader};
use crate::ops::{self, OpView, Operation, Time, ViewError};
use crate::ring::{
    self, BlockIdFound, Branch, LagPolicy, Memory, Polled, ReadFault, ReaderCore, Ring, Seek,
};
use crate::waiters::{self, Slot, WaitFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where a new subscriber starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At the committed tail: only blocks committed from now on.
    Latest,
    /// At the oldest whole block still in the ring.
    Earliest,
    /// At the first block numbered `n` or more. Opening fails with [`Error::BlockGone`] if block
    /// `n` was overwritten, or [`Error::BlockNotYet`] if it is not committed yet.
    Block(u64),
    /// Just after the op a cursor names (see [`crate::CursorFile`]): the first op not yet
    /// handled. If the cursor's block was overwritten meanwhile, reading starts at the oldest
    /// whole block and the first receive reports [`RecvError::Gap`]; if the ring has not reached
    /// the cursor yet (a new ring), ops up to the cursor are skipped as they arrive.
    After(Cursor),
}

/// How a blocking receive waits for the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Wait {
    /// Poll for a while, then sleep on a futex the writer wakes at its next commit. The poll
    /// adapts: about twice as long as recent waits lasted, between 2 and 50 µs, so a busy
    /// stream is caught without sleeping; when waits last longer, it polls 2 µs and sleeps. A
    /// sleeping subscriber registers in the ring's `.wait` file, so the writer makes its wake-up
    /// system call only when someone sleeps. Costs nothing while idle; the right choice for
    /// almost every bot.
    #[default]
    Backoff,
    /// Poll without ever sleeping: the lowest latency, one core per subscriber. Only for a few
    /// latency-critical bots on a machine with cores to spare.
    BusySpin,
}

/// One operation as published by the broadcaster, copied out of the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    topic: Arc<str>,
    header: RecordHeader,
    index_in_block: u32,
    payload: Vec<u8>,
    chain: Option<Chain>,
}

impl Op {
    /// Op type without the `_operation` suffix: `vote`, `comment`, `custom_json`, ...
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// Block number.
    pub fn block(&self) -> u64 {
        self.header.block
    }
    /// Block timestamp, seconds since the Unix epoch (UTC).
    pub fn timestamp(&self) -> u32 {
        self.header.timestamp
    }
    /// Block timestamp (`Display`s as RFC 3339; converts to `SystemTime`).
    pub fn time(&self) -> Time {
        Time::from_unix(self.header.timestamp.into())
    }
    /// The chain of the ring this op was read from, if the ring records one.
    pub fn chain(&self) -> Option<Chain> {
        self.chain
    }
    /// Index of the transaction within the block.
    pub fn trx_index(&self) -> u32 {
        self.header.trx_index
    }
    /// Transaction id (20 bytes; zero for virtual ops that have none).
    pub fn trx_id(&self) -> [u8; 20] {
        self.header.trx_id
    }
    /// Transaction id as 40 lowercase hex digits, as nodes print it.
    pub fn trx_id_hex(&self) -> String {
        const_hex::encode(self.header.trx_id)
    }
    /// Index of the op within its transaction.
    pub fn op_index(&self) -> u32 {
        self.header.op_index
    }
    /// Index of the op within its block, counting every topic: with the block number, a
    /// position that survives broadcaster restarts and ring replacement.
    pub fn index_in_block(&self) -> u32 {
        self.index_in_block
    }
    /// Produced by the chain (`get_ops_in_block` virtual ops) rather than by a transaction.
    pub fn is_virtual(&self) -> bool {
        self.header.flags & FLAG_VIRTUAL != 0
    }
    /// Global sequence number of the op within this ring.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }
    /// Sequence number of the op among ops of its topic within this ring.
    pub fn topic_seq(&self) -> u64 {
        self.header.topic_seq
    }
    /// The op body as the node sent it (compact JSON).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// Decode the body into any type, borrowing from this op where the type allows (see
    /// [`crate::ops`]); assets inside are spelled in the ring's chain.
    pub fn decode<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        ops::with_chain(self.chain, || serde_json::from_slice(&self.payload))
    }
    /// Decode the body into the view `V`, after checking that this op is of `V`'s type: a
    /// vote read as a [`ops::Transfer`] is a [`ViewError::Topic`] naming both topics.
    pub fn view<'a, V: OpView<'a>>(&'a self) -> Result<V, ViewError> {
        if *self.topic != *V::TOPIC {
            return Err(ViewError::Topic {
                expected: V::TOPIC,
                found: self.topic().into(),
            });
        }
        self.decode().map_err(|source| ViewError::Json {
            topic: V::TOPIC.into(),
            source,
        })
    }
    /// Decode the body with the view of its topic: an [`Operation`] to `match` on, holding
    /// the raw JSON for op types without a view.
    pub fn operation(&self) -> Result<Operation<'_>, ViewError> {
        ops::with_chain(self.chain, || Operation::decode(&self.topic, &self.payload))
    }
    /// The position to save so a restarted bot resumes after this op.
    pub fn cursor(&self) -> Cursor {
        cursor_of(&self.header, self.index_in_block)
    }
}

/// The end of a block: every op of it has been received (or filtered out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEnd {
    /// Block number.
    pub block: u64,
    /// Block timestamp, seconds since the Unix epoch.
    pub timestamp: u32,
    /// Block id, 20 bytes.
    pub block_id: [u8; 20],
    /// Ops the block holds, all topics.
    pub op_count: u64,
}

impl BlockEnd {
    /// The block timestamp (`Display`s as RFC 3339; converts to `SystemTime`).
    pub fn time(&self) -> Time {
        Time::from_unix(self.timestamp.into())
    }
}

/// A fork notice: blocks this reader has been given were orphaned, the chain having switched
/// to another branch (only a broadcaster following the head, not the last irreversible block,
/// publishes one). Undo whatever was done for blocks `first_block..=last_block()`; the events
/// that follow are the new branch's blocks from `first_block` on, so block numbers go back
/// here. Comes before any op of the new branch's block `first_block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    /// The first orphaned block, and the first block of the new branch that follows.
    pub first_block: u64,
    /// Ids of the orphaned blocks `first_block..`, oldest first.
    pub orphaned_ids: Vec<[u8; 20]>,
    /// Id of block `first_block - 1`, the last block both branches share.
    pub ancestor_id: [u8; 20],
}

impl Fork {
    /// The last orphaned block (the newest block published before the notice).
    pub fn last_block(&self) -> u64 {
        self.first_block + self.orphaned_ids.len() as u64 - 1
    }

    /// The orphaned blocks' numbers with their ids, oldest first.
    pub fn orphaned(&self) -> impl Iterator<Item = (u64, [u8; 20])> + '_ {
        (self.first_block..).zip(self.orphaned_ids.iter().copied())
    }

    /// Where a bot stands once it has undone the orphaned blocks: after every op of the
    /// block before them (see [`Cursor`] on resuming across a fork).
    pub fn cursor(&self) -> Cursor {
        Cursor::after_block(self.first_block.saturating_sub(1), Some(self.ancestor_id))
    }
}

impl From<Fork> for RecvError {
    /// The report op-only receives give instead of the event.
    fn from(fork: Fork) -> RecvError {
        RecvError::Forked {
            first_block: fork.first_block,
            last_block: fork.last_block(),
        }
    }
}

/// [`Fork`] lent by [`Subscriber::try_recv_ref`]: the ids stay in the subscriber's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkRef<'a> {
    /// The first orphaned block, and the first block of the new branch that follows.
    pub first_block: u64,
    /// Ids of the orphaned blocks `first_block..`, oldest first.
    pub orphaned_ids: &'a [[u8; 20]],
    /// Id of block `first_block - 1`, the last block both branches share.
    pub ancestor_id: [u8; 20],
}

impl ForkRef<'_> {
    /// An owned copy.
    pub fn to_fork(&self) -> Fork {
        Fork {
            first_block: self.first_block,
            orphaned_ids: self.orphaned_ids.to_vec(),
            ancestor_id: self.ancestor_id,
        }
    }
}

/// What a receive returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An op that passes the topic filter.
    Op(Op),
    /// A block is complete.
    BlockEnd(BlockEnd),
    /// Blocks given before were orphaned; the new branch follows.
    Fork(Fork),
}

/// What a receive that lends its op returns; see [`Subscriber::try_recv_ref`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRef<'a> {
    /// An op that passes the topic filter.
    Op(OpRef<'a>),
    /// A block is complete.
    BlockEnd(BlockEnd),
    /// Blocks given before were orphaned; the new branch follows.
    Fork(ForkRef<'a>),
}

/// One operation, copied out of the ring into the subscriber's reused buffer and lent until the
/// next receive. The same accessors as [`Op`]; [`OpRef::to_op`] makes an owned copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRef<'a> {
    topic: &'a str,
    header: RecordHeader,
    index_in_block: u32,
    payload: &'a [u8],
    chain: Option<Chain>,
}

impl<'a> OpRef<'a> {
    /// Op type without the `_operation` suffix: `vote`, `comment`, `custom_json`, ...
    pub fn topic(&self) -> &'a str {
        self.topic
    }
    /// Block number.
    pub fn block(&self) -> u64 {
        self.header.block
    }
    /// Block timestamp, seconds since the Unix epoch (UTC).
    pub fn timestamp(&self) -> u32 {
        self.header.timestamp
    }
    /// Index of the transaction within the block.
    pub fn trx_index(&self) -> u32 {
        self.header.trx_index
    }
    /// Transaction id (20 bytes; zero for virtual ops that have none).
    pub fn trx_id(&self) -> [u8; 20] {
        self.header.trx_id
    }
    /// Index of the op within its transaction.
    pub fn op_index(&self) -> u32 {
        self.header.op_index
    }
    /// Index of the op within its block, counting every topic.
    pub fn index_in_block(&self) -> u32 {
        self.index_in_block
    }
    /// Produced by the chain rather than by a transaction.
    pub fn is_virtual(&self) -> bool {
        self.header.flags & FLAG_VIRTUAL != 0
    }
    /// Global sequence number of the op within this ring.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }
    /// Sequence number of the op among ops of its topic within this ring.
    pub fn topic_seq(&self) -> u64 {
        self.header.topic_seq
    }
    /// The op body as the node sent it (compact JSON).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// The block timestamp (`Display`s as RFC 3339; converts to `SystemTime`).
    pub fn time(&self) -> Time {
        Time::from_unix(self.header.timestamp.into())
    }
    /// The chain the ring records, if any (assets are spelled in it).
    pub fn chain(&self) -> Option<Chain> {
        self.chain
    }
    /// Decode the body, borrowing from the subscriber's buffer where the type allows; assets
    /// inside are spelled in the ring's chain.
    pub fn decode<T: serde::Deserialize<'a>>(&self) -> Result<T, serde_json::Error> {
        ops::with_chain(self.chain, || serde_json::from_slice(self.payload))
    }
    /// Decode the body into the view `V`, after checking that this op is of `V`'s type (see
    /// [`Op::view`]).
    pub fn view<V: OpView<'a>>(&self) -> Result<V, ViewError> {
        if self.topic != V::TOPIC {
            return Err(ViewError::Topic {
                expected: V::TOPIC,
                found: self.topic.into(),
            });
        }
        self.decode().map_err(|source| ViewError::Json {
            topic: V::TOPIC.into(),
            source,
        })
    }
    /// Decode the body with the view of its topic (see [`Op::operation`]).
    pub fn operation(&self) -> Result<Operation<'a>, ViewError> {
        ops::with_chain(self.chain, || Operation::decode(self.topic, self.payload))
    }
    /// The position to save so a restarted bot resumes after this op.
    pub fn cursor(&self) -> Cursor {
        cursor_of(&self.header, self.index_in_block)
    }
    /// An owned copy.
    pub fn to_op(&self) -> Op {
        Op {
            topic: Arc::from(self.topic),
            header: self.header,
            index_in_block: self.index_in_block,
            payload: self.payload.to_vec(),
            chain: self.chain,
        }
    }
}

/// A received record before it is handed out: the payload is in the subscriber's buffer.
#[derive(Clone, Copy)]
enum Raw {
    Op {
        header: RecordHeader,
        index_in_block: u32,
    },
    End(BlockEnd),
    /// Its ids are in the payload.
    Fork {
        first_block: u64,
        ancestor_id: [u8; 20],
    },
}

/// The orphaned ids of a fork notice whose payload (after its two words) is `payload`.
fn fork_ids(payload: &[u8]) -> &[[u8; 20]] {
    // A whole number of ids: the reader checked the payload's length.
    <[[u8; 20]] as zerocopy::FromBytes>::ref_from_bytes(payload).unwrap_or(&[])
}

fn cursor_of(header: &RecordHeader, index_in_block: u32) -> Cursor {
    Cursor {
        block: header.block,
        index_in_block,
        trx_index: header.trx_index,
        op_index: header.op_index,
        block_id: None,
    }
}

/// What a subscriber can tell about the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerStatus {
    /// The writer's heartbeat is fresh.
    Alive {
        /// Writer process id.
        pid: u64,
        /// Writer epoch.
        epoch: u64,
    },
    /// A writer holds the ring (or that cannot be checked) but has not beaten for a while: hung,
    /// stopped, or an idle writer that does not call `Publisher::heartbeat`.
    Stale {
        /// Writer process id.
        pid: u64,
        /// Writer epoch.
        epoch: u64,
        /// Time since the last heartbeat.
        silent_for: Duration,
    },
    /// Another file now sits at the ring's path (the old one was deleted or replaced). The
    /// subscriber switches to it by itself within a quarter of a second of being idle.
    Replaced,
    /// No writer holds the ring: the last one exited or died. A new writer will bump the
    /// epoch and go on where this one stopped.
    Dead {
        /// Writer process id.
        pid: u64,
        /// Writer epoch.
        epoch: u64,
    },
}

/// Configures a [`Subscriber`]; from [`Subscriber::open`].
#[derive(Debug)]
pub struct Builder {
    path: PathBuf,
    map: Mapped,
    topics: Option<Vec<String>>,
    wait: Wait,
    lag: LagPolicy,
    stop: Option<Arc<AtomicBool>>,
    stale_after: Duration,
    max_nap: Duration,
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped")
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Builder {
    /// Receive only ops of these topics (`vote`, `comment`, ...; a view's [`OpView::TOPIC`]).
    /// Filtering reads record headers only; payloads of other topics are never copied.
    /// Default: every topic. A name no chain knows is kept (a private chain may have it), and
    /// listed by [`Subscriber::unknown_topics`].
    pub fn topics<I, S>(mut self, topics: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = Some(topics.into_iter().map(Into::into).collect());
        self
    }

    /// How blocking receives wait (default [`Wait::Backoff`]).
    pub fn wait(mut self, wait: Wait) -> Builder {
        self.wait = wait;
        self
    }

    /// Where to resume after being lapped (default [`LagPolicy::Oldest`]). Either way the lap is
    /// reported once, as [`RecvError::Lagged`] with exact counts, and never ends the
    /// subscription.
    pub fn on_lag(mut self, lag: LagPolicy) -> Builder {
        self.lag = lag;
        self
    }

    /// Blocking receives return [`RecvError::Stopped`] (and iterators end) soon after this flag
    /// is raised, e.g. by a SIGTERM handler.
    pub fn stop_flag(mut self, stop: Arc<AtomicBool>) -> Builder {
        self.stop = Some(stop);
        self
    }

    /// A writer whose heartbeat is older than this is reported as stale (default 5 s).
    pub fn stale_after(mut self, after: Duration) -> Builder {
        self.stale_after = after;
        self
    }

    /// Longest single sleep (default 50 ms). Tests only: with a long one, a wake-up the writer
    /// failed to make shows as a reader that never wakes.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn max_nap(mut self, nap: Duration) -> Builder {
        self.max_nap = nap;
        self
    }

    /// Position the subscriber and start.
    pub fn start(self, start: Start) -> Result<Subscriber, Error> {
        // A writer lapping the ring at full speed can overwrite the position found before the
        // reader is set on it: find it again.
        let mut attempt = 0;
        let (mut core, skip, pending, skip_fork) = loop {
            match self.position(&start) {
                Err(Error::Overrun { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                other => break other?,
            }
        };
        core.set_lag_policy(self.lag);
        let epoch = Ring::new(self.map.words(), self.map.capacity).epoch();
        let chain = chain_of(&self.map);
        Ok(Subscriber {
            path: self.path,
            map: self.map,
            core,
            topics: self.topics,
            topic_cache: Vec::new(),
            wait: self.wait,
            lag: self.lag,
            stop: self.stop,
            stale_after: self.stale_after,
            skip,
            skip_fork,
            pending,
            last_block: None,
            last_op: None,
            epoch,
            last_file_check: Instant::now(),
            idle_polls: 0,
            chain,
            chain_checked_in: None,
            spin: Spin::new(),
            sleeper: Sleeper::Untried,
            max_nap: self.max_nap,
        })
    }

    /// The reader, the cursor to skip to, a report to give first, and whether a fork notice
    /// at the start position is to be passed over (a reader never got the blocks it orphans,
    /// unless it resumes an id-less cursor).
    fn position(
        &self,
        start: &Start,
    ) -> Result<(ReaderCore, Option<Cursor>, Option<RecvError>, bool), Error> {
        let ring = Ring::new(self.map.words(), self.map.capacity);
        let corrupt = |f: ReadFault| fault_to_error(&self.path, f);
        let mut skip = None;
        let mut pending = None;
        let mut skip_fork = true;
        let pos = match *start {
            Start::Latest => ring::seek_latest(&ring),
            Start::Earliest => ring::seek_earliest(&ring).map_err(corrupt)?,
            Start::Block(n) => match ring::seek_block(&ring, n, Branch::Newest).map_err(corrupt)? {
                Seek::Found(p) => p,
                Seek::Gone { earliest } => return Err(Error::BlockGone { block: n, earliest }),
                Seek::NotYet { last } => return Err(Error::BlockNotYet { block: n, last }),
            },
            Start::After(c) => {
                skip = Some(c);
                let exact = match c.block_id {
                    Some(id) => ring::seek_block_id(&ring, c.block, id).map_err(corrupt)?,
                    None => None,
                };
                match exact {
                    // On the cursor's branch: its block, whose ops up to the cursor are
                    // skipped, or the fork notice after it, which the cursor has seen.
                    Some((p, BlockIdFound::Block)) => p,
                    Some((p, BlockIdFound::AfterFork)) => {
                        skip = None;
                        p
                    }
                    None => {
                        // Whichever copy of its block the cursor was in, a fork notice
                        // that orphaned it comes after the oldest.
                        skip_fork = false;
                        self.after_cursor(&ring, c, &mut pending)?
                    }
                }
            }
        };
        let core = ReaderCore::new(&ring, pos, self.topics.as_deref()).map_err(corrupt)?;
        Ok((core, skip, pending, skip_fork))
    }

    /// Where an id-less cursor `c` resumes (see [`Cursor`]).
    fn after_cursor(
        &self,
        ring: &Ring<'_>,
        c: Cursor,
        pending: &mut Option<RecvError>,
    ) -> Result<u64, Error> {
        let corrupt = |f: ReadFault| fault_to_error(&self.path, f);
        Ok(
            match ring::seek_block(ring, c.block, Branch::Oldest).map_err(corrupt)? {
                Seek::Found(p) => p,
                Seek::NotYet { .. } => ring::seek_latest(ring),
                Seek::Gone { earliest } => {
                    *pending = Some(RecvError::Gap {
                        last_seen: c.block,
                        resumed_at: earliest,
                    });
                    ring::seek_earliest(ring).map_err(corrupt)?
                }
            },
        )
    }
}

fn fault_to_error(path: &Path, f: ReadFault) -> Error {
    match f {
        ReadFault::Corrupt { pos, reason } => Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("at position {pos}: {reason}"),
        },
        ReadFault::Overrun => Error::Overrun {
            path: path.to_path_buf(),
        },
    }
}

/// Where the ring `ring` lives: [`file::resolve`] of it as text.
pub(crate) fn resolve_ring(ring: &Path) -> Result<PathBuf, Error> {
    let name = ring.to_str().ok_or_else(|| Error::InvalidName {
        name: ring.to_string_lossy().into_owned(),
        reason: "not UTF-8",
    })?;
    file::resolve(name)
}

/// The chain recorded in the ring's static header (bytes 80..128, [`Chain::to_bytes`] form);
/// `None` when none is recorded or the bytes are not a valid chain.
fn chain_of(map: &Mapped) -> Option<Chain> {
    crate::chain::load_from_header(map.words()).ok().flatten()
}

/// Attempts at positioning a new subscriber while the writer overwrites the position found.
const START_ATTEMPTS: usize = 8;
/// How often an idle subscriber checks whether the ring file was replaced.
const FILE_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// Empty polls between two reads of the clock (for the file replacement check).
const IDLE_POLLS_PER_CLOCK_READ: u32 = 64;
/// Longest single futex sleep, so stop flags and file replacement are noticed.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Reads one ring with its own cursor. See the crate docs for the semantics.
///
/// Receiving methods follow one scheme: `recv*` return [`Event`]s (ops and block ends),
/// `recv_op*` ops only; `try_*` never wait, `*_timeout` wait at most the time given, the rest
/// as long as it takes (until the [stop flag](Builder::stop_flag)).
pub struct Subscriber {
    path: PathBuf,
    map: Mapped,
    core: ReaderCore,
    topics: Option<Vec<String>>,
    topic_cache: Vec<Arc<str>>,
    wait: Wait,
    lag: LagPolicy,
    stop: Option<Arc<AtomicBool>>,
    stale_after: Duration,
    /// Ops at or before this position are skipped (resuming after a cursor).
    skip: Option<Cursor>,
    /// Pass over a fork notice if it is the first record read: the reader started at it and
    /// never got the blocks it orphans (or has seen it already).
    skip_fork: bool,
    /// Reported by the next receive.
    pending: Option<RecvError>,
    last_block: Option<u64>,
    last_op: Option<Cursor>,
    epoch: u64,
    last_file_check: Instant,
    /// Empty polls since the subscriber started (the clock is read every so many).
    idle_polls: u32,
    /// The chain the ring records, given to every op.
    chain: Option<Chain>,
    /// Block in which the ring's header was last looked at for a chain not known yet.
    chain_checked_in: Option<u64>,
    /// How long `Wait::Backoff` polls before it sleeps.
    spin: Spin,
    /// This subscriber's registration as a sleeper.
    sleeper: Sleeper,
    /// Longest single sleep.
    max_nap: Duration,
}

/// A subscriber's registration in the ring's `.wait` file (see `waiters`), made the first
/// time it sleeps: a subscriber that never sleeps never opens the file.
enum Sleeper {
    /// Not tried yet, or to be tried again.
    Untried,
    /// No usable wait file now; tried again after the next file check.
    Absent,
    Registered(WaitFile, Slot),
}

/// The adaptive spin of [`Wait::Backoff`]: poll for about twice as long as recent waits
/// lasted, within [`Spin::MIN`] and [`Spin::MAX`] (spinning the first `MIN`, yielding the CPU
/// between polls after that); when waits last longer than that, poll only briefly and sleep. A
/// busy stream is then caught without a sleep and its wake-up, an idle or slow one costs no CPU.
#[derive(Debug, Clone, Copy)]
struct Spin {
    /// Moving average of recent waits (each counted up to [`Spin::WAIT_CAP`]), in ns.
    avg_ns: u64,
}

impl Spin {
    /// Shortest poll before sleeping.
    const MIN: Duration = Duration::from_micros(2);
    /// Longest poll before sleeping.
    const MAX: Duration = Duration::from_micros(50);
    /// A wait longer than this counts as this long.
    const WAIT_CAP: Duration = Duration::from_millis(1);
    /// Polls between two clock reads while spinning.
    const POLLS_PER_CLOCK_READ: u32 = 16;

    fn new() -> Spin {
        Spin {
            avg_ns: Spin::MIN.as_nanos() as u64,
        }
    }

    fn budget(self) -> Duration {
        let (min, max) = (Spin::MIN.as_nanos() as u64, Spin::MAX.as_nanos() as u64);
        Duration::from_nanos(if self.avg_ns > max {
            min
        } else {
            self.avg_ns.saturating_mul(2).clamp(min, max)
        })
    }

    fn record(&mut self, waited: Duration) {
        let w = waited.min(Spin::WAIT_CAP).as_nanos() as u64;
        self.avg_ns = (self.avg_ns * 7 + w) / 8;
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("path", &self.path)
            .field("position", &self.core.pos())
            .field("last_block", &self.last_block)
            .finish()
    }
}

impl Subscriber {
    /// Open a ring, read-only: by name (`"steem"`, a file under `/dev/shm`) or by path
    /// (anything with a `/`, e.g. `"./test.ring"` or a `PathBuf`), the same way as
    /// `Publisher` and [`crate::Bot`] take it.
    pub fn open(ring: impl AsRef<Path>) -> Result<Builder, Error> {
        let path = resolve_ring(ring.as_ref())?;
        let map = file::open_read(&path)?;
        Ok(Builder {
            path,
            map,
            topics: None,
            wait: Wait::Backoff,
            lag: LagPolicy::Oldest,
            stop: None,
            stale_after: Duration::from_secs(5),
            max_nap: MAX_SLEEP,
        })
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Topics of the filter that no op type of either chain has ([`ops::is_known_topic`]):
    /// most likely typos (`"coment"`), which never match anything.
    pub fn unknown_topics(&self) -> Vec<&str> {
        self.topics
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|t| !ops::is_known_topic(t))
            .collect()
    }

    /// The chain the ring carries, as its broadcaster recorded it (`None`: not recorded, or
    /// not a valid chain record).
    pub fn chain(&self) -> Option<Chain> {
        chain_of(&self.map)
    }

    /// The last block whose end this subscriber has passed.
    pub fn last_block(&self) -> Option<u64> {
        self.last_block
    }

    /// The last op received, as a cursor to save.
    pub fn position(&self) -> Option<Cursor> {
        self.last_op
    }

    /// The last block committed to the ring, whether or not this subscriber has read it.
    pub fn committed_block(&self) -> Option<u64> {
        ring::last_committed_block(&self.ring()).ok().flatten()
    }

    fn ring(&self) -> Ring<'_> {
        Ring::new(self.map.words(), self.map.capacity)
    }

    /// Whether a writer is publishing into the ring, or that the file was replaced.
    ///
    /// The writer holds a lock on the ring's open file for its whole life, which the kernel
    /// drops when it dies, however it dies; this probes that lock, so a dead writer is seen at
    /// once, also after its pid was reused and from another pid namespace. The heartbeat (on the
    /// host's boot-time clock, which never jumps) tells a live writer from a hung one.
    pub fn producer_status(&self) -> ProducerStatus {
        if file::current_id(&self.path).is_some_and(|id| id != self.map.id) {
            return ProducerStatus::Replaced;
        }
        let ring = self.ring();
        let (pid, epoch) = (ring.pid(), ring.epoch());
        if file::writer_present(&self.map) == Some(false) {
            return ProducerStatus::Dead { pid, epoch };
        }
        let silent_for =
            Duration::from_nanos(file::heartbeat_now().saturating_sub(ring.heartbeat_ns()));
        if silent_for <= self.stale_after {
            return ProducerStatus::Alive { pid, epoch };
        }
        ProducerStatus::Stale {
            pid,
            epoch,
            silent_for,
        }
    }

    /// Writer epoch last seen by this subscriber (changes when a new writer takes over).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Receive the next op or block end without blocking (`Ok(None)`: nothing new).
    ///
    /// The op owns a copy of its payload (one allocation per op); [`Subscriber::try_recv_ref`]
    /// lends it instead.
    pub fn try_recv(&mut self) -> Result<Option<Event>, RecvError> {
        Ok(self.next_raw()?.map(|raw| self.owned(raw)))
    }

    /// Like [`Subscriber::try_recv`], but the op borrows its payload and topic from the
    /// subscriber, whose buffer is reused from one op to the next: no heap allocation per op
    /// (once the buffer has grown to the largest payload read). The payload is still a copy
    /// taken out of the ring and validated, never a view of live ring memory.
    pub fn try_recv_ref(&mut self) -> Result<Option<EventRef<'_>>, RecvError> {
        match self.next_raw()? {
            Some(raw) => Ok(Some(self.borrowed(raw))),
            None => Ok(None),
        }
    }

    fn owned(&mut self, raw: Raw) -> Event {
        match raw {
            Raw::End(e) => Event::BlockEnd(e),
            Raw::Fork {
                first_block,
                ancestor_id,
            } => Event::Fork(Fork {
                first_block,
                orphaned_ids: fork_ids(self.core.payload()).to_vec(),
                ancestor_id,
            }),
            Raw::Op {
                header,
                index_in_block,
            } => Event::Op(Op {
                topic: self.topic_arc(header.topic),
                header,
                index_in_block,
                payload: self.core.payload().to_vec(),
                chain: self.chain,
            }),
        }
    }

    fn borrowed(&self, raw: Raw) -> EventRef<'_> {
        match raw {
            Raw::End(e) => EventRef::BlockEnd(e),
            Raw::Fork {
                first_block,
                ancestor_id,
            } => EventRef::Fork(ForkRef {
                first_block,
                orphaned_ids: fork_ids(self.core.payload()),
                ancestor_id,
            }),
            Raw::Op {
                header,
                index_in_block,
            } => EventRef::Op(OpRef {
                topic: self.core.topic_name(header.topic),
                header,
                index_in_block,
                payload: self.core.payload(),
                chain: self.chain,
            }),
        }
    }

    /// The next op (its payload in `self.core.payload()`) or block end, without blocking.
    fn next_raw(&mut self) -> Result<Option<Raw>, RecvError> {
        loop {
            if let Some(e) = self.pending.take() {
                return Err(e);
            }
            let ring = Ring::new(self.map.words(), self.map.capacity);
            let polled = self.core.poll(&ring).map_err(|f| self.fault(f))?;
            match polled {
                Polled::Empty => {
                    self.epoch = ring.epoch();
                    // The clock is read every so many empty polls only (and before every
                    // sleep, see `recv_raw_deadline`), not on each.
                    self.idle_polls = self.idle_polls.wrapping_add(1);
                    if self.idle_polls % IDLE_POLLS_PER_CLOCK_READ == 0
                        && self.last_file_check.elapsed() >= FILE_CHECK_INTERVAL
                    {
                        self.last_file_check = Instant::now();
                        self.check_sleeper();
                        if self.reopen_if_replaced()? {
                            continue;
                        }
                    }
                    return Ok(None);
                }
                Polled::Lagged {
                    lost,
                    lost_matching,
                } => {
                    return Err(RecvError::Lagged {
                        lost,
                        lost_matching,
                    });
                }
                Polled::BlockEnd(h) => {
                    self.skip_fork = false;
                    // A cursor inside block b: b's end is still to come. A cursor past the whole
                    // of b (after a ring replacement): b's end was delivered already.
                    let whole = |c: Cursor| c.index_in_block == u32::MAX;
                    if self
                        .skip
                        .is_some_and(|c| h.block < c.block || (h.block == c.block && whole(c)))
                    {
                        if self.skip.is_some_and(|c| h.block == c.block) {
                            self.skip = None;
                        }
                        continue;
                    }
                    if self.skip.is_some_and(|c| h.block >= c.block) {
                        self.skip = None;
                    }
                    self.last_block = Some(h.block);
                    return Ok(Some(Raw::End(BlockEnd {
                        block: h.block,
                        timestamp: h.timestamp,
                        block_id: h.trx_id,
                        op_count: h.topic_seq,
                    })));
                }
                Polled::Gap {
                    header,
                    from,
                    to,
                    ops,
                } => {
                    self.skip_fork = false;
                    // It opens its block: a cursor in that block (or later) has seen it.
                    if self.skip.is_some_and(|c| header.block <= c.block) {
                        continue;
                    }
                    return Err(RecvError::UpstreamGap {
                        from_block: from,
                        to_block: to,
                        lost_ops: (ops != crate::layout::GAP_OPS_UNKNOWN).then_some(ops),
                    });
                }
                Polled::Fork { header, .. } => {
                    if std::mem::take(&mut self.skip_fork) {
                        continue;
                    }
                    // Delivered even while skipping to a cursor: the cursor may lie in an
                    // orphaned block. The new branch's blocks from its first one on are all to
                    // be read, so a cursor in or after them no longer skips anything.
                    if self.skip.is_some_and(|c| c.block >= header.block) {
                        self.skip = None;
                    }
                    self.last_block = Some(header.block.saturating_sub(1));
                    self.last_op = None;
                    return Ok(Some(Raw::Fork {
                        first_block: header.block,
                        ancestor_id: header.trx_id,
                    }));
                }
                Polled::Op {
                    header,
                    index_in_block,
                } => {
                    self.skip_fork = false;
                    if let Some(c) = self.skip {
                        if header.block < c.block
                            || (header.block == c.block && index_in_block <= c.index_in_block)
                        {
                            continue;
                        }
                        self.skip = None;
                    }
                    self.last_op = Some(cursor_of(&header, index_in_block));
                    if self.chain.is_none() && self.chain_checked_in != Some(header.block) {
                        // A broadcaster records the chain just after creating the ring, never
                        // within a block; a subscriber that opened it before then learns it with
                        // the first op it gets of a block.
                        self.chain_checked_in = Some(header.block);
                        self.chain = chain_of(&self.map);
                    }
                    return Ok(Some(Raw::Op {
                        header,
                        index_in_block,
                    }));
                }
            }
        }
    }

    /// Receive the next op without blocking, passing over block ends.
    pub fn try_recv_op(&mut self) -> Result<Option<Op>, RecvError> {
        loop {
            match self.try_recv()? {
                Some(Event::Op(op)) => return Ok(Some(op)),
                Some(Event::BlockEnd(_)) => {}
                Some(Event::Fork(fork)) => return Err(fork.into()),
                None => return Ok(None),
            }
        }
    }

    /// Receive the next op or block end, waiting as configured.
    pub fn recv(&mut self) -> Result<Event, RecvError> {
        let raw = self.recv_raw_deadline(None)?.ok_or(RecvError::Stopped)?;
        Ok(self.owned(raw))
    }

    /// Like [`Subscriber::recv`], but gives up after `timeout` (`Ok(None)`).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Event>, RecvError> {
        let raw = self.recv_raw_deadline(Some(Instant::now() + timeout))?;
        Ok(raw.map(|raw| self.owned(raw)))
    }

    /// Like [`Subscriber::recv`], but the op borrows its payload (see
    /// [`Subscriber::try_recv_ref`]): no heap allocation per op.
    pub fn recv_ref(&mut self) -> Result<EventRef<'_>, RecvError> {
        let raw = self.recv_raw_deadline(None)?.ok_or(RecvError::Stopped)?;
        Ok(self.borrowed(raw))
    }

    /// Like [`Subscriber::recv_timeout`], but the op borrows its payload.
    pub fn recv_timeout_ref(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<EventRef<'_>>, RecvError> {
        match self.recv_raw_deadline(Some(Instant::now() + timeout))? {
            Some(raw) => Ok(Some(self.borrowed(raw))),
            None => Ok(None),
        }
    }

    fn recv_raw_deadline(&mut self, deadline: Option<Instant>) -> Result<Option<Raw>, RecvError> {
        // Set at the first empty poll (`Wait::Backoff`): how long this wait has lasted.
        let mut waiting_since: Option<Instant> = None;
        let mut spins: u32 = 0;
        let mut yielding = false;
        loop {
            // Checked before data too, so a subscriber working through a backlog still stops.
            // Relaxed: a flag with no data attached.
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                return Err(RecvError::Stopped);
            }
            if let Some(raw) = self.next_raw()? {
                if let Some(since) = waiting_since {
                    self.spin.record(since.elapsed());
                }
                return Ok(Some(raw));
            }
            // The clock is read only with a deadline, every so many polls while spinning, and
            // before sleeping.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            match self.wait {
                Wait::BusySpin => std::hint::spin_loop(),
                Wait::Backoff => {
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    spins = spins.wrapping_add(1);
                    if !yielding && spins % Spin::POLLS_PER_CLOCK_READ != 0 {
                        std::hint::spin_loop();
                        continue;
                    }
                    let waited = since.elapsed();
                    if waited < self.spin.budget() {
                        // Spin the first [`Spin::MIN`], then yield between polls: on a host
                        // with more bots than cores the writer and the other bots run.
                        yielding = waited >= Spin::MIN;
                        if yielding {
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                        continue;
                    }
                    // Read the wake-up word, then look for data once more before sleeping, so
                    // a commit in between is not slept through (the futex returns at once if
                    // the word moved). Acquire: pairs with the writer's Release store of the
                    // word after its commit.
                    let seen = self.ring().notify_word().load(Ordering::Acquire);
                    if let Some(raw) = self.next_raw()? {
                        self.spin.record(since.elapsed());
                        return Ok(Some(raw));
                    }
                    let nap = deadline.map_or(self.max_nap, |d| {
                        d.saturating_duration_since(Instant::now())
                            .min(self.max_nap)
                    });
                    self.sleep(seen, nap);
                    // Let the next empty poll check whether the file was replaced.
                    self.idle_polls = IDLE_POLLS_PER_CLOCK_READ - 1;
                }
            }
        }
    }

    /// Sleep until the notify word moves from `seen` (a commit), for at most `nap`, registered
    /// as a sleeper so that the writer makes the wake-up call.
    fn sleep(&mut self, seen: u64, nap: Duration) {
        if matches!(self.sleeper, Sleeper::Untried) {
            self.sleeper = match WaitFile::open(&self.path) {
                Some(w) => {
                    let slot = w.claim();
                    Sleeper::Registered(w, slot)
                }
                None => Sleeper::Absent,
            };
        }
        let ring = Ring::new(self.map.words(), self.map.capacity);
        match &self.sleeper {
            Sleeper::Registered(w, slot) => {
                w.set(*slot, true);
                file::futex_wait(ring.notify_word(), seen, nap);
                w.set(*slot, false);
            }
            _ => file::futex_wait(ring.notify_word(), seen, nap),
        }
    }

    /// Receive the next op, waiting as configured and passing over block ends.
    pub fn recv_op(&mut self) -> Result<Op, RecvError> {
        loop {
            match self.recv()? {
                Event::Op(op) => return Ok(op),
                Event::BlockEnd(_) => {}
                Event::Fork(fork) => return Err(fork.into()),
            }
        }
    }

    /// A blocking iterator over ops. It yields `Err` for lag, gap and fork reports (and keeps
    /// going after them: [`RecvError::Lagged`], [`RecvError::Gap`], [`RecvError::UpstreamGap`],
    /// [`RecvError::Forked`]), and
    /// ends when the stop flag is raised.
    pub fn iter(&mut self) -> Iter<'_> {
        Iter { sub: self }
    }

    fn topic_arc(&mut self, id: u16) -> Arc<str> {
        let id = usize::from(id);
        if id >= self.topic_cache.len() {
            self.topic_cache = (0..=id)
                .map(|i| Arc::from(self.core.topic_name(i as u16)))
                .collect::<Vec<Arc<str>>>();
        }
        self.topic_cache[id].clone()
    }

    fn fault(&self, f: ReadFault) -> RecvError {
        match f {
            ReadFault::Corrupt { pos, reason } => RecvError::Corrupt {
                path: self.path.clone(),
                pos,
                reason,
            },
            ReadFault::Overrun => RecvError::Overrun {
                path: self.path.clone(),
            },
        }
    }

    /// Open the wait file again at the next sleep if there was none, or if another one now sits
    /// at its path.
    fn check_sleeper(&mut self) {
        let again = match &self.sleeper {
            Sleeper::Untried => false,
            Sleeper::Absent => true,
            Sleeper::Registered(w, _) => {
                file::current_id(&waiters::wait_path(&self.path)) != Some(w.id())
            }
        };
        if again {
            self.sleeper = Sleeper::Untried;
        }
    }

    /// If another file now sits at the ring's path, map it and continue after the last block
    /// this subscriber finished.
    fn reopen_if_replaced(&mut self) -> Result<bool, RecvError> {
        match file::current_id(&self.path) {
            Some(id) if id != self.map.id => {}
            _ => return Ok(false),
        }
        // A replacement that cannot be opened yet (or is not a ring) is retried later.
        let Ok(map) = file::open_read(&self.path) else {
            return Ok(false);
        };
        let ring = Ring::new(map.words(), map.capacity);
        let (pos, skip, pending) = match self.last_block {
            None => (
                ring::seek_earliest(&ring).map_err(|f| self.fault(f))?,
                None,
                None,
            ),
            Some(b) => {
                match ring::seek_block(&ring, b + 1, Branch::Newest).map_err(|f| self.fault(f))? {
                    Seek::Found(p) => (p, None, None),
                    Seek::NotYet { .. } => {
                        let through = Cursor::after_block(b, None);
                        (ring::seek_latest(&ring), Some(through), None)
                    }
                    Seek::Gone { earliest } => (
                        ring::seek_earliest(&ring).map_err(|f| self.fault(f))?,
                        None,
                        Some(RecvError::Gap {
                            last_seen: b,
                            resumed_at: earliest,
                        }),
                    ),
                }
            }
        };
        let mut core =
            ReaderCore::new(&ring, pos, self.topics.as_deref()).map_err(|f| self.fault(f))?;
        core.set_lag_policy(self.lag);
        self.epoch = ring.epoch();
        self.core = core;
        self.map = map;
        self.topic_cache.clear();
        self.chain = chain_of(&self.map);
        self.sleeper = Sleeper::Untried;
        self.skip = skip.or(self.skip);
        // It starts after the last block read: a notice there orphans only blocks not read.
        self.skip_fork = true;
        self.pending = pending;
        Ok(true)
    }
}

/// Blocking iterator over ops; see [`Subscriber::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    sub: &'a mut Subscriber,
}

impl Iterator for Iter<'_> {
    type Item = Result<Op, RecvError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.sub.recv_op() {
            Err(RecvError::Stopped) => None,
            other => Some(other),
        }
    }
}
