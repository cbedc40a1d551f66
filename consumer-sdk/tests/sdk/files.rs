//! The file layer against its environment, with real files, file systems and processes.
//!
//! Tests that need root (mounting a tmpfs, switching to `nobody`) print why they skip
//! otherwise; CI runs them as root.

use crate::processes::{child, child_via, finish};
use consumer_sdk::layout::HEADER_LEN;
use consumer_sdk::{CreateOptions, Error, ProducerStatus, Publisher, Start, Subscriber};
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
        // Lazy: detaches the file system even if something still holds a file in it, so the
        // temporary directory can always be removed.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
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

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn assert_refused<T: std::fmt::Debug>(
    what: &str,
    got: Result<T, Error>,
    path: &Path,
    owner: u32,
    mode: u32,
) {
    match got {
        Err(
            ref e @ Error::Permissions {
                path: ref p,
                owner: o,
                mode: m,
                ..
            },
        ) => {
            assert_eq!((p.as_path(), o, m), (path, owner, mode), "{what}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(&path.display().to_string())
                    && text.contains(&format!("uid {owner}"))
                    && text.contains(&format!("{mode:04o}")),
                "{what}: {text}"
            );
        }
        other => panic!("{what}: expected a permissions error, got {other:?}"),
    }
}

#[test]
fn a_ring_planted_by_another_user_is_refused_by_writer_and_readers() {
    use std::os::unix::fs::MetadataExt;
    if !is_root() {
        eprintln!(
            "foreign ring: skipped: creating a file as `nobody` needs root (CI runs tests as root)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o777);
    let ring = dir.path().join("planted.ring");
    // A copy of this test binary that `nobody` can run wherever the build directory lives.
    let exe = dir.path().join("sdk-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    chmod(&exe, 0o755);
    let planter = child_via(
        &[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
            exe.to_str().unwrap(),
        ],
        "foreign",
        &ring,
        &[],
    );
    finish(planter, Duration::from_secs(30), "ring creation as nobody");
    let meta = std::fs::symlink_metadata(&ring).unwrap();
    let nobody = meta.uid();
    assert_ne!(nobody, 0, "the ring was meant to be created by nobody");
    assert_eq!(meta.mode() & 0o777, 0o666);
    let name = ring.to_str().unwrap();

    // World-writable and foreign: the writer refuses it (also through open_or_create, which
    // must not replace or adopt it), and so does a reader.
    assert_refused("writer", Publisher::open(name), &ring, nobody, 0o666);
    assert_refused(
        "open_or_create",
        Publisher::open_or_create(name, &CreateOptions::default()),
        &ring,
        nobody,
        0o666,
    );
    assert_refused("reader", Subscriber::open(name), &ring, nobody, 0o666);

    // Writable by its owner only: readers accept it; the writer still refuses another user's.
    chmod(&ring, 0o644);
    assert_refused("writer", Publisher::open(name), &ring, nobody, 0o644);
    Subscriber::open(name)
        .and_then(|b| b.start(Start::Earliest))
        .expect("a reader accepts a ring only its owner may write");

    // Our own ring made group-writable: refused by both sides.
    let own = dir.path().join("own.ring");
    drop(Publisher::create(own.to_str().unwrap(), &CreateOptions::default()).unwrap());
    chmod(&own, 0o620);
    assert_refused(
        "writer",
        Publisher::open(own.to_str().unwrap()),
        &own,
        0,
        0o620,
    );
    assert_refused(
        "reader",
        Subscriber::open(own.to_str().unwrap()),
        &own,
        0,
        0o620,
    );
}

#[test]
fn new_rings_are_private_unless_asked_and_never_writable_by_others() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.ring");
    drop(Publisher::create(private.to_str().unwrap(), &options(4096)).unwrap());
    assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o7777, 0o600);
    let group = dir.path().join("group.ring");
    let opts = options(4096).group_readable();
    drop(Publisher::create(group.to_str().unwrap(), &opts).unwrap());
    assert_eq!(std::fs::metadata(&group).unwrap().mode() & 0o7777, 0o640);
    for mode in [0o666, 0o620, 0o602, 0o400, 0o4600, 0o1600] {
        let path = dir.path().join(format!("m{mode:o}.ring"));
        let opts = CreateOptions {
            mode,
            ..options(4096)
        };
        match Publisher::create(path.to_str().unwrap(), &opts) {
            Err(Error::InvalidMode { mode: m }) => assert_eq!(m, mode),
            other => panic!("mode {mode:o}: {other:?}"),
        }
        assert!(!path.exists());
    }
}

/// Start `sleep` as the process with pid `pid` (free now), by setting the pid namespace's last
/// pid just below it; `None` if other processes keep taking the pid first.
fn spawn_with_pid(pid: u32) -> Option<std::process::Child> {
    for _ in 0..500 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            return None;
        }
        let mut c = Command::new("sleep").arg("60").spawn().unwrap();
        if c.id() == pid {
            return Some(c);
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    None
}

#[test]
fn a_writer_killed_and_its_pid_reused_is_reported_dead() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("live.ring");
    drop(Publisher::create(ring.to_str().unwrap(), &options(1 << 16)).unwrap());
    let marker = dir.path().join("partial");
    let writer = child(
        "writer",
        &ring,
        &[
            ("FROM", "1".into()),
            ("TO", "3".into()),
            ("PARTIAL", marker.display().to_string()),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let sub = Subscriber::open(ring.to_str().unwrap())
        .unwrap()
        .start(Start::Earliest)
        .unwrap();
    let pid = writer.id();
    assert_eq!(
        sub.producer_status(),
        ProducerStatus::Alive {
            pid: u64::from(pid),
            epoch: 2
        }
    );
    // SAFETY: sending SIGKILL to our own child process, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    let mut writer = writer;
    assert!(!writer.wait().unwrap().success());

    let impostor = if is_root() { spawn_with_pid(pid) } else { None };
    match &impostor {
        Some(_) => {
            // SAFETY: signal 0 only checks that the process exists.
            assert_eq!(unsafe { libc::kill(pid as libc::pid_t, 0) }, 0);
        }
        None => eprintln!(
            "pid reuse: not reproduced (needs root and a quiet machine to take pid {pid}); \
             checking the dead writer only"
        ),
    }
    // Dead at once: the heartbeat is still fresh, and a process with the writer's pid may
    // exist, but nobody holds the writer's lock.
    assert_eq!(
        sub.producer_status(),
        ProducerStatus::Dead {
            pid: u64::from(pid),
            epoch: 2
        }
    );
    if let Some(mut c) = impostor {
        let _ = c.kill();
        let _ = c.wait();
    }
}
