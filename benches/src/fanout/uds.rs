//! The Unix-domain-socket peer: one server writes length-prefixed frames (`u32` little-endian
//! length, then the record) to N client sockets, the transport of the original Node design
//! without Node. A zero length marks the end; the count of records sent follows it.

use super::{RoleArgs, pace, say, wait_go, writer_report};
use crate::clock::{mono_ns, tighten_timer_slack};
use crate::data::{read_stamp, stamp};
use crate::stats::ReaderTally;
use anyhow::{Context, Result, bail};
use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

/// Listen, accept every client, then write each block's frames to each client in turn with
/// one `write` per block and client (blocking: a full client socket holds the server up).
pub(super) fn server(a: &RoleArgs) -> Result<()> {
    tighten_timer_slack();
    let size = a.size()?;
    let mut record = size.record()?;
    let listener = UnixListener::bind(a.path()?).context("binding the socket")?;
    say("READY");
    let mut clients = Vec::new();
    for _ in 0..a.readers()? {
        let (stream, _) = listener.accept()?;
        clients.push(stream);
    }
    wait_go()?;
    let mut frames = Vec::with_capacity(64 << 10);
    let sent = pace::drive(&a.plan()?, |first, n| {
        frames.clear();
        for seq in first..first + n {
            stamp(&mut record, mono_ns(), seq);
            frames.extend_from_slice(&(record.len() as u32).to_le_bytes());
            frames.extend_from_slice(&record);
        }
        for c in &mut clients {
            c.write_all(&frames)?;
        }
        Ok(())
    })?;
    let mut end = 0u32.to_le_bytes().to_vec();
    end.extend_from_slice(&sent.records.to_le_bytes());
    for c in &mut clients {
        c.write_all(&end)?;
    }
    say(&writer_report(&sent));
    Ok(())
}

/// Connect, then read frames until the end marker.
pub(super) fn client(a: &RoleArgs) -> Result<()> {
    let stream = UnixStream::connect(a.path()?).context("connecting")?;
    say("READY");
    let mut input = BufReader::with_capacity(256 << 10, stream);
    let mut tally = ReaderTally::default();
    let mut buf = vec![0u8; 64 << 10];
    let sent = loop {
        let mut len = [0u8; 4];
        input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            let mut n = [0u8; 8];
            input.read_exact(&mut n)?;
            break u64::from_le_bytes(n);
        }
        if len > buf.len() {
            bail!("frame of {len} bytes");
        }
        input.read_exact(&mut buf[..len])?;
        let now = mono_ns();
        let (sent_ns, seq) = read_stamp(&buf[..len]).context("frame without a stamp")?;
        tally.record(sent_ns, seq, now);
    };
    say(&tally.report(sent)?.line());
    Ok(())
}
