//! The messages on the stream: subjects, headers and payloads, both ways.
//!
//! Every message carries a `Block` header (an op and a block end carry their block, a gap
//! notice the block after the gap, a fork notice the first block of the new branch) and, once
//! the stream has carried a fork notice, a `Branch` header: how many fork notices the stream
//! holds up to and including this message. Along the stream the pair (`Branch`, `Block`) never
//! decreases (a fork takes the block numbers back but raises the branch), so a reader can find
//! where to resume by bisecting the stream on it.

use async_nats::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Header: block number (every message).
pub const H_BLOCK: &str = "Block";
/// Header: index of the transaction in the block.
pub const H_TRX_INDEX: &str = "Trx-Index";
/// Header: transaction id, 40 lowercase hex digits.
pub const H_TRX_ID: &str = "Trx-Id";
/// Header: index of the op in its transaction.
pub const H_OP_INDEX: &str = "Op-Index";
/// Header: index of the op in its block, all op types counted.
pub const H_OP_IN_BLOCK: &str = "Op-In-Block";
/// Header: `true` for a virtual op (produced by the chain), `false` otherwise.
pub const H_VIRTUAL: &str = "Virtual";
/// Header: block timestamp, seconds since the Unix epoch (UTC).
pub const H_TIMESTAMP: &str = "Timestamp";
/// Header: fork notices in the stream up to and including this message (absent: 0).
pub const H_BRANCH: &str = "Branch";

/// A message that does not follow the format of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The subject is none of `PREFIX.op.TYPE`, `PREFIX.block`, `PREFIX.gap`, `PREFIX.fork`.
    #[error("subject {subject:?} is not an op, block, gap or fork subject under {prefix:?}")]
    Subject {
        /// The message's subject.
        subject: String,
        /// The stream's prefix.
        prefix: String,
    },
    /// A header is missing or does not parse.
    #[error("{subject}: header {name} missing or malformed ({value:?})")]
    Header {
        /// The message's subject.
        subject: String,
        /// Which header.
        name: &'static str,
        /// What it held, if anything.
        value: Option<String>,
    },
    /// The JSON payload of a block end, gap or fork notice does not parse.
    #[error("{subject}: payload is not a valid {what}: {reason}")]
    Payload {
        /// The message's subject.
        subject: String,
        /// `block end`, `gap notice` or `fork notice`.
        what: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// A subject prefix that NATS cannot carry as a prefix.
    #[error(
        "invalid subject prefix {0:?}: use dot-separated tokens of letters, digits, '_' and '-'"
    )]
    Prefix(String),
}

/// Check a subject prefix: one or more dot-separated tokens of `[A-Za-z0-9_-]`.
pub fn check_prefix(prefix: &str) -> Result<(), WireError> {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if prefix.split('.').all(token_ok) {
        Ok(())
    } else {
        Err(WireError::Prefix(prefix.to_string()))
    }
}

/// One op of the ring: subject `PREFIX.op.TOPIC`, payload the op body exactly as in the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpMsg {
    /// Op type (`vote`, `comment`, ...).
    pub topic: String,
    /// Block number.
    pub block: u64,
    /// Index of the op in its block, all topics counted.
    pub index_in_block: u32,
    /// Index of the transaction in the block.
    pub trx_index: u32,
    /// Transaction id.
    pub trx_id: [u8; 20],
    /// Index of the op in its transaction.
    pub op_index: u32,
    /// Virtual op.
    pub virtual_op: bool,
    /// Block timestamp, seconds since the Unix epoch.
    pub timestamp: u32,
    /// The op body (JSON).
    pub body: Bytes,
}

/// The end of a block: subject `PREFIX.block`, JSON payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEndMsg {
    /// Block number.
    pub block: u64,
    /// Block id, 40 lowercase hex digits.
    pub id: String,
    /// Ops in the block (the op messages before this one with the same block number).
    pub ops: u64,
    /// Block timestamp, seconds since the Unix epoch.
    pub timestamp: u32,
    /// The block whose end came before this one in the stream (`null` for the first).
    pub previous: Option<u64>,
}

/// Blocks the source lost: subject `PREFIX.gap`, JSON payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapMsg {
    /// The last block whose end is in the stream before this notice (`null` if none).
    pub after: Option<u64>,
    /// First block number lost (ops of this block before the notice, if any, are void).
    pub from: u64,
    /// Last block number lost.
    pub to: u64,
    /// The block the stream continues with.
    pub resume: u64,
    /// Ops lost, counting those of a block whose start was published but not its end;
    /// `null` when the source could not count them.
    pub ops_lost: Option<u64>,
}

/// Blocks published before were orphaned (the source ring's fork notice): subject
/// `PREFIX.fork`, JSON payload. The new branch's blocks follow, from `first` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkMsg {
    /// First orphaned block, and the first block of the new branch.
    pub first: u64,
    /// Ids of the orphaned blocks `first..`, oldest first, 40 lowercase hex digits each.
    pub orphaned: Vec<String>,
    /// Id of block `first - 1`, which both branches share.
    pub ancestor: String,
}

impl ForkMsg {
    /// The last orphaned block.
    pub fn last(&self) -> u64 {
        self.first + self.orphaned.len() as u64 - 1
    }
}

/// A message of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// One op.
    Op(OpMsg),
    /// A block is complete.
    BlockEnd(BlockEndMsg),
    /// Blocks were lost.
    Gap(GapMsg),
    /// Blocks were orphaned; another branch follows.
    Fork(ForkMsg),
}

impl Msg {
    /// The `Block` header: the op's or block's number, or the block after a gap.
    pub fn key(&self) -> u64 {
        match self {
            Msg::Op(o) => o.block,
            Msg::BlockEnd(e) => e.block,
            Msg::Gap(g) => g.resume,
            Msg::Fork(f) => f.first,
        }
    }

    /// The subject under `prefix`.
    pub fn subject(&self, prefix: &str) -> String {
        match self {
            Msg::Op(o) => format!("{prefix}.op.{}", o.topic),
            Msg::BlockEnd(_) => format!("{prefix}.block"),
            Msg::Gap(_) => format!("{prefix}.gap"),
            Msg::Fork(_) => format!("{prefix}.fork"),
        }
    }

    /// The `Nats-Msg-Id` by which JetStream drops a republished message of branch `branch`
    /// (see [`H_BRANCH`]): `CHAIN/BLOCK/INDEX_IN_BLOCK` for ops, `CHAIN/BLOCK/end`,
    /// `CHAIN/gap/RESUME` on a stream without forks; after the first fork notice
    /// `CHAIN/BRANCH/BLOCK/...` and `CHAIN/gap/BRANCH/RESUME`, so the new branch's blocks are
    /// not taken for repeats of the orphaned ones; `CHAIN/fork/BRANCH` for the notice itself.
    pub fn msg_id(&self, chain: &str, branch: u64) -> String {
        let on = if branch == 0 {
            chain.to_owned()
        } else {
            format!("{chain}/{branch}")
        };
        match self {
            Msg::Op(o) => format!("{on}/{}/{}", o.block, o.index_in_block),
            Msg::BlockEnd(e) => format!("{on}/{}/end", e.block),
            Msg::Gap(g) if branch == 0 => format!("{chain}/gap/{}", g.resume),
            Msg::Gap(g) => format!("{chain}/gap/{branch}/{}", g.resume),
            Msg::Fork(_) => format!("{chain}/fork/{branch}"),
        }
    }

    /// Headers (without `Nats-Msg-Id`) and payload, for a message of branch `branch`.
    pub fn encode(&self, branch: u64) -> (HeaderMap, Bytes) {
        let mut h = HeaderMap::new();
        h.insert(H_BLOCK, self.key().to_string().as_str());
        if branch > 0 {
            h.insert(H_BRANCH, branch.to_string().as_str());
        }
        let payload = match self {
            Msg::Op(o) => {
                h.insert(H_OP_IN_BLOCK, o.index_in_block.to_string().as_str());
                h.insert(H_TRX_INDEX, o.trx_index.to_string().as_str());
                h.insert(H_TRX_ID, const_hex::encode(o.trx_id).as_str());
                h.insert(H_OP_INDEX, o.op_index.to_string().as_str());
                h.insert(H_VIRTUAL, if o.virtual_op { "true" } else { "false" });
                h.insert(H_TIMESTAMP, o.timestamp.to_string().as_str());
                o.body.clone()
            }
            // Serialising these plain structs cannot fail.
            Msg::BlockEnd(e) => serde_json::to_vec(e).unwrap_or_default().into(),
            Msg::Gap(g) => serde_json::to_vec(g).unwrap_or_default().into(),
            Msg::Fork(f) => serde_json::to_vec(f).unwrap_or_default().into(),
        };
        (h, payload)
    }

    /// Parse a message of the stream whose subjects are under `prefix`.
    pub fn decode(
        prefix: &str,
        subject: &str,
        headers: &HeaderMap,
        payload: Bytes,
    ) -> Result<Msg, WireError> {
        let rest = subject
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(|| WireError::Subject {
                subject: subject.to_string(),
                prefix: prefix.to_string(),
            })?;
        let header = |name: &'static str| -> Result<&str, WireError> {
            headers
                .get(name)
                .map(|v| v.as_str())
                .ok_or_else(|| WireError::Header {
                    subject: subject.to_string(),
                    name,
                    value: None,
                })
        };
        let bad = |name: &'static str, v: &str| WireError::Header {
            subject: subject.to_string(),
            name,
            value: Some(v.to_string()),
        };
        let num = |name: &'static str| -> Result<u64, WireError> {
            let v = header(name)?;
            v.parse().map_err(|_| bad(name, v))
        };
        let num32 = |name: &'static str| -> Result<u32, WireError> {
            let v = header(name)?;
            v.parse().map_err(|_| bad(name, v))
        };
        let json_err = |what: &'static str, e: serde_json::Error| WireError::Payload {
            subject: subject.to_string(),
            what,
            reason: e.to_string(),
        };
        let block = num(H_BLOCK)?;
        let msg = match rest {
            "block" => {
                let e: BlockEndMsg =
                    serde_json::from_slice(&payload).map_err(|e| json_err("block end", e))?;
                if unhex(&e.id).is_none() {
                    return Err(WireError::Payload {
                        subject: subject.to_string(),
                        what: "block end",
                        reason: format!("block id {:?} is not 40 hex digits", e.id),
                    });
                }
                Msg::BlockEnd(e)
            }
            "gap" => {
                let g: GapMsg =
                    serde_json::from_slice(&payload).map_err(|e| json_err("gap notice", e))?;
                if g.from > g.to || g.to >= g.resume {
                    return Err(WireError::Payload {
                        subject: subject.to_string(),
                        what: "gap notice",
                        reason: format!(
                            "blocks {}..={} do not lie before block {}",
                            g.from, g.to, g.resume
                        ),
                    });
                }
                Msg::Gap(g)
            }
            "fork" => {
                let f: ForkMsg =
                    serde_json::from_slice(&payload).map_err(|e| json_err("fork notice", e))?;
                let bad_id = f
                    .orphaned
                    .iter()
                    .chain([&f.ancestor])
                    .find(|id| unhex(id).is_none());
                let reason = if f.orphaned.is_empty() || f.first == 0 {
                    Some("no orphaned block".to_string())
                } else {
                    bad_id.map(|id| format!("block id {id:?} is not 40 hex digits"))
                };
                if let Some(reason) = reason {
                    return Err(WireError::Payload {
                        subject: subject.to_string(),
                        what: "fork notice",
                        reason,
                    });
                }
                if branch_of(headers).map_err(|v| bad(H_BRANCH, &v))? == 0 {
                    return Err(bad(H_BRANCH, "0"));
                }
                Msg::Fork(f)
            }
            _ => {
                let topic = rest.strip_prefix("op.").ok_or_else(|| WireError::Subject {
                    subject: subject.to_string(),
                    prefix: prefix.to_string(),
                })?;
                let virtual_op = match header(H_VIRTUAL)? {
                    "true" => true,
                    "false" => false,
                    v => return Err(bad(H_VIRTUAL, v)),
                };
                let trx_id = header(H_TRX_ID)?;
                Msg::Op(OpMsg {
                    topic: topic.to_string(),
                    block,
                    index_in_block: num32(H_OP_IN_BLOCK)?,
                    trx_index: num32(H_TRX_INDEX)?,
                    trx_id: unhex(trx_id).ok_or_else(|| bad(H_TRX_ID, trx_id))?,
                    op_index: num32(H_OP_INDEX)?,
                    virtual_op,
                    timestamp: num32(H_TIMESTAMP)?,
                    body: payload,
                })
            }
        };
        if msg.key() != block {
            return Err(bad(H_BLOCK, header(H_BLOCK)?));
        }
        Ok(msg)
    }
}

/// The [`H_BRANCH`] header of a message: 0 when absent, `Err` with the text when malformed.
pub fn branch_of(headers: &HeaderMap) -> Result<u64, String> {
    match headers.get(H_BRANCH) {
        None => Ok(0),
        Some(v) => v.as_str().parse().map_err(|_| v.as_str().to_owned()),
    }
}

/// The 20 bytes of 40 hex digits.
pub fn unhex(s: &str) -> Option<[u8; 20]> {
    // Exactly the digits: the decoder would also take a `0x` prefix.
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    const_hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> Msg {
        Msg::Op(OpMsg {
            topic: "comment".into(),
            block: 1_000_001,
            index_in_block: 3,
            trx_index: 1,
            trx_id: [0xab; 20],
            op_index: 2,
            virtual_op: true,
            timestamp: 1_461_900_000,
            body: Bytes::from_static(br#"{"author":"a","permlink":"p"}"#),
        })
    }

    #[test]
    fn ids_are_exactly_40_hex_digits() {
        let id = "00f4a3c0ffee00000000000000000000000000ab";
        let bytes = unhex(id).unwrap();
        assert_eq!((bytes[1], bytes[19]), (0xf4, 0xab));
        assert_eq!(const_hex::encode(bytes), id);
        assert_eq!(unhex(&id.to_uppercase()), Some(bytes));
        // A sign is not a digit (`u8::from_str_radix` would take "+f").
        for bad in [
            &id[..38],
            "+f4a3c0ffee00000000000000000000000000000ab",
            "0x00f4a3c0ffee0000000000000000000000000000",
        ] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
        assert_eq!(unhex(&format!("+f{}", &id[2..])), None);
    }

    #[test]
    fn every_kind_round_trips() {
        let msgs = [
            op(),
            Msg::BlockEnd(BlockEndMsg {
                block: 7,
                id: const_hex::encode([1; 20]),
                ops: 12,
                timestamp: 99,
                previous: Some(5),
            }),
            Msg::Gap(GapMsg {
                after: None,
                from: 8,
                to: 20,
                resume: 21,
                ops_lost: Some(300),
            }),
        ];
        for m in msgs {
            let (h, p) = m.encode(0);
            assert_eq!(branch_of(&h), Ok(0));
            let subject = m.subject("hive.main");
            assert_eq!(Msg::decode("hive.main", &subject, &h, p), Ok(m.clone()));
            let (h, p) = m.encode(3);
            assert_eq!(branch_of(&h), Ok(3));
            assert_eq!(Msg::decode("hive.main", &subject, &h, p), Ok(m));
        }
        let fork = Msg::Fork(ForkMsg {
            first: 6,
            orphaned: vec![const_hex::encode([6; 20]), const_hex::encode([7; 20])],
            ancestor: const_hex::encode([5; 20]),
        });
        let (h, p) = fork.encode(2);
        assert_eq!(
            Msg::decode("steem", "steem.fork", &h, p.clone()),
            Ok(fork.clone())
        );
        assert_eq!(fork.key(), 6);
        // A fork notice always raises the branch.
        let (h0, _) = fork.encode(0);
        let e = Msg::decode("steem", "steem.fork", &h0, p).unwrap_err();
        assert!(e.to_string().contains("Branch"), "{e}");
        assert_eq!(op().msg_id("steem", 0), "steem/1000001/3");
        assert_eq!(op().msg_id("steem", 2), "steem/2/1000001/3");
        assert_eq!(fork.msg_id("steem", 2), "steem/fork/2");
        assert_eq!(op().subject("steem"), "steem.op.comment");
    }

    #[test]
    fn malformed_messages_name_what_is_wrong() {
        let (h, p) = op().encode(0);
        let e = Msg::decode("steem", "other.op.vote", &h, p.clone()).unwrap_err();
        assert!(matches!(e, WireError::Subject { .. }), "{e}");
        let mut missing = h.clone();
        missing.insert(H_OP_INDEX, "x");
        let e = Msg::decode("steem", "steem.op.comment", &missing, p.clone()).unwrap_err();
        assert!(e.to_string().contains("Op-Index"), "{e}");
        let mut wrong_block = h.clone();
        wrong_block.insert(H_BLOCK, "1");
        let e = Msg::decode("steem", "steem.block", &wrong_block, p.clone()).unwrap_err();
        assert!(e.to_string().contains("block end"), "{e}");
        let gap = br#"{"after":1,"from":5,"to":9,"resume":9,"ops_lost":null}"#;
        let mut gh = HeaderMap::new();
        gh.insert(H_BLOCK, "9");
        let e = Msg::decode("steem", "steem.gap", &gh, Bytes::from_static(gap)).unwrap_err();
        assert!(e.to_string().contains("5..=9"), "{e}");
        let mut fh = HeaderMap::new();
        fh.insert(H_BLOCK, "6");
        fh.insert(H_BRANCH, "1");
        let fork = format!(
            r#"{{"first":6,"orphaned":["{}","xyz"],"ancestor":"{}"}}"#,
            const_hex::encode([6; 20]),
            const_hex::encode([5; 20])
        );
        let e = Msg::decode("steem", "steem.fork", &fh, Bytes::from(fork)).unwrap_err();
        assert!(
            e.to_string().contains("\"xyz\" is not 40 hex digits"),
            "{e}"
        );
        fh.insert(H_BRANCH, "one");
        assert_eq!(branch_of(&fh), Err("one".to_string()));
        assert!(check_prefix("steem").is_ok() && check_prefix("a.b-c").is_ok());
        for bad in ["", "a..b", "a.>", "a b", "*"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
