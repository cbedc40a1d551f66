//! Decoding blocks and virtual operations as nodes return them.
//!
//! [`decode_block`] takes one block object: the `result` of `condenser_api.get_block`, the
//! `block` of `block_api.get_block`, or one element of `block_api.get_block_range`'s `blocks`.
//! Operations may come in either encoding:
//!
//! - legacy (condenser): `["vote", {..}]`
//! - appbase: `{"type": "vote_operation", "value": {..}}`
//!
//! Each operation becomes a [`DecodedOp`] whose `topic` is the type without its `_operation`
//! suffix and whose `body` is the operation's object (legacy: the second element; appbase:
//! `value`) as compact JSON, byte for byte as the node sent it except for the whitespace outside
//! strings: same key order, same number text (u64 beyond `i64::MAX` included), same string
//! escapes. This is guaranteed by construction rather than by re-serialising: simd-json validates
//! the document and a second structural scan records the exact byte span of every value (see the
//! crate's `json` module).
//!
//! [`decode_ops_in_block`] takes the `result` of `condenser_api.get_ops_in_block` (a list) or
//! `account_history_api.get_ops_in_block` (`{"ops": [..]}`), with `virtual_op` as an integer
//! (Steem) or a boolean (Hive).
//!
//! # Block numbers, ids and transaction ids
//!
//! The block number is the first 8 hex digits of `block_id`. Blocks without `block_id` (legacy
//! `get_block` answers) are numbered from `previous` plus one and get an empty `id`. When both
//! are present they must agree. A transaction's id comes from `transaction_ids[i]`, or else from
//! the transaction's own `transaction_id`; blocks from old nodes that report neither (the
//! steem-python sample block is one) get an all-zero id, the value the chains themselves use for
//! "no transaction" in virtual operations, because computing the real id would mean
//! re-serialising the transaction in the chain's binary format.
//!
//! Malformed input is a [`DecodeError`] naming the offending value by its path (for example
//! `block.transactions[3].operations[0]`), never a panic.

use crate::json::{self, JsonError, Kind, Val};
use bytes::Bytes;
use compact_str::CompactString;
use std::fmt::Display;

/// One block, reduced to what the ring carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBlock {
    /// Block number.
    pub number: u64,
    /// `block_id` (40 hex digits), or empty when the node did not send one.
    pub id: String,
    /// `previous`, the id of the preceding block.
    pub previous: String,
    /// Block timestamp, unix seconds (UTC).
    pub timestamp: u32,
    /// The block's operations in order; virtual operations (if fetched) come last.
    pub ops: Vec<DecodedOp>,
}

/// One operation of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedOp {
    /// Index of the transaction in the block (`trx_in_block` for virtual operations, where
    /// `u32::MAX` means "not in a transaction").
    pub trx_index: u32,
    /// Transaction id; all zeros for virtual operations outside transactions.
    pub trx_id: [u8; 20],
    /// Index of the operation in its transaction (`op_in_trx` for virtual operations).
    pub op_index: u32,
    /// Operation type without the `_operation` suffix, e.g. `vote` (held inline, without an
    /// allocation, up to 24 bytes).
    pub topic: CompactString,
    /// True for virtual operations (from `get_ops_in_block`).
    pub virtual_op: bool,
    /// The operation body as compact JSON, as the node sent it: usually a slice of the node's
    /// answer itself (shared, not copied).
    pub body: Bytes,
}

/// Why a block or an operation list could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a JSON document (truncated, invalid syntax, a number beyond u64, ...).
    #[error("{0}")]
    Json(#[from] JsonError),
    /// A required field is absent.
    #[error("{path}: missing")]
    Missing {
        /// Path of the missing value.
        path: String,
    },
    /// A value has the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    Type {
        /// Path of the value.
        path: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A value has the right type but an unusable content (bad hex, bad date, out of range, ...).
    #[error("{path}: {reason}")]
    Invalid {
        /// Path of the value.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Decodes one block object (either op encoding).
pub fn decode_block(json: &[u8]) -> Result<DecodedBlock, DecodeError> {
    json::with_doc(json, |root| block_from(root, "block"))
}

/// Decodes the `result` of `get_ops_in_block` (a list, or `{"ops": [..]}`) for block `block`.
///
/// Every entry must belong to `block`. `virtual_op` is taken as given (an integer other than 0,
/// or `true`, means virtual); callers that asked for `only_virtual` may still filter on it.
pub fn decode_ops_in_block(json: &[u8], block: u64) -> Result<Vec<DecodedOp>, DecodeError> {
    json::with_doc(json, |root| ops_in_block_from(root, block, "result"))
}

/// Strips the appbase `_operation` suffix from an operation type.
pub fn topic_of(op_type: &str) -> &str {
    op_type.strip_suffix("_operation").unwrap_or(op_type)
}

/// The block number encoded in a block id (its first 8 hex digits).
pub fn block_number_of_id(id: &str) -> Option<u64> {
    let prefix = id.get(..8)?;
    u32::from_str_radix(prefix, 16)
        .ok()
        .filter(|_| prefix.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(u64::from)
}

/// Where a value sits in a reply (`result.blocks[3].transactions[0].operations[1]`): built for
/// every transaction and op while decoding, formatted only when an error names it.
#[derive(Clone, Copy)]
pub(crate) enum Loc<'a> {
    /// `parent.key`
    Key(&'a dyn Display, &'a str),
    /// `parent[index]`
    Index(&'a dyn Display, usize),
}

impl Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loc::Key(parent, key) => write!(f, "{parent}.{key}"),
            Loc::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

pub(crate) fn type_error(
    path: impl Display,
    expected: &'static str,
    found: Val<'_>,
) -> DecodeError {
    DecodeError::Type {
        path: path.to_string(),
        expected,
        found: found.kind().name(),
    }
}

pub(crate) fn invalid(path: impl Display, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        path: path.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn field<'d>(
    v: Val<'d>,
    key: &str,
    path: impl Display + Copy,
) -> Result<Val<'d>, DecodeError> {
    if v.kind() != Kind::Object {
        return Err(type_error(path, "an object", v));
    }
    v.get(key).ok_or_else(|| DecodeError::Missing {
        path: format!("{path}.{key}"),
    })
}

pub(crate) fn str_of<'d>(v: Val<'d>, path: impl Display) -> Result<&'d str, DecodeError> {
    v.as_str().ok_or_else(|| type_error(path, "a string", v))
}

pub(crate) fn u64_of(v: Val<'_>, path: impl Display + Copy) -> Result<u64, DecodeError> {
    match v.kind() {
        Kind::Integer => v.as_u64().ok_or_else(|| {
            invalid(
                path,
                format!("{} is negative", String::from_utf8_lossy(v.raw())),
            )
        }),
        _ => Err(type_error(path, "an unsigned integer", v)),
    }
}

fn u32_of(v: Val<'_>, path: impl Display + Copy) -> Result<u32, DecodeError> {
    let n = u64_of(v, path)?;
    u32::try_from(n).map_err(|_| invalid(path, format!("{n} does not fit in 32 bits")))
}

fn hex_id(s: &str, path: impl Display + Copy) -> Result<[u8; 20], DecodeError> {
    let bytes = s.as_bytes();
    if bytes.len() != 40 {
        return Err(invalid(
            path,
            format!(
                "expected 40 hex digits, found {} characters",
                s.chars().count()
            ),
        ));
    }
    let mut out = [0u8; 20];
    const_hex::decode_to_slice(bytes, &mut out)
        .map_err(|_| invalid(path, format!("{s:?} is not hex")))?;
    Ok(out)
}

/// Parses `YYYY-MM-DDTHH:MM:SS` (optionally followed by `Z`) as UTC unix seconds.
pub fn parse_timestamp(s: &str) -> Option<u32> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year < 1970 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    const MONTH_DAYS: [u64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let month_len = MONTH_DAYS[(month - 1) as usize] + u64::from(month == 2 && leap(year));
    if day == 0 || day > month_len {
        return None;
    }
    // Leap days in the years 1970..year: count of leap years up to year-1 minus those up to 1969.
    let leaps_through = |y: u64| y / 4 - y / 100 + y / 400;
    let mut days = (year - 1970) * 365 + leaps_through(year - 1) - leaps_through(1969);
    days += MONTH_DAYS[..(month - 1) as usize].iter().sum::<u64>();
    days += u64::from(month > 2 && leap(year)) + day - 1;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u32::try_from(secs).ok()
}

/// Decodes one operation in either encoding into (topic, compact body).
fn op_from(v: Val<'_>, path: impl Display + Copy) -> Result<(CompactString, Bytes), DecodeError> {
    const EXPECTED: &str = "an operation ([type, body] or {\"type\", \"value\"})";
    let (type_name, body, body_path) = match v.kind() {
        Kind::Array => {
            if v.len() != 2 {
                return Err(invalid(
                    path,
                    format!("a legacy operation has 2 elements, found {}", v.len()),
                ));
            }
            let mut it = v.elements();
            let (Some(name), Some(body)) = (it.next(), it.next()) else {
                return Err(invalid(path, "a legacy operation has 2 elements"));
            };
            (
                str_of(name, Loc::Index(&path, 0))?,
                body,
                Loc::Index(&path, 1),
            )
        }
        Kind::Object => {
            let name = field(v, "type", path)?;
            let body = field(v, "value", path)?;
            (
                str_of(name, Loc::Key(&path, "type"))?,
                body,
                Loc::Key(&path, "value"),
            )
        }
        _ => return Err(type_error(path, EXPECTED, v)),
    };
    let topic = topic_of(type_name);
    if topic.is_empty() {
        return Err(invalid(path, "empty operation type"));
    }
    if body.kind() != Kind::Object {
        return Err(type_error(body_path, "an object", body));
    }
    Ok((CompactString::new(topic), body.shared()))
}

pub(crate) fn block_from(root: Val<'_>, path: &str) -> Result<DecodedBlock, DecodeError> {
    if root.kind() != Kind::Object {
        return Err(type_error(path, "a block object", root));
    }
    let previous_path = format!("{path}.previous");
    let previous = str_of(field(root, "previous", path)?, &previous_path)?;
    hex_id(previous, &previous_path)?;
    let after_previous = block_number_of_id(previous)
        .map(|n| n + 1)
        .ok_or_else(|| invalid(&previous_path, "not a block id"))?;
    let (number, id) = match root.get("block_id") {
        Some(v) => {
            let id_path = format!("{path}.block_id");
            let id = str_of(v, &id_path)?;
            hex_id(id, &id_path)?;
            let number =
                block_number_of_id(id).ok_or_else(|| invalid(&id_path, "not a block id"))?;
            if number != after_previous {
                return Err(invalid(
                    &id_path,
                    format!(
                        "names block {number} but previous names block {}",
                        after_previous - 1
                    ),
                ));
            }
            (number, id.to_owned())
        }
        None => (after_previous, String::new()),
    };
    let ts_path = format!("{path}.timestamp");
    let ts_text = str_of(field(root, "timestamp", path)?, &ts_path)?;
    let timestamp = parse_timestamp(ts_text).ok_or_else(|| {
        invalid(
            &ts_path,
            format!("{ts_text:?} is not a YYYY-MM-DDTHH:MM:SS time"),
        )
    })?;

    let trx_path = format!("{path}.transactions");
    let transactions = field(root, "transactions", path)?;
    if transactions.kind() != Kind::Array {
        return Err(type_error(&trx_path, "an array", transactions));
    }
    let listed_ids = match root.get("transaction_ids") {
        Some(ids) => {
            let ids_path = format!("{path}.transaction_ids");
            if ids.kind() != Kind::Array {
                return Err(type_error(&ids_path, "an array", ids));
            }
            if ids.len() != transactions.len() {
                return Err(invalid(
                    &ids_path,
                    format!("{} ids for {} transactions", ids.len(), transactions.len()),
                ));
            }
            let mut out = Vec::with_capacity(ids.len());
            for (i, id) in ids.elements().enumerate() {
                let p = Loc::Index(&ids_path, i);
                out.push(hex_id(str_of(id, p)?, p)?);
            }
            Some(out)
        }
        None => None,
    };

    let mut ops = Vec::new();
    for (i, trx) in transactions.elements().enumerate() {
        let tp = Loc::Index(&trx_path, i);
        let trx_id = match &listed_ids {
            Some(ids) => ids[i],
            None => match trx.get("transaction_id") {
                Some(v) => {
                    let p = Loc::Key(&tp, "transaction_id");
                    hex_id(str_of(v, p)?, p)?
                }
                None => [0u8; 20],
            },
        };
        let trx_index = u32::try_from(i).map_err(|_| invalid(tp, "too many transactions"))?;
        let op_list = field(trx, "operations", tp)?;
        let op_list_path = Loc::Key(&tp, "operations");
        if op_list.kind() != Kind::Array {
            return Err(type_error(op_list_path, "an array", op_list));
        }
        for (j, op) in op_list.elements().enumerate() {
            let op_path = Loc::Index(&op_list_path, j);
            let (topic, body) = op_from(op, op_path)?;
            ops.push(DecodedOp {
                trx_index,
                trx_id,
                op_index: u32::try_from(j).map_err(|_| invalid(op_path, "too many operations"))?,
                topic,
                virtual_op: false,
                body,
            });
        }
    }
    Ok(DecodedBlock {
        number,
        id,
        previous: previous.to_owned(),
        timestamp,
        ops,
    })
}

pub(crate) fn ops_in_block_from(
    root: Val<'_>,
    block: u64,
    path: &str,
) -> Result<Vec<DecodedOp>, DecodeError> {
    let (list, list_path) = match root.kind() {
        Kind::Array => (root, path.to_owned()),
        Kind::Object => (field(root, "ops", path)?, format!("{path}.ops")),
        _ => {
            return Err(type_error(
                path,
                "a list of operations or {\"ops\": [..]}",
                root,
            ));
        }
    };
    Ok(op_entries_from(list, &list_path, block..block + 1)?
        .into_iter()
        .map(|(_, op)| op)
        .collect())
}

/// Decodes a list of operation entries as `get_ops_in_block` and
/// `account_history_api.enum_virtual_ops` return them (`block`, `trx_id`, `trx_in_block`,
/// `op_in_trx`, `virtual_op`, `op`), each with its block number, which must lie in `blocks`.
pub(crate) fn op_entries_from(
    list: Val<'_>,
    list_path: &str,
    blocks: std::ops::Range<u64>,
) -> Result<Vec<(u64, DecodedOp)>, DecodeError> {
    if list.kind() != Kind::Array {
        return Err(type_error(list_path, "an array", list));
    }
    let mut ops = Vec::with_capacity(list.len());
    for (i, entry) in list.elements().enumerate() {
        let p = Loc::Index(&list_path, i);
        let entry_block = u64_of(field(entry, "block", p)?, Loc::Key(&p, "block"))?;
        if !blocks.contains(&entry_block) {
            let asked = if blocks.end == blocks.start + 1 {
                format!("block {}", blocks.start)
            } else {
                format!("blocks {}..={}", blocks.start, blocks.end.saturating_sub(1))
            };
            return Err(invalid(
                Loc::Key(&p, "block"),
                format!("operation of block {entry_block} in the answer for {asked}"),
            ));
        }
        let trx_id_path = Loc::Key(&p, "trx_id");
        let trx_id = hex_id(
            str_of(field(entry, "trx_id", p)?, trx_id_path)?,
            trx_id_path,
        )?;
        let trx_index = u32_of(
            field(entry, "trx_in_block", p)?,
            Loc::Key(&p, "trx_in_block"),
        )?;
        let op_index = u32_of(field(entry, "op_in_trx", p)?, Loc::Key(&p, "op_in_trx"))?;
        let flag_path = Loc::Key(&p, "virtual_op");
        let flag = field(entry, "virtual_op", p)?;
        let virtual_op = match flag.kind() {
            Kind::Bool => flag.as_bool().unwrap_or(false),
            Kind::Integer => u64_of(flag, flag_path)? != 0,
            _ => return Err(type_error(flag_path, "an integer or a boolean", flag)),
        };
        let (topic, body) = op_from(field(entry, "op", p)?, Loc::Key(&p, "op"))?;
        ops.push((
            entry_block,
            DecodedOp {
                trx_index,
                trx_id,
                op_index,
                topic,
                virtual_op,
                body,
            },
        ));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use test_support::panics::catch;

    const LEGACY: &str = r#"{"previous":"0000044300000000000000000000000000000000","timestamp":"2016-03-24T17:00:06","transactions":[{"operations":[["vote",{"voter":"a","weight":10000,"big":18446744073709551615,"f":1.50,"s":"\u00e9\/x"}]],"transaction_id":"ef73d8fadf17e2590c6d96efc1ca868edd7dd613"}]}"#;

    #[test]
    fn legacy_block_without_block_id() {
        let b = decode_block(LEGACY.as_bytes()).unwrap();
        assert_eq!(b.number, 0x444);
        assert_eq!(b.id, "");
        assert_eq!(b.timestamp, 1_458_838_806);
        assert_eq!(b.ops.len(), 1);
        let op = &b.ops[0];
        assert_eq!(op.topic, "vote");
        assert_eq!(op.trx_id[0], 0xef);
        assert_eq!(op.trx_id[19], 0x13);
        assert_eq!(
            &op.body[..],
            br#"{"voter":"a","weight":10000,"big":18446744073709551615,"f":1.50,"s":"\u00e9\/x"}"#
        );
    }

    #[test]
    fn appbase_op_and_pretty_input() {
        let text = r#"{
          "block_id": "000f4240e8f91385f7bff8f5aeebddc9b14e4281",
          "previous": "000f423f974857674873d93d1909e0eeb7e4916e",
          "timestamp": "2016-04-29T04:12:00",
          "transaction_ids": ["0000000000000000000000000000000000000001"],
          "transactions": [ { "operations": [
              { "type": "custom_json_operation",
                "value": { "z": 1, "a": [ 1 , 2 ], "json": "[\"x\", {\"y\": 1}]" } } ] } ]
        }"#;
        let b = decode_block(text.as_bytes()).unwrap();
        assert_eq!(b.number, 1_000_000);
        assert_eq!(b.id, "000f4240e8f91385f7bff8f5aeebddc9b14e4281");
        let op = &b.ops[0];
        assert_eq!(op.topic, "custom_json");
        assert_eq!(op.trx_id[19], 1);
        assert_eq!(
            &op.body[..],
            br#"{"z":1,"a":[1,2],"json":"[\"x\", {\"y\": 1}]"}"#
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00"), Some(0));
        assert_eq!(parse_timestamp("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_timestamp("2020-11-07T21:11:36"), Some(1_604_783_496));
        assert_eq!(parse_timestamp("2106-02-07T06:28:15"), Some(u32::MAX));
        for bad in [
            "2106-02-07T06:28:16",
            "2019-02-29T00:00:00",
            "2020-13-01T00:00:00",
            "2020-1-01T00:00:00",
            "2020-01-01 00:00:00",
            "1969-12-31T23:59:59",
            "+020-01-01T00:00:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    fn err(text: &str) -> String {
        decode_block(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn malformed_blocks_name_the_problem() {
        assert!(err("null").contains("expected a block object, found null"));
        assert!(err("{}").contains("block.previous: missing"));
        let bad_hex = LEGACY.replace("0000044300000000", "0000044300000zz0");
        assert!(
            err(&bad_hex).contains("block.previous"),
            "{}",
            err(&bad_hex)
        );
        let bad_op = LEGACY.replace(r#"["vote","#, r#"["vote",1,"#);
        assert!(
            err(&bad_op)
                .contains("block.transactions[0].operations[0]: a legacy operation has 2 elements")
        );
        let bad_body = LEGACY
            .replace(r#"["vote",{"voter""#, r#"["vote",[{"voter""#)
            .replace("x\"}]]", "x\"}]]]");
        assert!(
            err(&bad_body).contains("operations[0][1]: expected an object"),
            "{}",
            err(&bad_body)
        );
        let bad_time = LEGACY.replace("2016-03-24T17", "2016-03-24X17");
        assert!(err(&bad_time).contains("block.timestamp"));
        let overflow = LEGACY.replace("18446744073709551615", "18446744073709551616");
        assert!(
            err(&overflow).contains("invalid JSON"),
            "{}",
            err(&overflow)
        );
        let mismatch = r#"{"block_id":"00000002aa","previous":"0000000000000000000000000000000000000000","timestamp":"2016-03-24T17:00:06","transactions":[]}"#;
        assert!(err(mismatch).contains("block.block_id: expected 40 hex digits"));
        let renumbered = LEGACY.replacen(
            '{',
            r#"{"block_id":"00000500aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","#,
            1,
        );
        assert!(
            err(&renumbered)
                .contains("block.block_id: names block 1280 but previous names block 1091")
        );
        let ids = LEGACY.replace(
            r#""transactions""#,
            r#""transaction_ids":[],"transactions""#,
        );
        assert!(err(&ids).contains("block.transaction_ids: 0 ids for 1 transactions"));
    }

    #[test]
    fn ops_in_block_both_forms() {
        let list = r#"[{"trx_id":"0000000000000000000000000000000000000000","block":7,"trx_in_block":4294967295,"op_in_trx":1,"virtual_op":2,"timestamp":"2018-09-13T14:31:39","op":["producer_reward",{"producer":"x","vesting_shares":"1.000000 VESTS"}]}]"#;
        let ops = decode_ops_in_block(list.as_bytes(), 7).unwrap();
        assert_eq!(ops.len(), 1);
        assert!(ops[0].virtual_op);
        assert_eq!(ops[0].trx_index, u32::MAX);
        assert_eq!(ops[0].op_index, 1);
        assert_eq!(ops[0].topic, "producer_reward");
        let obj = r#"{"ops":[{"block":7,"op":{"type":"producer_reward_operation","value":{"producer":"x"}},"op_in_trx":0,"trx_id":"0000000000000000000000000000000000000000","trx_in_block":0,"virtual_op":false}]}"#;
        let ops = decode_ops_in_block(obj.as_bytes(), 7).unwrap();
        assert!(!ops[0].virtual_op);
        assert_eq!(&ops[0].body[..], br#"{"producer":"x"}"#);
        let wrong_block = decode_ops_in_block(obj.as_bytes(), 8)
            .unwrap_err()
            .to_string();
        assert!(wrong_block.contains("result.ops[0].block"), "{wrong_block}");
        let overflow = list.replace("4294967295", "4294967296");
        let e = decode_ops_in_block(overflow.as_bytes(), 7)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("trx_in_block: 4294967296 does not fit in 32 bits"),
            "{e}"
        );
        let flag = list.replace(r#""virtual_op":2"#, r#""virtual_op":"yes""#);
        let e = decode_ops_in_block(flag.as_bytes(), 7)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("virtual_op: expected an integer or a boolean"),
            "{e}"
        );
    }

    // Failures are not persisted into the tree; a panic fails the case quietly with its
    // report, so shrinking does not print one report per case tried.
    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            catch(|| {
                let _ = decode_block(&bytes);
                let _ = decode_ops_in_block(&bytes, 1);
            })
            .map_err(TestCaseError::fail)?;
        }

        #[test]
        fn mutated_blocks_never_panic(at in 0..LEGACY.len(), byte in any::<u8>()) {
            let mut bytes = LEGACY.as_bytes().to_vec();
            bytes[at] = byte;
            let _ = catch(|| decode_block(&bytes)).map_err(TestCaseError::fail)?;
        }
    }
}
