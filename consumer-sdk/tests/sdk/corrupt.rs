//! Files that are not rings, and rings full of hostile bytes.
//!
//! Opening anything that is not a valid ring must give the specific [`Error`] variant with the
//! file's path in its message. Reading a ring whose bytes were overwritten at random must never
//! panic, hang or allocate in proportion to a length read from the file: every receive returns
//! `Ok` or a typed error, and `Publisher::open` returns `Ok` or [`Error::Corrupt`].

use crate::{TempRing, peak_alloc, reset_peak_alloc};
use consumer_sdk::layout::{self, HEADER_LEN, off};
use consumer_sdk::{Cursor, Error, Event, OpMeta, Publisher, RecvError, Start, Subscriber};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

/// Capacity of the rings the hostile-byte tests start from.
const CAP: u64 = 4096;
/// Receives per subscriber on a hostile ring.
const POLLS: usize = 10_000;
/// How long one hostile case may take before it counts as a hang (a generous bound: the work
/// is a few thousand receives on a 4 KiB ring; this only catches loops that never end).
const WATCHDOG: Duration = Duration::from_secs(20);

fn read_word(path: &Path, at: usize) -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|f| f.read_exact_at(&mut b, at as u64))
        .expect("read a header word");
    u64::from_ne_bytes(b)
}

fn write_word(path: &Path, at: usize, value: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.write_all_at(&value.to_ne_bytes(), at as u64))
        .expect("patch the ring file");
}

/// A ring of `cap` bytes holding `blocks` blocks, each with one empty `vote` op: 128 bytes per
/// block, so the layout repeats exactly every `cap / 128` blocks.
fn uniform_ring(cap: u64, blocks: u64) -> TempRing {
    let (ring, mut p) = TempRing::create(cap);
    let vote = p.topic("vote").expect("topic");
    for n in 1..=blocks {
        p.begin_block(n, n as u32, [0; 20]).expect("begin");
        p.push(vote, &OpMeta::default(), b"").expect("push");
        p.commit().expect("commit");
    }
    ring
}

/// A ring that has wrapped many times, with three topics, payloads of many sizes, and a block
/// left half-written by a publisher that died.
fn mixed_ring() -> TempRing {
    let (ring, mut p) = TempRing::create(CAP);
    let topics = ["vote", "comment", "transfer"].map(|t| p.topic(t).expect("topic"));
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for n in 1..=80u64 {
        p.begin_block(n * 3, n as u32, [n as u8; 20])
            .expect("begin");
        for i in 0..n % 4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 300) as usize;
            let meta = OpMeta {
                trx_index: i as u32,
                trx_id: [i as u8; 20],
                op_index: 0,
                virtual_op: i == 2,
            };
            p.push(topics[(x % 3) as usize], &meta, &vec![b'{'; len])
                .expect("push");
        }
        p.commit().expect("commit");
    }
    p.begin_block(10_000, 0, [0; 20]).expect("begin");
    p.push(topics[0], &OpMeta::default(), &[7; 200])
        .expect("push");
    drop(p);
    ring
}

/// Bytes of the two rings hostile cases start from (built once).
fn bases() -> &'static [Vec<u8>; 2] {
    static BASES: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    BASES.get_or_init(|| {
        let read = |r: TempRing| std::fs::read(r.path()).expect("read the ring");
        [read(mixed_ring()), read(uniform_ring(CAP, 100))]
    })
}

// ----- files that are not rings

/// A tempdir with a valid ring's bytes at hand.
struct Scene {
    dir: tempfile::TempDir,
    valid: TempRing,
    bytes: Vec<u8>,
}

impl Scene {
    fn new() -> Scene {
        let valid = mixed_ring();
        let bytes = std::fs::read(valid.path()).expect("read the ring");
        Scene {
            dir: tempfile::tempdir().expect("temporary directory"),
            valid,
            bytes,
        }
    }

    /// The valid ring's bytes, with those at `at` replaced by `value`.
    fn patched(&self, at: usize, value: &[u8]) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        b
    }
}

fn is_not_a_ring(e: &Error) -> bool {
    matches!(e, Error::NotARing { .. })
}

fn is_corrupt(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. })
}

fn is_next_version(e: &Error) -> bool {
    matches!(e, Error::Version { found, expected, .. }
        if *found == layout::VERSION + 1 && *expected == layout::VERSION)
}

/// Which variant each opener must return for one kind of bad file.
struct Expect {
    subscriber: fn(&Error) -> bool,
    publisher: fn(&Error) -> bool,
}

const BOTH_NOT_A_RING: Expect = Expect {
    subscriber: is_not_a_ring,
    publisher: is_not_a_ring,
};
const BOTH_CORRUPT: Expect = Expect {
    subscriber: is_corrupt,
    publisher: is_corrupt,
};

fn check_open_errors(what: &str, path: &Path, expect: &Expect) {
    let name = path.to_str().expect("UTF-8 path");
    let before = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|_| std::fs::read(path));
    let sub = Subscriber::open(name).expect_err(what);
    assert!(
        (expect.subscriber)(&sub),
        "{what}: Subscriber::open gave {sub:?}"
    );
    assert!(
        sub.to_string().contains(name),
        "{what}: {sub} does not name {name}"
    );
    for (opener, result) in [
        ("Publisher::open", Publisher::open(name)),
        (
            "Publisher::open_or_create",
            Publisher::open_or_create(name, &Default::default()),
        ),
    ] {
        let e = result.expect_err(what);
        assert!((expect.publisher)(&e), "{what}: {opener} gave {e:?}");
        assert!(
            e.to_string().contains(name),
            "{what}: {opener}: {e} does not name {name}"
        );
    }
    let after = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|_| std::fs::read(path));
    assert_eq!(
        before.map(Result::ok),
        after.map(Result::ok),
        "{what}: a failed open changed the file"
    );
}

#[test]
fn bad_files_give_specific_errors_naming_the_file() {
    let s = Scene::new();
    let at = |name: &str| s.dir.path().join(name);
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(at(name), bytes).expect("write a test file");
        at(name)
    };

    let missing = at("missing");
    let missing_name = missing.to_str().expect("UTF-8");
    for e in [
        Subscriber::open(missing_name).expect_err("missing"),
        Publisher::open(missing_name).expect_err("missing"),
    ] {
        assert!(
            matches!(e, Error::NotFound { .. }) && e.to_string().contains(missing_name),
            "{e:?}"
        );
    }
    assert!(!missing.exists(), "opening a missing ring created it");

    std::fs::create_dir(at("directory")).expect("mkdir");
    let dir = at("directory");
    let sub = Subscriber::open(dir.to_str().expect("UTF-8")).expect_err("directory");
    assert!(
        is_not_a_ring(&sub) && sub.to_string().contains(dir.to_str().expect("UTF-8")),
        "{sub:?}"
    );
    let publ = Publisher::open(dir.to_str().expect("UTF-8")).expect_err("directory");
    assert!(
        is_not_a_ring(&publ) && publ.to_string().contains(dir.to_str().expect("UTF-8")),
        "{publ:?}"
    );

    check_open_errors("empty", &write("empty", b""), &BOTH_NOT_A_RING);
    check_open_errors(
        "shorter than a header",
        &write("short", &s.bytes[..40]),
        &BOTH_NOT_A_RING,
    );
    check_open_errors(
        "wrong magic",
        &write("magic", &s.patched(0, b"SHVRINX\0")),
        &BOTH_NOT_A_RING,
    );
    check_open_errors("text file", &write("text", &[b'x'; 200]), &BOTH_NOT_A_RING);
    check_open_errors(
        "other byte order",
        &write(
            "endian",
            &s.patched(12, &layout::ENDIAN_TAG.swap_bytes().to_ne_bytes()),
        ),
        &BOTH_NOT_A_RING,
    );
    check_open_errors(
        "foreign layout version",
        &write(
            "version",
            &s.patched(8, &(layout::VERSION + 1).to_ne_bytes()),
        ),
        &Expect {
            subscriber: is_next_version,
            publisher: is_next_version,
        },
    );
    check_open_errors(
        "header length",
        &write("geometry", &s.patched(16, &4096u64.to_ne_bytes())),
        &BOTH_CORRUPT,
    );
    check_open_errors(
        "topic slots",
        &write("slots", &s.patched(32, &255u32.to_ne_bytes())),
        &BOTH_CORRUPT,
    );
    check_open_errors(
        "capacity not a power of two",
        &write("capacity", &s.patched(24, &(CAP + 8).to_ne_bytes())),
        &BOTH_CORRUPT,
    );
    check_open_errors(
        "capacity too small",
        &write("tiny", &s.patched(24, &2048u64.to_ne_bytes())),
        &BOTH_CORRUPT,
    );

    let full = s.bytes.len() as u64;
    let truncated = Expect {
        subscriber: |e| matches!(e, Error::Truncated { len, expected, .. } if len < expected),
        publisher: |e| matches!(e, Error::Truncated { len, expected, .. } if len < expected),
    };
    check_open_errors(
        "cut inside the data region",
        &write("cut-data", &s.bytes[..full as usize - 100]),
        &truncated,
    );
    check_open_errors(
        "cut inside the header",
        &write("cut-header", &s.bytes[..HEADER_LEN / 2]),
        &truncated,
    );
    match Subscriber::open(at("cut-data").to_str().expect("UTF-8")) {
        Err(Error::Truncated { len, expected, .. }) => {
            assert_eq!((len, expected), (full - 100, full))
        }
        other => panic!("{other:?}"),
    }

    let mut long = s.bytes.clone();
    long.extend_from_slice(&[0; 4096]);
    check_open_errors("oversized", &write("long", &long), &BOTH_CORRUPT);

    let symlink = Expect {
        subscriber: |e| matches!(e, Error::Symlink { .. }),
        publisher: |e| matches!(e, Error::Symlink { .. }),
    };
    std::os::unix::fs::symlink(s.valid.path(), at("link")).expect("symlink");
    check_open_errors("symlink to a valid ring", &at("link"), &symlink);
    std::os::unix::fs::symlink(at("nowhere"), at("dangling")).expect("symlink");
    check_open_errors("dangling symlink", &at("dangling"), &symlink);

    // Only a reader: a publisher would take the writer lock on the system's /dev/null.
    let e = Subscriber::open("/dev/null").expect_err("character device");
    assert!(
        is_not_a_ring(&e) && e.to_string().contains("/dev/null"),
        "{e:?}"
    );

    // The valid ring still opens, and none of the above touched it.
    assert_eq!(std::fs::read(s.valid.path()).expect("read"), s.bytes);
    Subscriber::open(s.valid.name())
        .expect("valid ring")
        .start(Start::Earliest)
        .expect("start");
}

#[test]
fn a_second_publisher_is_refused_while_the_first_lives() {
    let (ring, first) = TempRing::create(CAP);
    for second in [
        Publisher::open(ring.name()),
        Publisher::open_or_create(ring.name(), &Default::default()),
    ] {
        match second {
            Err(Error::WriterActive { path, pid }) => {
                assert_eq!(path, ring.path());
                assert_eq!(pid, u64::from(std::process::id()));
            }
            other => panic!("second publisher: {other:?}"),
        }
    }
    let e = Publisher::open(ring.name()).expect_err("writer active");
    assert!(e.to_string().contains(ring.name()), "{e}");
    // Readers are not writers: they open while the publisher lives.
    Subscriber::open(ring.name())
        .expect("reader")
        .start(Start::Latest)
        .expect("start");
    drop(first);
    // Other tests of this process spawn children: between fork and exec a child holds a copy
    // of the lock's descriptor for a moment, so wait (bounded) for it to be released.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let again = loop {
        match Publisher::open(ring.name()) {
            Err(Error::WriterActive { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => break other.expect("the lock died with the first publisher"),
        }
    };
    assert_eq!(again.epoch(), 2);
}

#[test]
fn creation_refuses_existing_files_and_bad_capacities() {
    let (ring, p) = TempRing::create(CAP);
    let mode = std::fs::metadata(ring.path()).expect("stat").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    drop(p);
    let before = std::fs::read(ring.path()).expect("read");
    match Publisher::create(ring.name(), &Default::default()) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, ring.path());
            assert_eq!(source.kind(), ErrorKind::AlreadyExists);
        }
        other => panic!("create over an existing ring: {other:?}"),
    }
    assert_eq!(std::fs::read(ring.path()).expect("read"), before);
    let shared = ring.dir().join("shared.ring");
    let options = consumer_sdk::CreateOptions {
        capacity: CAP,
        mode: 0o644,
    };
    drop(Publisher::create(shared.to_str().expect("UTF-8"), &options).expect("create"));
    let mode = std::fs::metadata(&shared).expect("stat").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o644
    );
    for capacity in [0, 1000, 2048, CAP + 1, layout::MAX_CAPACITY * 2] {
        let path = ring.dir().join(format!("cap{capacity}"));
        let e = Publisher::create(
            path.to_str().expect("UTF-8"),
            &consumer_sdk::CreateOptions {
                capacity,
                mode: 0o600,
            },
        )
        .expect_err("bad capacity");
        assert!(
            matches!(e, Error::InvalidCapacity { capacity: c, .. } if c == capacity),
            "{e:?}"
        );
    }
    for name in ["", "..", ".", "a\0b"] {
        let e = Subscriber::open(name).expect_err("bad name");
        assert!(matches!(e, Error::InvalidName { .. }), "{name:?}: {e:?}");
    }
    let mut left: Vec<String> = std::fs::read_dir(ring.dir())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "shared.ring",
            "shared.ring.wait",
            "test.ring",
            "test.ring.wait"
        ],
        "creation left temporary files behind"
    );
}

// ----- hostile bytes

/// Run `f` on its own thread; fail if it panics or does not finish within [`WATCHDOG`].
fn guarded(f: impl FnOnce() -> Result<(), String> + Send + 'static) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(result) => {
            let _ = worker.join();
            result
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("still running after {WATCHDOG:?}: a hang"))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = worker.join().err().map(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            });
            Err(format!("panicked: {}", panic.unwrap_or_default()))
        }
    }
}

const FILTERS: [Option<&[&str]>; 4] = [
    None,
    Some(&["vote"]),
    Some(&["comment", "transfer"]),
    Some(&["never_used"]),
];

fn starts() -> [Start; 7] {
    [
        Start::Latest,
        Start::Earliest,
        Start::Block(0),
        Start::Block(150),
        Start::Block(u64::MAX),
        Start::After(Cursor {
            block: 200,
            index_in_block: 1,
            trx_index: 0,
            op_index: 0,
            block_id: None,
        }),
        Start::After(Cursor {
            block: u64::MAX,
            index_in_block: u32::MAX,
            trx_index: 0,
            op_index: 0,
            block_id: None,
        }),
    ]
}

/// Receive from `sub` until it runs dry, keeps failing, or [`POLLS`] receives were made.
/// Payloads must fit the ring, and errors about the file must name it.
fn drain(sub: &mut Subscriber, name: &str, cap: u64) -> Result<(), String> {
    let mut failing = 0;
    for _ in 0..POLLS {
        match sub.try_recv() {
            Ok(Some(Event::Op(op))) => {
                failing = 0;
                if op.payload().len() as u64 > cap {
                    return Err(format!(
                        "a {}-byte payload from a {cap}-byte ring",
                        op.payload().len()
                    ));
                }
            }
            Ok(Some(Event::BlockEnd(_) | Event::Fork(_))) => failing = 0,
            Ok(None) => break,
            Err(e @ (RecvError::Corrupt { .. } | RecvError::Overrun { .. }))
                if !e.to_string().contains(name) =>
            {
                return Err(format!("{e} does not name the file"));
            }
            Err(_) => failing += 1,
        }
        if failing >= 16 {
            break;
        }
    }
    let _ = (
        sub.committed_block(),
        sub.producer_status(),
        sub.position(),
        sub.last_block(),
        sub.epoch(),
    );
    Ok(())
}

/// Open, position, read and reopen for writing a ring whose bytes may be anything after the
/// static header.
fn exercise(path: PathBuf, cap: u64) -> Result<(), String> {
    reset_peak_alloc();
    let name = path.to_str().ok_or("path")?;
    let names_file = |e: &Error| match e {
        Error::BlockGone { .. } | Error::BlockNotYet { .. } => true,
        e => e.to_string().contains(name),
    };
    let read_all = || -> Result<(), String> {
        for filter in FILTERS {
            for start in starts() {
                let builder =
                    Subscriber::open(name).map_err(|e| format!("Subscriber::open: {e}"))?;
                let builder = match filter {
                    Some(f) => builder.topics(f.iter().copied()),
                    None => builder,
                };
                let label = format!("{start:?} {filter:?}");
                match builder.start(start) {
                    Ok(mut sub) => {
                        drain(&mut sub, name, cap).map_err(|e| format!("{label}: {e}"))?
                    }
                    Err(e) if names_file(&e) => {}
                    Err(e) => return Err(format!("{label}: {e} does not name the file")),
                }
            }
        }
        Ok(())
    };
    read_all()?;
    match Publisher::open(name) {
        Ok(mut p) => {
            let next = p.last_block().map_or(1, |b| b.saturating_add(1));
            if p.begin_block(next, 0, [0; 20]).is_ok() {
                if let Ok(t) = p.topic("vote") {
                    let _ = p.push(t, &OpMeta::default(), b"{}");
                }
                let _ = p.commit();
            }
            drop(p);
            read_all()?;
        }
        Err(Error::Corrupt { path, .. }) if path == Path::new(name) => {}
        Err(e) => return Err(format!("Publisher::open: {e:?}")),
    }
    let peak = peak_alloc();
    if peak as u64 > 2 * cap + (64 << 10) {
        return Err(format!(
            "a single allocation of {peak} bytes for a {cap}-byte ring"
        ));
    }
    Ok(())
}

/// One overwrite of the ring file.
#[derive(Debug, Clone)]
enum Edit {
    /// Byte at this offset (after the static header) gets this value.
    Byte(usize, u8),
    /// The 8-byte word at this offset (rounded down to a word) gets this value.
    Word(usize, u64),
}

/// Where edits land: a region of the file, then an offset within it. Without `positions`, the
/// tail, tail intent and head words are left alone.
fn offset(positions: bool) -> impl Strategy<Value = usize> {
    let header_words = (64..layout::TOPICS_OFFSET)
        .prop_filter("position words are left alone", move |o| {
            positions || ![off::TAIL_INTENT, off::TAIL, off::HEAD].contains(&(o / 8 * 8))
        });
    prop_oneof![
        3 => header_words,
        1 => layout::TOPICS_OFFSET..layout::INDEX_OFFSET,
        1 => layout::INDEX_OFFSET..HEADER_LEN,
        5 => HEADER_LEN..HEADER_LEN + CAP as usize,
    ]
}

fn interesting_word() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(8),
        Just(63),
        Just(64),
        Just(CAP - 8),
        Just(CAP),
        Just(CAP + 8),
        Just(u64::from(u32::MAX)),
        Just(u64::MAX),
        Just(u64::MAX - 63),
        Just(1 << 63),
        any::<u64>(),
    ]
}

fn edit(positions: bool, words: bool) -> BoxedStrategy<Edit> {
    let byte = (offset(positions), any::<u8>()).prop_map(|(o, v)| Edit::Byte(o, v));
    if words {
        prop_oneof![
            byte,
            (offset(positions), interesting_word()).prop_map(|(o, v)| Edit::Word(o / 8 * 8, v))
        ]
        .boxed()
    } else {
        byte.boxed()
    }
}

fn hostile_case(base: usize, edits: &[Edit]) -> Result<(), TestCaseError> {
    let mut bytes = bases()[base].clone();
    for e in edits {
        match *e {
            Edit::Byte(o, v) => bytes[o] = v,
            Edit::Word(o, v) => bytes[o..o + 8].copy_from_slice(&v.to_ne_bytes()),
        }
    }
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("hostile.ring");
    std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    guarded(move || exercise(path, CAP)).map_err(TestCaseError::fail)
}

/// `shrink`: how hard to look for a smaller failing input; kept low where a failure may be a
/// hang, since every hanging attempt costs a [`WATCHDOG`] period and leaves its thread spinning.
fn hostile_config(cases: u32, shrink: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: shrink,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(hostile_config(400, 256))]

    /// Random bytes at random offsets after the static header: header words, topic table,
    /// block index, record headers and payloads. The tail, tail intent and head words are left
    /// alone here; `hostile_words_anywhere_give_typed_errors` covers them.
    #[test]
    fn hostile_bytes_give_typed_errors(
        base in 0..2usize,
        edits in prop::collection::vec(edit(false, false), 1..12),
    ) {
        hostile_case(base, &edits)?;
    }
}

proptest! {
    #![proptest_config(hostile_config(400, 16))]

    /// Random bytes and whole words with edge values anywhere after the static header,
    /// the tail, tail intent and head words included.
    #[test]
    fn hostile_words_anywhere_give_typed_errors(
        base in 0..2usize,
        edits in prop::collection::vec(edit(true, true), 1..12),
    ) {
        hostile_case(base, &edits)?;
    }

    /// Files of random bytes behind a valid static header, sometimes with plausible
    /// positions so that readers get as far as the records.
    #[test]
    fn random_files_behind_a_valid_header(seed in any::<u64>(), plausible in any::<bool>()) {
        let mut bytes = vec![0u8; HEADER_LEN + CAP as usize];
        bytes[..64].copy_from_slice(&bases()[0][..64]);
        let mut x = seed | 1;
        for chunk in bytes[64..].chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_ne_bytes());
        }
        if plausible {
            let head = (seed >> 8) % (4 * CAP) / 8 * 8;
            let tail = head + (seed >> 24) % CAP / 8 * 8;
            let words = [
                (off::HEAD, head),
                (off::TAIL, tail),
                (off::TAIL_INTENT, tail + 64),
                (off::TOPIC_COUNT, 3),
            ];
            for (word, value) in words {
                bytes[word..word + 8].copy_from_slice(&value.to_ne_bytes());
            }
        }
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("random.ring");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        guarded(move || exercise(path, CAP)).map_err(TestCaseError::fail)?;
    }
}

// ----- minimal reproductions of what the hostile tests found

/// Byte offset in the file of the `field`th word of the record header at data position `pos`
/// (1: global sequence, 2: topic sequence).
fn record_word(pos: u64, field: usize) -> usize {
    HEADER_LEN + (pos % CAP) as usize + 8 * field
}

/// Run `f` guarded, with a short watchdog: these cases take microseconds when they work.
fn quick(what: &str, f: impl FnOnce() -> Result<(), String> + Send + 'static) {
    if let Err(e) = guarded(f) {
        panic!("{what}: {e}");
    }
}

#[test]
fn a_tail_just_past_a_region_boundary_is_an_error_not_a_panic() {
    for tail in [8, 63, CAP + 8] {
        let ring = uniform_ring(CAP, 40);
        write_word(ring.path(), off::TAIL, tail);
        for start in [Start::Latest, Start::Block(1)] {
            let name = ring.name().to_string();
            quick(&format!("tail {tail}, {start:?}"), move || {
                let _ = Subscriber::open(&name)
                    .map_err(|e| e.to_string())?
                    .start(start);
                Ok(())
            });
        }
        let name = ring.name().to_string();
        quick(&format!("tail {tail}, committed_block"), move || {
            let sub = Subscriber::open(&name)
                .map_err(|e| e.to_string())?
                .start(Start::Earliest);
            let _ = sub.map(|s| s.committed_block());
            Ok(())
        });
    }
}

#[test]
fn sequence_numbers_at_u64_max_are_errors_not_panics() {
    for (field, filter) in [(1, None), (2, Some("vote"))] {
        let ring = uniform_ring(CAP, 10);
        write_word(ring.path(), record_word(0, field), u64::MAX);
        let name = ring.name().to_string();
        quick(&format!("reading, record word {field}"), move || {
            let builder = Subscriber::open(&name).map_err(|e| e.to_string())?;
            let builder = match filter {
                Some(t) => builder.topics([t]),
                None => builder,
            };
            let mut sub = builder.start(Start::Earliest).map_err(|e| e.to_string())?;
            for _ in 0..4 {
                let _ = sub.try_recv();
            }
            Ok(())
        });
        let name = ring.name().to_string();
        quick(
            &format!("Publisher::open, record word {field}"),
            move || match Publisher::open(&name) {
                Ok(_) | Err(Error::Corrupt { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
        );
    }
}

#[test]
fn header_counters_at_u64_max_are_errors_not_panics() {
    for word in [off::INDEX_NEXT, off::LAST_BLOCK] {
        let ring = uniform_ring(CAP, 10);
        write_word(ring.path(), word, u64::MAX);
        let name = ring.name().to_string();
        quick(&format!("header word {word}"), move || {
            let mut p = match Publisher::open(&name) {
                Ok(p) => p,
                Err(Error::Corrupt { .. }) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            let vote = p.topic("vote").map_err(|e| e.to_string())?;
            p.begin_block(11, 0, [0; 20]).map_err(|e| e.to_string())?;
            p.push(vote, &OpMeta::default(), b"{}")
                .map_err(|e| e.to_string())?;
            let _ = p.commit();
            Ok(())
        });
    }
}

#[test]
fn huge_topic_counters_are_errors_not_panics() {
    let (ring, mut p) = TempRing::create(CAP);
    let topics = [
        p.topic("vote").expect("topic"),
        p.topic("comment").expect("topic"),
    ];
    let mut sub = Subscriber::open(ring.name())
        .expect("open")
        .topics(["vote", "comment"])
        .start(Start::Earliest)
        .expect("start");
    assert_eq!(sub.try_recv(), Ok(None));
    for n in 1..=100 {
        p.begin_block(n, 0, [0; 20]).expect("begin");
        for t in topics {
            p.push(t, &OpMeta::default(), &[1; 40]).expect("push");
        }
        p.commit().expect("commit");
    }
    drop(p);
    for id in 0..2 {
        write_word(ring.path(), layout::topic_counter(id), (1 << 63) + 1000);
    }
    quick("lapped subscriber", move || {
        let _ = sub.try_recv();
        Ok(())
    });
}

#[test]
fn a_tail_far_beyond_the_records_is_an_error_not_a_hang() {
    let ring = uniform_ring(CAP, 100);
    let tail = read_word(ring.path(), off::TAIL);
    write_word(ring.path(), off::TAIL, tail + (CAP << 40));
    // Refusing the ring at start is the best answer; a subscriber that starts must end in an
    // error, not in a hang or in endless lag reports that lost nothing.
    for filter in [Some("never_used"), None] {
        let name = ring.name().to_string();
        quick("subscriber on a tail far beyond the records", move || {
            let builder = Subscriber::open(&name).map_err(|e| e.to_string())?;
            let builder = match filter {
                Some(t) => builder.topics([t]),
                None => builder,
            };
            let mut sub = match builder.start(Start::Earliest) {
                Err(Error::Corrupt { .. }) => return Ok(()),
                other => other.map_err(|e| e.to_string())?,
            };
            for _ in 0..10 {
                match sub.try_recv() {
                    Err(RecvError::Lagged { lost: 0, .. }) => {
                        return Err("a lag report that lost nothing".into());
                    }
                    Err(_) => return Ok(()),
                    Ok(_) => {}
                }
            }
            Err("ten receives without an error".into())
        });
    }
}

#[test]
fn a_fifo_at_the_ring_path_is_not_a_ring() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let fifo = dir.path().join("fifo.ring");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    let name = fifo.to_str().expect("UTF-8").to_string();
    match Publisher::open(&name) {
        Err(Error::NotARing { .. }) => {}
        other => panic!("Publisher::open on a FIFO: {other:?}"),
    }
    quick(
        "Subscriber::open on a FIFO",
        move || match Subscriber::open(&name) {
            Err(Error::NotARing { .. }) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}
