//! Replaying recorded blocks (`--replay`) and recording fetched ones (`--record`).
//!
//! A replay file is JSONL: one block object per line, exactly as a node returns it (the `result`
//! of `condenser_api.get_block`, or a `block_api` block), in either operation encoding. Block
//! numbers must strictly increase from line to line but may skip numbers, except at a fork
//! recorded in `head` mode: a block numbered at or below the one before it whose `previous` is
//! the id of a block read before (among the last 512) starts another branch, and
//! is replayed as the follower published it, after a fork notice orphaning the blocks replayed
//! from its number on. Blank lines are
//! ignored; any other line that is not a block, or is out of order, is an error naming the file
//! and the line number (and, for a line that is not JSON, the column where parsing failed). A
//! reader told to [`ReplayReader::skip_bad_lines`] logs a line that is not a block and goes on;
//! an out-of-order block is an error all the same (the file is not a replay of one chain).
//!
//! A record file is the same format: [`Recorder`] appends each published block object as one
//! compact line, so `--replay` reads it back. Virtual operations are not part of the block
//! object and are not recorded.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::VecDeque;

use tokio::sync::mpsc;

use crate::follow::MAX_FORK_DEPTH;
use tracing::warn;

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
    /// A line is not JSON.
    #[error("{}:{line}:{column}: not JSON: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column (in bytes) where the parser gave up.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A line is JSON but not a block object.
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
    /// The file holds no block at all.
    #[error("{}: no blocks in the file (expected one JSON block object per line)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

impl ReplayError {
    /// Whether this error is about one line's content, which `--skip-bad-lines` skips.
    pub fn is_bad_line(&self) -> bool {
        matches!(self, ReplayError::Syntax { .. } | ReplayError::Line { .. })
    }
}

/// Opens `path` and reads up to its first block, so that a missing, unreadable, empty or
/// garbled file is reported before anything else is set up. Returns the first block's number.
pub fn check(path: &Path, skip_bad_lines: bool) -> Result<u64, ReplayError> {
    let mut reader = ReplayReader::open(path)?;
    loop {
        match reader.read_block() {
            Ok(Some(fetched)) => return Ok(fetched.block.number),
            Ok(None) => {
                return Err(ReplayError::Empty {
                    path: path.to_owned(),
                });
            }
            Err(e) if skip_bad_lines && e.is_bad_line() => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads a replay file block by block.
#[derive(Debug)]
pub struct ReplayReader {
    path: PathBuf,
    reader: BufReader<File>,
    line: usize,
    last: Option<u64>,
    /// Numbers and ids of the newest blocks read, oldest first: where a recorded fork links.
    read: VecDeque<(u64, String)>,
    buf: Vec<u8>,
    skip_bad_lines: bool,
    skipped: u64,
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
            read: VecDeque::new(),
            buf: Vec::new(),
            skip_bad_lines: false,
            skipped: 0,
        })
    }

    /// Log (as a warning) and skip lines that are not blocks, instead of returning an error.
    pub fn skip_bad_lines(mut self, skip: bool) -> Self {
        self.skip_bad_lines = skip;
        self
    }

    /// How many lines were skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next block, or `None` at the end of the file.
    pub fn next_block(&mut self) -> Result<Option<FetchedBlock>, ReplayError> {
        loop {
            match self.read_block() {
                Err(e) if self.skip_bad_lines && e.is_bad_line() => {
                    self.skipped += 1;
                    warn!("{e}; line skipped (--skip-bad-lines)");
                }
                other => return other,
            }
        }
    }

    fn read_block(&mut self) -> Result<Option<FetchedBlock>, ReplayError> {
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
            let block = block::decode_block(&self.buf).map_err(|source| self.line_error(source))?;
            // Another branch links to a block read before, and is not that same block again.
            let links = |(n, id): &(u64, String)| *n + 1 == block.number && *id == block.previous;
            let again = |(n, id): &(u64, String)| *n == block.number && *id == block.id;
            let forks = !block.previous.is_empty()
                && self.read.iter().any(links)
                && !self.read.iter().any(again);
            if let Some(previous) = self.last.filter(|&p| block.number <= p)
                && !forks
            {
                return Err(ReplayError::Order {
                    path: self.path.clone(),
                    line: self.line,
                    number: block.number,
                    previous,
                });
            }
            self.last = Some(block.number);
            while self.read.back().is_some_and(|(n, _)| *n >= block.number) {
                self.read.pop_back();
            }
            if self.read.len() == MAX_FORK_DEPTH {
                self.read.pop_front();
            }
            self.read.push_back((block.number, block.id.clone()));
            let raw = crate::json::compact(&self.buf);
            return Ok(Some(FetchedBlock {
                block,
                raw,
                appbase: None,
                orphaned: Vec::new(),
            }));
        }
    }
}

impl ReplayReader {
    /// The error for the current line, which `source` rejected. simd-json does not always know
    /// where a syntax error is (it may say "character 0"): serde_json, which parses
    /// sequentially, finds the real column.
    fn line_error(&self, source: DecodeError) -> ReplayError {
        if let DecodeError::Json(_) = source
            && let Err(e) =
                serde_json::from_slice::<serde::de::IgnoredAny>(self.buf.trim_ascii_end())
            && (e.is_syntax() || e.is_eof())
        {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the position is given apart.
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].to_owned(),
                None => message,
            };
            return ReplayError::Syntax {
                path: self.path.clone(),
                line: self.line,
                column: e.column().max(1),
                message,
            };
        }
        ReplayError::Line {
            path: self.path.clone(),
            line: self.line,
            source,
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
#[derive(Debug, Clone)]
pub(crate) struct ReplayRange {
    /// Last block already in the sink.
    pub resume: Option<u64>,
    /// The newest blocks in the sink (see [`crate::sink::Sink::recent_links`]).
    pub recent: Vec<(u64, String)>,
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
    // What the sink holds, newest last. Resuming, the file is read up to the sink's last block
    // (by id when the sink knows it: a recorded fork repeats numbers), and replayed from the
    // block after it in the file; from there a block at or below the last one replayed starts
    // another branch.
    let mut held: VecDeque<(u64, String)> = range.recent.into_iter().collect();
    let mut last = range.resume;
    let last_id = held
        .back()
        .filter(|(n, _)| Some(*n) == last)
        .map(|(_, id)| id.clone());
    let mut resumed = last.is_none();
    while let Some(mut fetched) = reader.next_block()? {
        let block = &fetched.block;
        let number = block.number;
        if let (false, Some(at)) = (resumed, range.resume) {
            match last_id.as_deref() {
                Some(id) if number == at && block.id == id => {
                    resumed = true;
                    continue;
                }
                Some(id) if number == at + 1 && block.previous == id => resumed = true,
                None if number > at => resumed = true,
                _ => continue,
            }
        }
        if range.resume.is_none() && range.start.is_some_and(|start| number < start) {
            continue;
        }
        if last.is_some_and(|last| number <= last) {
            fetched.orphaned = held
                .iter()
                .filter(|(n, _)| *n >= number)
                .map(|(_, id)| id.clone())
                .collect();
        }
        while held.back().is_some_and(|(n, _)| *n >= number) {
            held.pop_back();
        }
        if held.len() == MAX_FORK_DEPTH {
            held.pop_front();
        }
        held.push_back((number, fetched.block.id.clone()));
        last = Some(number);
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
        assert_eq!(
            err,
            format!("{name}:2:12: not JSON: EOF while parsing a value")
        );

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
    fn a_recorded_fork_is_read_and_a_repeated_or_unlinked_block_is_not() {
        let block = |n: u32, id: &str, previous: &str| {
            format!(
                r#"{{"block_id":"{n:08x}{}","previous":"{previous}","timestamp":"2016-03-24T16:05:0{n}","transactions":[]}}"#,
                id.repeat(16)
            )
        };
        let b1 = block(1, "aa", "0000000000000000000000000000000000000000");
        let b2 = block(2, "aa", &format!("00000001{}", "aa".repeat(16)));
        let b3 = block(3, "aa", &format!("00000002{}", "aa".repeat(16)));
        // Block 2 of another branch, linked to block 1: a fork.
        let b2_other = block(2, "bb", &format!("00000001{}", "aa".repeat(16)));
        let read = |lines: &[&str]| -> Result<Vec<(u64, String)>, String> {
            let file = write(lines);
            ReplayReader::open(file.path())
                .unwrap()
                .map(|b| {
                    b.map(|b| (b.block.number, b.block.id[8..10].to_owned()))
                        .map_err(|e| e.to_string())
                })
                .collect()
        };
        assert_eq!(
            read(&[&b1, &b2, &b3, &b2_other]).unwrap(),
            [
                (1, "aa".into()),
                (2, "aa".into()),
                (3, "aa".into()),
                (2, "bb".into())
            ]
        );
        // The same block twice is not a fork.
        let err = read(&[&b1, &b2, &b2]).unwrap_err();
        assert!(
            err.ends_with(":3: block 2 does not come after block 2"),
            "{err}"
        );
        // Nor is a block linked to no block read.
        let stray = block(2, "cc", &format!("00000001{}", "dd".repeat(16)));
        let err = read(&[&b1, &b2, &b3, &stray]).unwrap_err();
        assert!(
            err.ends_with(":4: block 2 does not come after block 3"),
            "{err}"
        );
    }

    #[test]
    fn bad_lines_can_be_skipped_but_not_disorder() {
        let file = write(&[BLOCK_1, "[1, 2", "{\"previous\": 3}", BLOCK_2]);
        assert!(ReplayReader::open(file.path()).unwrap().any(|b| b.is_err()));
        let mut reader = ReplayReader::open(file.path())
            .unwrap()
            .skip_bad_lines(true);
        let numbers: Vec<u64> = reader.by_ref().map(|b| b.unwrap().block.number).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(reader.skipped(), 2);
        assert_eq!(check(file.path(), false).unwrap(), 1);

        let file = write(&["", "garbage", BLOCK_2]);
        let err = check(file.path(), false).unwrap_err().to_string();
        assert!(err.ends_with(":2:1: not JSON: expected value"), "{err}");
        assert_eq!(check(file.path(), true).unwrap(), 2);

        let file = write(&[BLOCK_2, "garbage", BLOCK_1]);
        let mut reader = ReplayReader::open(file.path())
            .unwrap()
            .skip_bad_lines(true);
        assert!(reader.next_block().unwrap().is_some());
        let err = reader.next_block().unwrap_err();
        assert!(matches!(err, ReplayError::Order { line: 3, .. }), "{err}");

        let file = write(&["", "garbage"]);
        let err = check(file.path(), true).unwrap_err();
        assert!(matches!(err, ReplayError::Empty { .. }), "{err}");
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
