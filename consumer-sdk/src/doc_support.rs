//! A small ring for the documentation's examples (feature `writer`; not part of the API).

use crate::{Chain, OpMeta, Publisher};
use std::os::unix::fs::FileExt;

/// Ops of every demo block: real op bodies in the encodings nodes send.
const OPS: [(&str, &str); 5] = [
    (
        "vote",
        r#"{"voter":"alice","author":"bob","permlink":"hello-world","weight":10000}"#,
    ),
    (
        "transfer",
        r#"{"from":"alice","to":"bob","amount":{"amount":"1500","precision":3,"nai":"@@000000021"},"memo":"thanks"}"#,
    ),
    (
        "transfer",
        r#"{"from":"carol","to":"bob","amount":"0.250 HBD","memo":""}"#,
    ),
    (
        "custom_json",
        r#"{"required_auths":[],"required_posting_auths":["carol"],"id":"follow","json":"[\"follow\",{\"follower\":\"carol\",\"following\":\"bob\",\"what\":[\"blog\"]}]"}"#,
    ),
    (
        "comment",
        r#"{"parent_author":"","parent_permlink":"hive","author":"bob","permlink":"hello-world","title":"Hello","body":"First post","json_metadata":"{\"tags\":[\"hive\"]}"}"#,
    ),
];

/// Creates a Hive ring at `path` holding blocks 1 to 3, each with the ops above.
pub fn demo_ring(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    demo(path, false)
}

/// Like [`demo_ring`], then a fork orphaning blocks 2 and 3, then the new branch's blocks 2
/// to 4, each with the vote only.
pub fn demo_forked_ring(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    demo(path, true)
}

fn demo(path: &str, fork: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut p = Publisher::create(path, &crate::CreateOptions::default())?;
    // The broadcaster records the chain in the static header; so does this demo.
    std::fs::OpenOptions::new()
        .write(true)
        .open(p.path())?
        .write_all_at(&Chain::HIVE.to_bytes(), 80)?;
    for block in 1..=3u64 {
        p.begin_block(block, 1_700_000_000 + 3 * block as u32, [block as u8; 20])?;
        for (i, (topic, body)) in OPS.iter().enumerate() {
            let t = p.topic(topic)?;
            let meta = OpMeta {
                trx_index: i as u32,
                ..OpMeta::default()
            };
            p.push(t, &meta, body.as_bytes())?;
        }
        p.commit()?;
    }
    if fork {
        let vote = p.topic("vote")?;
        for block in 2..=4u64 {
            let id = [0x40 + block as u8; 20];
            let time = 1_700_000_000 + 3 * block as u32;
            if block == 2 {
                p.begin_fork(block, time, id, [1; 20], &[[2; 20], [3; 20]])?;
            } else {
                p.begin_block(block, time, id)?;
            }
            p.push(vote, &OpMeta::default(), OPS[0].1.as_bytes())?;
            p.commit()?;
        }
    }
    Ok(())
}
