//! The two example Procfiles of the NATS bridge, as shipped, under `run.sh`: one swarm
//! replays the demo and publishes it into a real `nats-server` it starts itself; a second
//! swarm, as on another host, copies the stream into its own ring, and its bots print what
//! the first host's bots print. Only the server's port is chosen by the test.
#![cfg(target_os = "linux")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::supervisor::{Swarm, send_signal};
use crate::swarm::{DUMP, pid, wait_long};

/// Where Debian puts the server when it is not on `PATH`.
const EXTRA_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

/// The directory holding `nats-server`, or `None` after printing why the test is skipped.
fn nats_server_dir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .find(|dir| dir.join("nats-server").is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED: nats-server is not installed (not on PATH nor in /usr/sbin); \
             `apt-get install nats-server` (what .ci/run does) makes this test run"
        );
    }
    found
}

/// The repository's `file` under run.sh, with the binaries of this build and the bundled data
/// (as `demo_swarm` does for the main Procfile), `nats-server` on `PATH` and `env` set.
fn example_swarm(file: &str, nats_dir: &Path, env: &[(&str, &str)]) -> Swarm {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let procfile = std::fs::read_to_string(repo.join(file)).expect("the example Procfile");
    let procfile = procfile.replace("--pace 50ms", "--pace 10ms");
    let mut swarm = Swarm::new(&procfile, env);
    let target = swarm.path("target");
    std::fs::create_dir(&target).unwrap();
    let bins = Path::new(DUMP).parent().unwrap();
    for bin in ["broadcaster", "ring-to-nats", "nats-to-ring"] {
        assert!(
            bins.join(bin).exists(),
            "{bin} of this build is missing: run the tests with `cargo test --workspace`"
        );
    }
    std::os::unix::fs::symlink(bins, target.join("release")).unwrap();
    swarm.set_env("CARGO_TARGET_DIR", target.to_str().unwrap());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(nats_dir.to_path_buf()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    swarm.set_env("PATH", path.to_str().unwrap());
    std::os::unix::fs::symlink(repo.join("data"), swarm.path("data")).unwrap();
    swarm
}

#[test]
fn the_nats_example_procfiles_carry_the_demo_to_a_second_swarm() {
    let Some(nats_dir) = nats_server_dir() else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let url = format!("nats://127.0.0.1:{port}");
    let post = "https://steemit.com/@jeniya/gfdgfdgfhb";

    let mut sender = example_swarm(
        "Procfile.nats-sender",
        &nats_dir,
        // The example's stream at its default size (8 GiB) needs that much free disk under
        // the server's store, more than a test machine may have; its size has a test of its own.
        &[
            ("NATS_PORT", &port),
            ("NATS_STREAM_MAX_BYTES", "256MiB"),
            ("RUST_LOG", "info"),
        ],
    );
    sender.start();
    wait_long("the sender's new-posts to print the demo's post", || {
        sender.read("logs/new-posts.log").contains(post)
    });

    let mut receiver = example_swarm(
        "Procfile.nats-receiver",
        &nats_dir,
        &[("NATS_URL", &url), ("RUST_LOG", "info")],
    );
    receiver.start();
    wait_long("the receiver's new-posts to print the demo's post", || {
        receiver.read("logs/new-posts.log").contains(post)
    });
    // A bridge killed on either side comes back and the far side keeps its copy whole.
    for (swarm, name) in [(&sender, "ring-to-nats"), (&receiver, "nats-to-ring")] {
        let old = crate::supervisor::wait_for(name, || pid(swarm, name));
        assert!(send_signal(old, libc::SIGKILL));
        crate::supervisor::wait_for("the bridge to come back", || {
            pid(swarm, name).filter(|&p| p != old)
        });
    }
    wait_long("the receiver's vote-stats to report the votes", || {
        receiver
            .read("logs/vote-stats.log")
            .lines()
            .any(|l| l.starts_with("last ") && !l.contains("votes 0"))
    });
    let far = receiver.read("logs/new-posts.log");
    assert_eq!(far.lines().filter(|l| *l == post).count(), 1, "{far}");
    for log in ["logs/nats-to-ring.log", "logs/vote-stats.log"] {
        let text = receiver.read(log);
        assert!(!text.contains("gap"), "{log} reports a gap:\n{text}");
    }
    assert!(receiver.stop_with(libc::SIGTERM).success());
    assert!(sender.stop_with(libc::SIGTERM).success());
}
