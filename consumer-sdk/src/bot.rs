//! The bot loop: [`Bot`].

use crate::cursor::{Cursor, CursorFile};
use crate::error::{Error, RecvError};
use crate::subscriber::{BlockEnd, Event, Fork, Op, ProducerStatus, Start, Subscriber};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long [`BotBuilder::open`] sleeps between two looks for a ring that does not exist yet.
const RING_POLL: Duration = Duration::from_millis(200);
/// How long [`Bot::recv_op`] waits before it looks around (stop flag, broadcaster health).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How often a cursor that moved past filtered-out ops is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// When a [`Bot`] with a [cursor file](BotBuilder::cursor_file) saves its position (each save
/// writes a small file and renames it over the old one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CursorSaves {
    /// After each op handled (the default): a restart redelivers at most the op that was being
    /// handled.
    EachOp,
    /// At most once per interval, plus when the bot stops and whenever [`Bot::save`] is called:
    /// for busy bots, where a file write per op costs too much. A restart redelivers the ops
    /// handled since the last save (at least once, never skipped); a bot that must not repeat
    /// some output calls [`Bot::save`] right after producing it.
    Every(Duration),
}

/// Something a bot operator should know; given to the [notice handler](BotBuilder::on_notice).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// No ring at this path yet: waiting for the broadcaster to create it.
    WaitingForRing {
        /// Where the ring is expected.
        path: PathBuf,
    },
    /// The block to start at is not in the ring yet: waiting for it.
    WaitingForBlock {
        /// The block.
        block: u64,
    },
    /// A topic of the filter that no op type of either chain has (a typo?).
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The bot was lapped by the writer (see [`RecvError::Lagged`]); it goes on with the oldest
    /// whole block still in the ring.
    Lagged {
        /// Records lost, all topics.
        lost: u64,
        /// Records lost of the bot's topics.
        lost_matching: u64,
    },
    /// Blocks were lost before they reached this ring (a gap notice written by the bridge
    /// that fed it, after its upstream ring lapped it); reading goes on after them.
    UpstreamGap {
        /// First block lost.
        from_block: u64,
        /// Last block lost.
        to_block: u64,
        /// Ops those blocks held, when known.
        lost_ops: Option<u64>,
    },
    /// Blocks `first_block..=last_block` were orphaned by a fork (a broadcaster following the
    /// head); the new branch follows. [`Bot::recv_timeout`] gives the fork itself
    /// ([`Step::Fork`]); a bot that keeps state built from these blocks undoes it there.
    Fork {
        /// The first orphaned block.
        first_block: u64,
        /// The last orphaned block.
        last_block: u64,
    },
    /// The ring file was replaced by one without the blocks after `last_seen`.
    Gap {
        /// The last block read from the old file.
        last_seen: u64,
        /// The first block read from the new one.
        resumed_at: u64,
    },
    /// The broadcaster stopped beating ([`ProducerStatus::Stale`]) or its process is gone
    /// ([`ProducerStatus::Dead`]); the bot waits for it. Reported once per outage.
    ProducerDown(ProducerStatus),
    /// The broadcaster beats again.
    ProducerBack {
        /// Its process id.
        pid: u64,
        /// Its epoch.
        epoch: u64,
    },
    /// Every block committed to the ring so far has been read.
    CaughtUp {
        /// The last block read, if any.
        block: Option<u64>,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::WaitingForRing { path } => write!(
                f,
                "{}: no ring yet; waiting for the broadcaster to create it",
                path.display()
            ),
            Notice::WaitingForBlock { block } => {
                write!(f, "block {block} is not in the ring yet; waiting for it")
            }
            Notice::UnknownTopic { topic } => write!(
                f,
                "topic {topic:?} is not an op type of Steem or Hive; no op will match it"
            ),
            Notice::Lagged {
                lost,
                lost_matching,
            } => write!(
                f,
                "lagged behind the writer: {lost} records lost ({lost_matching} of the \
                 subscribed topics); reading on from the oldest block in the ring"
            ),
            Notice::UpstreamGap {
                from_block,
                to_block,
                lost_ops,
            } => write!(
                f,
                "blocks {from_block}..={to_block} were lost upstream and never reached this ring \
                 ({}); reading on",
                lost_ops.map_or("number of ops lost unknown".to_string(), |n| format!(
                    "{n} ops lost"
                ))
            ),
            Notice::Fork {
                first_block,
                last_block,
            } => write!(
                f,
                "fork: blocks {first_block}..={last_block} were orphaned; reading on with the new \
                 branch from block {first_block}"
            ),
            Notice::Gap {
                last_seen,
                resumed_at,
            } => write!(
                f,
                "ring file replaced: blocks after {last_seen} are not in it; reading on at block \
                 {resumed_at}"
            ),
            Notice::ProducerDown(ProducerStatus::Stale {
                pid, silent_for, ..
            }) => write!(
                f,
                "broadcaster (pid {pid}) silent for {} s; waiting for it",
                silent_for.as_secs()
            ),
            Notice::ProducerDown(ProducerStatus::Dead { pid, .. }) => write!(
                f,
                "broadcaster (pid {pid}) is not running; waiting for it to come back"
            ),
            Notice::ProducerDown(status) => write!(f, "broadcaster down: {status:?}"),
            Notice::ProducerBack { pid, epoch } => {
                write!(
                    f,
                    "broadcaster is back (pid {pid}, epoch {epoch}); reading on"
                )
            }
            Notice::CaughtUp { block: Some(b) } => {
                write!(f, "caught up: every block through {b} is read")
            }
            Notice::CaughtUp { block: None } => write!(f, "caught up: the ring holds no block yet"),
        }
    }
}

/// What stopped a bot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The ring could not be opened or positioned in.
    #[error("opening the ring: {0}")]
    Open(#[source] Error),
    /// Reading cannot go on (a corrupt ring).
    #[error("reading the ring: {0}")]
    Recv(#[source] RecvError),
    /// The cursor file could not be read or written.
    #[error("cursor: {0}")]
    Cursor(#[source] Error),
    /// The directory of the cursor file does not exist (checked at open, not at the first
    /// save).
    #[error("cursor file {}: the directory {} does not exist", file.display(), dir.display())]
    CursorDirectory {
        /// The cursor file.
        file: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// The signal handlers could not be installed.
    #[error("installing the SIGINT/SIGTERM handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The handler given to [`Bot::run`] failed on an op; its cursor was not saved, so a
    /// restarted bot gets the op again.
    #[error("handling the {topic} op at block {} index {}: {source}", cursor.block, cursor.index_in_block)]
    Handler {
        /// The op's topic.
        topic: String,
        /// The op's position.
        cursor: Cursor,
        /// What the handler returned.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What [`Bot::recv_timeout`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// An op of the bot's topics. It counts as handled at the next receive.
    Op(Op),
    /// Every op of a block has been received.
    BlockEnd(BlockEnd),
    /// Blocks received before were orphaned (a broadcaster following the head): undo what
    /// was done for them; the new branch's blocks follow. It counts as handled at the next
    /// receive, like an op.
    Fork(Fork),
    /// Nothing arrived within the timeout.
    Idle,
    /// The stop flag was raised (a signal): finish up and return.
    Stopped,
    /// Every op through the block given to [`BotBuilder::until_block`] was received.
    Done,
}

type NoticeFn = Box<dyn FnMut(&Notice) + Send>;

/// Configures a [`Bot`]; from [`Bot::builder`].
pub struct BotBuilder {
    ring: PathBuf,
    topics: Option<Vec<String>>,
    start: Start,
    cursor_file: Option<PathBuf>,
    saves: CursorSaves,
    until: Option<u64>,
    signals: bool,
    stop: Option<Arc<AtomicBool>>,
    stale_after: Duration,
    on_notice: NoticeFn,
}

impl fmt::Debug for BotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotBuilder")
            .field("ring", &self.ring)
            .field("topics", &self.topics)
            .field("start", &self.start)
            .field("cursor_file", &self.cursor_file)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

impl BotBuilder {
    /// Receive only ops of these topics (see [`Builder::topics`](crate::Builder::topics)). Default: every topic.
    pub fn topics<I, S>(mut self, topics: I) -> BotBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = Some(topics.into_iter().map(Into::into).collect());
        self
    }

    /// Where to start when there is no saved cursor (default [`Start::Latest`]). A
    /// `Start::Block(n)` the ring has not reached yet is waited for.
    pub fn start(mut self, start: Start) -> BotBuilder {
        self.start = start;
        self
    }

    /// Resume just after the cursor saved in this file, if it exists, and save the position
    /// there as ops are handled.
    pub fn cursor_file(mut self, path: impl Into<PathBuf>) -> BotBuilder {
        self.cursor_file = Some(path.into());
        self
    }

    /// When the cursor is saved (default [`CursorSaves::EachOp`]).
    pub fn save_cursor(mut self, saves: CursorSaves) -> BotBuilder {
        self.saves = saves;
        self
    }

    /// Stop ([`Step::Done`]) once every op through block `n` was received; ops of later blocks
    /// are never delivered.
    pub fn until_block(mut self, n: u64) -> BotBuilder {
        self.until = Some(n);
        self
    }

    /// Whether SIGINT and SIGTERM stop the bot (default `true`). Turn it off when the program
    /// handles signals itself, and raise a [stop flag](BotBuilder::stop_flag) instead.
    pub fn handle_signals(mut self, on: bool) -> BotBuilder {
        self.signals = on;
        self
    }

    /// A flag that stops the bot when raised (in addition to the signals).
    pub fn stop_flag(mut self, stop: Arc<AtomicBool>) -> BotBuilder {
        self.stop = Some(stop);
        self
    }

    /// A broadcaster whose heartbeat is older than this is reported down (default 5 s).
    pub fn stale_after(mut self, after: Duration) -> BotBuilder {
        self.stale_after = after;
        self
    }

    /// Where notices go (default: one line on stderr, prefixed with the program's name).
    pub fn on_notice(mut self, f: impl FnMut(&Notice) + Send + 'static) -> BotBuilder {
        self.on_notice = Box::new(f);
        self
    }

    /// Open the ring, waiting for it to exist, and position the bot. Returns
    /// `Err(BotError::Open(_))` for a ring that exists but cannot be used; if the stop flag
    /// is raised while waiting, the bot returned is already stopped.
    pub fn open(mut self) -> Result<Bot, BotError> {
        let stop = self
            .stop
            .take()
            .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
        if self.signals {
            install_signals(&stop).map_err(BotError::Signals)?;
        }
        if let Some(file) = &self.cursor_file {
            let dir = match file.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                return Err(BotError::CursorDirectory {
                    file: file.clone(),
                    dir: dir.to_path_buf(),
                });
            }
        }
        let cursor_file = self.cursor_file.take().map(CursorFile::new);
        let saved = match &cursor_file {
            Some(f) => f.load().map_err(BotError::Cursor)?,
            None => None,
        };
        let start = match saved {
            Some(c) => Start::After(c),
            None => self.start.clone(),
        };
        let mut bot = Bot {
            sub: None,
            stop,
            cursor_file,
            saves: self.saves,
            resumed_from: saved,
            at: saved,
            saved,
            last_save: Instant::now(),
            handled: None,
            first_block: 0,
            until: self.until,
            done: false,
            producer_down: false,
            caught_up: false,
            on_notice: self.on_notice,
            ring: self.ring,
            topics: self.topics,
            stale_after: self.stale_after,
        };
        bot.connect(start)?;
        Ok(bot)
    }
}

fn install_signals(stop: &Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        // A second signal while stopping ends the process at once; the first raises the flag.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(stop))?;
        signal_hook::flag::register(signal, Arc::clone(stop))?;
    }
    Ok(())
}

/// The name the default notice handler prefixes its lines with.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "bot".into())
}

/// A [`Subscriber`] with the loop every bot needs around it.
///
///
/// # Semantics
///
/// * **Waiting for the ring.** The broadcaster may start after the bot: [`BotBuilder::open`]
///   waits for the ring file to appear (reporting [`Notice::WaitingForRing`] once). A
///   `Start::Block(n)` the ring has not reached yet is waited for too.
/// * **Stopping.** SIGINT and SIGTERM raise the bot's stop flag (unless
///   [`BotBuilder::handle_signals`] says otherwise); receiving then ends within a fraction of a
///   second, the cursor is saved, and [`Bot::run`] returns `Ok`. A second signal while
///   stopping ends the process at once (exit status 1).
/// * **Cursor: at least once.** With a [cursor file](BotBuilder::cursor_file), the bot resumes
///   just after the saved cursor, and saves it after each op is handled: when the handler of
///   [`Bot::run`] returns `Ok`, or when [`Bot::recv_op`] is called for the next op. A bot killed
///   between handling an op and saving its cursor handles that op again after a restart; no op
///   is ever skipped. Ops the topic filter dropped move the cursor at block ends (saved at
///   least once a second), so a restart does not walk through them again. A busy bot can save
///   less often ([`BotBuilder::save_cursor`] with [`CursorSaves::Every`]) and call
///   [`Bot::save`] right after output it must not repeat; a restart then redelivers the ops
///   handled since the last save. A cursor file whose directory does not exist is refused at
///   open ([`BotError::CursorDirectory`]).
/// * **Reports, once each.** A lapped reader ([`Notice::Lagged`], with the exact counts lost),
///   a replaced ring that lacks blocks ([`Notice::Gap`]), blocks lost before they reached the
///   ring ([`Notice::UpstreamGap`], from a bridge), a broadcaster that went silent or died
///   ([`Notice::ProducerDown`], once per outage) and its return ([`Notice::ProducerBack`]) are
///   given to the notice handler (default: a line on stderr) and reading goes on.
/// * **Caught up.** [`Notice::CaughtUp`] comes when the bot has read every block committed to
///   the ring: once after the backlog it started with, and again after each lag, gap or
///   broadcaster outage. [`Bot::is_caught_up`] says whether that is so right now.
///
/// ```
/// # #[cfg(feature = "writer")] {
/// # let dir = tempfile::tempdir()?;
/// # let ring = dir.path().join("steem.ring");
/// # let ring = ring.to_str().unwrap();
/// # consumer_sdk::doc_support::demo_ring(ring)?;
/// use consumer_sdk::{Bot, Start, ops::{OpView, Vote}};
///
/// let mut bot = Bot::builder(ring)
///     .topics([Vote::TOPIC])
///     .start(Start::Earliest)
///     .cursor_file(dir.path().join("upvoter.cursor"))
///     .until_block(3)
///     .open()?;
/// let mut votes = 0;
/// bot.run(|op| -> Result<(), consumer_sdk::ops::ViewError> {
///     let vote: Vote = op.view()?;
///     votes += usize::from(vote.weight > 0);
///     Ok(())
/// })?;
/// assert_eq!(votes, 3);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bot {
    /// `None` only while waiting for the ring was stopped.
    sub: Option<Subscriber>,
    stop: Arc<AtomicBool>,
    cursor_file: Option<CursorFile>,
    saves: CursorSaves,
    /// The cursor loaded from the cursor file at open.
    resumed_from: Option<Cursor>,
    /// Everything up to here is handled.
    at: Option<Cursor>,
    saved: Option<Cursor>,
    last_save: Instant,
    /// The op returned last, handled once the next receive starts.
    handled: Option<Cursor>,
    /// Ops and block ends before this block are dropped (a start block not yet in the ring).
    first_block: u64,
    until: Option<u64>,
    done: bool,
    producer_down: bool,
    caught_up: bool,
    on_notice: NoticeFn,
    ring: PathBuf,
    topics: Option<Vec<String>>,
    stale_after: Duration,
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bot")
            .field("ring", &self.ring)
            .field("at", &self.at)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// A bot reading the ring `ring`: a name under `/dev/shm` or a path, as
    /// [`Subscriber::open`] takes it.
    pub fn builder(ring: impl AsRef<Path>) -> BotBuilder {
        let name = program_name();
        BotBuilder {
            ring: ring.as_ref().to_path_buf(),
            topics: None,
            start: Start::Latest,
            cursor_file: None,
            saves: CursorSaves::EachOp,
            until: None,
            signals: true,
            stop: None,
            stale_after: Duration::from_secs(5),
            on_notice: Box::new(move |n| eprintln!("{name}: {n}")),
        }
    }

    fn notice(&mut self, n: Notice) {
        (self.on_notice)(&n);
    }

    fn stopped(&self) -> bool {
        // Relaxed: a flag with no data attached.
        self.stop.load(Ordering::Relaxed)
    }

    /// Opens the ring (waiting for it) and positions the subscriber.
    fn connect(&mut self, start: Start) -> Result<(), BotError> {
        let mut waiting = false;
        let (ring, topics) = (self.ring.clone(), self.topics.clone());
        let open = move || {
            let b = Subscriber::open(&ring)?;
            Ok::<_, Error>(match &topics {
                Some(t) => b.topics(t.iter().cloned()),
                None => b,
            })
        };
        let builder = loop {
            match open() {
                Ok(b) => break b,
                Err(Error::NotFound { path }) => {
                    if !waiting {
                        self.notice(Notice::WaitingForRing { path });
                        waiting = true;
                    }
                }
                Err(e) => return Err(BotError::Open(e)),
            }
            if self.stopped() {
                return Ok(());
            }
            std::thread::sleep(RING_POLL);
        };
        let builder = builder
            .stop_flag(Arc::clone(&self.stop))
            .stale_after(self.stale_after);
        let sub = match builder.start(start) {
            Ok(sub) => sub,
            Err(Error::BlockNotYet { block, .. }) => {
                // Start just after every op of the block before, whenever it comes; ops up to
                // that cursor are skipped as they arrive, block ends before `block` here.
                self.first_block = block;
                let start = match block.checked_sub(1) {
                    Some(before) => Start::After(Cursor::after_block(before, None)),
                    None => Start::Earliest,
                };
                self.notice(Notice::WaitingForBlock { block });
                open()
                    .and_then(|b| {
                        b.stop_flag(Arc::clone(&self.stop))
                            .stale_after(self.stale_after)
                            .start(start)
                    })
                    .map_err(BotError::Open)?
            }
            Err(e) => return Err(BotError::Open(e)),
        };
        for topic in sub.unknown_topics() {
            (self.on_notice)(&Notice::UnknownTopic {
                topic: topic.to_owned(),
            });
        }
        self.sub = Some(sub);
        Ok(())
    }

    /// The subscriber underneath (position, chain, producer status, ...); `None` if the bot
    /// was stopped while waiting for the ring.
    pub fn subscriber(&self) -> Option<&Subscriber> {
        self.sub.as_ref()
    }

    /// The flag that stops this bot; raise it from another thread to stop it.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Whether every block committed to the ring has been read.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// The cursor the bot resumed after: the one its cursor file held at open, if any.
    pub fn resumed_from(&self) -> Option<Cursor> {
        self.resumed_from
    }

    /// The position handled so far: what the cursor file holds after the next save.
    pub fn position(&self) -> Option<Cursor> {
        self.handled.or(self.at)
    }

    /// Saves the position now (if it moved and a cursor file is set). Receiving saves by itself;
    /// call this when leaving a [`Bot::recv_op`] loop early.
    pub fn save(&mut self) -> Result<(), BotError> {
        if let Some(c) = self.handled.take() {
            self.at = Some(c);
        }
        let (Some(file), Some(at)) = (&self.cursor_file, self.at) else {
            return Ok(());
        };
        if self.saved != Some(at) {
            file.save(&at).map_err(BotError::Cursor)?;
            self.saved = Some(at);
        }
        self.last_save = Instant::now();
        Ok(())
    }

    fn save_if_due(&mut self) -> Result<(), BotError> {
        let every = match self.saves {
            CursorSaves::EachOp => SAVE_EVERY,
            CursorSaves::Every(every) => every,
        };
        if self.last_save.elapsed() >= every {
            self.save()
        } else {
            Ok(())
        }
    }

    /// The next op, waiting as long as it takes (like [`Subscriber::recv_op`]); `Ok(None)` once the bot is stopped or done
    /// (the position then saved). The op returned last counts as handled from this call on.
    pub fn recv_op(&mut self) -> Result<Option<Op>, BotError> {
        loop {
            match self.recv_timeout(IDLE_POLL)? {
                Step::Op(op) => return Ok(Some(op)),
                Step::Stopped | Step::Done => return Ok(None),
                Step::BlockEnd(_) | Step::Fork(_) | Step::Idle => {}
            }
        }
    }

    /// Calls `handle` for every op until the bot is stopped (SIGINT, SIGTERM, the stop flag) or
    /// done ([`BotBuilder::until_block`]), saving the cursor after each op handled. Returns
    /// the handler's first error, with the op's cursor not saved.
    pub fn run<E>(&mut self, mut handle: impl FnMut(&Op) -> Result<(), E>) -> Result<(), BotError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        while let Some(op) = self.recv_op()? {
            if let Err(e) = handle(&op) {
                // Not handled: the next run gets this op again.
                self.handled = None;
                self.save()?;
                return Err(BotError::Handler {
                    topic: op.topic().to_owned(),
                    cursor: op.cursor(),
                    source: e.into(),
                });
            }
        }
        Ok(())
    }

    /// The next op or block end, waiting at most `timeout`. Lag and gap reports, changes of the
    /// broadcaster's health and catching up go to the notice handler; errors are those
    /// reading cannot go on after. The op returned last counts as handled from this call on.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Step, BotError> {
        if let Some(c) = self.handled.take() {
            self.at = Some(c);
            match self.saves {
                CursorSaves::EachOp => self.save()?,
                CursorSaves::Every(_) => self.save_if_due()?,
            }
        }
        loop {
            if self.done {
                self.save()?;
                return Ok(Step::Done);
            }
            let Some(sub) = self.sub.as_mut() else {
                return Ok(Step::Stopped);
            };
            if self.stop.load(Ordering::Relaxed) {
                self.save()?;
                return Ok(Step::Stopped);
            }
            // Read before receiving: when the receive then finds nothing, every block through
            // this one has been received.
            let committed = sub.committed_block();
            match sub.recv_timeout(timeout) {
                Ok(Some(Event::Op(op))) => {
                    if op.block() < self.first_block {
                        continue;
                    }
                    if self.until.is_some_and(|n| op.block() > n) {
                        self.done = true;
                        continue;
                    }
                    self.handled = Some(op.cursor());
                    return Ok(Step::Op(op));
                }
                Ok(Some(Event::BlockEnd(end))) => {
                    if end.block < self.first_block {
                        continue;
                    }
                    self.block_end(&end);
                    self.done = self.until.is_some_and(|n| end.block >= n);
                    self.save_if_due()?;
                    return Ok(Step::BlockEnd(end));
                }
                Ok(Some(Event::Fork(fork))) => {
                    if fork.last_block() < self.first_block {
                        continue;
                    }
                    self.notice(Notice::Fork {
                        first_block: fork.first_block,
                        last_block: fork.last_block(),
                    });
                    self.handled = Some(fork.cursor());
                    return Ok(Step::Fork(fork));
                }
                Ok(None) => {
                    self.watch_producer();
                    // Nothing to read: every block through `committed` has been read.
                    if !self.caught_up {
                        self.caught_up = true;
                        self.notice(Notice::CaughtUp { block: committed });
                    }
                    if let (Some(n), Some(c)) = (self.until, committed) {
                        self.done = c >= n;
                    }
                    if !self.done {
                        self.save_if_due()?;
                        return Ok(Step::Idle);
                    }
                }
                Err(RecvError::Stopped) => {
                    self.save()?;
                    return Ok(Step::Stopped);
                }
                Err(RecvError::Lagged {
                    lost,
                    lost_matching,
                }) => {
                    self.caught_up = false;
                    self.notice(Notice::Lagged {
                        lost,
                        lost_matching,
                    });
                }
                Err(RecvError::UpstreamGap {
                    from_block,
                    to_block,
                    lost_ops,
                }) => {
                    self.notice(Notice::UpstreamGap {
                        from_block,
                        to_block,
                        lost_ops,
                    });
                }
                Err(RecvError::Gap {
                    last_seen,
                    resumed_at,
                }) => {
                    self.caught_up = false;
                    self.notice(Notice::Gap {
                        last_seen,
                        resumed_at,
                    });
                }
                Err(e) => return Err(BotError::Recv(e)),
            }
        }
    }

    /// Every op of block `end` is handled: the position moves to its last op (all topics), so
    /// a restart does not walk again through ops the filter dropped, and records the block's
    /// id, so a restart resumes on this block's branch (see [`Cursor`]).
    fn block_end(&mut self, end: &BlockEnd) {
        let Some(last) = end.op_count.checked_sub(1) else {
            self.at = Some(Cursor::after_block(end.block, Some(end.block_id)));
            return;
        };
        let index_in_block = u32::try_from(last).unwrap_or(u32::MAX);
        // The block's last op was handled already: keep its transaction and op index.
        let (trx_index, op_index) = self
            .at
            .filter(|c| c.block == end.block && c.index_in_block == index_in_block)
            .map_or((0, 0), |c| (c.trx_index, c.op_index));
        self.at = Some(Cursor {
            block: end.block,
            index_in_block,
            trx_index,
            op_index,
            block_id: Some(end.block_id),
        });
    }

    fn watch_producer(&mut self) {
        let Some(status) = self.sub.as_ref().map(Subscriber::producer_status) else {
            return;
        };
        match status {
            ProducerStatus::Alive { pid, epoch } => {
                if self.producer_down {
                    self.producer_down = false;
                    self.notice(Notice::ProducerBack { pid, epoch });
                }
            }
            ProducerStatus::Stale { .. } | ProducerStatus::Dead { .. } => {
                if !self.producer_down {
                    self.producer_down = true;
                    self.caught_up = false;
                    self.notice(Notice::ProducerDown(status));
                }
            }
            // The subscriber moves to the new file by itself and reports any gap.
            ProducerStatus::Replaced => {}
        }
    }
}
