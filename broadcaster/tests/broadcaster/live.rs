//! What following a live network adds: nodes of another chain, refusals that expire, rate
//! limits, stalls judged by progress. Every run is checked op for op against the fault-free
//! stream of the recorded chain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use broadcaster::config::Mode;
use broadcaster::sink::SinkError;
use broadcaster::{MemorySink, RunError, Shutdown, Sink, StopReason};
use consumer_sdk::{Chain, ChainId};
use test_support::fake_node::{FakeNode, FakeOptions, Fault, HeadSchedule, Rule, branch_id};

use crate::node::{
    LIMIT, dead_url, node_config, recorded_chain, reference, run_bounded, run_bounded_with,
};

fn is_block_method(method: &str) -> bool {
    method.ends_with("get_block") || method.ends_with("get_block_range")
}

/// A node of Steem serving blocks whose ids are not the recorded chain's.
fn foreign_options(head: u64) -> FakeOptions {
    let mut options = FakeOptions::fixed(head);
    options.chain_id = ChainId::STEEM;
    options.foreign_ids = true;
    options
}

/// Polls `ready` every 10 ms until it holds, panicking after `limit`.
fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------- chain identity

#[test]
fn a_node_of_another_chain_listed_first_is_never_used() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_120);
    for mode in [Mode::Irreversible, Mode::Head] {
        let foreign = FakeNode::start(Arc::clone(&chain), foreign_options(1_000_499)).unwrap();
        let good = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
        let mut config = node_config(vec![foreign.url(), good.url()], mode, first, last);
        config.chain = Some(Chain::HIVE);
        let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
        assert_eq!(result.unwrap().reason, StopReason::StopBlock, "{mode:?}");
        assert_eq!(sink.blocks(), reference(&chain, first, last), "{mode:?}");
        assert_eq!(sink.chain().unwrap(), Some(Chain::HIVE));
        let asked = foreign.requests();
        assert!(
            asked.iter().any(|r| r.method.ends_with("get_version")),
            "{mode:?}: the foreign node's chain id was checked"
        );
        assert!(
            asked.iter().all(|r| r.method.ends_with("get_version")),
            "{mode:?}: nothing but its chain id was asked from the foreign node: {:?}",
            asked.iter().map(|r| &r.method).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_node_of_another_chain_listed_second_is_not_followed_when_the_first_dies() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_080);
    for mode in [Mode::Irreversible, Mode::Head] {
        let foreign = FakeNode::start(Arc::clone(&chain), foreign_options(1_000_499)).unwrap();
        let mut options = FakeOptions::fixed(0);
        options.head = HeadSchedule::advancing(first + 20, Duration::from_millis(20));
        let good = FakeNode::start(Arc::clone(&chain), options.clone()).unwrap();
        let port = good.addr().port();
        let mut config = node_config(vec![good.url(), foreign.url()], mode, first, last);
        config.chain = Some(Chain::HIVE);
        config.tuning.chain_check_interval = Duration::from_millis(200);
        let shutdown = Shutdown::new();
        let mut good = Some(good);
        let (result, sink) = run_bounded_with(config, MemorySink::new(), &shutdown, LIMIT, |h| {
            assert!(h.wait_until(LIMIT, |s| s.last_committed >= Some(first + 10)));
            drop(good.take());
            // Only the foreign node is left: it is asked for its chain id again and again,
            // but nothing it serves is published.
            wait_for("the foreign node's chain checks", LIMIT, || {
                foreign
                    .requests()
                    .iter()
                    .filter(|r| r.method.ends_with("get_version"))
                    .count()
                    >= 3
            });
            let stalled = h.with(|s| s.last_committed);
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(h.with(|s| s.last_committed), stalled, "{mode:?}");
            options.port = port;
            good = Some(FakeNode::start(Arc::clone(&chain), options.clone()).unwrap());
        });
        assert_eq!(result.unwrap().last_block, Some(last), "{mode:?}");
        assert_eq!(sink.blocks(), reference(&chain, first, last), "{mode:?}");
        assert!(
            foreign
                .requests()
                .iter()
                .all(|r| !is_block_method(&r.method)),
            "{mode:?}: no block asked from the foreign node"
        );
        drop(good);
    }
}

#[test]
fn without_a_chain_the_nodes_must_agree() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_010);
    let steem = FakeNode::start(Arc::clone(&chain), foreign_options(1_000_499)).unwrap();
    let hive = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();

    // Two chains and nothing to choose between them: a start-up error naming both.
    let config = node_config(
        vec![hive.url(), steem.url()],
        Mode::Irreversible,
        first,
        last,
    );
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    let err = result.unwrap_err();
    assert!(matches!(err, RunError::Chain(_)), "{err}");
    let text = err.to_string();
    for needle in [
        hive.url(),
        steem.url(),
        ChainId::HIVE.to_string(),
        ChainId::STEEM.to_string(),
        "--chain".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing from: {text}");
    }
    assert_eq!(sink.last_committed_block(), None);

    // Agreeing nodes (one of them down): their chain is recorded in the sink.
    let config = node_config(
        vec![dead_url(), hive.url()],
        Mode::Irreversible,
        first,
        last,
    );
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(sink.chain().unwrap(), Some(Chain::HIVE));
    assert_eq!(sink.blocks(), reference(&chain, first, last));

    // A ring of one chain: its chain decides, and the node of the other chain is excluded.
    let config = node_config(
        vec![steem.url(), hive.url()],
        Mode::Irreversible,
        last + 1,
        last + 20,
    );
    let (result, sink) = run_bounded(config, sink, LIMIT);
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, last + 20));

    // A broadcaster told to follow another chain than the ring's refuses to write it.
    let mut config = node_config(vec![steem.url()], Mode::Irreversible, last + 21, last + 30);
    config.chain = Some(Chain::STEEM);
    let (result, sink) = run_bounded(config, sink, LIMIT);
    match result {
        Err(RunError::Sink(SinkError::OtherChain { ring, asked })) => {
            assert_eq!((ring, asked), (Chain::HIVE, Chain::STEEM));
        }
        other => panic!("expected OtherChain, got {other:?}"),
    }
    assert_eq!(sink.last_committed_block(), Some(last + 20));
}

#[test]
fn the_binary_records_the_chain_in_the_ring_and_names_a_foreign_node() {
    let chain = recorded_chain();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("hive.ring");
    let foreign = FakeNode::start(Arc::clone(&chain), foreign_options(1_000_499)).unwrap();
    let good = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    let dead = dead_url();
    let log = dir.path().join("stderr.log");
    let run = |chain_arg: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_broadcaster"))
            .args([
                "--chain",
                chain_arg,
                "--node",
                &foreign.url(),
                "--node",
                &dead,
                "--node",
                &good.url(),
            ])
            .args(["--ring", ring.to_str().unwrap(), "--ring-size", "4MiB"])
            .args(["--start-block", "1000000", "--stop-block", "1000020"])
            .env("RUST_LOG", "warn")
            .env_remove("BROADCASTER_NODES")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Watchdog: a broadcaster that never finishes is killed and the test fails.
        let deadline = Instant::now() + LIMIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("the broadcaster did not finish within {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait().unwrap();
        (status, std::fs::read_to_string(&log).unwrap())
    };
    let (status, stderr) = run("hive");
    assert!(status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("ERROR") && l.contains(&foreign.url()))
        .unwrap_or_else(|| panic!("no ERROR line names the foreign node:\n{stderr}"));
    assert!(
        line.contains(&ChainId::STEEM.to_string()) && line.contains(&ChainId::HIVE.to_string()),
        "{line}"
    );
    assert_eq!(
        stderr.matches("excluded").count(),
        1,
        "the exclusion is logged once:\n{stderr}"
    );
    // A dead node among them: said once, not once per request or retry.
    let dead_lines = stderr.lines().filter(|l| l.contains(&dead)).count();
    assert_eq!(dead_lines, 1, "{stderr}");
    let sub = consumer_sdk::Subscriber::open(ring.to_str().unwrap())
        .unwrap()
        .start(consumer_sdk::Start::Earliest)
        .unwrap();
    assert_eq!(sub.chain(), Some(Chain::HIVE));
    assert_eq!(sub.committed_block(), Some(1_000_020));

    // The same ring with another chain: a clear error, nothing written.
    let (status, stderr) = run("steem");
    assert!(!status.success());
    assert!(
        stderr.contains("carries chain hive") && stderr.contains("not steem"),
        "{stderr}"
    );
    assert_eq!(sub.committed_block(), Some(1_000_020));
}

// ---------------------------------------------------------------- links and forks

#[test]
fn a_block_that_does_not_link_is_the_serving_nodes_fault_unless_two_nodes_agree() {
    let chain = recorded_chain();
    let (first, last) = (1_000_010, 1_000_060);
    for mode in [Mode::Irreversible, Mode::Head] {
        // A mirror reporting the right chain id but serving its own blocks, listed first, and
        // a good node. The last irreversible block stays below the blocks asked for, so only
        // a second node could confirm the mirror's branch.
        let mut mirror_options = FakeOptions::fixed(1_000_499);
        mirror_options.foreign_ids = true;
        mirror_options.irreversible_lag = if mode == Mode::Head { 600 } else { 0 };
        let mirror = FakeNode::start(Arc::clone(&chain), mirror_options).unwrap();
        let mut good_options = FakeOptions::fixed(1_000_499);
        good_options.irreversible_lag = if mode == Mode::Head { 600 } else { 0 };
        let good = FakeNode::start(Arc::clone(&chain), good_options).unwrap();
        let mut sink = MemorySink::new();
        let before = reference(&chain, first - 1, first - 1).remove(0);
        Sink::publish(&mut sink, &before).unwrap();
        let config = node_config(vec![mirror.url(), good.url()], mode, first, last);
        let (result, sink) = run_bounded(config, sink, LIMIT);
        assert_eq!(result.unwrap().last_block, Some(last), "{mode:?}");
        assert_eq!(
            sink.blocks(),
            reference(&chain, first - 1, last),
            "{mode:?}"
        );
        assert!(
            mirror.requests().iter().any(|r| is_block_method(&r.method)),
            "{mode:?}: the mirror was asked and refused"
        );
    }

    // Two nodes serving the other branch in head mode (the last irreversible block below it):
    // the published block was orphaned; a fork notice names it, and the branch both serve is
    // published from that block on.
    let mut options = FakeOptions::fixed(1_000_499);
    options.irreversible_lag = 600;
    let a = FakeNode::start(Arc::clone(&chain), options.clone()).unwrap();
    let b = FakeNode::start(Arc::clone(&chain), options).unwrap();
    let mut sink = MemorySink::new();
    let mut orphan = reference(&chain, first - 1, first - 1).remove(0);
    orphan.id = format!("{:08x}{}", first - 1, "ab".repeat(16));
    Sink::publish(&mut sink, &orphan).unwrap();
    let mut config = node_config(vec![a.url(), b.url()], Mode::Head, first, last);
    config.tuning.max_in_flight = 1;
    let (result, sink) = run_bounded(config, sink, LIMIT);
    result.unwrap();
    assert_eq!(sink.blocks()[1..], reference(&chain, first - 1, last)[..]);
    assert_eq!(
        sink.handle().with(|s| s.forks.clone()),
        [(first - 1, vec![orphan.id])]
    );
}

#[test]
fn head_mode_takes_one_nodes_branch_once_the_last_irreversible_block_is_past_it() {
    // A lone node whose chain does not link to the block published last: in head mode it is
    // not followed on its word alone, but once its last irreversible block has passed the
    // fork point and it serves the block again, its branch is the chain.
    let chain = recorded_chain();
    let (first, last) = (1_000_010, 1_000_030);
    let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    let mut sink = MemorySink::new();
    let mut orphan = reference(&chain, first - 1, first - 1).remove(0);
    orphan.id = format!("{:08x}{}", first - 1, "cd".repeat(16));
    Sink::publish(&mut sink, &orphan).unwrap();
    let mut config = node_config(vec![node.url()], Mode::Head, first, last);
    config.tuning.max_in_flight = 1;
    let (result, sink) = run_bounded(config, sink, LIMIT);
    assert_eq!(result.unwrap().last_block, Some(last));
    assert_eq!(sink.blocks()[1..], reference(&chain, first - 1, last)[..]);
    assert_eq!(
        sink.handle().with(|s| s.forks.clone()),
        [(first - 1, vec![orphan.id])]
    );
    // It was refused at least once before being taken.
    let asked_first = node
        .requests()
        .iter()
        .filter(|r| is_block_method(&r.method) && r.block == Some(first))
        .count();
    assert!(asked_first >= 2, "block {first} asked {asked_first} times");
}

/// Blocks `first..=last` of the branch [`FakeNode::take_branch`] serves from `from` on.
fn branch(
    chain: &test_support::fake_node::Chain,
    from: u64,
    first: u64,
    last: u64,
) -> Vec<broadcaster::block::DecodedBlock> {
    let mut blocks = reference(chain, first, last);
    for b in &mut blocks {
        if b.number >= from {
            b.id = branch_id(&b.id);
        }
        if b.number > from {
            b.previous = branch_id(&b.previous);
        }
    }
    blocks
}

#[test]
fn a_fork_that_lasts_is_published_as_a_notice_and_the_new_branch() {
    // Two nodes follow the chain at the head; after the broadcaster has published a few blocks
    // past block `fork`, both switch to a branch that forks off before it (the last
    // irreversible block far below). The broadcaster restarted in between: it finds the fork
    // point among the blocks the ring remembers.
    let chain = recorded_chain();
    let (first, fork, last) = (1_000_000, 1_000_018, 1_000_040);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let mut options = FakeOptions::fixed(fork + 2);
    options.irreversible_lag = 600;
    let a = FakeNode::start(Arc::clone(&chain), options.clone()).unwrap();
    options.head = HeadSchedule::Fixed(last);
    let mut config = node_config(vec![a.url()], Mode::Head, first, fork + 2);
    config.record = Some(record.clone());
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, fork + 2));
    let before_fork = sink.blocks();

    let nodes: Vec<FakeNode> = (0..2)
        .map(|_| FakeNode::start(Arc::clone(&chain), options.clone()).unwrap())
        .collect();
    for node in &nodes {
        node.take_branch(fork);
    }
    let urls = nodes.iter().map(FakeNode::url).collect();
    let mut config = node_config(urls, Mode::Head, first, last);
    config.tuning.max_in_flight = 1;
    config.record = Some(record.clone());
    let (result, sink) = run_bounded(config, sink, LIMIT);
    assert_eq!(result.unwrap().last_block, Some(last));
    let mut expected = reference(&chain, first, fork + 2);
    expected.extend(branch(&chain, fork, fork, last));
    assert_eq!(sink.blocks(), expected);
    let orphaned: Vec<String> = reference(&chain, fork, fork + 2)
        .into_iter()
        .map(|b| b.id)
        .collect();
    let forks = vec![(fork, orphaned)];
    assert_eq!(sink.handle().with(|s| s.forks.clone()), forks);

    // The recording replays to the same: from scratch, resuming a sink that holds the old
    // branch (the fork comes next), and one that holds the new branch's first blocks too
    // (what it holds is not replayed again).
    let replay = |into: MemorySink| {
        let mut config = broadcaster::Config::for_replay(&record, broadcaster::config::Pace::Max);
        config.tuning = crate::node::fast_tuning();
        config.stop_block = Some(last);
        let (result, sink) = run_bounded(config, into, LIMIT);
        result.unwrap();
        (sink.blocks(), sink.handle().with(|s| s.forks.clone()))
    };
    assert_eq!(replay(MemorySink::new()), (expected.clone(), forks.clone()));
    let mut old_branch = MemorySink::new();
    for b in &before_fork {
        Sink::publish(&mut old_branch, b).unwrap();
    }
    assert_eq!(replay(old_branch), (expected.clone(), forks.clone()));
    let mut partly = MemorySink::new();
    for b in &expected[..before_fork.len()] {
        Sink::publish(&mut partly, b).unwrap();
    }
    let orphaned = forks[0].1.clone();
    Sink::publish_fork(&mut partly, &expected[before_fork.len()], &orphaned).unwrap();
    Sink::publish(&mut partly, &expected[before_fork.len() + 1]).unwrap();
    assert_eq!(replay(partly), (expected, forks), "nothing replayed twice");
}

#[test]
fn a_fork_at_the_head_reaches_readers_of_the_ring_as_a_notice() {
    // The same through a real ring while the broadcaster runs: the nodes switch branches
    // under it, at the head, and a reader of the ring gets the old branch, the notice, then
    // the new branch, op for op.
    let chain = recorded_chain();
    let (first, fork, last) = (1_000_000, 1_000_012, 1_000_030);
    let mut options = FakeOptions::fixed(0);
    options.head = HeadSchedule::advancing(fork + 2, Duration::from_millis(100));
    options.irreversible_lag = 600;
    let nodes: Vec<FakeNode> = (0..2)
        .map(|_| FakeNode::start(Arc::clone(&chain), options.clone()).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fork.ring");
    let mut config = node_config(
        nodes.iter().map(FakeNode::url).collect(),
        Mode::Head,
        first,
        last,
    );
    config.tuning.block_interval = Duration::from_millis(100);
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let ring_path = path.clone();
    let run = std::thread::spawn(move || {
        let mut sink = broadcaster::RingSink::open_or_create(&ring_path, 1 << 24).unwrap();
        broadcaster::run(&config, &mut sink, &stop)
    });
    wait_for("the ring", LIMIT, || path.exists());
    let mut sub = consumer_sdk::Subscriber::open(path.to_str().unwrap())
        .unwrap()
        .start(consumer_sdk::Start::Earliest)
        .unwrap();
    // Once block `fork + 1` is in the ring, both nodes take the other branch from `fork`.
    let mut events = Vec::new();
    let mut switched = false;
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "no block {last} in the ring: {events:?}"
        );
        match sub.recv_timeout(Duration::from_millis(50)).unwrap() {
            Some(consumer_sdk::Event::Op(op)) => {
                events.push(format!(
                    "{} {} {}",
                    op.block(),
                    op.index_in_block(),
                    op.topic()
                ));
            }
            Some(consumer_sdk::Event::BlockEnd(end)) => {
                events.push(format!(
                    "end {} {}",
                    end.block,
                    const_hex::encode(end.block_id)
                ));
                if end.block == fork + 1 && !switched {
                    switched = true;
                    for node in &nodes {
                        node.take_branch(fork);
                    }
                }
                if end.block == last {
                    break;
                }
            }
            Some(consumer_sdk::Event::Fork(f)) => events.push(format!(
                "fork {} {} after {}",
                f.first_block,
                f.orphaned_ids
                    .iter()
                    .map(const_hex::encode)
                    .collect::<Vec<_>>()
                    .join(","),
                const_hex::encode(f.ancestor_id)
            )),
            None => {}
        }
    }
    run.join().unwrap().unwrap();
    // What the ring must hold: the old branch through the last block published before the
    // switch was seen (at least `fork + 1`), the notice orphaning those from `fork` on, then
    // the new branch from `fork`.
    let notice = events
        .iter()
        .position(|e| e.starts_with("fork "))
        .expect("a fork notice");
    let old_last = match events[notice - 1].split(' ').collect::<Vec<_>>()[..] {
        ["end", n, _] => n.parse::<u64>().unwrap(),
        _ => panic!("the notice follows a block end: {events:?}"),
    };
    assert!(old_last > fork, "{events:?}");
    let describe = |blocks: Vec<broadcaster::block::DecodedBlock>| {
        let mut out = Vec::new();
        for b in blocks {
            for (i, op) in b.ops.iter().enumerate() {
                out.push(format!("{} {i} {}", b.number, op.topic));
            }
            out.push(format!("end {} {}", b.number, b.id));
        }
        out
    };
    let mut expected = describe(reference(&chain, first, old_last));
    let orphaned: Vec<String> = reference(&chain, fork, old_last)
        .into_iter()
        .map(|b| b.id)
        .collect();
    let ancestor = reference(&chain, fork - 1, fork - 1).remove(0).id;
    expected.push(format!(
        "fork {fork} {} after {ancestor}",
        orphaned.join(",")
    ));
    expected.extend(describe(branch(&chain, fork, fork, last)));
    assert_eq!(events, expected);
}

// ---------------------------------------------------------------- refusals

fn refuse(node: &FakeNode, block: u64, times: u32) {
    node.add_rule(Rule {
        method: None,
        block: Some(block),
        fault: Fault::RpcError(-32602),
        times: Some(times),
    });
}

fn refusals(node: &FakeNode) -> usize {
    node.requests()
        .iter()
        .filter(|r| r.fault == Some(Fault::RpcError(-32602)))
        .count()
}

#[test]
fn a_lone_node_refusing_for_a_while_is_asked_again() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_040);
    for mode in [Mode::Irreversible, Mode::Head] {
        let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
        refuse(&node, 1_000_005, 4);
        let mut config = node_config(vec![node.url()], mode, first, last);
        config.tuning.refusal_cooldown = Duration::from_millis(150);
        let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
        assert_eq!(result.unwrap().reason, StopReason::StopBlock, "{mode:?}");
        assert_eq!(sink.blocks(), reference(&chain, first, last), "{mode:?}");
        assert_eq!(
            refusals(&node),
            4,
            "{mode:?}: every refusal was answered, then asked again"
        );
    }
}

#[test]
fn refusing_nodes_expire_and_a_working_one_is_not_left_for_a_dead_one() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_060);
    // Two nodes refusing the same chunk a few times each: the request waits for the first
    // refusal to expire instead of failing.
    let nodes: Vec<FakeNode> = (0..2)
        .map(|_| {
            let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
            refuse(&node, 1_000_025, 3);
            node
        })
        .collect();
    let mut config = node_config(
        nodes.iter().map(FakeNode::url).collect(),
        Mode::Irreversible,
        first,
        last,
    );
    config.tuning.refusal_cooldown = Duration::from_millis(150);
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, last));
    assert!(nodes.iter().all(|n| refusals(n) == 3));

    // A refusing node next to a dead one whose cooldown outlasts the test: the refusing node is
    // asked again once its refusal expires, never abandoned for the dead one.
    let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    refuse(&node, 1_000_025, 3);
    let mut config = node_config(
        vec![dead_url(), node.url()],
        Mode::Irreversible,
        first,
        last,
    );
    config.tuning.refusal_cooldown = Duration::from_millis(150);
    config.tuning.backoff_base = Duration::from_secs(600);
    config.tuning.backoff_cap = Duration::from_secs(600);
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, last));
    assert_eq!(refusals(&node), 3);
}

// ---------------------------------------------------------------- stalls

/// Tuning for a chain of one block every 50 ms: 60 s of chain time is 20 blocks.
fn fast_chain(config: &mut broadcaster::Config) {
    config.tuning.block_interval = Duration::from_millis(50);
    config.tuning.stall_timeout = Duration::from_millis(170);
}

#[test]
fn two_healthy_nodes_at_the_head_are_not_switched() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_200);
    let schedule = HeadSchedule::advancing(first + 1, Duration::from_millis(50));
    let nodes: Vec<FakeNode> = (0..2)
        .map(|_| {
            let mut options = FakeOptions::fixed(0);
            options.head = schedule;
            FakeNode::start(Arc::clone(&chain), options).unwrap()
        })
        .collect();
    // 200 blocks: 600 s of chain time.
    let mut config = node_config(
        nodes.iter().map(FakeNode::url).collect(),
        Mode::Head,
        first,
        last,
    );
    fast_chain(&mut config);
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, last));
    let blocks_from = |n: &FakeNode| {
        n.requests()
            .iter()
            .filter(|r| is_block_method(&r.method))
            .count()
    };
    assert!(blocks_from(&nodes[0]) >= 200);
    assert_eq!(
        blocks_from(&nodes[1]),
        0,
        "the second node was never needed"
    );
}

#[test]
fn a_frozen_node_is_left_and_not_returned_to() {
    let chain = recorded_chain();
    let first = 1_000_000;
    let frozen = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(first + 10)).unwrap();
    let mut options = FakeOptions::fixed(0);
    options.head = HeadSchedule::advancing(first + 10, Duration::from_millis(50));
    let live = FakeNode::start(Arc::clone(&chain), options).unwrap();
    for mode in [Mode::Head, Mode::Irreversible] {
        let mut config = node_config(vec![frozen.url(), live.url()], mode, first, first + 50);
        fast_chain(&mut config);
        config.tuning.stale_window = Duration::from_millis(100);
        let before = frozen.requests().len();
        let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
        result.unwrap();
        assert_eq!(
            sink.blocks(),
            reference(&chain, first, first + 50),
            "{mode:?}"
        );
        // Once the live node has reported a better head, the frozen one is stale for good,
        // even after the live node's report is older than the comparison window.
        let asked: Vec<_> = frozen.requests()[before..]
            .iter()
            .filter(|r| is_block_method(&r.method))
            .filter_map(|r| r.block)
            .collect();
        assert!(
            asked.iter().all(|&b| b <= first + 11),
            "{mode:?}: blocks asked from the frozen node: {asked:?}"
        );
    }
}

// ---------------------------------------------------------------- rate limits

#[test]
fn retry_after_is_honoured() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_030);
    for status in [429, 503] {
        let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
        node.add_rule(Rule {
            method: None,
            block: Some(1_000_015),
            fault: Fault::RateLimited(status, 1),
            times: Some(1),
        });
        let mut config = node_config(vec![node.url()], Mode::Irreversible, first, last);
        config.tuning.max_in_flight = 1;
        let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
        result.unwrap();
        assert_eq!(sink.blocks(), reference(&chain, first, last), "{status}");
        let requests = node.requests();
        let limited = requests
            .iter()
            .position(|r| r.fault.is_some())
            .expect("the rate limit was served");
        let next = requests.get(limited + 1).expect("asked again");
        let waited = next.received - requests[limited].received;
        // The backoff alone is at most 100 ms here; the node asked for a second.
        assert!(
            waited >= Duration::from_secs(1),
            "{status}: asked again after {waited:?}"
        );
    }
}

// ---------------------------------------------------------------- what the log says

#[test]
fn faults_are_described_by_what_was_received() {
    use broadcaster::node::{Method, NodeClient, http_client};
    let chain = recorded_chain();
    let node = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(1_000_499)).unwrap();
    node.script([
        Some(Fault::PartialWrite),
        Some(Fault::Truncated),
        Some(Fault::Html502),
        Some(Fault::RateLimited(503, 30)),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let messages: Vec<String> = runtime.block_on(async {
        let http = http_client(Duration::from_secs(5), Duration::from_secs(1)).unwrap();
        let client = NodeClient::new(http, &node.url()).unwrap();
        let mut out = Vec::new();
        for _ in 0..4 {
            let err = client
                .get_block(1_000_001, Method::BlockApiGetBlock)
                .await
                .expect_err("a fault");
            out.push(err.to_string());
        }
        out
    });
    assert!(
        messages[0].starts_with("truncated reply:") && messages[0].contains("announced"),
        "{}",
        messages[0]
    );
    let numbers: Vec<u64> = messages[0]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        numbers.len() == 2 && numbers[0] < numbers[1],
        "{}",
        messages[0]
    );
    assert!(messages[1].contains("truncated JSON"), "{}", messages[1]);
    assert!(
        messages[2].contains("HTML") && messages[2].contains("502"),
        "{}",
        messages[2]
    );
    assert!(
        messages[3].contains("HTTP 503")
            && messages[3].contains("slow down")
            && messages[3].contains("Retry-After 30 s"),
        "{}",
        messages[3]
    );
}

// ---------------------------------------------------------------- tip latency

#[test]
fn at_the_head_a_due_block_is_asked_for_often_and_properties_rarely() {
    let chain = recorded_chain();
    let (first, last) = (1_000_000, 1_000_012);
    let mut options = FakeOptions::fixed(0);
    options.head = HeadSchedule::advancing(first, Duration::from_millis(250));
    let node = FakeNode::start(Arc::clone(&chain), options).unwrap();
    let mut config = node_config(vec![node.url()], Mode::Head, first, last);
    config.tuning.tip_poll_interval = Duration::from_millis(25);
    config.tuning.props_poll_interval = Duration::from_millis(200);
    config.tuning.stall_timeout = Duration::from_secs(5);
    let (result, sink) = run_bounded(config, MemorySink::new(), LIMIT);
    result.unwrap();
    assert_eq!(sink.blocks(), reference(&chain, first, last));
    let requests = node.requests();
    let block_calls = requests
        .iter()
        .filter(|r| is_block_method(&r.method))
        .count();
    let props_calls = requests
        .iter()
        .filter(|r| r.method.ends_with("get_dynamic_global_properties"))
        .count();
    // A block appears every 250 ms and is asked for every 17-33 ms until it comes: several
    // requests per block; the properties at most every 200 ms.
    let blocks = (last - first + 1) as usize;
    assert!(
        block_calls >= 3 * blocks,
        "{block_calls} block requests for {blocks} blocks"
    );
    assert!(
        props_calls * 4 <= block_calls,
        "{props_calls} property polls for {block_calls} block requests"
    );
}
