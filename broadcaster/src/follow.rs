//! Following the chain: which block to ask for, when, and in what order to hand blocks on.
//!
//! The follower keeps `next`, the next block to publish, and `target`, the newest block known to
//! be followable (the last irreversible block in `irreversible` mode, the head in `head` mode,
//! never above `--stop-block`). Blocks are handed to the publisher strictly in order, one at a
//! time, through a bounded channel.
//!
//! - **Behind** (`next <= target`): up to `max_in_flight` chunks are fetched concurrently
//!   (`block_api.get_block_range` chunks where a node has it, single blocks otherwise) and
//!   handed on in order as each chunk completes.
//! - **At the tip**: nothing is asked before the next block is due (the newest known block's
//!   timestamp plus the block interval). Then, in `head` mode, the follower asks for block `next`
//!   directly every `tip_poll_interval` (jittered), so the block is published within about
//!   that interval of a node first serving it, and refreshes the global properties at most every
//!   `props_poll_interval`; in `irreversible` mode it polls the global properties every
//!   `props_poll_interval` until the last irreversible block moves. A node that asks to slow
//!   down (`Retry-After`) is not asked sooner. When nothing has moved for
//!   `stall_timeout`, the next poll goes to another node, so a node stuck in the past is found
//!   out by comparison (see [`crate::failover`]).
//!
//! # Forks
//!
//! Every block's `previous` must equal the id of the block published before it. A block that
//! does not link is not handed on; the node that sent it cools down and the block is fetched
//! again, usually from another node, together with everything after it.
//!
//! - In `irreversible` mode this is always the fault of the node that sent it (a node of a
//!   mirror or a testnet, a node serving a reversible branch as irreversible): irreversible
//!   blocks are never orphaned, so the follower never switches branches.
//! - In `head` mode it is how forks show. The other branch is taken only when two different
//!   nodes serve the same unlinked block, or when one serves it again once the last irreversible
//!   block has passed it; a single answer never makes the follower switch. Then the follower
//!   walks the new branch back, block by block, to the newest block it shares with what was
//!   published (the fork point), and publishes the new branch from the block after it, the
//!   first block carrying the ids of the published blocks it orphans: the ring's fork notice,
//!   which readers get before the new branch's blocks (whose numbers repeat the orphaned ones).
//!   The follower remembers the newest [`MAX_FORK_DEPTH`] published blocks (read back from the
//!   ring after a restart); a fork deeper than what it remembers orphans all of those.
//!
//! After a restart the first block must link to the ring's last block, like any other.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{Mode, StartBlock, Tuning};
use crate::failover::Pool;
use crate::node::{FetchedBlock, MAX_RANGE, NodeError};

/// Chain progress shared with the publisher for its progress line.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Newest head block seen on any node (0: unknown).
    pub head: AtomicU64,
    /// Newest last irreversible block seen on any node (0: unknown).
    pub irreversible: AtomicU64,
}

/// Published blocks remembered to find a fork point (far more than either chain's reversible
/// blocks).
pub(crate) const MAX_FORK_DEPTH: usize = 512;

/// Attempts at fetching one block of a branch being taken before giving up this time (the
/// unlinked block is then fetched again, which starts over).
const BRANCH_FETCH_ATTEMPTS: usize = 4;

/// The weight assumed for a block before any was fetched: about a today-sized block.
const FIRST_BLOCK_WEIGHT: u64 = 128 << 10;

/// A spawned task that is aborted when dropped, so abandoned fetches do not linger.
pub(crate) struct Task<T>(JoinHandle<T>);

impl<T: Send + 'static> Task<T> {
    pub(crate) fn spawn(future: impl Future<Output = T> + Send + 'static) -> Self {
        Task(tokio::spawn(future))
    }

    /// Waits for the task; a panic inside it is resumed here.
    pub(crate) async fn join(mut self) -> T {
        match (&mut self.0).await {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("task cancelled while awaited: {e}"),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why following stopped early: the publisher hung up (shutdown or stop block). Nothing else
/// stops the follower: requests wait for a node that answers.
struct Halt;

/// What the follower needs from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct FollowSettings {
    pub mode: Mode,
    pub start_block: Option<StartBlock>,
    pub stop_block: Option<u64>,
    pub virtual_ops: bool,
    pub tuning: Tuning,
}

struct Follower {
    pool: Arc<Pool>,
    settings: FollowSettings,
    tx: mpsc::Sender<FetchedBlock>,
    progress: Arc<Progress>,
    next: u64,
    target: u64,
    /// Id and timestamp of the last block handed on.
    last: Option<(String, u32)>,
    /// Head time from the last global properties.
    head_time: u32,
    last_tip_attempt: Option<Instant>,
    /// When `target` last moved forward.
    last_advance: Instant,
    /// An unlinked block being refetched, and the nodes that served it.
    fork: Option<Fork>,
    /// Average memory weight of the blocks fetched lately (0: none yet), for chunk sizes.
    block_weight: u64,
    /// The newest last irreversible block any node reported.
    irreversible: u64,
    /// When the properties were last polled.
    last_props: Option<Instant>,
    /// Numbers and ids of the newest blocks handed on, oldest first (at most
    /// [`MAX_FORK_DEPTH`]): where a fork point is looked for.
    history: VecDeque<(u64, String)>,
}

/// Whether a block links to the last one handed on.
enum Link {
    Yes,
    /// Not (yet): the node that served it cooled down; fetch it again.
    No,
    /// Another branch, confirmed: published blocks were orphaned.
    Switch,
}

/// A block that does not link to the last one handed on, as served by one or more nodes.
struct Fork {
    number: u64,
    previous: String,
    nodes: Vec<usize>,
    /// How many times it was served.
    seen: u32,
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Follows the chain through `pool` from after `resume` (or the configured start) and sends
/// every block, in order, into `tx`. Returns when the stop block was sent or `tx` closed.
/// `recent` are the newest published blocks (see [`crate::sink::Sink::recent_links`]).
pub(crate) async fn follow(
    pool: Arc<Pool>,
    settings: FollowSettings,
    resume: Option<u64>,
    link: Option<(String, u32)>,
    recent: Vec<(u64, String)>,
    tx: mpsc::Sender<FetchedBlock>,
    progress: Arc<Progress>,
) {
    let mut follower = Follower {
        pool,
        settings,
        tx,
        progress,
        next: 1,
        target: 0,
        // After a restart the first block must link to the last one in the ring.
        last: link,
        head_time: 0,
        last_tip_attempt: None,
        last_advance: Instant::now(),
        fork: None,
        block_weight: 0,
        irreversible: 0,
        last_props: None,
        history: recent.into_iter().collect(),
    };
    // The sink's last block at least, when it could not say more.
    if let (Some(last), Some((id, _)), true) = (resume, &follower.last, follower.history.is_empty())
    {
        follower.history.push_back((last, id.clone()));
    }
    match follower.run(resume).await {
        Ok(()) | Err(Halt) => {}
    }
}

impl Follower {
    async fn run(&mut self, resume: Option<u64>) -> Result<(), Halt> {
        self.next = match (resume, self.settings.start_block) {
            (Some(last), _) => last + 1,
            (None, Some(StartBlock::Number(n))) => n,
            (None, start) => {
                let (_, props) = self.pool.props(0, self.settings.mode).await;
                self.observe(&props);
                match start {
                    Some(StartBlock::Head) => props.head_block_number,
                    Some(StartBlock::Irreversible) => Mode::Irreversible.target(&props),
                    _ => self.settings.mode.target(&props),
                }
                .max(1)
            }
        };
        info!(
            mode = ?self.settings.mode,
            "following the {} from block {}",
            self.settings.mode.target_name(),
            self.next
        );
        loop {
            if self
                .settings
                .stop_block
                .is_some_and(|stop| self.next > stop)
            {
                return Ok(());
            }
            if self.next <= self.target {
                self.catch_up().await?;
            } else {
                self.at_tip().await?;
            }
        }
    }

    fn observe(&mut self, props: &crate::node::GlobalProps) {
        let mut target = self.target.max(self.settings.mode.target(props));
        if let Some(stop) = self.settings.stop_block {
            target = target.min(stop);
        }
        if target > self.target {
            self.last_advance = Instant::now();
        }
        self.target = target;
        self.head_time = self.head_time.max(props.time);
        self.irreversible = self.irreversible.max(Mode::Irreversible.target(props));
        // Relaxed: a statistic for the progress line; nothing else depends on it.
        self.progress
            .head
            .fetch_max(props.head_block_number, Ordering::Relaxed);
        self.progress
            .irreversible
            .fetch_max(self.irreversible, Ordering::Relaxed);
    }

    async fn poll(&mut self) -> Result<(), Halt> {
        self.last_props = Some(Instant::now());
        let (_, props) = self
            .pool
            .props(self.next.saturating_sub(1), self.settings.mode)
            .await;
        self.observe(&props);
        Ok(())
    }

    /// Fetches `next..=target` with bounded concurrency and hands the blocks on in order.
    ///
    /// Memory is bounded in bytes too: each request asks for at most the blocks that fit its
    /// share of `fetch_buffer` (`fetch_buffer / max_in_flight`), judged by the size of the
    /// blocks fetched so far, so big blocks go in smaller chunks. At least one block is asked
    /// for, however big.
    async fn catch_up(&mut self) -> Result<(), Halt> {
        let limit = self.target;
        let chunk = u64::from(self.settings.tuning.range_chunk.clamp(1, MAX_RANGE));
        let max_in_flight = self.settings.tuning.max_in_flight.max(1);
        let share = self.settings.tuning.fetch_buffer / max_in_flight as u64;
        let mut in_flight: VecDeque<Task<ChunkResult>> = VecDeque::new();
        let mut scheduled = self.next;
        loop {
            while in_flight.len() < max_in_flight && scheduled <= limit {
                // Until a block was seen, a first guess of a today-sized block (about 100 KB).
                let weight = if self.block_weight == 0 {
                    FIRST_BLOCK_WEIGHT
                } else {
                    self.block_weight
                };
                let fits = (share / weight.max(1)).max(1);
                let count = (limit - scheduled + 1).min(chunk).min(fits) as u32;
                in_flight.push_back(Task::spawn(fetch_chunk(
                    Arc::clone(&self.pool),
                    scheduled,
                    count,
                    limit,
                    self.settings.virtual_ops,
                    self.settings.mode == Mode::Head,
                )));
                scheduled += u64::from(count);
            }
            let Some(task) = in_flight.pop_front() else {
                return Ok(());
            };
            let blocks = task.join().await;
            if !blocks.is_empty() {
                let total: u64 = blocks.iter().map(|(_, b)| b.weight()).sum();
                let average = total / blocks.len() as u64;
                // Follows size changes within a few chunks, without jumping on one odd chunk.
                self.block_weight = if self.block_weight == 0 {
                    average
                } else {
                    (self.block_weight * 3 + average) / 4
                };
            }
            for (idx, block) in blocks {
                match self.links(idx, &block) {
                    Link::Yes => self.emit(block).await?,
                    Link::Switch if self.switch(idx, block).await? => {}
                    Link::No | Link::Switch => return self.after_unlinked().await,
                }
            }
        }
    }

    /// Waits until the next block is due, then asks for it (head) or polls (irreversible).
    async fn at_tip(&mut self) -> Result<(), Halt> {
        let tuning = self.settings.tuning.clone();
        let newest = self
            .last
            .as_ref()
            .map_or(0, |(_, ts)| *ts)
            .max(self.head_time);
        let due = Duration::from_secs(u64::from(newest)) + tuning.block_interval;
        let until_due = due.saturating_sub(unix_now());
        // Head mode asks for the due block every `tip_poll_interval`, jittered by up to a third
        // either way so several broadcasters do not ask in step; irreversible mode polls the
        // properties, which move once a block, every `props_poll_interval`.
        let interval = match self.settings.mode {
            Mode::Head => tuning
                .tip_poll_interval
                .mul_f64(0.67 + 0.66 * fastrand::f64()),
            Mode::Irreversible => tuning.props_poll_interval,
        };
        let spacing = self
            .last_tip_attempt
            .map_or(Duration::ZERO, |at| interval.saturating_sub(at.elapsed()));
        tokio::time::sleep(until_due.max(spacing)).await;
        self.last_tip_attempt = Some(Instant::now());
        if self.last_advance.elapsed() > tuning.stall_timeout {
            let why = format!(
                "the {} has not moved for {} s",
                self.settings.mode.target_name(),
                self.last_advance.elapsed().as_secs()
            );
            self.pool.rotate(&why);
            self.last_advance = Instant::now();
        }

        if self.settings.mode == Mode::Irreversible {
            return self.poll().await;
        }
        let (idx, blocks) = self.pool.blocks(self.next, 1, None).await;
        match blocks.into_iter().next() {
            Some(mut block) => {
                if self.settings.virtual_ops {
                    let appbase = appbase_encoded(&block, &self.pool, idx);
                    let (_, ops) = self
                        .pool
                        .virtual_ops(block.block.number, 1, true, appbase)
                        .await;
                    block.block.ops.extend(ops.into_iter().map(|(_, op)| op));
                }
                let stamp = block.block.timestamp;
                match self.links(idx, &block) {
                    Link::Yes => self.emit(block).await?,
                    Link::Switch if self.switch(idx, block).await? => {}
                    Link::No | Link::Switch => return self.after_unlinked().await,
                }
                self.last_tip_attempt = None;
                let behind = unix_now().saturating_sub(Duration::from_secs(u64::from(stamp)));
                if behind > tuning.block_interval * 2 {
                    self.poll().await?;
                }
                Ok(())
            }
            None => {
                // Not there yet. Now and then the properties tell whether it should be: if so,
                // the next round fetches it as a known block, where an empty answer is a fault.
                if self
                    .last_props
                    .is_none_or(|at| at.elapsed() >= tuning.props_poll_interval)
                {
                    self.poll().await?;
                }
                Ok(())
            }
        }
    }

    /// Whether `block` links to the last block handed on (see the module docs on forks).
    fn links(&mut self, idx: usize, fetched: &FetchedBlock) -> Link {
        let block = &fetched.block;
        let Some((last_id, _)) = self.last.as_ref().filter(|(id, _)| !id.is_empty()) else {
            return Link::Yes;
        };
        if block.previous == *last_id {
            self.fork = None;
            return Link::Yes;
        }
        let head_mode = self.settings.mode == Mode::Head;
        let (confirmed_by, seen) = match &mut self.fork {
            Some(fork) if fork.number == block.number && fork.previous == block.previous => {
                if !fork.nodes.contains(&idx) {
                    fork.nodes.push(idx);
                }
                fork.seen += 1;
                (fork.nodes.len(), fork.seen)
            }
            _ => {
                self.fork = Some(Fork {
                    number: block.number,
                    previous: block.previous.clone(),
                    nodes: vec![idx],
                    seen: 1,
                });
                (1, 1)
            }
        };
        // Irreversible blocks cannot be orphaned: a block that does not link is always the
        // fault of the node that sent it. At the head, a new branch is taken once two nodes
        // serve it, or once it came back again after the last irreversible block had passed
        // the fork point.
        let irreversible_past = self.irreversible >= block.number && seen >= 2;
        if head_mode && (confirmed_by >= 2 || irreversible_past) {
            let why = if confirmed_by >= 2 {
                format!("{confirmed_by} nodes serve it")
            } else {
                format!(
                    "the last irreversible block {} is past it",
                    self.irreversible
                )
            };
            info!(
                "block {} has previous {}, not the published {last_id}, and {why}: taking that branch",
                block.number, block.previous
            );
            self.fork = None;
            return Link::Switch;
        }
        let error = NodeError::Fork {
            block: block.number,
            previous: block.previous.clone(),
            expected: last_id.clone(),
        };
        self.pool
            .report(idx, &error, &format!("block {}", block.number));
        Link::No
    }

    /// Takes the branch of `tip`, a block that does not link to the last one handed on: walks
    /// it back to the newest block it shares with what was handed on, then hands on its blocks
    /// from the one after that, the first carrying the ids of the blocks it orphans. `false`:
    /// the branch could not be fetched this time (its nodes cool down; `tip` is fetched again).
    async fn switch(&mut self, idx: usize, tip: FetchedBlock) -> Result<bool, Halt> {
        let mut branch: VecDeque<(usize, FetchedBlock)> = VecDeque::from([(idx, tip)]);
        let oldest = self.history.front().map_or(u64::MAX, |(n, _)| *n);
        loop {
            let first = &branch[0].1.block;
            let (number, want) = (first.number, first.previous.clone());
            let fork_point = number.saturating_sub(1);
            if self
                .history
                .iter()
                .any(|(n, id)| *n == fork_point && *id == want)
            {
                break;
            }
            if number <= oldest {
                warn!(
                    "the branch of block {} forks before block {number}, the oldest block this \
                     broadcaster remembers publishing: declaring the blocks from {number} on \
                     orphaned",
                    branch[branch.len() - 1].1.block.number
                );
                break;
            }
            let mut found = None;
            for _ in 0..BRANCH_FETCH_ATTEMPTS {
                let (i, blocks) = self.pool.blocks(fork_point, 1, Some(fork_point)).await;
                match blocks.into_iter().next() {
                    Some(b) if b.block.id == want => {
                        found = Some((i, b));
                        break;
                    }
                    Some(b) => {
                        let error = NodeError::OtherBranch {
                            block: fork_point,
                            id: b.block.id,
                            expected: want.clone(),
                        };
                        self.pool.report(i, &error, &format!("block {fork_point}"));
                    }
                    None => {}
                }
            }
            let Some(found) = found else {
                warn!(
                    "could not fetch block {fork_point} ({want}) of the branch being taken; trying again"
                );
                return Ok(false);
            };
            branch.push_front(found);
        }
        if self.settings.virtual_ops && branch.len() > 1 {
            // The tip has its virtual operations already; the blocks before it need theirs.
            let tip = branch.pop_back();
            let mut before: Vec<(usize, FetchedBlock)> = branch.drain(..).collect();
            add_virtual_ops(&self.pool, &mut before, true).await;
            branch.extend(before);
            branch.extend(tip);
        }
        let first = branch[0].1.block.number;
        let orphaned: Vec<String> = self
            .history
            .iter()
            .filter(|(n, _)| *n >= first)
            .map(|(_, id)| id.clone())
            .collect();
        if orphaned.is_empty() {
            // Nothing remembered to name as orphaned: the block cannot be published.
            error!(
                "block {first} of another branch does not link to the last published block, and \
                 no published block is remembered to declare orphaned; trying again"
            );
            return Ok(false);
        }
        error!(
            "fork: published blocks {first}..={} were orphaned ({}); publishing the new branch from \
             block {first} (previous {}) after a fork notice",
            first + orphaned.len() as u64 - 1,
            orphaned.join(", "),
            branch[0].1.block.previous
        );
        branch[0].1.orphaned = orphaned;
        for (_, block) in branch {
            self.emit(block).await?;
        }
        Ok(true)
    }

    /// After a block that does not link, in head mode: refresh the last irreversible block, which
    /// may confirm the other branch.
    async fn after_unlinked(&mut self) -> Result<(), Halt> {
        if self.settings.mode == Mode::Head {
            self.poll().await?;
        }
        Ok(())
    }

    async fn emit(&mut self, fetched: FetchedBlock) -> Result<(), Halt> {
        let block = &fetched.block;
        while self.history.back().is_some_and(|(n, _)| *n >= block.number) {
            self.history.pop_back();
        }
        if self.history.len() == MAX_FORK_DEPTH {
            self.history.pop_front();
        }
        self.history.push_back((block.number, block.id.clone()));
        // A published block is progress: the node serving them is not stalled.
        self.last_advance = Instant::now();
        self.next = block.number + 1;
        self.last = Some((block.id.clone(), block.timestamp));
        self.target = self.target.max(block.number);
        self.tx.send(fetched).await.map_err(|_| Halt)
    }
}

/// The blocks of one chunk, each with the index of the node that sent it.
type ChunkResult = Vec<(usize, FetchedBlock)>;

/// Fetches blocks `first..first+count` (all known to exist, `known` being the newest) and, if
/// asked, their virtual operations.
async fn fetch_chunk(
    pool: Arc<Pool>,
    first: u64,
    count: u32,
    known: u64,
    virtual_ops: bool,
    head_mode: bool,
) -> ChunkResult {
    let mut out: Vec<(usize, FetchedBlock)> = Vec::with_capacity(count as usize);
    while out.len() < count as usize {
        let n = first + out.len() as u64;
        let (idx, blocks) = pool.blocks(n, count - out.len() as u32, Some(known)).await;
        out.extend(blocks.into_iter().map(|b| (idx, b)));
    }
    if virtual_ops {
        add_virtual_ops(&pool, &mut out, head_mode).await;
    }
    out
}

/// Appends to each block of `blocks` (consecutive, ascending) its virtual operations, asked
/// for runs of blocks in the same encoding: a run is one range call where a node has one.
async fn add_virtual_ops(pool: &Pool, blocks: &mut [(usize, FetchedBlock)], head_mode: bool) {
    let encodings: Vec<bool> = blocks
        .iter()
        .map(|(idx, fetched)| appbase_encoded(fetched, pool, *idx))
        .collect();
    let mut at = 0;
    while at < blocks.len() {
        let appbase = encodings[at];
        let run = encodings[at..]
            .iter()
            .take_while(|&&a| a == appbase)
            .count();
        let first = blocks[at].1.block.number;
        let (end, ops) = pool
            .virtual_ops(first, run as u32, head_mode, appbase)
            .await;
        for (number, op) in ops {
            // The node checked every op's block against the range asked.
            let slot = (number - first) as usize;
            blocks[at + slot].1.block.ops.push(op);
        }
        at += (end - first) as usize;
    }
}

/// Whether a block came in the appbase encoding (`{"type":..,"value":..}` operations), so its
/// virtual operations are asked in the same one. A block without operations tells nothing:
/// the encoding the node that sent it serves blocks in decides.
fn appbase_encoded(fetched: &FetchedBlock, pool: &Pool, idx: usize) -> bool {
    fetched.appbase.unwrap_or_else(|| pool.serves_appbase(idx))
}
