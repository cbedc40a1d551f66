//! The ring's writer and reader processes.

use super::{RoleArgs, pace, say, wait_go, writer_report};
use crate::clock::{mono_ns, tighten_timer_slack};
use crate::data::{read_stamp, stamp};
use crate::stats::ReaderTally;
use anyhow::{Context, Result};
use consumer_sdk::{
    CreateOptions, EventRef, OpMeta, Publisher, RecvError, Start, Subscriber, Wait,
};

/// Topic of the end-of-run marker (payload: records sent, `u64` little endian).
const END_TOPIC: &str = "bench_end";

/// Create the ring, then publish the plan: one record per block when paced, `batch` per block
/// when not; then one block holding the end marker.
pub(super) fn writer(a: &RoleArgs) -> Result<()> {
    tighten_timer_slack();
    let size = a.size()?;
    let mut record = size.record()?;
    let options = CreateOptions {
        capacity: a.capacity()?,
        mode: 0o600,
    };
    let mut publisher = Publisher::create(a.path()?, &options).context("creating the ring")?;
    let topic = publisher.topic(size.name())?;
    let end = publisher.topic(END_TOPIC)?;
    say("READY");
    wait_go()?;
    let meta = OpMeta::default();
    let mut block = 1u64;
    let sent = pace::drive(&a.plan()?, |first, n| {
        publisher.begin_block(block, 0, [0; 20])?;
        block += 1;
        for seq in first..first + n {
            stamp(&mut record, mono_ns(), seq);
            publisher.push(topic, &meta, &record)?;
        }
        publisher.commit()?;
        Ok(())
    })?;
    publisher.begin_block(block, 0, [0; 20])?;
    publisher.push(end, &meta, &sent.records.to_le_bytes())?;
    publisher.commit()?;
    say(&writer_report(&sent));
    Ok(())
}

/// Subscribe at the tail and receive every record until the end marker.
pub(super) fn reader(a: &RoleArgs) -> Result<()> {
    let wait = if a.spin()? {
        Wait::BusySpin
    } else {
        Wait::Backoff
    };
    let mut sub = Subscriber::open(a.path()?)?
        .wait(wait)
        .start(Start::Latest)?;
    say("READY");
    let mut tally = ReaderTally::default();
    let sent = loop {
        // By reference: the payload stays in the subscriber's reused buffer.
        match sub.recv_ref() {
            Ok(EventRef::Op(op)) => {
                let now = mono_ns();
                if op.topic() == END_TOPIC {
                    let bytes = op.payload().get(..8).context("short end marker")?;
                    break u64::from_le_bytes(bytes.try_into()?);
                }
                let (sent_ns, seq) = read_stamp(op.payload()).context("record without a stamp")?;
                tally.record(sent_ns, seq, now);
            }
            Ok(EventRef::BlockEnd(_)) => {}
            Ok(EventRef::Fork(f)) => anyhow::bail!("the bench publishes no fork: {f:?}"),
            Err(RecvError::Lagged { lost, .. }) => tally.lapped += lost,
            Err(e) => return Err(e.into()),
        }
    };
    say(&tally.report(sent)?.line());
    Ok(())
}
