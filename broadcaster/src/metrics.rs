//! Prometheus metrics: `--metrics ADDR` serves the text exposition format at `/metrics`.
//!
//! The series are recorded through the `metrics` facade and rendered by
//! `metrics-exporter-prometheus`. The HTTP side is a small blocking listener of our own, so that
//! the address actually bound (`--metrics 127.0.0.1:0`) can be logged and a port in use is a
//! start-up error that names the address. Without `--metrics` nothing is recorded: every
//! function here returns at once.
//!
//! Node labels are the node URLs as given on the command line, without user info or query.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::{debug, warn};

use crate::block::DecodedOp;
use crate::node::NodeError;

/// Whether a recorder is installed (set once by [`serve`]).
static ENABLED: AtomicBool = AtomicBool::new(false);
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A metrics recorder is installed already (a second [`serve`] in one process).
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(String),
}

/// Installs the Prometheus recorder and serves `/metrics` on `addr` from a background thread.
/// Returns the address bound (the port chosen when `addr` has port 0).
pub fn serve(addr: SocketAddr) -> Result<SocketAddr, MetricsError> {
    let listener = TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| MetricsError::Recorder(e.to_string()))?;
    let _ = HANDLE.set(handle);
    describe();
    ENABLED.store(true, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || accept_loop(listener))
        .map_err(|source| MetricsError::Bind { addr, source })?;
    Ok(bound)
}

/// The current exposition text (empty when [`serve`] was not called).
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

fn enabled() -> bool {
    // Relaxed: set once before the first block; a metric missed meanwhile is harmless.
    ENABLED.load(Ordering::Relaxed)
}

fn accept_loop(listener: TcpListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(stream) {
                    debug!("metrics request: {e}");
                }
            }
            Err(e) => {
                warn!("metrics listener: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Answers one HTTP/1.x request and closes the connection: `GET /metrics` (or `/`) gets the
/// exposition text, anything else 404 or 405.
fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The headers are read and ignored (the connection closes after the answer).
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET", "/metrics" | "/") => ("200 OK", render()),
        ("GET", _) => ("404 Not Found", "not found; try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn describe() {
    describe_gauge!(
        "broadcaster_head_block",
        "Newest head block any node reported"
    );
    describe_gauge!(
        "broadcaster_irreversible_block",
        "Newest last irreversible block any node reported"
    );
    describe_gauge!(
        "broadcaster_published_block",
        "Last block published into the ring"
    );
    describe_gauge!(
        "broadcaster_lag_blocks",
        "Head block minus the last published block"
    );
    describe_gauge!(
        "broadcaster_lag_seconds",
        Unit::Seconds,
        "Now minus the timestamp of the last published block"
    );
    describe_counter!(
        "broadcaster_blocks_published_total",
        "Blocks published by this process"
    );
    describe_counter!(
        "broadcaster_ops_published_total",
        "Operations published by this process, by op type"
    );
    describe_counter!(
        "broadcaster_node_requests_total",
        "JSON-RPC requests sent, by node and method"
    );
    describe_counter!(
        "broadcaster_node_faults_total",
        "Failed requests, by node and fault class"
    );
    describe_counter!(
        "broadcaster_failovers_total",
        "Times the next request moved to another node"
    );
    describe_counter!(
        "broadcaster_node_cooldowns_total",
        "Times a node was set to cool down after a fault"
    );
    describe_gauge!(
        "broadcaster_node_cooling_down",
        "1 while a node cools down after a fault, else 0"
    );
    describe_counter!(
        "broadcaster_chain_id_rejections_total",
        "Times a node was excluded for serving another chain"
    );
    describe_gauge!(
        "broadcaster_ring_capacity_bytes",
        Unit::Bytes,
        "Data capacity of the ring"
    );
    describe_counter!(
        "broadcaster_ring_written_bytes_total",
        Unit::Bytes,
        "Bytes written into the ring since it was created"
    );
    describe_gauge!(
        "broadcaster_ring_last_commit_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last block committed to the ring"
    );
    describe_gauge!(
        "broadcaster_ring_sleeping_readers",
        "Readers registered as asleep on the ring at the last commit"
    );
    describe_counter!(
        "broadcaster_ring_wakes_total",
        "Wake-up system calls made at commits (only when a reader sleeps)"
    );
    describe_counter!(
        "broadcaster_forks_total",
        "Fork notices published (head mode): published blocks orphaned by another branch"
    );
    describe_counter!(
        "broadcaster_orphaned_blocks_total",
        "Published blocks a fork notice declared orphaned"
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A node URL as a label: scheme, host, port and path, without user info or query.
fn node_label(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// The class of a node fault, as the `class` label.
pub fn fault_class(error: &NodeError) -> &'static str {
    match error {
        NodeError::Timeout => "timeout",
        NodeError::Connect(_) => "connect",
        NodeError::Transport(_) => "transport",
        NodeError::RateLimited { .. } => "rate_limited",
        NodeError::Truncated { .. } => "truncated",
        NodeError::Status(_) => "http_status",
        NodeError::Html(_) => "html",
        NodeError::Malformed(_) => "malformed",
        NodeError::Rpc { .. } => "rpc_error",
        NodeError::MethodNotFound { .. } => "method_missing",
        NodeError::Decode(_) => "bad_data",
        NodeError::WrongBlock { .. } => "wrong_block",
        NodeError::MissingBlock { .. } => "missing_block",
        NodeError::Stale(_) => "stale",
        NodeError::Fork { .. } | NodeError::OtherBranch { .. } => "unlinked_block",
        NodeError::Unsupported(_) => "unsupported",
    }
}

/// A fork notice published, orphaning `blocks` published blocks.
pub(crate) fn fork(blocks: usize) {
    if !enabled() {
        return;
    }
    counter!("broadcaster_forks_total").increment(1);
    counter!("broadcaster_orphaned_blocks_total").increment(blocks as u64);
}

/// One block published: its number and timestamp, and its operations by topic.
pub(crate) fn published(number: u64, timestamp: u32, ops: &[DecodedOp]) {
    if !enabled() {
        return;
    }
    counter!("broadcaster_blocks_published_total").increment(1);
    gauge!("broadcaster_published_block").set(number as f64);
    gauge!("broadcaster_lag_seconds").set((unix_now() - f64::from(timestamp)).max(0.0));
    // Ops of one topic come in runs (a block of votes); count a run at once.
    let mut run: Option<(&str, u64)> = None;
    for op in ops {
        match &mut run {
            Some((topic, n)) if *topic == op.topic => *n += 1,
            _ => {
                if let Some((topic, n)) = run.take() {
                    counter!("broadcaster_ops_published_total", "topic" => topic.to_owned())
                        .increment(n);
                }
                run = Some((&op.topic, 1));
            }
        }
    }
    if let Some((topic, n)) = run {
        counter!("broadcaster_ops_published_total", "topic" => topic.to_owned()).increment(n);
    }
}

/// The chain's progress as last seen, and the last published block's timestamp: refreshed
/// while idle too, so lag keeps growing when nothing is published.
pub(crate) fn progress(head: u64, irreversible: u64, published: Option<(u64, u32)>) {
    if !enabled() {
        return;
    }
    if head > 0 {
        gauge!("broadcaster_head_block").set(head as f64);
    }
    if irreversible > 0 {
        gauge!("broadcaster_irreversible_block").set(irreversible as f64);
    }
    if let Some((number, timestamp)) = published {
        if head > 0 {
            gauge!("broadcaster_lag_blocks").set(head.saturating_sub(number) as f64);
        }
        gauge!("broadcaster_lag_seconds").set((unix_now() - f64::from(timestamp)).max(0.0));
    }
}

/// The ring after a commit: capacity, bytes written since its creation, commit time, readers
/// asleep (`None`: unknown, every commit wakes) and wake-up calls made by this process.
pub(crate) fn ring(capacity: u64, written: u64, sleeping: Option<u64>, wakes: u64) {
    if !enabled() {
        return;
    }
    gauge!("broadcaster_ring_capacity_bytes").set(capacity as f64);
    counter!("broadcaster_ring_written_bytes_total").absolute(written);
    gauge!("broadcaster_ring_last_commit_timestamp_seconds").set(unix_now());
    if let Some(n) = sleeping {
        gauge!("broadcaster_ring_sleeping_readers").set(n as f64);
    }
    counter!("broadcaster_ring_wakes_total").absolute(wakes);
}

/// A request sent to a node.
pub(crate) fn request(node: &str, method: &'static str) {
    if !enabled() {
        return;
    }
    counter!("broadcaster_node_requests_total", "node" => node_label(node), "method" => method)
        .increment(1);
}

/// A failed request: its fault class; `cooldown` when the node was set to cool down.
pub(crate) fn fault(node: &str, error: &NodeError, cooldown: bool) {
    if !enabled() {
        return;
    }
    let node = node_label(node);
    counter!("broadcaster_node_faults_total", "node" => node.clone(), "class" => fault_class(error))
        .increment(1);
    if cooldown {
        counter!("broadcaster_node_cooldowns_total", "node" => node.clone()).increment(1);
        gauge!("broadcaster_node_cooling_down", "node" => node).set(1.0);
    }
}

/// A node answered: it is not cooling down any more.
pub(crate) fn answered(node: &str) {
    if !enabled() {
        return;
    }
    gauge!("broadcaster_node_cooling_down", "node" => node_label(node)).set(0.0);
}

/// The next request goes to another node.
pub(crate) fn failover() {
    if !enabled() {
        return;
    }
    counter!("broadcaster_failovers_total").increment(1);
}

/// A node was excluded for serving another chain.
pub(crate) fn chain_rejected(node: &str) {
    if !enabled() {
        return;
    }
    counter!("broadcaster_chain_id_rejections_total", "node" => node_label(node)).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_labels_drop_credentials_and_queries() {
        assert_eq!(
            node_label("https://user:secret@api.example:8443/rpc?key=1#x"),
            "https://api.example:8443/rpc"
        );
        assert_eq!(node_label("not a url"), "not a url");
    }
}
