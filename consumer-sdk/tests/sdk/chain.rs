//! The chain a ring records: set by its publisher, checked on reopen, read by subscribers.

use crate::TempRing;
use consumer_sdk::{Chain, ChainId, CreateOptions, Publisher, Start, Subscriber, WriteError};

#[test]
fn a_ring_records_its_chain_for_publishers_and_subscribers() {
    let (ring, mut publisher) = TempRing::create(1 << 16);
    assert_eq!(publisher.chain(), Ok(None));
    let reader = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Earliest)
        .expect("start");
    assert_eq!(
        reader.chain(),
        None,
        "no chain before the publisher names it"
    );

    publisher.set_chain(&Chain::HIVE).expect("record hive");
    let seen = reader.chain().expect("the subscriber sees the chain");
    assert_eq!(seen.id(), ChainId::HIVE);
    assert_eq!(seen.name(), "hive");
    publisher
        .set_chain(&Chain::HIVE)
        .expect("the same chain again");
    drop(publisher);

    // A later publisher of the same chain is accepted; one of another chain gets a typed error
    // naming both, and the ring keeps its chain.
    let mut again = crate::reopen(ring.name()).expect("reopen");
    again.set_chain(&Chain::HIVE).expect("same chain");
    let err = again.set_chain(&Chain::STEEM).expect_err("another chain");
    assert_eq!(
        err,
        WriteError::OtherChain {
            ring: Chain::HIVE,
            asked: Chain::STEEM
        }
    );
    let text = err.to_string();
    assert!(text.contains("hive") && text.contains("steem"), "{text}");
    assert!(text.contains(&ChainId::HIVE.to_string()), "{text}");
    assert_eq!(reader.chain(), Some(Chain::HIVE));
}

#[test]
fn a_custom_chain_round_trips_through_the_header() {
    let id = ChainId([0x5a; 32]);
    let chain = Chain::new(id, "testnet-1234567x").expect("a 16-byte name");
    let (ring, mut publisher) = TempRing::create(1 << 16);
    publisher.set_chain(&chain).expect("record");
    drop(publisher);
    let reader = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Earliest)
        .expect("start");
    let seen = reader.chain().expect("recorded");
    assert_eq!(seen.id(), id);
    assert_eq!(seen.name(), "testnet-1234567x");
    // Reopened by `open_or_create`, the ring keeps its chain.
    let p = Publisher::open_or_create(ring.name(), &CreateOptions::default()).expect("reopen");
    assert_eq!(p.chain().expect("valid").map(|c| c.id()), Some(id));
}

#[test]
fn a_corrupt_chain_record_is_an_error_not_a_chain() {
    let (ring, publisher) = TempRing::create(1 << 16);
    drop(publisher);
    // A name with bytes after its NUL padding is not a chain name.
    let mut bytes = std::fs::read(ring.path()).expect("read");
    bytes[112..128].copy_from_slice(b"hive\0\0\0\0\0\0\0x\0\0\0\0");
    std::fs::write(ring.path(), &bytes).expect("write");
    let mut p = crate::reopen(ring.name()).expect("reopen");
    assert!(matches!(p.chain(), Err(WriteError::ChainRecord(_))));
    assert!(matches!(
        p.set_chain(&Chain::HIVE),
        Err(WriteError::ChainRecord(_))
    ));
    let reader = Subscriber::open(ring.name())
        .expect("open")
        .start(Start::Earliest)
        .expect("start");
    assert_eq!(reader.chain(), None);
}
