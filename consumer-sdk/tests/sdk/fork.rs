//! Fork notices: a publisher following the head replaces orphaned blocks with another branch's;
//! every reader is told once, before the new branch, and cursors resume on their own branch.

use crate::TempRing;
use consumer_sdk::{
    Bot, Cursor, CursorFile, Event, EventRef, Fork, Notice, OpMeta, Publisher, RecvError, Start,
    Step, Subscriber, WriteError,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Block `n`'s id on branch `branch` (0: the first).
fn id(n: u64, branch: u8) -> [u8; 20] {
    let mut id = [branch; 20];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id
}

/// What a reader sees, in a form easy to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    /// An op: block, index in block, payload.
    Op(u64, u32, String),
    /// A block end: block and the id's branch byte.
    End(u64, u8),
    /// A fork notice: first orphaned block, the orphaned ids' branch bytes, the shared block's.
    Fork(u64, Vec<u8>, u8),
    Report(RecvError),
}

fn got(ev: Event) -> Got {
    match ev {
        Event::Op(op) => Got::Op(
            op.block(),
            op.index_in_block(),
            String::from_utf8(op.payload().to_vec()).unwrap(),
        ),
        Event::BlockEnd(e) => Got::End(e.block, e.block_id[19]),
        Event::Fork(f) => Got::Fork(
            f.first_block,
            f.orphaned_ids.iter().map(|i| i[19]).collect(),
            f.ancestor_id[19],
        ),
    }
}

fn drain(sub: &mut Subscriber) -> Vec<Got> {
    let mut out = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_millis(20)) {
            Ok(Some(ev)) => out.push(got(ev)),
            Ok(None) => return out,
            Err(e) => out.push(Got::Report(e)),
        }
    }
}

/// Two ops per block, payloads naming block and branch.
fn block(p: &mut Publisher, n: u64, branch: u8, fork: Option<&[[u8; 20]]>) {
    match fork {
        None => p.begin_block(n, n as u32, id(n, branch)).unwrap(),
        Some(orphaned) => p
            .begin_fork(n, n as u32, id(n, branch), id(n - 1, 0), orphaned)
            .unwrap(),
    }
    let vote = p.topic("vote").unwrap();
    let comment = p.topic("comment").unwrap();
    for (i, topic) in [vote, comment].into_iter().enumerate() {
        let body = format!("{n}{}{i}", if branch == 0 { 'a' } else { 'b' });
        p.push(topic, &OpMeta::default(), body.as_bytes()).unwrap();
    }
    p.commit().unwrap();
}

/// Blocks 1..=5, then a fork orphaning 4 and 5, then blocks 4..=6 of the other branch.
fn forked_ring() -> (TempRing, Publisher) {
    let (ring, mut p) = TempRing::create(1 << 16);
    for n in 1..=5 {
        block(&mut p, n, 0, None);
    }
    block(&mut p, 4, 1, Some(&[id(4, 0), id(5, 0)]));
    block(&mut p, 5, 1, None);
    block(&mut p, 6, 1, None);
    (ring, p)
}

fn ops(n: u64, branch: char) -> Vec<Got> {
    vec![
        Got::Op(n, 0, format!("{n}{branch}0")),
        Got::Op(n, 1, format!("{n}{branch}1")),
        Got::End(n, if branch == 'a' { 0 } else { 1 }),
    ]
}

fn blocks(range: std::ops::RangeInclusive<u64>, branch: char) -> Vec<Got> {
    range.flat_map(|n| ops(n, branch)).collect()
}

fn the_fork() -> Got {
    Got::Fork(4, vec![0, 0], 0)
}

fn open(ring: &TempRing, start: Start) -> Subscriber {
    Subscriber::open(ring.name()).unwrap().start(start).unwrap()
}

#[test]
fn every_reader_gets_the_notice_once_between_the_branches() {
    let (ring, _p) = forked_ring();
    let mut expected = blocks(1..=5, 'a');
    expected.push(the_fork());
    expected.extend(blocks(4..=6, 'b'));
    assert_eq!(drain(&mut open(&ring, Start::Earliest)), expected);

    // A topic filter does not hide it.
    let mut votes = Subscriber::open(ring.name())
        .unwrap()
        .topics(["vote"])
        .start(Start::Earliest)
        .unwrap();
    let seen = drain(&mut votes);
    assert_eq!(seen.iter().filter(|g| **g == the_fork()).count(), 1);
    let fork_at = seen.iter().position(|g| *g == the_fork()).unwrap();
    assert_eq!(seen[fork_at - 1], Got::End(5, 0));
    assert_eq!(seen[fork_at + 1], Got::Op(4, 0, "4b0".into()));
}

#[test]
fn op_only_receives_report_the_fork_and_go_on() {
    let (ring, _p) = forked_ring();
    let mut sub = Subscriber::open(ring.name())
        .unwrap()
        .topics(["comment"])
        .start(Start::After(Cursor::after_block(4, Some(id(4, 0)))))
        .unwrap();
    let mut seen = Vec::new();
    loop {
        match sub.try_recv_op() {
            Ok(Some(op)) => seen.push(Ok(String::from_utf8(op.payload().to_vec()).unwrap())),
            Ok(None) => break,
            Err(e) => seen.push(Err(e.to_string())),
        }
    }
    assert_eq!(
        seen,
        [
            Ok("5a1".to_string()),
            Err("fork: blocks 4..=5 were orphaned; the new branch follows from block 4".into()),
            Ok("4b1".into()),
            Ok("5b1".into()),
            Ok("6b1".into()),
        ]
    );
}

#[test]
fn lent_events_carry_the_notice_too() {
    let (ring, _p) = forked_ring();
    let mut sub = open(&ring, Start::Block(5));
    let mut forks = Vec::new();
    while let Some(ev) = sub.try_recv_ref().unwrap() {
        if let EventRef::Fork(f) = ev {
            forks.push(f.to_fork());
        }
    }
    // Block 5 from the start is the new branch's: a reader starting there never read the
    // orphaned blocks and gets no notice.
    assert_eq!(forks, []);
    let mut sub = open(&ring, Start::Earliest);
    while let Some(ev) = sub.try_recv_ref().unwrap() {
        if let EventRef::Fork(f) = ev {
            forks.push(f.to_fork());
        }
    }
    assert_eq!(
        forks,
        [Fork {
            first_block: 4,
            orphaned_ids: vec![id(4, 0), id(5, 0)],
            ancestor_id: id(3, 0),
        }]
    );
    assert_eq!(forks[0].last_block(), 5);
    assert_eq!(
        forks[0].orphaned().collect::<Vec<_>>(),
        [(4, id(4, 0)), (5, id(5, 0))]
    );
}

#[test]
fn a_block_number_seeks_the_newest_branch() {
    let (ring, _p) = forked_ring();
    for n in [4, 5] {
        let expected = blocks(n..=6, 'b');
        assert_eq!(
            drain(&mut open(&ring, Start::Block(n))),
            expected,
            "block {n}"
        );
    }
    let mut expected = blocks(3..=5, 'a');
    expected.push(the_fork());
    expected.extend(blocks(4..=6, 'b'));
    assert_eq!(drain(&mut open(&ring, Start::Block(3))), expected);
    assert!(matches!(
        Subscriber::open(ring.name())
            .unwrap()
            .start(Start::Block(7)),
        Err(consumer_sdk::Error::BlockNotYet {
            block: 7,
            last: Some(6)
        })
    ));
}

#[test]
fn cursors_resume_on_their_own_branch() {
    let (ring, _p) = forked_ring();
    let after = |c: Cursor| drain(&mut open(&ring, Start::After(c)));
    let rest_after_fork = blocks(4..=6, 'b');
    let mut from_orphan_5 = blocks(5..=5, 'a');
    from_orphan_5.push(the_fork());
    from_orphan_5.extend(rest_after_fork.clone());

    // After the whole of orphaned block 4: its branch goes on with 5, then the notice.
    assert_eq!(after(Cursor::after_block(4, Some(id(4, 0)))), from_orphan_5);
    // After the new branch's block 4: straight on with its block 5.
    assert_eq!(
        after(Cursor::after_block(4, Some(id(4, 1)))),
        blocks(5..=6, 'b')
    );
    // A cursor saved before the fork, after block 3, which both branches share: the new
    // branch only (the newest place where the bot's chain ends with that block).
    assert_eq!(
        after(Cursor::after_block(3, Some(id(3, 0)))),
        rest_after_fork
    );
    // The notice's own cursor: just after it.
    let fork_cursor = Fork {
        first_block: 4,
        orphaned_ids: vec![id(4, 0), id(5, 0)],
        ancestor_id: id(3, 0),
    }
    .cursor();
    assert_eq!(fork_cursor, Cursor::after_block(3, Some(id(3, 0))));
    assert_eq!(after(fork_cursor), rest_after_fork);

    // An op's cursor has no id: the oldest copy of its block, so a bot that was in the
    // orphaned block gets the notice; one that was in the new branch's gets its undo again
    // and the block once more, never less.
    let op_cursor = Cursor {
        block: 4,
        index_in_block: 0,
        trx_index: 0,
        op_index: 0,
        block_id: None,
    };
    let mut expected = vec![Got::Op(4, 1, "4a1".into()), Got::End(4, 0)];
    expected.extend(from_orphan_5.clone());
    assert_eq!(after(op_cursor), expected);
    // An id the ring does not hold is treated the same way.
    let unknown = Cursor::after_block(4, Some([9; 20]));
    assert_eq!(after(unknown), from_orphan_5);

    // A cursor in an orphaned block whose number the new branch has not reached yet.
    let (ring, mut p) = TempRing::create(1 << 16);
    for n in 1..=5 {
        block(&mut p, n, 0, None);
    }
    block(&mut p, 4, 1, Some(&[id(4, 0), id(5, 0)]));
    let in_orphan_5 = Cursor {
        block: 5,
        index_in_block: 0,
        trx_index: 0,
        op_index: 0,
        block_id: None,
    };
    let mut expected = vec![Got::Op(5, 1, "5a1".into()), Got::End(5, 0), the_fork()];
    expected.extend(blocks(4..=4, 'b'));
    assert_eq!(drain(&mut open(&ring, Start::After(in_orphan_5))), expected);
}

#[test]
fn the_publisher_refuses_a_fork_that_does_not_name_its_newest_blocks() {
    let (_ring, mut p) = TempRing::create(1 << 16);
    let refused = |r: Result<(), WriteError>, what: &str| {
        let e = r.unwrap_err();
        assert!(
            matches!(e, WriteError::InvalidFork { .. }) && e.to_string().contains(what),
            "{e}"
        );
    };
    refused(
        p.begin_fork(1, 1, id(1, 1), [0; 20], &[id(1, 0)]),
        "no committed block",
    );
    for n in 1..=3 {
        block(&mut p, n, 0, None);
    }
    // Too few ids, too many, none, and one block too early.
    refused(
        p.begin_fork(2, 2, id(2, 1), id(1, 0), &[id(3, 0)]),
        "blocks 2..=3",
    );
    refused(
        p.begin_fork(3, 3, id(3, 1), id(2, 0), &[id(2, 0), id(3, 0)]),
        "blocks 3..=3",
    );
    refused(p.begin_fork(3, 3, id(3, 1), id(2, 0), &[]), "blocks 3..=3");
    refused(
        p.begin_fork(4, 4, id(4, 1), id(3, 0), &[id(4, 0)]),
        "blocks 4..=3",
    );
    // The newest id must be the last committed block's.
    refused(
        p.begin_fork(3, 3, id(3, 1), id(2, 0), &[id(3, 7)]),
        "not the id of the last committed block",
    );
    // Nothing refused was written: the ring still ends with block 3 of the first branch.
    assert_eq!(p.last_block(), Some(3));
    p.begin_fork(3, 3, id(3, 1), id(2, 0), &[id(3, 0)]).unwrap();
    p.abort_block();
    // An aborted fork leaves no trace either.
    assert_eq!(p.last_block_id().map(|(i, _)| i), Some(id(3, 0)));
    block(&mut p, 3, 1, Some(&[id(3, 0)]));
    // After a fork, numbers go on from the new branch's block.
    assert!(matches!(
        p.begin_block(3, 3, id(3, 2)),
        Err(WriteError::BlockNotAfter { block: 3, last: 3 })
    ));
}

#[test]
fn the_publisher_lists_the_ids_of_the_branch_the_ring_ends_with() {
    let (_ring, p) = forked_ring();
    let newest: Vec<(u64, [u8; 20])> = vec![
        (1, id(1, 0)),
        (2, id(2, 0)),
        (3, id(3, 0)),
        (4, id(4, 1)),
        (5, id(5, 1)),
        (6, id(6, 1)),
    ];
    assert_eq!(p.block_ids(1), newest);
    assert_eq!(p.block_ids(5), newest[4..]);
    assert_eq!(p.block_ids(7), []);
}

#[test]
fn a_reopened_publisher_takes_over_a_ring_with_a_fork() {
    let (ring, p) = forked_ring();
    drop(p);
    let mut p = Publisher::open(ring.name()).unwrap();
    assert_eq!(p.last_block(), Some(6));
    assert_eq!(p.last_block_id().map(|(i, _)| i), Some(id(6, 1)));
    block(&mut p, 7, 1, None);
    let seen = drain(&mut open(&ring, Start::Earliest));
    assert_eq!(seen.iter().filter(|g| **g == the_fork()).count(), 1);
    assert_eq!(seen[seen.len() - 3..], ops(7, 'b'));
}

#[test]
fn a_bot_gets_the_fork_as_a_step_and_resumes_after_it() {
    let (ring, _p) = forked_ring();
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("bot.cursor");
    let notices = Arc::new(Mutex::new(Vec::new()));
    let open_bot = |until: u64| {
        let notices = Arc::clone(&notices);
        Bot::builder(ring.name())
            .start(Start::Earliest)
            .cursor_file(&cursor)
            .until_block(until)
            .handle_signals(false)
            .on_notice(move |n| notices.lock().unwrap().push(n.clone()))
            .open()
            .unwrap()
    };
    let mut bot = open_bot(6);
    let mut steps = Vec::new();
    loop {
        match bot.recv_timeout(Duration::from_millis(50)).unwrap() {
            Step::Fork(f) => {
                steps.push(format!("fork {}..={}", f.first_block, f.last_block()));
                // The next receive counts the fork as handled; stop after the op it gives.
                match bot.recv_timeout(Duration::from_millis(50)).unwrap() {
                    Step::Op(op) => assert_eq!(op.payload(), b"4b0"),
                    other => panic!("{other:?} after the fork"),
                }
                break;
            }
            Step::Op(op) => steps.push(format!("{}/{}", op.block(), op.index_in_block())),
            Step::BlockEnd(_) | Step::Idle => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(steps.last().unwrap(), "fork 4..=5");
    assert!(notices.lock().unwrap().contains(&Notice::Fork {
        first_block: 4,
        last_block: 5
    }));
    bot.save().unwrap();
    drop(bot);
    // The saved position is the first op of the new branch's block 4 (the fork was handled).
    let saved = CursorFile::new(&cursor).load().unwrap().unwrap();
    assert_eq!(
        (saved.block, saved.index_in_block, saved.block_id),
        (4, 0, None)
    );
    // Saved at the end of the fork's handling instead: the new branch, without the notice.
    CursorFile::new(&cursor)
        .save(&Cursor::after_block(3, Some(id(3, 0))))
        .unwrap();
    let mut bot = open_bot(6);
    let mut rest = Vec::new();
    while let Some(op) = bot.recv_op().unwrap() {
        rest.push(String::from_utf8(op.payload().to_vec()).unwrap());
    }
    assert_eq!(rest, ["4b0", "4b1", "5b0", "5b1", "6b0", "6b1"]);
    // At a block end the cursor records the block's id: a restart stays on its branch.
    let saved = CursorFile::new(&cursor).load().unwrap().unwrap();
    assert_eq!((saved.block, saved.block_id), (6, Some(id(6, 1))));
}

// ----- any script of blocks and forks

/// A writer's step: a block of `ops` ops on the current branch, or a fork orphaning the
/// newest `depth` blocks (at least one block stays) followed by the new branch's first block.
#[derive(Debug, Clone)]
enum Written {
    Block { ops: u8 },
    Fork { depth: u8, ops: u8 },
}

fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Written>> {
    use proptest::prelude::*;
    prop::collection::vec(
        prop_oneof![
            4 => (0u8..4).prop_map(|ops| Written::Block { ops }),
            1 => (1u8..6, 0u8..4).prop_map(|(depth, ops)| Written::Fork { depth, ops }),
        ],
        1..60,
    )
}

/// What a bot that keeps per-block state holds: the chain's blocks (number, id) and each
/// block's ops. It undoes by block number, as the docs tell bots to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    chain: Vec<(u64, [u8; 20])>,
    ops: std::collections::BTreeMap<u64, Vec<String>>,
}

impl Model {
    /// Applies one event; `strict`: the event must be the very next one the chain allows.
    fn apply(&mut self, ev: &Event, strict: bool) -> Result<(), String> {
        match ev {
            Event::Op(op) => {
                let ops = self.ops.entry(op.block()).or_default();
                let body = String::from_utf8(op.payload().to_vec()).unwrap();
                let at = op.index_in_block() as usize;
                if strict
                    && (at != ops.len()
                        || self.chain.last().map(|c| c.0 + 1) != Some(op.block())
                            && !self.chain.is_empty())
                {
                    return Err(format!("op {}/{at} out of place in {self:?}", op.block()));
                }
                ops.truncate(at);
                ops.push(body);
            }
            Event::BlockEnd(end) => {
                if strict && self.chain.last().is_some_and(|c| c.0 + 1 != end.block) {
                    return Err(format!("block {} after {:?}", end.block, self.chain.last()));
                }
                self.chain.retain(|c| c.0 < end.block);
                self.chain.push((end.block, end.block_id));
                self.ops.entry(end.block).or_default();
            }
            Event::Fork(fork) => {
                let suffix: Vec<[u8; 20]> = self
                    .chain
                    .iter()
                    .filter(|c| c.0 >= fork.first_block)
                    .map(|c| c.1)
                    .collect();
                if strict && suffix != fork.orphaned_ids {
                    return Err(format!("{fork:?} does not name the chain's newest blocks"));
                }
                self.chain.retain(|c| c.0 < fork.first_block);
                self.ops.retain(|&n, _| n < fork.first_block);
            }
        }
        Ok(())
    }
}

/// Writes `steps`; returns the ring and the writer's final chain.
fn write_script(steps: &[Written]) -> (TempRing, Model) {
    write_script_with(steps, 1 << 20, &mut |_, _| {})
}

/// [`write_script`] into a ring of `capacity` bytes, calling `after` after each step with the
/// ring and the step's index.
fn write_script_with(
    steps: &[Written],
    capacity: u64,
    after: &mut dyn FnMut(&TempRing, usize),
) -> (TempRing, Model) {
    let (ring, mut p) = TempRing::create(capacity);
    let vote = p.topic("vote").unwrap();
    let mut truth = Model::default();
    let mut serial = 0u32;
    let mut write =
        |p: &mut Publisher, truth: &mut Model, n: u64, ops: u8, fork: Option<Vec<[u8; 20]>>| {
            serial += 1;
            let mut id = [0u8; 20];
            id[..8].copy_from_slice(&n.to_be_bytes());
            id[8..12].copy_from_slice(&serial.to_be_bytes());
            match &fork {
                None => p.begin_block(n, n as u32, id).unwrap(),
                Some(orphaned) => {
                    let ancestor = truth
                        .chain
                        .iter()
                        .find(|c| c.0 == n - 1)
                        .map(|c| c.1)
                        .unwrap();
                    p.begin_fork(n, n as u32, id, ancestor, orphaned).unwrap();
                    truth.chain.retain(|c| c.0 < n);
                    truth.ops.retain(|&b, _| b < n);
                }
            }
            let bodies: Vec<String> = (0..ops).map(|i| format!("{serial}.{i}")).collect();
            for b in &bodies {
                p.push(vote, &OpMeta::default(), b.as_bytes()).unwrap();
            }
            p.commit().unwrap();
            truth.chain.push((n, id));
            truth.ops.insert(n, bodies);
        };
    for (at, step) in steps.iter().enumerate() {
        if at > 0 {
            after(&ring, at - 1);
        }
        let next = truth.chain.last().map_or(1, |c| c.0 + 1);
        match *step {
            Written::Fork { depth, ops } if truth.chain.len() > 1 => {
                let depth = usize::from(depth).min(truth.chain.len() - 1);
                let first = truth.chain[truth.chain.len() - depth].0;
                let orphaned: Vec<[u8; 20]> = truth.chain[truth.chain.len() - depth..]
                    .iter()
                    .map(|c| c.1)
                    .collect();
                write(&mut p, &mut truth, first, ops, Some(orphaned));
            }
            Written::Block { ops } | Written::Fork { ops, .. } => {
                write(&mut p, &mut truth, next, ops, None)
            }
        }
    }
    (ring, truth)
}

fn events(ring: &TempRing, start: Start) -> Vec<Event> {
    let mut sub = open(ring, start);
    let mut out = Vec::new();
    while let Some(ev) = sub.try_recv().unwrap() {
        out.push(ev);
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 300,
        failure_persistence: None,
        ..Default::default()
    })]

    /// A reader of a small ring that a writer of blocks and forks laps now and then, reading a
    /// few events between the writer's steps: until its first lap every step is allowed by
    /// the chain; after it, whatever it kept is exactly the newest part of the writer's chain.
    #[test]
    fn a_lapped_reader_of_a_forking_ring_ends_on_the_writers_chain(
        steps in steps(),
        reads in proptest::collection::vec(0usize..4, 60),
    ) {
        let mut sub: Option<Subscriber> = None;
        let mut model = Model::default();
        let mut lapped = false;
        let mut failure = None;
        let read = |sub: &mut Subscriber, max: usize, model: &mut Model, lapped: &mut bool| {
            for _ in 0..max {
                match sub.try_recv() {
                    Ok(Some(ev)) => model.apply(&ev, !*lapped)?,
                    Ok(None) => break,
                    Err(RecvError::Lagged { .. }) => {
                        *lapped = true;
                        *model = Model::default();
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok::<(), String>(())
        };
        let (ring, truth) = write_script_with(&steps, 4096, &mut |ring, at| {
            let sub = sub.get_or_insert_with(|| open(ring, Start::Earliest));
            if failure.is_none() {
                failure = read(sub, reads[at % reads.len()], &mut model, &mut lapped).err();
            }
        });
        let mut sub = sub.unwrap_or_else(|| open(&ring, Start::Earliest));
        if failure.is_none() {
            failure = read(&mut sub, usize::MAX, &mut model, &mut lapped).err();
        }
        if let Some(f) = failure {
            return Err(proptest::test_runner::TestCaseError::fail(f));
        }
        let kept = truth.chain.len().saturating_sub(model.chain.len());
        proptest::prop_assert_eq!(&model.chain[..], &truth.chain[kept..], "lapped: {}", lapped);
        for (n, _) in &model.chain {
            proptest::prop_assert_eq!(model.ops.get(n), truth.ops.get(n), "block {}", n);
        }
        if !lapped {
            proptest::prop_assert_eq!(&model, &truth);
        }
    }

    /// Whatever blocks and forks were written: a reader from the start, each step allowed by
    /// the chain, ends with the writer's chain; so does a bot resumed after any block end or
    /// fork notice (exactly: every step allowed), and one resumed after any op's cursor (no id:
    /// it may be given blocks again, never too few).
    #[test]
    fn readers_and_resumed_bots_end_on_the_writers_chain(steps in steps(), pick in 0usize..1000) {
        let (ring, truth) = write_script(&steps);
        let all = events(&ring, Start::Earliest);
        let mut model = Model::default();
        let mut states = Vec::new();
        for ev in &all {
            model.apply(ev, true).map_err(proptest::test_runner::TestCaseError::fail)?;
            states.push(model.clone());
        }
        proptest::prop_assert_eq!(&model, &truth);

        // Resume after the event at `pick` with the cursor a bot saves there.
        let at = pick % all.len();
        let (cursor, strict) = match &all[at] {
            Event::BlockEnd(end) => (Cursor::after_block(end.block, Some(end.block_id)), true),
            Event::Fork(fork) => (fork.cursor(), true),
            Event::Op(op) => (op.cursor(), false),
        };
        let mut resumed = states[at].clone();
        for ev in events(&ring, Start::After(cursor)) {
            resumed.apply(&ev, strict).map_err(proptest::test_runner::TestCaseError::fail)?;
        }
        proptest::prop_assert_eq!(&resumed, &truth, "resumed after {:?}", all[at]);

        // Start at a block number: the newest branch's, every step allowed.
        let last = truth.chain.last().unwrap().0;
        let n = 1 + pick as u64 % last;
        let mut from_block = Model {
            chain: truth.chain.iter().copied().filter(|c| c.0 < n).collect(),
            ops: truth.ops.clone().into_iter().filter(|(b, _)| *b < n).collect(),
        };
        for ev in events(&ring, Start::Block(n)) {
            from_block.apply(&ev, true).map_err(proptest::test_runner::TestCaseError::fail)?;
        }
        proptest::prop_assert_eq!(&from_block, &truth, "from block {}", n);
    }
}
