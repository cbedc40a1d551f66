//! The fan-out table and its summary.

use super::{CellResult, Config, Peer, Size};
use anyhow::Result;
use hdrhistogram::Histogram;

fn ns(v: u64) -> String {
    match v {
        0..1_000 => format!("{v}ns"),
        1_000..1_000_000 => format!("{:.1}µs", v as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}ms", v as f64 / 1e6),
        _ => format!("{:.2}s", v as f64 / 1e9),
    }
}

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A ratio with two significant digits: `x0.31`, `x2.1`, `x57`.
fn times(r: f64) -> String {
    if r >= 10.0 {
        format!("x{r:.0}")
    } else if r >= 1.0 {
        format!("x{r:.1}")
    } else {
        format!("x{r:.2}")
    }
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}", kib as f64 / 1024.0)
    }
}

fn pace(r: Option<u64>) -> String {
    r.map_or("max".to_owned(), |r| format!("{}/s", rate(r as f64)))
}

fn record_len(size: Size) -> usize {
    size.record().map_or(0, |r| r.len())
}

/// Figures of one cell, derived from its reports.
struct Figures {
    sent_per_s: f64,
    /// Slowest reader's records per second.
    min_rx_per_s: f64,
    merged: Histogram<u64>,
    lost: u64,
    lapped: u64,
    reader_hwm: u64,
    reader_anon: u64,
    reader_shmem: u64,
    writer_hwm: u64,
    writer_anon: u64,
    writer_shmem: u64,
}

fn figures(r: &CellResult) -> Option<Figures> {
    let w = r.writer.as_ref()?;
    if r.readers.is_empty() {
        return None;
    }
    let mut merged = crate::stats::latency_histogram();
    for h in &r.hists {
        // Same bounds everywhere; a failed add only drops that reader from the percentiles.
        let _ = merged.add(h);
    }
    let min_rx_per_s = r
        .readers
        .iter()
        .map(|x| {
            let span = x.num("last_ns").saturating_sub(x.num("first_ns")).max(1) as f64 / 1e9;
            if x.num("count") < 2 {
                0.0
            } else {
                (x.num("count") - 1) as f64 / span
            }
        })
        .fold(f64::MAX, f64::min);
    let max_of = |k: &str| r.readers.iter().map(|x| x.num(k)).max().unwrap_or(0);
    Some(Figures {
        sent_per_s: w.num("sent") as f64 / (w.num("elapsed_ns").max(1) as f64 / 1e9),
        min_rx_per_s,
        merged,
        lost: r.readers.iter().map(|x| x.num("lost")).sum(),
        lapped: r.readers.iter().map(|x| x.num("lapped")).sum(),
        reader_hwm: max_of("hwm_kib"),
        reader_anon: max_of("anon_kib"),
        reader_shmem: max_of("shmem_kib"),
        writer_hwm: w.num("hwm_kib"),
        writer_anon: w.num("anon_kib"),
        writer_shmem: w.num("shmem_kib"),
    })
}

const HEADER: &str = "| peer          | readers wait | record        |  N | pace     |  sent/s | rx/s/rdr | MB/s/rdr |      p50 |      p99 |    p99.9 |      max |   lost | lapped | rdr HWM MiB | wr HWM MiB |";
const RULE: &str = "|---------------|--------------|---------------|---:|----------|--------:|---------:|---------:|---------:|---------:|---------:|---------:|-------:|-------:|------------:|-----------:|";

pub(super) fn print_header(cfg: &Config, peers: &[Peer], notes: &[String]) -> Result<()> {
    println!(
        "fanout: one writer process, N reader processes; latency = reader's CLOCK_MONOTONIC when it holds"
    );
    println!(
        "the record minus the send stamp in the record. rx/s and MB/s: slowest reader. Percentiles: all"
    );
    println!(
        "readers' records together. lost: records a reader never got (sequence gaps); lapped: what the ring"
    );
    println!(
        "or channel itself reported as overwritten. HWM: peak RSS (VmHWM), MiB, largest reader; writer."
    );
    println!(
        "secs/cell {}, unpaced: {} records per block (paced: one record per block, at its due time), ring {} MiB",
        cfg.secs,
        cfg.batch,
        cfg.ring_capacity >> 20
    );
    for &s in &cfg.sizes {
        println!(
            "record {}: {} bytes (16-byte stamp + real op body as compact JSON)",
            s.name(),
            record_len(s)
        );
    }
    println!(
        "peers: {}",
        peers
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "machine: {} CPUs online, load average {} (other work on a shared machine shows here)",
        std::thread::available_parallelism().map_or(0, usize::from),
        super::load_average()
    );
    for n in notes {
        println!("{n}");
    }
    println!();
    println!("{HEADER}");
    println!("{RULE}");
    Ok(())
}

pub(super) fn print_separator() {
    println!("{RULE}");
}

pub(super) fn print_row(cfg: &Config, r: &CellResult) {
    let c = &r.cell;
    let lead = format!(
        "| {:<13} | {:<12} | {:<13} | {:>2} | {:<8} |",
        c.peer.name(),
        c.peer.wait(),
        format!("{} {}B", c.size.name(), record_len(c.size)),
        c.readers,
        pace(c.plan.rate)
    );
    match figures(r) {
        Some(f) => {
            let h = &f.merged;
            let mbps = f.min_rx_per_s * record_len(c.size) as f64 / 1e6;
            println!(
                "{lead} {:>7} | {:>8} | {:>8.1} | {:>8} | {:>8} | {:>8} | {:>8} | {:>6} | {:>6} | {:>11} | {:>10} |{}",
                rate(f.sent_per_s),
                rate(f.min_rx_per_s),
                mbps,
                ns(h.value_at_quantile(0.5)),
                ns(h.value_at_quantile(0.99)),
                ns(h.value_at_quantile(0.999)),
                ns(h.max()),
                f.lost,
                f.lapped,
                mib(f.reader_hwm),
                mib(f.writer_hwm),
                r.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" INCOMPLETE: {e}")),
            );
            if cfg.per_reader {
                for (i, (rep, h)) in r.readers.iter().zip(&r.hists).enumerate() {
                    println!(
                        "|   reader {i:<2} | count {} lost {} lapped {} p50 {} p99 {} max {} HWM {} MiB",
                        rep.num("count"),
                        rep.num("lost"),
                        rep.num("lapped"),
                        ns(h.value_at_quantile(0.5)),
                        ns(h.value_at_quantile(0.99)),
                        ns(h.max()),
                        mib(rep.num("hwm_kib"))
                    );
                }
            }
        }
        None => println!(
            "{lead} FAILED: {}",
            r.error.as_deref().unwrap_or("no reports")
        ),
    }
}

fn find(
    rs: &[CellResult],
    peer: Peer,
    size: Size,
    n: usize,
    rate: Option<u64>,
) -> Option<&CellResult> {
    rs.iter().find(|r| {
        r.cell.peer == peer
            && r.cell.size == size
            && r.cell.readers == n
            && r.cell.plan.rate == rate
    })
}

pub(super) fn print_summary(
    cfg: &Config,
    rs: &[CellResult],
    memcpy: f64,
    (line_ns, clock_ns): (f64, f64),
) {
    println!();
    println!(
        "physical bound: memcpy {:.1} GB/s on this machine (best of several 64 MiB copies, one thread)",
        memcpy / 1e9
    );
    for &s in &cfg.sizes {
        let len = record_len(s) as f64;
        println!(
            "  = {} {} records/s if every byte were copied once",
            rate(memcpy / len),
            s.name()
        );
    }
    println!(
        "latency floor: a cache line travels between two cores in {line_ns:.0} ns (half a \
         ping-pong round trip, best of several); a clock read takes {clock_ns:.0} ns"
    );

    // Headline: the ring (backoff readers) against each peer, at N = 4 or the nearest run.
    let n = cfg
        .readers
        .iter()
        .copied()
        .min_by_key(|&n| n.abs_diff(4))
        .unwrap_or(1);
    let peers: Vec<Peer> = {
        let mut seen = Vec::new();
        for r in rs {
            if !seen.contains(&r.cell.peer) {
                seen.push(r.cell.peer);
            }
        }
        seen
    };
    println!();
    println!(
        "headline, N = {n} readers; ratios in brackets: throughput = ring / peer, latency = peer / ring \
         (above 1 the ring with backoff readers is better)"
    );
    for &s in &cfg.sizes {
        for &rate_ in &cfg.rates {
            let Some(base) = find(rs, Peer::Ring, s, n, rate_).and_then(figures) else {
                continue;
            };
            let bp99 = base.merged.value_at_quantile(0.99).max(1) as f64;
            let mut line = format!("  {} {}: ", s.name(), pace(rate_));
            if rate_.is_none() {
                line.push_str(&format!(
                    "slowest-reader rx/s ring {}",
                    rate(base.min_rx_per_s)
                ));
                for &p in peers.iter().filter(|&&p| p != Peer::Ring) {
                    if let Some(f) = find(rs, p, s, n, rate_).and_then(figures) {
                        let ratio = base.min_rx_per_s / f.min_rx_per_s.max(1e-9);
                        line.push_str(&format!(
                            " | {} {} ({})",
                            p.name(),
                            rate(f.min_rx_per_s),
                            times(ratio)
                        ));
                    }
                }
                line.push_str(&format!("; p99 ring {}", ns(bp99 as u64)));
            } else {
                line.push_str(&format!("p99 ring {}", ns(bp99 as u64)));
            }
            for &p in peers.iter().filter(|&&p| p != Peer::Ring) {
                if let Some(f) = find(rs, p, s, n, rate_).and_then(figures) {
                    let p99 = f.merged.value_at_quantile(0.99);
                    line.push_str(&format!(
                        " | {} {} ({})",
                        p.name(),
                        ns(p99),
                        times(p99 as f64 / bp99)
                    ));
                }
            }
            println!("{line}");
        }
    }

    // Memory, from the first paced cell at that N with the small record.
    let rate_ = cfg
        .rates
        .iter()
        .copied()
        .find(Option::is_some)
        .unwrap_or(None);
    let s = cfg.sizes.first().copied().unwrap_or(Size::Vote);
    println!();
    println!(
        "memory (KiB), {} {} N = {n}: VmHWM = peak RSS; anon = heap+stacks; shmem = mapped shared memory",
        s.name(),
        pace(rate_)
    );
    println!(
        "| peer          | writer HWM | writer anon | writer shmem | reader HWM | reader anon | reader shmem |"
    );
    println!(
        "|---------------|-----------:|------------:|-------------:|-----------:|------------:|-------------:|"
    );
    for &p in &peers {
        if p == Peer::InProc {
            continue;
        }
        if let Some(f) = find(rs, p, s, n, rate_).and_then(figures) {
            println!(
                "| {:<13} | {:>10} | {:>11} | {:>12} | {:>10} | {:>11} | {:>12} |",
                p.name(),
                f.writer_hwm,
                f.writer_anon,
                f.writer_shmem,
                f.reader_hwm,
                f.reader_anon,
                f.reader_shmem
            );
        }
    }

    print_costs(rs);
}

/// What receiving and sending cost, per cell: heap allocations per record received (the
/// reader that allocated most), context switches and read/write system calls per 1,000
/// records (the reader that made most), and the writer's system calls, context switches and
/// kernel CPU time per block. `-` where a process could not say (the in-process peer shares
/// one process; the Node peer has no counting allocator).
fn print_costs(rs: &[CellResult]) {
    println!();
    println!(
        "costs: allocs/rec = heap allocations per record received (counting global allocator); \
         ctx and sys = context switches and read/write-type system calls; writer sys µs = kernel \
         CPU time (futex wakes show here, not in sys)"
    );
    println!(
        "| peer          | record        |  N | pace     | rdr allocs/rec | rdr ctx/1k rec | rdr sys/1k rec | wr sys/blk | wr ctx/blk | wr sys µs/1k blk |"
    );
    println!(
        "|---------------|---------------|---:|----------|---------------:|---------------:|---------------:|-----------:|-----------:|-----------------:|"
    );
    for r in rs {
        let c = &r.cell;
        let per = |rep: &crate::stats::Report, key: &str, unit: f64| -> Option<f64> {
            let v: u64 = rep.get(key)?.parse().ok()?;
            let n = rep.num("count");
            (n > 0).then(|| v as f64 * unit / n as f64)
        };
        let worst = |key: &str, unit: f64| -> String {
            r.readers
                .iter()
                .filter_map(|rep| per(rep, key, unit))
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
                .map_or("-".to_owned(), |v| format!("{v:.3}"))
        };
        let writer = |key: &str, unit: f64| -> String {
            r.writer
                .as_ref()
                .and_then(|w| {
                    let v: u64 = w.get(key)?.parse().ok()?;
                    let blocks = w.num("blocks");
                    (blocks > 0).then(|| format!("{:.3}", v as f64 * unit / blocks as f64))
                })
                .unwrap_or_else(|| "-".to_owned())
        };
        println!(
            "| {:<13} | {:<13} | {:>2} | {:<8} | {:>14} | {:>14} | {:>14} | {:>10} | {:>10} | {:>16} |",
            c.peer.name(),
            format!("{} {}B", c.size.name(), record_len(c.size)),
            c.readers,
            pace(c.plan.rate),
            worst("allocs", 1.0),
            worst("ctx_switches", 1000.0),
            worst("syscalls", 1000.0),
            writer("syscalls", 1.0),
            writer("ctx_switches", 1.0),
            writer("sys_ns", 1.0),
        );
    }
}
