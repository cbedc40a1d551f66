//! A fork in the source ring (a broadcaster following the head): the stream carries the notice
//! and the new branch, the far ring's readers get the same, and both bridges resume across it
//! after a SIGKILL.

use crate::support::*;
use crate::{need_server, runtime, stream_records};
use std::time::Duration;

#[test]
fn a_fork_crosses_the_bridge_and_both_bridges_resume_across_it() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    server.start();
    let rt = runtime();
    let js = server.js(&rt);
    let (src, far) = (dir.path().join("src.ring"), dir.path().join("far.ring"));
    let mut source = Source::create(&src, 16 << 20);
    let old: Vec<_> = (1..=40).map(|n| model_block(7, n, 6, 200)).collect();
    // The new branch forks off after block 37: blocks 38..=50 with other ops and ids.
    let new: Vec<_> = (38..=50)
        .map(|n| {
            let mut b = model_block(8, n, 6, 200);
            b.id = old.get(n as usize - 1).map_or(b.id, |o| o.id);
            b.id[19] ^= 0x5a;
            b
        })
        .collect();
    old.iter().for_each(|b| source.write(b));
    let url = server.url();
    let mut sender = Proc::new(
        RING_TO_NATS,
        &["--ring", src.to_str().unwrap(), "--nats", &url],
        dir.path().join("ring-to-nats.log"),
    );
    let mut receiver = Proc::new(
        NATS_TO_RING,
        &["--ring", far.to_str().unwrap(), "--nats", &url],
        dir.path().join("nats-to-ring.log"),
    );
    sender.start();
    receiver.start();
    let logs = Proc::logs_of(&[&sender, &receiver]);
    wait_for(
        "the old branch in the far ring",
        Duration::from_secs(30),
        || committed(&far) == Some(40),
    );

    // The receiver dies with the old branch's block 40 last; the fork and the new branch
    // through block 45 reach the stream meanwhile.
    receiver.kill9();
    let orphaned: Vec<[u8; 20]> = old[37..].iter().map(|b| b.id).collect();
    source.write_fork(&new[0], old[36].id, &orphaned);
    new[1..8].iter().for_each(|b| source.write(b));
    let end_45 = Rec::End {
        block: 45,
        timestamp: new[7].timestamp,
        id: new[7].id,
        ops: new[7].ops.len() as u64,
    };
    wait_for("block 45 in the stream", Duration::from_secs(30), || {
        stream_records(&rt, &js, "STEEM")
            .last()
            .is_some_and(|(_, r)| *r == end_45)
    });
    // The sender dies too; the receiver, restarted, finds its last block on the old branch
    // and reads on from the notice.
    sender.kill9();
    receiver.start();
    wait_for(
        "the new branch in the far ring",
        Duration::from_secs(30),
        || committed(&far) == Some(45),
    );
    // The sender, restarted after the new branch's block 45, goes on with that branch.
    new[8..].iter().for_each(|b| source.write(b));
    sender.start();

    let mut want = expected(&old);
    want.push(Rec::Fork {
        first: 38,
        orphaned,
    });
    want.extend(expected(&new));
    let got = read_ring(&far, 50, Duration::from_secs(30));
    assert_same(&got, &want, &logs);
    // The stream holds the same, once: the new branch's messages were not taken for repeats
    // of the orphaned ones (their message ids name the branch).
    wait_for("block 50 in the stream", Duration::from_secs(30), || {
        stream_records(&rt, &js, "STEEM").len() == want.len()
    });
    let stream: Vec<Rec> = stream_records(&rt, &js, "STEEM")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_same(&stream, &want, &logs);
}
