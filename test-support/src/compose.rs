//! Composed blocks the size of today's traffic, built from real op bodies.
//!
//! The repository's data holds real blocks, but few of today's size: the recent ones carry a
//! handful of ops each, while blocks on Steem and Hive today commonly carry a hundred or more,
//! most of them `custom_json`. A [`Composer`] fills that gap for load tests and benchmarks. It
//! is deterministic: the same seed gives the same bytes.
//!
//! # What a composed block is
//!
//! - **Ops**: between [`OPS_PER_BLOCK`]'s bounds (uniformly), each drawn from the kinds of
//!   [`MIX`] with the weight given there (mostly `custom_json`, then votes, comments,
//!   transfers, reward claims, market orders, ...). Each op is a real body, picked uniformly
//!   among the recorded bodies of its kind ([`SOURCES`]); bodies repeat, values are never
//!   altered (other than the asset encoding, below).
//! - **Transactions**: one op each, one in ten carrying 2 to 4 ops; a random transaction id,
//!   signature and expiration (30 s to 1 h after the block), and a `ref_block_num` /
//!   `ref_block_prefix` that point at one of the 20 blocks before it, as a wallet sets them.
//! - **Ids and links**: `block_id` starts with the block number as 8 hex digits and is
//!   otherwise random; `previous` is the id of the block before (all zeros before block 1).
//!   A block's content depends only on the seed and its number, so any two ranges composed with
//!   one seed link where they meet.
//! - **Time**: block `n` is stamped [`GENESIS`] + 3 (n - 1) seconds, the chains' 3 s slots
//!   counted from block 1.
//! - **Witness**: one of the witnesses (name and signing key) of the recorded blocks.
//!
//! # Encodings
//!
//! [`Encoding::Legacy`] is what `condenser_api.get_block` returns: ops as `["vote", {..}]`,
//! string assets `"1.000 STEEM"`, transactions with `transaction_id`, `block_num` and
//! `transaction_num`. [`Encoding::Appbase`] is one element of `block_api.get_block_range`'s
//! `blocks`: ops as `{"type": "vote_operation", "value": {..}}`, assets as NAI objects
//! `{"amount": "1000", "precision": 3, "nai": "@@000000021"}`. Both carry `transaction_ids`.
//! Keys come in the order nodes send them (which is why blocks are returned as JSON text rather
//! than as `serde_json::Value`, whose objects sort their keys).
//!
//! Assets are recognised by value: a string `"<digits>.<digits> <SYMBOL>"` with the symbol's
//! precision (STEEM/HIVE 3, SBD/HBD 3, VESTS 6), except in free-text fields (`memo`, `json`,
//! `body`, `title`, `json_metadata`, ...), which are never touched. In the legacy encoding the
//! symbols are Steem's (`STEEM`, `SBD`, `VESTS`).
//!
//! ```
//! use test_support::compose::{Composer, Encoding};
//!
//! let composer = Composer::new(7)?;
//! let blocks: Vec<String> = composer.blocks(80_000_000, 3, Encoding::Appbase)?.collect();
//! assert_eq!(blocks.len(), 3);
//! assert!(blocks[0].starts_with(r#"{"previous":"04c4b3ff"#));
//! # Ok::<(), test_support::compose::ComposeError>(())
//! ```

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// How many ops a composed block carries (uniformly distributed).
pub const OPS_PER_BLOCK: RangeInclusive<usize> = 100..=300;

/// The op kinds of a composed block and their weights (per mille of all ops).
pub const MIX: &[(&str, u32)] = &[
    ("custom_json", 700),
    ("vote", 180),
    ("comment", 30),
    ("transfer", 30),
    ("claim_reward_balance", 20),
    ("limit_order_create", 10),
    ("limit_order_cancel", 10),
    ("transfer_to_vesting", 5),
    ("delegate_vesting_shares", 5),
    ("feed_publish", 5),
    ("claim_account", 5),
];

/// The files (relative to the data folder) whose real op bodies and witnesses are used: the
/// recent Steem and Hive blocks, the recorded Steem head blocks (`*.response.json` in the
/// listed folder) and the non-virtual ops of a 2018 Steem block.
pub const SOURCES: &[&str] = &[
    "recent/steem.condenser_api.get_block.2020-2022.jsonl",
    "recent/hive.block_api.get_block_range.70548020.jsonl",
    "steem/condenser_api.get_block",
    "steem/condenser_api.get_ops_in_block/25926363.result.json",
];

/// Unix time of block 1 on Steem (and Hive, which shares its history): 2016-03-24T16:05:00.
pub const GENESIS: u32 = 1_458_835_500;

/// The op encoding of a composed block (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `condenser_api.get_block`: `["vote", {..}]`, string assets.
    Legacy,
    /// `block_api.get_block_range`: `{"type": "vote_operation", "value": {..}}`, NAI assets.
    Appbase,
}

/// Why a [`Composer`] could not be built or could not compose the blocks asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// A data file or folder could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A data file is not JSON (or a JSONL line is not).
    #[error("{path}, line {line}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (1 for a JSON file).
        line: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A data file is JSON but not the block or op list it should be.
    #[error("{path}, line {line}: {reason}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// 1-based line (1 for a JSON file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No recorded body of an op kind of [`MIX`] was found.
    #[error("no {kind} op in the data folder {dir}")]
    NoBodies {
        /// The op kind.
        kind: &'static str,
        /// The data folder.
        dir: PathBuf,
    },
    /// No block with a witness and signing key was found.
    #[error("no block with a witness and a signing key in the data folder {dir}")]
    NoWitnesses {
        /// The data folder.
        dir: PathBuf,
    },
    /// The blocks asked for are not all numbered within 1..=u32::MAX.
    #[error("blocks {first} to {first}+{count} are not all within 1..=4294967295")]
    Range {
        /// First block asked for.
        first: u64,
        /// Number of blocks asked for.
        count: u64,
    },
}

/// Composes blocks deterministically from a seed and the recorded op bodies.
#[derive(Debug, Clone)]
pub struct Composer {
    seed: u64,
    /// One entry per kind of [`MIX`]: (kind, weight, bodies in canonical legacy form).
    pools: Vec<(&'static str, u32, Vec<Json>)>,
    total_weight: u32,
    /// (name, signing key).
    witnesses: Vec<(String, String)>,
}

impl Composer {
    /// The repository's data folder (`data/` at the workspace root).
    pub fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
    }

    /// A composer over the repository's data folder.
    pub fn new(seed: u64) -> Result<Self, ComposeError> {
        Self::from_dir(&Self::data_dir(), seed)
    }

    /// A composer over the data folder `dir` (laid out as the repository's, see [`SOURCES`]).
    pub fn from_dir(dir: &Path, seed: u64) -> Result<Self, ComposeError> {
        let mut found = Found::default();
        for rel in SOURCES {
            let path = dir.join(rel);
            if rel.ends_with(".jsonl") {
                let text = read(&path)?;
                for (i, line) in text.lines().enumerate() {
                    if !line.trim().is_empty() {
                        found.block(&path, i + 1, &parse(&path, i + 1, line)?)?;
                    }
                }
            } else if rel.ends_with(".result.json") {
                found.ops_in_block(&path, &parse(&path, 1, &read(&path)?)?)?;
            } else {
                let entries = std::fs::read_dir(&path).map_err(|source| ComposeError::Read {
                    path: path.clone(),
                    source,
                })?;
                let mut files = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|source| ComposeError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    let file = entry.path();
                    if file.to_string_lossy().ends_with(".response.json") {
                        files.push(file);
                    }
                }
                files.sort();
                for file in files {
                    let response = parse(&file, 1, &read(&file)?)?;
                    let block = response.get("result").ok_or_else(|| ComposeError::Shape {
                        path: file.clone(),
                        line: 1,
                        reason: "no `result`".into(),
                    })?;
                    found.block(&file, 1, block)?;
                }
            }
        }
        let mut pools = Vec::with_capacity(MIX.len());
        for &(kind, weight) in MIX {
            let bodies: Vec<Json> = found
                .ops
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, b)| b.clone())
                .collect();
            if bodies.is_empty() {
                return Err(ComposeError::NoBodies {
                    kind,
                    dir: dir.to_owned(),
                });
            }
            pools.push((kind, weight, bodies));
        }
        if found.witnesses.is_empty() {
            return Err(ComposeError::NoWitnesses {
                dir: dir.to_owned(),
            });
        }
        Ok(Self {
            seed,
            pools,
            total_weight: MIX.iter().map(|&(_, w)| w).sum(),
            witnesses: found.witnesses,
        })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many distinct recorded bodies of `kind` the composer draws from (0 for a kind not
    /// in [`MIX`]).
    pub fn bodies_of(&self, kind: &str) -> usize {
        self.pools
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map_or(0, |(_, _, b)| b.len())
    }

    /// The `block_id` of block `number` (block 0 is the all-zero id before block 1).
    pub fn block_id(&self, number: u32) -> String {
        if number == 0 {
            return "0".repeat(40);
        }
        let mut rng = self.rng(number, Stream::Id);
        let mut id = format!("{number:08x}");
        push_hex(&mut id, &mut rng, 16);
        id
    }

    /// Blocks `first`, `first + 1`, ... (`count` of them), each as compact JSON text, composed
    /// on demand.
    pub fn blocks(
        &self,
        first: u64,
        count: u64,
        encoding: Encoding,
    ) -> Result<impl Iterator<Item = String> + '_, ComposeError> {
        let range = ComposeError::Range { first, count };
        let end = first.checked_add(count).ok_or(range)?;
        if first == 0 || (count > 0 && end - 1 > u64::from(u32::MAX)) {
            return Err(ComposeError::Range { first, count });
        }
        // In range by the check above.
        Ok((first..end).map(move |n| self.block(n as u32, encoding)))
    }

    /// Block `number` (at least 1) as compact JSON text.
    pub fn block(&self, number: u32, encoding: Encoding) -> String {
        let mut rng = self.rng(number, Stream::Content);
        let timestamp = GENESIS.saturating_add(number.saturating_sub(1).saturating_mul(3));
        let (witness, signing_key) = &self.witnesses[rng.usize(..self.witnesses.len())];
        let mut left = rng.usize(OPS_PER_BLOCK);

        let mut trx_ids = Vec::new();
        let mut transactions = String::new();
        while left > 0 {
            let size = if rng.u32(..10) == 0 {
                rng.usize(2..=4).min(left)
            } else {
                1
            };
            left -= size;
            let trx_num = trx_ids.len();
            if trx_num > 0 {
                transactions.push(',');
            }
            let ref_block = number.saturating_sub(rng.u32(1..=20));
            let ref_id = self.block_id(ref_block);
            // The prefix is the id's second 32-bit word, read little endian (as the chains do).
            let prefix = (8..16)
                .step_by(2)
                .rev()
                .fold(0u32, |acc, i| (acc << 8) | hex_byte(&ref_id[i..i + 2]));
            let expiration = timestamp.saturating_add(rng.u32(30..=3600));
            transactions.push_str(&format!(
                r#"{{"ref_block_num":{},"ref_block_prefix":{prefix},"expiration":"{}","operations":["#,
                ref_block & 0xffff,
                format_time(expiration),
            ));
            for i in 0..size {
                if i > 0 {
                    transactions.push(',');
                }
                let (kind, body) = self.pick(&mut rng);
                match encoding {
                    Encoding::Legacy => {
                        transactions.push_str("[\"");
                        transactions.push_str(kind);
                        transactions.push_str("\",");
                        body.write(&mut transactions);
                        transactions.push(']');
                    }
                    Encoding::Appbase => {
                        transactions.push_str(r#"{"type":""#);
                        transactions.push_str(kind);
                        transactions.push_str(r#"_operation","value":"#);
                        to_appbase(body, None).write(&mut transactions);
                        transactions.push('}');
                    }
                }
            }
            let mut trx_id = String::with_capacity(40);
            push_hex(&mut trx_id, &mut rng, 20);
            transactions.push_str(r#"],"extensions":[],"signatures":[""#);
            push_signature(&mut transactions, &mut rng);
            transactions.push_str("\"]");
            if encoding == Encoding::Legacy {
                transactions.push_str(&format!(
                    r#","transaction_id":"{trx_id}","block_num":{number},"transaction_num":{trx_num}"#
                ));
            }
            transactions.push('}');
            trx_ids.push(trx_id);
        }

        let mut merkle_root = String::with_capacity(40);
        push_hex(&mut merkle_root, &mut rng, 20);
        let mut out = String::with_capacity(transactions.len() + 512 + 43 * trx_ids.len());
        out.push_str(&format!(
            r#"{{"previous":"{}","timestamp":"{}","witness":"#,
            self.block_id(number.saturating_sub(1)),
            format_time(timestamp),
        ));
        Json::Str(witness.clone()).write(&mut out);
        out.push_str(&format!(
            r#","transaction_merkle_root":"{merkle_root}","extensions":[],"witness_signature":""#
        ));
        push_signature(&mut out, &mut rng);
        out.push_str(r#"","transactions":["#);
        out.push_str(&transactions);
        out.push_str(&format!(
            r#"],"block_id":"{}","signing_key":"#,
            self.block_id(number)
        ));
        Json::Str(signing_key.clone()).write(&mut out);
        out.push_str(r#","transaction_ids":["#);
        for (i, id) in trx_ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(id);
            out.push('"');
        }
        out.push_str("]}");
        out
    }

    /// Draws an op kind by [`MIX`] weight, then one of its bodies.
    fn pick(&self, rng: &mut fastrand::Rng) -> (&'static str, &Json) {
        let mut x = rng.u32(..self.total_weight);
        for (kind, weight, bodies) in &self.pools {
            if x < *weight {
                return (kind, &bodies[rng.usize(..bodies.len())]);
            }
            x -= weight;
        }
        // Unreachable: x < total_weight, the sum of the weights. Fall back to the first kind.
        let (kind, _, bodies) = &self.pools[0];
        (kind, &bodies[0])
    }

    /// The random stream of one block: a function of the seed, the block number and the use.
    fn rng(&self, number: u32, stream: Stream) -> fastrand::Rng {
        let key = u64::from(number) | ((stream as u64) << 32);
        fastrand::Rng::with_seed(mix64(self.seed ^ mix64(key)))
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Id = 1,
    Content = 2,
}

/// The splitmix64 finaliser: spreads every input bit over the output.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn push_hex(out: &mut String, rng: &mut fastrand::Rng, bytes: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for _ in 0..bytes {
        let b = rng.u8(..);
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

/// A compact recoverable signature: recovery byte 0x1f or 0x20, then 64 bytes.
fn push_signature(out: &mut String, rng: &mut fastrand::Rng) {
    out.push_str(if rng.bool() { "1f" } else { "20" });
    push_hex(out, rng, 64);
}

/// Two hex digits (always valid here: they come from [`push_hex`]).
fn hex_byte(s: &str) -> u32 {
    u32::from_str_radix(s, 16).unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a unix time.
pub fn format_time(unix: u32) -> String {
    let secs = u64::from(unix);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, for days >= 0).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// What the data files yielded: (kind, body in legacy form) and (witness, signing key).
#[derive(Default)]
struct Found {
    ops: Vec<(String, Json)>,
    witnesses: Vec<(String, String)>,
}

impl Found {
    fn add_op(&mut self, kind: String, body: Json) {
        if !self.ops.iter().any(|(k, b)| *k == kind && *b == body) {
            self.ops.push((kind, body));
        }
    }

    /// Every op of a block object (either encoding), and its witness.
    fn block(&mut self, path: &Path, line: usize, block: &Json) -> Result<(), ComposeError> {
        let shape = |reason: String| ComposeError::Shape {
            path: path.to_owned(),
            line,
            reason,
        };
        let Some(Json::Arr(transactions)) = block.get("transactions") else {
            return Err(shape("no `transactions` list".into()));
        };
        for (t, trx) in transactions.iter().enumerate() {
            let Some(Json::Arr(ops)) = trx.get("operations") else {
                return Err(shape(format!("transactions[{t}]: no `operations` list")));
            };
            for (o, op) in ops.iter().enumerate() {
                let (kind, body) = op_parts(op).ok_or_else(|| {
                    shape(format!(
                        "transactions[{t}].operations[{o}]: not [type, body] nor {{type, value}}"
                    ))
                })?;
                self.add_op(kind, body);
            }
        }
        if let (Some(Json::Str(name)), Some(Json::Str(key))) =
            (block.get("witness"), block.get("signing_key"))
        {
            let pair = (name.clone(), key.clone());
            if !self.witnesses.contains(&pair) {
                self.witnesses.push(pair);
            }
        }
        Ok(())
    }

    /// The non-virtual ops of a `condenser_api.get_ops_in_block` answer (`{"result": [..]}`
    /// or the bare list).
    fn ops_in_block(&mut self, path: &Path, doc: &Json) -> Result<(), ComposeError> {
        let shape = |reason: String| ComposeError::Shape {
            path: path.to_owned(),
            line: 1,
            reason,
        };
        let list = match doc.get("result") {
            Some(result) => result,
            None => doc,
        };
        let Json::Arr(entries) = list else {
            return Err(shape("not a list of ops".into()));
        };
        for (i, entry) in entries.iter().enumerate() {
            let is_virtual = match entry.get("virtual_op") {
                Some(Json::Num(n)) => n != "0",
                Some(Json::Bool(b)) => *b,
                _ => return Err(shape(format!("[{i}]: no `virtual_op`"))),
            };
            let (kind, body) = entry
                .get("op")
                .and_then(op_parts)
                .ok_or_else(|| shape(format!("[{i}].op: not [type, body] nor {{type, value}}")))?;
            if !is_virtual {
                self.add_op(kind, body);
            }
        }
        Ok(())
    }
}

/// (kind without `_operation`, body in legacy form) of an op in either encoding.
fn op_parts(op: &Json) -> Option<(String, Json)> {
    match op {
        Json::Arr(pair) => match pair.as_slice() {
            [Json::Str(kind), body @ Json::Obj(_)] => Some((kind.clone(), to_legacy(body))),
            _ => None,
        },
        Json::Obj(_) => match (op.get("type"), op.get("value")) {
            (Some(Json::Str(kind)), Some(body @ Json::Obj(_))) => Some((
                kind.strip_suffix("_operation").unwrap_or(kind).to_owned(),
                to_legacy(body),
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Fields that hold free text, where a string that looks like an asset is left alone.
const FREE_TEXT: &[&str] = &[
    "memo",
    "json",
    "body",
    "title",
    "json_metadata",
    "posting_json_metadata",
    "permlink",
    "parent_permlink",
    "id",
];

/// (legacy symbol, other chain's symbol, NAI, precision).
const ASSETS: &[(&str, &str, &str, u32)] = &[
    ("STEEM", "HIVE", "@@000000021", 3),
    ("SBD", "HBD", "@@000000013", 3),
    ("VESTS", "VESTS", "@@000000037", 6),
];

/// `"1.000 STEEM"` as (amount in base units, precision, NAI), if it is an asset.
fn parse_asset(s: &str) -> Option<(String, u32, &'static str)> {
    let (number, symbol) = s.split_once(' ')?;
    let &(_, _, nai, precision) = ASSETS
        .iter()
        .find(|(a, b, _, _)| *a == symbol || *b == symbol)?;
    let (int, frac) = number.split_once('.')?;
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || frac.len() != precision as usize {
        return None;
    }
    let all = format!("{int}{frac}");
    let trimmed = all.trim_start_matches('0');
    let amount = if trimmed.is_empty() { "0" } else { trimmed };
    Some((amount.to_owned(), precision, nai))
}

/// A NAI object `{"amount", "precision", "nai"}` as a legacy string, if it is a known asset.
fn nai_to_string(fields: &[(String, Json)]) -> Option<String> {
    if fields.len() != 3 {
        return None;
    }
    let find = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let (Some(Json::Str(amount)), Some(Json::Num(precision)), Some(Json::Str(nai))) =
        (find("amount"), find("precision"), find("nai"))
    else {
        return None;
    };
    let &(symbol, _, _, p) = ASSETS.iter().find(|(_, _, n, _)| n == nai)?;
    if precision.parse::<u32>().ok()? != p
        || amount.is_empty()
        || !amount.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let p = p as usize;
    let padded = format!("{amount:0>width$}", width = p + 1);
    let (int, frac) = padded.split_at(padded.len() - p);
    Some(format!("{int}.{frac} {symbol}"))
}

/// The body with NAI assets turned into legacy strings.
fn to_legacy(v: &Json) -> Json {
    match v {
        Json::Obj(fields) => match nai_to_string(fields) {
            Some(s) => Json::Str(s),
            None => Json::Obj(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), to_legacy(v)))
                    .collect(),
            ),
        },
        Json::Arr(items) => Json::Arr(items.iter().map(to_legacy).collect()),
        other => other.clone(),
    }
}

/// The body with legacy asset strings turned into NAI objects, except in free-text fields.
/// `key` is the field `v` is the value of.
fn to_appbase(v: &Json, key: Option<&str>) -> Json {
    match v {
        Json::Str(s) if !key.is_some_and(|k| FREE_TEXT.contains(&k)) => match parse_asset(s) {
            Some((amount, precision, nai)) => Json::Obj(vec![
                ("amount".into(), Json::Str(amount)),
                ("precision".into(), Json::Num(precision.to_string())),
                ("nai".into(), Json::Str(nai.into())),
            ]),
            None => v.clone(),
        },
        Json::Obj(fields) => Json::Obj(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_appbase(v, Some(k))))
                .collect(),
        ),
        Json::Arr(items) => Json::Arr(items.iter().map(|v| to_appbase(v, key)).collect()),
        other => other.clone(),
    }
}

fn read(path: &Path) -> Result<String, ComposeError> {
    std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse(path: &Path, line: usize, text: &str) -> Result<Json, ComposeError> {
    serde_json::from_str(text).map_err(|source| ComposeError::Parse {
        path: path.to_owned(),
        line,
        source,
    })
}

/// A JSON value that keeps its objects' key order (unlike `serde_json::Value` without the
/// `preserve_order` feature) and its numbers' text.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Compact JSON text, escaping as serde_json does (quote, backslash, control characters).
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => write_str(s, out),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Num(n.to_string()))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Num(n.to_string()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(|n| Json::Num(n.to_string()))
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        Ok(Json::Str(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        Ok(Json::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            fields.push((k, v));
        }
        Ok(Json::Obj(fields))
    }
}

#[cfg(test)]
mod tests;
