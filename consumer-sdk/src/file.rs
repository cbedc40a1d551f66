//! Ring files: naming, atomic creation, validation, mapping, the writer lock and the futex.
//!
//! This module and `ring.rs`'s word views are the only places that touch raw memory. A reader
//! maps the file read-only (`PROT_READ`): a bug in a bot cannot write into the ring.

use crate::error::Error;
use crate::layout::{self, HEADER_LEN, MAX_CAPACITY, MIN_CAPACITY, StaticHeader};
use crate::ring::Memory;
use crate::sync::AtomicU64;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zerocopy::FromBytes;

/// Directory where bare ring names live.
pub const SHM_DIR: &str = "/dev/shm";

/// Path of a ring given by name (`steem`, under [`SHM_DIR`]) or by path (anything with a `/`).
pub fn resolve(name_or_path: &str) -> Result<PathBuf, Error> {
    let invalid = |reason| Error::InvalidName {
        name: name_or_path.to_string(),
        reason,
    };
    if name_or_path.is_empty() {
        return Err(invalid("empty"));
    }
    if name_or_path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if name_or_path.contains('/') {
        return Ok(PathBuf::from(name_or_path));
    }
    if name_or_path == "." || name_or_path == ".." {
        return Err(invalid("not a file name"));
    }
    Ok(Path::new(SHM_DIR).join(name_or_path))
}

enum Map {
    ReadOnly(memmap2::Mmap),
    #[cfg(feature = "writer")]
    ReadWrite(memmap2::MmapMut),
}

/// A mapped ring file.
pub(crate) struct Mapped {
    map: Map,
    /// Kept open: it holds the writer's lock, and identifies the file (device, inode).
    _file: File,
    pub(crate) path: PathBuf,
    pub(crate) capacity: u64,
    pub(crate) id: (u64, u64),
}

impl Memory for Mapped {
    fn words(&self) -> &[AtomicU64] {
        let (ptr, len) = match &self.map {
            Map::ReadOnly(m) => (m.as_ptr(), m.len()),
            #[cfg(feature = "writer")]
            Map::ReadWrite(m) => (m.as_ptr(), m.len()),
        };
        // SAFETY: the mapping is page aligned (so 8-byte aligned) and `len` bytes long, a
        // multiple of 8 (validated in `validate`); it lives as long as `self`. Every access to
        // ring memory in this crate goes through these `AtomicU64`s, so concurrent access from
        // other processes is atomic access, not a data race. A read-only mapping is only ever
        // loaded from: std documents atomic loads of at most pointer size as allowed on
        // read-only memory, and nothing here stores through a `Map::ReadOnly`.
        unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>(), len / 8) }
    }
}

fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Open `path` without following a symbolic link.
fn open_nofollow(path: &Path, write: bool) -> Result<File, Error> {
    let mut opts = OpenOptions::new();
    // O_NONBLOCK: opening a FIFO planted at the path must not hang; it changes nothing for a
    // regular file, and anything else is refused by `validate`.
    opts.read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    opts.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => Error::Symlink {
            path: path.to_path_buf(),
        },
        Some(libc::EISDIR) => Error::NotARing {
            path: path.to_path_buf(),
            reason: "a directory".into(),
        },
        _ if e.kind() == io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
        },
        _ => io_err(path, e),
    })
}

/// Allocate every byte of the file's first `len` bytes on its file system (extending it to `len`
/// if shorter), so that no store into the mapping can later fault for lack of space: a file
/// sized with `set_len` alone is sparse (on tmpfs too), and the page that finds the file system
/// full kills the process that touches it with `SIGBUS`. Existing bytes are left as they are.
#[cfg(all(feature = "writer", target_os = "linux"))]
fn reserve(path: &Path, file: &File, len: u64) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    let too_large = || Error::NoSpace {
        path: path.to_path_buf(),
        requested: len,
        available: free_bytes(file),
        source: io::Error::from_raw_os_error(libc::EFBIG),
    };
    let off_len = libc::off_t::try_from(len).map_err(|_| too_large())?;
    loop {
        // SAFETY: `posix_fallocate` on a descriptor we own; no memory is passed. It returns the
        // error number instead of setting `errno`.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, off_len) };
        return match rc {
            0 => Ok(()),
            libc::EINTR => continue,
            libc::ENOSPC | libc::EFBIG | libc::EDQUOT => Err(Error::NoSpace {
                path: path.to_path_buf(),
                requested: len,
                available: free_bytes(file),
                source: io::Error::from_raw_os_error(rc),
            }),
            e => Err(io_err(path, io::Error::from_raw_os_error(e))),
        };
    }
}

/// Other systems: size the file only (no reservation is available everywhere).
#[cfg(all(feature = "writer", not(target_os = "linux")))]
fn reserve(path: &Path, file: &File, len: u64) -> Result<(), Error> {
    if file.metadata().map_err(|e| io_err(path, e))?.len() < len {
        file.set_len(len).map_err(|e| io_err(path, e))?;
    }
    Ok(())
}

/// Bytes an unprivileged user may still allocate on the file system holding `file` (0 if
/// unknown).
#[cfg(all(feature = "writer", target_os = "linux"))]
fn free_bytes(file: &File) -> u64 {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero `statvfs` is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `fstatvfs` writes one `statvfs` into the struct we pass, which lives for the call.
    if unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) } != 0 {
        return 0;
    }
    (st.f_bavail as u64).saturating_mul(st.f_frsize as u64)
}

/// Check the file's static header and size; return its capacity.
fn validate(path: &Path, file: &File) -> Result<u64, Error> {
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    let not_a_ring = |reason: String| Error::NotARing {
        path: path.to_path_buf(),
        reason,
    };
    if !meta.file_type().is_file() {
        return Err(not_a_ring("not a regular file".into()));
    }
    let len = meta.len();
    let mut raw = [0u8; size_of::<StaticHeader>()];
    if len < raw.len() as u64 {
        return Err(not_a_ring(format!(
            "{len} bytes is shorter than a ring header"
        )));
    }
    file.read_exact_at(&mut raw, 0)
        .map_err(|e| io_err(path, e))?;
    let h =
        StaticHeader::read_from_bytes(&raw).map_err(|_| not_a_ring("unreadable header".into()))?;
    if h.magic != layout::MAGIC {
        return Err(not_a_ring("bad magic (expected SHVRING)".into()));
    }
    if h.endian != layout::ENDIAN_TAG {
        return Err(not_a_ring(
            "written on a host of the other byte order".into(),
        ));
    }
    if h.version != layout::VERSION {
        return Err(Error::Version {
            path: path.to_path_buf(),
            found: h.version,
            expected: layout::VERSION,
        });
    }
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if h.header_len != HEADER_LEN as u64
        || h.topic_slots as usize != layout::TOPIC_SLOTS
        || h.index_slots as usize != layout::INDEX_SLOTS
    {
        return Err(corrupt(
            "header geometry differs from layout version 1".into(),
        ));
    }
    if !h.capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&h.capacity) {
        return Err(corrupt(format!(
            "capacity {} is not a power of two in range",
            h.capacity
        )));
    }
    let expected = HEADER_LEN as u64 + h.capacity;
    if len < expected {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            len,
            expected,
        });
    }
    if len > expected {
        return Err(corrupt(format!(
            "{len} bytes where the header announces {expected}"
        )));
    }
    Ok(h.capacity)
}

fn file_id(path: &Path, file: &File) -> Result<(u64, u64), Error> {
    let m = file.metadata().map_err(|e| io_err(path, e))?;
    Ok((m.dev(), m.ino()))
}

/// Device and inode the path names now, without following a link (`None`: nothing there).
pub(crate) fn current_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Map an existing ring read-only.
pub(crate) fn open_read(path: &Path) -> Result<Mapped, Error> {
    let file = open_nofollow(path, false)?;
    let capacity = validate(path, &file)?;
    // SAFETY: the file was validated to be exactly `HEADER_LEN + capacity` bytes. Writers never
    // shrink a ring; all accesses go through atomics (see `Memory for Mapped`).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
    let id = file_id(path, &file)?;
    Ok(Mapped {
        map: Map::ReadOnly(map),
        _file: file,
        path: path.to_path_buf(),
        capacity,
        id,
    })
}

#[cfg(feature = "writer")]
pub(crate) use writer::{create, open_write};

#[cfg(feature = "writer")]
mod writer {
    use super::*;

    /// Take the writer's exclusive lock; fails at once if another writer holds it.
    fn lock(path: &Path, file: &File) -> Result<bool, Error> {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(false)
        } else {
            Err(io_err(path, e))
        }
    }

    fn map_rw(path: &Path, file: File, capacity: u64) -> Result<Mapped, Error> {
        // SAFETY: the file is exactly `HEADER_LEN + capacity` bytes and locked by this writer;
        // all accesses go through atomics (see `Memory for Mapped`).
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(|e| io_err(path, e))?;
        let id = file_id(path, &file)?;
        Ok(Mapped {
            map: Map::ReadWrite(map),
            _file: file,
            path: path.to_path_buf(),
            capacity,
            id,
        })
    }

    /// Open an existing ring for writing, holding the writer lock.
    pub(crate) fn open_write(path: &Path) -> Result<Mapped, Error> {
        let file = open_nofollow(path, true)?;
        // Refuse what is not a ring before touching it, lock included.
        validate(path, &file)?;
        if !lock(path, &file)? {
            let pid = open_read(path)
                .map(|m| crate::ring::Ring::new(m.words(), m.capacity).pid())
                .unwrap_or(0);
            return Err(Error::WriterActive {
                path: path.to_path_buf(),
                pid,
            });
        }
        let capacity = validate(path, &file)?;
        // A ring written before reservations existed, or whose pages were punched out, is
        // sparse: reserve it now rather than die of SIGBUS on a full file system later.
        reserve(path, &file, HEADER_LEN as u64 + capacity)?;
        map_rw(path, file, capacity)
    }

    /// Create a ring atomically: build it under a temporary name in the same directory, then
    /// link it to `path` (which fails if `path` exists) and drop the temporary name. Readers
    /// never see a half-initialised file. `Ok(None)`: something already exists at `path`.
    pub(crate) fn create(path: &Path, capacity: u64, mode: u32) -> Result<Option<Mapped>, Error> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(Error::InvalidCapacity {
                capacity,
                min: MIN_CAPACITY,
                max: MAX_CAPACITY,
            });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| Error::InvalidName {
            name: path.display().to_string(),
            reason: "no file name",
        })?;
        let tmp = dir.join(format!(
            ".{}.{}.{:x}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            nanos_now()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        let cleanup = |e: Error| {
            let _ = std::fs::remove_file(&tmp);
            e
        };
        // The umask must not widen or narrow what was asked for.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| cleanup(io_err(&tmp, e)))?;
        // Reserved under the temporary name: a full file system leaves nothing behind.
        reserve(path, &file, HEADER_LEN as u64 + capacity).map_err(cleanup)?;
        lock(&tmp, &file).map_err(cleanup)?;
        let mapped = map_rw(&tmp, file, capacity).map_err(cleanup)?;
        crate::ring::init_header(mapped.words(), capacity, nanos_now());
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Some(Mapped {
                path: path.to_path_buf(),
                ..mapped
            })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io_err(path, e)),
        }
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Whether process `pid` exists (`None`: cannot tell).
pub(crate) fn process_exists(pid: u64) -> Option<bool> {
    let pid = libc::pid_t::try_from(pid).ok().filter(|&p| p > 0)?;
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    if rc == 0 {
        return Some(true);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Some(false),
        Some(libc::EPERM) => Some(true),
        _ => None,
    }
}

/// Address of the low 32 bits of a 64-bit word: the futex word.
fn futex_addr(word: &AtomicU64) -> *const u32 {
    let base = (word as *const AtomicU64).cast::<u32>();
    if cfg!(target_endian = "little") {
        base
    } else {
        base.wrapping_add(1)
    }
}

/// Sleep until the low 32 bits of `word` differ from `seen`, it is woken, or `timeout` passes.
#[cfg(target_os = "linux")]
pub(crate) fn futex_wait(word: &AtomicU64, seen: u64, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: the futex word is inside a live mapping (borrowed for this call) and 4-byte
    // aligned; FUTEX_WAIT only reads it. A shared (non-private) futex, because the waker is
    // another process mapping the same file. Spurious returns are fine: callers re-check.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            futex_addr(word),
            libc::FUTEX_WAIT,
            seen as u32,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0,
        );
    }
}

/// Sleep until woken or `timeout` passes (no futex on this platform: a short sleep).
#[cfg(not(target_os = "linux"))]
pub(crate) fn futex_wait(_word: &AtomicU64, _seen: u64, timeout: std::time::Duration) {
    std::thread::sleep(timeout.min(std::time::Duration::from_millis(1)));
}

/// Wake every reader sleeping on `word`.
#[cfg(all(target_os = "linux", feature = "writer"))]
pub(crate) fn futex_wake(word: &AtomicU64) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE does not access the word's memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            futex_addr(word),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        );
    }
}

/// No futex on this platform: readers poll.
#[cfg(all(not(target_os = "linux"), feature = "writer"))]
pub(crate) fn futex_wake(_word: &AtomicU64) {}
