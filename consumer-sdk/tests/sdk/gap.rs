//! Gap notices: a writer that copies another ring's stream passes on blocks its source lost,
//! and every reader is told exactly once, at the right place, whatever its topics.

use crate::TempRing;
use consumer_sdk::{Cursor, Event, OpMeta, Publisher, RecvError, Start, Subscriber, WriteError};
use std::time::Duration;

/// Everything a subscriber receives until it has nothing new: ops as `(block, topic)`, block
/// ends as `(block, "end")`, reports as errors.
fn drain(sub: &mut Subscriber) -> Vec<Result<(u64, String), RecvError>> {
    let mut out = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(Some(Event::Op(op))) => out.push(Ok((op.block(), op.topic().to_string()))),
            Ok(Some(Event::BlockEnd(end))) => out.push(Ok((end.block, "end".to_string()))),
            Ok(Some(Event::Fork(f))) => out.push(Ok((f.first_block, "fork".to_string()))),
            Ok(None) => return out,
            Err(e) => out.push(Err(e)),
        }
    }
}

/// Blocks 1 and 2, then block 10 after a gap notice for 3..=9, then block 11.
fn ring_with_gap(lost_ops: Option<u64>) -> (TempRing, Publisher) {
    let (ring, mut publisher) = TempRing::create(1 << 16);
    let vote = publisher.topic("vote").unwrap();
    let comment = publisher.topic("comment").unwrap();
    let meta = OpMeta::default();
    for n in [1, 2] {
        publisher.begin_block(n, 100, [0; 20]).unwrap();
        publisher.push(vote, &meta, b"{}").unwrap();
        publisher.commit().unwrap();
    }
    publisher.begin_block(10, 100, [0; 20]).unwrap();
    publisher.gap(3, 9, lost_ops).unwrap();
    publisher.push(comment, &meta, b"{}").unwrap();
    publisher.push(vote, &meta, b"{}").unwrap();
    publisher.commit().unwrap();
    publisher.begin_block(11, 100, [0; 20]).unwrap();
    publisher.push(vote, &meta, b"{}").unwrap();
    publisher.commit().unwrap();
    (ring, publisher)
}

fn gap(from: u64, to: u64, lost_ops: Option<u64>) -> Result<(u64, String), RecvError> {
    Err(RecvError::UpstreamGap {
        from_block: from,
        to_block: to,
        lost_ops,
    })
}

fn ok(block: u64, what: &str) -> Result<(u64, String), RecvError> {
    Ok((block, what.to_string()))
}

#[test]
fn every_reader_gets_the_gap_once_before_the_block_after_it() {
    let (ring, _publisher) = ring_with_gap(Some(42));
    let mut all = Subscriber::open(ring.name())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    assert_eq!(
        drain(&mut all),
        vec![
            ok(1, "vote"),
            ok(1, "end"),
            ok(2, "vote"),
            ok(2, "end"),
            gap(3, 9, Some(42)),
            ok(10, "comment"),
            ok(10, "vote"),
            ok(10, "end"),
            ok(11, "vote"),
            ok(11, "end"),
        ]
    );
    // A topic filter does not hide it: the loss concerns every topic.
    let mut comments = Subscriber::open(ring.name())
        .unwrap()
        .topics(["comment"])
        .start(Start::Earliest)
        .unwrap();
    let got: Vec<_> = drain(&mut comments)
        .into_iter()
        .filter(|r| r.as_ref().is_err() || r.as_ref().is_ok_and(|(_, t)| t != "end"))
        .collect();
    assert_eq!(got, vec![gap(3, 9, Some(42)), ok(10, "comment")]);
    // The message names the range and the count.
    let text = RecvError::UpstreamGap {
        from_block: 3,
        to_block: 9,
        lost_ops: Some(42),
    }
    .to_string();
    assert!(text.contains("3..=9") && text.contains("42 ops"), "{text}");
}

#[test]
fn unknown_counts_and_positioned_readers() {
    let (ring, _publisher) = ring_with_gap(None);
    let start = |s: Start| {
        let mut sub = Subscriber::open(ring.name()).unwrap().start(s).unwrap();
        drain(&mut sub)
    };
    // Starting at the block the gap opens: the reader is told what came before it was lost.
    assert_eq!(start(Start::Block(10))[0], gap(3, 9, None));
    // A cursor inside block 10 has been past the notice already.
    let inside = Cursor {
        block: 10,
        index_in_block: 0,
        trx_index: 0,
        op_index: 0,
        block_id: None,
    };
    assert_eq!(
        start(Start::After(inside)),
        vec![ok(10, "vote"), ok(10, "end"), ok(11, "vote"), ok(11, "end")]
    );
    // A cursor at the end of block 2 has not.
    let before = Cursor {
        block: 2,
        index_in_block: 0,
        trx_index: 0,
        op_index: 0,
        block_id: None,
    };
    assert_eq!(
        start(Start::After(before))[..2],
        [ok(2, "end"), gap(3, 9, None)]
    );
}

#[test]
fn a_reopened_ring_keeps_its_notice_and_an_aborted_one_is_never_seen() {
    let (ring, publisher) = ring_with_gap(Some(7));
    drop(publisher);
    let mut publisher = Publisher::open(ring.name()).unwrap();
    assert_eq!(publisher.last_block(), Some(11));
    publisher.begin_block(20, 100, [0; 20]).unwrap();
    publisher.gap(12, 19, Some(1)).unwrap();
    publisher.abort_block();
    let vote = publisher.topic("vote").unwrap();
    publisher.begin_block(20, 100, [0; 20]).unwrap();
    publisher.push(vote, &OpMeta::default(), b"{}").unwrap();
    publisher.commit().unwrap();
    let mut sub = Subscriber::open(ring.name())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let got = drain(&mut sub);
    let gaps: Vec<_> = got.iter().filter(|r| r.is_err()).cloned().collect();
    assert_eq!(gaps, vec![gap(3, 9, Some(7))]);
    assert_eq!(got.last(), Some(&ok(20, "end")));
}

#[test]
fn misplaced_gap_notices_are_refused_with_a_reason() {
    let (_ring, mut publisher) = TempRing::create(1 << 16);
    let vote = publisher.topic("vote").unwrap();
    assert_eq!(publisher.gap(1, 2, None), Err(WriteError::NoBlock));
    publisher.begin_block(5, 0, [0; 20]).unwrap();
    publisher.commit().unwrap();
    publisher.begin_block(10, 0, [0; 20]).unwrap();
    let refused = |r: Result<(), WriteError>, why: &str| match r {
        Err(e @ WriteError::InvalidGap { .. }) => {
            assert!(e.to_string().contains(why), "{e} does not say {why:?}")
        }
        other => panic!("expected a refusal ({why}), got {other:?}"),
    };
    refused(publisher.gap(7, 6, None), "empty");
    refused(publisher.gap(6, 10, None), "before the open block");
    refused(publisher.gap(5, 9, None), "after the last committed block");
    publisher.gap(6, 9, Some(3)).unwrap();
    refused(publisher.gap(6, 9, Some(3)), "already");
    publisher.push(vote, &OpMeta::default(), b"{}").unwrap();
    publisher.commit().unwrap();
    publisher.begin_block(13, 0, [0; 20]).unwrap();
    publisher.push(vote, &OpMeta::default(), b"{}").unwrap();
    refused(publisher.gap(11, 12, None), "before the block's first op");
}
