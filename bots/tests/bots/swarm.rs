//! The real swarm under `run.sh`: the broadcaster replaying a long source into a ring, and the
//! bots reading it, with processes killed by SIGKILL while they work. What `dump --cursor`
//! printed across all its lives must be the whole source, in order, with repeats only as the
//! documented at-least-once redelivery right after one of its restarts.

use crate::supervisor::{Swarm, is_running, send_signal, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) const DUMP: &str = env!("CARGO_BIN_EXE_dump");

/// The broadcaster binary, built beside the bots by `cargo test --workspace`.
fn broadcaster() -> PathBuf {
    let path = Path::new(DUMP).with_file_name("broadcaster");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

fn bin(name: &str) -> String {
    Path::new(DUMP).with_file_name(name).display().to_string()
}

/// A replay file of at least `blocks` blocks: the demo blocks over and over, renumbered to
/// follow each other (block ids and `previous` carry the new numbers); the ops are the real
/// ones. Returns its last block.
fn long_source(path: &Path, blocks: u64) -> u64 {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/demo-blocks.jsonl");
    let demo: Vec<Value> = std::fs::read_to_string(demo)
        .expect("demo blocks")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a demo block"))
        .collect();
    let copies = blocks.div_ceil(demo.len() as u64);
    let mut out = String::new();
    let mut number = 1_000u64;
    for _ in 0..copies {
        for block in &demo {
            let mut block = block.clone();
            let renumber = |v: &Value, n: u64| {
                let id = v
                    .as_str()
                    .unwrap_or("0000000000000000000000000000000000000000");
                Value::String(format!("{n:08x}{}", &id[8..]))
            };
            if let Some(id) = block.get("block_id") {
                block["block_id"] = renumber(id, number);
            }
            block["previous"] = renumber(&block["previous"], number - 1);
            out.push_str(&block.to_string());
            out.push('\n');
            number += 1;
        }
    }
    std::fs::write(path, out).expect("write the source");
    number - 1
}

/// What `dump` prints for the whole source: a clean replay into a ring of its own, dumped once.
fn reference(dir: &Path, source: &Path, last: u64) -> Vec<String> {
    let ring = dir.join("reference.ring");
    let status = Command::new(broadcaster())
        .args([
            "--replay",
            source.to_str().unwrap(),
            "--pace",
            "max",
            "--ring-size",
            "16MiB",
        ])
        .args([
            "--ring",
            ring.to_str().unwrap(),
            "--stop-block",
            &last.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .status()
        .expect("run the broadcaster");
    assert!(status.success());
    let out = Command::new(DUMP)
        .args([
            "--ring",
            ring.to_str().unwrap(),
            "--from",
            "earliest",
            "--until-block",
            &last.to_string(),
        ])
        .output()
        .expect("run dump");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Check the lines `dump` printed over all its lives against the reference: every op, in
/// order; a line may repeat the one before it only once per restart of `dump` (the op printed
/// before its cursor was saved), and a line cut short by a kill must be printed whole next.
fn check_dump_log(log: &str, expected: &[String], dump_restarts: usize) {
    let (mut next, mut repeats, mut torn) = (0usize, 0usize, 0usize);
    // run.sh logs stderr too: dump's own notes ("dump: ...") are not output.
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with("dump: ")).collect();
    for (i, line) in lines.iter().enumerate() {
        if next < expected.len() && *line == expected[next] {
            next += 1;
        } else if next > 0 && *line == expected[next - 1] {
            repeats += 1;
        } else if next < expected.len() && expected[next].starts_with(line) {
            torn += 1;
        } else {
            let want = expected.get(next).map_or("(end)", String::as_str);
            panic!("dump line {}: {line:.120}\nexpected: {want:.120}", i + 1);
        }
    }
    assert_eq!(
        next,
        expected.len(),
        "dump stopped after {next} of {} ops",
        expected.len()
    );
    assert!(
        repeats <= dump_restarts && torn <= dump_restarts,
        "{repeats} repeats and {torn} torn lines for {dump_restarts} restarts of dump"
    );
}

fn procfile(dir: &Path, source: &Path, pace: &str) -> String {
    let ring = dir.join("swarm.ring");
    let ring = ring.to_str().unwrap();
    format!(
        "broadcaster: {} --replay {} --pace {pace} --ring-size 16MiB --ring {ring}\n\
         dump: {} --ring {ring} --from earliest --cursor {}\n\
         new-posts: {} --ring {ring} --from earliest --cursor {}\n\
         vote-stats: {} --ring {ring} --interval 1\n",
        broadcaster().display(),
        source.display(),
        bin("dump"),
        dir.join("dump.cursor").display(),
        bin("new-posts"),
        dir.join("new-posts.cursor").display(),
        bin("vote-stats"),
    )
}

const NAMES: [&str; 4] = ["broadcaster", "dump", "new-posts", "vote-stats"];

pub(crate) fn pid(swarm: &Swarm, name: &str) -> Option<i32> {
    let state = swarm.state(name);
    (state.get("state").map(String::as_str) == Some("running"))
        .then(|| state.get("pid")?.parse().ok())
        .flatten()
        .filter(|&p| is_running(p))
}

/// Wait until `dump` has printed the reference's last line.
fn wait_for_the_end(swarm: &Swarm, expected: &[String], limit: Duration) {
    let last = expected.last().expect("a non-empty source");
    let deadline = Instant::now() + limit;
    while !swarm.read("logs/dump.log").lines().any(|l| l == last) {
        assert!(
            Instant::now() < deadline,
            "dump did not reach the end of the source"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn env() -> [(&'static str, &'static str); 5] {
    [
        ("RESTART_DELAY", "0.3"),
        ("MIN_UPTIME", "0.2"),
        ("MAX_RESTARTS", "1000"),
        ("KILL_TIMEOUT", "2"),
        ("RUST_LOG", "warn"),
    ]
}

#[test]
fn each_killed_process_comes_back_while_the_others_keep_running_without_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.jsonl");
    let last = long_source(&source, 4_000);
    let expected = reference(tmp.path(), &source, last);
    let mut swarm = Swarm::new(&procfile(tmp.path(), &source, "2ms"), &env());
    swarm.start();
    let mut pids: Vec<i32> = NAMES
        .iter()
        .map(|n| wait_for(n, || pid(&swarm, n)))
        .collect();
    // The bots first, then the broadcaster, each while the others run.
    for victim in [1, 2, 3, 0] {
        assert!(send_signal(pids[victim], libc::SIGKILL));
        let new = wait_for(&format!("{} to come back", NAMES[victim]), || {
            pid(&swarm, NAMES[victim]).filter(|&p| p != pids[victim])
        });
        for other in (0..NAMES.len()).filter(|&o| o != victim) {
            assert_eq!(
                pid(&swarm, NAMES[other]),
                Some(pids[other]),
                "{} was disturbed",
                NAMES[other]
            );
        }
        pids[victim] = new;
    }
    wait_for_the_end(&swarm, &expected, Duration::from_secs(120));
    check_dump_log(&swarm.read("logs/dump.log"), &expected, 1);
    assert_post_printed_once(&swarm);
    assert!(swarm.stop_with(libc::SIGTERM).success());
}

#[test]
fn chaos_random_sigkills_for_a_minute_lose_and_reorder_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.jsonl");
    // A minute of blocks at 33 ms each: about 110 ops a second, as many as the demo blocks of
    // 2016 gave at 2 ms a block, and all of them fit in the reference's 16 MiB ring.
    let last = long_source(&source, 1_800);
    let expected = reference(tmp.path(), &source, last);
    let mut swarm = Swarm::new(&procfile(tmp.path(), &source, "33ms"), &env());
    swarm.start();
    for name in NAMES {
        wait_for(name, || pid(&swarm, name));
    }
    let (mut kills, mut dump_kills) = (0, 0);
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(fastrand::u64(500..3000)));
        let name = NAMES[fastrand::usize(..NAMES.len())];
        if let Some(p) = pid(&swarm, name)
            && send_signal(p, libc::SIGKILL)
        {
            kills += 1;
            dump_kills += usize::from(name == "dump");
        }
    }
    assert!(kills >= 15, "only {kills} kills in a minute");
    wait_for_the_end(&swarm, &expected, Duration::from_secs(180));
    check_dump_log(&swarm.read("logs/dump.log"), &expected, dump_kills);
    assert_post_printed_once(&swarm);
    assert!(swarm.stop_with(libc::SIGTERM).success());
}

/// The source repeats the demo's post in every copy of the demo blocks (as edits of it):
/// new-posts printed it once over all its lives (its cursor, and the posts it recalls from the
/// ring up to its cursor after a restart).
fn assert_post_printed_once(swarm: &Swarm) {
    let url = "https://steemit.com/@jeniya/gfdgfdgfhb";
    wait_for("new-posts to print the post", || {
        swarm.read("logs/new-posts.log").contains(url).then_some(())
    });
    let log = swarm.read("logs/new-posts.log");
    assert_eq!(log.lines().filter(|l| *l == url).count(), 1, "{log}");
}

/// The demo as shipped: the repository's Procfile (only its pace raised) under run.sh, with the
/// binaries of this build and the bundled data.
fn demo_swarm() -> Swarm {
    // (fails with a clear message if the broadcaster of this build is missing)
    broadcaster();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let procfile = std::fs::read_to_string(repo.join("Procfile")).expect("the Procfile");
    assert!(procfile.contains("--pace 50ms"), "{procfile}");
    let procfile = procfile.replace("--pace 50ms", "--pace 10ms");
    let mut swarm = Swarm::new(&procfile, &[("RUST_LOG", "info")]);
    // run.sh puts CARGO_TARGET_DIR/release first on PATH: there, the binaries of this build.
    let target = swarm.path("target");
    std::fs::create_dir(&target).unwrap();
    let bins = Path::new(DUMP).parent().unwrap();
    std::os::unix::fs::symlink(bins, target.join("release")).unwrap();
    swarm.set_env("CARGO_TARGET_DIR", target.to_str().unwrap());
    std::os::unix::fs::symlink(repo.join("data"), swarm.path("data")).unwrap();
    swarm
}

/// What the demo holds: its blocks, votes, and the URL of each top-level post.
fn demo_contents() -> (u64, u64, Vec<String>) {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/demo-blocks.jsonl");
    let (mut blocks, mut votes, mut urls) = (0, 0, Vec::new());
    for line in std::fs::read_to_string(demo).unwrap().lines() {
        let block: Value = serde_json::from_str(line).unwrap();
        blocks += 1;
        let transactions = block["transactions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for op in transactions
            .iter()
            .flat_map(|t| t["operations"].as_array().unwrap())
        {
            // Either encoding: ["vote", {..}] or {"type": "vote_operation", "value": {..}}.
            let (kind, body) = match op {
                Value::Array(pair) => (pair[0].as_str().unwrap().to_string(), &pair[1]),
                _ => (
                    op["type"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches("_operation")
                        .to_string(),
                    &op["value"],
                ),
            };
            votes += u64::from(kind == "vote");
            if kind == "comment" && body["parent_author"] == "" {
                let url = format!(
                    "https://steemit.com/@{}/{}",
                    body["author"].as_str().unwrap(),
                    body["permlink"].as_str().unwrap()
                );
                if !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
    }
    (blocks, votes, urls)
}

/// Sums of blocks and votes over vote-stats' interval reports ("last 10s: N blocks ..., votes V").
fn vote_stats_sums(log: &str) -> (u64, u64) {
    let number_after = |line: &str, key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    log.lines()
        .filter(|l| l.starts_with("last "))
        .map(|l| (number_after(l, ": "), number_after(l, ", votes ")))
        .fold((0, 0), |(b, v), (nb, nv)| (b + nb, v + nv))
}

pub(crate) fn wait_long(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_demo_shows_its_posts_and_counts_every_block_each_time_it_is_started() {
    let (blocks, votes, urls) = demo_contents();
    assert!(!urls.is_empty(), "the demo has posts");
    let mut swarm = demo_swarm();
    for run in 1..=2u64 {
        swarm.start();
        for name in ["broadcaster", "new-posts", "vote-stats"] {
            wait_for(name, || pid(&swarm, name));
        }
        // new-posts killed while the replay goes on comes back where it was.
        for _ in 0..3 {
            let old = wait_for("new-posts", || pid(&swarm, "new-posts"));
            assert!(send_signal(old, libc::SIGKILL));
            wait_for("new-posts to come back", || {
                pid(&swarm, "new-posts").filter(|&p| p != old)
            });
            std::thread::sleep(Duration::from_millis(fastrand::u64(100..1500)));
        }
        wait_long("every post printed", || {
            let log = swarm.read("logs/new-posts.log");
            urls.iter()
                .all(|u| log.lines().filter(|l| l == u).count() as u64 >= run)
        });
        wait_long("vote-stats to count every block", || {
            vote_stats_sums(&swarm.read("logs/vote-stats.log")).0 >= run * blocks
        });
        wait_long("the broadcaster to say the replay is finished", || {
            swarm
                .read("logs/broadcaster.log")
                .matches("replay finished")
                .count() as u64
                == run
        });
        assert_eq!(
            vote_stats_sums(&swarm.read("logs/vote-stats.log")),
            (run * blocks, run * votes),
            "run {run}: every block and vote counted once per run"
        );
        let log = swarm.read("logs/new-posts.log");
        for url in &urls {
            assert_eq!(
                log.lines().filter(|l| l == url).count() as u64,
                run,
                "run {run}: {url} printed once per run despite the kills:\n{log}"
            );
        }
        assert!(swarm.stop_with(libc::SIGTERM).success());
    }
    let intro = swarm.stderr();
    assert!(intro.contains("run.sh | Demo: "), "{intro}");
    assert!(intro.contains("./run.sh status"), "{intro}");
    assert!(intro.contains("--node https://"), "{intro}");
}
