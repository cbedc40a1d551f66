//! The async stream on both tokio runtimes, fed by a real publisher on another thread.

use crate::TempRing;
use crate::processes::{ops_in, publish};
use consumer_sdk::{RecvError, Start, Subscriber};
use std::sync::mpsc;
use std::time::Duration;

const BLOCKS: u64 = 30;

/// Reads every op of blocks `1..=BLOCKS` from a stream on `runtime`. The publisher only starts
/// once a timer task on the same runtime has ticked while the stream was waiting, which it
/// could not if waiting for the ring blocked the runtime's thread.
fn read_all(runtime: tokio::runtime::Runtime) -> Vec<(u64, u32)> {
    let (ring, mut p) = TempRing::create(1 << 16);
    let sub = Subscriber::open(ring.name())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let publisher = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        for b in 1..=BLOCKS {
            publish(&mut p, b);
        }
        p
    });
    let expected: usize = (1..=BLOCKS).map(|b| ops_in(b) as usize).sum();
    let got = runtime.block_on(async move {
        let mut ops = sub.into_stream().unwrap();
        let ticker = tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            go_tx.send(()).unwrap();
        });
        let mut got = Vec::new();
        while got.len() < expected {
            let op = ops.next().await.expect("the stream ended early").unwrap();
            got.push((op.block(), op.index_in_block()));
        }
        ticker.await.unwrap();
        got
    });
    let _ = publisher.join().unwrap();
    got
}

fn expected() -> Vec<(u64, u32)> {
    (1..=BLOCKS)
        .flat_map(|b| (0..ops_in(b) as u32).map(move |i| (b, i)))
        .collect()
}

/// Runs `f` on a thread and fails if it does not finish within a generous deadline (a
/// blocked runtime would hang forever).
fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the stream test hung: waiting blocked the runtime")
}

#[test]
fn stream_on_a_current_thread_runtime() {
    let got = watchdog(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        read_all(rt)
    });
    assert_eq!(got, expected());
}

#[test]
fn stream_on_a_multi_thread_runtime() {
    let got = watchdog(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        read_all(rt)
    });
    assert_eq!(got, expected());
}

#[test]
fn stream_reports_lag_and_ends_on_stop() {
    let (ring, mut p) = TempRing::create(8192);
    publish(&mut p, 1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sub = Subscriber::open(ring.name())
        .unwrap()
        .stop_flag(stop.clone())
        .start(Start::Earliest)
        .unwrap();
    for b in 2..=300 {
        publish(&mut p, b);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    watchdog(move || {
        rt.block_on(async move {
            let mut ops = sub.into_stream().unwrap();
            let first = ops.next().await.unwrap();
            assert!(matches!(first, Err(RecvError::Lagged { .. })), "{first:?}");
            let mut last = 0;
            // Block 299 is the last with ops (see `ops_in`).
            while last < 299 {
                last = ops.next().await.unwrap().unwrap().block();
            }
            // Relaxed: a flag with no data attached.
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            // What was read already still comes; then the stream ends.
            while let Some(op) = ops.next().await {
                assert_eq!(op.unwrap().block(), 299);
            }
        })
    });
}
