//! Wake-ups: the writer makes its `FUTEX_WAKE` call only when a reader sleeps, never misses a
//! sleeping reader, and forgets readers that died asleep.

use crate::TempRing;
use crate::processes::{child, publish, signal};
use consumer_sdk::{CreateOptions, Event, Publisher, Start, Subscriber, Wait};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn wait_file(ring: &TempRing) -> PathBuf {
    PathBuf::from(format!("{}.wait", ring.name()))
}

/// Poll `cond` every few ms until it holds; fail after `limit`.
fn until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn readers_that_never_sleep_cost_the_writer_no_wake_up_calls() {
    let (ring, mut p) = TempRing::create(1 << 20);
    let mut polling = Subscriber::open(ring.name())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let mut spinning = Subscriber::open(ring.name())
        .unwrap()
        .wait(Wait::BusySpin)
        .start(Start::Earliest)
        .unwrap();
    let mut ops = 0;
    for b in 1..=500 {
        publish(&mut p, b);
        while let Some(ev) = polling.try_recv().unwrap() {
            ops += u64::from(matches!(ev, Event::Op(_)));
        }
        loop {
            if let Event::BlockEnd(e) = spinning.recv().unwrap()
                && e.block == b
            {
                break;
            }
        }
    }
    assert_eq!(ops, (1..=500).map(crate::processes::ops_in).sum::<u64>());
    assert_eq!(p.sleeping_readers(), Some(0));
    assert_eq!(
        p.wakes(),
        0,
        "no reader slept, yet the writer made wake-up calls"
    );
}

#[test]
fn a_sleeping_reader_is_woken_by_every_commit_it_waits_for() {
    let (ring, mut p) = TempRing::create(1 << 20);
    let (tx, rx) = mpsc::channel();
    let name = ring.name().to_string();
    // Naps of an hour: a wake-up the writer failed to make leaves the reader asleep.
    let reader = std::thread::spawn(move || {
        let mut sub = Subscriber::open(&name)
            .unwrap()
            .max_nap(Duration::from_secs(3600))
            .start(Start::Earliest)
            .unwrap();
        loop {
            match sub.recv().unwrap() {
                Event::BlockEnd(e) => {
                    if tx.send(e.block).is_err() {
                        return;
                    }
                }
                Event::Op(_) | Event::Fork(_) => {}
            }
        }
    });
    for b in 1..=100u64 {
        // Commit only once the reader is registered asleep: its only way out is the wake-up.
        until(Duration::from_secs(10), "the reader sleeps", || {
            p.sleeping_readers() == Some(1)
        });
        publish(&mut p, b);
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the sleeping reader was woken");
        assert_eq!(got, b);
    }
    assert_eq!(p.wakes(), 100);
    drop(rx);
    // One more block lets the reader see the closed channel and end.
    until(Duration::from_secs(10), "the reader sleeps", || {
        p.sleeping_readers() == Some(1)
    });
    publish(&mut p, 101);
    reader.join().unwrap();
}

#[test]
fn a_reader_killed_asleep_is_forgotten_within_seconds() {
    let (ring, mut p) = TempRing::create(1 << 20);
    let mut sleeper = child("sleeper", Path::new(ring.name()), &[]);
    until(Duration::from_secs(30), "the child sleeps", || {
        p.sleeping_readers() == Some(1)
    });
    signal(&sleeper, libc::SIGKILL);
    sleeper.wait().unwrap();
    // Its registration outlives it: the writer still wakes...
    assert_eq!(p.sleeping_readers(), Some(1));
    publish(&mut p, 1);
    assert_eq!(p.wakes(), 1);
    // ...until a sweep (about once a second, at a commit or heartbeat) finds its slot free.
    until(
        Duration::from_secs(10),
        "the dead sleeper is forgotten",
        || {
            p.heartbeat();
            p.sleeping_readers() == Some(0)
        },
    );
    publish(&mut p, 2);
    assert_eq!(p.wakes(), 1);
}

#[test]
fn the_wait_file_is_writable_by_whoever_may_read_the_ring() {
    for (mode, wait_mode) in [(0o600, 0o600), (0o640, 0o660), (0o644, 0o666)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let name = path.to_str().unwrap();
        let p = Publisher::create(
            name,
            &CreateOptions {
                capacity: 1 << 16,
                mode,
            },
        )
        .unwrap();
        let meta = std::fs::metadata(format!("{name}.wait")).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            wait_mode,
            "ring {mode:o}"
        );
        assert_eq!(meta.len(), 4096);
        drop(p);
    }
}

#[test]
fn a_damaged_wait_file_is_replaced_a_valid_one_kept_and_a_foreign_one_left_alone() {
    let (ring, p) = TempRing::create(1 << 16);
    let path = wait_file(&ring);
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    drop(p);
    // A valid one survives a restart of the writer (readers asleep on it stay registered).
    let before = ino(&path);
    let p = Publisher::open(ring.name()).unwrap();
    assert_eq!(ino(&path), before);
    drop(p);
    // A damaged one (readers may write it) is replaced, and the writer wakes only sleepers.
    std::fs::write(&path, vec![0xff; 4096]).unwrap();
    let mut p = Publisher::open(ring.name()).unwrap();
    assert_eq!(p.sleeping_readers(), Some(0));
    publish(&mut p, 1);
    assert_eq!(p.wakes(), 0);
    // Anything else at that path is not this code's: left alone, and every commit wakes.
    drop(p);
    std::fs::write(&path, b"someone else's file").unwrap();
    let mut p = Publisher::open(ring.name()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's file");
    assert_eq!(p.sleeping_readers(), None);
    publish(&mut p, 2);
    assert_eq!(p.wakes(), 1);
}

#[test]
fn a_ring_name_cannot_end_in_the_wait_file_suffix() {
    let (ring, _p) = TempRing::create(1 << 16);
    let name = format!("{}.wait", ring.name());
    for e in [
        Publisher::create(&name, &CreateOptions::default()).map(drop),
        Subscriber::open(&name).map(drop),
        "steem.wait".parse::<consumer_sdk::RingPath>().map(drop),
    ] {
        let e = e.expect_err("a .wait name");
        assert!(e.to_string().contains(".wait"), "{e}");
    }
}

#[test]
fn a_reader_without_the_wait_file_still_gets_every_block() {
    let (ring, mut p) = TempRing::create(1 << 16);
    std::fs::remove_file(wait_file(&ring)).unwrap();
    let mut sub = Subscriber::open(ring.name())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let writer = std::thread::spawn(move || {
        for b in 1..=20 {
            std::thread::sleep(Duration::from_millis(5));
            publish(&mut p, b);
        }
        p
    });
    // Unknown to the writer, it wakes up on its own (naps of at most 50 ms).
    let mut ends = 0;
    while ends < 20 {
        match sub.recv_timeout(Duration::from_secs(10)).unwrap() {
            Some(Event::BlockEnd(_)) => ends += 1,
            Some(Event::Op(_) | Event::Fork(_)) => {}
            None => panic!("block {} never came", ends + 1),
        }
    }
    let mut p = writer.join().unwrap();
    // The writer makes the file again at a sweep (about once a second).
    until(Duration::from_secs(10), "the wait file is back", || {
        p.heartbeat();
        wait_file(&ring).exists()
    });
    assert_eq!(p.sleeping_readers(), Some(0));
}
