//! A real `nats-server -js` per test, the bridges as real processes, rings in temp dirs, and a
//! model of what the source ring was given, to check the far side against op for op.

use consumer_sdk::{CreateOptions, Event, OpMeta, Publisher, RecvError, Start, Subscriber};
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the server, when it is not on `PATH` (it is in `/usr/sbin`).
const EXTRA_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

/// The `nats-server` binary, or `None` after printing why the test is skipped.
pub fn nats_server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED: nats-server is not installed (not on PATH nor in /usr/sbin); \
             `apt-get install nats-server` (what .ci/run does) makes this test run"
        );
    }
    found
}

/// Skip the calling test (with the reason printed) when the server cannot be had.
#[macro_export]
macro_rules! need_server {
    () => {
        match $crate::support::nats_server_binary() {
            Some(bin) => bin,
            None => return,
        }
    };
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Poll `cond` until it holds or `limit` passes; panics with `what` on timeout.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A real `nats-server -js` on a free port with its store in a temp dir; killed on drop.
pub struct NatsServer {
    bin: PathBuf,
    pub port: u16,
    store: PathBuf,
    log: PathBuf,
    /// A cap on the JetStream store (`max_file_store`), when set.
    store_limit: Option<u64>,
    child: Option<Child>,
}

impl NatsServer {
    /// A server that is not started yet (see [`NatsServer::start`]).
    pub fn new(bin: PathBuf, dir: &Path) -> NatsServer {
        NatsServer {
            bin,
            port: free_port(),
            store: dir.join("nats-store"),
            log: dir.join("nats-server.log"),
            store_limit: None,
            child: None,
        }
    }

    /// Cap the server's JetStream store at `bytes` (`max_file_store`, through a config file),
    /// as a server on a small disk has.
    pub fn with_store_limit(mut self, bytes: u64) -> NatsServer {
        self.store_limit = Some(bytes);
        self
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Start it and wait until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let mut command = Command::new(&self.bin);
        command
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store);
        if let Some(limit) = self.store_limit {
            let config = self.store.with_extension("conf");
            let text = format!("jetstream {{\n  max_file_store: {limit}\n}}\n");
            std::fs::write(&config, text).expect("server config");
            command.arg("-c").arg(config);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let port = self.port;
        wait_for("nats-server to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// SIGKILL it (the store stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A JetStream client of the running server, once JetStream answers.
    pub fn js(&self, rt: &tokio::runtime::Runtime) -> async_nats::jetstream::Context {
        let url = self.url();
        rt.block_on(async {
            let client = async_nats::connect(url)
                .await
                .expect("connect to the test server");
            let js = async_nats::jetstream::new(client);
            let deadline = Instant::now() + Duration::from_secs(20);
            // Ready when the JetStream API answers (here: that no such stream exists).
            loop {
                let e = match js.get_stream("READINESS-PROBE").await {
                    Ok(_) => break,
                    Err(e) => e,
                };
                if let async_nats::jetstream::context::GetStreamErrorKind::JetStream(_) = e.kind() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "JetStream never became ready: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            js
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bridge binary as a real process, its stderr in a log file; SIGKILLed on drop.
pub struct Proc {
    bin: &'static str,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

pub const RING_TO_NATS: &str = env!("CARGO_BIN_EXE_ring-to-nats");
pub const NATS_TO_RING: &str = env!("CARGO_BIN_EXE_nats-to-ring");

/// `ring-to-nats` from `src` and `nats-to-ring` into `far` through the server at `url`, with
/// default settings and their logs in `dir` (not started yet).
pub fn bridges(dir: &Path, url: &str, src: &Path, far: &Path) -> (Proc, Proc) {
    let sender = Proc::new(
        RING_TO_NATS,
        &["--ring", src.to_str().unwrap(), "--nats", url],
        dir.join("ring-to-nats.log"),
    );
    let receiver = Proc::new(
        NATS_TO_RING,
        &["--ring", far.to_str().unwrap(), "--nats", url],
        dir.join("nats-to-ring.log"),
    );
    (sender, receiver)
}

impl Proc {
    pub fn new(bin: &'static str, args: &[&str], log: PathBuf) -> Proc {
        Proc {
            bin,
            args: args.iter().map(|s| s.to_string()).collect(),
            log,
            child: None,
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        // Streams as small as the tests need: a default-sized one (8 GiB) needs that much free
        // disk under the server's store. Tests of the size itself pass --max-bytes.
        let child = Command::new(self.bin)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .env("NATS_STREAM_MAX_BYTES", "256MiB")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the bridge");
        self.child = Some(child);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Send `signal` to the running process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// SIGSTOP, and wait until every thread of the process is stopped (kill(2) returns before
    /// a thread running on another core has stopped).
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let tasks = format!("/proc/{}/task", self.pid());
        wait_for("every thread to stop", Duration::from_secs(10), || {
            std::fs::read_dir(&tasks).is_ok_and(|dir| {
                dir.flatten().all(|t| {
                    std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
                        // The state follows the parenthesised command name.
                        stat.rsplit(')')
                            .next()
                            .is_some_and(|rest| rest.trim_start().starts_with('T'))
                    })
                })
            })
        });
    }

    /// SIGTERM and wait for a clean exit within `limit`.
    pub fn stop(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "{} did not stop within {limit:?}:\n{}",
                    self.bin,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Exit status if it ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("wait"))
    }

    /// A closure printing the logs of `procs`, usable while they are borrowed mutably.
    pub fn logs_of(procs: &[&Proc]) -> impl Fn() -> String + use<> {
        let paths: Vec<PathBuf> = procs.iter().map(|p| p.log.clone()).collect();
        move || {
            paths
                .iter()
                .map(|p| std::fs::read_to_string(p).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped (SIGSTOP) process must get SIGCONT to die from SIGKILL promptly; SIGKILL
        // works on stopped processes, so kill is enough.
        self.kill9();
    }
}

/// One op of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOp {
    pub topic: &'static str,
    pub meta: OpMeta,
    pub payload: Vec<u8>,
}

/// One block of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelBlock {
    pub number: u64,
    pub timestamp: u32,
    pub id: [u8; 20],
    pub ops: Vec<ModelOp>,
}

const TOPICS: [&str; 4] = ["vote", "comment", "transfer", "custom_json"];

/// Block `number` with 0 to `max_ops` ops, deterministic in `(seed, number)`.
pub fn model_block(seed: u64, number: u64, max_ops: usize, pad: usize) -> ModelBlock {
    let mut rng = fastrand::Rng::with_seed(seed ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let n = rng.usize(0..=max_ops);
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&number.to_be_bytes());
    id[8..].fill(rng.u8(..));
    let ops = (0..n)
        .map(|i| {
            let mut trx_id = [0u8; 20];
            trx_id.fill_with(|| rng.u8(..));
            let topic = TOPICS[rng.usize(..TOPICS.len())];
            let len = rng.usize(0..=pad);
            let text: String = (0..len).map(|_| rng.alphanumeric()).collect();
            ModelOp {
                topic,
                meta: OpMeta {
                    trx_index: (i / 2) as u32,
                    trx_id,
                    op_index: (i % 2) as u32,
                    virtual_op: rng.u8(..) < 16,
                },
                payload: format!(
                    r#"{{"author":"a{number}","permlink":"p-{i}","parent_author":"","body":"{text}","n":{i}}}"#
                )
                .into_bytes(),
            }
        })
        .collect();
    ModelBlock {
        number,
        timestamp: 1_600_000_000 + (number % 1_000_000) as u32 * 3,
        id,
        ops,
    }
}

/// Writes model blocks into a ring with a `Publisher`, remembering topic ids.
pub struct Source {
    pub publisher: Publisher,
    topics: HashMap<&'static str, consumer_sdk::TopicId>,
}

impl Source {
    pub fn create(path: &Path, capacity: u64) -> Source {
        let publisher = Publisher::create(
            path.to_str().unwrap(),
            &CreateOptions {
                capacity,
                mode: 0o600,
            },
        )
        .expect("create the source ring");
        Source {
            publisher,
            topics: HashMap::new(),
        }
    }

    pub fn write(&mut self, b: &ModelBlock) {
        self.publisher
            .begin_block(b.number, b.timestamp, b.id)
            .unwrap();
        self.write_ops(b);
    }

    /// `b` as the first block of another branch, orphaning the ring's blocks from its number
    /// on (`orphaned`, their ids), after `ancestor`.
    pub fn write_fork(&mut self, b: &ModelBlock, ancestor: [u8; 20], orphaned: &[[u8; 20]]) {
        self.publisher
            .begin_fork(b.number, b.timestamp, b.id, ancestor, orphaned)
            .unwrap();
        self.write_ops(b);
    }

    fn write_ops(&mut self, b: &ModelBlock) {
        let p = &mut self.publisher;
        for op in &b.ops {
            let t = match self.topics.get(op.topic) {
                Some(&t) => t,
                None => {
                    let t = p.topic(op.topic).unwrap();
                    self.topics.insert(op.topic, t);
                    t
                }
            };
            p.push(t, &op.meta, &op.payload).unwrap();
        }
        p.commit().unwrap();
    }
}

/// What a reader of a ring sees, everything compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    Op {
        block: u64,
        index: u32,
        topic: String,
        meta: OpMeta,
        timestamp: u32,
        payload: Vec<u8>,
    },
    End {
        block: u64,
        timestamp: u32,
        id: [u8; 20],
        ops: u64,
    },
    Gap {
        from: u64,
        to: u64,
        ops: Option<u64>,
    },
    Fork {
        first: u64,
        orphaned: Vec<[u8; 20]>,
    },
}

impl Rec {
    pub fn block(&self) -> Option<u64> {
        match self {
            Rec::Op { block, .. } | Rec::End { block, .. } => Some(*block),
            Rec::Gap { .. } | Rec::Fork { .. } => None,
        }
    }
}

/// What a reader of a ring holding exactly `blocks` sees.
pub fn expected(blocks: &[ModelBlock]) -> Vec<Rec> {
    let mut out = Vec::new();
    for b in blocks {
        for (i, op) in b.ops.iter().enumerate() {
            out.push(Rec::Op {
                block: b.number,
                index: i as u32,
                topic: op.topic.to_string(),
                meta: op.meta,
                timestamp: b.timestamp,
                payload: op.payload.clone(),
            });
        }
        out.push(Rec::End {
            block: b.number,
            timestamp: b.timestamp,
            id: b.id,
            ops: b.ops.len() as u64,
        });
    }
    out
}

/// Read `ring` from its oldest block through the end of block `last`, within `limit`.
pub fn read_ring(ring: &Path, last: u64, limit: Duration) -> Vec<Rec> {
    let deadline = Instant::now() + limit;
    wait_for("the ring to be created", limit, || ring.exists());
    let mut sub = Subscriber::open(ring.to_str().unwrap())
        .expect("open the ring")
        .start(Start::Earliest)
        .expect("start at the oldest block");
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "block {last} did not reach {} within {limit:?}; read so far ends with {:?}",
            ring.display(),
            out.last()
        );
        match sub.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(Event::Op(op))) => out.push(Rec::Op {
                block: op.block(),
                index: op.index_in_block(),
                topic: op.topic().to_string(),
                meta: OpMeta {
                    trx_index: op.trx_index(),
                    trx_id: op.trx_id(),
                    op_index: op.op_index(),
                    virtual_op: op.is_virtual(),
                },
                timestamp: op.timestamp(),
                payload: op.payload().to_vec(),
            }),
            Ok(Some(Event::BlockEnd(e))) => {
                out.push(Rec::End {
                    block: e.block,
                    timestamp: e.timestamp,
                    id: e.block_id,
                    ops: e.op_count,
                });
                if e.block >= last {
                    return out;
                }
            }
            Ok(Some(Event::Fork(f))) => out.push(Rec::Fork {
                first: f.first_block,
                orphaned: f.orphaned_ids,
            }),
            Ok(None) => {}
            Err(RecvError::UpstreamGap {
                from_block,
                to_block,
                lost_ops,
            }) => out.push(Rec::Gap {
                from: from_block,
                to: to_block,
                ops: lost_ops,
            }),
            Err(e) => panic!("reading {}: {e}", ring.display()),
        }
    }
}

/// The last committed block of `ring` (`None` if it has none or does not exist yet).
pub fn committed(ring: &Path) -> Option<u64> {
    let sub = Subscriber::open(ring.to_str()?)
        .ok()?
        .start(Start::Latest)
        .ok()?;
    sub.committed_block()
}

/// Assert two record lists are equal, reporting the first difference readably.
pub fn assert_same(got: &[Rec], want: &[Rec], logs: &dyn Fn() -> String) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "first difference at record {i} of {} (expected {}):\n  got  {:?}\n  want {:?}\nlogs:\n{}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i),
            logs()
        );
    }
}
