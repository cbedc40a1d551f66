//! The bots as real processes, reading real ring files written here with `Publisher` from real
//! Steem blocks (`data/steem` in the repository). Every wait has a deadline; conditions are polled,
//! never assumed after a sleep; nothing is timed.

use consumer_sdk::{CreateOptions, OpMeta, Publisher};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const DUMP: &str = env!("CARGO_BIN_EXE_dump");
const NEW_POSTS: &str = env!("CARGO_BIN_EXE_new-posts");
const TRANSFERS: &str = env!("CARGO_BIN_EXE_transfers");
const VOTE_STATS: &str = env!("CARGO_BIN_EXE_vote-stats");

/// Longest any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);
/// Pause between two looks at a polled condition.
const POLL: Duration = Duration::from_millis(5);
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/steem");

// ---------------------------------------------------------------------------- fixture --

#[derive(Debug, Clone)]
struct FixtureOp {
    topic: String,
    trx_index: u32,
    trx_id: String,
    op_index: u32,
    virtual_op: bool,
    body: String,
}

#[derive(Debug, Clone)]
struct Block {
    number: u64,
    time: String,
    ops: Vec<FixtureOp>,
}

/// The recorded Steem blocks, oldest first: `get_ops_in_block` of 25926363 (with a virtual op)
/// and the nine `get_block` responses (the last but one holds no transaction).
fn steem_blocks() -> &'static [Block] {
    static BLOCKS: OnceLock<Vec<Block>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let mut blocks = vec![ops_in_block(&format!(
            "{DATA}/condenser_api.get_ops_in_block/25926363.result.json"
        ))];
        let mut files: Vec<PathBuf> = std::fs::read_dir(format!("{DATA}/condenser_api.get_block"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        blocks.extend(files.iter().map(|f| get_block(f)));
        assert_eq!(blocks.len(), 10);
        blocks
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ops_in_block(path: &str) -> Block {
    let result = read_json(Path::new(path))["result"].clone();
    let entries = result.as_array().unwrap();
    let ops = entries
        .iter()
        .map(|e| FixtureOp {
            topic: e["op"][0].as_str().unwrap().to_string(),
            trx_index: e["trx_in_block"].as_u64().unwrap().try_into().unwrap(),
            trx_id: e["trx_id"].as_str().unwrap().to_string(),
            op_index: e["op_in_trx"].as_u64().unwrap().try_into().unwrap(),
            virtual_op: e["virtual_op"].as_u64().unwrap() != 0,
            body: e["op"][1].to_string(),
        })
        .collect();
    Block {
        number: entries[0]["block"].as_u64().unwrap(),
        time: entries[0]["timestamp"].as_str().unwrap().to_string(),
        ops,
    }
}

fn get_block(path: &Path) -> Block {
    let block = read_json(path)["result"].clone();
    let id = block["block_id"].as_str().unwrap();
    let mut ops = Vec::new();
    for (t, trx) in block["transactions"].as_array().unwrap().iter().enumerate() {
        for (o, op) in trx["operations"].as_array().unwrap().iter().enumerate() {
            ops.push(FixtureOp {
                topic: op[0].as_str().unwrap().to_string(),
                trx_index: t.try_into().unwrap(),
                trx_id: trx["transaction_id"].as_str().unwrap().to_string(),
                op_index: o.try_into().unwrap(),
                virtual_op: false,
                body: op[1].to_string(),
            });
        }
    }
    Block {
        number: u64::from_str_radix(&id[..8], 16).unwrap(),
        time: block["timestamp"].as_str().unwrap().to_string(),
        ops,
    }
}

/// A block made up for a test, with ops of the given topics and bodies.
fn made_up_block(number: u64, ops: &[(&str, Value)]) -> Block {
    let ops = ops
        .iter()
        .enumerate()
        .map(|(i, (topic, body))| FixtureOp {
            topic: topic.to_string(),
            trx_index: i.try_into().unwrap(),
            trx_id: format!("{:040x}", number * 1000 + i as u64),
            op_index: 0,
            virtual_op: false,
            body: body.to_string(),
        })
        .collect();
    Block {
        number,
        time: "2023-01-01T00:00:00".into(),
        ops,
    }
}

/// The fixture blocks again and again, numbered from `first` on: a long stream of real ops.
fn stream(first: u64, rounds: usize) -> Vec<Block> {
    let source = steem_blocks();
    (0..rounds * source.len())
        .map(|i| Block {
            number: first + i as u64,
            ..source[i % source.len()].clone()
        })
        .collect()
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS` (UTC).
fn epoch_seconds(time: &str) -> u32 {
    let n = |r: std::ops::Range<usize>| time[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19))
        .try_into()
        .unwrap()
}

fn hex20(hex: &str) -> [u8; 20] {
    let mut out = [0; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn create_ring(dir: &Path, capacity: u64) -> (String, Publisher) {
    let path = dir.join("ring").to_str().unwrap().to_string();
    let publisher = Publisher::create(
        &path,
        &CreateOptions {
            capacity,
            mode: 0o600,
        },
    )
    .unwrap();
    (path, publisher)
}

fn publish(p: &mut Publisher, block: &Block) {
    let mut id = [0; 20];
    id[..8].copy_from_slice(&block.number.to_be_bytes());
    p.begin_block(block.number, epoch_seconds(&block.time), id)
        .unwrap();
    for op in &block.ops {
        let topic = p.topic(&op.topic).unwrap();
        let meta = OpMeta {
            trx_index: op.trx_index,
            trx_id: hex20(&op.trx_id),
            op_index: op.op_index,
            virtual_op: op.virtual_op,
        };
        p.push(topic, &meta, op.body.as_bytes()).unwrap();
    }
    p.commit().unwrap();
}

fn publish_all<'a>(p: &mut Publisher, blocks: impl IntoIterator<Item = &'a Block>) {
    for b in blocks {
        publish(p, b);
    }
}

/// The line `dump` must print for `op`, byte for byte.
fn record_line(block: &Block, op: &FixtureOp) -> String {
    format!(
        r#"{{"block":{},"trx_index":{},"trx_id":"{}","op_index":{},"virtual":{},"timestamp":"{}","type":"{}","data":{}}}"#,
        block.number,
        op.trx_index,
        op.trx_id,
        op.op_index,
        op.virtual_op,
        block.time,
        op.topic,
        op.body
    )
}

/// `dump`'s lines for the ops of `blocks` whose topic passes `keep`.
fn dump_lines<'a>(
    blocks: impl IntoIterator<Item = &'a Block>,
    keep: impl Fn(&str) -> bool,
) -> Vec<String> {
    blocks
        .into_iter()
        .flat_map(|b| {
            b.ops
                .iter()
                .filter(|op| keep(&op.topic))
                .map(move |op| record_line(b, op))
        })
        .collect()
}

fn blocks_through(n: u64) -> impl Iterator<Item = &'static Block> {
    steem_blocks().iter().filter(move |b| b.number <= n)
}

fn last_block() -> u64 {
    steem_blocks().last().unwrap().number
}

// ------------------------------------------------------------------------- processes --

/// A bot process with its stdout read line by line (through a small bounded queue, so that a
/// test that stops reading makes the bot block on a full pipe) and its stderr collected.
struct Bot {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Bot {
    fn start(bin: &str, args: &[&str]) -> Bot {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::sync_channel(16);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stdout.read_until(b'\n', &mut buf) {
                    // A line without its newline was cut by a kill: it was never whole output.
                    Ok(_) if buf.last() == Some(&b'\n') => {
                        buf.pop();
                        if tx.send(String::from_utf8(buf.clone()).unwrap()).is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sink, mut pipe) = (Arc::clone(&stderr), child.stderr.take().unwrap());
        let stderr_reader = std::thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Bot {
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id().try_into().unwrap()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next line of output.
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => panic!("no output line ({e:?}); stderr:\n{}", self.stderr()),
        }
    }

    fn lines(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.line()).collect()
    }

    /// Lines up to and including the first one that passes `last`.
    fn lines_through(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let done = last(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    fn wait_stderr(&self, needle: &str) {
        wait_for(&format!("{needle:?} on stderr"), || {
            self.stderr().contains(needle)
        });
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid, which it keeps until we reap it.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the bot to exit: its exit status, the lines it printed that were not read
    /// yet, and all it wrote on stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + WAIT;
        let mut rest = Vec::new();
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the bot did not exit; stderr:\n{}", self.stderr())
                }
            }
        }
        let mut status = None;
        wait_for("the bot's exit", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        self.stderr_reader.take().unwrap().join().unwrap();
        (status.unwrap(), rest, self.stderr())
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds; fails the test after [`WAIT`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Runs a bot to its end: exit status, output lines, stderr.
fn run(bin: &str, args: &[&str]) -> (ExitStatus, Vec<String>, String) {
    Bot::start(bin, args).finish()
}

/// A tempdir with a 1 MiB ring holding every fixture block, and its publisher.
fn full_ring_publisher() -> (tempfile::TempDir, String, Publisher) {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    publish_all(&mut p, steem_blocks());
    (dir, ring, p)
}

/// A tempdir with a 1 MiB ring holding every fixture block.
fn full_ring() -> (tempfile::TempDir, String) {
    let (dir, ring, _) = full_ring_publisher();
    (dir, ring)
}

fn cursor_of(path: &Path) -> (u64, u32) {
    let c = read_json(path);
    (
        c["block"].as_u64().unwrap(),
        c["index_in_block"].as_u64().unwrap().try_into().unwrap(),
    )
}

// ------------------------------------------------------------------------------ dump --

#[test]
fn dump_prints_every_op_in_order_with_the_exact_shape() {
    let (_dir, ring) = full_ring();
    let last = last_block().to_string();
    let (status, lines, stderr) = run(
        DUMP,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--until-block",
            &last,
        ],
    );
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(lines, dump_lines(steem_blocks(), |_| true));

    let keys = [
        "block",
        "trx_index",
        "trx_id",
        "op_index",
        "virtual",
        "timestamp",
        "type",
        "data",
    ];
    let ops = steem_blocks()
        .iter()
        .flat_map(|b| b.ops.iter().map(move |op| (b, op)));
    let mut checked = 0;
    for (line, (block, op)) in lines.iter().zip(ops) {
        let record: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        assert_eq!(record.len(), keys.len(), "{line}");
        let mut at = 0;
        for key in keys {
            let found = line[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} out of order: {line}"));
            at += found;
        }
        assert_eq!(record["block"], block.number);
        assert_eq!(record["trx_index"], op.trx_index);
        assert_eq!(record["trx_id"], op.trx_id.as_str());
        assert_eq!(record["op_index"], op.op_index);
        assert_eq!(record["virtual"], op.virtual_op);
        assert_eq!(record["timestamp"], block.time.as_str());
        assert_eq!(record["type"], op.topic.as_str());
        assert_eq!(
            record["data"],
            serde_json::from_str::<Value>(&op.body).unwrap()
        );
        checked += 1;
    }
    assert_eq!(checked, 113);
    assert!(lines.iter().any(|l| l.contains(r#""trx_index":4294967295,"trx_id":"0000000000000000000000000000000000000000","op_index":0,"virtual":true"#)));
}

#[test]
fn dump_filters_topics_and_starts_at_a_block() {
    let (_dir, ring) = full_ring();
    let last = last_block().to_string();
    let topics = |t: &str| t == "transfer" || t == "comment";
    // 48404000 is not in the ring: reading starts at the next block, 48404510.
    let (status, lines, stderr) = run(
        DUMP,
        &[
            "--ring",
            &ring,
            "--topics",
            "transfer,comment_operation",
            "--from",
            "48404000",
            "--until-block",
            &last,
        ],
    );
    assert!(status.success(), "{status}: {stderr}");
    let expected = dump_lines(
        steem_blocks().iter().filter(|b| b.number >= 48_404_510),
        topics,
    );
    assert_eq!(expected.len(), 4);
    assert_eq!(lines, expected);

    let (status, lines, _) = run(
        DUMP,
        &[
            "--ring",
            &ring,
            "--topics",
            "vote",
            "--from",
            "66379830",
            "--until-block",
            &last,
        ],
    );
    assert!(status.success());
    assert_eq!(lines, dump_lines(&steem_blocks()[9..], |t| t == "vote"));
}

#[test]
fn dump_until_block_ends_on_a_block_without_matches_an_absent_block_or_a_past_one() {
    let (_dir, ring) = full_ring();
    // Block 48404510 holds no transfer_to_vesting.
    let (status, lines, _) = run(
        DUMP,
        &[
            "--ring",
            &ring,
            "--topics",
            "transfer_to_vesting",
            "--from",
            "earliest",
            "--until-block",
            "48404510",
        ],
    );
    assert!(status.success());
    assert_eq!(
        lines,
        dump_lines(blocks_through(48_404_510), |t| t == "transfer_to_vesting")
    );
    assert_eq!(lines.len(), 1);

    // 48405000 does not exist: the ring goes from 48404867 to 48405087.
    let (status, lines, _) = run(
        DUMP,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--until-block",
            "48405000",
        ],
    );
    assert!(status.success());
    assert_eq!(lines, dump_lines(blocks_through(48_405_000), |_| true));

    // Starting at the latest block, after block N was committed: nothing to print.
    let (status, lines, _) = run(DUMP, &["--ring", &ring, "--until-block", "48405000"]);
    assert!(status.success());
    assert!(lines.is_empty());
}

#[test]
fn dump_until_block_waits_for_a_later_block_when_block_n_is_absent_or_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    let blocks = steem_blocks();
    publish_all(&mut p, &blocks[..5]);
    assert_eq!(blocks[4].number, 48_404_773);

    // Block 48405000 will never exist; the dump ends with the first block after it.
    let mut absent = Bot::start(
        DUMP,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--until-block",
            "48405000",
        ],
    );
    // Block 48405646 holds no op at all.
    let mut empty = Bot::start(
        DUMP,
        &[
            "--ring",
            &ring,
            "--topics",
            "vote",
            "--from",
            "earliest",
            "--until-block",
            "48405646",
        ],
    );
    let printed = absent.lines(dump_lines(&blocks[..5], |_| true).len());
    assert_eq!(printed, dump_lines(&blocks[..5], |_| true));
    let votes = empty.lines(dump_lines(&blocks[..5], |t| t == "vote").len());
    assert_eq!(votes, dump_lines(&blocks[..5], |t| t == "vote"));

    publish(&mut p, &blocks[5]);
    assert_eq!(blocks[5].number, 48_404_867);
    let more = absent.lines(blocks[5].ops.len());
    assert_eq!(more, dump_lines(&blocks[5..6], |_| true));
    assert!(
        absent.running(),
        "exited before a block after 48405000 was committed"
    );
    publish_all(&mut p, &blocks[6..8]);
    let (status, rest, stderr) = absent.finish();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        rest.is_empty(),
        "printed ops after block 48405000: {rest:?}"
    );

    assert!(empty.running());
    publish(&mut p, &blocks[8]);
    assert_eq!((blocks[8].number, blocks[8].ops.len()), (48_405_646, 0));
    let (status, rest, stderr) = empty.finish();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(rest, dump_lines(&blocks[5..8], |t| t == "vote"));
}

#[test]
fn dump_from_a_block_the_ring_has_not_reached_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    let blocks = steem_blocks();
    publish_all(&mut p, &blocks[..2]);
    let (from, until) = (blocks[4].number.to_string(), blocks[5].number.to_string());
    let bot = Bot::start(
        DUMP,
        &["--ring", &ring, "--from", &from, "--until-block", &until],
    );
    bot.wait_stderr("not in the ring yet");
    publish_all(&mut p, &blocks[2..]);
    let (status, lines, stderr) = bot.finish();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(lines, dump_lines(&blocks[4..6], |_| true));
}

/// Without a cursor file `dump` writes in batches while catching up, yet every block it reads
/// as the newest is out at once: a reader of its output never waits for a later block.
#[test]
fn dump_output_keeps_up_with_the_ring_while_batching_a_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 4 << 20);
    let backlog = stream(1, 20);
    publish_all(&mut p, &backlog);
    let mut bot = Bot::start(DUMP, &["--ring", &ring, "--from", "earliest"]);
    let expected = dump_lines(&backlog, |_| true);
    assert_eq!(bot.lines(expected.len()), expected);
    let after = backlog.last().unwrap().number;
    for round in 0..3 {
        let next = after + 1 + round;
        let vote =
            serde_json::json!({"voter": "v", "author": "a", "permlink": "p", "weight": round});
        let block = made_up_block(next, &[("vote", vote.clone()), ("vote", vote)]);
        publish(&mut p, &block);
        // The bot keeps running: only a flush can bring these lines.
        assert_eq!(
            bot.lines(2),
            dump_lines([&block], |_| true),
            "round {round}"
        );
        assert!(bot.running());
    }
}

#[test]
fn dump_count_stops_after_n_records() {
    let (_dir, ring) = full_ring();
    let (status, lines, _) = run(
        DUMP,
        &["--ring", &ring, "--from", "earliest", "--count", "5"],
    );
    assert!(status.success());
    assert_eq!(lines, dump_lines(steem_blocks(), |_| true)[..5]);
}

#[test]
fn dump_embeds_bodies_verbatim_and_quotes_bodies_that_are_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    let mut block = made_up_block(
        100,
        &[
            ("transfer", Value::Null),
            ("custom", Value::Null),
            ("custom_json", Value::Null),
        ],
    );
    block.ops[0].body = r#"{"memo":"caf\u00e9 https:\/\/x \"q\"","amount":"1.000 STEEM"}"#.into();
    block.ops[1].body = "not json".into();
    block.ops[2].body = "{\"id\": \"follow\",\n \"json\": \"[1, 2]\"}".into();
    publish(&mut p, &block);
    let (status, lines, stderr) = run(
        DUMP,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--until-block",
            "100",
        ],
    );
    assert!(status.success());
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].ends_with(&format!(
            r#""type":"transfer","data":{}}}"#,
            block.ops[0].body
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(r#""type":"custom","data":"not json"}"#),
        "{}",
        lines[1]
    );
    assert!(stderr.contains("not JSON"), "{stderr}");
    assert!(
        lines[2].ends_with(r#""data":{"id":"follow","json":"[1, 2]"}}"#),
        "{}",
        lines[2]
    );
}

#[test]
fn dump_cursor_resumes_after_kill_9_without_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 8 << 20);
    let blocks = stream(1_000, 30);
    publish_all(&mut p, &blocks);
    let expected: Vec<(u64, u32, String)> = blocks
        .iter()
        .flat_map(|b| {
            b.ops
                .iter()
                .enumerate()
                .map(move |(i, op)| (b.number, i as u32, record_line(b, op)))
        })
        .collect();
    let cursor = dir.path().join("dump.cursor");
    let cursor_arg = cursor.to_str().unwrap();
    let last = blocks.last().unwrap().number.to_string();
    let args = [
        "--ring",
        &ring,
        "--cursor",
        cursor_arg,
        "--from",
        "earliest",
        "--until-block",
        &last,
    ];

    // The test reads 50 lines and no more, so the dump soon blocks on a full pipe: mid-stream.
    let mut first = Bot::start(DUMP, &args);
    let mut printed = first.lines(50);
    first.child.kill().unwrap();
    let (status, rest, _) = first.finish();
    assert!(!status.success());
    printed.extend(rest);
    let a = printed.len();
    assert!(a < expected.len(), "the dump finished before the kill");
    let saved = cursor_of(&cursor);

    let (status, resumed, stderr) = run(DUMP, &args);
    assert!(status.success(), "{status}: {stderr}");
    let lines: Vec<&String> = expected.iter().map(|e| &e.2).collect();
    assert_eq!(printed.iter().collect::<Vec<_>>(), lines[..a], "first run");
    let b = expected.iter().position(|e| (e.0, e.1) == saved).unwrap() + 1;
    assert!(b <= a, "ops {a}..{b} were skipped");
    assert!(a - b <= 1, "{} ops printed twice", a - b);
    assert_eq!(resumed.iter().collect::<Vec<_>>(), lines[b..], "second run");
}

#[test]
fn dump_exits_0_on_sigterm_with_its_cursor_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    let blocks = steem_blocks();
    publish_all(&mut p, &blocks[..3]);
    let cursor = dir.path().join("dump.cursor");
    let cursor_arg = cursor.to_str().unwrap();

    let mut bot = Bot::start(
        DUMP,
        &[
            "--ring", &ring, "--cursor", cursor_arg, "--from", "earliest",
        ],
    );
    let lines = bot.lines(dump_lines(&blocks[..3], |_| true).len());
    assert_eq!(lines, dump_lines(&blocks[..3], |_| true));
    bot.signal(libc::SIGTERM);
    let (status, rest, stderr) = bot.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(rest.is_empty());
    assert_eq!(
        cursor_of(&cursor),
        (blocks[2].number, blocks[2].ops.len() as u32 - 1)
    );

    // Restarted with the same cursor, it goes on with the next block and nothing else.
    let mut bot = Bot::start(
        DUMP,
        &[
            "--ring", &ring, "--cursor", cursor_arg, "--from", "earliest",
        ],
    );
    publish(&mut p, &blocks[3]);
    let next = bot.lines(blocks[3].ops.len());
    assert_eq!(next, dump_lines(&blocks[3..4], |_| true));
    bot.signal(libc::SIGINT);
    let (status, rest, _) = bot.finish();
    assert_eq!(status.code(), Some(0));
    assert!(rest.is_empty());
    assert_eq!(
        cursor_of(&cursor),
        (blocks[3].number, blocks[3].ops.len() as u32 - 1)
    );
}

#[test]
fn lapped_dump_reports_lag_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest ring the largest recorded block fits in (a quarter of it per block).
    let (ring, mut p) = create_ring(dir.path(), 128 << 10);
    let blocks = stream(1_000, 16);
    publish(&mut p, &blocks[0]);
    let last = blocks.last().unwrap().number.to_string();
    let mut bot = Bot::start(
        DUMP,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--until-block",
            &last,
        ],
    );
    let mut printed = bot.lines(blocks[0].ops.len());

    bot.signal(libc::SIGSTOP);
    wait_for("the dump to stop", || process_state(bot.pid()) == Some('T'));
    let total: usize = blocks.iter().map(|b| b.ops.len()).sum();
    let written: usize = blocks
        .iter()
        .map(|b| b.ops.iter().map(|op| op.body.len() + 64).sum::<usize>())
        .sum();
    assert!(written > 2 * (128 << 10), "the writer must lap the reader");
    publish_all(&mut p, &blocks[1..blocks.len() - 1]);
    bot.signal(libc::SIGCONT);
    publish(&mut p, blocks.last().unwrap());

    let (status, rest, stderr) = bot.finish();
    assert!(status.success(), "{status}: {stderr}");
    printed.extend(rest);
    let lost: usize = stderr
        .lines()
        .filter_map(|l| l.split_once("lagged behind the writer: "))
        .map(|(_, counts)| counts.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert!(lost > 0, "no lag reported: {stderr}");
    assert_eq!(
        printed.len() + lost,
        total,
        "every op is either printed or counted as lost"
    );
    let expected = dump_lines(&blocks, |_| true);
    let mut from = 0;
    for line in &printed {
        from += expected[from..]
            .iter()
            .position(|e| e == line)
            .expect("printed out of order or twice")
            + 1;
    }
    assert_eq!(
        printed[printed.len() - blocks.last().unwrap().ops.len()..],
        dump_lines(&blocks[blocks.len() - 1..], |_| true)
    );
}

fn process_state(pid: libc::pid_t) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn a_bot_waits_for_a_ring_that_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring").to_str().unwrap().to_string();
    let mut bot = Bot::start(
        DUMP,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--until-block",
            "48404510",
        ],
    );
    bot.wait_stderr("no ring yet");
    assert!(bot.running());
    let (_, mut p) = create_ring(dir.path(), 1 << 20);
    publish_all(&mut p, &steem_blocks()[..3]);
    let (status, lines, stderr) = bot.finish();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(lines, dump_lines(blocks_through(48_404_510), |_| true));
    assert_eq!(stderr.matches("no ring yet").count(), 1, "{stderr}");
}

#[test]
fn a_closed_stdout_is_a_clean_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    let mut child = Command::new(DUMP)
        .args(["--ring", &ring, "--from", "earliest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    // A child that another test thread forks holds a copy of the reading end until it execs,
    // so a write may still succeed for a moment: keep giving the dump something to print.
    let vote = serde_json::json!({"voter": "a", "author": "b", "permlink": "c", "weight": 1});
    let mut next = 1;
    let mut status = None;
    wait_for("the dump's exit", || {
        publish(&mut p, &made_up_block(next, &[("vote", vote.clone())]));
        next += 1;
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.unwrap().code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// Not a test on its own: the broadcaster process of
/// `a_dead_broadcaster_is_reported_once_and_its_return_too`, which runs this test binary
/// filtered to this function, with `BOTS_TEST_WRITER` naming the ring to create.
#[test]
fn writer_process() {
    let Ok(ring) = std::env::var("BOTS_TEST_WRITER") else {
        return;
    };
    let mut p = Publisher::create(
        &ring,
        &CreateOptions {
            capacity: 1 << 20,
            mode: 0o600,
        },
    )
    .unwrap();
    publish(&mut p, &steem_blocks()[1]);
}

#[test]
fn a_dead_broadcaster_is_reported_once_and_its_return_too() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring").to_str().unwrap().to_string();
    let writer = Command::new(std::env::current_exe().unwrap())
        .args(["cli::writer_process", "--exact", "--test-threads=1"])
        .env("BOTS_TEST_WRITER", &ring)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(writer.success());

    let blocks = steem_blocks();
    let mut bot = Bot::start(DUMP, &["--ring", &ring, "--from", "earliest"]);
    assert_eq!(
        bot.lines(blocks[1].ops.len()),
        dump_lines(&blocks[1..2], |_| true)
    );
    bot.wait_stderr("is not running");

    let mut p = Publisher::open(&ring).unwrap();
    publish(&mut p, &blocks[2]);
    assert_eq!(
        bot.lines(blocks[2].ops.len()),
        dump_lines(&blocks[2..3], |_| true)
    );
    bot.wait_stderr("broadcaster is back");
    bot.signal(libc::SIGTERM);
    let (status, _, stderr) = bot.finish();
    assert!(status.success());
    assert_eq!(stderr.matches("is not running").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("broadcaster is back").count(), 1, "{stderr}");
}

// ------------------------------------------------------------------- the other bots --

/// The fixture blocks and one more (block 70000000) made up by `extra`, whose last op the test
/// waits for.
fn ring_with_last_block(extra: &[(&str, Value)]) -> (tempfile::TempDir, String) {
    // The same publisher goes on: reopening the ring right away could race with a child that
    // another test thread forked while the first publisher held the ring's lock.
    let (dir, ring, mut p) = full_ring_publisher();
    publish(&mut p, &made_up_block(70_000_000, extra));
    (dir, ring)
}

fn comment(parent_author: &str, author: &str, permlink: &str) -> Value {
    serde_json::json!({"parent_author": parent_author, "parent_permlink": "test", "author": author,
        "permlink": permlink, "title": "t", "body": "b", "json_metadata": "{}"})
}

#[test]
fn new_posts_restarted_with_its_cursor_prints_neither_old_posts_nor_their_edits() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    publish(
        &mut p,
        &made_up_block(100, &[("comment", comment("", "alice", "first"))]),
    );
    let cursor = dir.path().join("new-posts.cursor");
    let args = [
        "--ring",
        &ring,
        "--from",
        "earliest",
        "--cursor",
        cursor.to_str().unwrap(),
    ];
    let mut bot = Bot::start(NEW_POSTS, &args);
    assert_eq!(bot.line(), "https://steemit.com/@alice/first");
    bot.signal(libc::SIGTERM);
    let (status, rest, stderr) = bot.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");

    // While it was down: an edit of the post it printed, a reply, and a new post.
    publish(
        &mut p,
        &made_up_block(
            101,
            &[
                ("comment", comment("", "alice", "first")),
                ("comment", comment("alice", "carol", "re-first")),
                ("comment", comment("", "bob", "second")),
            ],
        ),
    );
    let mut bot = Bot::start(NEW_POSTS, &args);
    assert_eq!(bot.line(), "https://steemit.com/@bob/second");
    bot.signal(libc::SIGTERM);
    let (status, rest, stderr) = bot.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(rest.is_empty(), "only the new post: {rest:?}");
}

#[test]
fn new_posts_prints_the_urls_of_top_level_posts() {
    let (_dir, ring) = ring_with_last_block(&[
        // An edit of a post seen before, and a reply: neither is a new post.
        (
            "comment",
            comment(
                "",
                "jennybeans",
                "song-challenge-day-14-when-god-made-you-by-newsong-featuring-natalie-grant",
            ),
        ),
        ("comment", comment("jeniya", "someone", "re-gfdgfdgfhb")),
        ("comment", comment("", "sentinel", "the-last-post")),
    ]);
    let mut posts: Vec<(String, String)> = Vec::new();
    for op in steem_blocks()
        .iter()
        .flat_map(|b| &b.ops)
        .filter(|op| op.topic == "comment")
    {
        let c: Value = serde_json::from_str(&op.body).unwrap();
        if c["parent_author"] == "" {
            posts.push((
                c["author"].as_str().unwrap().into(),
                c["permlink"].as_str().unwrap().into(),
            ));
        }
    }
    assert_eq!(posts.len(), 3);
    assert_eq!(
        posts[0].1,
        "song-challenge-day-14-when-god-made-you-by-newsong-featuring-natalie-grant"
    );
    posts.push(("sentinel".into(), "the-last-post".into()));

    for (base, args) in [
        (
            "https://steemit.com",
            vec!["--ring", &ring, "--from", "earliest"],
        ),
        (
            "https://peakd.com",
            vec![
                "--ring",
                &ring,
                "--from",
                "earliest",
                "--base-url",
                "https://peakd.com/",
            ],
        ),
    ] {
        let mut bot = Bot::start(NEW_POSTS, &args);
        let lines = bot.lines_through(|l| l.ends_with("/@sentinel/the-last-post"));
        let expected: Vec<String> = posts
            .iter()
            .map(|(a, p)| format!("{base}/@{a}/{p}"))
            .collect();
        assert_eq!(lines, expected);
        bot.signal(libc::SIGTERM);
        let (status, rest, stderr) = bot.finish();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(rest.is_empty(), "{rest:?}");
    }
}

#[test]
fn transfers_alerts_on_watched_senders_and_recipients() {
    let memo = "a \"quoted\"\nmemo";
    let (_dir, ring) = ring_with_last_block(&[
        (
            "transfer",
            serde_json::json!({"from": "carol", "to": "dave", "amount": "9.000 STEEM", "memo": ""}),
        ),
        (
            "transfer_to_vesting",
            serde_json::json!({"from": "kstop1", "to": "", "amount": "1.000 STEEM"}),
        ),
        (
            "transfer",
            serde_json::json!({"from": "sentinel", "to": "bob",
            "amount": {"amount": "1500", "precision": 3, "nai": "@@000000013"}, "memo": memo}),
        ),
    ]);
    let mut bot = Bot::start(
        TRANSFERS,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--account",
            "topfivefamily",
            "--account",
            "kstop1",
            "--account",
            "sentinel",
        ],
    );
    let lines = bot.lines_through(|l| l.contains("sentinel"));
    assert_eq!(
        lines,
        [
            "block 25926363 2018-09-13T14:31:39 transfer_to_vesting manimani → kstop1 0.007 STEEM",
            "block 48404683 2020-11-07T20:22:33 transfer topfivefamily → esclavos75 2.000 STEEM \
             memo \"Anunciando los ganadores del concurso. Observa Piensa Escribe. \"",
            "block 70000000 2023-01-01T00:00:00 transfer_to_vesting kstop1 → kstop1 1.000 STEEM",
            // The test ring records no chain, so a NAI amount cannot be given a chain's symbol.
            r#"block 70000000 2023-01-01T00:00:00 transfer sentinel → bob 1.500 @@000000013 memo "a \"quoted\"\nmemo""#,
        ]
    );
    bot.signal(libc::SIGTERM);
    let (status, rest, stderr) = bot.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
}

/// `vote-stats`' report line for everything in `blocks`, counted here.
fn expected_report(label: &str, blocks: &[Block]) -> String {
    let ops = || blocks.iter().flat_map(|b| &b.ops);
    let count = |topic: &str| ops().filter(|op| op.topic == topic).count();
    let mut voters: HashMap<String, usize> = HashMap::new();
    for op in ops().filter(|op| op.topic == "vote") {
        let vote: Value = serde_json::from_str(&op.body).unwrap();
        *voters
            .entry(vote["voter"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let mut top: Vec<(String, usize)> = voters.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top: Vec<String> = top
        .iter()
        .take(10)
        .map(|(v, n)| format!("{v} {n}"))
        .collect();
    format!(
        "{label}: {} blocks {}..{}, votes {}, comments {}, transfers {}; top voters: {}",
        blocks.len(),
        blocks[0].number,
        blocks[blocks.len() - 1].number,
        count("vote"),
        count("comment"),
        count("transfer"),
        top.join(", ")
    )
}

#[test]
fn vote_stats_counts_match_the_data() {
    let (_dir, ring) = full_ring();
    let last = last_block().to_string();
    let (status, lines, stderr) = run(
        VOTE_STATS,
        &[
            "--ring",
            &ring,
            "--from",
            "earliest",
            "--until-block",
            &last,
        ],
    );
    assert!(status.success(), "{status}: {stderr}");
    let summary = expected_report("summary", steem_blocks());
    assert!(
        summary.contains("votes 86, comments 5, transfers 3"),
        "{summary}"
    );
    assert_eq!(lines.last(), Some(&summary), "{lines:?}");
}

/// A fork notice takes the orphaned blocks' counts back; the new branch's blocks count instead.
#[test]
fn vote_stats_takes_back_the_blocks_a_fork_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, mut p) = create_ring(dir.path(), 1 << 20);
    let vote = |voter: &str| {
        let body = serde_json::json!({"voter": voter, "author": "a", "permlink": "p", "weight": 1});
        ("vote", body)
    };
    let id = |n: u64| {
        let mut id = [0; 20];
        id[..8].copy_from_slice(&n.to_be_bytes());
        id
    };
    for n in 1..=3 {
        publish(&mut p, &made_up_block(n, &[vote("alice")]));
    }
    for n in 4..=5 {
        publish(&mut p, &made_up_block(n, &[vote("orphan"), vote("orphan")]));
    }
    // Blocks 4 and 5 are replaced by another branch's 4, 5 and 6.
    let mut new_id = id(4);
    new_id[19] = 1;
    p.begin_fork(4, 1_672_531_200, new_id, id(3), &[id(4), id(5)])
        .unwrap();
    let topic = p.topic("vote").unwrap();
    let meta = OpMeta {
        trx_index: 0,
        trx_id: [4; 20],
        op_index: 0,
        virtual_op: false,
    };
    p.push(topic, &meta, vote("bob").1.to_string().as_bytes())
        .unwrap();
    p.commit().unwrap();
    for n in 5..=6 {
        publish(&mut p, &made_up_block(n, &[vote("bob")]));
    }
    let (status, lines, stderr) = run(
        VOTE_STATS,
        &["--ring", &ring, "--from", "earliest", "--until-block", "6"],
    );
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            "summary: 6 blocks 1..6, votes 6, comments 0, transfers 0; top voters: alice 3, bob 3"
        ),
        "{lines:?}"
    );
    assert!(
        stderr.contains("fork: blocks 4..=5 were orphaned"),
        "{stderr}"
    );
}

#[test]
fn vote_stats_reports_every_interval_and_sums_up_on_sigterm() {
    let (_dir, ring) = full_ring();
    let mut bot = Bot::start(
        VOTE_STATS,
        &["--ring", &ring, "--from", "earliest", "--interval", "1"],
    );
    let expected_votes = steem_blocks()
        .iter()
        .flat_map(|b| &b.ops)
        .filter(|op| op.topic == "vote")
        .count();
    let mut votes = 0;
    while votes < expected_votes {
        let line = bot.line();
        assert!(line.starts_with("last 1s: "), "{line}");
        let n = line
            .split_once(", votes ")
            .unwrap()
            .1
            .split(',')
            .next()
            .unwrap();
        votes += n.parse::<usize>().unwrap();
    }
    assert_eq!(votes, expected_votes);
    // Nothing more comes: over 3.5 intervals, one empty report at most (one a minute).
    std::thread::sleep(Duration::from_millis(3500));
    bot.signal(libc::SIGTERM);
    let (status, rest, stderr) = bot.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        rest.last(),
        Some(&expected_report("summary", steem_blocks()))
    );
    let empty = rest
        .iter()
        .filter(|l| l.starts_with("last 1s: 0 blocks,"))
        .count();
    assert!(empty <= 1, "{rest:#?}");
}

#[test]
fn a_cursor_in_a_missing_directory_is_refused_at_start() {
    let (dir, ring) = full_ring();
    let missing = dir.path().join("nowhere");
    let cursor = missing.join("c.json");
    for bin in [DUMP, NEW_POSTS] {
        let out = Command::new(bin)
            .args(["--ring", &ring, "--from", "earliest"])
            .args(["--cursor", cursor.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bin}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the directory {} does not exist",
                missing.display()
            )),
            "{bin}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{bin} printed nothing");
    }
}

// ------------------------------------------------------------------------------- CLI --

#[test]
fn bad_flags_exit_2_and_help_exits_0() {
    let cases: [(&str, &[&str], &str); 9] = [
        (DUMP, &["--bogus"], "--bogus"),
        (DUMP, &["--from", "yesterday"], "--from"),
        (DUMP, &["--count", "0"], "--count"),
        (
            DUMP,
            &["--from", "9", "--until-block", "5"],
            "--until-block",
        ),
        (DUMP, &["--topics", "Vote"], "--topics"),
        (TRANSFERS, &[], "--account"),
        (TRANSFERS, &["--account", "Not An Account"], "--account"),
        (VOTE_STATS, &["--interval", "0"], "--interval"),
        (
            NEW_POSTS,
            &["--base-url", "ftp://example.com"],
            "--base-url",
        ),
    ];
    for (bin, args, flag) in cases {
        let out = Command::new(bin).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bin} {args:?}: {stderr}");
        assert!(stderr.contains(flag), "{bin} {args:?}: {stderr}");
    }
    for bin in [DUMP, NEW_POSTS, TRANSFERS, VOTE_STATS] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--ring <NAME_OR_PATH>"),
            "{bin}"
        );
    }
}

#[test]
fn new_posts_with_a_saved_cursor_stopped_while_waiting_for_the_ring_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring").to_str().unwrap().to_string();
    let cursor = dir.path().join("new-posts.cursor");
    consumer_sdk::CursorFile::new(&cursor)
        .save(&consumer_sdk::Cursor {
            block: 48_404_510,
            index_in_block: 3,
            trx_index: 1,
            op_index: 0,
            block_id: None,
        })
        .unwrap();
    let bot = Bot::start(
        NEW_POSTS,
        &["--ring", &ring, "--cursor", cursor.to_str().unwrap()],
    );
    bot.wait_stderr("no ring yet");
    bot.signal(libc::SIGTERM);
    let (status, lines, stderr) = bot.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(lines.is_empty(), "{lines:?}");
}
