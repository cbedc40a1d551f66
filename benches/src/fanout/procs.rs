//! Starting a cell's writer and reader processes, and collecting what they report.

use super::{Cell, CellResult, drain_timeout};
use crate::stats::{Report, decode_histogram, latency_histogram, record_latency};
use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

/// How long a process may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Kid {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

/// The processes of one cell. Dropping it kills any that are still running.
struct Group {
    kids: Vec<Kid>,
    queues: Vec<VecDeque<String>>,
    closed: Vec<bool>,
    tx: Sender<(usize, Option<String>)>,
    rx: Receiver<(usize, Option<String>)>,
}

impl Group {
    fn new() -> Group {
        let (tx, rx) = channel();
        Group {
            kids: Vec::new(),
            queues: Vec::new(),
            closed: Vec::new(),
            tx,
            rx,
        }
    }

    fn spawn(&mut self, mut cmd: Command, name: String) -> Result<usize> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let idx = self.kids.len();
        let stdout = child.stdout.take().context("child stdout")?;
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send((idx, Some(l))).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send((idx, None));
        });
        let stdin = child.stdin.take();
        self.kids.push(Kid { name, child, stdin });
        self.queues.push(VecDeque::new());
        self.closed.push(false);
        Ok(idx)
    }

    /// The next line of process `idx` that starts with `prefix`; other lines are echoed.
    fn expect(&mut self, idx: usize, prefix: &str, deadline: Instant) -> Result<String> {
        loop {
            while let Some(line) = self.queues[idx].pop_front() {
                if line.starts_with(prefix) {
                    return Ok(line);
                }
                eprintln!("[{}] {line}", self.kids[idx].name);
            }
            if self.closed[idx] {
                bail!("{} ended without printing {prefix}", self.kids[idx].name);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((i, Some(line))) => self.queues[i].push_back(line),
                Ok((i, None)) => self.closed[i] = true,
                Err(RecvTimeoutError::Timeout) => {
                    bail!("{} did not print {prefix} in time", self.kids[idx].name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("lost the output of {}", self.kids[idx].name)
                }
            }
        }
    }

    fn send(&mut self, idx: usize, line: &str) -> Result<()> {
        let kid = &mut self.kids[idx];
        let stdin = kid.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("telling {} {line}", kid.name))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for kid in &mut self.kids {
            kid.stdin.take();
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match kid.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => {
                        // Only this harness's own child, by its handle.
                        let _ = kid.child.kill();
                        let _ = kid.child.wait();
                        break;
                    }
                }
            }
        }
    }
}

/// Run one cell as real processes: this binary re-executed with `--role`.
pub(super) fn run_processes(
    cell: &Cell,
    writer_role: &str,
    reader_role: &str,
    writer_args: &[String],
    reader_args: &[String],
) -> Result<CellResult> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let mut writer = Command::new(&exe);
    writer.arg("--role").arg(writer_role).args(writer_args);
    run_commands(cell, writer, |_| {
        let mut c = Command::new(&exe);
        c.arg("--role").arg(reader_role).args(reader_args);
        c
    })
}

/// Run one cell: start the writer, wait until it is READY, start the readers, wait until each
/// is READY, say GO to the writer, then collect every RESULT line.
pub(super) fn run_commands(
    cell: &Cell,
    writer: Command,
    reader: impl Fn(usize) -> Command,
) -> Result<CellResult> {
    let mut g = Group::new();
    let w = g.spawn(writer, format!("{} writer", cell.peer.name()))?;
    g.expect(w, "READY", Instant::now() + READY_TIMEOUT)?;
    let mut rs = Vec::new();
    for i in 0..cell.readers {
        rs.push(g.spawn(reader(i), format!("{} reader {i}", cell.peer.name()))?);
    }
    for &r in &rs {
        g.expect(r, "READY", Instant::now() + READY_TIMEOUT)?;
    }
    g.send(w, "GO")?;
    let deadline = Instant::now() + drain_timeout(cell);
    let writer_line = g.expect(w, "RESULT", deadline)?;
    let writer = Report::parse(&writer_line).context("writer report")?;
    let mut readers = Vec::new();
    let mut hists = Vec::new();
    let mut missing = Vec::new();
    for (i, &r) in rs.iter().enumerate() {
        match g
            .expect(r, "RESULT", deadline)
            .and_then(|l| Report::parse(&l).context("reader report"))
        {
            Ok(report) => {
                hists.push(reader_histogram(&report)?);
                readers.push(report);
            }
            Err(e) => missing.push(format!("reader {i}: {e:#}")),
        }
    }
    drop(g);
    let error = (!missing.is_empty()).then(|| missing.join("; "));
    Ok(CellResult {
        cell: *cell,
        writer: Some(writer),
        readers,
        hists,
        error,
    })
}

/// A reader's latencies: an encoded histogram in its report, or a file of little-endian `f64`
/// nanoseconds (the Node clients), which is read and removed.
pub(super) fn reader_histogram(report: &Report) -> Result<Histogram<u64>> {
    if let Some(hex) = report.get("hist") {
        return decode_histogram(hex);
    }
    let path = report
        .get("latfile")
        .context("reader report without latencies")?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let _ = std::fs::remove_file(path);
    let mut h = latency_histogram();
    for chunk in bytes.chunks_exact(8) {
        let ns = f64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        record_latency(&mut h, ns.max(0.0) as u64);
    }
    Ok(h)
}
