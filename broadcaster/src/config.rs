//! Command line and environment, validated into a [`Config`].
//!
//! Every flag can also come from an environment variable (shown by `--help`), and a `.env` file
//! in the working directory is read first (see `main`). [`Cli`] is what clap parses;
//! [`Cli::into_config`] checks the combinations and produces the [`Config`] that [`crate::run`]
//! takes. [`Tuning`] holds the timing knobs that are not flags (tests shrink them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};

use consumer_sdk::Chain;

use crate::node::GlobalProps;

/// Which block the broadcaster follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Publish only irreversible blocks (`last_irreversible_block_num`); never shows a fork.
    Irreversible,
    /// Publish head blocks (`head_block_number`), about 45 s earlier; a block may later be
    /// orphaned by a fork.
    Head,
}

impl Mode {
    /// The block this mode follows according to `props`.
    pub fn target(self, props: &GlobalProps) -> u64 {
        match self {
            // A node can report an irreversible block above its head (seen in real Steem data).
            Mode::Irreversible => props
                .last_irreversible_block_num
                .min(props.head_block_number),
            Mode::Head => props.head_block_number,
        }
    }

    /// The name of what this mode follows, for log lines.
    pub fn target_name(self) -> &'static str {
        match self {
            Mode::Irreversible => "last irreversible block",
            Mode::Head => "head block",
        }
    }
}

/// How fast a replay publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// One block every 3 seconds, like the chain.
    Realtime,
    /// As fast as the sink takes them.
    Max,
    /// One block per this interval (backtests faster than the chain, slower than `Max`).
    Every(Duration),
}

fn parse_pace(s: &str) -> Result<Pace, String> {
    let every = |n: &str, unit: fn(u64) -> Duration| {
        n.parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(|n| Pace::Every(unit(n)))
            .ok_or_else(|| {
                format!("`{s}` is not realtime, max or a positive interval like 50ms or 2s")
            })
    };
    match s {
        "realtime" => Ok(Pace::Realtime),
        "max" => Ok(Pace::Max),
        _ if s.ends_with("ms") => every(&s[..s.len() - 2], Duration::from_millis),
        _ if s.ends_with('s') => every(&s[..s.len() - 1], Duration::from_secs),
        _ => Err(format!(
            "`{s}` is not realtime, max or a positive interval like 50ms or 2s"
        )),
    }
}

/// Where an empty ring starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartBlock {
    /// This block number (a replay starts at the first block at or after it).
    Number(u64),
    /// The chain's current head block.
    Head,
    /// The chain's current last irreversible block.
    Irreversible,
}

fn parse_start_block(s: &str) -> Result<StartBlock, String> {
    match s {
        "head" => Ok(StartBlock::Head),
        "irreversible" => Ok(StartBlock::Irreversible),
        n => match n.parse::<u64>() {
            Ok(0) => Err("block numbers start at 1".into()),
            Ok(v) => Ok(StartBlock::Number(v)),
            Err(_) => Err(format!(
                "{n:?} is not a block number, `head` or `irreversible`"
            )),
        },
    }
}

/// Parses a byte size: a number with an optional unit (`B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`;
/// powers of 1024, case-insensitive).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let trimmed = s.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 67108864, 64MiB, 1GiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Smallest ring the broadcaster creates.
pub const MIN_RING_SIZE: u64 = 1 << 20;

fn parse_ring_size(s: &str) -> Result<u64, String> {
    let size = parse_size(s)?;
    // One block may use a quarter of the ring: a full 64 KB Steem or Hive block, its op bodies
    // as JSON and a 64-byte header per op, fits well within a quarter of 1 MiB.
    if size < MIN_RING_SIZE || !size.is_power_of_two() {
        return Err(format!(
            "the ring size must be a power of two of at least 1MiB, got {size} bytes"
        ));
    }
    Ok(size)
}

fn parse_fetch_buffer(s: &str) -> Result<u64, String> {
    let size = parse_size(s)?;
    if size < 1 << 20 {
        return Err(format!(
            "the fetch buffer must be at least 1MiB, got {size} bytes"
        ));
    }
    Ok(size)
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{s} s is out of range (0 < seconds <= 3600)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_chain(s: &str) -> Result<Chain, String> {
    s.trim().parse::<Chain>().map_err(|e| e.to_string())
}

fn parse_node_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url.to_string()),
        other => Err(format!(
            "{s:?}: unsupported scheme {other:?} (use http or https)"
        )),
    }
}

/// The broadcaster's command line.
#[derive(Debug, Parser)]
#[command(
    name = "broadcaster",
    version,
    about = "Follows Steem or Hive through API nodes (or replays recorded blocks) and publishes every operation into a shared-memory ring",
    group(ArgGroup::new("source").required(true).args(["nodes", "replay"]))
)]
pub struct Cli {
    /// API node URL; repeat for failover (the environment variable takes a comma-separated list)
    #[arg(long = "node", value_name = "URL", env = "BROADCASTER_NODES", value_delimiter = ',', value_parser = parse_node_url)]
    pub nodes: Vec<String>,

    /// Replay recorded blocks from a JSONL file (one block object per line, as a node returns it) instead of following nodes
    #[arg(long, value_name = "FILE", env = "BROADCASTER_REPLAY", conflicts_with_all = ["nodes", "record"])]
    pub replay: Option<PathBuf>,

    /// Ring to publish into: a bare name lives under /dev/shm, a value containing `/` is a path
    #[arg(
        long,
        value_name = "NAME_OR_PATH",
        env = "BROADCASTER_RING",
        default_value = "steem"
    )]
    pub ring: String,

    /// Ring capacity when the ring is created: a power of two, bytes or with a unit (64MiB, 1GiB)
    #[arg(long, value_name = "BYTES", env = "BROADCASTER_RING_SIZE", default_value = "64MiB", value_parser = parse_ring_size)]
    pub ring_size: u64,

    /// Follow the last irreversible block, or the head block (earlier, but forks can orphan a published block)
    #[arg(long, value_enum, env = "BROADCASTER_MODE", default_value_t = Mode::Irreversible)]
    pub mode: Mode,

    /// Where an EMPTY ring starts: a block number, `head` or `irreversible` (default: what --mode follows; a replay starts at its first block). A ring holding blocks always resumes after its last one
    #[arg(long, value_name = "N|head|irreversible", env = "BROADCASTER_START_BLOCK", value_parser = parse_start_block)]
    pub start_block: Option<StartBlock>,

    /// Publish through this block, then exit 0
    #[arg(long, value_name = "N", env = "BROADCASTER_STOP_BLOCK", value_parser = clap::value_parser!(u64).range(1..))]
    pub stop_block: Option<u64>,

    /// Also fetch each block's virtual operations (enum_virtual_ops over ranges on Hive, else get_ops_in_block) and publish them after its own
    #[arg(long, env = "BROADCASTER_VIRTUAL_OPS")]
    pub virtual_ops: bool,

    /// Replay speed: `realtime` (one block every 3 s), `max`, or one block per interval (`50ms`, `1s`) [default: realtime]
    #[arg(long, value_name = "realtime|max|INTERVAL", env = "BROADCASTER_PACE", value_parser = parse_pace)]
    pub pace: Option<Pace>,

    /// Log and skip replay lines that are not JSON block objects, instead of stopping at the first
    #[arg(long, env = "BROADCASTER_SKIP_BAD_LINES")]
    pub skip_bad_lines: bool,

    /// Append every fetched block (the block object, one compact line) to FILE, readable by --replay
    #[arg(long, value_name = "FILE", env = "BROADCASTER_RECORD")]
    pub record: Option<PathBuf>,

    /// Head mode: once a block is due, ask for it every MS milliseconds (jittered ±33%) until it comes
    #[arg(long, value_name = "MS", env = "BROADCASTER_TIP_POLL_MS", default_value_t = 75, value_parser = clap::value_parser!(u64).range(10..=5000))]
    pub tip_poll_ms: u64,

    /// The chain to follow: `steem`, `hive` or a chain id (64 hex digits). Nodes of another chain are excluded. Default: the chain the ring records, else the one every node reports
    #[arg(long, value_name = "steem|hive|CHAIN_ID", env = "BROADCASTER_CHAIN", value_parser = parse_chain)]
    pub chain: Option<Chain>,

    /// Seconds before a node request is abandoned (connect and whole answer); fractions allowed
    #[arg(long, value_name = "SECS", env = "BROADCASTER_REQUEST_TIMEOUT", default_value = "5", value_parser = parse_seconds)]
    pub request_timeout: Duration,

    /// Catching up, the bytes of blocks asked for at once, shared by the requests in flight: big blocks go in smaller requests. Bytes or with a unit (8MiB, 32MiB); the heap is a few times this (28-50 MiB at 8MiB with today-sized blocks)
    #[arg(long, value_name = "BYTES", env = "BROADCASTER_FETCH_BUFFER", default_value = "8MiB", value_parser = parse_fetch_buffer)]
    pub fetch_buffer: u64,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. `127.0.0.1:9184`; port 0 picks a free port, logged at start)
    #[arg(long, value_name = "ADDR", env = "BROADCASTER_METRICS", value_parser = parse_metrics_addr)]
    pub metrics: Option<SocketAddr>,
}

/// `--metrics`: an IP address and a port.
fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!("{s:?} is not an address and port such as 127.0.0.1:9184 or [::1]:9184")
    })
}

/// Where blocks come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Follow these API nodes, with failover in this order.
    Nodes(Vec<String>),
    /// Replay this JSONL file.
    Replay {
        /// The file.
        path: PathBuf,
        /// How fast.
        pace: Pace,
    },
}

/// Timing and sizing knobs that are not command-line flags. The defaults suit public nodes;
/// tests shrink them to stay fast.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// Connect timeout (never above the request timeout).
    pub connect_timeout: Duration,
    /// First cooldown of a failing node.
    pub backoff_base: Duration,
    /// Longest cooldown of a failing node.
    pub backoff_cap: Duration,
    /// Block requests in flight while catching up.
    pub max_in_flight: usize,
    /// Blocks asked per `block_api.get_block_range` call (at most 1000).
    pub range_chunk: u32,
    /// Time between blocks on the chain.
    pub block_interval: Duration,
    /// Head mode, once a block is due: time between two requests for it (jittered ±33%).
    pub tip_poll_interval: Duration,
    /// Time between two global-property polls at the tip.
    pub props_poll_interval: Duration,
    /// At the tip, when the followed block has not moved for this long, the next poll goes to
    /// another node (a stuck node is then caught by comparison).
    pub stall_timeout: Duration,
    /// How many blocks a node may lag another one before it counts as stale.
    pub stale_blocks: u64,
    /// How long another node's head counts as a reference for `stale_blocks`.
    pub stale_window: Duration,
    /// A head time older than this makes a node stale while a fresher one may exist (`None`: off).
    pub max_head_age: Option<Duration>,
    /// Heartbeat period while idle (the sink wants at least one a second).
    pub heartbeat_interval: Duration,
    /// Period of the progress log line.
    pub progress_interval: Duration,
    /// Blocks buffered between fetching and publishing.
    pub queue_blocks: usize,
    /// Shortest time between two "every node is failing" log lines.
    pub all_down_log_interval: Duration,
    /// Time between replayed blocks with `--pace realtime`.
    pub replay_interval: Duration,
    /// How long a node that refused a request (a deterministic error) is not asked that
    /// request again.
    pub refusal_cooldown: Duration,
    /// How often a node's chain id is checked again (it is checked when the node is first used).
    pub chain_check_interval: Duration,
    /// Bytes of blocks asked for at once while catching up, shared by the requests in flight:
    /// each asks for the blocks that fit its share, judged by the blocks fetched so far
    /// (`--fetch-buffer`).
    pub fetch_buffer: u64,
    /// Keep each block's JSON as the node sent it (for `--record`); otherwise only the decoded
    /// block is kept.
    pub keep_raw: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            max_in_flight: 8,
            range_chunk: 100,
            block_interval: Duration::from_secs(3),
            tip_poll_interval: Duration::from_millis(75),
            props_poll_interval: Duration::from_millis(500),
            stall_timeout: Duration::from_secs(10),
            stale_blocks: 5,
            stale_window: Duration::from_secs(30),
            max_head_age: Some(Duration::from_secs(60)),
            heartbeat_interval: Duration::from_millis(500),
            progress_interval: Duration::from_secs(10),
            queue_blocks: 256,
            all_down_log_interval: Duration::from_secs(5),
            replay_interval: Duration::from_secs(3),
            refusal_cooldown: Duration::from_secs(30),
            fetch_buffer: 8 << 20,
            keep_raw: false,
            chain_check_interval: Duration::from_secs(600),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Nodes or a replay file.
    pub source: Source,
    /// Path of the ring file.
    pub ring_path: PathBuf,
    /// Ring capacity in bytes when created.
    pub ring_size: u64,
    /// What to follow.
    pub mode: Mode,
    /// Where an empty ring starts (`None`: what the mode follows; a replay's first block).
    pub start_block: Option<StartBlock>,
    /// Last block to publish.
    pub stop_block: Option<u64>,
    /// Fetch virtual operations too.
    pub virtual_ops: bool,
    /// Where to record fetched blocks.
    pub record: Option<PathBuf>,
    /// Replay: log and skip lines that are not block objects instead of stopping.
    pub skip_bad_lines: bool,
    /// Node request timeout.
    pub request_timeout: Duration,
    /// The chain to follow (`None`: the ring's, else the one the nodes agree on).
    pub chain: Option<Chain>,
    /// Where to serve Prometheus metrics (`None`: not served).
    pub metrics: Option<SocketAddr>,
    /// Knobs that are not flags.
    pub tuning: Tuning,
}

impl Config {
    /// A configuration following `nodes` with defaults everywhere else.
    pub fn for_nodes(nodes: Vec<String>) -> Self {
        Self::with_source(Source::Nodes(nodes))
    }

    /// A configuration replaying `path` at `pace` with defaults everywhere else.
    pub fn for_replay(path: impl Into<PathBuf>, pace: Pace) -> Self {
        Self::with_source(Source::Replay {
            path: path.into(),
            pace,
        })
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            ring_path: ring_path("steem"),
            ring_size: 64 << 20,
            mode: Mode::Irreversible,
            start_block: None,
            stop_block: None,
            virtual_ops: false,
            record: None,
            skip_bad_lines: false,
            request_timeout: Duration::from_secs(5),
            chain: None,
            metrics: None,
            tuning: Tuning::default(),
        }
    }
}

/// Where the ring called `name` lives: under /dev/shm for a bare name, as given for a path.
pub fn ring_path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/dev/shm").join(name)
    }
}

/// A combination of flags that does not make sense.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--ring` is empty or names a directory-like path.
    #[error("--ring: {0}")]
    Ring(String),
    /// `--start-block` and `--stop-block` are inconsistent.
    #[error("--stop-block {stop} is before --start-block {start}")]
    StopBeforeStart {
        /// Start block.
        start: u64,
        /// Stop block.
        stop: u64,
    },
    /// A flag that only applies to a replay was given with `--node`.
    #[error("{0} needs --replay")]
    NeedsReplay(&'static str),
    /// A flag that needs API nodes was given with `--replay`.
    #[error("{0} needs --node (a replay has no chain head)")]
    NeedsNodes(&'static str),
}

impl Cli {
    /// Checks the combination of flags and builds the [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if self.ring.is_empty() || self.ring.ends_with('/') || self.ring.contains('\0') {
            return Err(ConfigError::Ring(format!(
                "{:?} is not a ring name or file path",
                self.ring
            )));
        }
        if let (Some(StartBlock::Number(start)), Some(stop)) = (self.start_block, self.stop_block)
            && stop < start
        {
            return Err(ConfigError::StopBeforeStart { start, stop });
        }
        let source = match self.replay {
            Some(path) => {
                if matches!(
                    self.start_block,
                    Some(StartBlock::Head | StartBlock::Irreversible)
                ) {
                    return Err(ConfigError::NeedsNodes("--start-block head|irreversible"));
                }
                if self.virtual_ops {
                    return Err(ConfigError::NeedsNodes("--virtual-ops"));
                }
                Source::Replay {
                    path,
                    pace: self.pace.unwrap_or(Pace::Realtime),
                }
            }
            None => {
                if self.pace.is_some() {
                    return Err(ConfigError::NeedsReplay("--pace"));
                }
                if self.skip_bad_lines {
                    return Err(ConfigError::NeedsReplay("--skip-bad-lines"));
                }
                Source::Nodes(self.nodes)
            }
        };
        Ok(Config {
            source,
            ring_path: ring_path(&self.ring),
            ring_size: self.ring_size,
            mode: self.mode,
            start_block: self.start_block,
            stop_block: self.stop_block,
            virtual_ops: self.virtual_ops,
            record: self.record,
            skip_bad_lines: self.skip_bad_lines,
            request_timeout: self.request_timeout,
            chain: self.chain,
            metrics: self.metrics,
            tuning: Tuning {
                tip_poll_interval: Duration::from_millis(self.tip_poll_ms),
                fetch_buffer: self.fetch_buffer,
                ..Tuning::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("broadcaster").chain(args.iter().copied()))
    }

    #[test]
    fn fetch_buffer_takes_units_and_a_floor() {
        assert_eq!(parse_fetch_buffer("8MiB"), Ok(8 << 20));
        assert_eq!(parse_fetch_buffer("1048576"), Ok(1 << 20));
        let e = parse_fetch_buffer("64KiB").unwrap_err();
        assert!(e.contains("at least 1MiB"), "{e}");
        assert!(parse_fetch_buffer("lots").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 mib"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
        assert!(parse_ring_size("100000").is_err());
        assert!(parse_ring_size("1KiB").is_err());
        assert!(parse_ring_size("512KiB").is_err());
        assert_eq!(parse_ring_size("1MiB"), Ok(MIN_RING_SIZE));
    }

    #[test]
    fn nodes_and_defaults() {
        let config = parse(&[
            "--node",
            "https://api.steemit.com",
            "--node",
            "http://127.0.0.1:8090",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        assert_eq!(
            config.source,
            Source::Nodes(vec![
                "https://api.steemit.com/".into(),
                "http://127.0.0.1:8090/".into()
            ])
        );
        assert_eq!(config.ring_path, PathBuf::from("/dev/shm/steem"));
        assert_eq!(config.ring_size, 64 << 20);
        assert_eq!(config.mode, Mode::Irreversible);
        assert_eq!(config.request_timeout, Duration::from_secs(5));
        assert_eq!(config.chain, None);
    }

    #[test]
    fn chains() {
        let chain = |arg: &str| {
            parse(&["--node", "http://a", "--chain", arg]).map(|c| c.into_config().unwrap().chain)
        };
        assert_eq!(chain("hive").unwrap(), Some(Chain::HIVE));
        assert_eq!(chain("steem").unwrap(), Some(Chain::STEEM));
        let id = format!("beeab0de{}", "0".repeat(56));
        assert_eq!(chain(&id).unwrap(), Some(Chain::HIVE));
        let other = chain(&"12".repeat(32)).unwrap().unwrap();
        assert_eq!(other.id().to_string(), "12".repeat(32));
        let err = chain("eos").unwrap_err().to_string();
        assert!(
            err.contains("eos") && err.contains("64 hexadecimal"),
            "{err}"
        );
        assert!(chain(&"1".repeat(63)).is_err());
    }

    #[test]
    fn replay_options() {
        let config = parse(&[
            "--replay",
            "blocks.jsonl",
            "--ring",
            "./x.ring",
            "--pace",
            "max",
            "--start-block",
            "5",
            "--stop-block",
            "9",
            "--ring-size",
            "1MiB",
            "--request-timeout",
            "0.3",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        assert_eq!(
            config.source,
            Source::Replay {
                path: "blocks.jsonl".into(),
                pace: Pace::Max
            }
        );
        assert_eq!(config.ring_path, PathBuf::from("./x.ring"));
        assert_eq!(config.start_block, Some(StartBlock::Number(5)));
        assert_eq!(config.request_timeout, Duration::from_millis(300));
        assert!(!config.skip_bad_lines);
        let config = parse(&["--replay", "f", "--skip-bad-lines"])
            .unwrap()
            .into_config()
            .unwrap();
        assert!(config.skip_bad_lines);
    }

    #[test]
    fn bad_combinations() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--node", "http://a", "--replay", "f"]).is_err());
        assert!(parse(&["--node", "ftp://a"]).is_err());
        assert!(parse(&["--replay", "f", "--record", "g"]).is_err());
        assert!(parse(&["--node", "http://a", "--start-block", "soon"]).is_err());
        assert!(parse(&["--node", "http://a", "--mode", "fast"]).is_err());
        assert!(parse(&["--node", "http://a", "--request-timeout", "0"]).is_err());
        let cli = parse(&["--node", "http://a", "--pace", "max"]).unwrap();
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::NeedsReplay(_))
        ));
        let cli = parse(&["--node", "http://a", "--skip-bad-lines"]).unwrap();
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::NeedsReplay("--skip-bad-lines"))
        ));
        let cli = parse(&["--replay", "f", "--start-block", "head"]).unwrap();
        assert!(matches!(cli.into_config(), Err(ConfigError::NeedsNodes(_))));
        let cli = parse(&[
            "--node",
            "http://a",
            "--start-block",
            "9",
            "--stop-block",
            "5",
        ])
        .unwrap();
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::StopBeforeStart { .. })
        ));
    }
}
