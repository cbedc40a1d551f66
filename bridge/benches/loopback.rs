//! Ring -> `ring-to-nats` -> nats-server (JetStream, file storage) -> `nats-to-ring` -> ring, all
//! on 127.0.0.1: how many records per second cross, and how long an op takes from its commit
//! in the source ring to a reader of the far ring.
//!
//! `cargo bench -p bridge --bench loopback` (needs `nats-server` on PATH or in /usr/sbin). Two
//! phases, each with a fresh server and fresh rings:
//!
//! * **catch-up**: the source ring holds `BLOCKS` blocks of `OPS` vote ops before the bridges
//!   start; the figure is ops (and messages) per second until the far ring has the last block.
//! * **paced**: a block of `OPS` ops every `PACE`; each op carries its commit time, and a reader
//!   of the far ring (in this process, same clock) records commit -> receive per op.
//!
//! Under `cargo test --benches` (criterion-style `--bench` flag absent) it runs a tiny smoke
//! version so the code stays working.

use consumer_sdk::{CreateOptions, Event, OpMeta, Publisher, Start, Subscriber};
use hdrhistogram::Histogram;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RING_TO_NATS: &str = env!("CARGO_BIN_EXE_ring-to-nats");
const NATS_TO_RING: &str = env!("CARGO_BIN_EXE_nats-to-ring");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

fn start(bin: &Path, args: &[&str], log: &Path) -> Killed {
    let log = std::fs::File::create(log).expect("log file");
    Killed(
        Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn"),
    )
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A vote body like the chain's (about 150 bytes), with the commit time in `t`.
fn vote(block: u64, i: usize, t: u64) -> Vec<u8> {
    format!(
        r#"{{"voter":"voter-{i:04}","author":"author-{block}","permlink":"re-a-post-about-block-{block}-{i}","weight":10000,"t":{t:020}}}"#
    )
    .into_bytes()
}

struct Setup {
    _dir: tempfile::TempDir,
    src: PathBuf,
    far: PathBuf,
    procs: Vec<Killed>,
    url: String,
    dir: PathBuf,
}

fn setup(server: &Path) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let store = dir.path().join("store");
    let nats = start(
        server,
        &[
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-sd",
            store.to_str().unwrap(),
        ],
        &dir.path().join("nats.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Setup {
        src: dir.path().join("src.ring"),
        far: dir.path().join("far.ring"),
        url: format!("nats://127.0.0.1:{port}"),
        dir: dir.path().to_path_buf(),
        procs: vec![nats],
        _dir: dir,
    }
}

impl Setup {
    fn bridges(&mut self) {
        let (src, far) = (self.src.to_str().unwrap(), self.far.to_str().unwrap());
        self.procs.push(start(
            Path::new(RING_TO_NATS),
            &["--ring", src, "--nats", &self.url],
            &self.dir.join("ring-to-nats.log"),
        ));
        self.procs.push(start(
            Path::new(NATS_TO_RING),
            &["--ring", far, "--nats", &self.url, "--ring-mib", "128"],
            &self.dir.join("nats-to-ring.log"),
        ));
    }

    fn far_subscriber(&self) -> Subscriber {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(b) = Subscriber::open(self.far.to_str().unwrap()) {
                return b.start(Start::Earliest).expect("far ring");
            }
            assert!(Instant::now() < deadline, "the far ring never appeared");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn write_block(p: &mut Publisher, topic: consumer_sdk::TopicId, n: u64, ops: usize) {
    p.begin_block(n, 1_600_000_000 + n as u32 * 3, [n as u8; 20])
        .unwrap();
    let t = now_ns();
    for i in 0..ops {
        let meta = OpMeta {
            trx_index: i as u32,
            ..OpMeta::default()
        };
        p.push(topic, &meta, &vote(n, i, t)).unwrap();
    }
    p.commit().unwrap();
}

fn catch_up(server: &Path, blocks: u64, ops: usize) {
    let mut s = setup(server);
    let options = CreateOptions {
        capacity: 128 << 20,
        mode: 0o600,
    };
    let mut p = Publisher::create(s.src.to_str().unwrap(), &options).unwrap();
    let topic = p.topic("vote").unwrap();
    for n in 1..=blocks {
        write_block(&mut p, topic, n, ops);
    }
    let started = Instant::now();
    s.bridges();
    let mut sub = s.far_subscriber();
    let mut got = 0u64;
    loop {
        match sub.recv_timeout(Duration::from_secs(60)).expect("far ring") {
            Some(Event::Op(_)) => got += 1,
            Some(Event::BlockEnd(e)) if e.block == blocks => break,
            Some(Event::BlockEnd(_) | Event::Fork(_)) => {}
            None => panic!("stalled after {got} ops"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let total = blocks * ops as u64;
    assert_eq!(got, total, "ops lost or repeated");
    println!(
        "catch-up: {blocks} blocks x {ops} ops = {total} ops in {secs:.2} s (from process start): \
         {:.0} ops/s, {:.0} messages/s (ops + block ends)",
        total as f64 / secs,
        (total + blocks) as f64 / secs
    );
}

fn paced(server: &Path, blocks: u64, ops: usize, pace: Duration) {
    let mut s = setup(server);
    let options = CreateOptions {
        capacity: 64 << 20,
        mode: 0o600,
    };
    let mut p = Publisher::create(s.src.to_str().unwrap(), &options).unwrap();
    let topic = p.topic("vote").unwrap();
    // One block first, so both bridges are up and caught up before measuring.
    write_block(&mut p, topic, 1, ops);
    s.bridges();
    let mut sub = s.far_subscriber();
    loop {
        if let Some(Event::BlockEnd(_)) = sub.recv_timeout(Duration::from_secs(30)).unwrap() {
            break;
        }
    }
    let reader = std::thread::spawn(move || {
        let mut hist = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
        loop {
            match sub.recv_timeout(Duration::from_secs(30)).expect("far ring") {
                Some(Event::Op(op)) => {
                    let at = now_ns();
                    let body = op.payload();
                    let t: u64 = std::str::from_utf8(&body[body.len() - 21..body.len() - 1])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .expect("commit time");
                    hist.saturating_record(at.saturating_sub(t).max(1_000));
                }
                Some(Event::BlockEnd(e)) if e.block == blocks + 1 => return hist,
                Some(Event::BlockEnd(_) | Event::Fork(_)) => {}
                None => panic!("stalled"),
            }
        }
    });
    let start = Instant::now();
    for n in 2..=blocks + 1 {
        write_block(&mut p, topic, n, ops);
        let due = start + pace * (n - 1) as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let hist = reader.join().unwrap();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "paced: {} ops/s ({ops} ops per block, a block every {pace:?}), {} ops: commit -> far reader \
         p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
        (ops as f64 / pace.as_secs_f64()).round(),
        hist.len(),
        us(0.5),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0
    );
}

fn main() {
    let Some(server) = nats_server() else {
        println!(
            "SKIPPED: nats-server is not installed (not on PATH nor in /usr/sbin); apt-get install nats-server"
        );
        return;
    };
    let bench = std::env::args().any(|a| a == "--bench");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "ring -> NATS -> ring on 127.0.0.1; load average at start: {}",
        load.trim()
    );
    if bench {
        catch_up(&server, 20_000, 10);
        paced(&server, 1_000, 10, Duration::from_millis(10));
        paced(&server, 1_000, 10, Duration::from_millis(2));
    } else {
        catch_up(&server, 200, 5);
        paced(&server, 50, 5, Duration::from_millis(5));
    }
}
