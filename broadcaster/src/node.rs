//! A JSON-RPC 2.0 client for one Steem or Hive API node, and the classification of its failures.
//!
//! [`NodeClient`] speaks to one node through a shared [`reqwest::Client`] (connection reuse,
//! connect and request timeouts). Each call returns decoded data or a [`NodeError`], and
//! [`NodeError::fault`] sorts every error into one of three [`Fault`]s:
//!
//! - [`Fault::Transient`]: the node (or the path to it) is unwell; try another node and come back
//!   later. Timeouts, connection refused or reset, HTTP 5xx and 429 (honouring `Retry-After`), an HTML page instead of JSON,
//!   truncated or malformed JSON, JSON-RPC -32603, the API proxy's 1000/1050/1100 codes, a block
//!   that should exist but comes back `null`/`{}`, a lagging node, and asserts about missing
//!   blocks or database locks.
//! - [`Fault::MethodMissing`]: the node does not serve this method (-32601, or -32002 "Could not
//!   find method/API"); use the other method on this node.
//! - [`Fault::Deterministic`]: the request itself is refused (invalid params -32602, other
//!   asserts -32003/-32000, parse errors); asking again will not help.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::json;

use consumer_sdk::ChainId;

use crate::block::{self, DecodeError, DecodedBlock, DecodedOp};
use crate::json::{self, JsonError, Kind, Val};
use bytes::Bytes;

/// Most blocks `block_api.get_block_range` returns in one call.
pub const MAX_RANGE: u32 = 1000;

/// The JSON-RPC methods the broadcaster uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `condenser_api.get_block` (legacy encoding; `null` when absent).
    CondenserGetBlock,
    /// `block_api.get_block` (appbase encoding; `{}` when absent).
    BlockApiGetBlock,
    /// `block_api.get_block_range` (Hive; appbase encoding; `{"blocks":[]}` when absent).
    BlockApiGetBlockRange,
    /// `condenser_api.get_dynamic_global_properties`.
    CondenserGetProps,
    /// `database_api.get_dynamic_global_properties`.
    DatabaseGetProps,
    /// `condenser_api.get_ops_in_block`.
    CondenserGetOpsInBlock,
    /// `account_history_api.get_ops_in_block`.
    AccountHistoryGetOpsInBlock,
    /// `account_history_api.enum_virtual_ops` (the virtual operations of a range of blocks,
    /// paged; appbase encoding).
    AccountHistoryEnumVirtualOps,
    /// `database_api.get_version` (`chain_id`).
    DatabaseGetVersion,
    /// `condenser_api.get_version` (`chain_id`).
    CondenserGetVersion,
    /// `condenser_api.get_config` (`STEEM_CHAIN_ID` / `HIVE_CHAIN_ID`).
    CondenserGetConfig,
}

impl Method {
    /// Every method, in a fixed order.
    pub const ALL: [Method; 11] = [
        Method::CondenserGetBlock,
        Method::BlockApiGetBlock,
        Method::BlockApiGetBlockRange,
        Method::CondenserGetProps,
        Method::DatabaseGetProps,
        Method::CondenserGetOpsInBlock,
        Method::AccountHistoryGetOpsInBlock,
        Method::AccountHistoryEnumVirtualOps,
        Method::DatabaseGetVersion,
        Method::CondenserGetVersion,
        Method::CondenserGetConfig,
    ];

    /// The JSON-RPC method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::CondenserGetBlock => "condenser_api.get_block",
            Method::BlockApiGetBlock => "block_api.get_block",
            Method::BlockApiGetBlockRange => "block_api.get_block_range",
            Method::CondenserGetProps => "condenser_api.get_dynamic_global_properties",
            Method::DatabaseGetProps => "database_api.get_dynamic_global_properties",
            Method::CondenserGetOpsInBlock => "condenser_api.get_ops_in_block",
            Method::AccountHistoryGetOpsInBlock => "account_history_api.get_ops_in_block",
            Method::AccountHistoryEnumVirtualOps => "account_history_api.enum_virtual_ops",
            Method::DatabaseGetVersion => "database_api.get_version",
            Method::CondenserGetVersion => "condenser_api.get_version",
            Method::CondenserGetConfig => "condenser_api.get_config",
        }
    }

    /// The method that answers the same question when this one is missing.
    pub fn alternative(self) -> Option<Method> {
        match self {
            Method::CondenserGetBlock => Some(Method::BlockApiGetBlock),
            Method::BlockApiGetBlock => Some(Method::CondenserGetBlock),
            // Ranges fall back to single-block calls, decided by the caller.
            Method::BlockApiGetBlockRange | Method::AccountHistoryEnumVirtualOps => None,
            Method::CondenserGetProps => Some(Method::DatabaseGetProps),
            Method::DatabaseGetProps => Some(Method::CondenserGetProps),
            Method::CondenserGetOpsInBlock => Some(Method::AccountHistoryGetOpsInBlock),
            Method::AccountHistoryGetOpsInBlock => Some(Method::CondenserGetOpsInBlock),
            // Chain id sources are tried in a fixed order by `NodeClient::chain_id`.
            Method::DatabaseGetVersion
            | Method::CondenserGetVersion
            | Method::CondenserGetConfig => None,
        }
    }

    /// The method with this JSON-RPC name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    pub(crate) fn bit(self) -> u16 {
        1 << Method::ALL.iter().position(|&m| m == self).unwrap_or(0)
    }
}

/// How a failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Try another node; this one cools down.
    Transient,
    /// This node lacks the method; use its alternative.
    MethodMissing,
    /// The request is refused; report it instead of retrying forever.
    Deterministic,
}

/// Everything that can go wrong talking to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// No complete answer within the request timeout.
    #[error("timed out")]
    Timeout,
    /// The TCP or TLS connection could not be made (refused, unreachable, DNS, ...).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection broke while sending or receiving (reset, closed early, ...).
    #[error("transport error: {0}")]
    Transport(String),
    /// HTTP 429 or 503: the node asks to slow down.
    #[error("HTTP {status} ({body:?}){}", retry_after.map(|d| format!(", Retry-After {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
        /// How long the node asked to wait (capped at a minute).
        retry_after: Option<Duration>,
    },
    /// The connection closed before the whole body arrived.
    #[error("truncated reply: {received} bytes received of {}", announced.map_or("an unknown length".to_owned(), |n| format!("{n} announced")))]
    Truncated {
        /// Bytes received.
        received: u64,
        /// `Content-Length`, if announced.
        announced: Option<u64>,
    },
    /// A non-success HTTP status without a JSON-RPC error inside.
    #[error("HTTP status {0}")]
    Status(u16),
    /// An HTML page (a proxy's error page) instead of JSON.
    #[error("HTML page instead of JSON (HTTP {0})")]
    Html(u16),
    /// The body is not a usable JSON-RPC response (empty, truncated, invalid, wrong id, ...).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A JSON-RPC error object.
    #[error("JSON-RPC error {code}: {message}")]
    Rpc {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// The node does not have this method.
    #[error("{} is not available: {message}", method.name())]
    MethodNotFound {
        /// The method asked for.
        method: Method,
        /// The node's message.
        message: String,
    },
    /// The answer decoded but is not a valid block or operation list.
    #[error("bad data: {0}")]
    Decode(#[from] DecodeError),
    /// The node answered about a different block than the one asked for.
    #[error("asked for block {asked}, got block {got}")]
    WrongBlock {
        /// Block asked for.
        asked: u64,
        /// Block received.
        got: u64,
    },
    /// The node does not have a block that exists.
    #[error("block {block} missing although it exists (chain is at least at {known})")]
    MissingBlock {
        /// The block asked for.
        block: u64,
        /// What is known about the chain's progress.
        known: u64,
    },
    /// The node lags behind the others or its head is too old.
    #[error("stale node: {0}")]
    Stale(String),
    /// The block does not link to the block published before it.
    #[error("block {block} has previous {previous}, but the published block {} is {expected}", block - 1)]
    Fork {
        /// The block that does not link.
        block: u64,
        /// Its `previous`.
        previous: String,
        /// The id of the published block before it.
        expected: String,
    },
    /// Asked for a block of the branch being taken, the node served another branch's.
    #[error("block {block} is {id}, not {expected} of the branch being taken")]
    OtherBranch {
        /// The block asked for.
        block: u64,
        /// The id served.
        id: String,
        /// The id the branch being taken has.
        expected: String,
    },
    /// The node offers none of the methods for this request.
    #[error("node offers none of: {0}")]
    Unsupported(String),
}

impl From<JsonError> for NodeError {
    fn from(e: JsonError) -> Self {
        NodeError::Malformed(e.to_string())
    }
}

impl NodeError {
    /// How this error should be handled.
    pub fn fault(&self) -> Fault {
        match self {
            NodeError::MethodNotFound { .. } => Fault::MethodMissing,
            NodeError::Rpc { code, message } => classify_rpc(*code, message),
            NodeError::Unsupported(_) => Fault::Deterministic,
            _ => Fault::Transient,
        }
    }
}

/// True when a JSON-RPC error says the method (or its API) does not exist on the node.
pub fn is_method_missing(code: i64, message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    code == -32601
        || (code == -32002
            && (lower.contains("could not find method") || lower.contains("could not find api")))
}

/// Sorts a JSON-RPC error by code and message.
pub fn classify_rpc(code: i64, message: &str) -> Fault {
    if is_method_missing(code, message) {
        return Fault::MethodMissing;
    }
    let lower = message.to_ascii_lowercase();
    let about_missing_block = lower.contains("block")
        && [
            "unknown",
            "not found",
            "could not find",
            "does not exist",
            "no block",
        ]
        .iter()
        .any(|w| lower.contains(w));
    let mentions_lock = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word == "lock");
    match code {
        -32603 | 1000 | 1050 | 1100 => Fault::Transient,
        -32000 | -32003 if about_missing_block || mentions_lock => Fault::Transient,
        -32700 | -32600 | -32602 | -32003..=-32000 => Fault::Deterministic,
        400..=499 => Fault::Deterministic,
        _ => Fault::Transient,
    }
}

/// `condenser_api.get_dynamic_global_properties`, reduced to what following the chain needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalProps {
    /// Newest block.
    pub head_block_number: u64,
    /// Newest irreversible block.
    pub last_irreversible_block_num: u64,
    /// Head block time, unix seconds.
    pub time: u32,
}

/// A block as fetched: decoded, plus the block object as compact JSON (for `--record`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBlock {
    /// The decoded block.
    pub block: DecodedBlock,
    /// The block object exactly as the node sent it, minus whitespace outside strings; empty
    /// unless the node client keeps it ([`NodeClient::keep_raw`]).
    pub raw: Vec<u8>,
    /// Whether its operations came in the appbase encoding (`{"type":..,"value":..}`) rather
    /// than the legacy one (`["vote",{..}]`); `None` for a block without operations.
    pub appbase: Option<bool>,
    /// Ids of the published blocks this block's branch replaces, oldest first, from this
    /// block's number on: set by the follower on the first block of another branch (head
    /// mode); empty otherwise.
    pub orphaned: Vec<String>,
}

impl FetchedBlock {
    /// About how many bytes of memory the block holds (bodies, topics, record overheads).
    pub fn weight(&self) -> u64 {
        let ops: usize = self
            .block
            .ops
            .iter()
            .map(|op| op.body.len() + op.topic.len() + 64)
            .sum();
        (self.raw.len() + ops + 256) as u64
    }
}

/// Builds the HTTP client shared by all nodes.
pub fn http_client(
    request_timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client, NodeError> {
    reqwest::Client::builder()
        .timeout(request_timeout)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!(
            "steem-ring-broadcaster/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| NodeError::Connect(e.to_string()))
}

/// A client for one node.
#[derive(Debug)]
pub struct NodeClient {
    http: reqwest::Client,
    url: reqwest::Url,
    next_id: AtomicU64,
    keep_raw: bool,
}

fn transport_error(e: reqwest::Error) -> NodeError {
    if e.is_timeout() {
        NodeError::Timeout
    } else if e.is_connect() {
        NodeError::Connect(error_chain(&e))
    } else {
        NodeError::Transport(error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Many errors already print their source: say each cause once.
        let cause = s.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = s.source();
    }
    text
}

fn none_if_empty(v: Val<'_>) -> Option<Val<'_>> {
    let empty = v.is_null() || (v.kind() == Kind::Object && v.len() == 0);
    (!empty).then_some(v)
}

/// The `result` of a JSON-RPC answer, handed to `extract`; the node's error, or what is wrong
/// with the answer.
fn answer<R>(
    method: Method,
    status: reqwest::StatusCode,
    id: u64,
    bytes: &Bytes,
    extract: impl FnOnce(Val<'_>) -> Result<R, NodeError>,
) -> Result<R, NodeError> {
    let parsed = json::with_shared_doc(bytes, |root| {
        if root.kind() != Kind::Object {
            return Err(NodeError::Malformed(format!(
                "expected a JSON-RPC object, found {}",
                root.kind().name()
            )));
        }
        if let Some(error) = root.get("error") {
            let code = error.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_owned();
            return Err(if is_method_missing(code, &message) {
                NodeError::MethodNotFound { method, message }
            } else {
                NodeError::Rpc { code, message }
            });
        }
        if let Some(got) = root.get("id").and_then(|v| v.as_u64())
            && got != id
        {
            return Err(NodeError::Malformed(format!(
                "answer to request {got}, not {id}"
            )));
        }
        let result = root
            .get("result")
            .ok_or_else(|| NodeError::Malformed("no result".into()))?;
        extract(result)
    });
    match parsed {
        Err(NodeError::Malformed(_)) if !status.is_success() => {
            Err(NodeError::Status(status.as_u16()))
        }
        Err(NodeError::Malformed(reason)) if ends_mid_document(bytes) => {
            Err(NodeError::Malformed(format!(
                "truncated JSON: the {} byte body ends mid-document ({reason})",
                bytes.len()
            )))
        }
        other => other,
    }
}

fn fetched(v: Val<'_>, path: &str, asked: u64, keep_raw: bool) -> Result<FetchedBlock, NodeError> {
    let block = block::block_from(v, path)?;
    if block.number != asked {
        return Err(NodeError::WrongBlock {
            asked,
            got: block.number,
        });
    }
    let mut appbase = None;
    if let Some(transactions) = v.get("transactions") {
        for trx in transactions.elements() {
            if let Some(op) = trx.get("operations").and_then(|ops| ops.elements().next()) {
                appbase = Some(op.kind() == Kind::Object);
                break;
            }
        }
    }
    Ok(FetchedBlock {
        block,
        raw: if keep_raw { v.compact() } else { Vec::new() },
        appbase,
        orphaned: Vec::new(),
    })
}

/// Longest a `Retry-After` is honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A `Retry-After` value (delay in seconds, or an HTTP date) as a wait from `now`, capped at
/// [`MAX_RETRY_AFTER`]; `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The start of a body for a log line: at most 120 characters of it, on one line.
fn cut(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(480)]);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

/// Whether a JSON body stops before its outermost value closes.
fn ends_mid_document(bytes: &[u8]) -> bool {
    let trimmed = bytes.trim_ascii();
    matches!(trimmed.first(), Some(b'{' | b'[')) && !matches!(trimmed.last(), Some(b'}' | b']'))
}

/// Reads a whole body; a connection that closes before the announced length is
/// [`NodeError::Truncated`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, NodeError> {
    let announced = response.content_length();
    let mut body = Vec::with_capacity(announced.unwrap_or(0).min(16 << 20) as usize);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(NodeError::Timeout),
            Err(e) if e.is_body() || e.is_decode() => {
                return Err(NodeError::Truncated {
                    received: body.len() as u64,
                    announced,
                });
            }
            Err(e) => return Err(transport_error(e)),
        }
    }
}

impl NodeClient {
    /// A client for the node at `url` (http or https).
    pub fn new(http: reqwest::Client, url: &str) -> Result<Self, NodeError> {
        let url =
            reqwest::Url::parse(url).map_err(|e| NodeError::Connect(format!("{url}: {e}")))?;
        Ok(Self {
            http,
            url,
            next_id: AtomicU64::new(1),
            keep_raw: false,
        })
    }

    /// Whether fetched blocks keep their JSON as sent ([`FetchedBlock::raw`], for `--record`).
    pub fn keep_raw(mut self, keep: bool) -> Self {
        self.keep_raw = keep;
        self
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Sends one call and hands the `result` to `extract`.
    async fn call<R>(
        &self,
        method: Method,
        params: serde_json::Value,
        extract: impl FnOnce(Val<'_>) -> Result<R, NodeError>,
    ) -> Result<R, NodeError> {
        let (status, id, bytes) = self.send(method, params).await?;
        answer(method, status, id, &bytes, extract)
    }

    /// Sends one call; its HTTP status, request id and body, once the body is known not to be
    /// a rate limit, an HTML page or empty.
    async fn send(
        &self,
        method: Method,
        params: serde_json::Value,
    ) -> Result<(reqwest::StatusCode, u64, Bytes), NodeError> {
        // Relaxed: the id only has to differ between calls; nothing is ordered by it.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method.name(), "params": params});
        crate::metrics::request(self.url(), method.name());
        let response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = read_body(response).await?;
        if matches!(status.as_u16(), 429 | 503) {
            return Err(NodeError::RateLimited {
                status: status.as_u16(),
                body: cut(&bytes),
                retry_after,
            });
        }
        let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'<') => return Err(NodeError::Html(status.as_u16())),
            None if status.is_success() => return Err(NodeError::Malformed("empty body".into())),
            None => return Err(NodeError::Status(status.as_u16())),
            Some(_) => {}
        }
        // Op bodies are handed on as slices of this buffer, not copies.
        Ok((status, id, Bytes::from(bytes)))
    }

    /// One block by number with `condenser_api.get_block` or `block_api.get_block`;
    /// `Ok(None)` when the node does not have it (yet).
    pub async fn get_block(
        &self,
        number: u64,
        method: Method,
    ) -> Result<Option<FetchedBlock>, NodeError> {
        match method {
            Method::CondenserGetBlock => {
                self.call(method, json!([number]), |result| {
                    none_if_empty(result)
                        .map(|b| fetched(b, "result", number, self.keep_raw))
                        .transpose()
                })
                .await
            }
            Method::BlockApiGetBlock => {
                self.call(
                    method,
                    json!({"block_num": number}),
                    |result| match none_if_empty(result).map(|r| r.get("block")) {
                        None | Some(None) => Ok(None),
                        Some(Some(b)) => none_if_empty(b)
                            .map(|b| fetched(b, "result.block", number, self.keep_raw))
                            .transpose(),
                    },
                )
                .await
            }
            other => Err(NodeError::Unsupported(format!(
                "{} is not a block method",
                other.name()
            ))),
        }
    }

    /// Up to `count` (at most [`MAX_RANGE`]) consecutive blocks from `first` with
    /// `block_api.get_block_range`; empty when the node does not have `first` (yet).
    pub async fn get_block_range(
        &self,
        first: u64,
        count: u32,
    ) -> Result<Vec<FetchedBlock>, NodeError> {
        let count = count.clamp(1, MAX_RANGE);
        let method = Method::BlockApiGetBlockRange;
        let (status, id, bytes) = self
            .send(method, json!({"starting_block_num": first, "count": count}))
            .await?;
        // Block by block: a range answer parsed whole is several MB of parser state, past the
        // caches; its blocks parsed one at a time stay in them.
        if let Some(blocks) = self.range_in_pieces(status, id, &bytes, first, count) {
            return blocks;
        }
        answer(method, status, id, &bytes, |result| {
            let blocks = block::field(result, "blocks", "result")?;
            if blocks.kind() != Kind::Array {
                return Err(block::type_error("result.blocks", "an array", blocks).into());
            }
            if blocks.len() > count as usize {
                return Err(NodeError::Malformed(format!(
                    "{} blocks for a range of {count}",
                    blocks.len()
                )));
            }
            blocks
                .elements()
                .enumerate()
                .map(|(i, b)| {
                    fetched(
                        b,
                        &format!("result.blocks[{i}]"),
                        first + i as u64,
                        self.keep_raw,
                    )
                })
                .collect()
        })
    }

    /// A `get_block_range` answer parsed in pieces: the envelope with its `blocks` emptied,
    /// then each block on its own. `None` when the answer does not have that shape, or the
    /// envelope is not right: then it is parsed whole, which says what is wrong.
    fn range_in_pieces(
        &self,
        status: reqwest::StatusCode,
        id: u64,
        bytes: &Bytes,
        first: u64,
        count: u32,
    ) -> Option<Result<Vec<FetchedBlock>, NodeError>> {
        let split = json::split_array(bytes, &["result", "blocks"])?;
        let mut envelope = Vec::with_capacity(bytes.len() - split.array.len() + 2);
        envelope.extend_from_slice(&bytes[..split.array.start]);
        envelope.extend_from_slice(b"[]");
        envelope.extend_from_slice(&bytes[split.array.end..]);
        let envelope = Bytes::from(envelope);
        answer(Method::BlockApiGetBlockRange, status, id, &envelope, |_| {
            Ok(())
        })
        .ok()?;
        if split.elements.len() > count as usize {
            return Some(Err(NodeError::Malformed(format!(
                "{} blocks for a range of {count}",
                split.elements.len()
            ))));
        }
        Some(
            (0..split.elements.len())
                .map(|i| {
                    json::with_element(bytes, &split, i, |b| {
                        fetched(
                            b,
                            &format!("result.blocks[{i}]"),
                            first + i as u64,
                            self.keep_raw,
                        )
                    })
                })
                .collect(),
        )
    }

    /// Head, last irreversible block and head time.
    pub async fn get_dynamic_global_properties(
        &self,
        method: Method,
    ) -> Result<GlobalProps, NodeError> {
        let params = match method {
            Method::CondenserGetProps => json!([]),
            Method::DatabaseGetProps => json!({}),
            other => {
                return Err(NodeError::Unsupported(format!(
                    "{} is not a properties method",
                    other.name()
                )));
            }
        };
        self.call(method, params, |result| {
            let head = block::u64_of(
                block::field(result, "head_block_number", "result")?,
                "result.head_block_number",
            )?;
            let lib = block::u64_of(
                block::field(result, "last_irreversible_block_num", "result")?,
                "result.last_irreversible_block_num",
            )?;
            let time_text = block::str_of(block::field(result, "time", "result")?, "result.time")?;
            let time = block::parse_timestamp(time_text).ok_or_else(|| {
                block::invalid("result.time", format!("{time_text:?} is not a time"))
            })?;
            Ok(GlobalProps {
                head_block_number: head,
                last_irreversible_block_num: lib,
                time,
            })
        })
        .await
    }

    /// The node's chain id: `chain_id` of `database_api.get_version`, else of
    /// `condenser_api.get_version`, else `STEEM_CHAIN_ID` / `HIVE_CHAIN_ID` of
    /// `condenser_api.get_config`. A method the node lacks, or an answer without the field, moves
    /// on to the next source; transport and server faults are returned as they are.
    pub async fn chain_id(&self) -> Result<ChainId, NodeError> {
        let mut lacking = Vec::new();
        for (method, params, keys) in [
            (Method::DatabaseGetVersion, json!({}), &["chain_id"][..]),
            (Method::CondenserGetVersion, json!([]), &["chain_id"][..]),
            (
                Method::CondenserGetConfig,
                json!([]),
                &["HIVE_CHAIN_ID", "STEEM_CHAIN_ID", "STEEMIT_CHAIN_ID"][..],
            ),
        ] {
            let answer = self
                .call(method, params, |result| {
                    let Some((key, value)) =
                        keys.iter().find_map(|k| result.get(k).map(|v| (*k, v)))
                    else {
                        return Ok(None);
                    };
                    let text = block::str_of(value, format!("result.{key}"))?;
                    ChainId::from_hex(text).map(Some).map_err(|_| {
                        NodeError::Decode(block::invalid(
                            format!("result.{key}"),
                            format!("{text:?} is not a chain id (64 hexadecimal digits)"),
                        ))
                    })
                })
                .await;
            match answer {
                Ok(Some(id)) => return Ok(id),
                Ok(None) => lacking.push(format!("{} has no chain id", method.name())),
                Err(NodeError::MethodNotFound { .. }) => {
                    lacking.push(format!("no {}", method.name()));
                }
                Err(e) => return Err(e),
            }
        }
        Err(NodeError::Unsupported(format!(
            "a chain id ({})",
            lacking.join(", ")
        )))
    }

    /// The virtual operations of one block (`only_virtual`): entries the node flags virtual or
    /// whose type is a virtual operation type (see `virtual_only` in the source).
    ///
    /// `include_reversible` asks Hive's `account_history_api` for blocks above the last
    /// irreversible one; Steem ignores it and returns nothing for them.
    pub async fn get_ops_in_block(
        &self,
        number: u64,
        method: Method,
        include_reversible: bool,
    ) -> Result<Vec<DecodedOp>, NodeError> {
        let params = match method {
            Method::CondenserGetOpsInBlock => json!([number, true]),
            Method::AccountHistoryGetOpsInBlock if include_reversible => {
                json!({"block_num": number, "only_virtual": true, "include_reversible": true})
            }
            Method::AccountHistoryGetOpsInBlock => {
                json!({"block_num": number, "only_virtual": true})
            }
            other => {
                return Err(NodeError::Unsupported(format!(
                    "{} is not an operations method",
                    other.name()
                )));
            }
        };
        self.call(method, params, |result| {
            let ops = block::ops_in_block_from(result, number, "result")?;
            Ok(virtual_only(ops.into_iter().map(|op| (number, op)))
                .map(|(_, op)| op)
                .collect())
        })
        .await
    }

    /// The virtual operations of blocks `first..end` with `account_history_api.enum_virtual_ops`
    /// (appbase encoding), each with its block number, in the node's order (by block), filtered
    /// like [`NodeClient::get_ops_in_block`]. Pages are followed (`next_block_range_begin`,
    /// `next_operation_begin`) until the range is done, all on this node.
    pub async fn enum_virtual_ops(
        &self,
        first: u64,
        end: u64,
        include_reversible: bool,
    ) -> Result<Vec<(u64, DecodedOp)>, NodeError> {
        let mut out = Vec::new();
        let (mut begin, mut operation) = (first, 0u64);
        for _ in 0..MAX_VIRTUAL_OP_PAGES {
            let params = json!({
                "block_range_begin": begin,
                "block_range_end": end,
                "operation_begin": operation,
                "include_reversible": include_reversible,
                "group_by_block": false,
            });
            let page = self
                .call(Method::AccountHistoryEnumVirtualOps, params, |result| {
                    let list = block::field(result, "ops", "result")?;
                    let ops = block::op_entries_from(list, "result.ops", begin..end)?;
                    // Nodes that do not page (old Steem) leave the fields out: all in one.
                    let next = |key: &str| -> Result<u64, NodeError> {
                        match result.get(key) {
                            None => Ok(0),
                            Some(v) => Ok(block::u64_of(v, &format!("result.{key}"))?),
                        }
                    };
                    Ok((
                        ops,
                        next("next_block_range_begin")?,
                        next("next_operation_begin")?,
                    ))
                })
                .await?;
            let (ops, next_begin, next_operation) = page;
            out.extend(virtual_only(ops.into_iter()));
            let done = next_operation == 0 && (next_begin == 0 || next_begin >= end);
            if done {
                return Ok(out);
            }
            // A page must move forward, or the same page would be asked for ever.
            if (next_begin, next_operation) <= (begin, operation) || next_begin < first {
                return Err(NodeError::Malformed(format!(
                    "enum_virtual_ops page for blocks {begin}..{end} from operation {operation} \
                     says the next page starts at block {next_begin}, operation {next_operation}"
                )));
            }
            (begin, operation) = (next_begin, next_operation);
        }
        Err(NodeError::Malformed(format!(
            "enum_virtual_ops for blocks {first}..{end} did not end within {MAX_VIRTUAL_OP_PAGES} pages"
        )))
    }
}

/// Most pages [`NodeClient::enum_virtual_ops`] follows for one range before it gives up on the
/// node (a node whose pages never end).
const MAX_VIRTUAL_OP_PAGES: usize = 10_000;

/// The virtual operations among entries a node returned for "virtual operations only", all
/// flagged virtual.
///
/// An entry is virtual when the node flags it so (`virtual_op` true or non-zero) or when its
/// type is a virtual operation type of either chain (`consumer_sdk::ops::VIRTUAL_TOPICS`): old
/// Steem nodes number virtual operations in `virtual_op` instead of flagging them, and report
/// block 1,000,000's `producer_reward` with `virtual_op: 0`. An entry that is neither is one of
/// the block's own operations, sent by a node that ignored `only_virtual`; it is dropped, since
/// the block itself already carries it.
fn virtual_only(
    entries: impl Iterator<Item = (u64, DecodedOp)>,
) -> impl Iterator<Item = (u64, DecodedOp)> {
    entries.filter_map(|(block, mut op)| {
        if op.virtual_op || consumer_sdk::ops::is_virtual_topic(&op.topic) {
            op.virtual_op = true;
            Some((block, op))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_bodies() -> Vec<(i64, String)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/errors/jsonrpc-error-responses.jsonl"
        );
        let text = std::fs::read_to_string(path).expect("error samples");
        text.lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                let body: serde_json::Value =
                    serde_json::from_str(entry["response_body"].as_str().unwrap()).unwrap();
                let e = &body["error"];
                (
                    e["code"].as_i64().unwrap(),
                    e["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn real_error_bodies_are_classified() {
        let bodies = error_bodies();
        assert_eq!(bodies.len(), 42);
        for (code, message) in &bodies {
            let fault = classify_rpc(*code, message);
            let expected = match code {
                -32002 => Fault::MethodMissing,
                -32603 | 1000 => Fault::Transient,
                _ => Fault::Deterministic,
            };
            assert_eq!(fault, expected, "{code} {message}");
        }
    }

    #[test]
    fn missing_block_asserts_are_transient() {
        assert_eq!(
            classify_rpc(-32003, "Assert Exception:block: could not find block 5"),
            Fault::Transient
        );
        assert_eq!(
            classify_rpc(-32003, "Unable to acquire READ lock"),
            Fault::Transient
        );
        assert_eq!(
            classify_rpc(
                -32003,
                "Assert Exception:count <= 1000 && \"fetch_block_range\": You can only ask for 1000 blocks at a timerethrow"
            ),
            Fault::Deterministic
        );
        assert_eq!(
            classify_rpc(-32601, "Method not found"),
            Fault::MethodMissing
        );
        assert_eq!(classify_rpc(1050, "proxy"), Fault::Transient);
        assert_eq!(classify_rpc(1100, "proxy"), Fault::Transient);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("3600", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(42))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn bodies_are_cut_for_logs_and_truncation_is_recognised() {
        let long = format!("<html>\n  <body>{}</body>", "x".repeat(500));
        let cut = cut(long.as_bytes());
        assert!(
            cut.starts_with("<html> <body>xxx") && cut.ends_with("..."),
            "{cut}"
        );
        assert_eq!(cut.chars().count(), 123);
        assert!(ends_mid_document(
            br#"{"jsonrpc":"2.0","result":{"blocks":[{"#
        ));
        assert!(!ends_mid_document(br#"{"jsonrpc":"2.0"} "#));
        assert!(!ends_mid_document(b"garbage"));
    }

    #[test]
    fn method_names_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m));
            if let Some(alt) = m.alternative() {
                assert_eq!(alt.alternative(), Some(m));
            }
        }
    }
}
