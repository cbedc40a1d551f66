//! Who sleeps on a ring: the `<ring>.wait` file, so the writer makes a wake-up system call only
//! when a reader sleeps (the eventcount pattern).
//!
//! Readers map the ring read-only, so they cannot say "I sleep" in it. The writer therefore
//! keeps a second, one-page file beside the ring, writable by everyone who may read the ring
//! (mode: the ring's, with a write bit wherever it has a read bit). In it:
//!
//! * a bitmap of [`SLOTS`] reader slots. A reader owns a slot while it holds an
//!   open-file-description lock on that slot's byte of the file (`F_OFD_SETLK` on byte
//!   `LOCK_BASE + slot`, beyond the file's end: a lock needs no bytes). The kernel drops the
//!   lock when the reader dies, however it dies.
//! * an overflow count for readers that found every slot taken.
//!
//! A reader about to sleep sets its bit (or raises the count) with a `SeqCst` read-modify-write
//! and a `SeqCst` fence, then sleeps on the ring's notify word (`FUTEX_WAIT` with the value it
//! read before polling), and clears it after. The writer, after bumping the notify word at a
//! commit, issues a `SeqCst` fence and loads the bitmap and the count, and wakes only if one is
//! non-zero. Of the two fences one comes first: either the writer sees the bit, or the reader's
//! `FUTEX_WAIT` sees the new notify value and returns at once. No wake-up is lost.
//!
//! A reader killed while asleep leaves its bit set; about once a second the writer probes the
//! lock of every set bit and clears the bits of slots nobody holds. A killed reader of the
//! overflow count leaves it raised for good: the writer then wakes at every commit, as it would
//! without this file. A reader that cannot open the file (permissions changed by hand, a file
//! system that refuses locks) is not known to the writer: it still wakes up on its own at least
//! every 50 ms. If the writer cannot create the file it wakes at every commit. A reader that
//! claims a slot while a sweep clears it may lose its first registration the same way: it wakes
//! up on its own within 50 ms and registers again.
//!
//! Whoever may write the file can at worst make the writer wake at every commit, or make
//! sleeping readers wait up to 50 ms; the ring itself stays read-only for them.

#[cfg(feature = "writer")]
use crate::error::Error;
pub(crate) use crate::sleepers::Slot;
use crate::sleepers::{self, SLOTS};
#[cfg(feature = "writer")]
use crate::sleepers::{BIT_WORDS, W_BITS};
use std::fs::{File, OpenOptions};
#[cfg(feature = "writer")]
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Length of the file: one page.
const FILE_LEN: usize = 4096;
/// Word 0: what the file is.
const MAGIC: u64 = u64::from_le_bytes(*b"RINGWAIT");
/// Word 1: its layout.
const VERSION: u64 = 1;
/// Byte offset of slot 0's lock.
const LOCK_BASE: i64 = 1 << 20;

/// The wait file of the ring at `ring`: its name with `.wait` appended.
pub(crate) fn wait_path(ring: &Path) -> PathBuf {
    let mut name = ring.as_os_str().to_owned();
    name.push(".wait");
    PathBuf::from(name)
}

/// A mapped wait file (reader or writer side).
pub(crate) struct WaitFile {
    map: memmap2::MmapRaw,
    file: File,
    /// Device and inode, to notice a replacement.
    id: (u64, u64),
}

impl WaitFile {
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned, exactly FILE_LEN bytes (checked when mapped) and
        // lives as long as `self`. Every access to it is atomic, so other processes storing into
        // it concurrently is no data race; it is mapped read-write, so stores are allowed.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), FILE_LEN / 8) }
    }

    /// Map `file` (already validated as a regular file of the right size).
    fn map(file: File) -> Option<WaitFile> {
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() != FILE_LEN as u64 {
            return None;
        }
        let map = memmap2::MmapOptions::new()
            .len(FILE_LEN)
            .map_raw(&file)
            .ok()?;
        if map.len() != FILE_LEN {
            return None;
        }
        Some(WaitFile {
            map,
            file,
            id: (meta.dev(), meta.ino()),
        })
    }

    fn valid(&self) -> bool {
        let w = self.words();
        // Relaxed: written once before the file got its name.
        w[0].load(Ordering::Relaxed) == MAGIC && w[1].load(Ordering::Relaxed) == VERSION
    }

    /// Device and inode of the mapped file.
    pub(crate) fn id(&self) -> (u64, u64) {
        self.id
    }

    /// Open the wait file of the ring at `ring` to register as a sleeper; `None` if there is
    /// none, it cannot be opened for writing, or it is not a wait file.
    pub(crate) fn open(ring: &Path) -> Option<WaitFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(wait_path(ring))
            .ok()?;
        let w = WaitFile::map(file)?;
        w.valid().then_some(w)
    }

    /// Take a slot: the first whose lock is free (starting from a place derived from the pid,
    /// so the readers of a swarm do not all probe slot 0 first), else the overflow count.
    pub(crate) fn claim(&self) -> Slot {
        let first = std::process::id() as usize;
        (0..SLOTS)
            .map(|i| (first + i) % SLOTS)
            .find(|&slot| self.lock_slot(slot))
            .map_or(Slot::Overflow, |slot| {
                // A bit a dead owner left behind is ours now, and we are awake.
                self.set(Slot::Bit(slot), false);
                Slot::Bit(slot)
            })
    }

    /// Say whether the holder of `slot` sleeps (see [`sleepers::set`]).
    pub(crate) fn set(&self, slot: Slot, asleep: bool) {
        sleepers::set(self.words(), slot, asleep);
    }

    /// Readers registered as asleep now (set bits plus the overflow count).
    #[cfg_attr(not(feature = "writer"), allow(dead_code))]
    pub(crate) fn sleepers(&self) -> u64 {
        sleepers::count(self.words())
    }

    #[cfg(target_os = "linux")]
    fn slot_lock(slot: usize, kind: libc::c_int) -> libc::flock {
        // SAFETY: an all-zero `flock` is a valid value of this plain C struct (`l_pid` must be 0
        // for the OFD commands).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = (LOCK_BASE + slot as i64) as libc::off_t;
        fl.l_len = 1;
        fl
    }

    /// Lock `slot`'s byte for this open file; `false` if another holds it.
    #[cfg(target_os = "linux")]
    fn lock_slot(&self, slot: usize) -> bool {
        use std::os::fd::AsRawFd;
        let mut fl = WaitFile::slot_lock(slot, libc::F_WRLCK);
        // SAFETY: `fcntl(F_OFD_SETLK)` on a descriptor we own, reading the `flock` struct we
        // pass, which lives for the call.
        unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) == 0 }
    }

    /// Other systems: no per-open-file locks, so no slots.
    #[cfg(not(target_os = "linux"))]
    fn lock_slot(&self, _slot: usize) -> bool {
        false
    }
}

#[cfg(feature = "writer")]
impl WaitFile {
    /// The wait file of the ring at `ring`, for its writer: the existing one if it is valid and
    /// ours (keeping the registrations of readers asleep on it), else a fresh one put in place
    /// atomically. Only a missing file or a damaged wait file (one page, not valid: readers may
    /// write it) is replaced; anything else at that path is left alone and the writer goes
    /// without. `mode` is the ring's.
    pub(crate) fn create_or_open(ring: &Path, mode: u32) -> Result<WaitFile, Error> {
        let path = wait_path(ring);
        let io = |p: &Path, source: std::io::Error| Error::Io {
            path: p.to_path_buf(),
            source,
        };
        let mode = mode | ((mode & 0o044) >> 1);
        let existing = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .ok()
            .and_then(WaitFile::map)
            .filter(|w| {
                w.valid()
                    && w.file.metadata().is_ok_and(|m| {
                        // SAFETY: `geteuid` has no preconditions.
                        m.uid() == unsafe { libc::geteuid() }
                    })
            });
        if let Some(w) = existing {
            // The ring's mode may have changed since.
            w.file
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| io(&path, e))?;
            return Ok(w);
        }
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(m) if m.is_file() && m.len() == FILE_LEN as u64 => {}
            // Not something this code made: never replaced.
            _ => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "another file is where the ring's wait file goes; it is left alone",
                );
                return Err(io(&path, e));
            }
        }
        let (tmp, file) = crate::file::create_temp_beside(&path, mode, FILE_LEN as u64)?;
        let made = (|| {
            let w = WaitFile::map(file).ok_or_else(|| Error::Corrupt {
                path: tmp.clone(),
                reason: "cannot map the wait file just made".to_string(),
            })?;
            let words = w.words();
            // Relaxed: the file gets its name (and readers) only after the rename below.
            words[0].store(MAGIC, Ordering::Relaxed);
            words[1].store(VERSION, Ordering::Relaxed);
            std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
            Ok(w)
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        made
    }

    /// Whether any reader is registered as asleep, judged after the writer's commit (which
    /// bumped the notify word): see [`sleepers::anyone_sleeps`].
    #[inline]
    pub(crate) fn anyone_sleeps(&self) -> bool {
        sleepers::anyone_sleeps(self.words())
    }

    /// Clear the bits of slots nobody holds (their readers died asleep); how many.
    #[cfg(target_os = "linux")]
    pub(crate) fn clear_abandoned(&self) -> u32 {
        use std::os::fd::AsRawFd;
        let w = self.words();
        let mut cleared = 0;
        for i in 0..BIT_WORDS {
            // Relaxed: a stale view only delays the sweep to the next one.
            let bits = w[W_BITS + i].load(Ordering::Relaxed);
            for b in (0..64).filter(|b| bits & (1 << b) != 0) {
                let slot = i * 64 + b;
                let mut fl = WaitFile::slot_lock(slot, libc::F_WRLCK);
                // SAFETY: `fcntl(F_OFD_GETLK)` on a descriptor we own, reading and writing the
                // `flock` struct we pass, which lives for the call. It only tests.
                let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
                if rc == 0 && fl.l_type == libc::F_UNLCK as libc::c_short {
                    // SeqCst: the same clear a reader makes of its own bit (`sleepers::set`).
                    w[W_BITS + i].fetch_and(!(1 << b), Ordering::SeqCst);
                    cleared += 1;
                }
            }
        }
        cleared
    }

    /// Other systems: no slots to clear.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn clear_abandoned(&self) -> u32 {
        0
    }
}

#[cfg(all(test, feature = "writer", target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exclusive_then_the_overflow_count_and_dead_owners_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let ring = dir.path().join("r");
        let writer = WaitFile::create_or_open(&ring, 0o600).unwrap();
        let readers: Vec<(WaitFile, Slot)> = (0..SLOTS)
            .map(|_| {
                let w = WaitFile::open(&ring).unwrap();
                let slot = w.claim();
                (w, slot)
            })
            .collect();
        let mut slots: Vec<usize> = readers
            .iter()
            .map(|(_, s)| match s {
                Slot::Bit(n) => *n,
                Slot::Overflow => panic!("a free slot was left"),
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), SLOTS, "every reader has a slot of its own");

        // One more: no slot is free, so it counts in the overflow word.
        let extra = WaitFile::open(&ring).unwrap();
        assert_eq!(extra.claim(), Slot::Overflow);
        assert!(!writer.anyone_sleeps());
        extra.set(Slot::Overflow, true);
        assert!(writer.anyone_sleeps());
        assert_eq!(writer.sleepers(), 1);
        extra.set(Slot::Overflow, false);
        assert!(!writer.anyone_sleeps());

        // A reader that dies asleep: its bit stays until the writer finds its lock gone.
        let mut readers = readers;
        let (dying, slot) = readers.pop().unwrap();
        dying.set(slot, true);
        let (alive, alive_slot) = &readers[0];
        alive.set(*alive_slot, true);
        assert_eq!(writer.sleepers(), 2);
        assert_eq!(writer.clear_abandoned(), 0, "both owners hold their locks");
        drop(dying);
        assert_eq!(writer.clear_abandoned(), 1);
        assert_eq!(writer.sleepers(), 1, "the live sleeper stays registered");
        alive.set(*alive_slot, false);
        assert!(!writer.anyone_sleeps());

        // Its slot is free for the next reader.
        let next = WaitFile::open(&ring).unwrap();
        assert_eq!(next.claim(), slot);
    }
}
