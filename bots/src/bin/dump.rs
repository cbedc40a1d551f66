//! `dump`: print the ops of a ring as JSON lines.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use bots::{Out, PositionArgs, RingArgs, StartAt, note};
use clap::{CommandFactory as _, Parser};
use consumer_sdk::{Op, Step};
use serde_json::Value;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const AFTER_HELP: &str = "\
Each line is one op record:
  {\"block\":N,\"trx_index\":I,\"trx_id\":\"<40 hex>\",\"op_index\":J,\"virtual\":false,
   \"timestamp\":\"2020-11-07T19:33:27\",\"type\":\"vote\",\"data\":{...}}
`type` is the topic (op type without `_operation`), `timestamp` the block time (UTC) and `data`
the op body exactly as the broadcaster published it. A body that is not JSON is printed as a JSON
string, with a warning on stderr. Output is flushed at the end of each block that is the newest
committed one when it is read, and whenever nothing is left to read: a line never waits for a later
block, and while catching up lines go out in batches.

With --cursor, every line is flushed as it is written and the cursor is saved after it: after a
crash, the line printed last may be printed again (at least once); no op is skipped.";

/// Print the ops of a ring as JSON lines.
#[derive(Debug, Parser)]
#[command(name = "dump", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    ring: RingArgs,
    /// Print only ops of these topics (op types such as `vote` or `custom_json`), comma-separated;
    /// default: every topic
    #[arg(long, value_name = "TOPIC,...", value_delimiter = ',', value_parser = bots::parse_topic)]
    topics: Vec<String>,
    #[command(flatten)]
    position: PositionArgs,
    /// Exit once block N is committed and every op through it has been printed (also when block N
    /// holds none of the topics or does not exist)
    #[arg(long, value_name = "N")]
    until_block: Option<u64>,
    /// Exit after printing N records
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
}

/// What `dump` was asked to do, checked.
#[derive(Debug)]
struct Config {
    ring: String,
    topics: Vec<String>,
    from: StartAt,
    cursor: Option<PathBuf>,
    until_block: Option<u64>,
    count: Option<u64>,
}

impl Cli {
    fn config(self) -> Result<Config, clap::Error> {
        bots::check_until(self.position.from, self.until_block)
            .map_err(|e| Cli::command().error(clap::error::ErrorKind::ArgumentConflict, e))?;
        Ok(Config {
            ring: self.ring.ring,
            topics: self.topics,
            from: self.position.from,
            cursor: self.position.cursor,
            until_block: self.until_block,
            count: self.count,
        })
    }
}

fn main() -> ExitCode {
    let config = Cli::parse().config().unwrap_or_else(|e| e.exit());
    bots::exit_code(run(config))
}

fn run(config: Config) -> anyhow::Result<()> {
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    // A line must be out before the cursor saved after it says so; without a cursor file,
    // lines wait in the buffer until the end of the newest committed block, or until nothing
    // is left to read.
    let each_line = config.cursor.is_some();
    let mut builder = bots::bot(&config.ring, &topics, config.from, config.cursor);
    if let Some(n) = config.until_block {
        builder = builder.until_block(n);
    }
    // Every op is printed, so the cursor is saved after each (the SDK's default).
    let mut bot = builder.open()?;
    let mut out = Out::new();
    let mut line = Vec::with_capacity(4096);
    let mut stamp = Stamp::default();
    let mut printed = 0;
    loop {
        let op = match bot.recv_timeout(IDLE_WAIT)? {
            Step::Op(op) => op,
            Step::Stopped | Step::Done => break,
            Step::Idle => {
                out.flush().context("writing to stdout")?;
                continue;
            }
            Step::BlockEnd(end) => {
                // The newest block so far: its lines go out now, before anything else is read.
                let newest = bot.subscriber().and_then(|s| s.committed_block());
                if newest.is_none_or(|n| end.block >= n) {
                    out.flush().context("writing to stdout")?;
                }
                continue;
            }
            // Fork notices: nothing to print.
            _ => continue,
        };
        if let Err(e) = format_record(&op, &mut stamp, &mut line) {
            note!(
                "block {} op {}: body is not JSON ({e}); printed as a string",
                op.block(),
                op.index_in_block()
            );
        }
        if each_line {
            out.line(&line)
        } else {
            out.buffered_line(&line)
        }
        .context("writing to stdout")?;
        printed += 1;
        if config.count.is_some_and(|n| printed >= n) {
            break;
        }
    }
    out.flush().context("writing to stdout")?;
    bot.save()?;
    Ok(())
}

/// How long one receive waits for the next op or block end (then the output is flushed, and
/// the bot looks at its stop flag and the broadcaster's health).
const IDLE_WAIT: Duration = Duration::from_millis(250);

/// The block time of the op formatted last, formatted once for all the ops of a block.
#[derive(Default)]
struct Stamp {
    secs: Option<u32>,
    text: String,
}

impl Stamp {
    fn of(&mut self, secs: u32) -> &str {
        if self.secs != Some(secs) {
            self.text = bots::format_timestamp(secs.into());
            self.secs = Some(secs);
        }
        &self.text
    }
}

/// Writes `op` as one JSON object into `line` (replacing its contents). A body that is not JSON
/// is written as a JSON string, and the reason returned.
fn format_record(op: &Op, stamp: &mut Stamp, line: &mut Vec<u8>) -> Result<(), String> {
    line.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(
        line,
        r#"{{"block":{},"trx_index":{},"trx_id":"{}","op_index":{},"virtual":{},"timestamp":"{}","type":"#,
        op.block(),
        op.trx_index(),
        op.trx_id_hex(),
        op.op_index(),
        op.is_virtual(),
        stamp.of(op.timestamp()),
    );
    let _ = serde_json::to_writer(&mut *line, op.topic());
    line.extend_from_slice(br#","data":"#);
    let verdict = check_json(op.payload());
    if verdict.is_ok() {
        push_compact(op.payload(), line);
    } else {
        let text = Value::from(String::from_utf8_lossy(op.payload()));
        line.extend_from_slice(text.to_string().as_bytes());
    }
    line.push(b'}');
    verdict
}

/// Whether `body` is one JSON value in UTF-8.
fn check_json(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Appends the valid JSON `body` without the whitespace between its tokens, so that it fits on
/// one line; every other byte (strings and their escapes included) is kept as it is.
///
/// Strings are skipped whole (`memchr` finds their quotes and escapes); only the short stretches
/// between them are looked at byte by byte. A body with no whitespace between its tokens, as
/// the broadcaster publishes them, is copied in one piece.
fn push_compact(body: &[u8], line: &mut Vec<u8>) {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    // Whole blocks of bytes at a time (a loop the compiler vectorises): most bodies have no
    // whitespace at all, not even inside their strings.
    if !body
        .chunks(64)
        .any(|c| c.iter().fold(false, |seen, b| seen | is_ws(b)))
    {
        line.extend_from_slice(body);
        return;
    }
    // `body[copied..at]` is kept and not yet copied; `at` is outside strings.
    let (mut copied, mut at) = (0, 0);
    while at < body.len() {
        let stretch_end = memchr::memchr(b'"', &body[at..]).map_or(body.len(), |k| at + k);
        if body[at..stretch_end].iter().any(is_ws) {
            line.extend_from_slice(&body[copied..at]);
            line.extend(body[at..stretch_end].iter().filter(|b| !is_ws(b)));
            copied = stretch_end;
        }
        at = stretch_end;
        if at == body.len() {
            break;
        }
        // Past the string that opens at `at` (an unterminated one runs to the end).
        let mut scan = at + 1;
        at = loop {
            match memchr::memchr2(b'"', b'\\', &body[scan.min(body.len())..]) {
                Some(k) if body[scan + k] == b'\\' => scan += k + 2,
                Some(k) => break scan + k + 1,
                None => break body.len(),
            }
        };
    }
    line.extend_from_slice(&body[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(body: &str) -> String {
        let mut out = Vec::new();
        push_compact(body.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compacting_keeps_strings_and_escapes() {
        assert_eq!(compact(r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(
            compact("{ \"a b\" :\n [1, \"x\\\" y\" ,\t{}]\r\n}"),
            r#"{"a b":[1,"x\" y",{}]}"#
        );
        assert_eq!(
            compact(r#" "caf\u00e9 https:\/\/x \\" "#),
            r#""caf\u00e9 https:\/\/x \\""#
        );
    }

    proptest::proptest! {
        // Failures are not persisted into the tree.
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// Against the plain byte-by-byte definition, on any bytes: JSON-like text with
        /// strings, escapes and whitespace, unterminated strings included.
        #[test]
        fn compacting_agrees_with_the_byte_by_byte_definition(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'"'),
                    proptest::strategy::Just(b'\\'),
                    proptest::strategy::Just(b' '),
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b'{'),
                    proptest::prelude::any::<u8>(),
                ],
                0..120,
            )
        ) {
            let mut expected = Vec::new();
            let (mut in_string, mut escaped) = (false, false);
            for &b in &bytes {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                } else if b == b'"' {
                    in_string = true;
                } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    continue;
                }
                expected.push(b);
            }
            let mut out = b"head".to_vec();
            push_compact(&bytes, &mut out);
            proptest::prop_assert_eq!(&out[4..], &expected[..]);
        }
    }

    #[test]
    fn json_check() {
        assert!(check_json(br#"{"a":[1,2,{"b":"\u2757"}]}"#).is_ok());
        assert!(check_json(b" 17 ").is_ok());
        assert!(check_json(b"{\"a\":1} x").is_err());
        assert!(check_json(b"not json").is_err());
        assert!(check_json(b"\"\xff\"").is_err());
        assert!(check_json(b"").is_err());
    }

    #[test]
    fn cli_rejects_until_before_from() {
        let cli = Cli::try_parse_from(["dump", "--from", "10", "--until-block", "9"]).unwrap();
        assert!(cli.config().is_err());
        let cli = Cli::try_parse_from([
            "dump",
            "--from",
            "10",
            "--until-block",
            "10",
            "--topics",
            "vote,comment_operation",
        ]);
        let config = cli.unwrap().config().unwrap();
        assert_eq!(config.topics, ["vote", "comment"]);
        assert!(Cli::try_parse_from(["dump", "--count", "0"]).is_err());
        Cli::command().debug_assert();
    }
}
