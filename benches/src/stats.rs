//! Latency histograms, the one-line reports child processes print, and peak memory.

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use std::collections::BTreeMap;

/// A latency histogram in nanoseconds, 1 ns to 100 s, three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// Record one latency (clamped into the histogram's range).
pub fn record_latency(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.max(1));
}

/// Histogram as hex text (compressed V2 encoding), for a report line.
pub fn encode_histogram(h: &Histogram<u64>) -> Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Inverse of [`encode_histogram`].
pub fn decode_histogram(hex: &str) -> Result<Histogram<u64>> {
    if hex.len() % 2 != 0 {
        bail!("odd-length histogram text");
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .context("histogram text is not hex")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// Memory of this process from `/proc/self/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Peak resident set (`VmHWM`): private and shared pages this process touched.
    pub hwm_kib: u64,
    /// Resident anonymous memory now (`RssAnon`): heap and stacks.
    pub anon_kib: u64,
    /// Resident shared memory now (`RssShmem`): e.g. the pages of a ring in `/dev/shm`.
    pub shmem_kib: u64,
}

/// Read this process's memory figures (zero where `/proc` does not say).
pub fn own_memory() -> Memory {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory {
        hwm_kib: field("VmHWM:"),
        anon_kib: field("RssAnon:"),
        shmem_kib: field("RssShmem:"),
    }
}

/// What the kernel and the allocator did for this process so far; differences of two
/// snapshots give the cost of the work between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Costs {
    /// Heap allocations (`None` without the counting allocator, see [`crate::alloc`]).
    pub allocs: Option<u64>,
    /// Context switches: voluntary (sleeps in `read`, `futex`, ...) plus involuntary.
    pub ctx_switches: u64,
    /// Read- and write-type system calls (`syscr` + `syscw` of `/proc/self/io`). `futex` is
    /// not among them: its cost shows in `sys_ns`.
    pub syscalls: u64,
    /// CPU time spent in the kernel, ns.
    pub sys_ns: u64,
}

impl Costs {
    /// This process's counters now. Allocates nothing (so it can bracket a measured loop).
    pub fn now() -> Costs {
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF needs nothing else.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        let (ctx_switches, sys_ns) = if rc == 0 {
            (
                (usage.ru_nvcsw + usage.ru_nivcsw) as u64,
                usage.ru_stime.tv_sec as u64 * 1_000_000_000 + usage.ru_stime.tv_usec as u64 * 1000,
            )
        } else {
            (0, 0)
        };
        Costs {
            allocs: crate::alloc::allocations(),
            ctx_switches,
            syscalls: proc_io_syscalls(),
            sys_ns,
        }
    }

    /// The costs between `earlier` and `self`.
    pub fn since(&self, earlier: &Costs) -> Costs {
        Costs {
            allocs: self
                .allocs
                .zip(earlier.allocs)
                .map(|(a, b)| a.saturating_sub(b)),
            ctx_switches: self.ctx_switches.saturating_sub(earlier.ctx_switches),
            syscalls: self.syscalls.saturating_sub(earlier.syscalls),
            sys_ns: self.sys_ns.saturating_sub(earlier.sys_ns),
        }
    }

    /// Add the figures to a report (`allocs` only when counted).
    pub fn report(&self, r: &mut Report) {
        if let Some(a) = self.allocs {
            r.set("allocs", a);
        }
        r.set("ctx_switches", self.ctx_switches)
            .set("syscalls", self.syscalls)
            .set("sys_ns", self.sys_ns);
    }
}

/// `syscr + syscw` from `/proc/self/io`, read into a stack buffer (no allocation); 0 when
/// unreadable.
fn proc_io_syscalls() -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 512];
    let Ok(mut file) = std::fs::File::open("/proc/self/io") else {
        return 0;
    };
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let text = std::str::from_utf8(&buf[..len]).unwrap_or("");
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            matches!(key, "syscr" | "syscw").then(|| value.trim().parse::<u64>().ok())?
        })
        .sum()
}

/// One `RESULT key=value ...` line printed by a child process.
#[derive(Debug, Clone, Default)]
pub struct Report(pub BTreeMap<String, String>);

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Add a field (values must not contain spaces).
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Report {
        self.0.insert(key.to_owned(), value.to_string());
        self
    }

    /// Add the memory figures of this process.
    pub fn memory(&mut self) -> &mut Report {
        let m = own_memory();
        self.set("hwm_kib", m.hwm_kib)
            .set("anon_kib", m.anon_kib)
            .set("shmem_kib", m.shmem_kib)
    }

    /// A numeric field (0 when absent or not a number).
    pub fn num(&self, key: &str) -> u64 {
        self.0.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// A text field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The line, `RESULT k=v k=v`.
    pub fn line(&self) -> String {
        let mut s = String::from("RESULT");
        for (k, v) in &self.0 {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        s
    }

    /// Parse a line made by [`Report::line`] (or by the Node scripts); `None` if it is not one.
    pub fn parse(line: &str) -> Option<Report> {
        let rest = line.trim().strip_prefix("RESULT")?;
        let mut map = BTreeMap::new();
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            map.insert(k.to_owned(), v.to_owned());
        }
        Some(Report(map))
    }
}

/// What a reader measured, carried in its report.
#[derive(Debug)]
pub struct ReaderTally {
    /// Delivery latencies.
    pub hist: Histogram<u64>,
    /// Records received.
    pub count: u64,
    /// Records the sequence numbers show were skipped.
    pub lost: u64,
    /// Records the transport itself reported lost (the ring's `Lagged`).
    pub lapped: u64,
    /// Receive time of the first and the last record.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    next_seq: u64,
    /// Counters when the tally was made (right after the reader subscribed).
    start: Costs,
}

impl Default for ReaderTally {
    fn default() -> ReaderTally {
        ReaderTally {
            hist: latency_histogram(),
            count: 0,
            lost: 0,
            lapped: 0,
            first_ns: 0,
            last_ns: 0,
            next_seq: 0,
            start: Costs::now(),
        }
    }
}

impl ReaderTally {
    /// Account for a record stamped (`sent_ns`, `seq`) received at `now_ns`.
    #[inline]
    pub fn record(&mut self, sent_ns: u64, seq: u64, now_ns: u64) {
        record_latency(&mut self.hist, now_ns.saturating_sub(sent_ns));
        if self.count == 0 {
            self.first_ns = now_ns;
        }
        self.last_ns = now_ns;
        self.count += 1;
        if seq > self.next_seq {
            self.lost += seq - self.next_seq;
        }
        self.next_seq = seq + 1;
    }

    /// The report line's fields, given the total the writer says it sent.
    pub fn report(&self, sent: u64) -> Result<Report> {
        // First, before this function allocates: the costs of the receive loop.
        let costs = Costs::now().since(&self.start);
        let mut r = Report::new();
        costs.report(&mut r);
        // Records missing at the end (after the last one received) count as lost too.
        let tail_lost = sent.saturating_sub(self.next_seq);
        r.set("count", self.count)
            .set("lost", self.lost + tail_lost)
            .set("lapped", self.lapped)
            .set("first_ns", self.first_ns)
            .set("last_ns", self.last_ns)
            .set("hist", encode_histogram(&self.hist)?)
            .memory();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_and_report_round_trip() {
        let mut t = ReaderTally::default();
        t.record(100, 0, 1_100);
        t.record(200, 2, 5_200);
        let r = t.report(4).unwrap();
        let back = Report::parse(&r.line()).unwrap();
        assert_eq!(back.num("count"), 2);
        assert_eq!(back.num("lost"), 2);
        let h = decode_histogram(back.get("hist").unwrap()).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h.max() >= 4_990);
        assert!(own_memory().hwm_kib > 0);
    }

    #[test]
    fn costs_count_system_calls_and_never_go_backwards() {
        let before = Costs::now();
        for _ in 0..20 {
            std::fs::metadata("/proc/self/io").ok();
            let _ = std::fs::read("/proc/self/stat");
        }
        let after = Costs::now();
        let d = after.since(&before);
        // 20 reads of /proc/self/stat, plus the snapshot's own read of /proc/self/io.
        assert!(d.syscalls >= 20, "{d:?}");
        // No counting allocator in the unit-test binary.
        assert_eq!(d.allocs, None);
        assert_eq!(before.since(&after).syscalls, 0);
    }
}
