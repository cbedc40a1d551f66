//! Real processes on a real ring file: one writer process, several reader processes, SIGKILL and
//! SIGSTOP. The test binary re-executes itself in a child role (see `child_role`).

use consumer_sdk::{CreateOptions, Event, OpMeta, Publisher, RecvError, Start, Subscriber};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "SDK_TEST_CHILD_ROLE";

/// Ops in block `b`: zero to four, so some blocks are empty.
pub(crate) fn ops_in(b: u64) -> u64 {
    (b * 7) % 5
}

/// Deterministic op body of op `i` in block `b`, of varying size.
fn body(b: u64, i: u64) -> String {
    format!(
        "{{\"b\":{b},\"i\":{i},\"pad\":\"{}\"}}",
        "x".repeat(((b * 31 + i * 17) % 200) as usize)
    )
}

/// The lines a reader must print for blocks `from..=to`.
fn expected(from: u64, to: u64) -> Vec<String> {
    (from..=to)
        .flat_map(|b| (0..ops_in(b)).map(move |i| format!("{b} {i} {}", body(b, i))))
        .collect()
}

pub(crate) fn publish(p: &mut Publisher, b: u64) {
    let t = p
        .topic(if b % 2 == 0 { "vote" } else { "comment" })
        .unwrap();
    p.begin_block(b, b as u32, [b as u8; 20]).unwrap();
    for i in 0..ops_in(b) {
        let meta = OpMeta {
            trx_index: i as u32,
            op_index: 0,
            trx_id: [i as u8; 20],
            virtual_op: false,
        };
        p.push(t, &meta, body(b, i).as_bytes()).unwrap();
    }
    p.commit().unwrap();
}

/// Entry point of the child processes; an ordinary (passing) test when run without a role.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let ring = std::env::var("RING").unwrap();
    let arg = |k: &str| std::env::var(k).unwrap().parse::<u64>().unwrap();
    match role.as_str() {
        // Publish blocks FROM..=TO; then, if PARTIAL is set, open block TO+1, push half of it,
        // create the file PARTIAL and wait to be killed.
        "writer" => {
            let mut p = Publisher::open(&ring).unwrap();
            assert_eq!(
                p.last_block(),
                arg("FROM").checked_sub(1).filter(|&b| b > 0)
            );
            for b in arg("FROM")..=arg("TO") {
                publish(&mut p, b);
            }
            if let Ok(marker) = std::env::var("PARTIAL") {
                let t = p.topic("vote").unwrap();
                p.begin_block(arg("TO") + 1, 0, [0; 20]).unwrap();
                for _ in 0..3 {
                    p.push(t, &OpMeta::default(), b"{\"partial\":true}")
                        .unwrap();
                }
                std::fs::write(marker, b"").unwrap();
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        // Read from START (earliest or a block number) through block UNTIL, printing one line per
        // op and one `LAGGED lost lost_matching` line per lag report.
        "reader" => {
            let start = match std::env::var("START").unwrap().as_str() {
                "earliest" => Start::Earliest,
                n => Start::Block(n.parse().unwrap()),
            };
            let mut sub = Subscriber::open(&ring).unwrap().start(start).unwrap();
            let out_path = std::env::var("OUT").unwrap();
            let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path).unwrap());
            std::fs::write(format!("{out_path}.ready"), b"").unwrap();
            let until = arg("UNTIL");
            loop {
                match sub.recv() {
                    Ok(Event::Op(op)) => {
                        let line = format!("{} {}", op.block(), op.index_in_block());
                        writeln!(out, "{line} {}", String::from_utf8_lossy(op.payload())).unwrap();
                    }
                    Ok(Event::BlockEnd(e)) if e.block >= until => break,
                    Ok(Event::BlockEnd(_)) => {}
                    Ok(Event::Fork(f)) => panic!("no fork was published: {f:?}"),
                    Err(RecvError::Lagged {
                        lost,
                        lost_matching,
                    }) => {
                        writeln!(out, "LAGGED {lost} {lost_matching}").unwrap();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            out.flush().unwrap();
        }
        "crash-writer" => crate::crash::crash_writer(&ring),
        "mixed-writer" => crate::crash::mixed_writer(&ring),
        // Create a ring at RING, then give everyone write access to it.
        "foreign" => {
            drop(Publisher::create(&ring, &CreateOptions::default()).unwrap());
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        // Flip the file's size between 4096 bytes and SIZE until the file STOP exists.
        "flipper" => {
            let f = std::fs::OpenOptions::new().write(true).open(&ring).unwrap();
            let stop = std::env::var("STOP").unwrap();
            let size = arg("SIZE");
            while !Path::new(&stop).exists() {
                for _ in 0..64 {
                    f.set_len(4096).unwrap();
                    f.set_len(size).unwrap();
                }
            }
        }
        "bot" => crate::bot::bot_role(&ring),
        // Wait for the next op at the tail, asleep (until killed).
        "sleeper" => {
            let mut sub = Subscriber::open(&ring)
                .unwrap()
                .max_nap(Duration::from_secs(3600))
                .start(Start::Latest)
                .unwrap();
            let _ = sub.recv();
        }
        other => panic!("unknown role {other}"),
    }
}

pub(crate) fn child(role: &str, ring: &Path, env: &[(&str, String)]) -> Child {
    child_via(&[], role, ring, env)
}

/// Like [`child`], started through `wrapper` (a command and its arguments, e.g. `setpriv` to
/// run as another user), which must end with the test binary to run (this one when empty).
pub(crate) fn child_via(
    wrapper: &[&str],
    role: &str,
    ring: &Path,
    env: &[(&str, String)],
) -> Child {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        None => Command::new(std::env::current_exe().unwrap()),
    };
    cmd.args([
        "--exact",
        "processes::child_role",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env("RING", ring)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Wait for `child` to exit successfully within `limit`; kill it and fail otherwise.
pub(crate) fn finish(mut c: Child, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            assert!(status.success(), "{what} failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A reader process and the file it prints to.
struct Reader {
    child: Child,
    out: PathBuf,
}

fn reader(ring: &Path, out: PathBuf, start: &str, until: u64) -> Reader {
    let env = [
        ("START", start.to_string()),
        ("UNTIL", until.to_string()),
        ("OUT", out.display().to_string()),
    ];
    let child = child("reader", ring, &env);
    let mut ready = out.clone().into_os_string();
    ready.push(".ready");
    wait_for_file(Path::new(&ready), Duration::from_secs(30));
    Reader { child, out }
}

impl Reader {
    fn finish(self) -> Vec<String> {
        finish(self.child, Duration::from_secs(30), "reader");
        let text = std::fs::read_to_string(&self.out).unwrap();
        text.lines().map(str::to_string).collect()
    }
}

pub(crate) fn wait_for_file(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn signal(c: &Child, sig: libc::c_int) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(c.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0);
}

fn new_ring(dir: &Path, capacity: u64) -> PathBuf {
    let path = dir.join("test.ring");
    Publisher::create(
        path.to_str().unwrap(),
        &CreateOptions {
            capacity,
            mode: 0o600,
        },
    )
    .unwrap();
    path
}

#[test]
fn writer_killed_mid_block_then_restarted_readers_see_every_block_once() {
    let dir = tempfile::tempdir().unwrap();
    let ring = new_ring(dir.path(), 1 << 20);
    let readers: Vec<Reader> = (0..4)
        .map(|i| reader(&ring, dir.path().join(format!("out{i}")), "earliest", 40))
        .collect();
    let marker = dir.path().join("partial");
    let first = child(
        "writer",
        &ring,
        &[
            ("FROM", "1".into()),
            ("TO", "20".into()),
            ("PARTIAL", marker.display().to_string()),
        ],
    );
    wait_for_file(&marker, Duration::from_secs(30));
    signal(&first, libc::SIGKILL);
    let status = finish_killed(first);
    assert!(!status, "the writer was meant to die by SIGKILL");
    let second = child(
        "writer",
        &ring,
        &[("FROM", "21".into()), ("TO", "40".into())],
    );
    finish(second, Duration::from_secs(30), "restarted writer");
    for (i, r) in readers.into_iter().enumerate() {
        assert_eq!(r.finish(), expected(1, 40), "reader {i}");
    }
}

/// Reap a killed child; whether it exited successfully.
fn finish_killed(mut c: Child) -> bool {
    c.wait().unwrap().success()
}

#[test]
fn reader_paused_past_capacity_reports_exact_loss_then_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ring = new_ring(dir.path(), 64 << 10);
    let r = reader(&ring, dir.path().join("out"), "earliest", 600);
    signal(&r.child, libc::SIGSTOP);
    let writer = child(
        "writer",
        &ring,
        &[("FROM", "1".into()), ("TO", "600".into())],
    );
    finish(writer, Duration::from_secs(30), "writer");
    signal(&r.child, libc::SIGCONT);
    let got = r.finish();
    let all = expected(1, 600);
    let lag: Vec<usize> = (0..got.len())
        .filter(|&i| got[i].starts_with("LAGGED"))
        .collect();
    assert_eq!(
        lag.len(),
        1,
        "one lag report expected: {:?}",
        &got[..got.len().min(5)]
    );
    let fields: Vec<u64> = got[lag[0]]
        .split(' ')
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    let lost = fields[0] as usize;
    assert_eq!(
        fields[0], fields[1],
        "no topic filter: every lost record matched"
    );
    // Everything before the report was delivered in order, then exactly `lost` records are
    // missing, then everything after them.
    let before = &got[..lag[0]];
    let after = &got[lag[0] + 1..];
    assert_eq!(before, &all[..before.len()]);
    assert_eq!(
        after,
        &all[before.len() + lost..],
        "lost {lost} after {} delivered",
        before.len()
    );
    assert!(lost > 0 && !after.is_empty());
}

#[test]
fn reader_started_at_block_n_gets_exactly_the_blocks_from_n() {
    let dir = tempfile::tempdir().unwrap();
    let ring = new_ring(dir.path(), 1 << 20);
    let writer = child(
        "writer",
        &ring,
        &[("FROM", "1".into()), ("TO", "50".into())],
    );
    finish(writer, Duration::from_secs(30), "writer");
    let r = reader(&ring, dir.path().join("out"), "23", 80);
    let writer = child(
        "writer",
        &ring,
        &[("FROM", "51".into()), ("TO", "80".into())],
    );
    finish(writer, Duration::from_secs(30), "writer");
    assert_eq!(r.finish(), expected(23, 80));
}
