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
    let (mut sender, mut receiver) = bridges(dir.path(), &server.url(), &src, &far);
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

/// Block `n` of branch `branch`: two ops of fixed size, so every block takes the same room.
fn even_block(n: u64, branch: u8) -> ModelBlock {
    let mut b = model_block(11, n, 6, 300);
    b.id[19] = branch;
    b.ops = (0..2)
        .map(|i| ModelOp {
            topic: "custom_json",
            meta: consumer_sdk::OpMeta {
                trx_index: i,
                trx_id: [n as u8; 20],
                op_index: 0,
                virtual_op: false,
            },
            payload: format!(
                r#"{{"block":{n:>12},"branch":{branch},"i":{i},"pad":"{}"}}"#,
                "x".repeat(400)
            )
            .into_bytes(),
        })
        .collect();
    b
}

#[test]
fn a_sender_lapped_before_a_fork_reports_only_the_blocks_lost_off_the_new_branch() {
    // The stream's last block is 40; the fork orphans 50..=60: blocks 41..=49 were lost.
    lapped_before_a_fork(40, 50);
}

#[test]
fn a_sender_lapped_before_a_fork_of_blocks_it_published_keeps_the_stream_in_order() {
    // The stream's last block is 45; the fork orphans 41..=60: every block lost was orphaned,
    // and the notice orphans blocks the stream holds.
    lapped_before_a_fork(45, 41);
}

/// The sender publishes blocks 1..=`published`, is frozen while the source ring gets the old
/// branch through block 60, a fork orphaning `fork..=60` and the new branch until the fork's
/// block is the oldest left, then goes on.
fn lapped_before_a_fork(published: u64, fork: u64) {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    server.start();
    let rt = runtime();
    let js = server.js(&rt);
    let (src, far) = (dir.path().join("src.ring"), dir.path().join("far.ring"));
    let mut source = Source::create(&src, 64 << 10);
    (1..=published).for_each(|n| source.write(&even_block(n, 0)));
    let (mut sender, mut receiver) = bridges(dir.path(), &server.url(), &src, &far);
    sender.start();
    receiver.start();
    let logs = Proc::logs_of(&[&sender, &receiver]);
    wait_for(
        "the first blocks in the far ring",
        Duration::from_secs(30),
        || committed(&far) == Some(published),
    );
    sender.freeze();
    let old: Vec<ModelBlock> = (1..=60).map(|n| even_block(n, 0)).collect();
    old[published as usize..]
        .iter()
        .for_each(|b| source.write(b));
    let orphaned: Vec<[u8; 20]> = old[fork as usize - 1..].iter().map(|b| b.id).collect();
    let mut new = vec![even_block(fork, 1)];
    source.write_fork(&new[0], old[fork as usize - 2].id, &orphaned);
    let oldest = |src: &std::path::Path| {
        let mut sub = consumer_sdk::Subscriber::open(src.to_str().unwrap())
            .unwrap()
            .start(consumer_sdk::Start::Earliest)
            .unwrap();
        loop {
            match sub.try_recv().unwrap() {
                Some(consumer_sdk::Event::BlockEnd(e)) => return (e.block, e.block_id),
                Some(_) => {}
                None => panic!("an empty ring"),
            }
        }
    };
    let mut n = fork + 1;
    while oldest(&src).1[19] != 1 {
        let b = even_block(n, 1);
        source.write(&b);
        new.push(b);
        n += 1;
    }
    // Whether the fork's block itself is the oldest left (equal-sized blocks make it so
    // unless padding at the region's end took two blocks at once).
    let notice_kept = oldest(&src) == (fork, new[0].id);
    assert!(
        notice_kept,
        "the layout of equal blocks keeps the notice in the ring"
    );
    // The ring holds fewer blocks than were written since the fork: the new branch is past the
    // old one's numbers, so the far ring's last block is the new branch's.
    assert!(n > 61, "only up to block {} written", n - 1);
    let last = new.last().unwrap().number;
    sender.signal(libc::SIGCONT);

    // The stream's keys never go back, whatever the lap cut.
    wait_for(
        "the last block in the stream",
        Duration::from_secs(30),
        || {
            stream_records(&rt, &js, "STEEM")
                .last()
                .is_some_and(|(_, r)| matches!(r, Rec::End { block, .. } if *block == last))
        },
    );
    let messages = crate::stream_messages(&rt, &js, "STEEM");
    for pair in messages.windows(2) {
        assert!(
            pair[0].1 <= pair[1].1,
            "the stream's key goes back from {:?} to {:?}\n{}",
            pair[0],
            pair[1],
            logs()
        );
    }
    // The lapped sender met the notice first. Blocks lost off the new branch are reported
    // before it, with no count (the ring's count includes the orphaned blocks' ops); those it
    // orphans are not.
    let notices: Vec<&Rec> = messages
        .iter()
        .map(|m| &m.2)
        .filter(|r| matches!(r, Rec::Gap { .. } | Rec::Fork { .. }))
        .collect();
    let mut want = Vec::new();
    if fork > published + 1 {
        want.push(Rec::Gap {
            from: published + 1,
            to: fork - 1,
            ops: None,
        });
    }
    want.push(Rec::Fork {
        first: fork,
        orphaned: orphaned.clone(),
    });
    assert_eq!(notices, want.iter().collect::<Vec<_>>(), "{}", logs());
    // The far ring ends on the new branch, with every one of its blocks since the lap.
    // The far ring: its blocks, a notice orphaning those of them the fork orphans (if any),
    // then the new branch from the fork on.
    let got = read_ring(&far, last, Duration::from_secs(30));
    let mut want = expected(&old[..published as usize]);
    if fork <= published {
        want.push(Rec::Fork {
            first: fork,
            orphaned: orphaned[..=(published - fork) as usize].to_vec(),
        });
    } else {
        want.push(Rec::Gap {
            from: published + 1,
            to: fork - 1,
            ops: None,
        });
    }
    want.extend(expected(&new));
    assert_same(&got, &want, &logs);
}
