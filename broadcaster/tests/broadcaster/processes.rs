//! The `broadcaster` binary as a real process publishing into a real ring file, killed with
//! SIGKILL and restarted, or fed by flaky nodes on 127.0.0.1; the ring is read back with
//! `consumer-sdk`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consumer_sdk::{Event, Start, Subscriber};
use serde_json::Value;
use test_support::fake_node::{Chain, FakeNode, FakeOptions};

const BIN: &str = env!("CARGO_BIN_EXE_broadcaster");

fn demo_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/demo-blocks.jsonl")
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Everything a reader sees: one entry per op and per block end, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    Op {
        block: u64,
        trx: u32,
        op: u32,
        virt: bool,
        topic: String,
        body: Value,
    },
    End(u64),
}

/// Read the whole ring from its oldest block through block `last`.
fn read_ring(ring: &Path, last: u64) -> Vec<Seen> {
    let mut sub = Subscriber::open(ring.to_str().unwrap())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let mut out = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_secs(10)).unwrap() {
            Some(Event::Op(op)) => out.push(Seen::Op {
                block: op.block(),
                trx: op.trx_index(),
                op: op.op_index(),
                virt: op.is_virtual(),
                topic: op.topic().to_string(),
                body: serde_json::from_slice(op.payload()).unwrap(),
            }),
            Some(Event::BlockEnd(e)) => {
                out.push(Seen::End(e.block));
                if e.block >= last {
                    return out;
                }
            }
            None => panic!("ring {} stopped before block {last}", ring.display()),
        }
    }
}

fn broadcaster(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Wait for a successful exit within `limit`, killing the process otherwise.
fn finish(mut child: Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "broadcaster failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broadcaster did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn committed(ring: &Path) -> Option<u64> {
    let sub = Subscriber::open(ring.to_str()?)
        .ok()?
        .start(Start::Latest)
        .ok()?;
    sub.committed_block()
}

const LAST_DEMO_BLOCK: u64 = 66_379_830;

#[test]
fn sigkill_at_random_moments_and_restart_publishes_each_block_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo_file();
    let stop = LAST_DEMO_BLOCK.to_string();

    let reference = dir.path().join("reference.ring");
    let args = [
        "--replay",
        demo.to_str().unwrap(),
        "--pace",
        "max",
        "--stop-block",
        &stop,
    ];
    let mut with_ring = args.to_vec();
    with_ring.extend(["--ring", reference.to_str().unwrap()]);
    finish(broadcaster(&with_ring), Duration::from_secs(60));
    let expected = read_ring(&reference, LAST_DEMO_BLOCK);

    // The same command line, killed at random moments once it has made progress, then restarted.
    let ring = dir.path().join("chaos.ring");
    let chaos = [
        "--replay",
        demo.to_str().unwrap(),
        "--pace",
        "2ms",
        "--stop-block",
        &stop,
        "--ring",
        ring.to_str().unwrap(),
    ];
    let mut kills = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no progress after {} kills",
            kills.len()
        );
        let mut child = broadcaster(&chaos);
        let before = committed(&ring);
        // Wait until this run has published something, then kill it a random moment later.
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if committed(&ring) > before {
                break None;
            }
            assert!(
                Instant::now() < deadline,
                "the broadcaster published nothing"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        if let Some(status) = exited {
            assert!(status.success(), "broadcaster failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..40)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        kills.push(committed(&ring));
        if kills.len() == 12 {
            finish(broadcaster(&chaos), Duration::from_secs(60));
            break;
        }
    }
    assert!(
        kills.len() >= 3,
        "the broadcaster was killed only {} times mid-stream",
        kills.len()
    );
    assert!(
        kills.windows(2).all(|w| w[0] < w[1]),
        "every restart made progress: {kills:?}"
    );
    assert_eq!(
        read_ring(&ring, LAST_DEMO_BLOCK),
        expected,
        "after {} kills at {kills:?}",
        kills.len()
    );
}

#[test]
fn flaky_nodes_feed_the_real_binary_the_same_stream_as_a_replay() {
    let (first, last) = (1_000_000u64, 1_000_199u64);
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(Chain::recorded(&data_dir()).unwrap());
    let flaky = |seed| {
        let mut options = FakeOptions::fixed(last + 20);
        options.fault_rate = 0.25;
        options.seed = seed;
        options.hang_limit = Duration::from_secs(3);
        FakeNode::start(Arc::clone(&chain), options).unwrap()
    };
    let (a, b) = (flaky(3), flaky(5));
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let ring = dir.path().join("nodes.ring");
    let (first_s, last_s) = (first.to_string(), last.to_string());
    let (a_url, b_url) = (a.url(), b.url());
    let child = broadcaster(&[
        "--node",
        &a_url,
        "--node",
        &dead,
        "--node",
        &b_url,
        "--mode",
        "irreversible",
        "--start-block",
        &first_s,
        "--stop-block",
        &last_s,
        "--request-timeout",
        "1",
        "--ring",
        ring.to_str().unwrap(),
    ]);
    finish(child, Duration::from_secs(120));

    let replayed = dir.path().join("replay.ring");
    let range = data_dir().join("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl");
    let child = broadcaster(&[
        "--replay",
        range.to_str().unwrap(),
        "--pace",
        "max",
        "--stop-block",
        &last_s,
        "--ring",
        replayed.to_str().unwrap(),
    ]);
    finish(child, Duration::from_secs(60));

    let from_nodes = read_ring(&ring, last);
    assert_eq!(
        from_nodes
            .iter()
            .filter(|s| matches!(s, Seen::End(_)))
            .count() as u64,
        last - first + 1
    );
    assert_eq!(
        from_nodes,
        read_ring(&replayed, last),
        "op for op equal to the recorded blocks"
    );
    let faults = a
        .requests()
        .into_iter()
        .chain(b.requests())
        .filter(|r| r.fault.is_some())
        .count();
    assert!(faults > 0, "no fault was injected");
}

#[test]
fn sigterm_stops_the_broadcaster_cleanly_within_three_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("term.ring");
    let demo = demo_file();
    let mut child = broadcaster(&[
        "--replay",
        demo.to_str().unwrap(),
        "--pace",
        "20ms",
        "--ring",
        ring.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while committed(&ring).is_none() {
        assert!(Instant::now() < deadline, "nothing published");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the broadcaster exited early"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: signalling our own child.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(3) {
            let _ = child.kill();
            panic!("still running 3 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // What it committed is whole: a new publisher takes the ring over without complaint.
    let last = committed(&ring).expect("blocks committed");
    let sub = Subscriber::open(ring.to_str().unwrap())
        .unwrap()
        .start(Start::Block(last))
        .unwrap();
    assert_eq!(sub.committed_block(), Some(last));
}
