//! `cargo bench --bench decode`: simd-json against serde_json on real blocks (the 500 Hive
//! blocks and the recorded Steem blocks) and on composed today-sized blocks (100 blocks of 100
//! to 300 real op bodies each, mostly `custom_json`, in both encodings; see
//! `test_support::compose`): parse each block into a DOM and walk its operations, as the
//! broadcaster does: serde_json, simd-json, and simd-json reusing its parser buffers across
//! blocks. `decode` reports bytes per second, `decode-ops` operations per second.

use benches::data;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simd_json::prelude::*;
use std::hint::black_box;
use std::time::Duration;
use test_support::compose::{Composer, Encoding};

/// Composed blocks per set, their first number and the composer's seed.
const COMPOSED_BLOCKS: u64 = 100;
const COMPOSED_FIRST: u64 = 80_000_000;
const COMPOSED_SEED: u64 = 1;

/// Today-sized blocks composed from the recorded op bodies.
fn composed(encoding: Encoding) -> Vec<String> {
    Composer::from_dir(&data::data_dir(), COMPOSED_SEED)
        .and_then(|c| {
            Ok(c.blocks(COMPOSED_FIRST, COMPOSED_BLOCKS, encoding)?
                .collect())
        })
        .expect("composed blocks from the repository's data")
}

/// Ops in a block with serde_json (both encodings carry them under transactions[].operations).
fn count_ops_serde(block: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(block).expect("block JSON");
    v["transactions"].as_array().map_or(0, |ts| {
        ts.iter()
            .map(|t| t["operations"].as_array().map_or(0, Vec::len))
            .sum()
    })
}

fn ops_serde(blocks: &[String]) -> usize {
    blocks.iter().map(|b| count_ops_serde(b)).sum()
}

/// simd-json parses in place, so each block is copied into a reused buffer first (the
/// broadcaster owns each response body, so it pays this copy too). With `scratch`, the
/// parser's own working buffers are reused across blocks too.
fn ops_simd(
    blocks: &[String],
    buf: &mut Vec<u8>,
    mut scratch: Option<&mut simd_json::Buffers>,
) -> usize {
    let mut total = 0;
    for b in blocks {
        buf.clear();
        buf.extend_from_slice(b.as_bytes());
        let v = match scratch.as_deref_mut() {
            Some(s) => simd_json::to_borrowed_value_with_buffers(buf, s),
            None => simd_json::to_borrowed_value(buf),
        }
        .expect("block JSON");
        total += v
            .get("transactions")
            .and_then(|t| t.as_array())
            .map_or(0, |ts| {
                ts.iter()
                    .map(|t| {
                        t.get("operations")
                            .and_then(|o| o.as_array())
                            .map_or(0, |o| o.len())
                    })
                    .sum()
            });
    }
    total
}

fn decode_benches(c: &mut Criterion) {
    let sets = [
        (
            "hive-500-blocks",
            data::hive_blocks().expect("Hive blocks from the data folder"),
        ),
        (
            "steem-9-blocks",
            data::steem_blocks().expect("Steem blocks from the data folder"),
        ),
        ("composed-appbase-100-blocks", composed(Encoding::Appbase)),
        ("composed-legacy-100-blocks", composed(Encoding::Legacy)),
    ];
    let mut g = c.benchmark_group("decode");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, blocks) in &sets {
        let bytes: usize = blocks.iter().map(String::len).sum();
        let ops = ops_serde(blocks);
        let mut buf = Vec::new();
        assert_eq!(
            ops,
            ops_simd(blocks, &mut buf, None),
            "both parsers count the same ops"
        );
        eprintln!(
            "decode/{name}: {} blocks, {bytes} bytes, {ops} ops",
            blocks.len()
        );
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_with_input(BenchmarkId::new("serde_json", name), blocks, |b, bl| {
            b.iter(|| ops_serde(black_box(bl)))
        });
        g.bench_with_input(BenchmarkId::new("simd-json", name), blocks, |b, bl| {
            b.iter(|| ops_simd(black_box(bl), &mut buf, None))
        });
        let mut scratch = simd_json::Buffers::default();
        g.bench_with_input(
            BenchmarkId::new("simd-json-reused-buffers", name),
            blocks,
            |b, bl| b.iter(|| ops_simd(black_box(bl), &mut buf, Some(&mut scratch))),
        );
    }
    g.finish();

    // The same parses counted in operations, for ops/s.
    let mut g = c.benchmark_group("decode-ops");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for (name, blocks) in &sets {
        let mut buf = Vec::new();
        g.throughput(Throughput::Elements(ops_serde(blocks) as u64));
        g.bench_with_input(BenchmarkId::new("serde_json", name), blocks, |b, bl| {
            b.iter(|| ops_serde(black_box(bl)))
        });
        g.bench_with_input(BenchmarkId::new("simd-json", name), blocks, |b, bl| {
            b.iter(|| ops_simd(black_box(bl), &mut buf, None))
        });
        let mut scratch = simd_json::Buffers::default();
        g.bench_with_input(
            BenchmarkId::new("simd-json-reused-buffers", name),
            blocks,
            |b, bl| b.iter(|| ops_simd(black_box(bl), &mut buf, Some(&mut scratch))),
        );
    }
    g.finish();
}

criterion_group!(benches, decode_benches);
criterion_main!(benches);
