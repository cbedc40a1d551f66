//! Plumbing shared by the example bots (`dump`, `new-posts`, `transfers`, `vote-stats`).
//!
//! # Semantics
//!
//! * **Stopping.** [`stop_on_signals`] turns SIGTERM and SIGINT into a raised flag. The
//!   subscriber and [`Feed::next`] notice it within one wait, and the bot then finishes cleanly:
//!   it flushes its output, saves its cursor and exits 0.
//! * **Closed stdout.** A bot whose reader went away (EPIPE) exits 0: [`exit_code`] treats a
//!   broken pipe as the end of the job, not as a failure.
//! * **Missing ring.** The broadcaster may start after the bots: [`Feed::open`] waits for the
//!   ring file to appear, polling every 200 ms, and says so once on stderr.
//! * **Reports, not crashes.** [`Feed::next`] reports a lapped reader (`Lagged`, with the counts
//!   of lost records) and a replaced ring (`Gap`) on stderr and keeps reading. A dead or silent
//!   broadcaster is reported once and waited out; its return is reported once.
//! * **Cursors: at least once.** [`Checkpoint::save`] flushes stdout before saving the cursor,
//!   so an op is never marked done before its output left the process. A bot killed between the
//!   two prints that op again after a restart; nothing is ever skipped.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use anyhow::Context as _;
use consumer_sdk::{
    BlockEnd, Cursor, CursorFile, Event, Op, ProducerStatus, RecvError, Start, Subscriber,
};
use std::fmt;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Prints one line on stderr, prefixed with the program's name. Never fails: a message that
/// cannot be written is dropped.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::note_args(::std::format_args!($($arg)*))
    };
}

/// The function behind [`note!`].
pub fn note_args(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{}: {args}", program_name());
}

fn program_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::args_os()
            .next()
            .map(PathBuf::from)
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "bot".into())
    })
}

/// How long [`Feed::open`] sleeps between two looks for a ring file that does not exist yet.
pub const RING_POLL: Duration = Duration::from_millis(200);

/// How long a bot's main loop waits for an event before it looks around (stop flag, broadcaster
/// health, `--until-block` reached): pass it to [`Feed::next`].
pub const IDLE_POLL: Duration = Duration::from_millis(250);

/// How often a cursor that moved past ops without output is saved (see [`Checkpoint`]).
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

// ------------------------------------------------------------------------------ CLI --

/// The `--ring` option every bot takes.
#[derive(Debug, Clone, clap::Args)]
pub struct RingArgs {
    /// Ring to read: a name under /dev/shm (e.g. `steem`, `hive`) or a path (anything with a `/`)
    #[arg(long, value_name = "NAME_OR_PATH", default_value = "steem", value_parser = parse_ring)]
    pub ring: String,
}

/// Where a bot starts reading when it has no saved cursor (`--from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Only blocks committed from now on.
    Latest,
    /// The oldest whole block still in the ring.
    Earliest,
    /// The first block numbered this or more (waiting for it if the ring is not there yet).
    Block(u64),
}

impl FromStr for StartAt {
    type Err = String;

    fn from_str(s: &str) -> Result<StartAt, String> {
        match s {
            "latest" => Ok(StartAt::Latest),
            "earliest" => Ok(StartAt::Earliest),
            _ => s
                .parse()
                .map(StartAt::Block)
                .map_err(|_| format!("expected `latest`, `earliest` or a block number, not {s:?}")),
        }
    }
}

impl StartAt {
    /// The subscriber start for this choice, or just after `cursor` when one was saved.
    pub fn or_after(self, cursor: Option<Cursor>) -> Start {
        match (cursor, self) {
            (Some(c), _) => Start::After(c),
            (None, StartAt::Latest) => Start::Latest,
            (None, StartAt::Earliest) => Start::Earliest,
            (None, StartAt::Block(n)) => Start::Block(n),
        }
    }
}

/// Checks that `--until-block` does not come before `--from`.
pub fn check_until(from: StartAt, until: Option<u64>) -> Result<(), String> {
    match (from, until) {
        (StartAt::Block(from), Some(until)) if until < from => {
            Err(format!("--until-block {until} is before --from {from}"))
        }
        _ => Ok(()),
    }
}

/// `--from` and `--cursor`, for bots that keep a cursor.
#[derive(Debug, Clone, clap::Args)]
pub struct PositionArgs {
    /// Where to start without a saved cursor: `latest`, `earliest` or a block number
    #[arg(long, value_name = "latest|earliest|BLOCK", default_value = "latest")]
    pub from: StartAt,
    /// Resume just after the cursor saved in FILE if it exists (else start at --from), and save
    /// the position there as ops are handled. At least once: an op printed right before a crash
    /// may be printed again after the restart; none is skipped
    #[arg(long, value_name = "FILE")]
    pub cursor: Option<PathBuf>,
}

/// Checks a `--ring` value the way the SDK resolves it.
pub fn parse_ring(s: &str) -> Result<String, String> {
    consumer_sdk::resolve(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a topic name (`vote`, `custom_json`, ...); an `_operation` suffix is dropped.
pub fn parse_topic(s: &str) -> Result<String, String> {
    let topic = consumer_sdk::ops::topic_of(s);
    let ok = (1..=56).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(topic.to_string())
    } else {
        Err(format!(
            "invalid topic {s:?}: use 1 to 56 characters of a-z, 0-9 and _"
        ))
    }
}

/// Checks an account name: 3 to 16 characters of `a-z`, `0-9`, `.` and `-`, starting with a
/// letter.
pub fn parse_account(s: &str) -> Result<String, String> {
    let ok = (3..=16).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid account name {s:?}: use 3 to 16 characters of a-z, 0-9, '.' and '-'"
        ))
    }
}

// ---------------------------------------------------------------------- process edge --

/// A flag raised by SIGTERM and SIGINT, for [`Feed::open`] and the bot's loop.
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing a signal handler")?;
    }
    Ok(stop)
}

/// The exit code for a bot's result: 0 on success and when stdout was closed under it
/// (broken pipe), 1 otherwise, after printing the error and its causes on stderr.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {}", causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by ": ", each said once: an error whose message already
/// includes its source's is not followed by that source again.
fn causes(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Standard output for bots: every line is flushed at once, since other processes read it as
/// it comes.
pub struct Out {
    stdout: io::StdoutLock<'static>,
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Out")
    }
}

impl Default for Out {
    fn default() -> Out {
        Out::new()
    }
}

impl Out {
    /// Locks stdout for this bot.
    pub fn new() -> Out {
        Out {
            stdout: io::stdout().lock(),
        }
    }

    /// Writes `line` and a newline, and flushes.
    pub fn line(&mut self, line: &[u8]) -> io::Result<()> {
        self.stdout.write_all(line)?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }

    /// Formats one line (`format_args!`), writes it with a newline, and flushes.
    pub fn print(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        self.stdout.write_fmt(args)?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }

    /// Flushes anything written.
    pub fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()
    }
}

// ---------------------------------------------------------------------------- feed --

/// What a bot's handler did with one op (see [`Feed::for_each_op`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Nothing to print: the cursor moves on and is saved within [`SAVE_EVERY`].
    Passed,
    /// It printed something: the cursor is saved now, after the output.
    Printed,
    /// It printed something and the bot is done.
    Last,
}

/// What [`Feed::next`] returns.
#[derive(Debug)]
pub enum Next {
    /// An op of the subscribed topics, or the end of a block.
    Event(Event),
    /// Nothing arrived within the timeout.
    Idle,
    /// The stop flag was raised (SIGTERM, SIGINT).
    Stopped,
    /// Every op through the block given to [`Feed::until_block`] was delivered.
    Done,
}

/// A subscriber with the bots' policies: stop flag, lag and gap reports, broadcaster health,
/// an optional last block.
#[derive(Debug)]
pub struct Feed {
    sub: Subscriber,
    stop: Arc<AtomicBool>,
    /// Events of blocks below this are dropped (starting at a block the ring has not reached).
    first_block: u64,
    until: Option<u64>,
    done: bool,
    producer_down: bool,
}

impl Feed {
    /// Subscribes to `topics` (every topic if empty) of `ring`, starting at `start`, waiting for
    /// the ring file to appear if it does not exist yet. `Ok(None)`: `stop` was raised while
    /// waiting.
    ///
    /// `Start::Block(n)` for a block the ring has not reached yet waits for it (instead of the
    /// SDK's `BlockNotYet` error); a block already overwritten is an error.
    pub fn open(
        ring: &str,
        topics: &[String],
        start: Start,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Option<Feed>> {
        let mut waiting = false;
        let builder = loop {
            match Subscriber::open(ring) {
                Ok(b) => break b,
                Err(consumer_sdk::Error::NotFound { path }) => {
                    if !waiting {
                        note!(
                            "{}: no ring yet; waiting for the broadcaster to create it",
                            path.display()
                        );
                        waiting = true;
                    }
                }
                Err(e) => return Err(e).context("opening the ring"),
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            std::thread::sleep(RING_POLL);
        };
        let mut first_block = 0;
        let sub = match with_topics(builder, topics)
            .stop_flag(Arc::clone(&stop))
            .start(start)
        {
            Ok(sub) => sub,
            Err(consumer_sdk::Error::BlockNotYet { block, .. }) => {
                // Start just after every op of the block before, whenever it comes; the SDK skips
                // ops up to that cursor as they arrive, and the block ends before `block` are
                // dropped here.
                first_block = block;
                let start = match block.checked_sub(1) {
                    Some(before) => Start::After(Cursor {
                        block: before,
                        index_in_block: u32::MAX,
                        trx_index: 0,
                        op_index: 0,
                    }),
                    None => Start::Earliest,
                };
                note!("block {block} is not in the ring yet; waiting for it");
                with_topics(Subscriber::open(ring)?, topics)
                    .stop_flag(Arc::clone(&stop))
                    .start(start)?
            }
            Err(e) => return Err(e).context("positioning in the ring"),
        };
        Ok(Some(Feed {
            sub,
            stop,
            first_block,
            until: None,
            done: false,
            producer_down: false,
        }))
    }

    /// End with [`Next::Done`] once every op through block `n` was delivered: after the end
    /// of block `n` (or of the first block after it, if `n` does not exist), or when the reader
    /// is caught up and the ring's last committed block is `n` or later. Ops of later blocks are
    /// never delivered.
    pub fn until_block(mut self, n: Option<u64>) -> Feed {
        self.until = n;
        self
    }

    /// The loop of a bot that handles ops one by one: each op goes to `handle`, which prints
    /// what it has to say about it; the cursor moves past every op and is saved right after
    /// output (so an op is never marked done before its line left the process), at block ends
    /// and while idle when [`SAVE_EVERY`] is due. Returns, with the cursor saved, when the
    /// stop flag is raised, the last block is done, or `handle` says so.
    pub fn for_each_op(
        &mut self,
        checkpoint: &mut Checkpoint,
        out: &mut Out,
        mut handle: impl FnMut(&Op, &mut Out) -> anyhow::Result<Handled>,
    ) -> anyhow::Result<()> {
        loop {
            match self.next(IDLE_POLL)? {
                Next::Stopped | Next::Done => break,
                Next::Idle => checkpoint.save_if_due(out)?,
                Next::Event(Event::BlockEnd(end)) => {
                    checkpoint.block_end(&end);
                    checkpoint.save_if_due(out)?;
                }
                Next::Event(Event::Op(op)) => {
                    let handled = handle(&op, out)?;
                    checkpoint.advance(op.cursor());
                    match handled {
                        Handled::Passed => {}
                        Handled::Printed => checkpoint.save(out)?,
                        Handled::Last => break,
                    }
                }
            }
        }
        checkpoint.save(out)
    }

    /// The next event, waiting at most `timeout`. Lag and gap reports are printed on stderr and
    /// reading goes on; so are changes of the broadcaster's health, looked at whenever no event
    /// is ready. Errors are those reading cannot continue after (a corrupt ring).
    pub fn next(&mut self, timeout: Duration) -> anyhow::Result<Next> {
        loop {
            if self.done {
                return Ok(Next::Done);
            }
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Next::Stopped);
            }
            // Read before receiving: when the receive then finds nothing, every block through
            // this one has been received.
            let committed = self.sub.committed_block();
            match self.sub.recv_timeout(timeout) {
                Ok(Some(Event::Op(op))) => {
                    if op.block() < self.first_block {
                        continue;
                    }
                    if self.until.is_some_and(|n| op.block() > n) {
                        self.done = true;
                        continue;
                    }
                    return Ok(Next::Event(Event::Op(op)));
                }
                Ok(Some(Event::BlockEnd(end))) => {
                    if end.block < self.first_block {
                        continue;
                    }
                    self.done = self.until.is_some_and(|n| end.block >= n);
                    return Ok(Next::Event(Event::BlockEnd(end)));
                }
                Ok(None) => {
                    self.watch_producer();
                    if let (Some(n), Some(c)) = (self.until, committed) {
                        self.done = c >= n;
                    }
                    if !self.done {
                        return Ok(Next::Idle);
                    }
                }
                Err(RecvError::Stopped) => return Ok(Next::Stopped),
                Err(
                    e @ (RecvError::Lagged { .. }
                    | RecvError::Gap { .. }
                    | RecvError::UpstreamGap { .. }),
                ) => {
                    note!("{e}; reading on");
                }
                Err(e) => return Err(e).context("reading the ring"),
            }
        }
    }

    fn watch_producer(&mut self) {
        match self.sub.producer_status() {
            ProducerStatus::Alive { pid, epoch } => {
                if self.producer_down {
                    note!("broadcaster is back (pid {pid}, epoch {epoch}); reading on");
                    self.producer_down = false;
                }
            }
            ProducerStatus::Stale {
                pid, silent_for, ..
            } => {
                if !self.producer_down {
                    note!(
                        "broadcaster (pid {pid}) silent for {} s; waiting for it",
                        silent_for.as_secs()
                    );
                    self.producer_down = true;
                }
            }
            ProducerStatus::Dead { pid, .. } => {
                if !self.producer_down {
                    note!("broadcaster (pid {pid}) is not running; waiting for it to come back");
                    self.producer_down = true;
                }
            }
            // The subscriber moves to the new file by itself and reports any gap.
            ProducerStatus::Replaced => {}
        }
    }
}

fn with_topics(builder: consumer_sdk::Builder, topics: &[String]) -> consumer_sdk::Builder {
    if topics.is_empty() {
        builder
    } else {
        builder.topics(topics.iter().cloned())
    }
}

// ---------------------------------------------------------------------- checkpoint --

/// A bot's position and its optional cursor file.
///
/// The position moves with every event handled: to an op's cursor, or at a block end to the
/// last op of that block (all topics counted), so a restart does not walk again through ops it
/// filtered out. A cursor set at a block end has `trx_index` and `op_index` 0, since the op it
/// names was not read.
#[derive(Debug)]
pub struct Checkpoint {
    file: Option<CursorFile>,
    at: Option<Cursor>,
    saved: Option<Cursor>,
    last_save: Instant,
}

impl Checkpoint {
    /// A checkpoint saved to `file`, or kept in memory only.
    pub fn new(file: Option<PathBuf>) -> Checkpoint {
        Checkpoint {
            file: file.map(CursorFile::new),
            at: None,
            saved: None,
            last_save: Instant::now(),
        }
    }

    /// The cursor saved by an earlier run, if any. A cursor file whose directory does not exist
    /// is an error now, rather than at the first save.
    pub fn load(&mut self) -> anyhow::Result<Option<Cursor>> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let dir = match file.path().parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        if !dir.is_dir() {
            anyhow::bail!(
                "cursor file {}: the directory {} does not exist",
                file.path().display(),
                dir.display()
            );
        }
        let cursor = file.load()?;
        self.saved = cursor;
        Ok(cursor)
    }

    /// Every op up to and including `cursor` is handled.
    pub fn advance(&mut self, cursor: Cursor) {
        self.at = Some(cursor);
    }

    /// Every op of block `end` is handled.
    pub fn block_end(&mut self, end: &BlockEnd) {
        let Some(last) = end.op_count.checked_sub(1) else {
            return;
        };
        let index_in_block = u32::try_from(last).unwrap_or(u32::MAX);
        // The last op of the block was handled already: keep its full cursor.
        if self
            .at
            .is_some_and(|c| c.block == end.block && c.index_in_block == index_in_block)
        {
            return;
        }
        self.at = Some(Cursor {
            block: end.block,
            index_in_block,
            trx_index: 0,
            op_index: 0,
        });
    }

    /// Flushes `out`, then saves the position if it moved: output first, so an op is never
    /// marked done before it was printed.
    pub fn save(&mut self, out: &mut Out) -> anyhow::Result<()> {
        out.flush().context("writing to stdout")?;
        let (Some(file), Some(at)) = (&self.file, self.at) else {
            return Ok(());
        };
        if self.saved != Some(at) {
            file.save(&at).context("saving the cursor")?;
            self.saved = Some(at);
            self.last_save = Instant::now();
        }
        Ok(())
    }

    /// [`Checkpoint::save`], if the last save is [`SAVE_EVERY`] old: for positions that moved
    /// past ops without output.
    pub fn save_if_due(&mut self, out: &mut Out) -> anyhow::Result<()> {
        if self.last_save.elapsed() >= SAVE_EVERY {
            self.save(out)
        } else {
            Ok(())
        }
    }
}

// ------------------------------------------------------------------------ formatting --

/// Formats seconds since the Unix epoch as a UTC date and time the way nodes print block
/// times: `2020-11-07T19:33:27`.
pub fn format_timestamp(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month and day of the day `days` after 1970-01-01, in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that leap days end each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00");
        assert_eq!(format_timestamp(1_604_777_607), "2020-11-07T19:33:27");
        assert_eq!(format_timestamp(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_timestamp(951_868_799), "2000-02-29T23:59:59");
        assert_eq!(format_timestamp(1_582_934_400), "2020-02-29T00:00:00");
        assert_eq!(format_timestamp(1_583_020_800), "2020-03-01T00:00:00");
        assert_eq!(format_timestamp(1_609_459_199), "2020-12-31T23:59:59");
        assert_eq!(format_timestamp(u64::from(u32::MAX)), "2106-02-07T06:28:15");
    }

    #[test]
    fn start_at_parses() {
        assert_eq!("latest".parse(), Ok(StartAt::Latest));
        assert_eq!("earliest".parse(), Ok(StartAt::Earliest));
        assert_eq!("48403720".parse(), Ok(StartAt::Block(48_403_720)));
        assert!("-1".parse::<StartAt>().is_err());
        assert!("Latest".parse::<StartAt>().is_err());
        let c = Cursor {
            block: 5,
            index_in_block: 2,
            trx_index: 1,
            op_index: 0,
        };
        assert_eq!(StartAt::Latest.or_after(Some(c)), Start::After(c));
        assert_eq!(StartAt::Block(9).or_after(None), Start::Block(9));
        assert!(check_until(StartAt::Block(9), Some(8)).is_err());
        assert!(check_until(StartAt::Block(9), Some(9)).is_ok());
        assert!(check_until(StartAt::Latest, Some(1)).is_ok());
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = io::Error::new(io::ErrorKind::NotFound, "gone");
        #[derive(Debug)]
        struct Wraps(io::Error);
        impl fmt::Display for Wraps {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "/x/c.json: {}", self.0)
            }
        }
        impl std::error::Error for Wraps {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Wraps(io)).context("saving the cursor");
        assert_eq!(format!("{e:#}"), "saving the cursor: /x/c.json: gone: gone");
        assert_eq!(causes(&e), "saving the cursor: /x/c.json: gone");
    }

    #[test]
    fn names() {
        assert_eq!(parse_topic("vote_operation").as_deref(), Ok("vote"));
        assert_eq!(parse_topic("custom_json").as_deref(), Ok("custom_json"));
        assert!(parse_topic("Vote").is_err());
        assert!(parse_topic("").is_err());
        assert_eq!(parse_account("steem.dao-1").as_deref(), Ok("steem.dao-1"));
        assert!(parse_account("ab").is_err());
        assert!(parse_account("1abc").is_err());
        assert!(parse_account("Alice").is_err());
        assert!(parse_ring("").is_err());
        assert_eq!(parse_ring("steem").as_deref(), Ok("steem"));
    }
}
