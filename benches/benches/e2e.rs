//! `cargo bench -p benches --bench e2e`: the whole pipeline, end to end, with real processes.
//!
//! A fake Hive node (`test_support::fake_node`, on a thread of this process, 127.0.0.1) serves
//! the recorded blocks 1,000,000–1,000,499; the real `broadcaster` binary (release build)
//! follows it into a fresh ring in `/dev/shm`; a bot (a `consumer_sdk::Subscriber` on this
//! process's main thread) reads the ring, and the real `dump` bot reads it too in a process of
//! its own.
//!
//! 1. **Catch-up**: fixed head 1,000,499, the broadcaster follows from 1,000,000 in
//!    `irreversible` mode; the time from spawning the broadcaster until the bot holds block
//!    1,000,499's end, as blocks/s and ops/s. Repeated `E2E_RUNS` [10] times; min and median.
//!    Then the same on composed today-sized blocks (`E2E_COMPOSED_BLOCKS` [500] blocks from
//!    80,000,000, 100 to 300 real op bodies each, mostly `custom_json`; see
//!    `test_support::compose`), once served in the appbase encoding (the broadcaster fetches
//!    them with `block_api.get_block_range`), once in the legacy encoding (the node answers
//!    "method not found" for the `block_api` methods, as a Steem node without them would, so
//!    the broadcaster falls back to `condenser_api.get_block`, one block per request). Then,
//!    for each encoding, the broadcaster alone: no reader, `--stop-block` the last block, the
//!    time from spawning it until it exits having published that block (the ring is checked
//!    to hold every block and op afterwards).
//! 2. **Tip latency**: the head advances one block every `E2E_TIP_MS` [100] ms; the broadcaster
//!    follows in `head` mode for `E2E_TIP_SECS` [20] seconds' worth of blocks. For every op and
//!    every block end the bot receives: the time since the fake node finished writing the
//!    first HTTP response that carried that block (both instants on this process's
//!    `Instant`, i.e. `CLOCK_MONOTONIC`), and how far behind the node's head the bot is.
//! 3. **Memory**: peak RSS (`VmHWM` in `/proc/<pid>/status`) and heap and stacks (`RssAnon`)
//!    of the broadcaster and of the `dump` process, read while both are still alive at the end
//!    of each catch-up.
//!
//! Binaries come from `<target>/release` (the target directory this bench runs from, so
//! `CARGO_TARGET_DIR` is honoured). The bench runs `cargo build --release -p broadcaster -p
//! bots --bins` first (a no-op when they are up to date; `E2E_BUILD=0` skips it when they
//! exist). Under `cargo test --benches` (no `--bench` flag) it does a short smoke run with
//! whatever binaries exist (release, else debug, building the debug ones if missing).

use anyhow::{Context, Result, bail};
use benches::stats::{Memory, latency_histogram, record_latency};
use consumer_sdk::{Event, RecvError, Start, Subscriber};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::compose::{Composer, Encoding};
use test_support::fake_node::{
    Chain, FakeNode, FakeOptions, Fault, HeadSchedule, Rule, ServedRequest, Symbols,
};

/// The recorded Hive blocks the fake node serves.
const FIRST: u64 = 1_000_000;
const LAST: u64 = 1_000_499;
/// The first composed block, and the composer's seed.
const COMPOSED_FIRST: u64 = 80_000_000;
const COMPOSED_SEED: u64 = 1;
/// Longest any one phase may take before the run is declared stuck.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list`: this harness has no individual tests to list.
        return ExitCode::SUCCESS;
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    match Config::from_env(smoke).and_then(|cfg| run(&cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What to run, from the environment.
struct Config {
    smoke: bool,
    /// Catch-up repetitions.
    runs: usize,
    /// Tip phase: head interval and number of blocks followed.
    tip_every: Duration,
    tip_blocks: u64,
    /// Composed blocks per catch-up on today-sized blocks.
    composed_blocks: u64,
    /// Run `cargo build --release` before measuring.
    build: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a valid value")),
        Err(_) => Ok(default),
    }
}

impl Config {
    fn from_env(smoke: bool) -> Result<Config> {
        let runs: usize = env_or("E2E_RUNS", if smoke { 1 } else { 10 })?;
        let secs: f64 = env_or("E2E_TIP_SECS", if smoke { 1.5 } else { 20.0 })?;
        let ms: u64 = env_or("E2E_TIP_MS", 100)?;
        let build = env_or("E2E_BUILD", 1u8)? != 0 && !smoke;
        let composed_blocks: u64 = env_or("E2E_COMPOSED_BLOCKS", if smoke { 20 } else { 500 })?;
        if runs == 0 || ms == 0 || composed_blocks == 0 {
            bail!("E2E_RUNS, E2E_TIP_MS and E2E_COMPOSED_BLOCKS must be at least 1");
        }
        let tip_blocks = ((secs * 1000.0) / ms as f64).round().max(1.0) as u64;
        if FIRST + tip_blocks > LAST {
            bail!(
                "E2E_TIP_SECS / E2E_TIP_MS asks for {tip_blocks} blocks; the fake node holds {}",
                LAST - FIRST
            );
        }
        Ok(Config {
            smoke,
            runs,
            tip_every: Duration::from_millis(ms),
            tip_blocks,
            composed_blocks,
            build,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Binaries

struct Bins {
    broadcaster: PathBuf,
    dump: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// The target directory this bench was built in: its executable is
/// `<target>/<profile>/deps/e2e-<hash>`. Falls back to `CARGO_TARGET_DIR`, then `target`.
fn target_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        Some(deps.parent()?.parent()?.to_owned())
    });
    from_exe.unwrap_or_else(|| match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    })
}

fn has_bins(dir: &Path) -> bool {
    dir.join("broadcaster").is_file() && dir.join("dump").is_file()
}

fn cargo_build(target: &Path, release: bool) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target)
        .arg("build");
    if release {
        cmd.arg("--release");
    }
    cmd.args(["-p", "broadcaster", "-p", "bots", "--bins"]);
    println!(
        "e2e: building the binaries: cargo build{} -p broadcaster -p bots --bins (target dir {})",
        if release { " --release" } else { "" },
        target.display()
    );
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(())
}

fn locate_bins(cfg: &Config) -> Result<Bins> {
    let target = target_dir();
    let release = target.join("release");
    let dir = if cfg.smoke {
        if has_bins(&release) {
            release
        } else {
            let debug = target.join("debug");
            if !has_bins(&debug) {
                cargo_build(&target, false)?;
            }
            debug
        }
    } else {
        if cfg.build || !has_bins(&release) {
            cargo_build(&target, true)?;
        }
        release
    };
    if !has_bins(&dir) {
        bail!("no broadcaster and dump binaries in {}", dir.display());
    }
    Ok(Bins {
        broadcaster: dir.join("broadcaster"),
        dump: dir.join("dump"),
    })
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process whose stderr is kept (last lines) for error messages; killed if dropped
/// while running.
struct Proc {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
    exit: Option<ExitStatus>,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command) -> Result<Proc> {
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    if log.len() == 20 {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        Ok(Proc {
            name,
            child,
            log,
            exit: None,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its last stderr lines, for an error message.
    fn tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let lines: Vec<&str> = log.iter().map(String::as_str).collect();
        format!(
            "{} stderr (last lines):\n  {}",
            self.name,
            lines.join("\n  ")
        )
    }

    /// Fails (with its stderr) if it has exited.
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.exit = Some(status);
            bail!("{} exited early ({status})\n{}", self.name, self.tail());
        }
        Ok(())
    }

    /// Waits up to `limit` for it to exit.
    fn wait_exit(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.exit = Some(status);
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(None)
    }

    /// SIGTERM, then SIGKILL after 5 s; its exit status.
    fn terminate(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill(2) takes two integers and touches no memory of ours. `pid` is our own
        // child, not yet reaped (`exit` is None), so the number cannot belong to another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if let Some(status) = self.wait_exit(Duration::from_secs(5))? {
            return Ok(status);
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        self.exit = Some(status);
        bail!("{} ignored SIGTERM for 5 s and was killed", self.name)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exit.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmHWM`, `RssAnon` and `RssShmem` of a live process, in KiB.
fn memory_of(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in {path}"))
    };
    Ok(Memory {
        hwm_kib: field("VmHWM:")?,
        anon_kib: field("RssAnon:")?,
        shmem_kib: field("RssShmem:")?,
    })
}

/// A ring file in `/dev/shm` with a name no other run uses; removed when dropped.
struct RingFile(PathBuf);

impl RingFile {
    fn new(label: &str) -> RingFile {
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() {
            dir.to_owned()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("e2e-bench-{}-{label}", std::process::id()));
        let _ = consumer_sdk::remove_ring(&path);
        RingFile(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

impl Drop for RingFile {
    fn drop(&mut self) {
        let _ = consumer_sdk::remove_ring(&self.0);
    }
}

fn broadcaster_cmd(
    bins: &Bins,
    node: &FakeNode,
    ring: &RingFile,
    mode: &str,
    first: u64,
) -> Command {
    let mut cmd = Command::new(&bins.broadcaster);
    cmd.args(["--node", &node.url(), "--ring", ring.arg(), "--mode", mode])
        .args([
            "--start-block",
            &first.to_string(),
            "--request-timeout",
            "5",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null());
    cmd
}

/// Waits for the broadcaster to create the ring, then subscribes from its first block.
fn subscribe(ring: &RingFile, broadcaster: &mut Proc) -> Result<Subscriber> {
    let deadline = Instant::now() + PHASE_LIMIT;
    loop {
        if ring.0.exists() {
            return Subscriber::open(ring.arg())
                .and_then(|b| b.start(Start::Earliest))
                .with_context(|| format!("subscribing to {}", ring.0.display()));
        }
        broadcaster.check_alive()?;
        if Instant::now() > deadline {
            bail!("the broadcaster made no ring in {PHASE_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Receives one event, failing if the broadcaster died or the phase takes too long.
fn next_event(
    sub: &mut Subscriber,
    broadcaster: &mut Proc,
    deadline: Instant,
) -> Result<(Event, Instant)> {
    loop {
        match sub.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(event)) => return Ok((event, Instant::now())),
            Ok(None) => {
                if broadcaster.exit.is_none() {
                    broadcaster.check_alive()?;
                }
                if Instant::now() > deadline {
                    bail!("no progress in {PHASE_LIMIT:?}\n{}", broadcaster.tail());
                }
            }
            Err(e @ RecvError::Lagged { .. }) => bail!("the bot was lapped: {e}"),
            Err(e) => return Err(e).context("receiving from the ring"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting

fn fmt_ns(ns: u64) -> String {
    match ns {
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{:.1}µs", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.2}ms", n as f64 / 1e6),
        n => format!("{:.2}s", n as f64 / 1e9),
    }
}

fn pcts(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".to_owned();
    }
    format!(
        "n={} min {} p50 {} p99 {} max {}",
        h.len(),
        fmt_ns(h.min()),
        fmt_ns(h.value_at_quantile(0.5)),
        fmt_ns(h.value_at_quantile(0.99)),
        fmt_ns(h.max())
    )
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mem_total() -> String {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(
            || "?".to_owned(),
            |kib| format!("{:.1} GiB", kib as f64 / 1048576.0),
        )
}

// ---------------------------------------------------------------------------------------------
// 1 and 3: catch-up, with the memory of both processes

/// The blocks a catch-up follows: a chain for the fake node and the range to follow.
struct Source {
    name: String,
    chain: Arc<Chain>,
    first: u64,
    last: u64,
    /// Serve only `condenser_api.get_block` (legacy encoding): the `block_api` methods answer
    /// "method not found".
    legacy_only: bool,
}

impl Source {
    fn recorded(chain: &Arc<Chain>) -> Source {
        Source {
            name: format!("recorded Hive blocks {FIRST}-{LAST}"),
            chain: Arc::clone(chain),
            first: FIRST,
            last: LAST,
            legacy_only: false,
        }
    }

    /// `count` composed blocks in `encoding`, served in that encoding.
    fn composed(data: &Path, count: u64, encoding: Encoding) -> Result<Source> {
        let composer = Composer::from_dir(data, COMPOSED_SEED)
            .with_context(|| format!("loading the op bodies from {}", data.display()))?;
        let mut chain = Chain::new(data)
            .with_context(|| format!("loading the canned answers from {}", data.display()))?;
        for (i, block) in composer
            .blocks(COMPOSED_FIRST, count, encoding)?
            .enumerate()
        {
            chain
                .insert_block(&block, Symbols::Steem)
                .with_context(|| format!("composed block {}", COMPOSED_FIRST + i as u64))?;
        }
        let last = COMPOSED_FIRST + count - 1;
        let (label, legacy_only) = match encoding {
            Encoding::Appbase => ("appbase, block_api.get_block_range", false),
            Encoding::Legacy => ("legacy, condenser_api.get_block", true),
        };
        Ok(Source {
            name: format!("composed blocks {COMPOSED_FIRST}-{last} ({label})"),
            chain: Arc::new(chain),
            first: COMPOSED_FIRST,
            last,
            legacy_only,
        })
    }
}

struct CatchUp {
    secs: f64,
    blocks: u64,
    ops: u64,
    first_request_ms: f64,
    requests: usize,
    /// Requests per method, e.g. `block_api.get_block_range 5`.
    methods: String,
    broadcaster: Memory,
    dump: Memory,
    /// Highest `RssAnon` of the broadcaster seen while it caught up (sampled), KiB.
    broadcaster_peak_anon_kib: u64,
}

/// Samples a process's `RssAnon` every 2 ms on a thread until dropped; keeps the highest.
struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakSampler {
    fn start(pid: u32) -> PeakSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            // Relaxed: a flag and a maximum read after the join; nothing else hangs on them.
            while !s.load(Ordering::Relaxed) {
                if let Ok(m) = memory_of(pid) {
                    p.fetch_max(m.anon_kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        PeakSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the highest value seen, KiB.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// A fake node serving `src` with its head fixed at the last block; for a legacy-only source,
/// one that answers "method not found" to the `block_api` methods.
fn start_node(src: &Source) -> Result<FakeNode> {
    let node = FakeNode::start(Arc::clone(&src.chain), FakeOptions::fixed(src.last))?;
    if src.legacy_only {
        for method in ["block_api.get_block_range", "block_api.get_block"] {
            node.add_rule(Rule {
                method: Some(method.to_owned()),
                block: None,
                fault: Fault::MethodNotFound,
                times: None,
            });
        }
    }
    Ok(node)
}

fn catch_up(bins: &Bins, src: &Source, run: usize) -> Result<CatchUp> {
    let (first, last) = (src.first, src.last);
    let node = start_node(src)?;
    let ring = RingFile::new(&format!("catchup-{run}"));
    let start = Instant::now();
    let mut bc = Proc::spawn(
        "broadcaster",
        broadcaster_cmd(bins, &node, &ring, "irreversible", first),
    )?;
    // The dump bot waits for the ring and reads it as it fills, like a bot started with the
    // broadcaster; the harness counts its lines and throws them away.
    let mut dump_cmd = Command::new(&bins.dump);
    dump_cmd
        .args(["--ring", ring.arg(), "--from", &first.to_string()])
        .stdout(Stdio::piped());
    let mut dump = Proc::spawn("dump", dump_cmd)?;
    let dump_lines = Arc::new(AtomicU64::new(0));
    if let Some(out) = dump.child.stdout.take() {
        let lines = Arc::clone(&dump_lines);
        // Counted in raw chunks: this thread shares the two cores with what is measured, and
        // a String per line of a 200 MB output would cost more than the counting.
        std::thread::spawn(move || {
            let mut out = out;
            let mut chunk = vec![0u8; 64 << 10];
            while let Ok(n @ 1..) = std::io::Read::read(&mut out, &mut chunk) {
                let ends = chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                // Relaxed: a counter read by the harness after the fact; nothing else depends on it.
                lines.fetch_add(ends, Ordering::Relaxed);
            }
        });
    }

    let sampler = PeakSampler::start(bc.pid());
    let mut sub = subscribe(&ring, &mut bc)?;
    let deadline = start + PHASE_LIMIT;
    let (mut blocks, mut ops, mut declared) = (0u64, 0u64, 0u64);
    let mut expect = first;
    let end = loop {
        match next_event(&mut sub, &mut bc, deadline)? {
            (Event::Op(_), _) => ops += 1,
            (Event::BlockEnd(e), at) => {
                if e.block != expect {
                    bail!("block {} after block {}", e.block, expect - 1);
                }
                expect += 1;
                blocks += 1;
                declared += e.op_count;
                if e.block == last {
                    break at;
                }
            }
            (Event::Fork(f), _) => bail!("a fork notice from a node with one branch: {f:?}"),
        }
    };
    let secs = end.duration_since(start).as_secs_f64();
    if ops != declared {
        bail!("the bot got {ops} ops; the block ends announce {declared}");
    }
    // dump prints one line per op: once it printed them all it is done with the ring.
    let dump_deadline = Instant::now() + Duration::from_secs(30);
    // Relaxed: see the writer above.
    while dump_lines.load(Ordering::Relaxed) < ops {
        dump.check_alive()?;
        if Instant::now() > dump_deadline {
            bail!(
                "dump printed {} of {ops} ops in 30 s\n{}",
                dump_lines.load(Ordering::Relaxed),
                dump.tail()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    bc.check_alive()?;
    let bc_mem = memory_of(bc.pid())?;
    let broadcaster_peak_anon_kib = sampler.finish().max(bc_mem.anon_kib);
    let dump_mem = memory_of(dump.pid())?;
    let bc_exit = bc.terminate()?;
    let dump_exit = dump.terminate()?;
    if !bc_exit.success() {
        bail!("broadcaster exit after SIGTERM: {bc_exit}\n{}", bc.tail());
    }
    if !dump_exit.success() {
        bail!("dump exit after SIGTERM: {dump_exit}\n{}", dump.tail());
    }
    let requests = node.requests();
    let first_request_ms = requests.first().map_or(0.0, |r| {
        r.received.duration_since(start).as_secs_f64() * 1e3
    });
    let mut by_method: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &requests {
        *by_method.entry(r.method.as_str()).or_default() += 1;
        let block_api = r.method.starts_with("block_api.");
        if src.legacy_only && block_api && r.fault != Some(Fault::MethodNotFound) {
            bail!("{} was answered in a legacy-only run", r.method);
        }
    }
    let methods = by_method
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(CatchUp {
        secs,
        blocks,
        ops,
        first_request_ms,
        requests: requests.len(),
        methods,
        broadcaster: bc_mem,
        dump: dump_mem,
        broadcaster_peak_anon_kib,
    })
}

fn run_catch_up(cfg: &Config, bins: &Bins, src: &Source) -> Result<()> {
    let (first, last) = (src.first, src.last);
    println!(
        "\n## catch-up on {}: fixed head {last}, broadcaster --mode irreversible --start-block \
         {first}, {} run(s)",
        src.name, cfg.runs
    );
    println!(
        "   time = broadcaster spawn -> the in-process bot holds block {last}'s end; `dump` reads \
         the same ring at the same time"
    );
    let mut results = Vec::new();
    for run in 1..=cfg.runs {
        let r = catch_up(bins, src, run)?;
        println!(
            "run {run}: {} blocks, {} ops in {:.1} ms = {:.0} blocks/s, {:.0} ops/s; first request \
             at +{:.1} ms, {} requests ({}); VmHWM broadcaster {} KiB (anon {}, shmem {}; anon \
             peak {}), dump {} KiB (anon {}, shmem {}); load {}",
            r.blocks,
            r.ops,
            r.secs * 1e3,
            r.blocks as f64 / r.secs,
            r.ops as f64 / r.secs,
            r.first_request_ms,
            r.requests,
            r.methods,
            r.broadcaster.hwm_kib,
            r.broadcaster.anon_kib,
            r.broadcaster.shmem_kib,
            r.broadcaster_peak_anon_kib,
            r.dump.hwm_kib,
            r.dump.anon_kib,
            r.dump.shmem_kib,
            load_average()
        );
        results.push(r);
    }
    let mut secs: Vec<f64> = results.iter().map(|r| r.secs).collect();
    secs.sort_by(f64::total_cmp);
    let blocks = (last - first + 1) as f64;
    let ops = results[0].ops as f64;
    let (best, mid) = (secs[0], median(&secs));
    println!(
        "catch-up: min {:.1} ms ({:.0} blocks/s, {:.0} ops/s), median {:.1} ms ({:.0} blocks/s, \
         {:.0} ops/s) over {} runs",
        best * 1e3,
        blocks / best,
        ops / best,
        mid * 1e3,
        blocks / mid,
        ops / mid,
        results.len()
    );
    let mut bc: Vec<u64> = results.iter().map(|r| r.broadcaster.hwm_kib).collect();
    let mut dump: Vec<u64> = results.iter().map(|r| r.dump.hwm_kib).collect();
    bc.sort_unstable();
    dump.sort_unstable();
    println!(
        "memory (VmHWM at the end of the catch-up, min / median / max over runs): broadcaster \
         {} / {} / {} KiB ({}), dump bot {} / {} / {} KiB ({})",
        bc[0],
        bc[bc.len() / 2],
        bc[bc.len() - 1],
        mib(bc[bc.len() / 2]),
        dump[0],
        dump[dump.len() / 2],
        dump[dump.len() - 1],
        mib(dump[dump.len() / 2]),
    );
    let mut bc_anon: Vec<u64> = results.iter().map(|r| r.broadcaster.anon_kib).collect();
    let mut dump_anon: Vec<u64> = results.iter().map(|r| r.dump.anon_kib).collect();
    bc_anon.sort_unstable();
    dump_anon.sort_unstable();
    println!(
        "heap and stacks (RssAnon at the end of the catch-up, min / median / max over runs): \
         broadcaster {} / {} / {} KiB, dump bot {} / {} / {} KiB",
        bc_anon[0],
        bc_anon[bc_anon.len() / 2],
        bc_anon[bc_anon.len() - 1],
        dump_anon[0],
        dump_anon[dump_anon.len() / 2],
        dump_anon[dump_anon.len() - 1],
    );
    let mut peaks: Vec<u64> = results
        .iter()
        .map(|r| r.broadcaster_peak_anon_kib)
        .collect();
    peaks.sort_unstable();
    println!(
        "broadcaster heap peak while catching up (RssAnon sampled every 2 ms, min / median / max \
         over runs): {} / {} / {} KiB ({})",
        peaks[0],
        peaks[peaks.len() / 2],
        peaks[peaks.len() - 1],
        mib(peaks[peaks.len() / 2]),
    );
    Ok(())
}

/// The broadcaster alone catching up `src` into a fresh ring, until it exits after the stop
/// block: the seconds from spawn to exit.
fn catch_up_alone(bins: &Bins, src: &Source, run: usize) -> Result<f64> {
    let (first, last) = (src.first, src.last);
    let node = start_node(src)?;
    let ring = RingFile::new(&format!("alone-{run}"));
    let mut cmd = broadcaster_cmd(bins, &node, &ring, "irreversible", first);
    cmd.args(["--stop-block", &last.to_string()]);
    let start = Instant::now();
    let mut bc = Proc::spawn("broadcaster", cmd)?;
    let status = bc
        .wait_exit(PHASE_LIMIT)?
        .with_context(|| format!("the broadcaster did not exit within {PHASE_LIMIT:?}"))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("broadcaster exit: {status}\n{}", bc.tail());
    }
    // Every block and op is in the ring (the ring is large enough to hold them all, or the
    // oldest ones were overwritten: then the newest block's ops at least).
    let mut sub = Subscriber::open(ring.arg())?.start(Start::Earliest)?;
    let (mut ops, mut declared, mut newest) = (0u64, 0u64, None);
    while let Some(event) = sub.try_recv()? {
        match event {
            Event::Op(_) => ops += 1,
            Event::BlockEnd(e) => {
                declared += e.op_count;
                newest = Some(e.block);
            }
            Event::Fork(f) => bail!("a fork notice from a node with one branch: {f:?}"),
        }
    }
    if newest != Some(last) || ops != declared {
        bail!("the ring ends with block {newest:?} and holds {ops} of {declared} ops");
    }
    Ok(secs)
}

fn run_catch_up_alone(cfg: &Config, bins: &Bins, src: &Source) -> Result<()> {
    let (first, last) = (src.first, src.last);
    println!(
        "\n## broadcaster alone on {}: fixed head {last}, broadcaster --mode irreversible \
         --start-block {first} --stop-block {last}, no reader, {} run(s)",
        src.name, cfg.runs
    );
    println!("   time = broadcaster spawn -> it exits having published block {last}");
    let mut secs = Vec::new();
    for run in 1..=cfg.runs {
        let s = catch_up_alone(bins, src, run)?;
        println!(
            "run {run}: {:.1} ms = {:.0} blocks/s; load {}",
            s * 1e3,
            (last - first + 1) as f64 / s,
            load_average()
        );
        secs.push(s);
    }
    secs.sort_by(f64::total_cmp);
    let blocks = (last - first + 1) as f64;
    println!(
        "alone: min {:.1} ms ({:.0} blocks/s), median {:.1} ms ({:.0} blocks/s) over {} runs",
        secs[0] * 1e3,
        blocks / secs[0],
        median(&secs) * 1e3,
        blocks / median(&secs),
        secs.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2: latency at the tip

/// The head of an advancing schedule at `t`, as the fake node computes it.
fn head_at(from: u64, every: Duration, since: Instant, t: Instant) -> u64 {
    let steps = t.saturating_duration_since(since).as_nanos() / every.as_nanos().max(1);
    from.saturating_add(u64::try_from(steps).unwrap_or(u64::MAX))
}

/// For each block, when the fake node finished sending the first complete answer carrying it.
fn first_sent(requests: &[ServedRequest], head: impl Fn(Instant) -> u64) -> BTreeMap<u64, Instant> {
    let mut map: BTreeMap<u64, Instant> = BTreeMap::new();
    for r in requests {
        let (Some(sent), Some(first), None) = (r.sent, r.block, r.fault) else {
            continue;
        };
        let head = head(r.received).min(LAST);
        let last = match r.method.as_str() {
            "block_api.get_block_range" => first
                .saturating_add(r.count.unwrap_or(0))
                .saturating_sub(1)
                .min(head),
            "block_api.get_block" | "condenser_api.get_block" => first.min(head),
            _ => continue,
        };
        // An answer for a block past the head carried nothing (`last < first`: empty range).
        for n in first..=last {
            map.entry(n)
                .and_modify(|t| *t = (*t).min(sent))
                .or_insert(sent);
        }
    }
    map
}

fn run_tip(cfg: &Config, bins: &Bins, chain: &Arc<Chain>) -> Result<()> {
    let every = cfg.tip_every;
    let stop = FIRST + cfg.tip_blocks;
    println!(
        "\n## tip: head advances from {FIRST} one block every {} ms; broadcaster --mode head \
         --start-block {FIRST} --stop-block {stop} ({} blocks, about {:.1} s)",
        every.as_millis(),
        cfg.tip_blocks + 1,
        (cfg.tip_blocks as f64) * every.as_secs_f64()
    );
    let since = Instant::now();
    let options = FakeOptions {
        head: HeadSchedule::Advancing {
            from: FIRST,
            every,
            since,
        },
        ..FakeOptions::fixed(FIRST)
    };
    let node = FakeNode::start(Arc::clone(chain), options)?;
    let ring = RingFile::new("tip");
    let mut cmd = broadcaster_cmd(bins, &node, &ring, "head", FIRST);
    cmd.args(["--stop-block", &stop.to_string()]);
    let mut bc = Proc::spawn("broadcaster", cmd)?;
    let mut sub = subscribe(&ring, &mut bc)?;
    let deadline = Instant::now() + PHASE_LIMIT + every * cfg.tip_blocks as u32;
    // (block, received at, is a block end)
    let mut events: Vec<(u64, Instant, bool)> = Vec::new();
    loop {
        let (event, at) = next_event(&mut sub, &mut bc, deadline)?;
        match event {
            Event::Op(op) => events.push((op.block(), at, false)),
            Event::BlockEnd(e) => {
                events.push((e.block, at, true));
                if e.block == stop {
                    break;
                }
            }
            Event::Fork(f) => bail!("a fork notice from a node with one branch: {f:?}"),
        }
    }
    match bc.wait_exit(Duration::from_secs(10))? {
        Some(status) if status.success() => {}
        Some(status) => bail!("broadcaster: {status}\n{}", bc.tail()),
        None => bail!("broadcaster still running 10 s after its stop block"),
    }
    let requests = node.requests();
    let head = |t: Instant| head_at(FIRST, every, since, t);
    let sent = first_sent(&requests, head);

    let mut op_lat = latency_histogram();
    let mut end_lat = latency_histogram();
    let mut age = latency_histogram();
    let mut behind: Vec<u64> = Vec::new();
    let mut unmatched = 0u64;
    for &(block, at, is_end) in &events {
        let Some(&t_sent) = sent.get(&block) else {
            unmatched += 1;
            continue;
        };
        let ns = u64::try_from(at.saturating_duration_since(t_sent).as_nanos()).unwrap_or(u64::MAX);
        if is_end {
            record_latency(&mut end_lat, ns);
            // When the block became the node's head: `since + (block - FIRST) * every`.
            let appeared = since + every * u32::try_from(block - FIRST).unwrap_or(u32::MAX);
            let waited = at.saturating_duration_since(appeared).as_nanos();
            record_latency(&mut age, u64::try_from(waited).unwrap_or(u64::MAX));
            behind.push(head(at).saturating_sub(block));
        } else {
            record_latency(&mut op_lat, ns);
        }
    }
    behind.sort_unstable();
    let mut by_method: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in &requests {
        let entry = by_method.entry(r.method.as_str()).or_default();
        entry.0 += 1;
        if r.fault.is_some() || r.sent.is_none() {
            entry.1 += 1;
        }
    }
    let methods: Vec<String> = by_method
        .iter()
        .map(|(m, (n, bad))| {
            format!(
                "{m} {n}{}",
                if *bad > 0 {
                    format!(" ({bad} not sent)")
                } else {
                    String::new()
                }
            )
        })
        .collect();
    println!("requests served: {}", methods.join(", "));
    tip_requests_per_block(&requests, cfg.tip_blocks + 1);
    println!(
        "latency, fake node's response sent -> bot holds the op:        {}",
        pcts(&op_lat)
    );
    println!(
        "latency, fake node's response sent -> bot holds the block end: {}",
        pcts(&end_lat)
    );
    println!(
        "block age at the bot (block became head at the node -> bot holds its end): {}",
        pcts(&age)
    );
    if !behind.is_empty() {
        println!(
            "blocks behind the node's head when the bot holds a block end: p50 {} p99 {} max {} \
             (n={})",
            behind[behind.len() / 2],
            behind[(behind.len() * 99).div_ceil(100) - 1],
            behind[behind.len() - 1],
            behind.len()
        );
    }
    if unmatched > 0 {
        bail!("{unmatched} events of blocks no logged response carried");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2b: the cost of low latency at the tip

/// Prints how many requests the broadcaster sent per published block while following the head.
fn tip_requests_per_block(requests: &[ServedRequest], blocks: u64) {
    let count = |pred: &dyn Fn(&str) -> bool| requests.iter().filter(|r| pred(&r.method)).count();
    let block_calls = count(&|m| m.ends_with("get_block") || m.ends_with("get_block_range"));
    let props_calls = count(&|m| m.ends_with("get_dynamic_global_properties"));
    let per_block = |n: usize| n as f64 / blocks.max(1) as f64;
    println!(
        "requests per block at the tip: {:.2} ({:.2} block requests, {:.2} property polls, {} in all for {blocks} blocks)",
        per_block(requests.len()),
        per_block(block_calls),
        per_block(props_calls),
        requests.len()
    );
}

// ---------------------------------------------------------------------------------------------

fn run(cfg: &Config) -> Result<()> {
    let started = Instant::now();
    let bins = locate_bins(cfg)?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "e2e{}: broadcaster {}, dump {}",
        if cfg.smoke { " (smoke run)" } else { "" },
        bins.broadcaster.display(),
        bins.dump.display()
    );
    println!(
        "machine: {cores} CPUs online, {} RAM; load average at start {}",
        mem_total(),
        load_average()
    );
    let data = benches::data::data_dir();
    let chain = Arc::new(
        Chain::recorded(&data)
            .with_context(|| format!("loading the recorded chain from {}", data.display()))?,
    );
    run_catch_up(cfg, &bins, &Source::recorded(&chain))?;
    for encoding in [Encoding::Appbase, Encoding::Legacy] {
        let source = Source::composed(&data, cfg.composed_blocks, encoding)?;
        run_catch_up(cfg, &bins, &source)?;
        run_catch_up_alone(cfg, &bins, &source)?;
    }
    run_tip(cfg, &bins, &chain)?;
    println!(
        "\ne2e: done in {:.1} s; load average at end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}
