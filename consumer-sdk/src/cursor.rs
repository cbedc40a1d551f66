//! Saving a bot's position so that a restart resumes without a gap.
//!
//! # Semantics: at least once
//! A bot handles an op, then saves its cursor. If it dies between the two, the op is delivered
//! again after the restart; if it dies before handling, the op was never marked done. So every op
//! is handled at least once, and an op is redelivered only if it came after the last saved
//! cursor. Bots whose effects must not repeat make them idempotent (e.g. key them by
//! [`Cursor`]) or save the cursor before acting (at most once).
//!
//! A cursor names an op by block number and its index within the block (counting every topic),
//! which the broadcaster reproduces exactly after its own restarts, so a cursor stays valid across
//! broadcaster restarts and ring replacement.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Position of an op in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// Block number.
    pub block: u64,
    /// Index of the op within its block, all topics counted.
    pub index_in_block: u32,
    /// Transaction index (informational).
    #[serde(default)]
    pub trx_index: u32,
    /// Op index within the transaction (informational).
    #[serde(default)]
    pub op_index: u32,
}

/// A cursor stored in a small JSON file, replaced atomically on every save.
#[derive(Debug, Clone)]
pub struct CursorFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl CursorFile {
    /// A cursor file at `path` (not created until the first save).
    pub fn new(path: impl Into<PathBuf>) -> CursorFile {
        let path = path.into();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        CursorFile {
            path,
            tmp: tmp.into(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved cursor; `Ok(None)` if the file does not exist yet.
    pub fn load(&self) -> Result<Option<Cursor>, Error> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Io {
                    path: self.path.clone(),
                    source: e,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Cursor {
                path: self.path.clone(),
                reason: format!("not a cursor: {e}"),
            })
    }

    /// Save `cursor`: write a temporary file, then rename it over the old one, so a crash at any
    /// moment leaves either the old or the new cursor. Survives the bot's death; add
    /// [`CursorFile::save_durable`] to survive the host's.
    pub fn save(&self, cursor: &Cursor) -> Result<(), Error> {
        self.write(cursor, false)
    }

    /// Like [`CursorFile::save`], and flushed to stable storage before returning.
    pub fn save_durable(&self, cursor: &Cursor) -> Result<(), Error> {
        self.write(cursor, true)
    }

    fn write(&self, cursor: &Cursor, durable: bool) -> Result<(), Error> {
        let io = |path: &Path, e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let json = serde_json::to_vec(cursor).map_err(|e| Error::Cursor {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&self.tmp).map_err(|e| io(&self.tmp, e))?;
        f.write_all(&json).map_err(|e| io(&self.tmp, e))?;
        if durable {
            f.sync_all().map_err(|e| io(&self.tmp, e))?;
        }
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = CursorFile::new(dir.path().join("c.json"));
        assert_eq!(f.load().unwrap(), None);
        let c = Cursor {
            block: 7,
            index_in_block: 3,
            trx_index: 1,
            op_index: 0,
        };
        f.save(&c).unwrap();
        assert_eq!(f.load().unwrap(), Some(c));
        std::fs::write(f.path(), b"{\"block\":").unwrap();
        let e = f.load().unwrap_err().to_string();
        assert!(e.contains("c.json") && e.contains("not a cursor"), "{e}");
    }
}
