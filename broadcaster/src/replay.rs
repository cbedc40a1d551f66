//! Replaying recorded blocks (`--replay`) and recording fetched ones (`--record`).
//!
//! A replay file is JSONL: one block object per line, exactly as a node returns it (the `result`
//! of `condenser_api.get_block`, or a `block_api` block), in either operation encoding. Block
//! numbers must strictly increase from line to line but may skip numbers. Blank lines are
//! ignored; any other line that is not a block, or is out of order, is an error naming the file
//! and the line number.
//!
//! A record file is the same format: [`Recorder`] appends each published block object as one
//! compact line, so `--replay` reads it back. Virtual operations are not part of the block
//! object and are not recorded.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::block::{self, DecodeError};
use crate::config::Pace;
use crate::node::FetchedBlock;

/// A replay file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Opening or reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a block object.
    #[error("{}:{line}: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A line's block does not come after the previous line's block.
    #[error("{}:{line}: block {number} does not come after block {previous}", path.display())]
    Order {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The block on this line.
        number: u64,
        /// The block on the previous non-blank line.
        previous: u64,
    },
}

/// Reads a replay file block by block.
#[derive(Debug)]
pub struct ReplayReader {
    path: PathBuf,
    reader: BufReader<File>,
    line: usize,
    last: Option<u64>,
    buf: Vec<u8>,
}

impl ReplayReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, ReplayError> {
        let file = File::open(path).map_err(|source| ReplayError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            reader: BufReader::new(file),
            line: 0,
            last: None,
            buf: Vec::new(),
        })
    }

    /// The next block, or `None` at the end of the file.
    pub fn next_block(&mut self) -> Result<Option<FetchedBlock>, ReplayError> {
        loop {
            self.buf.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| ReplayError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let block = block::decode_block(&self.buf).map_err(|source| ReplayError::Line {
                path: self.path.clone(),
                line: self.line,
                source,
            })?;
            if let Some(previous) = self.last.filter(|&p| block.number <= p) {
                return Err(ReplayError::Order {
                    path: self.path.clone(),
                    line: self.line,
                    number: block.number,
                    previous,
                });
            }
            self.last = Some(block.number);
            let raw = crate::json::compact(&self.buf);
            return Ok(Some(FetchedBlock { block, raw }));
        }
    }
}

impl Iterator for ReplayReader {
    type Item = Result<FetchedBlock, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

/// Where replayed blocks start and stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayRange {
    /// Last block already in the sink.
    pub resume: Option<u64>,
    /// First block wanted (for an empty sink).
    pub start: Option<u64>,
    /// Last block wanted.
    pub stop: Option<u64>,
}

/// Sends the file's blocks within `range` into `tx` at `pace`; returns at the end of the file,
/// after the stop block, or when `tx` closes.
pub(crate) async fn replay(
    mut reader: ReplayReader,
    pace: Pace,
    interval: Duration,
    range: ReplayRange,
    tx: mpsc::Sender<FetchedBlock>,
) -> Result<(), ReplayError> {
    let mut ticker = match pace {
        Pace::Realtime => Some(tokio::time::interval(interval)),
        Pace::Every(every) => Some(tokio::time::interval(every)),
        Pace::Max => None,
    };
    while let Some(fetched) = reader.next_block()? {
        let number = fetched.block.number;
        let wanted = match range.resume {
            Some(last) => number > last,
            None => range.start.is_none_or(|start| number >= start),
        };
        if !wanted {
            continue;
        }
        if range.stop.is_some_and(|stop| number > stop) {
            return Ok(());
        }
        if let Some(ticker) = &mut ticker {
            ticker.tick().await;
        }
        if tx.send(fetched).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// A record file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("record file {}: {source}", path.display())]
pub struct RecordError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Appends block objects to a record file, one compact line each.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: File,
    line: Vec<u8>,
}

impl Recorder {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| RecordError {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            file,
            line: Vec::new(),
        })
    }

    /// Appends one block object (already compact) as a line, in a single write.
    pub fn append(&mut self, raw: &[u8]) -> Result<(), RecordError> {
        self.line.clear();
        self.line.extend_from_slice(raw);
        self.line.push(b'\n');
        self.file
            .write_all(&self.line)
            .map_err(|source| RecordError {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK_1: &str = r#"{"previous":"0000000000000000000000000000000000000000","timestamp":"2016-03-24T16:05:00","transactions":[]}"#;
    const BLOCK_2: &str = r#"{"previous":"00000001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","timestamp":"2016-03-24T16:05:03","transactions":[]}"#;

    fn write(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for line in lines {
            writeln!(file, "{line}").unwrap();
        }
        file
    }

    #[test]
    fn reads_in_order_and_skips_blank_lines() {
        let file = write(&[BLOCK_1, "", BLOCK_2]);
        let numbers: Vec<u64> = ReplayReader::open(file.path())
            .unwrap()
            .map(|b| b.unwrap().block.number)
            .collect();
        assert_eq!(numbers, [1, 2]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let file = write(&[BLOCK_1, "{\"previous\":"]);
        let err = ReplayReader::open(file.path())
            .unwrap()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        let name = file.path().display().to_string();
        assert!(err.starts_with(&format!("{name}:2: invalid JSON")), "{err}");

        let file = write(&[BLOCK_2, "", BLOCK_1]);
        let err = ReplayReader::open(file.path())
            .unwrap()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(
            err.ends_with(":3: block 1 does not come after block 2"),
            "{err}"
        );

        let missing = ReplayReader::open(Path::new("/nonexistent/blocks.jsonl")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/blocks.jsonl: ")
        );
    }

    #[test]
    fn recorded_blocks_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let mut recorder = Recorder::open(&path).unwrap();
        recorder.append(BLOCK_1.as_bytes()).unwrap();
        drop(recorder);
        Recorder::open(&path)
            .unwrap()
            .append(BLOCK_2.as_bytes())
            .unwrap();
        let blocks: Vec<FetchedBlock> = ReplayReader::open(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].raw, BLOCK_2.as_bytes());
    }
}
