//! A fake Steem/Hive API node: a test and benchmark utility, not part of the broadcaster's
//! production path.
//!
//! [`FakeNode`] is a real HTTP/1.1 JSON-RPC server on 127.0.0.1 (an ephemeral port unless one
//! is asked for) that serves recorded blocks by number. It is a deliberately small server on a
//! tokio `TcpListener` with a minimal request parser (keep-alive, `Content-Length` bodies), because
//! fault injection needs byte-level control of the socket.
//!
//! # What it serves
//!
//! - `condenser_api.get_block` (legacy encoding; `null` when absent), `block_api.get_block`
//!   (appbase; `{}` when absent) and `block_api.get_block_range` (appbase; at most 1000 blocks,
//!   stopping at the head or at the first number it does not have; `{"blocks":[]}` when absent).
//! - `condenser_api.get_dynamic_global_properties` and `database_api.get_dynamic_global_properties`:
//!   the recorded Hive properties with `head_block_number`, `head_block_id`, `time` and
//!   `last_irreversible_block_num` replaced to match the fake head.
//! - `condenser_api.get_ops_in_block` and `account_history_api.get_ops_in_block`: the recorded
//!   answer where one exists for that block number (whatever `only_virtual` says), its ops in
//!   the legacy encoding for `condenser_api` and the appbase one for `account_history_api`; an
//!   empty list otherwise.
//! - `account_history_api.enum_virtual_ops`: the same recorded answers for a range of blocks,
//!   in the appbase encoding, paged by [`FakeOptions::virtual_ops_page`] operations
//!   (`next_block_range_begin`, `next_operation_begin`).
//! - `database_api.get_version` and `condenser_api.get_version` (`chain_id`), and
//!   `condenser_api.get_config` (`HIVE_CHAIN_ID`, or `STEEM_CHAIN_ID` for Steem's id): the
//!   chain id of [`FakeOptions::chain_id`].
//! - Anything else: the real "Could not find method" error.
//!
//! Blocks come from [`Chain`]: the recorded data set (the Steem `condenser_api.get_block`
//! responses, Hive block 1092 and the 500 Hive blocks from 1,000,000) or JSONL files. A block is
//! served byte for byte (minus whitespace) in the encoding it was recorded in. For the other
//! encoding the fake node converts it: legacy `["vote",{..}]` ⇄ appbase
//! `{"type":"vote_operation","value":{..}}`, and assets `"1.000 STEEM"` ⇄
//! `{"amount":"1000","precision":3,"nai":"@@000000021"}` (STEEM/HIVE, SBD/HBD and VESTS; legacy
//! symbols come from the block's chain). Converted blocks go through `serde_json::Value`, so
//! their keys come out sorted and a free-text string that looks exactly like an asset would be
//! converted too; recorded blocks are not affected.
//!
//! The head either stays fixed or advances by one block every N ms from a given instant (nodes
//! built from the same [`HeadSchedule`] agree on it); it never passes the last block held.
//!
//! # Faults
//!
//! A request may be answered with a [`Fault`] instead: first by a matching [`Rule`] (method
//! and/or block, a number of times or forever), then by the next entry of a script, then at
//! random with probability `fault_rate` from `fault_mix` (seeded, so runs repeat). Every
//! request is logged as a [`ServedRequest`] for assertions, with the instants it was read and
//! its answer was completely written, for latency measurements.

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use consumer_sdk::ChainId;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use broadcaster::block;

/// Why the fake node could not load its data or start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeNodeError {
    /// A file could not be read, or the socket could not be bound.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or address).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{}: {reason}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Which legacy asset symbols a chain uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbols {
    /// STEEM, SBD, VESTS.
    Steem,
    /// HIVE, HBD, VESTS.
    Hive,
}

/// One stored block in both encodings.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    /// Block number.
    pub number: u64,
    /// `block_id` (empty if the recording has none).
    pub id: String,
    /// Timestamp, unix seconds.
    pub timestamp: u32,
    /// Legacy (condenser) encoding, compact.
    pub legacy: String,
    /// Appbase (block_api) encoding, compact.
    pub appbase: String,
}

/// The blocks, operation lists and canned answers a fake node serves.
#[derive(Debug, Clone)]
pub struct Chain {
    blocks: BTreeMap<u64, StoredBlock>,
    ops: BTreeMap<u64, Value>,
    props: Value,
    db_props: Value,
    errors: Vec<Value>,
    html_502: String,
}

fn read(path: &Path) -> Result<String, FakeNodeError> {
    std::fs::read_to_string(path).map_err(|source| FakeNodeError::Io {
        path: path.to_owned(),
        source,
    })
}

fn data_error(path: &Path, reason: impl std::fmt::Display) -> FakeNodeError {
    FakeNodeError::Data {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn parse_value(path: &Path, text: &str) -> Result<Value, FakeNodeError> {
    serde_json::from_str(text).map_err(|e| data_error(path, e))
}

impl Chain {
    /// A chain without blocks, with the canned answers (properties, errors, the 502 page) from
    /// the data directory `data`.
    pub fn new(data: &Path) -> Result<Self, FakeNodeError> {
        let props_path = data.join("hive/condenser_api.get_dynamic_global_properties.result.json");
        let db_props_path =
            data.join("hive/database_api.get_dynamic_global_properties.result.json");
        let errors_path = data.join("errors/jsonrpc-error-responses.jsonl");
        let mut errors = Vec::new();
        for line in read(&errors_path)?.lines().filter(|l| !l.trim().is_empty()) {
            let entry = parse_value(&errors_path, line)?;
            let body = entry["response_body"]
                .as_str()
                .ok_or_else(|| data_error(&errors_path, "entry without response_body"))?;
            errors.push(parse_value(&errors_path, body)?);
        }
        Ok(Self {
            blocks: BTreeMap::new(),
            ops: BTreeMap::new(),
            props: parse_value(&props_path, &read(&props_path)?)?,
            db_props: parse_value(&db_props_path, &read(&db_props_path)?)?,
            errors,
            html_502: read(&data.join("errors/http-502-0.html"))?,
        })
    }

    /// The recorded data set in `data` (the shared data directory): the Steem
    /// `condenser_api.get_block` responses, Hive block 1092, the 500 Hive blocks from 1,000,000,
    /// and the recorded `get_ops_in_block` answers.
    pub fn recorded(data: &Path) -> Result<Self, FakeNodeError> {
        let mut chain = Self::new(data)?;
        let steem_dir = data.join("steem/condenser_api.get_block");
        let mut steem_files: Vec<PathBuf> = std::fs::read_dir(&steem_dir)
            .map_err(|source| FakeNodeError::Io {
                path: steem_dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        steem_files.sort();
        for path in steem_files {
            let text = read(&path)?;
            let result = result_text(&text)
                .map_err(|e| data_error(&path, e))?
                .ok_or_else(|| data_error(&path, "no result"))?;
            let result = compact(result);
            chain
                .insert_block(&result, Symbols::Steem)
                .map_err(|e| data_error(&path, e))?;
        }
        let hive_1092 = data.join("hive/condenser_api.get_block/1092.result.json");
        chain
            .insert_block(&read(&hive_1092)?, Symbols::Hive)
            .map_err(|e| data_error(&hive_1092, e))?;
        chain.insert_jsonl(
            &data.join("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl"),
            Symbols::Hive,
        )?;
        let ops_files = [
            (
                25_926_363,
                "steem/condenser_api.get_ops_in_block/25926363.result.json",
            ),
            (
                1_000_000,
                "steem/account_history_api.get_ops_in_block/get_ops_in_block.json.pat",
            ),
            (
                2_797_050,
                "hive/account_history_api.get_ops_in_block/only_virtual_true.pat.json",
            ),
        ];
        for (number, rel) in ops_files {
            let path = data.join(rel);
            let value = parse_value(&path, &read(&path)?)?;
            let list = match value {
                Value::Object(mut map) if map.contains_key("result") => {
                    map.remove("result").unwrap_or_default()
                }
                Value::Object(mut map) if map.contains_key("ops") => {
                    map.remove("ops").unwrap_or_default()
                }
                other => other,
            };
            chain.ops.insert(number, list);
        }
        Ok(chain)
    }

    /// Adds every block of a JSONL file (one block object per line, either encoding).
    pub fn insert_jsonl(&mut self, path: &Path, symbols: Symbols) -> Result<(), FakeNodeError> {
        for (i, line) in read(path)?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            self.insert_block(line, symbols)
                .map_err(|e| data_error(path, format!("line {}: {e}", i + 1)))?;
        }
        Ok(())
    }

    /// Adds one block object (either encoding); returns its number.
    pub fn insert_block(
        &mut self,
        text: &str,
        symbols: Symbols,
    ) -> Result<u64, block::DecodeError> {
        let decoded = block::decode_block(text.as_bytes())?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| broadcaster::JsonError::Invalid(e.to_string()))?;
        // Only ASCII whitespace is dropped from valid UTF-8, so this is lossless.
        let compact = compact(text);
        let ops: Vec<&Value> = value["transactions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["operations"].as_array().into_iter().flatten())
            .collect();
        let (legacy, appbase) = if ops.is_empty() {
            (compact.clone(), compact)
        } else if ops[0].is_array() {
            (
                compact,
                convert_block(&value, &|op| op_to_appbase(op)).to_string(),
            )
        } else {
            (
                convert_block(&value, &|op| op_to_legacy(op, symbols)).to_string(),
                compact,
            )
        };
        let number = decoded.number;
        self.blocks.insert(
            number,
            StoredBlock {
                number,
                id: decoded.id,
                timestamp: decoded.timestamp,
                legacy,
                appbase,
            },
        );
        Ok(number)
    }

    /// Sets the `get_ops_in_block` answer (a list of entries) for `block`.
    pub fn insert_ops(&mut self, block: u64, entries: Value) {
        self.ops.insert(block, entries);
    }

    /// The block numbers held, ascending.
    pub fn numbers(&self) -> Vec<u64> {
        self.blocks.keys().copied().collect()
    }

    /// The stored block `number`.
    pub fn block(&self, number: u64) -> Option<&StoredBlock> {
        self.blocks.get(&number)
    }

    /// The last block held.
    pub fn last(&self) -> Option<u64> {
        self.blocks.keys().next_back().copied()
    }

    fn head_time(&self, head: u64) -> u32 {
        match self.blocks.range(..=head).next_back() {
            Some((&n, b)) => b
                .timestamp
                .saturating_add(((head - n) * 3).min(u64::from(u32::MAX)) as u32),
            None => 0,
        }
    }

    fn error_body(&self, code: i64) -> Value {
        self.errors
            .iter()
            .find(|b| b["error"]["code"].as_i64() == Some(code))
            .cloned()
            .unwrap_or_else(
                || json!({"jsonrpc": "2.0", "error": {"code": code, "message": "injected error"}}),
            )
    }
}

/// The exact text of the `result` member of a JSON-RPC response (`Ok(None)`: no `result`).
fn result_text(response: &str) -> Result<Option<&str>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        result: Option<&'a serde_json::value::RawValue>,
    }
    let parsed: Response<'_> = serde_json::from_str(response)?;
    Ok(parsed.result.map(serde_json::value::RawValue::get))
}

/// `text` without the whitespace outside strings (JSON text in, JSON text out).
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// Applies `convert` to every operation of a block value.
fn convert_block(block: &Value, convert: &dyn Fn(&Value) -> Value) -> Value {
    let mut out = block.clone();
    if let Some(trxs) = out["transactions"].as_array_mut() {
        for trx in trxs {
            if let Some(ops) = trx["operations"].as_array_mut() {
                for op in ops {
                    *op = convert(op);
                }
            }
        }
    }
    out
}

const NAI_LIQUID: &str = "@@000000021";
const NAI_DEBT: &str = "@@000000013";
const NAI_VESTS: &str = "@@000000037";

fn op_to_appbase(op: &Value) -> Value {
    match op.as_array().map(Vec::as_slice) {
        Some([Value::String(name), body]) => {
            json!({"type": format!("{name}_operation"), "value": assets_to_nai(body)})
        }
        _ => op.clone(),
    }
}

fn op_to_legacy(op: &Value, symbols: Symbols) -> Value {
    match (op["type"].as_str(), op.get("value")) {
        (Some(name), Some(body)) => json!([block::topic_of(name), assets_to_legacy(body, symbols)]),
        _ => op.clone(),
    }
}

/// `"1.000 STEEM"` as (amount digits, precision, nai).
fn parse_legacy_asset(s: &str) -> Option<(String, usize, &'static str)> {
    let (number, symbol) = s.split_once(' ')?;
    let nai = match symbol {
        "STEEM" | "HIVE" | "TESTS" => NAI_LIQUID,
        "SBD" | "HBD" | "TBD" => NAI_DEBT,
        "VESTS" => NAI_VESTS,
        _ => return None,
    };
    let (whole, frac) = number.split_once('.')?;
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{whole}{frac}");
    let trimmed = digits.trim_start_matches('0');
    let amount = if trimmed.is_empty() { "0" } else { trimmed };
    Some((amount.to_owned(), frac.len(), nai))
}

/// Rewrites every legacy asset string in `v` (`"1.000 STEEM"`) as a NAI object, the appbase
/// form; handy to compare operation bodies fetched in different encodings.
pub fn assets_to_nai(v: &Value) -> Value {
    match v {
        Value::String(s) => match parse_legacy_asset(s) {
            Some((amount, precision, nai)) => {
                json!({"amount": amount, "precision": precision, "nai": nai})
            }
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(assets_to_nai).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), assets_to_nai(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn assets_to_legacy(v: &Value, symbols: Symbols) -> Value {
    match v {
        Value::Object(map) if map.len() == 3 => {
            let amount = map.get("amount").and_then(Value::as_str);
            let precision = map.get("precision").and_then(Value::as_u64);
            let nai = map.get("nai").and_then(Value::as_str);
            match (amount, precision, nai) {
                (Some(amount), Some(precision), Some(nai))
                    if amount.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    let symbol = match (nai, symbols) {
                        (NAI_LIQUID, Symbols::Steem) => "STEEM",
                        (NAI_LIQUID, Symbols::Hive) => "HIVE",
                        (NAI_DEBT, Symbols::Steem) => "SBD",
                        (NAI_DEBT, Symbols::Hive) => "HBD",
                        (NAI_VESTS, _) => "VESTS",
                        _ => return v.clone(),
                    };
                    let precision = precision as usize;
                    let padded = format!("{amount:0>width$}", width = precision + 1);
                    let (whole, frac) = padded.split_at(padded.len() - precision);
                    Value::String(format!("{whole}.{frac} {symbol}"))
                }
                _ => Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), assets_to_legacy(v, symbols)))
                        .collect(),
                ),
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| assets_to_legacy(i, symbols)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), assets_to_legacy(v, symbols)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// How the fake head moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadSchedule {
    /// The head stays at this block.
    Fixed(u64),
    /// The head is `from` at `since` and advances one block every `every`.
    Advancing {
        /// Head at `since`.
        from: u64,
        /// Time per block.
        every: Duration,
        /// When the head was `from`.
        since: Instant,
    },
}

impl HeadSchedule {
    /// A head advancing from `from` by one block every `every`, starting now.
    pub fn advancing(from: u64, every: Duration) -> Self {
        HeadSchedule::Advancing {
            from,
            every,
            since: Instant::now(),
        }
    }

    fn at(&self, now: Instant) -> u64 {
        match *self {
            HeadSchedule::Fixed(n) => n,
            HeadSchedule::Advancing { from, every, since } => {
                let steps =
                    now.saturating_duration_since(since).as_nanos() / every.as_nanos().max(1);
                from.saturating_add(u64::try_from(steps).unwrap_or(u64::MAX))
            }
        }
    }
}

/// A way to answer a request badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Read the request and never answer (until the client hangs up or `hang_limit` passes).
    Hang,
    /// Reset the connection (RST) without answering.
    Reset,
    /// HTTP 502 with the real HTML error page.
    Html502,
    /// The real JSON-RPC error body with this code (-32603, 1000, -32602, -32003, ...).
    RpcError(i64),
    /// A JSON body cut in half (with a matching `Content-Length`).
    Truncated,
    /// Announce the whole body, send half of it, close the connection.
    PartialWrite,
    /// `null` / `{}` / `{"blocks":[]}` for a block that exists (block methods only).
    Empty,
    /// Global properties lagging `stale_by` blocks with an older time (properties only).
    StaleHead,
    /// The real "Could not find method" error for this request's method.
    MethodNotFound,
    /// The requested block with a `previous` (and id) from another fork (block methods only).
    Fork,
    /// This HTTP status (429 or 503) with `Retry-After: N` seconds (no header when 0) and a
    /// short plain-text body, as a rate-limiting proxy sends it.
    RateLimited(u16, u32),
}

impl Fault {
    /// The transient faults, each a possible answer of a flaky public node.
    pub const TRANSIENT: [Fault; 9] = [
        Fault::Hang,
        Fault::Reset,
        Fault::Html502,
        Fault::RpcError(-32603),
        Fault::RpcError(1000),
        Fault::Truncated,
        Fault::PartialWrite,
        Fault::Empty,
        Fault::StaleHead,
    ];
}

/// Answers matching requests with a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Only this JSON-RPC method (any if `None`).
    pub method: Option<String>,
    /// Only requests covering this block (any if `None`).
    pub block: Option<u64>,
    /// The answer.
    pub fault: Fault,
    /// How many more times (forever if `None`).
    pub times: Option<u32>,
}

/// One request the fake node received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRequest {
    /// JSON-RPC method (empty if the body was not JSON-RPC).
    pub method: String,
    /// First block asked for, if any.
    pub block: Option<u64>,
    /// Blocks asked for (ranges).
    pub count: Option<u64>,
    /// The fault answered, if any.
    pub fault: Option<Fault>,
    /// When the request was read, on the clock of [`Instant`] (`CLOCK_MONOTONIC` on Linux);
    /// the head it was answered against is the head at this instant.
    pub received: Instant,
    /// When the whole response had been written to the socket (`None` when nothing complete
    /// was sent: a hang, reset or partial write, or a failed write). Benchmarks measure
    /// delivery latency from here.
    pub sent: Option<Instant>,
}

/// How a fake node behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Port on 127.0.0.1 (0: ephemeral).
    pub port: u16,
    /// How the head moves.
    pub head: HeadSchedule,
    /// Last irreversible block = head - this.
    pub irreversible_lag: u64,
    /// Probability of a random fault per request.
    pub fault_rate: f64,
    /// Random faults are drawn from these.
    pub fault_mix: Vec<Fault>,
    /// Seed of the fault generator.
    pub seed: u64,
    /// Longest a hanging request is held.
    pub hang_limit: Duration,
    /// How far behind a [`Fault::StaleHead`] answer is.
    pub stale_by: u64,
    /// The chain id the node reports (`get_version`, `get_config`).
    pub chain_id: ChainId,
    /// Serve every block with a rewritten id and `previous` (the block number kept, the rest
    /// replaced), linked among themselves: another chain (a testnet, a mirror) whose blocks
    /// never link to the real ones.
    pub foreign_ids: bool,
    /// Most operations in one `account_history_api.enum_virtual_ops` page (the request's
    /// `limit` may lower it).
    pub virtual_ops_page: usize,
    /// Added before every answer is written, like the round trip to a distant node.
    pub latency: Duration,
}

impl FakeOptions {
    /// A fault-free node whose head is fixed at `head`.
    pub fn fixed(head: u64) -> Self {
        Self {
            port: 0,
            head: HeadSchedule::Fixed(head),
            irreversible_lag: 0,
            fault_rate: 0.0,
            fault_mix: Fault::TRANSIENT.to_vec(),
            seed: 1,
            hang_limit: Duration::from_secs(10),
            stale_by: 30,
            chain_id: ChainId::HIVE,
            foreign_ids: false,
            virtual_ops_page: 1000,
            latency: Duration::ZERO,
        }
    }
}

struct ControlState {
    /// Blocks from this number on are served from another branch (see [`FakeNode::take_branch`]).
    branch_from: Option<u64>,
    rules: Vec<Rule>,
    script: VecDeque<Option<Fault>>,
    rng: fastrand::Rng,
    log: Vec<ServedRequest>,
    fault_rate: f64,
}

struct Control {
    chain: Arc<Chain>,
    options: FakeOptions,
    state: Mutex<ControlState>,
}

/// What to do with one request.
enum Answer {
    Json(String),
    RateLimited(u16, u32),
    Html502,
    Reset,
    Hang,
    PartialWrite(String),
}

/// A running fake node; stops when dropped.
pub struct FakeNode {
    addr: SocketAddr,
    control: Arc<Control>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNode")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeNode {
    /// Binds 127.0.0.1 and starts serving `chain` on a thread of its own.
    pub fn start(chain: Arc<Chain>, options: FakeOptions) -> Result<Self, FakeNodeError> {
        let bind = SocketAddr::from(([127, 0, 0, 1], options.port));
        let io_error = |source| FakeNodeError::Io {
            path: PathBuf::from(bind.to_string()),
            source,
        };
        let listener = StdListener::bind(bind).map_err(io_error)?;
        listener.set_nonblocking(true).map_err(io_error)?;
        let addr = listener.local_addr().map_err(io_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_error)?;
        let control = Arc::new(Control {
            chain,
            state: Mutex::new(ControlState {
                branch_from: None,
                rules: Vec::new(),
                script: VecDeque::new(),
                rng: fastrand::Rng::with_seed(options.seed),
                log: Vec::new(),
                fault_rate: options.fault_rate,
            }),
            options,
        });
        let (stop, stop_rx) = watch::channel(false);
        let serving = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name(format!("fake-node-{}", addr.port()))
            .spawn(move || runtime.block_on(accept_loop(listener, serving, stop_rx)))
            .map_err(io_error)?;
        Ok(Self {
            addr,
            control,
            stop,
            thread: Some(thread),
        })
    }

    /// The node's URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current head block.
    pub fn head(&self) -> u64 {
        self.control.head(Instant::now())
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<ServedRequest> {
        self.control.lock().log.clone()
    }

    /// From now on, serve blocks from `from` on as another branch that lasts: block `from`
    /// with another id (its `previous` still the real block before it), and the blocks after
    /// it linked to it, each with the id [`branch_id`] gives (their operations unchanged).
    /// The head and irreversible block the node reports do not change.
    pub fn take_branch(&self, from: u64) {
        self.control.lock().branch_from = Some(from);
    }

    /// Changes how often a random fault is injected.
    pub fn set_fault_rate(&self, rate: f64) {
        self.control.lock().fault_rate = rate;
    }

    /// Adds a rule (rules are checked in the order added).
    pub fn add_rule(&self, rule: Rule) {
        self.control.lock().rules.push(rule);
    }

    /// Answers the next requests with these faults in order (`None`: answer normally).
    pub fn script(&self, faults: impl IntoIterator<Item = Option<Fault>>) {
        self.control.lock().script.extend(faults);
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: StdListener,
    control: Arc<Control>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let mut connections = tokio::task::JoinSet::new();
    let for_connections = stop.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, Arc::clone(&control), for_connections.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

/// A parsed HTTP request: its body and whether the client wants the connection closed.
struct HttpRequest {
    body: Vec<u8>,
    close: bool,
}

const MAX_HEADER: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// Reads one request from `stream`; `None` when the client closed or sent garbage.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<HttpRequest> {
    let header_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEADER {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end]).ok()?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    let http10 = request_line.ends_with("HTTP/1.0");
    let mut length = 0usize;
    let mut close = http10;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    if length > MAX_BODY {
        return None;
    }
    while buf.len() < header_end + length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[header_end..header_end + length].to_vec();
    buf.drain(..header_end + length);
    Some(HttpRequest { body, close })
}

async fn write_response(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> bool {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Head and body in one vectored write each time, without copying the body (answers of
    // today-sized blocks are megabytes, and this node shares the cores with what it serves).
    let mut out = bytes::Buf::chain(head.as_bytes(), body);
    stream.write_all_buf(&mut out).await.is_ok()
}

async fn serve(mut stream: TcpStream, control: Arc<Control>, mut stop: watch::Receiver<bool>) {
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            request = read_request(&mut stream, &mut buf) => match request {
                Some(r) => r,
                None => return,
            },
        };
        let (answer, logged) = control.answer(&request.body);
        if !control.options.latency.is_zero() {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(control.options.latency) => {}
            }
        }
        match answer {
            Answer::Json(body) => {
                if !write_response(&mut stream, "200 OK", "application/json", body.as_bytes()).await
                {
                    return;
                }
                control.mark_sent(logged);
            }
            Answer::Html502 => {
                let page = control.chain.html_502.as_bytes();
                if !write_response(&mut stream, "502 Bad Gateway", "text/html", page).await {
                    return;
                }
                control.mark_sent(logged);
            }
            Answer::RateLimited(status, secs) => {
                let reason = if status == 429 {
                    "Too Many Requests"
                } else {
                    "Service Unavailable"
                };
                let body = format!("{status} {reason}: slow down\n");
                let retry = if secs > 0 {
                    format!("Retry-After: {secs}\r\n")
                } else {
                    String::new()
                };
                let head = format!(
                    "HTTP/1.1 {status} {reason}\r\n{retry}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                control.mark_sent(logged);
            }
            Answer::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            Answer::Hang => {
                let mut sink = [0u8; 1024];
                let limit = control.options.hang_limit;
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    _ = tokio::time::sleep(limit) => {}
                    _ = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} } => {}
                }
                return;
            }
            Answer::PartialWrite(body) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let mut out = head.into_bytes();
                out.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
                return;
            }
        }
        if request.close {
            return;
        }
    }
}

/// How a regular answer is bent by [`Fault::StaleHead`] or [`Fault::Fork`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Twist {
    Stale,
    /// Fork this block number.
    Fork(u64),
}

/// What a request asks for, as far as fault matching and logging need.
struct Parsed {
    method: String,
    id: Value,
    block: Option<u64>,
    count: Option<u64>,
    params: Value,
}

fn parse_request(body: &[u8]) -> Option<Parsed> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let method = v["method"].as_str()?.to_owned();
    let params = v.get("params").unwrap_or(&Value::Null);
    let (block, count) = match method.as_str() {
        "condenser_api.get_block" | "condenser_api.get_ops_in_block" => (params[0].as_u64(), None),
        "block_api.get_block" | "account_history_api.get_ops_in_block" => {
            (params["block_num"].as_u64(), None)
        }
        "block_api.get_block_range" => (
            params["starting_block_num"].as_u64(),
            params["count"].as_u64(),
        ),
        "account_history_api.enum_virtual_ops" => {
            let begin = params["block_range_begin"].as_u64();
            let end = params["block_range_end"].as_u64();
            (begin, begin.zip(end).map(|(b, e)| e.saturating_sub(b)))
        }
        _ => (None, None),
    };
    Some(Parsed {
        method,
        id: v.get("id").cloned().unwrap_or(Value::Null),
        block,
        count,
        params: params.clone(),
    })
}

fn is_block_method(method: &str) -> bool {
    matches!(
        method,
        "condenser_api.get_block" | "block_api.get_block" | "block_api.get_block_range"
    )
}

fn is_props_method(method: &str) -> bool {
    method.ends_with(".get_dynamic_global_properties")
}

/// Gives a closure the signature of a stored block's text, borrowed from the block.
fn block_text<F>(f: F) -> F
where
    F: for<'b> Fn(&'b StoredBlock, bool) -> std::borrow::Cow<'b, str>,
{
    f
}

fn rpc_result(id: &Value, result: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"result\":{result},\"id\":{id}}}")
}

fn with_id(mut body: Value, id: &Value) -> String {
    if let Value::Object(map) = &mut body {
        map.insert("id".into(), id.clone());
    }
    body.to_string()
}

/// A copy of a stored block's text whose `previous` and id belong to another fork.
fn forked(text: &str) -> String {
    rewrite_ids(text, &["previous", "block_id"])
}

/// The id block `id`'s number has on the other branch (a forked answer, [`FakeNode::take_branch`]):
/// the number kept, the rest replaced.
pub fn branch_id(id: &str) -> String {
    format!(
        "{}{}",
        id.get(..8).unwrap_or("00000000"),
        "f0f0f0f0".repeat(4)
    )
}

/// `text` with the ids under `keys` replaced by their [`branch_id`].
fn rewrite_ids(text: &str, keys: &[&str]) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    for key in keys {
        if let Some(id) = value[*key].as_str().map(branch_id) {
            value[*key] = Value::String(id);
        }
    }
    value.to_string()
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn head(&self, now: Instant) -> u64 {
        let last = self.chain.last().unwrap_or(0);
        self.options.head.at(now).min(last)
    }

    /// The fault for this request, with the block a rule aimed it at.
    fn choose_fault(&self, parsed: &Parsed) -> Option<(Fault, Option<u64>)> {
        let mut state = self.lock();
        let covers = |rule: &Rule| {
            rule.method.as_deref().is_none_or(|m| m == parsed.method)
                && rule.block.is_none_or(|b| match parsed.block {
                    Some(first) => (first..first + parsed.count.unwrap_or(1).max(1)).contains(&b),
                    None => false,
                })
        };
        if let Some(rule) = state
            .rules
            .iter_mut()
            .find(|r| r.times != Some(0) && covers(r))
        {
            if let Some(times) = &mut rule.times {
                *times -= 1;
            }
            return Some((rule.fault, rule.block));
        }
        if let Some(scripted) = state.script.pop_front() {
            return scripted.map(|f| (f, None));
        }
        let rate = state.fault_rate;
        if rate > 0.0 && !self.options.fault_mix.is_empty() && state.rng.f64() < rate {
            let pick = state.rng.usize(..self.options.fault_mix.len());
            return Some((self.options.fault_mix[pick], None));
        }
        None
    }

    /// Stamps the request logged at `index` as completely sent, now.
    fn mark_sent(&self, index: usize) {
        let now = Instant::now();
        if let Some(entry) = self.lock().log.get_mut(index) {
            entry.sent = Some(now);
        }
    }

    /// The answer to one request, and the index of its entry in the request log.
    fn answer(&self, body: &[u8]) -> (Answer, usize) {
        let now = Instant::now();
        let Some(parsed) = parse_request(body) else {
            let logged = self.log(ServedRequest {
                method: String::new(),
                block: None,
                count: None,
                fault: None,
                received: now,
                sent: None,
            });
            let answer = Answer::Json(with_id(self.chain.error_body(-32700), &Value::Null));
            return (answer, logged);
        };
        let (fault, aimed_at) = match self.choose_fault(&parsed) {
            Some((Fault::Empty | Fault::Fork, _)) if !is_block_method(&parsed.method) => {
                (Some(Fault::Reset), None)
            }
            Some((Fault::StaleHead, _)) if !is_props_method(&parsed.method) => {
                (Some(Fault::Reset), None)
            }
            Some((fault, at)) => (Some(fault), at),
            None => (None, None),
        };
        let logged = self.log(ServedRequest {
            method: parsed.method.clone(),
            block: parsed.block,
            count: parsed.count,
            fault,
            received: now,
            sent: None,
        });
        let answer = match fault {
            Some(Fault::Hang) => Answer::Hang,
            Some(Fault::Reset) => Answer::Reset,
            Some(Fault::Html502) => Answer::Html502,
            Some(Fault::RateLimited(status, secs)) => Answer::RateLimited(status, secs),
            Some(Fault::RpcError(code)) => {
                Answer::Json(with_id(self.chain.error_body(code), &parsed.id))
            }
            Some(Fault::MethodNotFound) => Answer::Json(self.method_not_found(&parsed)),
            Some(Fault::Truncated) => {
                let mut full = self.normal(&parsed, now, None);
                full.truncate(full.len() / 2);
                Answer::Json(full)
            }
            Some(Fault::PartialWrite) => Answer::PartialWrite(self.normal(&parsed, now, None)),
            Some(Fault::Empty) => {
                let empty = match parsed.method.as_str() {
                    "condenser_api.get_block" => "null",
                    "block_api.get_block" => "{}",
                    _ => "{\"blocks\":[]}",
                };
                Answer::Json(rpc_result(&parsed.id, empty))
            }
            Some(Fault::StaleHead) => Answer::Json(self.normal(&parsed, now, Some(Twist::Stale))),
            Some(Fault::Fork) => {
                let at = aimed_at.or(parsed.block).unwrap_or(0);
                Answer::Json(self.normal(&parsed, now, Some(Twist::Fork(at))))
            }
            None => Answer::Json(self.normal(&parsed, now, None)),
        };
        (answer, logged)
    }

    /// Appends `entry` to the request log; returns its index.
    fn log(&self, entry: ServedRequest) -> usize {
        let mut state = self.lock();
        state.log.push(entry);
        state.log.len() - 1
    }

    /// One page of `account_history_api.enum_virtual_ops`: the recorded virtual operations of
    /// blocks `block_range_begin..block_range_end` up to the head (appbase encoding), from
    /// `operation_begin` on, at most `virtual_ops_page` (or `limit`) of them. An operation's id
    /// is its block number times 2^32 plus its place in the block's answer, plus one.
    fn enum_virtual_ops(&self, parsed: &Parsed, head: u64) -> Value {
        let params = &parsed.params;
        let begin = params["block_range_begin"].as_u64().unwrap_or(0);
        let end = params["block_range_end"].as_u64().unwrap_or(0);
        let from = params["operation_begin"].as_u64().unwrap_or(0);
        let limit = params["limit"]
            .as_u64()
            .map_or(self.options.virtual_ops_page, |l| l as usize)
            .min(self.options.virtual_ops_page)
            .max(1);
        let mut page = Vec::new();
        let mut next = None;
        let last = end.min(head.saturating_add(1));
        for (&number, entries) in self.chain.ops.range(begin..last.max(begin)) {
            for (i, entry) in entries.as_array().into_iter().flatten().enumerate() {
                let op_id = (number << 32) + i as u64 + 1;
                if op_id < from {
                    continue;
                }
                if page.len() == limit {
                    next = Some((number, op_id));
                    break;
                }
                let mut entry = entry.clone();
                entry["op"] = op_to_appbase(&entry["op"]);
                entry["operation_id"] = json!(op_id);
                page.push(entry);
            }
            if next.is_some() {
                break;
            }
        }
        let (next_block, next_op) = next.unwrap_or((end, 0));
        json!({
            "ops": page,
            "ops_by_block": [],
            "next_block_range_begin": next_block,
            "next_operation_begin": next_op,
        })
    }

    fn method_not_found(&self, parsed: &Parsed) -> String {
        let short = parsed.method.rsplit('.').next().unwrap_or_default();
        let body = json!({
            "jsonrpc": "2.0",
            "error": {
                "code": -32002,
                "message": format!("Assert Exception:method_itr != api_itr->second.end(): Could not find method {short}"),
                "data": {"code": 10, "name": "assert_exception", "message": "Assert Exception"}
            }
        });
        with_id(body, &parsed.id)
    }

    /// The regular answer, possibly twisted into a stale head or a forked block.
    fn normal(&self, parsed: &Parsed, now: Instant, twist: Option<Twist>) -> String {
        let head = self.head(now);
        let chain = &self.chain;
        let id = &parsed.id;
        let branch_from = self.lock().branch_from;
        let present = |n: u64| if n <= head { chain.block(n) } else { None };
        // Borrowed unless rewritten: a today-sized block is about 100 KB.
        let text_of = block_text(|b, appbase| {
            let text = if appbase { &b.appbase } else { &b.legacy };
            let fork_here = twist == Some(Twist::Fork(b.number));
            match branch_from {
                _ if fork_here || self.options.foreign_ids => forked(text).into(),
                // The branch's first block forks off the chain: its `previous` is a real block.
                Some(from) if b.number == from => rewrite_ids(text, &["block_id"]).into(),
                Some(from) if b.number > from => forked(text).into(),
                _ => text.as_str().into(),
            }
        });
        match parsed.method.as_str() {
            "condenser_api.get_block" => {
                let block = parsed.block.and_then(present);
                rpc_result(id, &block.map_or("null".into(), |b| text_of(b, false)))
            }
            "block_api.get_block" => {
                let block = parsed.block.and_then(present);
                let result = block.map_or_else(
                    || "{}".to_owned(),
                    |b| format!("{{\"block\":{}}}", text_of(b, true)),
                );
                rpc_result(id, &result)
            }
            "block_api.get_block_range" => {
                let count = parsed.count.unwrap_or(0);
                if count > u64::from(broadcaster::node::MAX_RANGE) {
                    return with_id(self.chain.error_body(-32003), id);
                }
                let first = parsed.block.unwrap_or(0);
                // Built in one buffer: an answer of many today-sized blocks is megabytes.
                let blocks: Vec<&StoredBlock> = (first..first.saturating_add(count))
                    .map_while(present)
                    .collect();
                let len: usize = blocks.iter().map(|b| b.appbase.len() + 1).sum();
                let id_text = id.to_string();
                let mut body = String::with_capacity(len + id_text.len() + 48);
                body.push_str("{\"jsonrpc\":\"2.0\",\"result\":{\"blocks\":[");
                for (i, b) in blocks.into_iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&text_of(b, true));
                }
                body.push_str("]},\"id\":");
                body.push_str(&id_text);
                body.push('}');
                body
            }
            m if is_props_method(m) => {
                let stale = if twist == Some(Twist::Stale) {
                    self.options.stale_by
                } else {
                    0
                };
                let head = head.saturating_sub(stale);
                let lib = head.saturating_sub(self.options.irreversible_lag);
                let mut props = if m.starts_with("database_api") {
                    chain.db_props.clone()
                } else {
                    chain.props.clone()
                };
                let head_id = chain
                    .block(head)
                    .map(|b| b.id.clone())
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("{head:08x}{}", "0".repeat(32)));
                let time = block_time_text(chain.head_time(head));
                props["head_block_number"] = json!(head);
                props["head_block_id"] = json!(head_id);
                props["last_irreversible_block_num"] = json!(lib);
                props["time"] = json!(time);
                rpc_result(id, &props.to_string())
            }
            "condenser_api.get_ops_in_block" | "account_history_api.get_ops_in_block" => {
                let entries = parsed
                    .block
                    .filter(|&n| n <= head)
                    .and_then(|n| chain.ops.get(&n))
                    .cloned()
                    .unwrap_or_else(|| json!([]));
                // Each API answers in its own encoding, like a real node: condenser_api in the
                // legacy one, account_history_api in the appbase one.
                let symbols = if self.options.chain_id == ChainId::STEEM {
                    Symbols::Steem
                } else {
                    Symbols::Hive
                };
                let legacy = parsed.method.starts_with("condenser");
                let mut entries = entries;
                if let Value::Array(list) = &mut entries {
                    for entry in list {
                        let op = &entry["op"];
                        let converted = if legacy {
                            op_to_legacy(op, symbols)
                        } else {
                            op_to_appbase(op)
                        };
                        entry["op"] = converted;
                    }
                }
                let result = if legacy {
                    entries
                } else {
                    json!({"ops": entries})
                };
                rpc_result(id, &result.to_string())
            }
            "account_history_api.enum_virtual_ops" => {
                rpc_result(id, &self.enum_virtual_ops(parsed, head).to_string())
            }
            "database_api.get_version" | "condenser_api.get_version" => rpc_result(
                id,
                &json!({
                    "blockchain_version": "1.27.0",
                    "fc_revision": "0000000000000000000000000000000000000000",
                    "chain_id": self.options.chain_id.to_string(),
                })
                .to_string(),
            ),
            "condenser_api.get_config" => {
                let key = if self.options.chain_id == ChainId::STEEM {
                    "STEEM_CHAIN_ID"
                } else {
                    "HIVE_CHAIN_ID"
                };
                rpc_result(
                    id,
                    &json!({ key: self.options.chain_id.to_string(), "STEEM_BLOCK_INTERVAL": 3 })
                        .to_string(),
                )
            }
            _ => self.method_not_found(parsed),
        }
    }
}

/// Formats unix seconds as `YYYY-MM-DDTHH:MM:SS`.
fn block_time_text(secs: u32) -> String {
    let secs = u64::from(secs);
    let (mut days, rem) = (secs / 86_400, secs % 86_400);
    let mut year = 1970u64;
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    loop {
        let len = 365 + u64::from(leap(year));
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let month_days = [
        31,
        28 + u64::from(leap(year)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= month_days[month] {
        days -= month_days[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        month + 1,
        days + 1,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_strings_whole() {
        let text = "{ \"a\" : [1, 2],\n \"b\": \"x y \\\" z\" }";
        assert_eq!(compact(text), r#"{"a":[1,2],"b":"x y \" z"}"#);
        let response = r#"{"jsonrpc":"2.0", "result": {"k": [ 1 ]}, "id": 1}"#;
        assert_eq!(result_text(response).unwrap(), Some(r#"{"k": [ 1 ]}"#));
        assert_eq!(result_text(r#"{"id":1}"#).unwrap(), None);
    }

    #[test]
    fn time_text_round_trips() {
        for text in [
            "1970-01-01T00:00:00",
            "2016-02-29T23:59:59",
            "2020-11-07T21:11:36",
            "2100-03-01T00:00:00",
        ] {
            let secs = block::parse_timestamp(text).unwrap();
            assert_eq!(block_time_text(secs), text);
        }
    }

    #[test]
    fn assets_convert_both_ways() {
        let legacy =
            json!({"a": "14403.626449 VESTS", "b": ["0.001 STEEM", "812.683 SBD"], "memo": "hi"});
        let nai = assets_to_nai(&legacy);
        assert_eq!(
            nai["a"],
            json!({"amount": "14403626449", "precision": 6, "nai": NAI_VESTS})
        );
        assert_eq!(
            nai["b"][0],
            json!({"amount": "1", "precision": 3, "nai": NAI_LIQUID})
        );
        assert_eq!(assets_to_legacy(&nai, Symbols::Steem), legacy);
        assert_eq!(
            assets_to_legacy(&nai, Symbols::Hive)["b"][1],
            json!("812.683 HBD")
        );
        assert_eq!(parse_legacy_asset("1.000 FOO"), None);
        assert_eq!(parse_legacy_asset(".5 STEEM"), None);
    }

    #[test]
    fn ops_convert_both_ways() {
        let legacy = json!(["transfer", {"from": "a", "amount": "1.000 HIVE"}]);
        let appbase = op_to_appbase(&legacy);
        assert_eq!(appbase["type"], "transfer_operation");
        assert_eq!(appbase["value"]["amount"]["amount"], "1000");
        assert_eq!(op_to_legacy(&appbase, Symbols::Hive), legacy);
    }

    #[test]
    fn head_schedules() {
        let since = Instant::now();
        let s = HeadSchedule::Advancing {
            from: 10,
            every: Duration::from_millis(100),
            since,
        };
        assert_eq!(s.at(since), 10);
        assert_eq!(s.at(since + Duration::from_millis(350)), 13);
        assert_eq!(HeadSchedule::Fixed(7).at(since), 7);
    }
}
