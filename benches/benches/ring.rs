//! `cargo bench --bench ring`: the ring's hot path in one process: one writer thread, N reader
//! threads (`Wait::Backoff`), time per record delivered to every reader (`iter_custom`: from the
//! first push to the moment the last reader holds the last record). Also the writer alone, to
//! separate the publishing cost from delivery. And the copy routine readers use to take
//! records out of shared memory (`ring/copy`): word-wise relaxed `AtomicU64` loads (what the SDK
//! does) against `atomic-memcpy`'s byte-wise atomic memcpy in 64-byte units, with a plain
//! `memcpy` of private memory as the bound neither may beat.

use benches::data;
use consumer_sdk::{
    CreateOptions, Event, OpMeta, Publisher, RecvError, Start, Subscriber, TopicId, Wait,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A fresh ring in /dev/shm, removed when dropped.
struct TempRing {
    path: String,
    publisher: Publisher,
    topic: TopicId,
    block: u64,
}

impl TempRing {
    fn new(tag: &str) -> TempRing {
        let path = format!("/dev/shm/ring-bench-crit-{}-{tag}", std::process::id());
        let _ = consumer_sdk::remove_ring(&path);
        let mut publisher = Publisher::create(
            &path,
            &CreateOptions {
                capacity: 64 << 20,
                mode: 0o600,
            },
        )
        .expect("creating a ring in /dev/shm");
        let topic = publisher.topic("vote").expect("topic");
        TempRing {
            path,
            publisher,
            topic,
            block: 0,
        }
    }

    /// Publish `n` records, `per_block` to a block.
    fn publish(&mut self, record: &[u8], n: u64, per_block: u64) {
        let meta = OpMeta::default();
        let mut left = n;
        while left > 0 {
            self.block += 1;
            self.publisher
                .begin_block(self.block, 0, [0; 20])
                .expect("begin");
            for _ in 0..per_block.min(left) {
                self.publisher
                    .push(self.topic, &meta, record)
                    .expect("push");
            }
            left -= per_block.min(left);
            self.publisher.commit().expect("commit");
        }
    }
}

impl Drop for TempRing {
    fn drop(&mut self) {
        let _ = consumer_sdk::remove_ring(&self.path);
    }
}

/// Time for `iters` records to reach every one of `readers` reader threads.
fn deliver(
    ring: &mut TempRing,
    record: &[u8],
    readers: usize,
    per_block: u64,
    iters: u64,
) -> Duration {
    let start = Arc::new(Barrier::new(readers + 1));
    let threads: Vec<_> = (0..readers)
        .map(|_| {
            let mut sub = Subscriber::open(&ring.path)
                .expect("open")
                .wait(Wait::Backoff)
                .start(Start::Latest)
                .expect("start");
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let mut seen = 0u64;
                while seen < iters {
                    match sub.recv() {
                        Ok(Event::Op(_)) => seen += 1,
                        Ok(Event::BlockEnd(_) | Event::Fork(_)) => {}
                        Err(RecvError::Lagged { lost, .. }) => seen += lost,
                        Err(e) => panic!("reader: {e}"),
                    }
                }
                Instant::now()
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    ring.publish(record, iters, per_block);
    let end = threads
        .into_iter()
        .map(|t| t.join().expect("reader thread"))
        .max()
        .unwrap_or(t0);
    end - t0
}

fn ring_benches(c: &mut Criterion) {
    let record = data::record(&data::vote_body().expect("vote body from the shared data"));
    let mut g = c.benchmark_group("ring/deliver");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for per_block in [1u64, 16] {
        for readers in [1usize, 2, 4] {
            let mut ring = TempRing::new(&format!("d{per_block}-{readers}"));
            g.bench_with_input(
                BenchmarkId::new(format!("vote/{per_block}-per-block/readers"), readers),
                &readers,
                |b, &n| b.iter_custom(|iters| deliver(&mut ring, &record, n, per_block, iters)),
            );
        }
    }
    g.finish();

    let mut g = c.benchmark_group("ring/publish-only");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for per_block in [1u64, 16] {
        let mut ring = TempRing::new(&format!("p{per_block}"));
        g.bench_function(BenchmarkId::new("vote/per-block", per_block), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                ring.publish(&record, iters, per_block);
                t0.elapsed()
            })
        });
    }
    g.finish();
}

/// Word-wise relaxed atomic loads: the SDK's copy routine.
fn copy_atomic_u64(src: &[AtomicU64], dst: &mut Vec<u64>) {
    dst.clear();
    dst.extend(src.iter().map(|w| w.load(Ordering::Relaxed)));
}

/// `atomic-memcpy` in 64-byte units (`len` a multiple of 8 words here).
fn copy_atomic_memcpy(src: &[AtomicU64], dst: &mut Vec<u64>) {
    dst.clear();
    for chunk in src.chunks_exact(8) {
        // SAFETY: `chunk` is 8 valid, aligned, initialised words, read only through atomics
        // here; `[u64; 8]` has no padding, so the loaded value is initialised.
        let words = unsafe {
            atomic_memcpy::atomic_load(chunk.as_ptr().cast::<[u64; 8]>(), Ordering::Relaxed)
                .assume_init()
        };
        dst.extend_from_slice(&words);
    }
}

fn copy_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring/copy");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    // A vote record (192 B), a comment record (1.6 KiB), a reader's whole batch (64 KiB).
    for bytes in [192usize, 1664, 64 << 10] {
        let words = bytes / 8;
        let shared: Vec<AtomicU64> = (0..words as u64).map(AtomicU64::new).collect();
        let private: Vec<u64> = (0..words as u64).collect();
        let mut dst: Vec<u64> = Vec::with_capacity(words);
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(BenchmarkId::new("atomic-u64", bytes), |b| {
            b.iter(|| {
                copy_atomic_u64(black_box(&shared), &mut dst);
                black_box(&dst);
            })
        });
        g.bench_function(BenchmarkId::new("atomic-memcpy", bytes), |b| {
            b.iter(|| {
                copy_atomic_memcpy(black_box(&shared), &mut dst);
                black_box(&dst);
            })
        });
        g.bench_function(BenchmarkId::new("memcpy-private", bytes), |b| {
            b.iter(|| {
                dst.clear();
                dst.extend_from_slice(black_box(&private));
                black_box(&dst);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, ring_benches, copy_benches);
criterion_main!(benches);
