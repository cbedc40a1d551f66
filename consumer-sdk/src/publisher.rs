//! The writing side (feature `writer`): one publisher per ring, enforced by a file lock.

use crate::Chain;
use crate::error::{Error, WriteError};
use crate::file::{self, MappedMut};
use crate::ring::{Memory, MemoryMut, OpMeta, RingMut, WriterCore};
use crate::waiters::{self, WaitFile};
use std::path::Path;

/// How often the writer looks for sleeper slots of readers that died asleep.
const SWEEP_INTERVAL_NS: u64 = 1_000_000_000;

/// Identifies a registered topic within one ring (see [`Publisher::topic`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicId(u16);

/// How a new ring is created.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Data capacity in bytes, a power of two (default 64 MiB).
    pub capacity: u64,
    /// Permission bits of the file (default `0o600`: owner only). `0o640` (see
    /// [`CreateOptions::group_readable`]) lets bots that run as other users of the owner's group
    /// read it; `0o644` lets every user read it. Nobody but the owner may ever write a ring:
    /// modes with group or other write bits are refused, and so is an existing ring that has
    /// them, by the writer and by readers alike.
    pub mode: u32,
}

impl CreateOptions {
    /// The same options with mode `0o640`: readable by the owner's group, for bots that run as
    /// other users of that group.
    pub fn group_readable(self) -> CreateOptions {
        CreateOptions {
            mode: 0o640,
            ..self
        }
    }
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
    map: MappedMut,
    core: WriterCore,
    epoch: u64,
    /// The open block: its number, and whether an op or a gap notice is in it already.
    open: Option<OpenState>,
    /// Who sleeps on the ring (`None`: the file could not be made; every commit wakes).
    waiters: Option<WaitFile>,
    /// Heartbeat clock of the last sweep of abandoned sleeper slots.
    last_sweep: u64,
    /// Wake-up system calls made.
    wakes: u64,
}

#[derive(Debug, Clone, Copy)]
struct OpenState {
    number: u64,
    has_op: bool,
    has_gap: bool,
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
    /// discard an uncommitted partial block, bump the producer epoch. The file must belong to
    /// this process's effective user and be writable by nobody else
    /// ([`Error::Permissions`]).
    pub fn open(ring: impl AsRef<Path>) -> Result<Publisher, Error> {
        Publisher::open_path(&crate::subscriber::resolve_ring(ring.as_ref())?)
    }

    fn open_path(path: &Path) -> Result<Publisher, Error> {
        let map = file::open_write(path)?;
        let ring = RingMut::new(map.words_mut(), map.capacity);
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

    fn start(map: MappedMut, core: WriterCore) -> Publisher {
        let ring = RingMut::new(map.words_mut(), map.capacity);
        let now = file::heartbeat_now();
        let epoch = core.claim(&ring, u64::from(std::process::id()), now);
        let waiters = WaitFile::create_or_open(&map.path, map.mode()).ok();
        Publisher {
            map,
            core,
            epoch,
            open: None,
            waiters,
            last_sweep: now,
            wakes: 0,
        }
    }

    fn ring(&self) -> RingMut<'_> {
        RingMut::new(self.map.words_mut(), self.map.capacity)
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.map.path
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.map.capacity
    }

    /// Bytes written into the ring since it was created (records of committed blocks, and of
    /// the open one): the write position, which only grows.
    pub fn written_bytes(&self) -> u64 {
        self.core.position()
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

    /// Numbers and ids of the committed blocks from block `first` on (or from the oldest the
    /// ring still holds), oldest first, on the branch the ring ends with: the blocks a fork
    /// notice orphaned are left out. What a writer that follows a chain needs to find where a
    /// new branch forks off, or to name the blocks it orphans ([`Publisher::begin_fork`]).
    /// Empty if the ring cannot be read (it is read like a subscriber reads it).
    pub fn block_ids(&self, first: u64) -> Vec<(u64, [u8; 20])> {
        let open = |start| {
            crate::Subscriber::open(self.path())?
                // No topic: ops are passed over unread, only block ends and notices come.
                .topics(Vec::<String>::new())
                .start(start)
        };
        let sub = match open(crate::Start::Block(first.max(1))) {
            Err(Error::BlockGone { .. }) => open(crate::Start::Earliest),
            other => other,
        };
        let Ok(mut sub) = sub else {
            return Vec::new();
        };
        let mut chain: Vec<(u64, [u8; 20])> = Vec::new();
        loop {
            match sub.try_recv() {
                Ok(Some(crate::Event::BlockEnd(end))) => chain.push((end.block, end.block_id)),
                Ok(Some(crate::Event::Fork(fork))) => {
                    chain.retain(|(n, _)| *n < fork.first_block);
                }
                Ok(Some(crate::Event::Op(_))) => {}
                // Lapped meanwhile: what was read holds.
                Ok(None) | Err(_) => return chain,
            }
        }
    }

    /// The chain the ring records (`None`: created without one).
    pub fn chain(&self) -> Result<Option<Chain>, WriteError> {
        crate::chain::load_from_header(self.map.words()).map_err(WriteError::ChainRecord)
    }

    /// Binds the ring to `chain`: records it in the header if the ring records no chain yet
    /// (call this right after creating a ring, before its first block), accepts it if the ring
    /// records the same chain, and fails with [`WriteError::OtherChain`] otherwise, so a
    /// publisher never mixes two chains' blocks in one ring.
    pub fn set_chain(&mut self, chain: &Chain) -> Result<(), WriteError> {
        match self.chain()? {
            Some(ring) if ring == *chain => Ok(()),
            Some(ring) => Err(WriteError::OtherChain {
                ring,
                asked: *chain,
            }),
            None => {
                crate::chain::store_in_header(self.map.words_mut(), chain);
                Ok(())
            }
        }
    }

    /// Id of topic `name` (e.g. `vote`), registered on first use. Names are 1 to 56 bytes of
    /// `[a-z0-9_]`; a ring holds up to 256 topics.
    pub fn topic(&mut self, name: &str) -> Result<TopicId, WriteError> {
        let ring = RingMut::new(self.map.words_mut(), self.map.capacity);
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
        self.core.begin(number, timestamp, block_id)?;
        self.open = Some(OpenState {
            number,
            has_op: false,
            has_gap: false,
        });
        Ok(())
    }

    /// Open block `number` of another branch: the committed blocks `number..=last_block` were
    /// orphaned (their ids `orphaned`, oldest first; the last one must be
    /// [`Publisher::last_block_id`]), and `previous` is the id of block `number - 1`, the last
    /// block both branches share (the new block's `previous`). The block starts with a fork
    /// notice, which readers get as
    /// [`crate::Event::Fork`] when they reach the block, and only if it commits; after it, block
    /// numbers go on from `number`. Used in head mode, where a block that was the head may be
    /// replaced by another branch; then [`Publisher::push`] and [`Publisher::commit`] as for
    /// [`Publisher::begin_block`].
    pub fn begin_fork(
        &mut self,
        number: u64,
        timestamp: u32,
        block_id: [u8; 20],
        previous: [u8; 20],
        orphaned: &[[u8; 20]],
    ) -> Result<(), WriteError> {
        let ring = RingMut::new(self.map.words_mut(), self.map.capacity);
        self.core
            .begin_fork(&ring, number, timestamp, block_id, previous, orphaned)?;
        self.open = Some(OpenState {
            number,
            has_op: false,
            has_gap: false,
        });
        Ok(())
    }

    /// Tell readers that blocks `from..=to` were lost upstream, before the open block: a ring
    /// fed from another ring's copy (over NATS, say) passes on the loss its source reported.
    /// `lost_ops` is the number of ops those blocks held, `None` when unknown. Call it right
    /// after [`Publisher::begin_block`], before any [`Publisher::push`], at most once per
    /// block; the range must lie after [`Publisher::last_block`] and before the open block.
    /// Readers get it as [`crate::RecvError::UpstreamGap`] when they reach the block, and only
    /// if the block commits.
    pub fn gap(&mut self, from: u64, to: u64, lost_ops: Option<u64>) -> Result<(), WriteError> {
        let refuse = |reason| WriteError::InvalidGap { from, to, reason };
        let Some(open) = self.open else {
            return Err(WriteError::NoBlock);
        };
        if from > to {
            return Err(refuse("the range is empty"));
        }
        if to >= open.number {
            return Err(refuse("it must end before the open block"));
        }
        if self.core.last_block().is_some_and(|last| from <= last) {
            return Err(refuse("it must start after the last committed block"));
        }
        if open.has_op {
            return Err(refuse("it must come before the block's first op"));
        }
        if open.has_gap {
            return Err(refuse("the block has a gap notice already"));
        }
        // `GAP_OPS_UNKNOWN` stands for `None`; a count that large cannot be real.
        let ops = lost_ops.map_or(crate::layout::GAP_OPS_UNKNOWN, |n| {
            n.min(crate::layout::GAP_OPS_UNKNOWN - 1)
        });
        let ring = RingMut::new(self.map.words_mut(), self.map.capacity);
        self.core.gap(&ring, from, to, ops)?;
        self.open = Some(OpenState {
            has_gap: true,
            ..open
        });
        Ok(())
    }

    /// Append one op to the open block. `payload` is the op body (compact JSON by convention).
    pub fn push(
        &mut self,
        topic: TopicId,
        meta: &OpMeta,
        payload: &[u8],
    ) -> Result<(), WriteError> {
        let ring = RingMut::new(self.map.words_mut(), self.map.capacity);
        self.core.push(&ring, topic.0, meta, payload)?;
        if let Some(open) = self.open.as_mut() {
            open.has_op = true;
        }
        Ok(())
    }

    /// Make the open block visible to readers, in one atomic step, and wake sleeping readers.
    /// The wake-up is a system call made only when a reader has said it sleeps (see
    /// [`Publisher::sleeping_readers`]), so a swarm of busy readers costs the writer none.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        let ring = RingMut::new(self.map.words_mut(), self.map.capacity);
        self.core.commit(&ring)?;
        self.open = None;
        let now = file::heartbeat_now();
        self.core.heartbeat(&ring, now);
        if self.waiters.as_ref().is_none_or(WaitFile::anyone_sleeps) {
            file::futex_wake(ring.notify_word());
            self.wakes += 1;
        }
        self.sweep(now);
        Ok(())
    }

    /// About once a second: forget the sleeper slots of readers that died asleep, and make the
    /// wait file again if it is gone or was replaced.
    fn sweep(&mut self, now: u64) {
        if now.saturating_sub(self.last_sweep) < SWEEP_INTERVAL_NS {
            return;
        }
        self.last_sweep = now;
        let current = file::current_id(&waiters::wait_path(&self.map.path));
        if self
            .waiters
            .as_ref()
            .is_none_or(|w| current != Some(w.id()))
        {
            self.waiters = WaitFile::create_or_open(&self.map.path, self.map.mode()).ok();
        }
        if let Some(w) = self.waiters.as_ref() {
            w.clear_abandoned();
        }
    }

    /// Readers registered as asleep on this ring now, waiting for the next commit (see
    /// [`Publisher::commit`]); `None` if the ring's `.wait` file could not be made, in which
    /// case every commit wakes.
    pub fn sleeping_readers(&self) -> Option<u64> {
        self.waiters.as_ref().map(WaitFile::sleepers)
    }

    /// Wake-up system calls this publisher has made (one at most per commit).
    pub fn wakes(&self) -> u64 {
        self.wakes
    }

    /// Drop the open block; readers never see any of it.
    pub fn abort_block(&mut self) {
        self.core.abort();
        self.open = None;
    }

    /// Run `hook` at every step of every commit from now on (tests only: it lets a test stop
    /// or kill the writer between two steps).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn set_commit_hook(&mut self, hook: impl FnMut(crate::ring::CommitStep) + Send + 'static) {
        self.core.hook = Some(Box::new(hook));
    }

    /// Tell readers this publisher is alive (call at least once a second while idle).
    pub fn heartbeat(&mut self) {
        let now = file::heartbeat_now();
        self.core.heartbeat(&self.ring(), now);
        self.sweep(now);
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
