//! The file layer against its environment, with real files, file systems and processes.
//!
//! Tests that need root (mounting a tmpfs, switching to `nobody`) print why they skip
//! otherwise; CI runs them as root.

use crate::processes::{child, finish};
use consumer_sdk::layout::HEADER_LEN;
use consumer_sdk::{CreateOptions, Error, Publisher, Start, Subscriber};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn is_root() -> bool {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A small tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount one of `size` (e.g. `8m`), or say why not and return `None`.
    fn mount(test: &str, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("{test}: skipped: mounting a tmpfs needs root (CI runs tests as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { dir }),
            other => {
                eprintln!("{test}: skipped: cannot mount a tmpfs here ({other:?})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn options(capacity: u64) -> CreateOptions {
    CreateOptions {
        capacity,
        ..CreateOptions::default()
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Fill the file system holding `dir` until it is full; the filler file's path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 64 << 10];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    path
}

#[test]
fn full_file_system_is_a_typed_error_at_creation_never_a_sigbus() {
    let Some(fs) = Tmpfs::mount("full_file_system", "8m") else {
        return;
    };
    // A ring larger than the file system: refused at creation, twice, leaving nothing behind.
    let big = fs.path().join("big.ring");
    for attempt in 0..2 {
        match Publisher::create(big.to_str().unwrap(), &options(64 << 20)) {
            Err(Error::NoSpace {
                path,
                requested,
                available,
                ..
            }) => {
                assert_eq!(path, big);
                assert_eq!(requested, HEADER_LEN as u64 + (64 << 20));
                assert!(available <= 8 << 20, "{available} bytes free");
            }
            other => panic!("attempt {attempt}: expected NoSpace, got {other:?}"),
        }
        assert_eq!(
            entries(fs.path()),
            Vec::<PathBuf>::new(),
            "attempt {attempt}"
        );
    }
    let err = Publisher::open_or_create(big.to_str().unwrap(), &options(64 << 20)).unwrap_err();
    assert!(
        err.to_string().contains("cannot reserve") && err.to_string().contains("big.ring"),
        "{err}"
    );

    // Space is taken at creation, not when pages are first written: a second ring that would
    // fit only if the first were sparse is refused.
    let first = fs.path().join("first.ring");
    drop(Publisher::create(first.to_str().unwrap(), &options(4 << 20)).unwrap());
    let second = fs.path().join("second.ring");
    assert!(matches!(
        Publisher::create(second.to_str().unwrap(), &options(4 << 20)),
        Err(Error::NoSpace { .. })
    ));

    // With the rest of the file system filled up, a writer process still writes every page of
    // the first ring (several laps) and exits normally instead of dying of SIGBUS.
    let filler = fill(fs.path());
    let writer = child(
        "writer",
        &first,
        &[("FROM", "1".into()), ("TO", "40000".into())],
    );
    finish(
        writer,
        Duration::from_secs(120),
        "writer on a full file system",
    );
    std::fs::remove_file(filler).unwrap();
}

#[test]
fn opening_a_ring_whose_size_keeps_changing_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("flip.ring");
    let capacity = 1 << 20;
    // An empty ring: a reader that starts at its tail touches only the first page, which the
    // flipped file always has, so nothing here can fault; what is tested is the validation.
    drop(Publisher::create(ring.to_str().unwrap(), &options(capacity)).unwrap());
    let stop = dir.path().join("stop");
    let flipper = child(
        "flipper",
        &ring,
        &[
            ("SIZE", (HEADER_LEN as u64 + capacity).to_string()),
            ("STOP", stop.display().to_string()),
        ],
    );
    let (mut opened, mut refused, mut panics) = (0u32, 0u32, 0u32);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while opened + refused < 3000 || opened == 0 || refused == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{opened} opened, {refused} refused: the flipper does not seem to run"
        );
        let attempt = std::panic::catch_unwind(|| {
            Subscriber::open(ring.to_str().unwrap())
                .and_then(|b| b.start(Start::Latest))
                .map(|s| s.committed_block())
        });
        match attempt {
            Ok(Ok(None)) => opened += 1,
            Ok(Ok(Some(b))) => panic!("an empty ring reports block {b}"),
            Ok(Err(Error::Truncated { .. } | Error::NotARing { .. } | Error::Corrupt { .. })) => {
                refused += 1
            }
            Ok(Err(e)) => panic!("unexpected error: {e}"),
            Err(_) => panics += 1,
        }
    }
    std::fs::write(&stop, b"").unwrap();
    finish(flipper, Duration::from_secs(30), "flipper");
    assert_eq!(panics, 0, "{opened} opened, {refused} refused");
}
