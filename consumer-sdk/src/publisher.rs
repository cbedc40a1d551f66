//! The writing side (feature `writer`): one publisher per ring, enforced by a file lock.

use crate::error::{Error, WriteError};
use crate::file::{self, Mapped};
use crate::ring::{Memory, OpMeta, Ring, WriterCore};
use std::path::Path;

/// Identifies a registered topic within one ring (see [`Publisher::topic`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicId(u16);

/// How a new ring is created.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Data capacity in bytes, a power of two (default 64 MiB).
    pub capacity: u64,
    /// Permission bits of the file (default `0o600`: owner only). Use `0o640` or `0o644` for
    /// bots that run as other users.
    pub mode: u32,
}

impl Default for CreateOptions {
    fn default() -> CreateOptions {
        CreateOptions {
            capacity: 64 << 20,
            mode: 0o600,
        }
    }
}

/// The single writer of a ring.
///
/// Records of a block become visible to readers all at once, when [`Publisher::commit`]
/// stores the new tail; a process that dies before that leaves the block invisible, and the
/// next publisher to open the ring discards it and reports the last committed block, so the
/// broadcaster resumes at the block after it: no gap, no duplicate.
pub struct Publisher {
    map: Mapped,
    core: WriterCore,
    epoch: u64,
}

impl Publisher {
    /// Create a new ring, by name (under `/dev/shm`) or path, as [`crate::Subscriber::open`]
    /// takes it; fails if one exists.
    pub fn create(ring: impl AsRef<Path>, options: &CreateOptions) -> Result<Publisher, Error> {
        let path = crate::subscriber::resolve_ring(ring.as_ref())?;
        match file::create(&path, options.capacity, options.mode)? {
            Some(map) => Ok(Publisher::start(map, WriterCore::fresh())),
            None => Err(Error::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file already exists here",
                ),
            }),
        }
    }

    /// Open an existing ring to continue publishing into it: validate every committed record,
    /// discard an uncommitted partial block, bump the producer epoch.
    pub fn open(ring: impl AsRef<Path>) -> Result<Publisher, Error> {
        Publisher::open_path(&crate::subscriber::resolve_ring(ring.as_ref())?)
    }

    fn open_path(path: &Path) -> Result<Publisher, Error> {
        let map = file::open_write(path)?;
        let ring = Ring::new(map.words(), map.capacity);
        let mut core = WriterCore::recover(&ring).map_err(|reason| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        })?;
        core.republish(&ring);
        Ok(Publisher::start(map, core))
    }

    /// Open the ring if it exists, create it otherwise. An existing ring keeps its own capacity.
    pub fn open_or_create(
        ring: impl AsRef<Path>,
        options: &CreateOptions,
    ) -> Result<Publisher, Error> {
        let path = crate::subscriber::resolve_ring(ring.as_ref())?;
        loop {
            match Publisher::open_path(&path) {
                Err(Error::NotFound { .. }) => {}
                other => return other,
            }
            if let Some(map) = file::create(&path, options.capacity, options.mode)? {
                return Ok(Publisher::start(map, WriterCore::fresh()));
            }
            // Someone created it between our two attempts: open theirs.
        }
    }

    fn start(map: Mapped, core: WriterCore) -> Publisher {
        let ring = Ring::new(map.words(), map.capacity);
        let epoch = core.claim(&ring, u64::from(std::process::id()), file::nanos_now());
        Publisher { map, core, epoch }
    }

    fn ring(&self) -> Ring<'_> {
        Ring::new(self.map.words(), self.map.capacity)
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.map.path
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.map.capacity
    }

    /// This publisher's epoch (one more than the previous publisher's).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last committed block: resume publishing at the one after it.
    pub fn last_block(&self) -> Option<u64> {
        self.core.last_block()
    }

    /// Id and timestamp of the last committed block, as given to
    /// [`Publisher::begin_block`]: a follower checks that the next block links to it.
    pub fn last_block_id(&self) -> Option<([u8; 20], u32)> {
        self.core.last_end()
    }

    /// Id of topic `name` (e.g. `vote`), registered on first use. Names are 1 to 56 bytes of
    /// `[a-z0-9_]`; a ring holds up to 256 topics.
    pub fn topic(&mut self, name: &str) -> Result<TopicId, WriteError> {
        let ring = Ring::new(self.map.words(), self.map.capacity);
        Ok(TopicId(self.core.topic(&ring, name)?))
    }

    /// Open block `number` (strictly greater than [`Publisher::last_block`]). `timestamp` is
    /// the block time in seconds since the Unix epoch; `block_id` its 20-byte id.
    pub fn begin_block(
        &mut self,
        number: u64,
        timestamp: u32,
        block_id: [u8; 20],
    ) -> Result<(), WriteError> {
        Ok(self.core.begin(number, timestamp, block_id)?)
    }

    /// Append one op to the open block. `payload` is the op body (compact JSON by convention).
    pub fn push(
        &mut self,
        topic: TopicId,
        meta: &OpMeta,
        payload: &[u8],
    ) -> Result<(), WriteError> {
        let ring = Ring::new(self.map.words(), self.map.capacity);
        Ok(self.core.push(&ring, topic.0, meta, payload)?)
    }

    /// Make the open block visible to readers, in one atomic step, and wake sleeping readers.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        let ring = Ring::new(self.map.words(), self.map.capacity);
        self.core.commit(&ring)?;
        self.core.heartbeat(&ring, file::nanos_now());
        file::futex_wake(ring.notify_word());
        Ok(())
    }

    /// Drop the open block; readers never see any of it.
    pub fn abort_block(&mut self) {
        self.core.abort();
    }

    /// Tell readers this publisher is alive (call at least once a second while idle).
    pub fn heartbeat(&mut self) {
        self.core.heartbeat(&self.ring(), file::nanos_now());
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("path", &self.map.path)
            .field("epoch", &self.epoch)
            .field("last_block", &self.core.last_block())
            .finish()
    }
}
