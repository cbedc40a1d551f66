//! Ring files: naming, atomic creation, validation, mapping, the writer lock and the futex.
//!
//! This module turns a mapping into the word views of `sync.rs`; nothing else touches raw
//! memory. Mappings are `memmap2::MmapRaw`: a pointer and a length, never a `&[u8]` over memory
//! that another process stores into. A reader maps the file read-only (`PROT_READ`) and gets a
//! view that can only load: a bug in a bot cannot write into the ring.
//!
//! # What is left to trust
//! A mapping is exactly as long as the size validated before mapping, and the size is checked
//! again once the mapping exists, so a file that changes size while it is opened is an error.
//! After that, only a process allowed to write the file can shrink it (truncate), and a mapper
//! that then touches a page past the new end is killed with `SIGBUS`. Writing the file is the
//! owner's privilege alone: the writer refuses a ring that anyone else may write, and so do
//! readers (see `check_owner`). A process of the owning user (or root) that truncates a live
//! ring is outside the threat model, as it is for iceoryx2 and every other shared-memory
//! transport; any other bytes or sizes in the file are a typed error.

use crate::error::Error;
use crate::layout::{self, HEADER_LEN, MAX_CAPACITY, MIN_CAPACITY, StaticHeader};
use crate::ring::Memory;
#[cfg(feature = "writer")]
use crate::ring::MemoryMut;
#[cfg(feature = "writer")]
use crate::sync::WordsMut;
use crate::sync::{AtomicU64, Word, Words};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zerocopy::FromBytes;

/// Directory where bare ring names live.
pub const SHM_DIR: &str = "/dev/shm";

/// A ring given by name (`steem`: a file under [`SHM_DIR`]) or by path (anything with a `/`),
/// checked the way [`Subscriber::open`](crate::Subscriber::open), [`Bot::builder`](crate::Bot::builder)
/// and the publisher take it: parse command-line values with it (`FromStr`) to reject a bad
/// name before anything runs.
///
/// ```
/// use consumer_sdk::RingPath;
///
/// assert_eq!("steem".parse::<RingPath>()?.as_path(), std::path::Path::new("/dev/shm/steem"));
/// assert_eq!("./rings/hive".parse::<RingPath>()?.as_path(), std::path::Path::new("./rings/hive"));
/// assert!("".parse::<RingPath>().is_err() && "..".parse::<RingPath>().is_err());
/// # Ok::<(), consumer_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RingPath(PathBuf);

impl RingPath {
    /// The file the ring lives in.
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl std::str::FromStr for RingPath {
    type Err = Error;

    fn from_str(name_or_path: &str) -> Result<RingPath, Error> {
        resolve(name_or_path).map(RingPath)
    }
}

impl AsRef<Path> for RingPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl std::fmt::Display for RingPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.display().fmt(f)
    }
}

/// Delete a ring (by name or path, as [`crate::Subscriber::open`] takes it) and the `.wait`
/// file its writer keeps beside it (`<ring>.wait`, see [`crate::Wait::Backoff`]). Either file
/// missing is fine. Readers and a writer that still map the ring go on with the deleted file.
pub fn remove_ring(ring: impl AsRef<Path>) -> Result<(), Error> {
    let path = crate::subscriber::resolve_ring(ring.as_ref())?;
    for p in [crate::waiters::wait_path(&path), path] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&p, e)),
            _ => {}
        }
    }
    Ok(())
}

/// Path of a ring given by name (`steem`, under [`SHM_DIR`]) or by path (anything with a `/`).
pub(crate) fn resolve(name_or_path: &str) -> Result<PathBuf, Error> {
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
    if name_or_path.ends_with(".wait") {
        // `x.wait` is where the ring `x` keeps its sleeping readers.
        return Err(invalid("ends with .wait, the suffix of a ring's wait file"));
    }
    if name_or_path.contains('/') {
        return Ok(PathBuf::from(name_or_path));
    }
    if name_or_path == "." || name_or_path == ".." {
        return Err(invalid("not a file name"));
    }
    Ok(Path::new(SHM_DIR).join(name_or_path))
}

/// A mapped ring file, read-only or read-write; either way only loads go through it (see
/// `MappedMut` for the writer's stores).
pub(crate) struct Mapped {
    /// Exactly `HEADER_LEN + capacity` bytes, page aligned (checked in `map_file`).
    map: memmap2::MmapRaw,
    /// Kept open: it holds the writer's lock (or, for readers, probes it), and identifies the
    /// file (device, inode).
    _file: File,
    pub(crate) path: PathBuf,
    pub(crate) capacity: u64,
    pub(crate) id: (u64, u64),
}

impl Mapped {
    /// Permission bits of the mapped file (0 if they cannot be read).
    #[cfg(feature = "writer")]
    pub(crate) fn mode(&self) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        self._file
            .metadata()
            .map_or(0, |m| m.permissions().mode() & 0o777)
    }
}

impl Memory for Mapped {
    fn words(&self) -> Words<'_> {
        // SAFETY: `map_file` checked that the mapping starts 8-byte aligned and is exactly the
        // validated `HEADER_LEN + capacity` bytes, a multiple of 8; it stays mapped as long as
        // `self` (the borrow of the returned view). `AtomicU64` is all interior mutability, so a
        // shared slice of them over memory other processes store into is sound, and every access
        // to ring memory in this crate is an atomic access through it: no data race. `Words`
        // only loads; std allows atomic loads of at most the native word size from read-only
        // memory, so a `PROT_READ` mapping is fine too. The one remaining hazard, the file being
        // truncated by its owner while mapped, is in the module docs.
        let words = unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), self.map.len() / 8)
        };
        Words::new(words)
    }
}

/// The writer's mapping: read-write, so it also hands out a view that stores.
#[cfg(feature = "writer")]
pub(crate) struct MappedMut(Mapped);

#[cfg(feature = "writer")]
impl std::ops::Deref for MappedMut {
    type Target = Mapped;

    fn deref(&self) -> &Mapped {
        &self.0
    }
}

#[cfg(feature = "writer")]
impl Memory for MappedMut {
    fn words(&self) -> Words<'_> {
        self.0.words()
    }
}

#[cfg(feature = "writer")]
impl MemoryMut for MappedMut {
    fn words_mut(&self) -> WordsMut<'_> {
        // SAFETY: as in `Mapped::words`, and a `MappedMut` is only built over a mapping made with
        // `PROT_READ | PROT_WRITE` (`map_file(.., true)`), so stores through the atomics are
        // allowed; no reference to its bytes other than these atomics exists.
        let words = unsafe {
            std::slice::from_raw_parts(
                self.0.map.as_mut_ptr().cast::<AtomicU64>(),
                self.0.map.len() / 8,
            )
        };
        WordsMut::new(words)
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
pub(crate) fn reserve(path: &Path, file: &File, len: u64) -> Result<(), Error> {
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
pub(crate) fn reserve(path: &Path, file: &File, len: u64) -> Result<(), Error> {
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

/// Who may use a ring file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// A reader: nobody but the owner may write the file.
    Read,
    /// The writer: the file is also ours (owned by our effective uid).
    #[cfg(feature = "writer")]
    Write,
}

/// Refuse a ring that someone other than its owner may write (anyone could forge ops into it,
/// or shrink it under its mappers), and, for the writer, one that another user owns.
fn check_owner(path: &Path, meta: &std::fs::Metadata, trust: Trust) -> Result<(), Error> {
    let refuse = |reason| Error::Permissions {
        path: path.to_path_buf(),
        owner: meta.uid(),
        mode: meta.mode() & 0o7777,
        reason,
    };
    if meta.mode() & 0o022 != 0 {
        return Err(refuse("users other than its owner may write it"));
    }
    #[cfg(feature = "writer")]
    if trust == Trust::Write {
        // SAFETY: `geteuid` has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            return Err(refuse(
                "it belongs to another user; the writer only continues its own rings",
            ));
        }
    }
    let _ = trust;
    Ok(())
}

/// Check the file's static header and size; return its capacity.
fn validate(path: &Path, file: &File, trust: Trust) -> Result<u64, Error> {
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    let not_a_ring = |reason: String| Error::NotARing {
        path: path.to_path_buf(),
        reason,
    };
    if !meta.file_type().is_file() {
        return Err(not_a_ring("not a regular file".into()));
    }
    check_owner(path, &meta, trust)?;
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
        return Err(corrupt(format!(
            "header geometry differs from layout version {}",
            layout::VERSION
        )));
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

/// Map exactly `len` bytes of `file` (the size `validate` accepted), read-only or read-write,
/// then check that the mapping is what was validated and that the file still has that size: a
/// file whose size changes while it is being opened is an error, never a short mapping.
fn map_file(path: &Path, file: &File, len: u64, writable: bool) -> Result<memmap2::MmapRaw, Error> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let want = usize::try_from(len)
        .map_err(|_| corrupt(format!("{len} bytes do not fit this address space")))?;
    let mut opts = memmap2::MmapOptions::new();
    opts.len(want);
    let map = if writable {
        opts.map_raw(file)
    } else {
        opts.map_raw_read_only(file)
    }
    .map_err(|e| io_err(path, e))?;
    if map.len() != want || map.as_ptr().align_offset(align_of::<AtomicU64>()) != 0 {
        return Err(corrupt(format!(
            "mapped {} bytes at {:p} where {want} aligned bytes were validated",
            map.len(),
            map.as_ptr()
        )));
    }
    let now = file.metadata().map_err(|e| io_err(path, e))?.len();
    if now != len {
        return Err(corrupt(format!(
            "the file changed size while being opened ({len} bytes, then {now})"
        )));
    }
    Ok(map)
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
    let capacity = validate(path, &file, Trust::Read)?;
    let map = map_file(path, &file, HEADER_LEN as u64 + capacity, false)?;
    let id = file_id(path, &file)?;
    Ok(Mapped {
        map,
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

    /// Take the writer's exclusive lock on the whole file; `false` at once if another writer
    /// holds it. An open-file-description lock (`F_OFD_SETLK`): it belongs to this open file,
    /// not to a pid, is released by the kernel when the last descriptor of it closes (so when
    /// the writer dies, however it dies), and readers see it with `F_OFD_GETLK` whatever pid
    /// namespace they are in and however pids were reused since (see `writer_present`).
    #[cfg(target_os = "linux")]
    fn lock(path: &Path, file: &File) -> Result<bool, Error> {
        use std::os::fd::AsRawFd;
        let mut fl = whole_file_lock(libc::F_WRLCK);
        // SAFETY: `fcntl(F_OFD_SETLK)` on a descriptor we own, reading the `flock` struct we
        // pass, which lives for the call.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
        if rc == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES) => Ok(false),
            _ => Err(io_err(path, e)),
        }
    }

    /// Other systems: `flock`, also per open file (readers cannot probe it, see
    /// `writer_present`).
    #[cfg(not(target_os = "linux"))]
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

    fn map_rw(path: &Path, file: File, capacity: u64) -> Result<MappedMut, Error> {
        let map = map_file(path, &file, HEADER_LEN as u64 + capacity, true)?;
        let id = file_id(path, &file)?;
        Ok(MappedMut(Mapped {
            map,
            _file: file,
            path: path.to_path_buf(),
            capacity,
            id,
        }))
    }

    /// Open an existing ring for writing, holding the writer lock.
    pub(crate) fn open_write(path: &Path) -> Result<MappedMut, Error> {
        let file = open_nofollow(path, true)?;
        // Refuse what is not a ring, or not ours, before touching it, lock included.
        validate(path, &file, Trust::Write)?;
        if !lock(path, &file)? {
            let pid = open_read(path)
                .map(|m| crate::ring::Ring::new(m.words(), m.capacity).pid())
                .unwrap_or(0);
            return Err(Error::WriterActive {
                path: path.to_path_buf(),
                pid,
            });
        }
        let capacity = validate(path, &file, Trust::Write)?;
        // A ring written before reservations existed, or whose pages were punched out, is
        // sparse: reserve it now rather than die of SIGBUS on a full file system later.
        reserve(path, &file, HEADER_LEN as u64 + capacity)?;
        map_rw(path, file, capacity)
    }

    /// Create a ring atomically: build it under a temporary name in the same directory, then
    /// link it to `path` (which fails if `path` exists) and drop the temporary name. Readers
    /// never see a half-initialised file. `Ok(None)`: something already exists at `path`.
    pub(crate) fn create(
        path: &Path,
        capacity: u64,
        mode: u32,
    ) -> Result<Option<MappedMut>, Error> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(Error::InvalidCapacity {
                capacity,
                min: MIN_CAPACITY,
                max: MAX_CAPACITY,
            });
        }
        // Owner reads and writes; group and others may at most read (what readers accept).
        if mode & !0o644 != 0 || mode & 0o600 != 0o600 {
            return Err(Error::InvalidMode { mode });
        }
        let (tmp, file) = create_temp_beside(path, mode, HEADER_LEN as u64 + capacity)?;
        let cleanup = |e: Error| {
            let _ = std::fs::remove_file(&tmp);
            e
        };
        lock(&tmp, &file).map_err(cleanup)?;
        let mapped = map_rw(&tmp, file, capacity).map_err(cleanup)?;
        crate::ring::init_header(mapped.words_mut(), capacity, nanos_now());
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Some(MappedMut(Mapped {
                path: path.to_path_buf(),
                ..mapped.0
            }))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io_err(path, e)),
        }
    }
}

/// A new file beside `path` under a temporary name (`.NAME.PID.NANOS.tmp`), with exactly `mode`
/// whatever the umask, and its first `len` bytes reserved (a full file system leaves nothing
/// behind: the file is removed again if a step fails). The caller fills it and gives it its
/// name.
#[cfg(feature = "writer")]
pub(crate) fn create_temp_beside(
    path: &Path,
    mode: u32,
    len: u64,
) -> Result<(PathBuf, File), Error> {
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
    use std::os::unix::fs::PermissionsExt;
    let ready = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(&tmp, e))
        .and_then(|()| reserve(path, &file, len));
    match ready {
        Ok(()) => Ok((tmp, file)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it): when a ring was created.
#[cfg(feature = "writer")]
pub(crate) fn nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Nanoseconds on the host's `CLOCK_BOOTTIME`: the heartbeat clock. Unlike the wall clock it
/// never jumps (NTP, an operator setting the date) and, unlike `CLOCK_MONOTONIC`, it counts
/// time suspended, so a writer silent across a suspend looks silent. Shared by every process of
/// the host (a time namespace that offsets it would skew heartbeats; the writer lock does not
/// depend on it).
#[cfg(target_os = "linux")]
pub(crate) fn heartbeat_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into the struct we pass, which lives for
    // the call; CLOCK_BOOTTIME exists on every Linux this crate supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Other systems: `CLOCK_MONOTONIC`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn heartbeat_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as above.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// A lock request over the whole file.
#[cfg(target_os = "linux")]
fn whole_file_lock(kind: libc::c_int) -> libc::flock {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct (`l_pid` must be 0
    // for the OFD commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

/// Whether a writer holds the ring's writer lock now (`None`: cannot tell). The lock dies with
/// the writer's open file, so this is right after pid reuse and across pid namespaces, where a
/// pid in the header means nothing.
#[cfg(target_os = "linux")]
pub(crate) fn writer_present(map: &Mapped) -> Option<bool> {
    use std::os::fd::AsRawFd;
    let mut fl = whole_file_lock(libc::F_WRLCK);
    // SAFETY: `fcntl(F_OFD_GETLK)` on a descriptor we own, reading and writing the `flock`
    // struct we pass, which lives for the call. It only tests; nothing is locked.
    let rc = unsafe { libc::fcntl(map._file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return None;
    }
    Some(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Other systems: no way to probe the writer's lock.
#[cfg(not(target_os = "linux"))]
pub(crate) fn writer_present(_map: &Mapped) -> Option<bool> {
    None
}

/// Address of the low 32 bits of a 64-bit word: the futex word.
fn futex_addr(word: Word<'_>) -> *const u32 {
    let base = word.as_ptr().cast::<u32>();
    if cfg!(target_endian = "little") {
        base
    } else {
        base.wrapping_add(1)
    }
}

/// Sleep until the low 32 bits of `word` differ from `seen`, it is woken, or `timeout` passes.
#[cfg(target_os = "linux")]
pub(crate) fn futex_wait(word: Word<'_>, seen: u64, timeout: std::time::Duration) {
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
pub(crate) fn futex_wait(_word: Word<'_>, _seen: u64, timeout: std::time::Duration) {
    std::thread::sleep(timeout.min(std::time::Duration::from_millis(1)));
}

/// Wake every reader sleeping on `word`.
#[cfg(all(target_os = "linux", feature = "writer"))]
pub(crate) fn futex_wake(word: Word<'_>) {
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
pub(crate) fn futex_wake(_word: Word<'_>) {}
