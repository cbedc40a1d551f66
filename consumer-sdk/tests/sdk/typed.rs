//! Typed ops through a real ring: the chain recorded in the header spells assets, views check
//! topics, `Operation` dispatches.

use crate::TempRing;
use consumer_sdk::ops::{Asset, OpView, Operation, Transfer, ViewError, Vote};
use consumer_sdk::{Chain, Event, OpMeta, Publisher, Start, Subscriber};
use std::os::unix::fs::FileExt;

/// The same Hive transfer in both encodings, a vote, and an op type without a view.
const OPS: [(&str, &str); 4] = [
    (
        "transfer",
        r#"{"from":"alice","to":"bob","amount":{"amount":"10000","precision":3,"nai":"@@000000021"},"memo":""}"#,
    ),
    (
        "transfer",
        r#"{"from":"alice","to":"bob","amount":"0.250 HBD","memo":"x"}"#,
    ),
    (
        "vote",
        r#"{"voter":"carol","author":"alice","permlink":"p","weight":10000}"#,
    ),
    ("custom_binary", r#"{"data":"00"}"#),
];

fn publish(p: &mut Publisher, block: u64) {
    p.begin_block(block, 1_671_112_014, [7; 20]).unwrap();
    for (i, (topic, body)) in OPS.iter().enumerate() {
        let t = p.topic(topic).unwrap();
        let meta = OpMeta {
            trx_index: i as u32,
            ..OpMeta::default()
        };
        p.push(t, &meta, body.as_bytes()).unwrap();
    }
    p.commit().unwrap();
}

/// Records `chain` in the ring's static header (bytes 80..128), as the broadcaster does.
fn record_chain(ring: &TempRing, chain: &Chain) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(ring.path())
        .unwrap();
    file.write_all_at(&chain.to_bytes(), 80).unwrap();
}

fn read_all(ring: &TempRing) -> (Subscriber, Vec<consumer_sdk::Op>) {
    let mut sub = Subscriber::open(ring.name())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let mut ops = Vec::new();
    while let Some(ev) = sub.try_recv().unwrap() {
        if let Event::Op(op) = ev {
            ops.push(op);
        }
    }
    assert_eq!(ops.len(), OPS.len());
    (sub, ops)
}

#[test]
fn assets_are_spelled_in_the_rings_chain() {
    let (ring, mut p) = TempRing::create(1 << 16);
    publish(&mut p, 70_548_020);
    // No chain recorded: a NAI stays a NAI, text keeps its spelling.
    let (sub, ops) = read_all(&ring);
    assert_eq!(sub.chain(), None);
    let t: Transfer = ops[0].view().unwrap();
    assert_eq!(t.amount.to_string(), "10.000 @@000000021");

    for (chain, liquid, debt) in [
        (Chain::HIVE, "10.000 HIVE", "0.250 HBD"),
        (Chain::STEEM, "10.000 STEEM", "0.250 SBD"),
    ] {
        record_chain(&ring, &chain);
        let (sub, ops) = read_all(&ring);
        assert_eq!(sub.chain(), Some(chain));
        assert_eq!(ops[0].chain(), Some(chain));
        let t: Transfer = ops[0].view().unwrap();
        assert_eq!(t.amount.to_string(), liquid);
        let t: Transfer = ops[1].decode().unwrap();
        assert_eq!(t.amount.to_string(), debt);
        let Operation::Transfer(t) = ops[0].operation().unwrap() else {
            panic!("not a transfer")
        };
        assert_eq!(t.amount, liquid.parse::<Asset>().unwrap());
    }
    let on_hive: Asset = "10.000 HIVE".parse().unwrap();
    assert_ne!(on_hive, "10.000 STEEM".parse::<Asset>().unwrap());
}

#[test]
fn views_check_the_topic_and_operation_dispatches() {
    let (ring, mut p) = TempRing::create(1 << 16);
    publish(&mut p, 5);
    record_chain(&ring, &Chain::HIVE);
    let (_, ops) = read_all(&ring);
    let err = ops[2].view::<Transfer>().unwrap_err();
    assert!(matches!(err, ViewError::Topic { expected: "transfer", ref found } if found == "vote"));
    let msg = err.to_string();
    assert!(
        msg.contains("\"vote\"") && msg.contains("\"transfer\""),
        "{msg}"
    );
    let vote: Vote = ops[2].view().unwrap();
    assert_eq!(vote.voter, "carol");
    // Views outlive their op once owned.
    let owned: Vote<'static> = {
        let op = ops[2].clone();
        op.view::<Vote>().unwrap().into_owned()
    };
    assert_eq!(owned, vote);

    let mut seen = Vec::new();
    for op in &ops {
        match op.operation().unwrap() {
            Operation::Transfer(t) => seen.push(format!("transfer {}", t.amount)),
            Operation::Vote(v) => seen.push(format!("vote {}", v.weight)),
            Operation::Other(raw) => seen.push(format!("other {} {}", raw.topic, raw.body)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            "transfer 10.000 HIVE",
            "transfer 0.250 HBD",
            "vote 10000",
            r#"other custom_binary {"data":"00"}"#
        ]
    );
    assert_eq!(ops[0].time().to_string(), "2022-12-15T13:46:54Z");
    assert_eq!(
        std::time::SystemTime::from(ops[0].time()),
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_671_112_014)
    );
}

#[test]
fn topic_filters_from_views_and_typos() {
    let (ring, mut p) = TempRing::create(1 << 16);
    publish(&mut p, 5);
    let mut sub = Subscriber::open(ring.name())
        .unwrap()
        .topics([Vote::TOPIC, "coment", "transfer"])
        .start(Start::Earliest)
        .unwrap();
    assert_eq!(sub.unknown_topics(), ["coment"]);
    let mut topics = Vec::new();
    while let Some(ev) = sub.try_recv().unwrap() {
        if let Event::Op(op) = ev {
            topics.push(op.topic().to_owned());
        }
    }
    assert_eq!(topics, ["transfer", "transfer", "vote"]);
}
