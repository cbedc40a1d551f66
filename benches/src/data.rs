//! The real chain data the benches send and parse, read from the repository's data folder
//! (`data/`, see its `SOURCES.md`, or `$BENCH_DATA_DIR`).
//!
//! Record bodies are op bodies exactly as a node returns them, as compact JSON:
//! * **vote** (~150 B with the 16-byte stamp): the longest vote body among the recorded Steem
//!   `condenser_api.get_block` responses;
//! * **comment** (1.5 KiB with the stamp): the one real comment body in those responses
//!   (491 B), with its markdown `body` string lengthened by repeating its own text until the
//!   record is exactly [`COMMENT_RECORD_LEN`] bytes. Real comments are often this long or
//!   longer; the recorded one is short.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Bytes at the front of every benchmark record: send time (`CLOCK_MONOTONIC` ns, little
/// endian) and sequence number (little endian).
pub const STAMP_LEN: usize = 16;
/// Record length of the large (comment) case, stamp included.
pub const COMMENT_RECORD_LEN: usize = 1536;

/// The repository's data folder.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Paths of the recorded Steem `condenser_api.get_block` responses, sorted.
pub fn steem_block_files() -> Result<Vec<PathBuf>> {
    let dir = data_dir().join("steem/condenser_api.get_block");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "reading {} (set BENCH_DATA_DIR to the data folder)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no block responses in {}", dir.display());
    }
    Ok(files)
}

/// The Steem blocks, each the `result` of its response as raw JSON text.
pub fn steem_blocks() -> Result<Vec<String>> {
    steem_block_files()?
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let v: Value =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
            Ok(serde_json::to_string(&v["result"])?)
        })
        .collect()
}

/// The 500 Hive blocks (1,000,000 to 1,000,499), one raw JSON line each.
pub fn hive_blocks() -> Result<Vec<String>> {
    let path = data_dir().join("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// Every legacy-encoded op (`["type", {body}]`) of the Steem blocks, as (type, body).
fn steem_ops() -> Result<Vec<(String, Value)>> {
    let mut ops = Vec::new();
    for block in steem_blocks()? {
        let v: Value = serde_json::from_str(&block)?;
        for trx in v["transactions"].as_array().into_iter().flatten() {
            for op in trx["operations"].as_array().into_iter().flatten() {
                if let (Some(kind), Some(body)) = (op[0].as_str(), op.get(1)) {
                    ops.push((kind.to_owned(), body.clone()));
                }
            }
        }
    }
    Ok(ops)
}

/// The longest real vote body, compact JSON.
pub fn vote_body() -> Result<Vec<u8>> {
    steem_ops()?
        .into_iter()
        .filter(|(k, _)| k == "vote")
        .map(|(_, b)| serde_json::to_vec(&b))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .max_by_key(Vec::len)
        .context("no vote op in the Steem blocks")
}

/// The real comment body, its `body` text lengthened (by repeating itself) so that the record,
/// stamp included, is exactly [`COMMENT_RECORD_LEN`] bytes.
pub fn comment_body() -> Result<Vec<u8>> {
    let (_, mut body) = steem_ops()?
        .into_iter()
        .find(|(k, _)| k == "comment")
        .context("no comment op in the Steem blocks")?;
    let text = body["body"]
        .as_str()
        .context("comment without a body")?
        .to_owned();
    let target = COMMENT_RECORD_LEN - STAMP_LEN;
    let mut long = text.clone();
    loop {
        body["body"] = Value::String(long.clone());
        let len = serde_json::to_vec(&body)?.len();
        if len >= target {
            // Cut back to the exact length (the text is ASCII, so any cut is a char boundary).
            let excess = len - target;
            let keep = long
                .len()
                .checked_sub(excess)
                .context("comment text too short to cut")?;
            if !long.is_char_boundary(keep) {
                bail!("comment text is not ASCII where it is cut");
            }
            long.truncate(keep);
            body["body"] = Value::String(long);
            let out = serde_json::to_vec(&body)?;
            if out.len() != target {
                bail!("comment body came out at {} bytes, not {target}", out.len());
            }
            return Ok(out);
        }
        long.push('\n');
        long.push_str(&text);
    }
}

/// A record: room for the stamp, then `body`.
pub fn record(body: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; STAMP_LEN];
    r.extend_from_slice(body);
    r
}

/// Write the send time and sequence number into a record's stamp.
pub fn stamp(record: &mut [u8], sent_ns: u64, seq: u64) {
    record[..8].copy_from_slice(&sent_ns.to_le_bytes());
    record[8..STAMP_LEN].copy_from_slice(&seq.to_le_bytes());
}

/// Read a record's stamp: (send time, sequence number). `None` if too short.
pub fn read_stamp(record: &[u8]) -> Option<(u64, u64)> {
    let sent = u64::from_le_bytes(record.get(..8)?.try_into().ok()?);
    let seq = u64::from_le_bytes(record.get(8..STAMP_LEN)?.try_into().ok()?);
    Some((sent, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_advertised_sizes() {
        let vote = vote_body().unwrap();
        assert!(
            (100..=160).contains(&vote.len()),
            "vote body {} bytes",
            vote.len()
        );
        let comment = comment_body().unwrap();
        assert_eq!(record(&comment).len(), COMMENT_RECORD_LEN);
        let v: Value = serde_json::from_slice(&comment).unwrap();
        assert!(v["author"].is_string());
    }

    #[test]
    fn stamps_round_trip() {
        let mut r = record(b"{}");
        stamp(&mut r, 7, 9);
        assert_eq!(read_stamp(&r), Some((7, 9)));
    }
}
