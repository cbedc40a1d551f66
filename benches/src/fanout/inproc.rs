//! In-process references: `tokio::sync::broadcast` to N threads (what a single-process bot
//! would use), and memory copy bandwidth (the physical bound for any copying transport).

use super::{Cell, CellResult, pace};
use crate::clock::mono_ns;
use crate::data::{read_stamp, stamp};
use crate::stats::{ReaderTally, Report};
use anyhow::{Context, Result};
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

/// Slots of the broadcast channel (a slow thread beyond this is lagged, as on the ring).
const CHANNEL_SLOTS: usize = 1 << 16;

/// One writer thread (the caller), N reader threads blocking in `blocking_recv`. Each record
/// is one `Arc` shared by all receivers: no copy per reader.
pub(super) fn run(cell: &Cell) -> Result<CellResult> {
    let mut record = cell.size.record()?;
    let (tx, _) = broadcast::channel::<Arc<Vec<u8>>>(CHANNEL_SLOTS);
    let threads: Vec<_> = (0..cell.readers)
        .map(|_| {
            let mut rx = tx.subscribe();
            std::thread::spawn(move || -> Result<(Report, hdrhistogram::Histogram<u64>)> {
                let mut tally = ReaderTally::default();
                let sent = loop {
                    match rx.blocking_recv() {
                        Ok(msg) => {
                            let now = mono_ns();
                            if msg.len() == 8 {
                                break u64::from_le_bytes(msg[..8].try_into()?);
                            }
                            let (sent_ns, seq) =
                                read_stamp(&msg).context("record without a stamp")?;
                            tally.record(sent_ns, seq, now);
                        }
                        Err(RecvError::Lagged(n)) => tally.lapped += n,
                        Err(RecvError::Closed) => {
                            anyhow::bail!("channel closed before the end marker")
                        }
                    }
                };
                let mut report = tally.report(sent)?;
                // One process: its memory figures say nothing about a reader.
                // Nor its process-wide cost counters.
                for k in [
                    "hwm_kib",
                    "anon_kib",
                    "shmem_kib",
                    "hist",
                    "allocs",
                    "ctx_switches",
                    "syscalls",
                    "sys_ns",
                ] {
                    report.0.remove(k);
                }
                Ok((report, tally.hist))
            })
        })
        .collect();
    let sent = pace::drive(&cell.plan, |first, n| {
        for seq in first..first + n {
            stamp(&mut record, mono_ns(), seq);
            // No receiver left is not an error here; the threads report what they got.
            let _ = tx.send(Arc::new(record.clone()));
        }
        Ok(())
    })?;
    let _ = tx.send(Arc::new(sent.records.to_le_bytes().to_vec()));
    let mut writer = Report::new();
    writer
        .set("sent", sent.records)
        .set("elapsed_ns", sent.elapsed_ns);
    let mut readers = Vec::new();
    let mut hists = Vec::new();
    let mut errors = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok((r, h))) => {
                readers.push(r);
                hists.push(h);
            }
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("reader thread panicked".to_owned()),
        }
    }
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    Ok(CellResult {
        cell: *cell,
        writer: Some(writer),
        readers,
        hists,
        error,
    })
}

/// Latency floors of this machine, in ns: one cache line's trip from one core to another
/// (half the round trip of two threads handing a counter back and forth, best of several
/// rounds), and one read of `CLOCK_MONOTONIC` (what the fan-out's stamps cost on each side).
pub(super) fn latency_floors(smoke: bool) -> (f64, f64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    #[repr(align(128))]
    struct Line(AtomicU64);
    let (trips, rounds) = if smoke { (10_000u64, 2) } else { (200_000, 5) };
    let mut best_line = f64::MAX;
    for _ in 0..rounds {
        let ping = Arc::new(Line(AtomicU64::new(0)));
        let pong = Arc::new(Line(AtomicU64::new(0)));
        let (ping2, pong2) = (Arc::clone(&ping), Arc::clone(&pong));
        // Release/Acquire: each side waits for the other's store, so every trip carries the
        // line across and back; that hand-off is what is timed.
        let echo = std::thread::spawn(move || {
            for i in 1..=trips {
                while ping2.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                pong2.0.store(i, Ordering::Release);
            }
        });
        let t = mono_ns();
        for i in 1..=trips {
            ping.0.store(i, Ordering::Release);
            while pong.0.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
        }
        let elapsed = (mono_ns() - t) as f64;
        let _ = echo.join();
        best_line = best_line.min(elapsed / trips as f64 / 2.0);
    }
    let reads = if smoke { 10_000 } else { 1_000_000 };
    let t = mono_ns();
    let mut sink = 0u64;
    for _ in 0..reads {
        sink = sink.wrapping_add(std::hint::black_box(mono_ns()));
    }
    std::hint::black_box(sink);
    let clock = (mono_ns() - t) as f64 / reads as f64;
    (best_line, clock)
}

/// Best-of-several `memcpy` bandwidth, bytes per second, between two 64 MiB buffers (larger
/// than any cache here, so this is memory bandwidth).
pub(super) fn memcpy_bandwidth(smoke: bool) -> f64 {
    let (len, reps) = if smoke { (1 << 20, 2) } else { (64 << 20, 8) };
    let src = vec![0x5au8; len];
    let mut dst = vec![0u8; len];
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = mono_ns();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        best = best.min((mono_ns() - t) as f64);
    }
    len as f64 / (best / 1e9)
}
