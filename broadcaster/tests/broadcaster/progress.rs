//! What the broadcaster logs once it has nothing to do: the end of a replay said once, then
//! progress lines at most once every `IDLE_PROGRESS_EVERY` (a minute), whether it idles at the
//! end of a replay file or at the head of a chain served by a real HTTP node on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broadcaster::IDLE_PROGRESS_EVERY;
use broadcaster::config::{Mode, Pace, StartBlock, Tuning};
use broadcaster::{Config, MemorySink, Shutdown, StopReason};
use test_support::fake_node::{Chain, FakeNode, FakeOptions};

/// Log lines captured from the thread running the broadcaster.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    /// Where the log lines of this thread go (nowhere when `None`).
    static CAPTURE: std::cell::RefCell<Option<Log>> = const { std::cell::RefCell::new(None) };
}

/// Writes into the calling thread's [`CAPTURE`].
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(log) = c.borrow().as_ref() {
                log.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One global subscriber for this test binary, writing each thread's lines to that thread's
/// capture. (A scoped `with_default` subscriber per test is not enough: tracing caches each
/// call site's interest process-wide, and a test running at the same time without a subscriber
/// can leave a call site disabled for every thread.)
fn capture_this_thread(log: Log) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadWriter)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(log));
}

/// Progress every 200 ms while blocks come: the idle rule, not the period, keeps it quiet.
fn tuning() -> Tuning {
    Tuning {
        heartbeat_interval: Duration::from_millis(20),
        progress_interval: Duration::from_millis(200),
        tip_poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(100),
        max_head_age: None,
        ..Tuning::default()
    }
}

/// Runs the broadcaster until `idle_at` is in its log, then 2 s more (ten progress periods),
/// then stops it; returns its log.
fn run_until_idle(config: Config, idle_at: &'static str) -> String {
    let log = Log::default();
    let writer = log.clone();
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let mut sink = MemorySink::new();
    let published = sink.handle();
    let thread = std::thread::spawn(move || {
        capture_this_thread(writer);
        broadcaster::run(&config, &mut sink, &stop)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.text().contains(idle_at) {
        assert!(
            Instant::now() < deadline,
            "never idle (blocks published: {}):\n{}",
            published.blocks().len(),
            log.text()
        );
        assert!(!thread.is_finished(), "ended early:\n{}", log.text());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Quiet for ten progress periods: there is no event to wait for, only time to let pass.
    std::thread::sleep(Duration::from_secs(2));
    shutdown.trigger();
    let summary = thread.join().unwrap().unwrap();
    assert_eq!(summary.reason, StopReason::Shutdown);
    log.text()
}

/// The lines of `log` after the first one containing `marker`.
fn after<'a>(log: &'a str, marker: &str) -> Vec<&'a str> {
    log.lines()
        .skip_while(|l| !l.contains(marker))
        .skip(1)
        .collect()
}

#[test]
fn the_end_of_a_replay_is_said_once_and_then_the_broadcaster_is_quiet() {
    assert!(IDLE_PROGRESS_EVERY >= Duration::from_secs(60));
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/demo-blocks.jsonl");
    let text = std::fs::read_to_string(&demo).unwrap();
    let blocks: Vec<broadcaster::DecodedBlock> = text
        .lines()
        .map(|l| broadcaster::decode_block(l.as_bytes()).unwrap())
        .collect();
    let ops: usize = blocks.iter().map(|b| b.ops.len()).sum();
    let mut config = Config::for_replay(&demo, Pace::Every(Duration::from_millis(2)));
    config.tuning = tuning();
    let log = run_until_idle(config, "replay finished");
    let finished: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("replay finished"))
        .collect();
    assert_eq!(finished.len(), 1, "said once:\n{log}");
    let last = blocks.last().unwrap().number;
    assert!(
        finished[0].contains(&format!(
            "replay finished: {} blocks and {ops} ops published by this run; the ring holds \
             blocks through {last}",
            blocks.len()
        )),
        "{log}"
    );
    assert!(
        finished[0].contains("--from earliest"),
        "what to try next: {log}"
    );
    assert!(
        finished[0].contains("--node https://"),
        "the live command: {log}"
    );
    let later: Vec<&str> = after(&log, "replay finished")
        .into_iter()
        .filter(|l| !l.contains("stop"))
        .collect();
    assert!(later.is_empty(), "quiet after the end: {later:#?}");
}

#[test]
fn a_broadcaster_idle_at_the_chain_head_logs_no_progress_every_period() {
    let data: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let chain = Arc::new(Chain::recorded(&data).expect("recorded data"));
    let (first, head) = (1_000_000, 1_000_040);
    let node = FakeNode::start(chain, FakeOptions::fixed(head)).unwrap();
    let mut config = Config::for_nodes(vec![node.url()]);
    config.mode = Mode::Head;
    config.start_block = Some(StartBlock::Number(first));
    config.request_timeout = Duration::from_millis(500);
    config.tuning = tuning();
    // Progress lines come every 200 ms while blocks arrive; once the head is published, none.
    let log = run_until_idle(config, "block=1000040");
    let progress_after: Vec<&str> = log
        .lines()
        .skip_while(|l| !(l.contains("progress") && l.contains("block=1000040")))
        .skip(1)
        .filter(|l| l.contains("progress"))
        .collect();
    assert!(progress_after.is_empty(), "{progress_after:#?}\n{log}");
}
