//! The original Node stack as a peer: `benches/node/server.js` (node-ipc 9.x
//! `server.broadcast`) and N `benches/node/client.js` processes, driven like the Rust peers.

use super::{Cell, CellResult, procs, scratch};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether the Node peer can run.
#[derive(Debug, Clone)]
pub(super) enum NodeStatus {
    /// Ready: the scripts' folder and the node-ipc version installed there.
    Ready { dir: PathBuf, version: String },
    /// Not run, and why (printed in the output).
    Skipped(String),
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

fn installed_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("node_modules/node-ipc/package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["version"].as_str().map(str::to_owned)
}

/// Check for `node`, and install the pinned node-ipc with `npm ci` if `node_modules` is missing.
pub(super) fn prepare() -> NodeStatus {
    let dir = scripts_dir();
    match Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => return NodeStatus::Skipped(format!("`node --version` failed ({s})")),
        Err(e) => {
            return NodeStatus::Skipped(format!(
                "`node` not found ({e}); install Node.js to measure it"
            ));
        }
    }
    if installed_version(&dir).is_none() {
        eprintln!("fanout: installing node-ipc in {} (npm ci)", dir.display());
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last = err
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no message");
                return NodeStatus::Skipped(format!(
                    "`npm ci` in {} failed: {last}",
                    dir.display()
                ));
            }
            Err(e) => return NodeStatus::Skipped(format!("`npm` not found ({e})")),
        }
    }
    match installed_version(&dir) {
        Some(v) if v.starts_with("9.") => NodeStatus::Ready { dir, version: v },
        Some(v) => NodeStatus::Skipped(format!(
            "node-ipc {v} installed, the bench wants 9.x (see package.json)"
        )),
        None => NodeStatus::Skipped("node-ipc is not installed after `npm ci`".to_owned()),
    }
}

/// One cell with the Node server and clients.
pub(super) fn run(cell: &Cell, status: &NodeStatus) -> Result<CellResult> {
    let NodeStatus::Ready { dir, .. } = status else {
        anyhow::bail!("node-ipc peer not available");
    };
    let tmp = std::env::temp_dir();
    let sock = scratch(&tmp.to_string_lossy(), "node.sock");
    let body_file = scratch(&tmp.to_string_lossy(), "body.json");
    let record = cell.size.record()?;
    std::fs::write(&body_file, &record[crate::data::STAMP_LEN..]).context("writing the op body")?;
    let mut server = Command::new("node");
    server.arg(dir.join("server.js")).current_dir(dir).args([
        "--path".to_owned(),
        sock.to_string_lossy().into_owned(),
        "--body".to_owned(),
        body_file.to_string_lossy().into_owned(),
        "--readers".to_owned(),
        cell.readers.to_string(),
        "--rate".to_owned(),
        cell.plan.rate.unwrap_or(0).to_string(),
        "--secs".to_owned(),
        cell.plan.secs.to_string(),
        "--batch".to_owned(),
        cell.plan.batch.to_string(),
    ]);
    let outs: Vec<PathBuf> = (0..cell.readers)
        .map(|_| scratch(&tmp.to_string_lossy(), "lat.f64"))
        .collect();
    let result = procs::run_commands(cell, server, |i| {
        let mut c = Command::new("node");
        c.arg(dir.join("client.js"))
            .current_dir(dir)
            .arg("--path")
            .arg(&sock)
            .arg("--out")
            .arg(&outs[i]);
        c
    });
    for p in outs.iter().chain([&sock, &body_file]) {
        let _ = std::fs::remove_file(p);
    }
    result
}

/// The node-ipc version in use, for the header.
pub(super) fn describe(status: &NodeStatus) -> Option<String> {
    match status {
        NodeStatus::Ready { version, .. } => {
            let node = Command::new("node").arg("--version").output().ok();
            let node = node.map_or_else(String::new, |o| {
                String::from_utf8_lossy(&o.stdout).trim().to_owned()
            });
            Some(format!("node-ipc {version} on Node.js {node}"))
        }
        NodeStatus::Skipped(_) => None,
    }
}
