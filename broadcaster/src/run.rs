//! The main loop: a source task (nodes or a replay file) feeds blocks in order through a bounded
//! channel to the publisher, which owns the [`Sink`].
//!
//! The publisher publishes each block whole (one [`Sink::publish`] call), appends it to the
//! record file if any, sends heartbeats while idle, logs a progress line periodically (while no
//! block comes, at most once every [`IDLE_PROGRESS_EVERY`]), and
//! returns when the stop block is published, when [`Shutdown`] is triggered (between two blocks,
//! never within one), or when the source fails for good. At the end of a replay file without
//! `--stop-block` it says once that the replay is finished and stays up, heartbeating, until
//! stopped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{Config, Source, Tuning};
use crate::failover::{ChainDisagreement, Pool};
use crate::follow::{FollowSettings, Progress, Task, follow};
use crate::node::NodeError;
use crate::replay::{RecordError, Recorder, ReplayError, ReplayRange, ReplayReader, replay};
use crate::sink::{Sink, SinkError};

/// The shortest time between two progress lines while no block is published: an idle
/// broadcaster (at the end of a replay, or waiting for the chain) says so once a minute, not
/// every `progress_interval`.
pub const IDLE_PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// A stop request shared between a signal handler (or a test) and [`run`].
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A shutdown that has not been triggered.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Asks [`run`] to stop after the block it is publishing, if any.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once [`Shutdown::trigger`] has been called.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Why [`run`] returned normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The stop block was published (or a replay had nothing left up to it).
    StopBlock,
    /// [`Shutdown::trigger`] was called.
    Shutdown,
}

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Why it returned.
    pub reason: StopReason,
    /// The last block in the sink.
    pub last_block: Option<u64>,
    /// Blocks published by this run.
    pub blocks: u64,
    /// Operations published by this run.
    pub ops: u64,
}

/// Why [`run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The sink refused or failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The replay file is unreadable or malformed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The record file could not be written.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The nodes serve different chains and neither `--chain` nor the ring says which one.
    #[error(transparent)]
    Chain(#[from] ChainDisagreement),
    /// The node client could not be set up.
    #[error("node client: {0}")]
    Node(#[from] NodeError),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs the broadcaster until the stop block, a shutdown, or a fatal error.
///
/// Builds its own tokio runtime, so call it from a plain thread. Resumes after
/// `sink.last_committed_block()` when the sink holds blocks; otherwise starts where `config`
/// says.
pub fn run(
    config: &Config,
    sink: &mut dyn Sink,
    shutdown: &Shutdown,
) -> Result<RunSummary, RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("broadcaster")
        .build()
        .map_err(RunError::Runtime)?;
    let result = runtime.block_on(publish_loop(config, sink, shutdown));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

struct Stats {
    blocks: u64,
    ops: u64,
    last_block: Option<u64>,
    /// Timestamp of the last block published by this process.
    last_timestamp: Option<u32>,
    window_start: Instant,
    window_blocks: u64,
    window_ops: u64,
    /// When the last progress line was logged.
    last_line: Instant,
}

impl Stats {
    fn summary(&self, reason: StopReason) -> RunSummary {
        RunSummary {
            reason,
            last_block: self.last_block,
            blocks: self.blocks,
            ops: self.ops,
        }
    }

    fn report(&mut self, progress: &Progress) {
        if self.window_blocks == 0 && self.last_line.elapsed() < IDLE_PROGRESS_EVERY {
            return;
        }
        self.last_line = Instant::now();
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-3);
        // Relaxed: a statistic; a slightly stale head is fine for a log line.
        let head = progress.head.load(Ordering::Relaxed);
        let block = self.last_block.unwrap_or(0);
        let ops_rate = self.window_ops as f64 / secs;
        let block_rate = self.window_blocks as f64 / secs;
        if head > 0 {
            info!(
                block,
                head,
                lag = head.saturating_sub(block),
                "progress: block {block}, {} behind head {head}, {ops_rate:.0} ops/s, {block_rate:.1} blocks/s",
                head.saturating_sub(block)
            );
        } else {
            info!(
                block,
                "progress: block {block}, {ops_rate:.0} ops/s, {block_rate:.1} blocks/s"
            );
        }
        self.window_start = Instant::now();
        self.window_blocks = 0;
        self.window_ops = 0;
    }
}

/// Says once, at the end of a replay file, what was replayed and what to do next. This line
/// stands for the progress line of the last blocks too.
fn replay_finished(config: &Config, stats: &mut Stats) {
    let ring = config.ring_path.display();
    let held = match stats.last_block {
        Some(last) => format!("the ring holds blocks through {last}"),
        None => "the ring is empty".to_owned(),
    };
    info!(
        blocks = stats.blocks,
        ops = stats.ops,
        last_block = ?stats.last_block,
        "replay finished: {} blocks and {} ops published by this run; {held}. Staying up, idle, \
         until stopped: bots can still read the ring from its start (`dump --ring {ring} --from \
         earliest`); to follow the live chain, run `broadcaster --node https://api.steemit.com \
         --ring steem` and `new-posts --ring steem`",
        stats.blocks,
        stats.ops,
    );
    stats.window_start = Instant::now();
    stats.window_blocks = 0;
    stats.window_ops = 0;
    stats.last_line = Instant::now();
}

async fn publish_loop(
    config: &Config,
    sink: &mut dyn Sink,
    shutdown: &Shutdown,
) -> Result<RunSummary, RunError> {
    let tuning = &config.tuning;
    // A ring of another chain is refused before anything else.
    if let Some(chain) = &config.chain {
        sink.set_chain(chain)?;
    }
    let resume = sink.last_committed_block();
    let link = resume.and(sink.last_committed_link());
    // Where a fork point is looked for: only a head-mode follower or a replay (of a head-mode
    // recording) can meet one, so the ring is read back for those alone.
    let forks_possible =
        matches!(config.source, Source::Replay { .. }) || config.mode == crate::config::Mode::Head;
    let recent = if forks_possible {
        sink.recent_links(crate::follow::MAX_FORK_DEPTH)
    } else {
        Vec::new()
    };
    let mut stats = Stats {
        blocks: 0,
        ops: 0,
        last_block: resume,
        last_timestamp: None,
        window_start: Instant::now(),
        window_blocks: 0,
        window_ops: 0,
        last_line: Instant::now(),
    };
    if let (Some(last), Some(start)) = (resume, config.start_block)
        && start != crate::config::StartBlock::Number(last + 1)
    {
        warn!(
            "the ring already holds blocks through {last}: resuming at block {}, ignoring --start-block {start:?}",
            last + 1
        );
    }
    if let (Some(last), Some(stop)) = (resume, config.stop_block)
        && last >= stop
    {
        info!("the ring already holds blocks through {last}, past the stop block {stop}");
        return Ok(stats.summary(StopReason::StopBlock));
    }

    let (tx, mut rx) = mpsc::channel(tuning.queue_blocks.max(1));
    let progress = Arc::new(Progress::default());
    let source: Task<Result<(), RunError>> = match &config.source {
        Source::Nodes(urls) => {
            let pool_tuning = Tuning {
                keep_raw: config.record.is_some(),
                ..tuning.clone()
            };
            let pool = Arc::new(Pool::new(urls, config.request_timeout, pool_tuning)?);
            let chain = match (config.chain, sink.chain()?) {
                (Some(chain), _) | (None, Some(chain)) => chain,
                (None, None) => {
                    // Nodes may be down for a while: keep the ring's heartbeat going meanwhile.
                    let discovery = pool.discover_chain();
                    tokio::pin!(discovery);
                    let mut beat = tokio::time::interval(tuning.heartbeat_interval);
                    loop {
                        tokio::select! {
                            () = shutdown.wait() => {
                                info!("stopping on request");
                                return Ok(stats.summary(StopReason::Shutdown));
                            }
                            _ = beat.tick() => sink.heartbeat(),
                            chain = &mut discovery => break chain?,
                        }
                    }
                }
            };
            sink.set_chain(&chain)?;
            pool.set_chain(chain);
            info!(chain = chain.name(), id = %chain.id(), "following chain {chain}");
            let settings = FollowSettings {
                mode: config.mode,
                start_block: config.start_block,
                stop_block: config.stop_block,
                virtual_ops: config.virtual_ops,
                tuning: tuning.clone(),
            };
            if config.virtual_ops && config.mode == crate::config::Mode::Head {
                warn!(
                    "--virtual-ops in head mode: Steem nodes return no virtual operations for reversible blocks"
                );
            }
            let progress = Arc::clone(&progress);
            Task::spawn(async move {
                follow(pool, settings, resume, link, recent, tx, progress).await;
                Ok(())
            })
        }
        Source::Replay { path, pace } => {
            let reader = ReplayReader::open(path)?.skip_bad_lines(config.skip_bad_lines);
            let range = ReplayRange {
                resume,
                recent,
                start: match config.start_block {
                    Some(crate::config::StartBlock::Number(n)) => Some(n),
                    _ => None,
                },
                stop: config.stop_block,
            };
            let (pace, interval) = (*pace, tuning.replay_interval);
            info!(file = %path.display(), ?pace, "replaying");
            Task::spawn(async move {
                replay(reader, pace, interval, range, tx)
                    .await
                    .map_err(RunError::from)
            })
        }
    };
    let mut recorder = config.record.as_deref().map(Recorder::open).transpose()?;
    let mut heartbeat = tokio::time::interval(tuning.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report = tokio::time::interval_at(
        tokio::time::Instant::now() + tuning.progress_interval,
        tuning.progress_interval,
    );
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source = Some(source);

    loop {
        tokio::select! {
            biased;
            () = shutdown.wait() => {
                info!(last_block = ?stats.last_block, "stopping on request");
                return Ok(stats.summary(StopReason::Shutdown));
            }
            _ = heartbeat.tick() => {
                sink.heartbeat();
                // Relaxed: statistics.
                crate::metrics::progress(
                    progress.head.load(Ordering::Relaxed),
                    progress.irreversible.load(Ordering::Relaxed),
                    stats.last_block.zip(stats.last_timestamp),
                );
            }
            _ = report.tick() => stats.report(&progress),
            item = rx.recv(), if source.is_some() => match item {
                Some(fetched) => {
                    let block = &fetched.block;
                    if fetched.orphaned.is_empty() {
                        sink.publish(block)?;
                    } else {
                        sink.publish_fork(block, &fetched.orphaned)?;
                        crate::metrics::fork(fetched.orphaned.len());
                    }
                    if let Some(recorder) = &mut recorder {
                        recorder.append(&fetched.raw)?;
                    }
                    stats.blocks += 1;
                    stats.ops += block.ops.len() as u64;
                    stats.window_blocks += 1;
                    stats.window_ops += block.ops.len() as u64;
                    stats.last_block = Some(block.number);
                    stats.last_timestamp = Some(block.timestamp);
                    crate::metrics::published(block.number, block.timestamp, &block.ops);
                    if config.stop_block.is_some_and(|stop| block.number >= stop) {
                        info!(block = block.number, "published the stop block");
                        return Ok(stats.summary(StopReason::StopBlock));
                    }
                }
                None => {
                    if let Some(task) = source.take() {
                        task.join().await?;
                    }
                    if config.stop_block.is_some() {
                        info!(last_block = ?stats.last_block, "no blocks left up to the stop block");
                        return Ok(stats.summary(StopReason::StopBlock));
                    }
                    replay_finished(config, &mut stats);
                }
            },
        }
    }
}
