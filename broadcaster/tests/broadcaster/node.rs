//! Decoding the real data, replaying it, and following fake nodes with faults.
//!
//! Every test that runs the broadcaster does so on a thread under a watchdog, with tiny timeouts
//! and backoffs, and finishes on its own (stop block, or an explicit shutdown).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use broadcaster::config::{Mode, Pace, StartBlock, Tuning};
use broadcaster::{
    Config, DecodedBlock, MemorySink, RunError, RunSummary, Shutdown, StopReason, decode_block,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use test_support::fake_node::{
    Chain, FakeNode, FakeOptions, Fault, HeadSchedule, Rule, assets_to_nai,
};

// ---------------------------------------------------------------- helpers

pub(crate) fn data_dir() -> PathBuf {
    std::env::var_os("STEEM_RING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"))
}

fn demo_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/demo-blocks.jsonl")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The exact text of the `result` member of a JSON-RPC response.
fn result_text(response: &str) -> &str {
    let key = response.find("\"result\":").expect("a result") + "\"result\":".len();
    let rest = response[key..].trim_start();
    let start = response.len() - rest.len();
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    values.next().expect("a value").expect("valid JSON");
    &response[start..start + values.byte_offset()]
}

/// Every real block in the data set: (label, block object text as recorded).
fn real_blocks() -> Vec<(String, String)> {
    let data = data_dir();
    let mut out = Vec::new();
    let steem_dir = data.join("steem/condenser_api.get_block");
    let mut steem: Vec<PathBuf> = std::fs::read_dir(&steem_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", steem_dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    steem.sort();
    for path in steem {
        out.push((
            path.display().to_string(),
            result_text(&read(&path)).to_owned(),
        ));
    }
    for rel in [
        "hive/condenser_api.get_block/1092.result.json",
        "ops/steem-python/block.json",
    ] {
        out.push((rel.to_owned(), read(&data.join(rel))));
    }
    let range = data.join("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl");
    for (i, line) in read(&range).lines().enumerate() {
        out.push((format!("{}:{}", range.display(), i + 1), line.to_owned()));
    }
    out
}

/// (topic, trx index, op index, body) of every op of a block, parsed independently with serde.
fn expected_ops(block: &Value) -> Vec<(String, u32, u32, Value)> {
    let mut out = Vec::new();
    for (i, trx) in block["transactions"].as_array().unwrap().iter().enumerate() {
        for (j, op) in trx["operations"].as_array().unwrap().iter().enumerate() {
            let (kind, body) = match op {
                Value::Array(pair) => (pair[0].as_str().unwrap().to_owned(), pair[1].clone()),
                _ => (op["type"].as_str().unwrap().to_owned(), op["value"].clone()),
            };
            let topic = kind.strip_suffix("_operation").unwrap_or(&kind).to_owned();
            out.push((topic, i as u32, j as u32, body));
        }
    }
    out
}

fn assert_matches_source(decoded: &DecodedBlock, source: &Value, label: &str) {
    let expected = expected_ops(source);
    assert_eq!(decoded.ops.len(), expected.len(), "{label}: op count");
    for (op, (topic, trx, index, body)) in decoded.ops.iter().zip(&expected) {
        assert_eq!(&op.topic, topic, "{label}");
        assert_eq!((op.trx_index, op.op_index), (*trx, *index), "{label}");
        assert!(!op.virtual_op);
        let parsed: Value = serde_json::from_slice(&op.body).unwrap();
        assert_eq!(&parsed, body, "{label}: body of op {trx}/{index}");
    }
}

pub(crate) fn fast_tuning() -> Tuning {
    Tuning {
        connect_timeout: Duration::from_millis(300),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(100),
        max_in_flight: 4,
        range_chunk: 10,
        tip_poll_interval: Duration::from_millis(20),
        props_poll_interval: Duration::from_millis(20),
        stall_timeout: Duration::from_millis(100),
        max_head_age: None,
        heartbeat_interval: Duration::from_millis(20),
        progress_interval: Duration::from_millis(500),
        all_down_log_interval: Duration::from_millis(500),
        replay_interval: Duration::from_millis(10),
        ..Tuning::default()
    }
}

pub(crate) fn node_config(urls: Vec<String>, mode: Mode, start: u64, stop: u64) -> Config {
    let mut config = Config::for_nodes(urls);
    config.mode = mode;
    config.start_block = Some(StartBlock::Number(start));
    config.stop_block = Some(stop);
    config.request_timeout = Duration::from_millis(300);
    config.tuning = fast_tuning();
    config
}

/// Runs the broadcaster on a thread; panics if it has not returned within `limit`.
pub(crate) fn run_bounded(
    config: Config,
    sink: MemorySink,
    limit: Duration,
) -> (Result<RunSummary, RunError>, MemorySink) {
    let shutdown = Shutdown::new();
    run_bounded_with(config, sink, &shutdown, limit, |_| {})
}

pub(crate) fn run_bounded_with(
    config: Config,
    mut sink: MemorySink,
    shutdown: &Shutdown,
    limit: Duration,
    during: impl FnOnce(&broadcaster::sink::MemorySinkHandle),
) -> (Result<RunSummary, RunError>, MemorySink) {
    let (tx, rx) = mpsc::channel();
    let handle = sink.handle();
    let stop = shutdown.clone();
    std::thread::spawn(move || {
        let result = broadcaster::run(&config, &mut sink, &stop);
        let _ = tx.send((result, sink));
    });
    during(&handle);
    match rx.recv_timeout(limit) {
        Ok(done) => done,
        Err(_) => {
            shutdown.trigger();
            panic!("the broadcaster did not finish within {limit:?}");
        }
    }
}

pub(crate) fn recorded_chain() -> Arc<Chain> {
    Arc::new(Chain::recorded(&data_dir()).expect("recorded data"))
}

/// The blocks `first..=last` as the chain stores them (appbase encoding), decoded.
pub(crate) fn reference(chain: &Chain, first: u64, last: u64) -> Vec<DecodedBlock> {
    (first..=last)
        .map(|n| decode_block(chain.block(n).expect("stored").appbase.as_bytes()).unwrap())
        .collect()
}

/// A port on 127.0.0.1 with nothing listening.
pub(crate) fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

pub(crate) const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- decoding

#[test]
fn real_blocks_decode_like_an_independent_parse() {
    let blocks = real_blocks();
    assert_eq!(blocks.len(), 9 + 2 + 500);
    let mut total_ops = 0;
    for (label, text) in &blocks {
        let decoded = decode_block(text.as_bytes()).unwrap_or_else(|e| panic!("{label}: {e}"));
        let source: Value = serde_json::from_str(text).unwrap();
        assert_matches_source(&decoded, &source, label);
        total_ops += decoded.ops.len();
        let ids = source["transaction_ids"].as_array();
        for op in &decoded.ops {
            let expected = match ids {
                Some(ids) => ids[op.trx_index as usize].as_str().unwrap().to_owned(),
                None => source["transactions"][op.trx_index as usize]["transaction_id"]
                    .as_str()
                    .map_or_else(|| "0".repeat(40), str::to_owned),
            };
            assert_eq!(const_hex::encode(op.trx_id), expected, "{label}");
            // Compact input: the body is a verbatim slice of what the node sent.
            if !text.contains('\n') {
                assert!(
                    text.contains(std::str::from_utf8(&op.body).unwrap()),
                    "{label}: body not verbatim"
                );
            }
        }
        let number = source["block_id"]
            .as_str()
            .map(|id| u64::from_str_radix(&id[..8], 16).unwrap())
            .unwrap_or_else(|| {
                u64::from_str_radix(&source["previous"].as_str().unwrap()[..8], 16).unwrap() + 1
            });
        assert_eq!(decoded.number, number, "{label}");
    }
    // 66 Steem ops in 9 blocks, 4 in block 1092, 4 in the steem-python block, 38 in the 500 Hive blocks.
    assert_eq!(total_ops, 66 + 4 + 4 + 38);
}

#[test]
fn real_ops_in_block_decode_in_both_forms() {
    let data = data_dir();
    let mut files = vec![
        data.join("steem/condenser_api.get_ops_in_block/25926363.result.json"),
        data.join("steem/account_history_api.get_ops_in_block/get_ops_in_block.json.pat"),
    ];
    for dir in [
        "hive/condenser_api.get_ops_in_block",
        "hive/account_history_api.get_ops_in_block",
    ] {
        let dir = data.join(dir);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".pat.json") {
                files.push(path);
            }
        }
    }
    let mut virtual_count = 0;
    for path in files {
        let text = read(&path);
        let text = if text.contains("\"jsonrpc\"") {
            result_text(&text).to_owned()
        } else {
            text
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        let entries = value
            .get("ops")
            .unwrap_or(&value)
            .as_array()
            .unwrap()
            .clone();
        let block = entries.first().map_or(1, |e| e["block"].as_u64().unwrap());
        let ops = broadcaster::decode_ops_in_block(text.as_bytes(), block)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(ops.len(), entries.len(), "{}", path.display());
        for (op, entry) in ops.iter().zip(&entries) {
            let (kind, body) = match &entry["op"] {
                Value::Array(pair) => (pair[0].as_str().unwrap().to_owned(), pair[1].clone()),
                other => (
                    other["type"].as_str().unwrap().to_owned(),
                    other["value"].clone(),
                ),
            };
            assert_eq!(op.topic, kind.strip_suffix("_operation").unwrap_or(&kind));
            assert_eq!(serde_json::from_slice::<Value>(&op.body).unwrap(), body);
            let flagged = match &entry["virtual_op"] {
                Value::Bool(b) => *b,
                n => n.as_u64().unwrap() != 0,
            };
            assert_eq!(op.virtual_op, flagged);
            assert_eq!(
                u64::from(op.trx_index),
                entry["trx_in_block"].as_u64().unwrap()
            );
            virtual_count += usize::from(op.virtual_op);
        }
    }
    assert!(virtual_count > 20, "{virtual_count}");
}

// Failures are not persisted into the tree (a failing seed worth keeping becomes an explicit
// test). Panics are caught quietly and fail the case with their report, so a failing run prints
// the minimal failing input once instead of one panic report per case tried while shrinking;
// data that cannot be loaded fails every case the same way, without a panic.
proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn truncated_real_blocks_never_panic(pick in 0usize..1024, cut in 0usize..20_000) {
        let blocks = real_blocks_cached().map_err(TestCaseError::fail)?;
        let text = blocks[pick % blocks.len()].1.as_bytes();
        let cut = cut % text.len().max(1);
        let decoded = test_support::panics::catch(|| decode_block(&text[..cut]))
            .map_err(TestCaseError::fail)?;
        prop_assert!(decoded.is_err());
    }

    #[test]
    fn corrupted_real_blocks_never_panic(pick in 0usize..1024, at in 0usize..20_000, byte in any::<u8>()) {
        let blocks = real_blocks_cached().map_err(TestCaseError::fail)?;
        let mut text = blocks[pick % blocks.len()].1.as_bytes().to_vec();
        let at = at % text.len();
        text[at] = byte;
        let _ = test_support::panics::catch(|| decode_block(&text)).map_err(TestCaseError::fail)?;
    }
}

/// The real blocks, loaded once; a load failure (missing data) is kept as its report.
fn real_blocks_cached() -> Result<&'static [(String, String)], String> {
    static BLOCKS: std::sync::OnceLock<Result<Vec<(String, String)>, String>> =
        std::sync::OnceLock::new();
    BLOCKS
        .get_or_init(|| test_support::panics::catch(real_blocks))
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

// ---------------------------------------------------------------- replay

#[test]
fn replaying_each_data_file_publishes_its_ops() {
    let dir = tempfile::tempdir().unwrap();
    let mut by_source: Vec<(String, Vec<String>)> = Vec::new();
    for (label, text) in real_blocks() {
        let source = label.split(':').next().unwrap().to_owned();
        let line = String::from_utf8(text.bytes().filter(|b| *b != b'\n').collect()).unwrap();
        match by_source.last_mut() {
            Some((s, lines)) if *s == source => lines.push(line),
            _ => by_source.push((source, vec![line])),
        }
    }
    for (i, (source, lines)) in by_source.iter().enumerate() {
        let path = dir.path().join(format!("{i}.jsonl"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let mut config = Config::for_replay(&path, Pace::Max);
        config.tuning = fast_tuning();
        let last = decode_block(lines.last().unwrap().as_bytes())
            .unwrap()
            .number;
        config.stop_block = Some(last);
        let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
        assert_eq!(result.unwrap().reason, StopReason::StopBlock);
        let published = sink.blocks();
        assert_eq!(published.len(), lines.len(), "{source}");
        for (block, line) in published.iter().zip(lines) {
            assert_matches_source(block, &serde_json::from_str(line).unwrap(), source);
        }
    }
}

#[test]
fn a_malformed_replay_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let good: Vec<String> = read(&demo_file())
        .lines()
        .take(3)
        .map(str::to_owned)
        .collect();
    std::fs::write(
        &path,
        format!(
            "{}\n{}\n{{\"previous\": 12}}\n{}\n",
            good[0], good[1], good[2]
        ),
    )
    .unwrap();
    let mut config = Config::for_replay(&path, Pace::Max);
    config.tuning = fast_tuning();
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    let message = result.unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{}:3: block.previous: expected a string, found an integer",
            path.display()
        )
    );
    assert_eq!(
        sink.blocks().len(),
        2,
        "the good lines before it were published"
    );
}

#[test]
fn the_demo_file_replays_cleanly_and_idles_at_its_end() {
    let lines = read(&demo_file()).lines().count();
    let mut config = Config::for_replay(demo_file(), Pace::Max);
    config.tuning = fast_tuning();
    let shutdown = Shutdown::new();
    let (result, sink) = run_bounded_with(config, MemorySink::new(), &shutdown, LIMIT, |handle| {
        assert!(
            handle.wait_until(LIMIT, |s| s.published == lines as u64),
            "all blocks published"
        );
        let beats = handle.with(|s| s.heartbeats);
        assert!(
            handle.wait_until(LIMIT, |s| s.heartbeats >= beats + 3),
            "heartbeats at the end of the file"
        );
        shutdown.trigger();
    });
    let summary = result.unwrap();
    assert_eq!(summary.reason, StopReason::Shutdown);
    assert_eq!(summary.blocks, lines as u64);
    let blocks = sink.blocks();
    assert!(blocks.windows(2).all(|w| w[0].number < w[1].number));
    assert_eq!(blocks.first().unwrap().number, 1092);
    assert_eq!(blocks.last().unwrap().number, 70_548_020);
    assert_eq!(
        summary.ops,
        blocks.iter().map(|b| b.ops.len() as u64).sum::<u64>()
    );
    // Block 1092 (4 pow), six 2016 appbase blocks with one op each, block 4,000,001 (4), the 26
    // Steem blocks of 2020-2022 (150) and the Hive block of 2022 (4).
    assert_eq!(summary.ops, 4 + 6 + 4 + 150 + 4);
    assert_eq!(
        blocks.iter().filter(|b| b.ops.is_empty()).count(),
        11,
        "ten consecutive empty 2016 blocks and one empty Steem block of 2020"
    );
}

#[test]
fn a_ring_holding_blocks_resumes_after_its_last_one() {
    let mut config = Config::for_replay(demo_file(), Pace::Max);
    config.tuning = fast_tuning();
    config.start_block = Some(StartBlock::Number(1092));
    config.stop_block = Some(1_000_363);
    let (result, sink) = run_bounded(config, MemorySink::resuming_after(1_000_005), LIMIT);
    let summary = result.unwrap();
    let numbers: Vec<u64> = sink.blocks().iter().map(|b| b.number).collect();
    // The blocks of the (sparse) demo file after 1,000,005, up to the stop block.
    assert_eq!(
        numbers,
        [
            1_000_006, 1_000_007, 1_000_008, 1_000_009, 1_000_012, 1_000_063, 1_000_170, 1_000_254,
            1_000_317, 1_000_363
        ]
    );
    assert_eq!(summary.last_block, Some(1_000_363));
}

// ---------------------------------------------------------------- nodes

#[test]
fn faults_on_a_quarter_of_requests_do_not_change_the_stream() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_499);

    let clean = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(last)).unwrap();
    let (result, sink) = run_bounded(
        node_config(vec![clean.url()], Mode::Irreversible, first, last),
        MemorySink::new(),
        LIMIT,
    );
    assert_eq!(result.unwrap().reason, StopReason::StopBlock);
    let fault_free = sink.blocks();
    assert_eq!(fault_free, reference(&chain, first, last));

    let flaky = |seed| {
        let mut options = FakeOptions::fixed(last);
        options.fault_rate = 0.25;
        options.seed = seed;
        options.hang_limit = Duration::from_secs(2);
        FakeNode::start(Arc::clone(&chain), options).unwrap()
    };
    let (a, b) = (flaky(7), flaky(11));
    let urls = vec![a.url(), dead_url(), b.url()];
    let (result, sink) = run_bounded(
        node_config(urls, Mode::Irreversible, first, last),
        MemorySink::new(),
        LIMIT,
    );
    assert_eq!(result.unwrap().last_block, Some(last));
    assert_eq!(
        sink.blocks(),
        fault_free,
        "op for op equal to the fault-free stream"
    );

    let served: Vec<_> = a.requests().into_iter().chain(b.requests()).collect();
    let faulty = served.iter().filter(|r| r.fault.is_some()).count();
    assert!(
        faulty >= 5,
        "{faulty} faults injected in {} requests",
        served.len()
    );
    let kinds: std::collections::HashSet<_> = served.iter().filter_map(|r| r.fault).collect();
    assert!(kinds.len() >= 4, "fault kinds seen: {kinds:?}");
}

#[test]
fn a_missing_block_method_falls_back_to_the_other() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_030);
    let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    for method in ["block_api.get_block_range", "block_api.get_block"] {
        node.add_rule(Rule {
            method: Some(method.into()),
            block: None,
            fault: Fault::MethodNotFound,
            times: None,
        });
    }
    let (result, sink) = run_bounded(
        node_config(vec![node.url()], Mode::Irreversible, first, last),
        MemorySink::new(),
        LIMIT,
    );
    result.unwrap();
    let count = |m: &str| node.requests().iter().filter(|r| r.method == m).count();
    // Only the requests already in flight when the first refusal came back are refused.
    let in_flight = fast_tuning().max_in_flight;
    assert!((1..=in_flight).contains(&count("block_api.get_block_range")));
    assert!((1..=in_flight).contains(&count("block_api.get_block")));
    // Every block once, plus any retry after a timeout on a loaded machine.
    assert!(count("condenser_api.get_block") >= (last - first + 1) as usize);

    // Same blocks, now in legacy encoding: same ops, bodies equal once assets are normalised.
    let expected = reference(&chain, first, last);
    let published = sink.blocks();
    assert_eq!(published.len(), expected.len());
    for (got, want) in published.iter().zip(&expected) {
        assert_eq!(
            (got.number, &got.id, got.timestamp),
            (want.number, &want.id, want.timestamp)
        );
        assert_eq!(got.ops.len(), want.ops.len());
        for (g, w) in got.ops.iter().zip(&want.ops) {
            assert_eq!(
                (&g.topic, g.trx_id, g.trx_index, g.op_index),
                (&w.topic, w.trx_id, w.trx_index, w.op_index)
            );
            let g_body: Value = serde_json::from_slice(&g.body).unwrap();
            let w_body: Value = serde_json::from_slice(&w.body).unwrap();
            assert_eq!(assets_to_nai(&g_body), w_body);
        }
    }
}

#[test]
fn a_node_stuck_in_the_past_is_abandoned() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_499);
    let stuck = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(last)).unwrap();
    stuck.add_rule(Rule {
        method: Some("condenser_api.get_dynamic_global_properties".into()),
        block: None,
        fault: Fault::StaleHead,
        times: None,
    });
    let good = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(last)).unwrap();
    let (result, sink) = run_bounded(
        node_config(
            vec![stuck.url(), good.url()],
            Mode::Irreversible,
            first,
            last,
        ),
        MemorySink::new(),
        LIMIT,
    );
    assert_eq!(result.unwrap().last_block, Some(last));
    assert_eq!(sink.blocks(), reference(&chain, first, last));
    assert!(
        good.requests()
            .iter()
            .any(|r| r.method.ends_with("get_dynamic_global_properties"))
    );
}

#[test]
fn head_mode_does_not_publish_a_forked_block() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_060);
    let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    node.add_rule(Rule {
        method: None,
        block: Some(1_000_033),
        fault: Fault::Fork,
        times: Some(1),
    });
    let (result, sink) = run_bounded(
        node_config(vec![node.url()], Mode::Head, first, last),
        MemorySink::new(),
        LIMIT,
    );
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, last));
    let requests = node.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.fault == Some(Fault::Fork))
            .count(),
        1
    );
    let covering = requests
        .iter()
        .filter(|r| {
            r.block
                .is_some_and(|b| (b..b + r.count.unwrap_or(1)).contains(&1_000_033))
        })
        .count();
    assert!(covering >= 2, "the forked answer, then the refetch");
}

#[test]
fn after_a_restart_the_first_block_must_link_to_the_last_one_published() {
    let chain = recorded_chain();
    let (first, last) = (1_000_010, 1_000_030);
    let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    // The sink already holds block 1_000_009, but under another id than the chain's: the
    // broadcaster was following a fork when it stopped.
    let mut sink = MemorySink::new();
    let mut orphan = reference(&chain, first - 1, first - 1).remove(0);
    orphan.id = format!("{:08x}{}", first - 1, "ab".repeat(16));
    broadcaster::Sink::publish(&mut sink, &orphan).unwrap();
    let (result, sink) = run_bounded(
        node_config(vec![node.url()], Mode::Head, first, last),
        sink,
        LIMIT,
    );
    result.unwrap();
    // The first block was not taken at first sight: it was fetched again until it was
    // confirmed (served again with the last irreversible block past it); then the block the
    // ring ended with was declared orphaned, and the node's branch published from there.
    let fetches = node
        .requests()
        .iter()
        .filter(|r| {
            r.block
                .is_some_and(|b| (b..b + r.count.unwrap_or(1)).contains(&first))
        })
        .count();
    assert!(fetches >= 2, "block {first} fetched {fetches} times");
    let published = sink.blocks();
    assert_eq!(published[1..], reference(&chain, first - 1, last)[..]);
    assert_eq!(
        sink.handle().with(|s| s.forks.clone()),
        [(first - 1, vec![orphan.id])]
    );
}

#[test]
fn head_mode_follows_an_advancing_head() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_040);
    let schedule = HeadSchedule::advancing(first, Duration::from_millis(15));
    let nodes: Vec<FakeNode> = [3, 5]
        .into_iter()
        .map(|seed| {
            let mut options = FakeOptions::fixed(0);
            options.head = schedule;
            options.irreversible_lag = 5;
            options.fault_rate = 0.2;
            options.seed = seed;
            options.hang_limit = Duration::from_secs(2);
            FakeNode::start(Arc::clone(&chain), options).unwrap()
        })
        .collect();
    let urls = nodes.iter().map(FakeNode::url).collect();
    let (result, sink) = run_bounded(
        node_config(urls, Mode::Head, first, last),
        MemorySink::new(),
        LIMIT,
    );
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, last));
    let polls: usize = nodes
        .iter()
        .map(|n| {
            n.requests()
                .iter()
                .filter(|r| r.method.ends_with("get_dynamic_global_properties"))
                .count()
        })
        .sum();
    assert!(polls >= 1);
}

#[test]
fn irreversible_mode_waits_for_the_last_irreversible_block() {
    let chain = recorded_chain();
    let mut options = FakeOptions::fixed(0);
    options.head = HeadSchedule::advancing(1_000_020, Duration::from_millis(10));
    options.irreversible_lag = 15;
    let node = FakeNode::start(Arc::clone(&chain), options).unwrap();
    let (result, sink) = run_bounded(
        node_config(vec![node.url()], Mode::Irreversible, 1_000_000, 1_000_030),
        MemorySink::new(),
        LIMIT,
    );
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, 1_000_000, 1_000_030));
}

#[test]
fn virtual_ops_follow_the_block_ops_in_their_encoding() {
    let chain = recorded_chain();
    // The recorded `get_ops_in_block` answer for block 1,000,000 has one virtual op.
    let legacy: Value =
        serde_json::from_str(r#"{"producer":"abit","vesting_shares":"14403.626449 VESTS"}"#)
            .unwrap();
    let nai = assets_to_nai(&legacy);
    assert_ne!(legacy, nai);
    for (mode, block_api, expected_body) in [
        (Mode::Irreversible, true, &nai),
        (Mode::Head, true, &nai),
        (Mode::Irreversible, false, &legacy),
        (Mode::Head, false, &legacy),
    ] {
        let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
        if !block_api {
            // A node without block_api serves blocks, so also virtual ops, in the legacy form.
            for method in ["block_api.get_block_range", "block_api.get_block"] {
                node.add_rule(Rule {
                    method: Some(method.into()),
                    block: None,
                    fault: Fault::MethodNotFound,
                    times: None,
                });
            }
        }
        let mut config = node_config(vec![node.url()], mode, 1_000_000, 1_000_002);
        config.virtual_ops = true;
        let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
        result.unwrap();
        let label = format!("{mode:?}, block_api {block_api}");
        let blocks = sink.blocks();
        let expected = reference(&chain, 1_000_000, 1_000_002);
        let first = &blocks[0];
        assert_eq!(first.ops.len(), expected[0].ops.len() + 1, "{label}");
        let vop = first.ops.last().unwrap();
        assert!(vop.virtual_op, "{label}");
        assert_eq!(vop.topic, "producer_reward", "{label}");
        let body: Value = serde_json::from_slice(&vop.body).unwrap();
        assert_eq!(&body, expected_body, "{label}");
        if block_api {
            assert_eq!(blocks[1..], expected[1..], "{label}");
        }
        let asked: Vec<String> = node
            .requests()
            .into_iter()
            .filter(|r| r.method.ends_with("get_ops_in_block"))
            .map(|r| r.method)
            .collect();
        let api = if block_api {
            "account_history_api"
        } else {
            "condenser_api"
        };
        assert!(
            asked.iter().all(|m| m.starts_with(api)),
            "{label}: {asked:?}"
        );
    }
}

#[test]
fn recorded_blocks_replay_to_the_same_stream() {
    let chain = recorded_chain();
    let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let mut config = node_config(vec![node.url()], Mode::Irreversible, 1_000_000, 1_000_050);
    config.record = Some(record.clone());
    let (result, live) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(read(&record).lines().count(), 51);

    let mut replay = Config::for_replay(&record, Pace::Max);
    replay.tuning = fast_tuning();
    replay.stop_block = Some(1_000_050);
    let (result, replayed) = run_bounded(replay, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(replayed.blocks(), live.blocks());
}

#[test]
fn shutdown_while_every_node_is_down_is_prompt() {
    let urls = vec![dead_url(), dead_url()];
    let config = node_config(urls, Mode::Irreversible, 1, 10);
    let shutdown = Shutdown::new();
    let (result, sink) = run_bounded_with(config, MemorySink::new(), &shutdown, LIMIT, |handle| {
        let beats = handle.with(|s| s.heartbeats);
        assert!(
            handle.wait_until(LIMIT, |s| s.heartbeats >= beats + 3),
            "heartbeats while nodes are down"
        );
        shutdown.trigger();
    });
    assert_eq!(result.unwrap().reason, StopReason::Shutdown);
    assert!(sink.blocks().is_empty());
}

/// The recorded Hive `get_ops_in_block` answer `name` (its `ops` list) as entries of `block`.
fn recorded_entries(name: &str, block: u64) -> Vec<Value> {
    let path = data_dir().join(format!(
        "hive/account_history_api.get_ops_in_block/{name}.pat.json"
    ));
    let answer: Value = serde_json::from_str(&read(&path)).unwrap();
    let mut entries = answer["ops"].as_array().unwrap().clone();
    for entry in &mut entries {
        entry["block"] = serde_json::json!(block);
    }
    entries
}

/// The recorded chain with virtual operations in each of the blocks 1,000,001..=1,000,030: the
/// recorded answers for `only_virtual: true` (two virtual ops) and, every fifth block, for
/// `only_virtual: false` (a vote, one of the block's own ops, then the same two virtual ops),
/// as a node that ignores `only_virtual` answers. Returns the chain and, per block, the virtual
/// op types expected after the block's own ops.
fn chain_with_virtual_ops() -> (Arc<Chain>, Vec<(u64, Vec<String>)>) {
    let mut chain = Chain::recorded(&data_dir()).unwrap();
    let mut expected = vec![(1_000_000, vec!["producer_reward".to_owned()])];
    for n in 1_000_001..=1_000_030u64 {
        let name = if n % 5 == 0 {
            "only_virtual_false"
        } else {
            "only_virtual_true"
        };
        chain.insert_ops(n, Value::Array(recorded_entries(name, n)));
        let topics = ["effective_comment_vote", "producer_reward"];
        expected.push((n, topics.iter().map(|t| t.to_string()).collect()));
    }
    (Arc::new(chain), expected)
}

#[test]
fn virtual_ops_of_block_ranges_come_from_enum_virtual_ops_in_pages_or_else_per_block() {
    let (chain, expected) = chain_with_virtual_ops();
    let (first, last) = (1_000_000, 1_000_049);
    for mode in [Mode::Irreversible, Mode::Head] {
        let mut streams = Vec::new();
        for enum_available in [true, false] {
            let label = format!("{mode:?}, enum_virtual_ops available: {enum_available}");
            let mut options = FakeOptions::fixed(1_000_499);
            options.virtual_ops_page = 7;
            let node = FakeNode::start(Arc::clone(&chain), options).unwrap();
            if !enum_available {
                node.add_rule(Rule {
                    method: Some("account_history_api.enum_virtual_ops".into()),
                    block: None,
                    fault: Fault::MethodNotFound,
                    times: None,
                });
            }
            let mut config = node_config(vec![node.url()], mode, first, last);
            config.virtual_ops = true;
            let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
            result.unwrap();
            let blocks = sink.blocks();
            let own = reference(&chain, first, last);
            assert_eq!(blocks.len(), own.len(), "{label}");
            for (block, own) in blocks.iter().zip(&own) {
                let n = block.number;
                assert_eq!(
                    block.ops[..own.ops.len()],
                    own.ops[..],
                    "{label}: block {n}"
                );
                let virtual_ops = &block.ops[own.ops.len()..];
                let topics: Vec<&str> = virtual_ops.iter().map(|o| o.topic.as_str()).collect();
                let want: Vec<&str> = expected
                    .iter()
                    .find(|(b, _)| *b == n)
                    .map(|(_, t)| t.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                assert_eq!(topics, want, "{label}: block {n}");
                assert!(virtual_ops.iter().all(|o| o.virtual_op), "{label}: {n}");
                // The appbase encoding, like the block's own ops.
                for op in virtual_ops {
                    let body: Value = serde_json::from_slice(&op.body).unwrap();
                    let shares = &body["vesting_shares"];
                    assert!(
                        shares.is_null() || shares["nai"].is_string(),
                        "{label}: {body}"
                    );
                }
            }
            let requests = node.requests();
            let count = |m: &str| requests.iter().filter(|r| r.method == m).count();
            let enum_calls = count("account_history_api.enum_virtual_ops");
            let per_block = count("account_history_api.get_ops_in_block");
            if enum_available {
                // 61 virtual ops in chunks of 10 blocks, 7 a page: more than one page per
                // chunk, and no call per block.
                assert!(
                    enum_calls > 5,
                    "{label}: {enum_calls} enum_virtual_ops calls"
                );
                // Head mode asks for its first block alone (and that block's virtual ops).
                assert!(
                    per_block <= 1,
                    "{label}: {per_block} get_ops_in_block calls"
                );
            } else {
                assert_eq!(per_block, (last - first + 1) as usize, "{label}");
            }
            streams.push(blocks);
        }
        assert_eq!(
            streams[0], streams[1],
            "{mode:?}: ranges and single blocks differ"
        );
    }
}

#[test]
fn a_steem_node_is_asked_for_virtual_ops_per_block() {
    let (chain, _) = chain_with_virtual_ops();
    let mut options = FakeOptions::fixed(1_000_499);
    options.chain_id = consumer_sdk::ChainId::STEEM;
    let node = FakeNode::start(Arc::clone(&chain), options).unwrap();
    let mut config = node_config(vec![node.url()], Mode::Irreversible, 1_000_000, 1_000_019);
    config.virtual_ops = true;
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    let virtual_ops: usize = sink
        .blocks()
        .iter()
        .map(|b| b.ops.iter().filter(|o| o.virtual_op).count())
        .sum();
    assert_eq!(virtual_ops, 1 + 19 * 2);
    let requests = node.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.method != "account_history_api.enum_virtual_ops")
    );
    let per_block = requests
        .iter()
        .filter(|r| r.method.ends_with("get_ops_in_block"))
        .count();
    assert_eq!(per_block, 20);
}

#[test]
fn catching_up_asks_for_what_fits_the_fetch_buffer_even_one_block_bigger_than_it() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_059);
    let mut sizes = Vec::new();
    for fetch_buffer in [1000, 16 << 20] {
        let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
        let mut config = node_config(vec![node.url()], Mode::Irreversible, first, last);
        // Each of the 4 requests in flight gets 250 bytes: less than any block.
        config.tuning.fetch_buffer = fetch_buffer;
        let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
        result.unwrap();
        assert_eq!(
            sink.blocks(),
            reference(&chain, first, last),
            "{fetch_buffer}"
        );
        let biggest = node
            .requests()
            .iter()
            .filter(|r| r.method == "block_api.get_block_range")
            .filter_map(|r| r.count)
            .max()
            .unwrap_or(1);
        sizes.push(biggest);
    }
    // A budget smaller than a block: one block per request, and every block still comes.
    assert_eq!(sizes[0], 1, "{sizes:?}");
    // A roomy one: the configured chunk of 10.
    assert_eq!(sizes[1], 10, "{sizes:?}");
}
