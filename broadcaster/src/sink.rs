//! Where decoded blocks go.
//!
//! The broadcaster publishes through the [`Sink`] trait. In production the ring writer of
//! `consumer-sdk` implements it; [`MemorySink`] keeps blocks in memory for tests and tools.
//!
//! A sink receives whole blocks with strictly increasing numbers and makes each one visible
//! atomically (readers see a whole block or nothing), except that in head mode a fork takes the
//! numbers back: [`Sink::publish_fork`] publishes the first block of another branch, replacing
//! the newest blocks, which readers are told were orphaned. On start the broadcaster asks the
//! sink for its last committed block and resumes right after it, so a restart neither skips nor
//! repeats a block.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use consumer_sdk::Chain;

use crate::block::DecodedBlock;

/// Why a sink refused or failed to publish a block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The block number is not above the last committed one.
    #[error("block {block} is not after the last committed block {last}")]
    NotIncreasing {
        /// The block offered.
        block: u64,
        /// The last committed block.
        last: u64,
    },
    /// The sink holds another chain's blocks.
    #[error(
        "the ring carries chain {ring} (id {}), not {asked} (id {}); use another ring or --chain {ring}",
        ring.id(),
        asked.id()
    )]
    OtherChain {
        /// The chain the sink records.
        ring: Chain,
        /// The chain offered.
        asked: Chain,
    },
    /// The backing store failed (I/O, a full or corrupt ring, ...).
    #[error("sink failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where decoded blocks go. Implemented by the ring writer (elsewhere) and by [`MemorySink`]
/// (tests).
pub trait Sink {
    /// Last block number durably committed, if any (the source resumes at +1).
    fn last_committed_block(&self) -> Option<u64>;
    /// Publish one whole block atomically. Block numbers strictly increase; a sink must reject a
    /// block number <= the last committed one.
    fn publish(&mut self, block: &DecodedBlock) -> Result<(), SinkError>;
    /// Publish `block` as the first block of another branch: the committed blocks
    /// `block.number..=last` (their ids `orphaned`, oldest first) were orphaned, and readers
    /// are told so before the block. `block.previous` is the id of the block both branches
    /// share.
    fn publish_fork(&mut self, block: &DecodedBlock, orphaned: &[String]) -> Result<(), SinkError>;
    /// Called at least once a second while the broadcaster is idle, to refresh liveness.
    fn heartbeat(&mut self);
    /// Numbers and ids of the newest committed blocks on the branch the sink ends with, oldest
    /// first, at most `max` of them: where a fork is looked for after a restart.
    fn recent_links(&self, max: usize) -> Vec<(u64, String)> {
        let _ = max;
        self.last_committed_block()
            .zip(self.last_committed_link())
            .map(|(n, (id, _))| vec![(n, id)])
            .unwrap_or_default()
    }
    /// Id (40 hex digits) and timestamp of the last committed block, when the sink knows them:
    /// after a restart, the first block fetched must link to it.
    fn last_committed_link(&self) -> Option<(String, u32)> {
        None
    }
    /// The chain the sink records, if any.
    fn chain(&self) -> Result<Option<Chain>, SinkError> {
        Ok(None)
    }
    /// Binds the sink to `chain` before the first block: records it when the sink records
    /// none, and fails with [`SinkError::OtherChain`] when it records another one.
    fn set_chain(&mut self, chain: &Chain) -> Result<(), SinkError> {
        let _ = chain;
        Ok(())
    }
}

/// What a [`MemorySink`] holds, readable through [`MemorySinkHandle`].
#[derive(Debug, Default)]
pub struct MemoryState {
    /// Published blocks, oldest first (only the newest ones when the sink is bounded).
    pub blocks: VecDeque<DecodedBlock>,
    /// Last committed block number.
    pub last_committed: Option<u64>,
    /// Number of blocks published since creation.
    pub published: u64,
    /// Number of operations published since creation.
    pub ops: u64,
    /// Number of heartbeats received.
    pub heartbeats: u64,
    /// The chain recorded by [`Sink::set_chain`].
    pub chain: Option<Chain>,
    /// Forks published: the first orphaned block and the orphaned ids, in order.
    pub forks: Vec<(u64, Vec<String>)>,
}

impl MemoryState {
    /// Appends `block` as committed, keeping at most `retain` blocks.
    fn commit(&mut self, block: &DecodedBlock, retain: Option<usize>) {
        self.blocks.push_back(block.clone());
        if let Some(max) = retain {
            while self.blocks.len() > max {
                self.blocks.pop_front();
            }
        }
        self.last_committed = Some(block.number);
        self.published += 1;
        self.ops += block.ops.len() as u64;
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<MemoryState>,
    changed: Condvar,
}

/// An in-memory [`Sink`] for tests and tools, observable from other threads while it is in use.
#[derive(Debug, Default)]
pub struct MemorySink {
    shared: Arc<Shared>,
    retain: Option<usize>,
}

/// A cloneable view of a [`MemorySink`]'s state.
#[derive(Debug, Clone)]
pub struct MemorySinkHandle {
    shared: Arc<Shared>,
}

impl MemorySink {
    /// An empty sink that keeps every block.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty sink that keeps only the newest `max_blocks` blocks (counters still count all).
    pub fn bounded(max_blocks: usize) -> Self {
        Self {
            retain: Some(max_blocks),
            ..Self::default()
        }
    }

    /// A sink that behaves as if blocks up to `block` had already been committed.
    pub fn resuming_after(block: u64) -> Self {
        let sink = Self::new();
        lock(&sink.shared).last_committed = Some(block);
        sink
    }

    /// A handle for observing this sink from elsewhere.
    pub fn handle(&self) -> MemorySinkHandle {
        MemorySinkHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The blocks held, oldest first.
    pub fn blocks(&self) -> Vec<DecodedBlock> {
        self.handle().blocks()
    }

    fn update(&self, f: impl FnOnce(&mut MemoryState)) {
        f(&mut lock(&self.shared));
        self.shared.changed.notify_all();
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, MemoryState> {
    shared
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemorySinkHandle {
    /// The blocks held, oldest first.
    pub fn blocks(&self) -> Vec<DecodedBlock> {
        lock(&self.shared).blocks.iter().cloned().collect()
    }

    /// Runs `f` on the current state.
    pub fn with<R>(&self, f: impl FnOnce(&MemoryState) -> R) -> R {
        f(&lock(&self.shared))
    }

    /// Blocks until `ready` holds for the state or `timeout` passes; returns whether it held.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&MemoryState) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared);
        loop {
            if ready(&state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

impl Sink for MemorySink {
    fn last_committed_block(&self) -> Option<u64> {
        lock(&self.shared).last_committed
    }

    fn publish(&mut self, block: &DecodedBlock) -> Result<(), SinkError> {
        let retain = self.retain;
        let mut outcome = Ok(());
        self.update(|state| {
            if let Some(last) = state.last_committed.filter(|&last| block.number <= last) {
                outcome = Err(SinkError::NotIncreasing {
                    block: block.number,
                    last,
                });
                return;
            }
            state.commit(block, retain);
        });
        outcome
    }

    fn publish_fork(&mut self, block: &DecodedBlock, orphaned: &[String]) -> Result<(), SinkError> {
        let retain = self.retain;
        let mut outcome = Ok(());
        self.update(|state| {
            let newest: Vec<&str> = state
                .blocks
                .iter()
                .rev()
                .take(orphaned.len())
                .map(|b| b.id.as_str())
                .collect();
            let fits = state.last_committed
                == block
                    .number
                    .checked_add(orphaned.len() as u64)
                    .map(|n| n - 1)
                && newest.iter().rev().eq(orphaned.iter());
            if orphaned.is_empty() || !fits {
                outcome = Err(SinkError::Backend(
                    format!(
                        "fork before block {} naming {orphaned:?}, which are not the newest blocks",
                        block.number
                    )
                    .into(),
                ));
                return;
            }
            state.forks.push((block.number, orphaned.to_vec()));
            state.commit(block, retain);
        });
        outcome
    }

    fn heartbeat(&mut self) {
        self.update(|state| state.heartbeats += 1);
    }

    fn recent_links(&self, max: usize) -> Vec<(u64, String)> {
        let state = lock(&self.shared);
        let mut chain: Vec<(u64, String)> = Vec::new();
        for b in &state.blocks {
            // A block numbered at or below the one before it starts another branch.
            while chain.last().is_some_and(|(n, _)| *n >= b.number) {
                chain.pop();
            }
            chain.push((b.number, b.id.clone()));
        }
        let skip = chain.len().saturating_sub(max);
        chain.split_off(skip)
    }

    fn last_committed_link(&self) -> Option<(String, u32)> {
        let state = lock(&self.shared);
        let last = state.blocks.back()?;
        (Some(last.number) == state.last_committed && !last.id.is_empty())
            .then(|| (last.id.clone(), last.timestamp))
    }

    fn chain(&self) -> Result<Option<Chain>, SinkError> {
        Ok(lock(&self.shared).chain)
    }

    fn set_chain(&mut self, chain: &Chain) -> Result<(), SinkError> {
        let mut outcome = Ok(());
        self.update(|state| match state.chain {
            Some(ring) if ring != *chain => {
                outcome = Err(SinkError::OtherChain {
                    ring,
                    asked: *chain,
                });
            }
            _ => state.chain = Some(*chain),
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(number: u64) -> DecodedBlock {
        DecodedBlock {
            number,
            id: String::new(),
            previous: String::new(),
            timestamp: 0,
            ops: Vec::new(),
        }
    }

    #[test]
    fn rejects_non_increasing_blocks() {
        let mut sink = MemorySink::resuming_after(10);
        assert!(matches!(
            sink.publish(&block(10)),
            Err(SinkError::NotIncreasing {
                block: 10,
                last: 10
            })
        ));
        sink.publish(&block(12)).unwrap();
        assert!(sink.publish(&block(11)).is_err());
        assert_eq!(sink.last_committed_block(), Some(12));
        assert_eq!(sink.blocks().len(), 1);
    }

    #[test]
    fn bounded_keeps_the_newest() {
        let mut sink = MemorySink::bounded(2);
        for n in 1..=5 {
            sink.publish(&block(n)).unwrap();
        }
        let numbers: Vec<u64> = sink.blocks().iter().map(|b| b.number).collect();
        assert_eq!(numbers, [4, 5]);
        assert_eq!(sink.handle().with(|s| s.published), 5);
    }
}
