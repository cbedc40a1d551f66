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
//! broadcaster restarts and ring replacement. A broadcaster following the head may publish a
//! fork, after which block numbers repeat: see [`Cursor`] on how cursors resume across one.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Position of an op in the chain.
///
/// # Across a fork
/// A broadcaster following the head may publish a fork notice ([`crate::Event::Fork`]) and then
/// the new branch's blocks, whose numbers repeat those of the orphaned ones. A cursor that
/// carries its block's id ([`Cursor::block_id`]: the cursors of block ends and of fork notices
/// do) resumes on exactly the branch it was on; a fork notice's own cursor
/// ([`crate::Fork::cursor`]) resumes just after that notice. A cursor without one (an op's:
/// its block's id comes only with the block's end) resumes at the oldest copy of its block the
/// ring holds: if that block was orphaned, the bot gets the rest of it and then the fork notice,
/// so it never misses an undo; it may get blocks it had already undone, and the notice again.
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
    /// Id of block `block`, when known: it tells apart two blocks of the same number on two
    /// branches (see [Across a fork](Cursor#across-a-fork)). Saved as 40 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_id")]
    pub block_id: Option<[u8; 20]>,
}

impl Cursor {
    /// A cursor after every op of block `block` (whose id is `block_id`, if known).
    pub fn after_block(block: u64, block_id: Option<[u8; 20]>) -> Cursor {
        Cursor {
            block,
            index_in_block: u32::MAX,
            trx_index: 0,
            op_index: 0,
            block_id,
        }
    }
}

/// A block id as 40 hex digits in a cursor file.
mod hex_id {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(id: &Option<[u8; 20]>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_str(&const_hex::encode(id)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 20]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let mut id = [0u8; 20];
        let bytes = text.as_bytes();
        if bytes.len() != 40 {
            return Err(D::Error::custom(format!(
                "block id {text:?} is not 40 hex digits"
            )));
        }
        for (byte, pair) in id.iter_mut().zip(bytes.chunks_exact(2)) {
            let digits = std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok());
            *byte = digits.ok_or_else(|| {
                D::Error::custom(format!("block id {text:?} is not 40 hex digits"))
            })?;
        }
        Ok(Some(id))
    }
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
            block_id: None,
        };
        f.save(&c).unwrap();
        assert_eq!(f.load().unwrap(), Some(c));
        // Files written before cursors carried a block id still load.
        std::fs::write(
            f.path(),
            br#"{"block":7,"index_in_block":3,"trx_index":1,"op_index":0}"#,
        )
        .unwrap();
        assert_eq!(f.load().unwrap(), Some(c));
        let mut id = [0u8; 20];
        id[0] = 0xab;
        id[19] = 0x01;
        let with_id = Cursor::after_block(9, Some(id));
        f.save(&with_id).unwrap();
        let text = std::fs::read_to_string(f.path()).unwrap();
        let hex = format!("\"ab{}01\"", "0".repeat(36));
        assert!(text.contains(&hex), "{text}");
        assert_eq!(f.load().unwrap(), Some(with_id));
        std::fs::write(
            f.path(),
            br#"{"block":7,"index_in_block":3,"block_id":"abc"}"#,
        )
        .unwrap();
        let e = f.load().unwrap_err().to_string();
        assert!(e.contains("40 hex digits"), "{e}");
        std::fs::write(f.path(), b"{\"block\":").unwrap();
        let e = f.load().unwrap_err().to_string();
        assert!(e.contains("c.json") && e.contains("not a cursor"), "{e}");
    }
}
