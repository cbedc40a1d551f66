//! Faults: SIGKILL of either bridge at any moment, a server restart, NATS unreachable at
//! start, the stream deleted under the bridges. The far ring never has a gap or a duplicate.

use crate::support::*;
use crate::{need_server, runtime, stream_records};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Write `blocks` into the source ring from a thread, one every `pace`; the number of the
/// last block written is kept in the returned counter.
fn writer(
    mut source: Source,
    blocks: Vec<ModelBlock>,
    pace: Duration,
) -> (std::thread::JoinHandle<Source>, Arc<AtomicU64>) {
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let handle = std::thread::spawn(move || {
        for b in &blocks {
            source.write(b);
            // Relaxed: a progress counter for the test's pacing only.
            w.store(b.number, Ordering::Relaxed);
            std::thread::sleep(pace);
        }
        source
    });
    (handle, written)
}

#[test]
fn random_sigkills_and_a_server_restart_lose_and_repeat_nothing() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    let (src, far) = (dir.path().join("src.ring"), dir.path().join("far.ring"));
    let source = Source::create(&src, 16 << 20);
    let blocks: Vec<_> = (1..=900).map(|n| model_block(3, n, 8, 400)).collect();
    let last = blocks.last().unwrap().number;

    let url = server.url();
    let mut sender = Proc::new(
        RING_TO_NATS,
        &[
            "--ring",
            src.to_str().unwrap(),
            "--nats",
            &url,
            "--ack-timeout",
            "2s",
        ],
        dir.path().join("ring-to-nats.log"),
    );
    let mut receiver = Proc::new(
        NATS_TO_RING,
        &[
            "--ring",
            far.to_str().unwrap(),
            "--nats",
            &url,
            "--heartbeat",
            "1s",
        ],
        dir.path().join("nats-to-ring.log"),
    );
    // NATS is not there yet: both bridges say so and keep trying.
    sender.start();
    receiver.start();
    let (handle, written) = writer(source, blocks.clone(), Duration::from_millis(8));
    let logs = Proc::logs_of(&[&sender, &receiver]);
    wait_for(
        "both bridges to report NATS unreachable",
        Duration::from_secs(20),
        || {
            sender.log_text().contains("NATS unreachable")
                && receiver.log_text().contains("NATS unreachable")
        },
    );
    server.start();

    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut restarted_server = false;
    let mut kills = 0;
    // Relaxed: see `writer`.
    while written.load(Ordering::Relaxed) < last {
        std::thread::sleep(Duration::from_millis(rng.u64(200..900)));
        if !restarted_server && written.load(Ordering::Relaxed) > last / 2 {
            server.kill();
            std::thread::sleep(Duration::from_millis(300));
            server.start();
            restarted_server = true;
            continue;
        }
        let which = if rng.bool() {
            &mut sender
        } else {
            &mut receiver
        };
        which.kill9();
        kills += 1;
        if rng.bool() {
            std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
        }
        which.start();
    }
    let _source = handle.join().unwrap();
    assert!(
        restarted_server && kills >= 3,
        "too few faults: {kills} kills"
    );
    eprintln!("{kills} SIGKILLs and one server restart while {last} blocks were written");
    assert!(
        sender.exited().is_none() && receiver.exited().is_none(),
        "{}",
        logs()
    );

    let got = read_ring(&far, last, Duration::from_secs(40));
    assert_same(&got, &expected(&blocks), &logs);
    // The stream itself holds every op once, in order.
    let rt = runtime();
    let js = server.js(&rt);
    let stream: Vec<Rec> = stream_records(&rt, &js, "STEEM")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_same(&stream, &expected(&blocks), &logs);
    assert!(
        logs().contains("resuming after the stream's last message"),
        "{}",
        logs()
    );
}

#[test]
fn the_stream_deleted_under_the_bridges_is_rebuilt_without_gap_or_duplicate() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    server.start();
    let rt = runtime();
    let js = server.js(&rt);
    let (src, far) = (dir.path().join("src.ring"), dir.path().join("far.ring"));
    let mut source = Source::create(&src, 16 << 20);
    let blocks: Vec<_> = (1..=300).map(|n| model_block(4, n, 6, 200)).collect();
    blocks[..150].iter().for_each(|b| source.write(b));
    let url = server.url();
    let mut sender = Proc::new(
        RING_TO_NATS,
        &[
            "--ring",
            src.to_str().unwrap(),
            "--nats",
            &url,
            "--ack-timeout",
            "2s",
        ],
        dir.path().join("ring-to-nats.log"),
    );
    let mut receiver = Proc::new(
        NATS_TO_RING,
        &[
            "--ring",
            far.to_str().unwrap(),
            "--nats",
            &url,
            "--heartbeat",
            "1s",
        ],
        dir.path().join("nats-to-ring.log"),
    );
    sender.start();
    receiver.start();
    let logs = Proc::logs_of(&[&sender, &receiver]);
    wait_for(
        "the first half in the far ring",
        Duration::from_secs(30),
        || committed(&far) == Some(150),
    );
    rt.block_on(js.delete_stream("STEEM")).unwrap();
    blocks[150..].iter().for_each(|b| source.write(b));
    let got = read_ring(&far, 300, Duration::from_secs(45));
    assert_same(&got, &expected(&blocks), &logs);
    // The stream was made again, from the oldest block of the source ring, and holds it all once.
    let stream: Vec<Rec> = stream_records(&rt, &js, "STEEM")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_same(&stream, &expected(&blocks), &logs);
}
