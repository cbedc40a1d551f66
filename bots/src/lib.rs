//! What the example bots (`dump`, `new-posts`, `transfers`, `vote-stats`) share beyond the SDK's
//! [`consumer_sdk::Bot`] loop: their command-line options, their output and exit codes.
//!
//! # Semantics
//!
//! The loop itself (waiting for the ring, stopping on SIGTERM/SIGINT, reports of lag, gaps and
//! a dead broadcaster, cursors saved at least once) is the SDK's [`consumer_sdk::Bot`]; see its
//! documentation. What is added here:
//!
//! * **Closed stdout.** A bot whose reader went away (EPIPE) exits 0: [`exit_code`] treats a
//!   broken pipe as the end of the job, not as a failure.
//! * **Output before cursor.** [`Out`] flushes every line as it is written, so when a bot then
//!   saves its cursor the output is already out of the process: an op is never marked done
//!   before its output left. A bot killed between the two prints that op again after a
//!   restart; nothing is ever skipped.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use consumer_sdk::{Bot, BotBuilder, CursorSaves, Start};
use std::fmt;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

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

/// How often a bot that prints only some of the ops it reads saves a cursor that moved past ops
/// without output (see [`CursorSaves::Every`]).
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How long a bot's loop waits for an event before it looks around (stop flag, reports due).
pub const IDLE_POLL: Duration = Duration::from_millis(250);

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
    /// The subscriber start for this choice (a saved cursor, when there is one, wins: see
    /// [`bot`]).
    pub fn start(self) -> Start {
        match self {
            StartAt::Latest => Start::Latest,
            StartAt::Earliest => Start::Earliest,
            StartAt::Block(n) => Start::Block(n),
        }
    }
}

/// The SDK bot loop for an example bot: `topics` of `ring` (every topic when empty), starting at
/// `from` unless `cursor` names a file holding a saved position, which is then resumed after
/// and kept up to date. Notices go to stderr, prefixed with the program's name.
pub fn bot(ring: &str, topics: &[&str], from: StartAt, cursor: Option<PathBuf>) -> BotBuilder {
    let mut builder = Bot::builder(ring).start(from.start());
    if !topics.is_empty() {
        builder = builder.topics(topics.iter().copied());
    }
    if let Some(cursor) = cursor {
        builder = builder.cursor_file(cursor);
    }
    builder
}

/// [`bot`] for a bot that prints only some of the ops it reads: the cursor is saved right
/// after each line printed (by the bot, with [`Bot::save`]) and otherwise every
/// [`SAVE_EVERY`].
pub fn sparse_bot(
    ring: &str,
    topics: &[&str],
    from: StartAt,
    cursor: Option<PathBuf>,
) -> BotBuilder {
    bot(ring, topics, from, cursor).save_cursor(CursorSaves::Every(SAVE_EVERY))
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

/// Checks a `--ring` value the way the SDK takes it ([`consumer_sdk::RingPath`]).
pub fn parse_ring(s: &str) -> Result<String, String> {
    s.parse::<consumer_sdk::RingPath>()
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

/// Standard output for bots: lines are flushed at once ([`Out::line`], [`Out::print`]), since
/// other processes read them as they come, or in batches ([`Out::buffered_line`], then
/// [`Out::flush`]) by a bot that knows when a batch ends.
pub struct Out {
    /// Buffered in front of the standard library's own line buffering, which would otherwise
    /// write each line on its own.
    stdout: io::BufWriter<io::StdoutLock<'static>>,
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
            stdout: io::BufWriter::with_capacity(64 << 10, io::stdout().lock()),
        }
    }

    /// Writes `line` and a newline, and flushes.
    pub fn line(&mut self, line: &[u8]) -> io::Result<()> {
        self.stdout.write_all(line)?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }

    /// Writes `line` and a newline without flushing: the line goes out with the next flush
    /// (or when the buffer is full).
    pub fn buffered_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.stdout.write_all(line)?;
        self.stdout.write_all(b"\n")
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
        assert_eq!(StartAt::Latest.start(), Start::Latest);
        assert_eq!(StartAt::Block(9).start(), Start::Block(9));
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
