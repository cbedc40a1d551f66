//! Loom models of the protocol: `RUSTFLAGS="--cfg loom" cargo test -p consumer-sdk --lib
//! --release loom`. Loom explores thread interleavings and the weak-memory outcomes the
//! orderings allow, so a missing Release/Acquire shows up as a torn or partial read here.

use super::*;
use loom::sync::Arc;
use loom::thread;

/// The payload of op `seq`: `len` bytes that differ from those of every other op.
fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (seq * 31 + i) as u8 ^ 0x5A)
        .collect()
}

/// The writer publishes `blocks` blocks of `per_block` ops (payload = the op's sequence);
/// the reader returns what it received until it has passed the last block end.
/// The first `before` blocks are written before the reader and writer threads run (to
/// keep the model small); the rest concurrently with the reader.
fn run(cap: u64, blocks: u64, before: u64, per_block: u64, len: usize) -> Vec<Polled> {
    let mem = Arc::new(HeapMemory::new(cap));
    let ring = Ring::new(mem.words(), cap);
    let mut w = WriterCore::fresh();
    let topic = w
        .topic(&RingMut::new(mem.words_mut(), cap), "vote")
        .unwrap();
    let mut seq = 0;
    let mut write = move |ring: &RingMut<'_>, b: u64| {
        w.begin(b, 0, [0; 20]).unwrap();
        for _ in 0..per_block {
            w.push(ring, topic, &OpMeta::default(), &payload(seq, len))
                .unwrap();
            seq += 1;
        }
        w.commit(ring).unwrap();
    };
    for b in 1..=before {
        write(&RingMut::new(mem.words_mut(), cap), b);
    }
    // Positioned before the writer goes on, as a subscriber is before it reads.
    let mut r = ReaderCore::new(&ring, 0, None).unwrap();
    let wmem = mem.clone();
    let writer = thread::spawn(move || {
        let ring = RingMut::new(wmem.words_mut(), cap);
        for b in before + 1..=blocks {
            write(&ring, b);
        }
    });
    let mut got = Vec::new();
    loop {
        match r.poll(&ring).unwrap() {
            Polled::Empty => thread::yield_now(),
            Polled::Op { header, .. } => {
                assert_eq!(
                    r.payload(),
                    payload(header.seq, len),
                    "torn or stale payload for seq {}",
                    header.seq
                );
                got.push(Polled::Op {
                    header,
                    index_in_block: 0,
                });
            }
            end @ Polled::BlockEnd(h) => {
                got.push(end);
                if h.block == blocks {
                    break;
                }
            }
            lag => got.push(lag),
        }
    }
    writer.join().unwrap();
    got
}

/// Exploration budget of one model, in seconds. Each model completes in a few seconds with
/// three preemptions (about 11 s for all three, measured on a shared, busy 2-core machine),
/// so three models stay well inside CI's time even on a slower runner.
/// `RING_LOOM_BUDGET_SECS` changes it.
const BUDGET_SECS: u64 = 60;

/// Explore `f` exhaustively: every interleaving with at most three preemptions (a writer
/// preempted between any of its stores while the reader runs, and vice versa;
/// `LOOM_MAX_PREEMPTIONS` changes it) and every value the memory model lets each load
/// return.
/// A model that has not finished within its budget fails: a silently partial exploration
/// would pass as proof. Loom's own duration and permutation caps end the exploration quietly,
/// so they are switched off and the budget is checked at the start of every iteration.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let budget = std::env::var("RING_LOOM_BUDGET_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BUDGET_SECS);
    model_within(std::time::Duration::from_secs(budget), f);
}

fn model_within(budget: std::time::Duration, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(3));
    builder.max_duration = None;
    builder.max_permutations = None;
    builder.max_branches = 50_000;
    let start = std::time::Instant::now();
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = iterations.clone();
    builder.check(move || {
        // Relaxed: a plain counter of this model's iterations, read on this thread.
        let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(
            start.elapsed() < budget,
            "loom model ran out of its {budget:?} budget after {i} iterations: the \
             exploration is incomplete (raise RING_LOOM_BUDGET_SECS or shrink the model)"
        );
        f();
    });
    eprintln!(
        "loom model explored completely: {} iterations in {:.1?}",
        iterations.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed()
    );
}

#[test]
#[should_panic(expected = "ran out of its")]
fn loom_a_model_out_of_budget_fails() {
    model_within(std::time::Duration::ZERO, || {
        let _ = run(4096, 1, 0, 1, 8);
    });
}

#[test]
fn loom_whole_blocks_in_order() {
    model(|| {
        let got = run(4096, 2, 0, 1, 16);
        let seqs: Vec<u64> = got
            .iter()
            .filter_map(|p| match p {
                Polled::Op { header, .. } => Some(header.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, [0, 1]);
        // Block 1's op comes before its end, which comes before block 2's op.
        assert!(matches!(got[1], Polled::BlockEnd(h) if h.block == 1 && h.topic_seq == 1));
    });
}

#[test]
fn loom_lapped_reader_never_sees_torn_payloads_and_counts_exactly() {
    model(|| {
        // A 1024-byte ring. Block 1 is one op with a 16-byte payload (bytes 0..80) and its
        // end (80..144); blocks 2 to 6 fill the ring exactly. The op of block 7 (the same
        // shape) is pushed while the reader copies block 1: it lands on block 1's op, word
        // for word (its commit, which needs no more proof here, is left out to keep the
        // model small enough to explore completely). The reader must either deliver block
        // 1's payload intact or report the lap, and the first op after a lap must be exactly
        // the one the report says.
        let cap = 1024;
        let mem = Arc::new(HeapMemory::new(cap));
        let mut w = WriterCore::fresh();
        let ring = RingMut::new(mem.words_mut(), cap);
        let topic = w.topic(&ring, "vote").unwrap();
        let sizes = [16, 48, 48, 48, 48, 48, 16];
        let mut write = move |ring: &RingMut<'_>, b: u64, commit: bool| {
            w.begin(b, 0, [0; 20]).unwrap();
            let len = sizes[b as usize - 1];
            w.push(ring, topic, &OpMeta::default(), &payload(b - 1, len))
                .unwrap();
            if commit {
                w.commit(ring).unwrap();
            }
            w.pos
        };
        for b in 1..=6 {
            write(&ring, b, true);
        }
        assert_eq!(ring.tail(), 1024);
        let ring = Ring::new(mem.words(), cap);
        let mut r = ReaderCore::new(&ring, 0, None).unwrap();
        let wmem = mem.clone();
        let writer = thread::spawn(move || write(&RingMut::new(wmem.words_mut(), cap), 7, false));
        let mut expected = 0;
        loop {
            match r.poll(&ring).unwrap() {
                Polled::Op { header, .. } => {
                    assert_eq!(header.seq, expected, "op after {expected} accounted for");
                    let len = sizes[header.seq as usize];
                    assert_eq!(r.payload(), payload(header.seq, len), "torn payload");
                    break;
                }
                Polled::Lagged {
                    lost,
                    lost_matching,
                } => {
                    assert_eq!((expected, lost_matching), (0, lost), "one lap, exact");
                    assert!(lost >= 1);
                    expected = lost;
                }
                Polled::BlockEnd(_) => unreachable!("an op comes first"),
                Polled::Gap { .. } | Polled::Fork { .. } => {
                    unreachable!("this writer writes no gap or fork notice")
                }
                Polled::Empty => thread::yield_now(),
            }
        }
        assert_eq!(writer.join().unwrap(), 1024 + 80);
    });
}

#[test]
fn loom_filtered_reader_counts_exactly_while_a_commit_runs() {
    model(|| {
        // Block 1 has an op of `b`, block 2 one of `a`; block 3, committed while a reader
        // filtered on `b` positions itself at the tail, has one of `b`. The reader counts
        // `b` from block 2 on by records and takes the rest from `b`'s counter: whatever
        // tail it finds and whatever counter value it loads, its count of `b` records
        // before its position must be the truth there.
        let cap = 4096;
        let mem = Arc::new(HeapMemory::new(cap));
        let mut w = WriterCore::fresh();
        let ring = RingMut::new(mem.words_mut(), cap);
        let (a, b) = (w.topic(&ring, "a").unwrap(), w.topic(&ring, "b").unwrap());
        for (n, t) in [(1, b), (2, a)] {
            w.begin(n, 0, [0; 20]).unwrap();
            w.push(&ring, t, &OpMeta::default(), &payload(n, 8))
                .unwrap();
            w.commit(&ring).unwrap();
        }
        let end_of_2 = w.pos;
        let wmem = mem.clone();
        let writer = thread::spawn(move || {
            let ring = RingMut::new(wmem.words_mut(), cap);
            w.begin(3, 0, [0; 20]).unwrap();
            w.push(&ring, b, &OpMeta::default(), &payload(3, 8))
                .unwrap();
            w.commit(&ring).unwrap();
        });
        let ring = Ring::new(mem.words(), cap);
        let pos = seek_latest(&ring);
        let r = ReaderCore::new(&ring, pos, Some(&["b".to_string()])).unwrap();
        let counted = r.filter.as_ref().unwrap().expected[usize::from(b)];
        let truth = if pos == end_of_2 { 1 } else { 2 };
        assert_eq!(counted, truth, "records of b before position {pos}");
        writer.join().unwrap();
    });
}

/// SYNC sleepers: a reader that goes to sleep is always seen by the writer's check after the
/// commit it waits for, so no wake-up is lost. The reader reads the notify word, polls (the
/// tail), registers, and sleeps only if the notify word still holds what it read (the compare
/// `FUTEX_WAIT` makes in the kernel); the writer commits (the tail), bumps the notify word and
/// checks for sleepers.
#[test]
fn loom_a_reader_going_to_sleep_is_seen_by_the_commit_it_waits_for() {
    use crate::sleepers::{self, MIN_WORDS, Slot};
    use crate::sync::AtomicU64;
    const NOTIFY: usize = MIN_WORDS;
    const TAIL: usize = MIN_WORDS + 1;
    model(|| {
        let words: Arc<Vec<AtomicU64>> =
            Arc::new((0..MIN_WORDS + 2).map(|_| AtomicU64::new(0)).collect());
        let w = Arc::clone(&words);
        let writer = thread::spawn(move || {
            w[TAIL].store(1, Ordering::Release);
            let n = w[NOTIFY].load(Ordering::Relaxed);
            w[NOTIFY].store(n + 1, Ordering::Release);
            sleepers::anyone_sleeps(&w)
        });
        let seen = words[NOTIFY].load(Ordering::Acquire);
        let asleep = words[TAIL].load(Ordering::Acquire) == 0 && {
            sleepers::set(&words, Slot::Bit(0), true);
            // Relaxed: the kernel's compare, ordered by the fence in `set`.
            words[NOTIFY].load(Ordering::Relaxed) == seen
        };
        let woken = writer.join().unwrap();
        assert!(
            !asleep || woken,
            "a reader slept through the commit it waited for"
        );
    });
}
