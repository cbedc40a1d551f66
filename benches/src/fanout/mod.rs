//! Cross-process fan-out: one writer process, N reader processes, the same records and pacing
//! for the ring and for every peer, in one run.
//!
//! The bench binary re-executes itself with `--role <name>` for every writer and reader
//! process ([`run_role`]); [`run`] is the orchestrator that starts them, collects the
//! `RESULT` line each prints, and prints the table. Every record starts with a 16-byte stamp
//! (send time on `CLOCK_MONOTONIC`, sequence number); a reader's latency for a record is its
//! own clock reading when it has the record in hand minus that send time.

#[cfg(feature = "iceoryx2")]
mod ice;
mod inproc;
mod node;
pub mod pace;
mod procs;
mod ring;
mod table;
mod uds;

use crate::data;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use pace::{Plan, Sent};

/// Which record body a cell sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A real vote body, ~150 B with the stamp.
    Vote,
    /// A real comment body lengthened to 1.5 KiB with the stamp.
    Comment,
}

impl Size {
    /// Name used on the command line and as the ring topic.
    pub fn name(self) -> &'static str {
        match self {
            Size::Vote => "vote",
            Size::Comment => "comment",
        }
    }

    fn parse(s: &str) -> Result<Size> {
        match s {
            "vote" => Ok(Size::Vote),
            "comment" => Ok(Size::Comment),
            _ => bail!("unknown record size {s:?} (vote or comment)"),
        }
    }

    /// The record (stamp space included) for this size.
    pub fn record(self) -> Result<Vec<u8>> {
        let body = match self {
            Size::Vote => data::vote_body()?,
            Size::Comment => data::comment_body()?,
        };
        Ok(data::record(&body))
    }
}

/// A transport measured by the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The ring, readers waiting with `Wait::Backoff` (spin, yield, futex).
    Ring,
    /// The ring, readers with `Wait::BusySpin`.
    RingSpin,
    /// Unix-domain stream sockets, one server writing length-prefixed frames to N clients.
    Uds,
    /// The original Node stack: node-ipc 9.x `server.broadcast` to N Node clients.
    NodeIpc,
    /// iceoryx2 publish-subscribe, subscribers woken by an iceoryx2 event.
    Iceoryx2,
    /// iceoryx2 publish-subscribe, subscribers polling.
    Iceoryx2Spin,
    /// In one process: `tokio::sync::broadcast` to N threads.
    InProc,
}

impl Peer {
    const ALL: [Peer; 7] = [
        Peer::Ring,
        Peer::RingSpin,
        Peer::Uds,
        Peer::NodeIpc,
        Peer::Iceoryx2,
        Peer::Iceoryx2Spin,
        Peer::InProc,
    ];

    /// Name used in `FANOUT_PEERS` and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Ring => "ring",
            Peer::RingSpin => "ring-spin",
            Peer::Uds => "uds",
            Peer::NodeIpc => "node-ipc",
            Peer::Iceoryx2 => "iceoryx2",
            Peer::Iceoryx2Spin => "iceoryx2-spin",
            Peer::InProc => "inproc",
        }
    }

    /// How its readers wait, for the table.
    pub fn wait(self) -> &'static str {
        match self {
            Peer::Ring => "backoff",
            Peer::RingSpin | Peer::Iceoryx2Spin => "busy-spin",
            Peer::Uds => "read(2)",
            Peer::NodeIpc => "ev-loop",
            Peer::Iceoryx2 => "event",
            Peer::InProc => "blocking",
        }
    }

    fn parse(s: &str) -> Result<Peer> {
        Peer::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .with_context(|| {
                format!(
                    "unknown peer {s:?}; known: {}",
                    Peer::ALL.map(Peer::name).join(",")
                )
            })
    }
}

/// What the harness runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seconds each writer sends.
    pub secs: f64,
    /// Reader counts.
    pub readers: Vec<usize>,
    /// Record sizes.
    pub sizes: Vec<Size>,
    /// Paces, records per second (`None`: unpaced).
    pub rates: Vec<Option<u64>>,
    /// Peers, in table order.
    pub peers: Vec<Peer>,
    /// Records per block when unpaced.
    pub batch: usize,
    /// Ring capacity in bytes.
    pub ring_capacity: u64,
    /// Print one line per reader under each cell.
    pub per_reader: bool,
    /// A short smoke run (`cargo test --benches`).
    pub smoke: bool,
}

impl Config {
    /// The default run, adjusted by `FANOUT_*` environment variables.
    pub fn from_env(smoke: bool) -> Result<Config> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let list = |k: &str, default: &str| -> Vec<String> {
            var(k)
                .unwrap_or_else(|| default.to_owned())
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect()
        };
        let (secs, readers, sizes, rates, peers) = if smoke {
            (
                "0.05",
                "1,2",
                "vote",
                "0,10000",
                "ring,ring-spin,uds,inproc",
            )
        } else {
            (
                "0.75",
                "1,2,4,8",
                "vote,comment",
                "0,10000,100000",
                "ring,ring-spin,uds,node-ipc,iceoryx2,inproc",
            )
        };
        let secs: f64 = var("FANOUT_SECS")
            .as_deref()
            .unwrap_or(secs)
            .parse()
            .context("FANOUT_SECS")?;
        let readers = list("FANOUT_READERS", readers)
            .iter()
            .map(|s| s.parse::<usize>().context("FANOUT_READERS"))
            .collect::<Result<Vec<_>>>()?;
        let sizes = list("FANOUT_SIZES", sizes)
            .iter()
            .map(|s| Size::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let rates = list("FANOUT_RATES", rates)
            .iter()
            .map(|s| {
                s.parse::<u64>()
                    .map(|r| (r > 0).then_some(r))
                    .context("FANOUT_RATES")
            })
            .collect::<Result<Vec<_>>>()?;
        let peers = list("FANOUT_PEERS", peers)
            .iter()
            .map(|s| Peer::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let batch = var("FANOUT_BATCH")
            .map_or(Ok(16), |v| v.parse())
            .context("FANOUT_BATCH")?;
        let ring_mb: u64 = var("FANOUT_RING_MB")
            .map_or(Ok(64), |v| v.parse())
            .context("FANOUT_RING_MB")?;
        if !ring_mb.is_power_of_two() {
            bail!("FANOUT_RING_MB must be a power of two");
        }
        let per_reader = var("FANOUT_PER_READER").is_some_and(|v| v != "0");
        if readers.contains(&0) || secs <= 0.0 {
            bail!("reader counts and FANOUT_SECS must be positive");
        }
        Ok(Config {
            secs,
            readers,
            sizes,
            rates,
            peers,
            batch,
            ring_capacity: ring_mb << 20,
            per_reader,
            smoke,
        })
    }
}

/// One cell of the table.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    /// Transport.
    pub peer: Peer,
    /// Record size.
    pub size: Size,
    /// Readers.
    pub readers: usize,
    /// Pace.
    pub plan: Plan,
}

/// Arguments of a child process role, `--key value` pairs after `--role NAME`.
#[derive(Debug, Clone)]
pub struct RoleArgs(HashMap<String, String>);

impl RoleArgs {
    fn parse(args: &[String]) -> Result<RoleArgs> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .with_context(|| format!("expected --key, got {k:?}"))?;
            let value = it
                .next()
                .with_context(|| format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), value.clone());
        }
        Ok(RoleArgs(map))
    }

    fn str(&self, key: &str) -> Result<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("missing --{key}"))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.str(key)?.parse().with_context(|| format!("--{key}"))
    }

    /// Path of the ring, socket or service name.
    pub fn path(&self) -> Result<&str> {
        self.str("path")
    }

    /// Record size.
    pub fn size(&self) -> Result<Size> {
        Size::parse(self.str("size")?)
    }

    /// The writer's plan.
    pub fn plan(&self) -> Result<Plan> {
        let rate: u64 = self.num("rate")?;
        Ok(Plan {
            secs: self.num("secs")?,
            rate: (rate > 0).then_some(rate),
            batch: self.num("batch")?,
        })
    }

    /// Number of readers.
    pub fn readers(&self) -> Result<usize> {
        self.num("readers")
    }

    /// Whether readers busy-spin.
    pub fn spin(&self) -> Result<bool> {
        Ok(self.str("wait")? == "spin")
    }

    /// Ring capacity.
    pub fn capacity(&self) -> Result<u64> {
        self.num("cap")
    }

    fn for_cell(cell: &Cell, path: &str, capacity: u64) -> Vec<String> {
        let spin = matches!(cell.peer, Peer::RingSpin | Peer::Iceoryx2Spin);
        [
            ("path", path.to_owned()),
            ("size", cell.size.name().to_owned()),
            ("rate", cell.plan.rate.unwrap_or(0).to_string()),
            ("secs", cell.plan.secs.to_string()),
            ("batch", cell.plan.batch.to_string()),
            ("readers", cell.readers.to_string()),
            ("wait", if spin { "spin" } else { "backoff" }.to_owned()),
            ("cap", capacity.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [format!("--{k}"), v])
        .collect()
    }
}

/// Block until the orchestrator says `GO` on standard input.
pub(crate) fn wait_go() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading GO from the harness")?;
    if line.trim() != "GO" {
        bail!("expected GO from the harness, got {line:?}");
    }
    Ok(())
}

/// Print a line for the orchestrator and flush it.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed pipe means the orchestrator is gone; the process is about to end anyway.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The writer's report.
pub(crate) fn writer_report(sent: &Sent) -> String {
    let mut r = crate::stats::Report::new();
    r.set("sent", sent.records)
        .set("blocks", sent.blocks)
        .set("elapsed_ns", sent.elapsed_ns)
        .memory();
    sent.costs.report(&mut r);
    r.line()
}

/// Run a child role (`args` = everything after `--role`). Returns when the role is done.
pub fn run_role(args: &[String]) -> Result<()> {
    let (name, rest) = args.split_first().context("--role needs a name")?;
    let a = RoleArgs::parse(rest)?;
    match name.as_str() {
        "ring-writer" => ring::writer(&a),
        "ring-reader" => ring::reader(&a),
        "uds-server" => uds::server(&a),
        "uds-client" => uds::client(&a),
        #[cfg(feature = "iceoryx2")]
        "ice-publisher" => ice::publisher(&a),
        #[cfg(feature = "iceoryx2")]
        "ice-subscriber" => ice::subscriber(&a),
        other => bail!("unknown role {other:?}"),
    }
}

/// What one cell produced.
#[derive(Debug)]
pub struct CellResult {
    /// The cell.
    pub cell: Cell,
    /// The writer's report (absent for a failed cell).
    pub writer: Option<crate::stats::Report>,
    /// One report per reader that finished.
    pub readers: Vec<crate::stats::Report>,
    /// Latencies of the readers' records.
    pub hists: Vec<hdrhistogram::Histogram<u64>>,
    /// Why the cell is incomplete, if it is.
    pub error: Option<String>,
}

/// A scratch path for one cell's ring or socket.
fn scratch(dir: &str, tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    PathBuf::from(dir).join(format!("ring-bench-{}-{n}-{tag}", std::process::id()))
}

/// How long readers may take after the writer's time is up before they are stopped.
fn drain_timeout(cell: &Cell) -> Duration {
    Duration::from_secs_f64(cell.plan.secs + 20.0)
}

fn run_cell(cfg: &Config, cell: &Cell, node: &node::NodeStatus) -> Result<CellResult> {
    match cell.peer {
        Peer::Ring | Peer::RingSpin => {
            let path = scratch("/dev/shm", "ring");
            let args = RoleArgs::for_cell(cell, &path.to_string_lossy(), cfg.ring_capacity);
            let r = procs::run_processes(cell, "ring-writer", "ring-reader", &args, &args);
            let _ = consumer_sdk::remove_ring(&path);
            r
        }
        Peer::Uds => {
            let path = scratch(&std::env::temp_dir().to_string_lossy(), "sock");
            let args = RoleArgs::for_cell(cell, &path.to_string_lossy(), cfg.ring_capacity);
            let r = procs::run_processes(cell, "uds-server", "uds-client", &args, &args);
            let _ = std::fs::remove_file(&path);
            r
        }
        Peer::NodeIpc => node::run(cell, node),
        Peer::Iceoryx2 | Peer::Iceoryx2Spin => {
            #[cfg(feature = "iceoryx2")]
            {
                let name = format!(
                    "ring-bench/{}/{}",
                    std::process::id(),
                    scratch("", "ice").display()
                );
                let args = RoleArgs::for_cell(cell, &name, cfg.ring_capacity);
                procs::run_processes(cell, "ice-publisher", "ice-subscriber", &args, &args)
            }
            #[cfg(not(feature = "iceoryx2"))]
            unreachable!("iceoryx2 cells are filtered out without the feature")
        }
        Peer::InProc => inproc::run(cell),
    }
}

/// The 1, 5 and 15 minute load averages (other work on a shared machine shows here).
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The orchestrator: run every cell of `cfg` and print the tables.
pub fn run(cfg: &Config) -> Result<()> {
    let started = std::time::Instant::now();
    let load_at_start = load_average();
    let mut peers = cfg.peers.clone();
    let mut notes = Vec::new();
    if !cfg!(feature = "iceoryx2") {
        peers.retain(|p| !matches!(p, Peer::Iceoryx2 | Peer::Iceoryx2Spin));
        notes.push(
            "iceoryx2: SKIPPED, built without the `iceoryx2` feature; run \
             `cargo bench -p benches --features iceoryx2 --bench fanout` to include it"
                .to_owned(),
        );
    }
    let node = if peers.contains(&Peer::NodeIpc) {
        node::prepare()
    } else {
        node::NodeStatus::Skipped(if cfg.smoke {
            "not run in the smoke run (cargo test --benches); `cargo bench --bench fanout` runs it"
                .to_owned()
        } else {
            "not in FANOUT_PEERS".to_owned()
        })
    };
    if let Some(what) = node::describe(&node) {
        notes.push(format!("node-ipc: {what}"));
    }
    if let node::NodeStatus::Skipped(why) = &node {
        notes.push(format!("node-ipc: SKIPPED, {why}"));
        peers.retain(|p| *p != Peer::NodeIpc);
    }
    table::print_header(cfg, &peers, &notes)?;
    let mut results = Vec::new();
    for &size in &cfg.sizes {
        for &rate in &cfg.rates {
            for &readers in &cfg.readers {
                for &peer in &peers {
                    let plan = Plan {
                        secs: cfg.secs,
                        rate,
                        batch: cfg.batch,
                    };
                    let cell = Cell {
                        peer,
                        size,
                        readers,
                        plan,
                    };
                    let result = run_cell(cfg, &cell, &node).unwrap_or_else(|e| CellResult {
                        cell,
                        writer: None,
                        readers: Vec::new(),
                        hists: Vec::new(),
                        error: Some(format!("{e:#}")),
                    });
                    table::print_row(cfg, &result);
                    results.push(result);
                }
            }
            table::print_separator();
        }
    }
    let bound = inproc::memcpy_bandwidth(cfg.smoke);
    let floors = inproc::latency_floors(cfg.smoke);
    table::print_summary(cfg, &results, bound, floors);
    println!(
        "fanout: {} cells in {:.1} s; load average at start {load_at_start}, at end {}",
        results.len(),
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}
