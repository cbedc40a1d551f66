//! The source ring laps `ring-to-nats`: the stream says exactly what was lost, and the far
//! ring's readers are told before the first block after the loss.

use crate::support::*;
use crate::{need_server, runtime, stream_records};
use std::time::Duration;

#[test]
fn a_lapped_sender_publishes_the_exact_loss_and_far_readers_get_it() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    server.start();
    let (src, far) = (dir.path().join("src.ring"), dir.path().join("far.ring"));
    // A small source ring, so a paused sender is lapped quickly.
    let mut source = Source::create(&src, 64 << 10);
    let blocks: Vec<_> = (1..=500).map(|n| model_block(5, n, 6, 300)).collect();
    blocks[..40].iter().for_each(|b| source.write(b));
    let (mut sender, mut receiver) = bridges(dir.path(), &server.url(), &src, &far);
    sender.start();
    receiver.start();
    let logs = Proc::logs_of(&[&sender, &receiver]);
    wait_for(
        "the first blocks in the far ring",
        Duration::from_secs(30),
        || committed(&far) == Some(40),
    );
    // Freeze the sender (it has published everything so far), lap it, let it go on.
    sender.freeze();
    blocks[40..].iter().for_each(|b| source.write(b));
    sender.signal(libc::SIGCONT);

    let got = read_ring(&far, 500, Duration::from_secs(30));
    let gap_at = got
        .iter()
        .position(|r| matches!(r, Rec::Gap { .. }))
        .unwrap_or_else(|| panic!("no gap notice in the far ring:\n{}", logs()));
    let Rec::Gap { from, to, ops } = got[gap_at].clone() else {
        unreachable!()
    };
    assert_eq!(from, 41, "the loss starts after the last block published");
    assert!(to > from && to < 500, "lost blocks {from}..={to}");
    let lost: u64 = blocks[(from - 1) as usize..to as usize]
        .iter()
        .map(|b| b.ops.len() as u64)
        .sum();
    assert_eq!(ops, Some(lost), "the exact number of ops lost");
    // Before the notice, blocks 1..=40; after it, every block from `to + 1` on.
    let mut want = expected(&blocks[..40]);
    want.push(Rec::Gap { from, to, ops });
    want.extend(expected(&blocks[to as usize..]));
    assert_same(&got, &want, &logs);
    assert!(
        sender.log_text().contains("LAPPED"),
        "{}",
        sender.log_text()
    );

    // The stream carries the same notice.
    let rt = runtime();
    let js = server.js(&rt);
    let stream: Vec<Rec> = stream_records(&rt, &js, "STEEM")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert!(stream.contains(&Rec::Gap { from, to, ops }), "{}", logs());
}
