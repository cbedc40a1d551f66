//! Failover across several API nodes.
//!
//! A [`Pool`] holds one [`NodeClient`] per `--node` and sends each request to the current node.
//! What happens on failure depends on [`NodeError::fault`]:
//!
//! - transient: the node cools down for a jittered exponential backoff (`base * 2^(failures-1)`,
//!   capped, then drawn uniformly from its upper half) and the request moves to the next node
//!   that is not cooling down. When every node cools down, the request waits for the first one to
//!   come back (so the retry rate is capped by the backoff cap) and an error is logged at most
//!   every few seconds. A request never gives up on transient faults: the broadcaster never exits
//!   and never skips a block because nodes are down.
//! - method missing: the pool remembers that this node lacks the method and retries at once with
//!   the alternative (`block_api.get_block` ⇄ `condenser_api.get_block`, a range call → single
//!   calls, `condenser_api` ⇄ `database_api`/`account_history_api`). Blocks are asked from
//!   `block_api` first, so ranges and single blocks come in the same (appbase) encoding.
//! - deterministic: the node is not asked that request again for `refusal_cooldown`, then it
//!   is asked again (a node's refusal may be a one-off). While every node refuses it, the
//!   request waits for the first refusal to expire, and the log says which nodes refuse and
//!   which are failing. A request never fails: the broadcaster never exits because nodes
//!   refuse, and never waits on a dead node while another one can answer.
//!
//! Before a node is first used, and again every `chain_check_interval`, its chain id is compared
//! with the followed chain ([`Pool::set_chain`]); a node of another chain is excluded (one ERROR
//! line naming it and both ids) until its next check. [`Pool::discover_chain`] finds the chain
//! the nodes agree on when neither the command line nor the ring names one.
//!
//! Global properties are also checked for staleness: a node whose head lags another node's
//! recent head, or the best head any node ever reported, by more than `stale_blocks`, whose
//! followed block (head or last irreversible) is behind what was already published, or whose
//! head time is older than `max_head_age` while a fresher node may be reachable (another node of
//! the chain with no failure since its last success that has not reported an old head within
//! `max_head_age`), counts as a transient fault. When every reachable node reports an old head
//! (a halted chain, or a wrong local clock), the pool follows anyway and says so in a warning
//! once a minute.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{debug, error, info, warn};

use consumer_sdk::{Chain, ChainId};

use crate::block::DecodedOp;
use crate::config::{Mode, Tuning};
use crate::node::{FetchedBlock, GlobalProps, Method, NodeClient, NodeError};

/// Nodes that report different chains at start-up, with nothing to choose between them.
#[derive(Debug, thiserror::Error)]
#[error(
    "the nodes serve different chains ({}); choose one with --chain",
    .nodes.iter().map(|(url, id)| format!("{url}: {} {id}", Chain::from_id(*id))).collect::<Vec<_>>().join(", ")
)]
pub struct ChainDisagreement {
    /// Each answering node's URL and chain id.
    pub nodes: Vec<(String, ChainId)>,
}

/// A node's deterministic refusal of one request, valid until `until`.
#[derive(Debug)]
struct Refusal {
    idx: usize,
    error: NodeError,
    until: Instant,
}

/// What the pool knows about one node.
#[derive(Debug, Default)]
struct Health {
    failures: u32,
    cooldown_until: Option<Instant>,
    /// Bit set of [`Method::bit`]s this node lacks.
    missing: u16,
    props: Option<(GlobalProps, Instant)>,
    old_since: Option<Instant>,
    chain: ChainCheck,
    /// The kind of fault last logged for this node while it keeps failing.
    logged_fault: Option<std::mem::Discriminant<NodeError>>,
}

/// What the pool knows about a node's chain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChainCheck {
    /// Not asked yet (or asked and unanswered).
    #[default]
    Unchecked,
    /// The node reported the followed chain at this instant.
    Verified(Instant),
    /// The node reported another chain; it is not used before `until`, then asked again.
    Foreign { id: ChainId, until: Instant },
}

impl Health {
    /// When the node may be asked again: after its cooldown and any exclusion for serving
    /// another chain.
    fn usable_from(&self) -> Option<Instant> {
        let foreign = match self.chain {
            ChainCheck::Foreign { until, .. } => Some(until),
            _ => None,
        };
        self.cooldown_until.max(foreign)
    }
}

#[derive(Debug, Default)]
struct State {
    health: Vec<Health>,
    /// The chain every node must serve (`None` until [`Pool::set_chain`]).
    chain: Option<Chain>,
    current: usize,
    last_all_down_log: Option<Instant>,
    last_old_log: Option<Instant>,
    /// The best head any node of the chain has reported: heads only move forward, so a node
    /// whose head is well below it is stale, however long ago that head was reported.
    best_head: u64,
}

/// One request, as the failover loop retries it.
#[derive(Debug, Clone, Copy)]
enum Request {
    Blocks {
        first: u64,
        max: u32,
        known: Option<u64>,
    },
    Props {
        floor: u64,
        mode: Mode,
    },
    VirtualOps {
        first: u64,
        count: u32,
        head_mode: bool,
        appbase: bool,
    },
}

enum Reply {
    Blocks(Vec<FetchedBlock>),
    Props(GlobalProps),
    /// Virtual operations with their block numbers, covering blocks up to `end` (exclusive).
    Ops {
        end: u64,
        ops: Vec<(u64, DecodedOp)>,
    },
}

/// A set of nodes with failover.
#[derive(Debug)]
pub struct Pool {
    nodes: Vec<NodeClient>,
    state: Mutex<State>,
    tuning: Tuning,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Pool {
    /// A pool over `urls`, sharing one HTTP client with the given timeouts.
    pub fn new(
        urls: &[String],
        request_timeout: Duration,
        tuning: Tuning,
    ) -> Result<Self, NodeError> {
        let http =
            crate::node::http_client(request_timeout, tuning.connect_timeout.min(request_timeout))?;
        let nodes = urls
            .iter()
            .map(|u| NodeClient::new(http.clone(), u).map(|n| n.keep_raw(tuning.keep_raw)))
            .collect::<Result<Vec<_>, _>>()?;
        let state = State {
            health: nodes.iter().map(|_| Health::default()).collect(),
            ..State::default()
        };
        Ok(Self {
            nodes,
            state: Mutex::new(state),
            tuning,
        })
    }

    /// The URL of node `idx`.
    pub fn url(&self, idx: usize) -> &str {
        self.nodes[idx].url()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks from `first` on (up to `max`, through ranges where a node has them).
    ///
    /// With `known = Some(k)` (`k >= first`), the blocks are known to exist and an empty answer
    /// is a fault of that node; with `None` an empty answer is returned as is ("not yet").
    pub async fn blocks(
        &self,
        first: u64,
        max: u32,
        known: Option<u64>,
    ) -> (usize, Vec<FetchedBlock>) {
        let what = if max > 1 {
            format!("blocks {first}..={}", first + u64::from(max) - 1)
        } else {
            format!("block {first}")
        };
        match self
            .execute(&what, Request::Blocks { first, max, known })
            .await
        {
            (idx, Reply::Blocks(b)) => (idx, b),
            _ => unreachable!("a blocks request gets a blocks reply"),
        }
    }

    /// Global properties from a node that is not stale; `floor` is the last published block.
    pub async fn props(&self, floor: u64, mode: Mode) -> (usize, GlobalProps) {
        match self
            .execute("global properties", Request::Props { floor, mode })
            .await
        {
            (idx, Reply::Props(p)) => (idx, p),
            _ => unreachable!("a properties request gets a properties reply"),
        }
    }

    /// The virtual operations of blocks from `first` on (up to `count` of them), in the appbase
    /// encoding (`account_history_api`) or the legacy one (`condenser_api`), so that they match
    /// the blocks' own operations. Returns the end (exclusive) of the blocks covered, and each
    /// operation with its block number.
    ///
    /// Ranges come from `account_history_api.enum_virtual_ops` (appbase, Hive): one call, or a
    /// few pages, instead of one call per block. A node without it, Steem's nodes and the legacy
    /// encoding are asked one block at a time (`get_ops_in_block`).
    pub async fn virtual_ops(
        &self,
        first: u64,
        count: u32,
        head_mode: bool,
        appbase: bool,
    ) -> (u64, Vec<(u64, DecodedOp)>) {
        let what = if count > 1 {
            format!(
                "virtual ops of blocks {first}..={}",
                first + u64::from(count) - 1
            )
        } else {
            format!("virtual ops of block {first}")
        };
        let request = Request::VirtualOps {
            first,
            count: count.max(1),
            head_mode,
            appbase,
        };
        match self.execute(&what, request).await {
            (_, Reply::Ops { end, ops }) => (end, ops),
            _ => unreachable!("an operations request gets an operations reply"),
        }
    }

    /// Whether node `idx` serves blocks in the appbase encoding (`block_api`), as opposed to the
    /// legacy one (`condenser_api`).
    pub fn serves_appbase(&self, idx: usize) -> bool {
        matches!(
            self.method(idx, Method::BlockApiGetBlock),
            Ok(Method::BlockApiGetBlock)
        )
    }

    /// Moves the next request to the next node that is not cooling down, so that a node whose
    /// answers stopped moving gets compared with another one.
    pub fn rotate(&self, why: &str) {
        let mut state = self.lock();
        let n = state.health.len();
        let now = Instant::now();
        let from = state.current;
        let next = (1..n).map(|k| (from + k) % n).find(|&i| {
            state.health[i]
                .usable_from()
                .is_none_or(|until| until <= now)
        });
        if let Some(next) = next {
            state.current = next;
            crate::metrics::failover();
            info!(
                node = self.url(from),
                "{why}; asking {} next",
                self.url(next)
            );
        }
    }

    /// Records a transient fault found by the caller (a fork, a block that should exist, ...).
    pub fn report(&self, idx: usize, error: &NodeError, what: &str) {
        self.failed(idx, error, what);
    }

    async fn execute(&self, what: &str, request: Request) -> (usize, Reply) {
        let mut refused: Vec<Refusal> = Vec::new();
        loop {
            let idx = self.acquire(what, &mut refused).await;
            match self.check_chain(idx).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    self.failed(idx, &e, "chain id");
                    continue;
                }
            }
            match self.attempt(idx, request).await {
                Ok(reply) => {
                    self.succeeded(idx);
                    return (idx, reply);
                }
                Err(NodeError::MethodNotFound { method, message }) => {
                    crate::metrics::fault(
                        self.url(idx),
                        &NodeError::MethodNotFound {
                            method,
                            message: String::new(),
                        },
                        false,
                    );
                    let mut state = self.lock();
                    let known = state.health[idx].missing & method.bit() != 0;
                    state.health[idx].missing |= method.bit();
                    // Requests in flight learn it together: say it once.
                    if !known {
                        info!(
                            node = self.url(idx),
                            "{} is not available ({message}); using {}",
                            method.name(),
                            method
                                .alternative()
                                .map_or("single-block calls", Method::name)
                        );
                    }
                }
                Err(e) => match e.fault() {
                    crate::node::Fault::Deterministic => {
                        crate::metrics::fault(self.url(idx), &e, false);
                        let cooldown = self.tuning.refusal_cooldown;
                        warn!(
                            node = self.url(idx),
                            "{what} refused: {e}; asking that node again in {} s",
                            cooldown.as_secs_f64()
                        );
                        refused.push(Refusal {
                            idx,
                            error: e,
                            until: Instant::now() + cooldown,
                        });
                    }
                    _ => self.failed(idx, &e, what),
                },
            }
        }
    }

    /// The chain every node must serve from now on.
    pub fn set_chain(&self, chain: Chain) {
        self.lock().chain = Some(chain);
    }

    /// Asks every node for its chain id until at least one answers, and returns the chain
    /// they agree on, or an error naming each node's chain when they disagree.
    pub async fn discover_chain(&self) -> Result<Chain, ChainDisagreement> {
        let mut round = 0u32;
        loop {
            let mut answers: Vec<(usize, ChainId)> = Vec::new();
            for idx in 0..self.nodes.len() {
                match self.nodes[idx].chain_id().await {
                    Ok(id) => answers.push((idx, id)),
                    Err(e) => warn!(node = self.url(idx), "chain id: {e}"),
                }
            }
            if let Some(&(_, first)) = answers.first() {
                if answers.iter().all(|(_, id)| *id == first) {
                    let chain = Chain::from_id(first);
                    let now = Instant::now();
                    let mut state = self.lock();
                    for (idx, _) in &answers {
                        state.health[*idx].chain = ChainCheck::Verified(now);
                    }
                    return Ok(chain);
                }
                return Err(ChainDisagreement {
                    nodes: answers
                        .into_iter()
                        .map(|(i, id)| (self.url(i).to_owned(), id))
                        .collect(),
                });
            }
            round = round.saturating_add(1);
            let wait = self
                .tuning
                .backoff_base
                .saturating_mul(1 << round.min(16))
                .min(self.tuning.backoff_cap);
            error!(
                nodes = self.nodes.len(),
                "no node answered with its chain id; asking again in {} ms",
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Checks node `idx`'s chain id when it was never checked or the last check is older than
    /// `chain_check_interval`. `Ok(false)`: the node serves another chain and is now excluded
    /// (logged once per change).
    async fn check_chain(&self, idx: usize) -> Result<bool, NodeError> {
        let expected = {
            let state = self.lock();
            let Some(expected) = state.chain else {
                return Ok(true);
            };
            if let ChainCheck::Verified(at) = state.health[idx].chain
                && at.elapsed() < self.tuning.chain_check_interval
            {
                return Ok(true);
            }
            expected
        };
        let id = self.nodes[idx].chain_id().await?;
        let now = Instant::now();
        let mut state = self.lock();
        let health = &mut state.health[idx];
        if id == expected.id() {
            if matches!(health.chain, ChainCheck::Foreign { .. }) {
                info!(
                    node = self.url(idx),
                    "now serves chain {expected} ({}); using it again",
                    expected.id()
                );
            }
            health.chain = ChainCheck::Verified(now);
            return Ok(true);
        }
        let already = matches!(health.chain, ChainCheck::Foreign { id: known, .. } if known == id);
        crate::metrics::chain_rejected(self.url(idx));
        health.chain = ChainCheck::Foreign {
            id,
            until: now + self.tuning.chain_check_interval,
        };
        if !already {
            error!(
                node = self.url(idx),
                "serves chain {} (id {id}), not {expected} (id {}): excluded, checked again in {} s",
                Chain::from_id(id),
                expected.id(),
                self.tuning.chain_check_interval.as_secs()
            );
        }
        if state.current == idx {
            state.current = (idx + 1) % state.health.len();
        }
        Ok(false)
    }

    /// The method to use on node `idx` for `preferred`, honouring what the node lacks.
    fn method(&self, idx: usize, preferred: Method) -> Result<Method, NodeError> {
        let missing = self.lock().health[idx].missing;
        let usable = |m: Method| missing & m.bit() == 0;
        if usable(preferred) {
            return Ok(preferred);
        }
        match preferred.alternative() {
            Some(alt) if usable(alt) => Ok(alt),
            Some(alt) => Err(NodeError::Unsupported(format!(
                "{}, {}",
                preferred.name(),
                alt.name()
            ))),
            None => Err(NodeError::Unsupported(preferred.name().to_owned())),
        }
    }

    async fn attempt(&self, idx: usize, request: Request) -> Result<Reply, NodeError> {
        let node = &self.nodes[idx];
        match request {
            Request::Blocks { first, max, known } => {
                let blocks = if max > 1 && self.method(idx, Method::BlockApiGetBlockRange).is_ok() {
                    node.get_block_range(first, max).await?
                } else {
                    let method = self.method(idx, Method::BlockApiGetBlock)?;
                    node.get_block(first, method).await?.into_iter().collect()
                };
                match known {
                    Some(known) if blocks.is_empty() => Err(NodeError::MissingBlock {
                        block: first,
                        known,
                    }),
                    _ => Ok(Reply::Blocks(blocks)),
                }
            }
            Request::Props { floor, mode } => {
                let method = self.method(idx, Method::CondenserGetProps)?;
                let props = node.get_dynamic_global_properties(method).await?;
                self.check_props(idx, props, floor, mode)?;
                Ok(Reply::Props(props))
            }
            Request::VirtualOps {
                first,
                count,
                head_mode,
                appbase,
            } => {
                let steem = self.lock().chain.is_some_and(|c| c.is_steem());
                if count > 1
                    && appbase
                    && !steem
                    && self
                        .method(idx, Method::AccountHistoryEnumVirtualOps)
                        .is_ok()
                {
                    let end = first + u64::from(count);
                    let ops = node.enum_virtual_ops(first, end, head_mode).await?;
                    return Ok(Reply::Ops { end, ops });
                }
                let preferred = if appbase {
                    Method::AccountHistoryGetOpsInBlock
                } else {
                    Method::CondenserGetOpsInBlock
                };
                let method = self.method(idx, preferred)?;
                let ops = node.get_ops_in_block(first, method, head_mode).await?;
                Ok(Reply::Ops {
                    end: first + 1,
                    ops: ops.into_iter().map(|op| (first, op)).collect(),
                })
            }
        }
    }

    /// Waits for a node that is not cooling down, not excluded, and has not refused this
    /// request within `refusal_cooldown` (expired refusals are dropped: the node is asked again).
    async fn acquire(&self, what: &str, refused: &mut Vec<Refusal>) -> usize {
        loop {
            let wait = {
                let mut state = self.lock();
                let n = state.health.len();
                let now = Instant::now();
                refused.retain(|r| r.until > now);
                let mut earliest: Option<Instant> = None;
                let mut down = 0;
                for k in 0..n {
                    let i = (state.current + k) % n;
                    let refusal = refused.iter().find(|r| r.idx == i).map(|r| r.until);
                    match refusal.max(state.health[i].usable_from()) {
                        Some(until) if until > now => {
                            earliest = Some(earliest.map_or(until, |e| e.min(until)));
                            if refusal.is_none() {
                                down += 1;
                            }
                        }
                        _ => {
                            state.current = i;
                            return i;
                        }
                    }
                }
                // Some node is always either cooling down, excluded or refusing until a known
                // instant, so `earliest` is set whenever there is at least one node.
                let until = earliest.unwrap_or(now + self.tuning.backoff_base);
                let due = state
                    .last_all_down_log
                    .is_none_or(|at| now.duration_since(at) >= self.tuning.all_down_log_interval);
                if due {
                    state.last_all_down_log = Some(now);
                    let retry = until.duration_since(now).as_millis();
                    if refused.is_empty() {
                        error!(nodes = n, "every node is failing; retrying in {retry} ms");
                    } else {
                        let answers = refused
                            .iter()
                            .map(|r| format!("{}: {}", self.url(r.idx), r.error))
                            .collect::<Vec<_>>()
                            .join("; ");
                        error!(
                            nodes = n,
                            "{what} refused by {} node(s) ({answers}), {down} failing; asking again in {retry} ms",
                            refused.len()
                        );
                    }
                }
                until.duration_since(now)
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn succeeded(&self, idx: usize) {
        crate::metrics::answered(self.url(idx));
        let mut state = self.lock();
        let health = &mut state.health[idx];
        if health.logged_fault.take().is_some() {
            info!(
                node = self.url(idx),
                "answers again after {} failure(s)", health.failures
            );
        }
        health.failures = 0;
        health.cooldown_until = None;
    }

    fn failed(&self, idx: usize, error: &NodeError, what: &str) {
        let mut state = self.lock();
        let n = state.health.len();
        let health = &mut state.health[idx];
        health.failures = health.failures.saturating_add(1);
        let doublings = health.failures.saturating_sub(1).min(20);
        let full = self
            .tuning
            .backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.tuning.backoff_cap);
        let half = full / 2;
        let mut cooldown = half + half.mul_f64(fastrand::f64());
        // A node that says how long to wait is not asked sooner.
        if let NodeError::RateLimited {
            retry_after: Some(wait),
            ..
        } = error
        {
            cooldown = cooldown.max(*wait);
        }
        health.cooldown_until = Some(Instant::now() + cooldown);
        let failures = health.failures;
        crate::metrics::fault(self.url(idx), error, true);
        if state.current == idx && n > 1 {
            state.current = (idx + 1) % n;
            crate::metrics::failover();
        }
        let next = state.current;
        // Once per node and kind of fault: requests in flight that fail together, and the
        // retries of a node that stays down, add nothing an operator needs.
        let kind = std::mem::discriminant(error);
        let health = &mut state.health[idx];
        if health.logged_fault.replace(kind) == Some(kind) {
            debug!(
                node = self.url(idx),
                "{what}: {error}; cooling down {} ms (failure {failures})",
                cooldown.as_millis()
            );
            return;
        }
        warn!(
            node = self.url(idx),
            "{what}: {error}; cooling down {} ms (failure {failures}), next node {}",
            cooldown.as_millis(),
            self.url(next)
        );
    }

    fn check_props(
        &self,
        idx: usize,
        props: GlobalProps,
        floor: u64,
        mode: Mode,
    ) -> Result<(), NodeError> {
        let tuning = &self.tuning;
        let mut state = self.lock();
        let now = Instant::now();
        state.health[idx].props = Some((props, now));
        let recent = |h: &Health| {
            h.props
                .filter(|(_, at)| now.duration_since(*at) <= tuning.stale_window)
                .map(|(p, _)| p)
        };
        let best_other = state
            .health
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != idx)
            .filter_map(|(_, h)| recent(h))
            .map(|p| p.head_block_number)
            .max();
        let best_other = best_other.max(Some(state.best_head).filter(|&b| b > 0));
        state.best_head = state.best_head.max(props.head_block_number);
        if let Some(best) = best_other
            && props.head_block_number + tuning.stale_blocks < best
        {
            return Err(NodeError::Stale(format!(
                "head {} is {} blocks behind another node's {best}",
                props.head_block_number,
                best - props.head_block_number
            )));
        }
        let followed = mode.target(&props);
        if followed + tuning.stale_blocks < floor {
            return Err(NodeError::Stale(format!(
                "{} {followed} is behind block {floor}, already published",
                mode.target_name()
            )));
        }
        let Some(max_age) = tuning.max_head_age else {
            return Ok(());
        };
        let age = unix_now().saturating_sub(u64::from(props.time));
        if age <= max_age.as_secs() {
            state.health[idx].old_since = None;
            return Ok(());
        }
        state.health[idx].old_since = Some(now);
        // Another node may be fresher if it is healthy (no failure since its last success) and
        // has not itself reported an old head recently.
        // A node of another chain is not a reference.
        let fresher_may_exist = state.health.iter().enumerate().any(|(i, h)| {
            i != idx
                && h.failures == 0
                && !matches!(h.chain, ChainCheck::Foreign { .. })
                && h.old_since
                    .is_none_or(|at| now.duration_since(at) > max_age)
        });
        if fresher_may_exist {
            return Err(NodeError::Stale(format!("head time is {age} s old")));
        }
        if state
            .last_old_log
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60))
        {
            state.last_old_log = Some(now);
            warn!(
                "every reachable node reports a head over {} s old (chain halted, nodes stuck or local clock wrong); following anyway",
                max_age.as_secs()
            );
        }
        Ok(())
    }
}
