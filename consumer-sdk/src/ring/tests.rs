//! Unit tests of the ring algorithm over heap memory.

use super::reader::*;
use super::seek::*;
use super::*;

/// A heap ring with its writer, for driving the protocol in tests.
pub(crate) struct Fixture {
    pub mem: HeapMemory,
    pub cap: u64,
    pub writer: WriterCore,
}

impl Fixture {
    pub fn new(cap: u64) -> Fixture {
        Fixture {
            mem: HeapMemory::new(cap),
            cap,
            writer: WriterCore::fresh(),
        }
    }
    pub fn ring(&self) -> Ring<'_> {
        Ring::new(self.mem.words(), self.cap)
    }
    /// Write block `n` with one op per payload, topics cycling through `topics`.
    pub fn block(&mut self, n: u64, topics: &[&str], payloads: &[Vec<u8>]) {
        let ring = RingMut::new(self.mem.words_mut(), self.cap);
        self.writer.begin(n, n as u32, [n as u8; 20]).unwrap();
        for (i, p) in payloads.iter().enumerate() {
            let t = self.writer.topic(&ring, topics[i % topics.len()]).unwrap();
            let meta = OpMeta {
                trx_index: i as u32,
                op_index: 0,
                trx_id: [1; 20],
                virtual_op: false,
            };
            self.writer.push(&ring, t, &meta, p).unwrap();
        }
        self.writer.commit(&ring).unwrap();
    }
}

fn drain(ring: &Ring<'_>, r: &mut ReaderCore) -> Vec<Result<(u64, Vec<u8>), Polled>> {
    let mut out = Vec::new();
    loop {
        match r.poll(ring).unwrap() {
            Polled::Empty => return out,
            Polled::Op { header, .. } => out.push(Ok((header.block, r.payload().to_vec()))),
            Polled::BlockEnd(_) => {}
            lag => out.push(Err(lag)),
        }
    }
}

#[test]
fn reader_sees_committed_blocks_only() {
    let mut f = Fixture::new(4096);
    let mut r = ReaderCore::new(&f.ring(), 0, None).unwrap();
    assert!(drain(&f.ring(), &mut r).is_empty());
    f.block(10, &["vote"], &[b"{\"a\":1}".to_vec(), b"{}".to_vec()]);
    let ring = RingMut::new(f.mem.words_mut(), f.cap);
    f.writer.begin(11, 0, [0; 20]).unwrap();
    f.writer
        .push(&ring, 0, &OpMeta::default(), b"partial")
        .unwrap();
    let got = drain(&f.ring(), &mut r);
    assert_eq!(
        got,
        vec![Ok((10, b"{\"a\":1}".to_vec())), Ok((10, b"{}".to_vec()))]
    );
    f.writer.abort();
    f.block(11, &["vote"], &[b"x".to_vec()]);
    assert_eq!(drain(&f.ring(), &mut r), vec![Ok((11, b"x".to_vec()))]);
}

#[test]
fn lapped_reader_gets_exact_loss_then_oldest_whole_block() {
    let mut f = Fixture::new(4096);
    let mut r = ReaderCore::new(&f.ring(), 0, None).unwrap();
    for n in 1..=100 {
        f.block(n, &["vote", "comment"], &[vec![7; 100], vec![8; 30]]);
    }
    let got = drain(&f.ring(), &mut r);
    let Err(Polled::Lagged {
        lost,
        lost_matching,
    }) = got[0]
    else {
        panic!("{got:?}")
    };
    assert_eq!(lost, lost_matching);
    let delivered = got.len() as u64 - 1;
    assert_eq!(lost + delivered, 200);
    let first_block = got[1].as_ref().unwrap().0;
    assert_eq!(lost, (first_block - 1) * 2);
}

#[test]
fn filtered_reader_counts_only_its_topics() {
    let mut f = Fixture::new(4096);
    let mut r = ReaderCore::new(&f.ring(), 0, Some(&["comment".to_string()])).unwrap();
    for n in 1..=100 {
        f.block(
            n,
            &["vote", "vote", "comment"],
            &[vec![7; 50], vec![7; 50], vec![8; 30]],
        );
    }
    let got = drain(&f.ring(), &mut r);
    let Err(Polled::Lagged {
        lost,
        lost_matching,
    }) = got[0]
    else {
        panic!("{got:?}")
    };
    let delivered = got.len() as u64 - 1;
    assert_eq!(lost_matching + delivered, 100);
    assert_eq!(lost, lost_matching * 3);
}

#[test]
fn seek_block_finds_sparse_blocks_and_reports_bounds() {
    let mut f = Fixture::new(1 << 16);
    for n in (10..200).step_by(10) {
        f.block(n, &["vote"], &[vec![1; 40]]);
    }
    let ring = f.ring();
    assert_eq!(
        seek_block(&ring, 300, Branch::Newest),
        Ok(Seek::NotYet { last: Some(190) })
    );
    let Ok(Seek::Found(p)) = seek_block(&ring, 55, Branch::Newest) else {
        panic!()
    };
    let mut r = ReaderCore::new(&ring, p, None).unwrap();
    assert_eq!(drain(&ring, &mut r)[0], Ok((60, vec![1; 40])));
    for n in 200..2000 {
        f.block(n, &["vote"], &[vec![1; 40]]);
    }
    let ring = f.ring();
    let Ok(Seek::Gone { earliest }) = seek_block(&ring, 55, Branch::Newest) else {
        panic!()
    };
    let Ok(Seek::Found(p)) = seek_block(&ring, earliest, Branch::Newest) else {
        panic!()
    };
    assert_eq!(p, seek_earliest(&ring).unwrap());
    assert!(earliest > 1500 && earliest < 1990, "{earliest}");
    let Ok(Seek::Found(p)) = seek_block(&ring, earliest + 10, Branch::Newest) else {
        panic!()
    };
    let mut r = ReaderCore::new(&ring, p, None).unwrap();
    let got = drain(&ring, &mut r);
    assert_eq!(got.len() as u64, 1999 - (earliest + 10) + 1);
    assert_eq!(got[0], Ok((earliest + 10, vec![1; 40])));
}

#[test]
fn recover_resumes_after_the_last_committed_block() {
    let mut f = Fixture::new(4096);
    for n in 1..=50 {
        f.block(n, &["vote", "comment"], &[vec![1; 60], vec![2; 10]]);
    }
    let ring = RingMut::new(f.mem.words_mut(), f.cap);
    f.writer.begin(51, 0, [0; 20]).unwrap();
    f.writer
        .push(&ring, 0, &OpMeta::default(), &[9; 500])
        .unwrap();
    // The writer dies here; a new one takes over.
    let mut w = WriterCore::recover(&f.ring()).unwrap();
    assert_eq!(w.last_block(), Some(50));
    assert_eq!(w.next_seq(), 100);
    assert_eq!(w.topics(), ["vote", "comment"]);
    w.begin(51, 0, [0; 20]).unwrap();
    w.push(&ring, 1, &OpMeta::default(), b"c").unwrap();
    w.commit(&ring).unwrap();
    let mut r = ReaderCore::new(&ring, seek_earliest(&ring).unwrap(), None).unwrap();
    let got = drain(&ring, &mut r);
    assert_eq!(got.last(), Some(&Ok((51, b"c".to_vec()))));
    assert!(got.iter().all(|g| g.is_ok()));
}

#[test]
fn a_payload_longer_than_the_writer_writes_is_corrupt_not_copied() {
    let mut f = Fixture::new(4096);
    f.block(1, &["vote"], &[vec![1; 40]]);
    let mut r = ReaderCore::new(&f.ring(), 0, None).unwrap();
    // The op's length word (the low half of its first word), well inside the region.
    let max = max_payload(f.cap) as u32;
    let first = f.ring().data_word(0);
    let w = f.mem.words_mut().get(first);
    let mut bytes = w.load(Ordering::Relaxed).to_ne_bytes();
    bytes[..4].copy_from_slice(&(max + 8).to_ne_bytes());
    w.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    match r.poll(&f.ring()) {
        Err(ReadFault::Corrupt { pos: 0, reason }) => {
            assert!(reason.contains("maximum"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(r.copy_capacity() < max as usize, "nothing was copied");
}

#[test]
fn a_fork_notice_that_does_not_add_up_is_corrupt() {
    // Blocks 1 and 2, then a fork orphaning block 2: the notice is the record after block 2's
    // end. Each bad edit of it is reported, naming the notice.
    let notice_at = |f: &Fixture| {
        let mut pos = 0;
        loop {
            let h = f.ring().load_record_header(pos);
            if Kind::from_u8(h.kind) == Some(Kind::Fork) {
                return pos;
            }
            pos += f.ring().skip_len(pos, &h).unwrap();
        }
    };
    // (word of the record to change, new value, what the reader says)
    let payload = RECORD_HEADER_LEN / 8;
    let edits: [(usize, Option<u64>, &str); 4] = [
        (
            payload,
            Some(1),
            "fork notice for blocks 1..=2 (36 bytes) in block 2",
        ),
        (payload + 1, Some(1), "fork notice for blocks 2..=1"),
        (
            payload + 1,
            Some(3),
            "fork notice for blocks 2..=3 (36 bytes)",
        ),
        // The length word: a payload of no whole number of ids.
        (0, None, "fork notice with a payload of the wrong size"),
    ];
    for (word, value, says) in edits {
        let mut f = Fixture::new(4096);
        f.block(1, &["vote"], &[b"{}".to_vec()]);
        f.block(2, &["vote"], &[b"{}".to_vec()]);
        let ring = RingMut::new(f.mem.words_mut(), f.cap);
        f.writer
            .begin_fork(&ring, 2, 2, [0x22; 20], [1; 20], &[[2; 20]])
            .unwrap();
        f.writer.commit(&ring).unwrap();
        let at = notice_at(&f);
        let w = f.mem.words_mut().get(f.ring().data_word(at) + word);
        let new = value.unwrap_or_else(|| {
            let mut bytes = w.load(Ordering::Relaxed).to_ne_bytes();
            bytes[..4].copy_from_slice(&8u32.to_ne_bytes());
            u64::from_ne_bytes(bytes)
        });
        w.store(new, Ordering::Relaxed);
        let mut r = ReaderCore::new(&f.ring(), 0, None).unwrap();
        let fault = loop {
            match r.poll(&f.ring()) {
                Ok(Polled::Empty) => panic!("{says}: read through"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        match fault {
            ReadFault::Corrupt { pos, reason } => {
                assert_eq!(pos, at, "{says}");
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A writer taking over the ring refuses it too.
        let refused = WriterCore::recover(&f.ring()).err().unwrap_or_default();
        assert!(
            refused.contains(&format!("record at {at}: fork notice")),
            "{says}: {refused}"
        );
    }
}

#[test]
fn records_longer_than_a_run_are_copied_whole_and_only_when_wanted() {
    let big = crate::layout::READ_BATCH_BYTES as usize * 5 / 2;
    let mut f = Fixture::new(1 << 20);
    let small: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 300]).collect();
    let mut payloads = small.clone();
    payloads.push(vec![0xab; big]);
    payloads.extend(small.iter().cloned());
    // `comment` for the big op only: topics cycle per op, so give it its own block.
    f.block(1, &["vote"], &small);
    f.block(2, &["comment"], &[vec![0xab; big]]);
    f.block(3, &["vote"], &small);
    let mut all = ReaderCore::new(&f.ring(), 0, None).unwrap();
    let got: Vec<Vec<u8>> = drain(&f.ring(), &mut all)
        .into_iter()
        .map(|r| r.unwrap().1)
        .collect();
    assert_eq!(got, payloads);
    // A reader of votes only never copies the comment whole.
    let mut votes = ReaderCore::new(&f.ring(), 0, Some(&["vote".to_string()])).unwrap();
    let got = drain(&f.ring(), &mut votes);
    assert_eq!(got.len(), 80);
    assert!(
        votes.copy_capacity() <= crate::layout::READ_BATCH_BYTES as usize,
        "{} bytes copied at once",
        votes.copy_capacity()
    );
    assert!(all.copy_capacity() >= big);
}
