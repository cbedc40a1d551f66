//! `--metrics`: the broadcaster as a real process serving the Prometheus text format, scraped
//! over HTTP on 127.0.0.1 and parsed, its figures checked against the ring it wrote and the
//! nodes it was given.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use consumer_sdk::{ChainId, Event, Start, Subscriber};
use test_support::fake_node::{Chain, FakeNode, FakeOptions};

use crate::node::{data_dir, dead_url};

const BIN: &str = env!("CARGO_BIN_EXE_broadcaster");

/// One sample: metric name and labels.
type Key = (String, BTreeMap<String, String>);

/// A parsed exposition: samples, and the `# TYPE` of each metric family.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<Key, f64>,
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
}

impl Exposition {
    /// Parses the text format: `# HELP`, `# TYPE`, and `name{k="v",...} value` lines.
    fn parse(text: &str) -> Exposition {
        let mut out = Exposition::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                out.helps.insert(name.to_owned(), help.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("a type");
                out.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    (name.to_owned(), parse_labels(body))
                }
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line}"
            );
            out.samples.insert((name, labels), value);
        }
        out
    }

    /// The value of `name` with exactly these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// Every sample of `name`: its labels and value.
    fn all(&self, name: &str) -> Vec<(&BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, l), v)| (l, *v))
            .collect()
    }
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes.
fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            return labels;
        }
        assert_eq!(
            chars.next(),
            Some('"'),
            "label {key} is not quoted in {body}"
        );
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// GETs `path` from `addr`; returns the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a header");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

fn scrape(addr: SocketAddr) -> Exposition {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    Exposition::parse(&body)
}

/// A broadcaster whose stderr lines come through a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// The first stderr line containing `needle`, within `limit`.
    fn wait_for_line(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {needle:?} within {limit:?}"),
            }
        }
    }

    /// Everything written to stderr until the process exits (within `limit`), and its status.
    fn wait_exit(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        let text: Vec<String> = self.lines.iter().collect();
        (status, text.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in a "serving metrics at http://ADDR/metrics" line.
fn bound_address(line: &str) -> SocketAddr {
    let start = line.find("http://").expect("a URL") + "http://".len();
    let rest = &line[start..];
    let end = rest.find('/').expect("a path");
    rest[..end].parse().expect("an address")
}

/// Ops per topic in the ring through block `last`, and the blocks read.
fn ring_counts(ring: &Path, last: u64) -> (BTreeMap<String, u64>, u64) {
    let mut sub = Subscriber::open(ring)
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let mut topics = BTreeMap::new();
    let mut blocks = 0;
    loop {
        match sub.recv_timeout(Duration::from_secs(10)).unwrap() {
            Some(Event::Op(op)) => *topics.entry(op.topic().to_owned()).or_insert(0) += 1,
            Some(Event::BlockEnd(end)) => {
                blocks += 1;
                if end.block >= last {
                    return (topics, blocks);
                }
            }
            Some(Event::Fork(f)) => panic!("a fork notice from nodes with one branch: {f:?}"),
            None => panic!("the ring ended before block {last}"),
        }
    }
}

#[test]
fn metrics_are_served_and_match_the_ring_and_the_nodes() {
    const FIRST: u64 = 1_000_000;
    const HEAD: u64 = 1_000_200;
    let chain = Arc::new(Chain::recorded(&data_dir()).unwrap());
    let good = FakeNode::start(Arc::clone(&chain), FakeOptions::fixed(HEAD)).unwrap();
    let mut foreign_options = FakeOptions::fixed(HEAD);
    foreign_options.chain_id = ChainId::STEEM;
    foreign_options.foreign_ids = true;
    let foreign = FakeNode::start(Arc::clone(&chain), foreign_options).unwrap();
    let dead = dead_url();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("metrics.ring");
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let broadcaster = Running::start(&[
        "--node",
        &foreign.url(),
        "--node",
        &dead,
        "--node",
        &good.url(),
        "--chain",
        "hive",
        "--ring",
        ring.to_str().unwrap(),
        "--ring-size",
        "4MiB",
        "--start-block",
        &FIRST.to_string(),
        "--request-timeout",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let addr =
        bound_address(&broadcaster.wait_for_line("serving metrics at", Duration::from_secs(30)));

    // Scrape until the broadcaster has published the head block and refreshed its gauges.
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let metrics = scrape(addr);
        let published = metrics.get("broadcaster_published_block", &[]);
        let lag = metrics.get("broadcaster_lag_blocks", &[]);
        if published == Some(HEAD as f64) && lag == Some(0.0) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "published {published:?}, lag {lag:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // Every family has its HELP and TYPE.
    let families: Vec<&String> = metrics.samples.keys().map(|(n, _)| n).collect();
    for name in families {
        let family = name.strip_suffix("_total").unwrap_or(name);
        let known = |m: &BTreeMap<String, String>| m.contains_key(name) || m.contains_key(family);
        assert!(known(&metrics.types), "no TYPE for {name}");
        assert!(known(&metrics.helps), "no HELP for {name}");
    }

    // The chain's progress and the lag.
    assert_eq!(
        metrics.get("broadcaster_head_block", &[]),
        Some(HEAD as f64)
    );
    assert_eq!(
        metrics.get("broadcaster_irreversible_block", &[]),
        Some(HEAD as f64)
    );
    let lag_seconds = metrics.get("broadcaster_lag_seconds", &[]).unwrap();
    let block_time = chain.block(HEAD).unwrap().timestamp;
    let expected = started.as_secs_f64() - f64::from(block_time);
    assert!(
        lag_seconds >= expected - 1.0 && lag_seconds <= expected + 120.0,
        "lag {lag_seconds} s, block of {block_time}"
    );

    // What was published, against the ring itself.
    let (topics, blocks) = ring_counts(&ring, HEAD);
    assert_eq!(blocks, HEAD - FIRST + 1);
    assert_eq!(
        metrics.get("broadcaster_blocks_published_total", &[]),
        Some(blocks as f64)
    );
    let published: BTreeMap<String, u64> = metrics
        .all("broadcaster_ops_published_total")
        .into_iter()
        .map(|(labels, v)| (labels["topic"].clone(), v as u64))
        .collect();
    assert!(!topics.is_empty());
    assert_eq!(published, topics);

    // The ring.
    assert_eq!(
        metrics.get("broadcaster_ring_capacity_bytes", &[]),
        Some((4u64 << 20) as f64)
    );
    let written = metrics
        .get("broadcaster_ring_written_bytes_total", &[])
        .unwrap();
    let ops: u64 = topics.values().sum();
    // Each op and each block end is at least a 64-byte record header.
    assert!(written >= ((ops + blocks) * 64) as f64, "{written}");
    let commit = metrics
        .get("broadcaster_ring_last_commit_timestamp_seconds", &[])
        .unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(
        commit >= started.as_secs_f64() - 1.0 && commit <= now.as_secs_f64() + 1.0,
        "{commit}"
    );
    // No reader ever slept on this ring: not one wake-up system call.
    assert_eq!(
        metrics.get("broadcaster_ring_sleeping_readers", &[]),
        Some(0.0)
    );
    assert_eq!(metrics.get("broadcaster_ring_wakes_total", &[]), Some(0.0));

    // The nodes: requests by method, the dead node's faults and cooldowns, the foreign node's
    // rejection, and the failovers that took the requests to the good node.
    let good_url = good.url();
    let ranges = metrics
        .get(
            "broadcaster_node_requests_total",
            &[
                ("method", "block_api.get_block_range"),
                ("node", good_url.as_str()),
            ],
        )
        .unwrap_or(0.0);
    let served_ranges = good
        .requests()
        .iter()
        .filter(|r| r.method == "block_api.get_block_range")
        .count();
    assert!(
        ranges >= 1.0 && ranges as usize <= served_ranges,
        "{ranges}"
    );
    let connect_faults = metrics
        .get(
            "broadcaster_node_faults_total",
            &[("class", "connect"), ("node", dead.as_str())],
        )
        .unwrap_or(0.0);
    assert!(connect_faults >= 1.0, "{connect_faults}");
    assert!(
        metrics
            .get(
                "broadcaster_node_cooldowns_total",
                &[("node", dead.as_str())]
            )
            .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(
        metrics.get(
            "broadcaster_node_cooling_down",
            &[("node", good_url.as_str())]
        ),
        Some(0.0)
    );
    let foreign_url = foreign.url();
    assert!(
        metrics
            .get(
                "broadcaster_chain_id_rejections_total",
                &[("node", foreign_url.as_str())]
            )
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        metrics
            .get("broadcaster_failovers_total", &[])
            .unwrap_or(0.0)
            >= 1.0
    );
    // The good node never failed.
    assert!(
        metrics
            .all("broadcaster_node_faults_total")
            .iter()
            .all(|(labels, _)| labels["node"] != good_url)
    );

    // Other paths and methods.
    assert_eq!(get(addr, "/nothing").0, 404);
}

#[test]
fn a_metrics_address_in_use_or_malformed_is_a_clear_start_up_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("r.ring");
    let replay = data_dir().join("demo-blocks.jsonl");
    let running = Running::start(&[
        "--replay",
        replay.to_str().unwrap(),
        "--ring",
        ring.to_str().unwrap(),
        "--metrics",
        &addr,
    ]);
    let (status, stderr) = running.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot serve metrics on {addr}")) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(
        !ring.exists(),
        "a ring was created although the start failed"
    );

    let running = Running::start(&[
        "--replay",
        replay.to_str().unwrap(),
        "--ring",
        ring.to_str().unwrap(),
        "--metrics",
        "localhost",
    ]);
    let (status, stderr) = running.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--metrics") && stderr.contains("\"localhost\" is not an address"),
        "{stderr}"
    );
}
