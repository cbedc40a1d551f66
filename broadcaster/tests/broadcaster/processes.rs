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
            Some(Event::Fork(f)) => panic!("a fork notice from nodes with one branch: {f:?}"),
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

/// The last of the 500 consecutive Hive blocks of 2016: a source long enough to be killed many
/// times mid-stream at a 2 ms pace.
const LAST_RANGE_BLOCK: u64 = 1_000_499;

#[test]
fn sigkill_at_random_moments_and_restart_publishes_each_block_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let source = data_dir().join("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl");
    let stop = LAST_RANGE_BLOCK.to_string();

    let reference = dir.path().join("reference.ring");
    let args = [
        "--replay",
        source.to_str().unwrap(),
        "--pace",
        "max",
        "--stop-block",
        &stop,
    ];
    let mut with_ring = args.to_vec();
    with_ring.extend(["--ring", reference.to_str().unwrap()]);
    finish(broadcaster(&with_ring), Duration::from_secs(60));
    let expected = read_ring(&reference, LAST_RANGE_BLOCK);

    // The same command line, killed at random moments once it has made progress, then restarted.
    let ring = dir.path().join("chaos.ring");
    let chaos = [
        "--replay",
        source.to_str().unwrap(),
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
        read_ring(&ring, LAST_RANGE_BLOCK),
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

// ---------------------------------------------------------------- errors

/// Runs the binary to its end (it must end by itself within 30 s); returns its exit code and
/// what it logged.
fn run_logged(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broadcaster {args:?} did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap())
}

/// The one ERROR line of a log, which must say `cause` once.
fn error_line(log: &str, cause: &str) -> String {
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{log}");
    assert_eq!(
        errors[0].matches(cause).count(),
        1,
        "the cause {cause:?} said once:\n{log}"
    );
    errors[0].to_string()
}

#[test]
fn a_missing_replay_file_is_reported_once_and_creates_no_ring() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("r.ring");
    let missing = dir.path().join("missing.jsonl");
    let (code, log) = run_logged(&[
        "--replay",
        missing.to_str().unwrap(),
        "--ring",
        ring.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    let line = error_line(&log, "No such file or directory");
    assert!(
        line.contains(&format!("{}: No such file", missing.display())),
        "{line}"
    );
    assert!(!ring.exists(), "no ring was created");

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n\n").unwrap();
    let (code, log) = run_logged(&[
        "--replay",
        empty.to_str().unwrap(),
        "--ring",
        ring.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    error_line(&log, &format!("{}: no blocks in the file", empty.display()));
    assert!(!ring.exists(), "no ring was created");
}

#[test]
fn a_ring_in_a_missing_or_unwritable_directory_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo_file();
    let missing = dir.path().join("nowhere");
    let ring = missing.join("r.ring");
    let (code, log) = run_logged(&[
        "--replay",
        demo.to_str().unwrap(),
        "--ring",
        ring.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    let line = error_line(
        &log,
        &format!("the ring's directory {} does not exist", missing.display()),
    );
    assert!(
        !line.contains(".r.ring."),
        "no temporary file named: {line}"
    );

    // SAFETY: geteuid(2) has no memory-safety preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping the unwritable directory: needs root to run as nobody");
        return;
    }
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let world = |path: &Path, mode| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    // nobody can reach the directory (and the binary and demo file) but not write in it.
    world(dir.path(), 0o755);
    world(&locked, 0o555);
    let ring = locked.join("r.ring");
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", BIN])
        .args([
            "--replay",
            demo.to_str().unwrap(),
            "--ring",
            ring.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info")
        .output();
    let out = match out {
        Ok(out) if !String::from_utf8_lossy(&out.stderr).contains("setpriv:") => out,
        other => {
            eprintln!("skipping the unwritable directory: setpriv unusable: {other:?}");
            return;
        }
    };
    let log = String::from_utf8(out.stderr).unwrap();
    if log.contains("Permission denied") && log.contains("demo-blocks") {
        eprintln!("skipping the unwritable directory: nobody cannot read the demo file");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{log}");
    let line = error_line(
        &log,
        &format!("no permission to create files in {}", locked.display()),
    );
    assert!(
        !line.contains(".r.ring."),
        "no temporary file named: {line}"
    );
}

/// Three blocks of the demo with line 2 garbled by `garble`; returns the file and what the
/// replay of its good lines ends with.
fn garbled_replay(dir: &Path, garble: &str) -> (PathBuf, u64) {
    let demo = std::fs::read_to_string(demo_file()).unwrap();
    let lines: Vec<&str> = demo.lines().take(3).collect();
    let path = dir.join("garbled.jsonl");
    std::fs::write(&path, format!("{}\n{garble}\n{}\n", lines[0], lines[2])).unwrap();
    let last: Value = serde_json::from_str(lines[2]).unwrap();
    let last = broadcaster::decode_block(last.to_string().as_bytes())
        .unwrap()
        .number;
    (path, last)
}

#[test]
fn a_garbled_replay_line_stops_with_file_line_and_column_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    // The column is that of the first character that cannot be JSON (of the last one, at the
    // end of a truncated line); simd-json alone says "character 0" for some of these.
    for (garble, column, message) in [
        (
            r#"{"previous": "00000000",  oops}"#,
            27,
            "key must be a string",
        ),
        ("garbage", 1, "expected value"),
        (r#"{"previous": "0000"#, 18, "EOF while parsing a string"),
    ] {
        let (path, last) = garbled_replay(dir.path(), garble);
        let ring = dir.path().join("garbled.ring");
        let _ = std::fs::remove_file(&ring);
        let (code, log) = run_logged(&[
            "--replay",
            path.to_str().unwrap(),
            "--ring",
            ring.to_str().unwrap(),
            "--pace",
            "max",
            "--stop-block",
            &last.to_string(),
        ]);
        assert_eq!(code, Some(1), "{log}");
        error_line(
            &log,
            &format!("{}:2:{column}: not JSON: {message}", path.display()),
        );
        assert!(!log.contains("character 0"), "{log}");
        assert!(
            committed(&ring) < Some(last),
            "the replay stopped at line 2"
        );

        let _ = std::fs::remove_file(&ring);
        let (code, log) = run_logged(&[
            "--replay",
            path.to_str().unwrap(),
            "--ring",
            ring.to_str().unwrap(),
            "--pace",
            "max",
            "--stop-block",
            &last.to_string(),
            "--skip-bad-lines",
        ]);
        assert_eq!(code, Some(0), "{log}");
        let warning = format!(
            "{}:2:{column}: not JSON: {message}; line skipped (--skip-bad-lines)",
            path.display()
        );
        assert_eq!(log.matches(&warning).count(), 1, "{log}");
        assert_eq!(
            committed(&ring),
            Some(last),
            "the lines after it were replayed"
        );
    }
}

/// A small tmpfs mounted on a temporary directory (unmounted on drop), or `None` after saying
/// why not: mounting needs root, which CI has.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid(2) has no memory-safety preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a tmpfs needs root (CI runs the tests as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        match Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
        {
            Ok(s) if s.success() => Some(Tmpfs(dir)),
            other => {
                eprintln!("skipped: cannot mount a tmpfs here ({other:?})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_ring_larger_than_its_file_system_is_a_clear_error_not_a_signal() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let demo = demo_file();
    let ring = fs.0.path().join("big.ring");
    let (code, log) = run_logged(&[
        "--replay",
        demo.to_str().unwrap(),
        "--ring",
        ring.to_str().unwrap(),
        "--ring-size",
        "64MiB",
    ]);
    // An exit code, not a death by SIGBUS on the first write into a page the disk never had.
    assert_eq!(code, Some(1), "{log}");
    let line = error_line(&log, &ring.display().to_string());
    assert!(
        line.contains("space"),
        "the error says the disk is full: {line}"
    );
    assert!(!ring.exists(), "no ring was left behind");
    let left: Vec<_> = std::fs::read_dir(fs.0.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "no temporary file was left behind: {left:?}"
    );

    // A ring that fits on the same file system is written, every block of it.
    let source = data_dir().join("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl");
    let small = fs.0.path().join("small.ring");
    let (code, log) = run_logged(&[
        "--replay",
        source.to_str().unwrap(),
        "--pace",
        "max",
        "--stop-block",
        "1000099",
        "--ring",
        small.to_str().unwrap(),
        "--ring-size",
        "4MiB",
    ]);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(committed(&small), Some(1_000_099));
    let ends = read_ring(&small, 1_000_099)
        .iter()
        .filter(|s| matches!(s, Seen::End(_)))
        .count();
    assert_eq!(ends, 100, "blocks 1000000..=1000099 in the ring");
}
