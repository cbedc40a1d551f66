//! The iceoryx2 peer (feature `iceoryx2`): a publish-subscribe service of byte slices with one
//! publisher and N subscribers in other processes, plus an event service the publisher
//! notifies once per block so that waiting subscribers wake (the iceoryx2 way to block).
//! Subscribers either wait on that event (`iceoryx2`) or poll (`iceoryx2-spin`).
//!
//! Safe overflow is on: a full subscriber queue drops its oldest sample rather than holding the
//! publisher up, the ring's own rule; such drops show as `lost` (sequence gaps).

use super::{RoleArgs, pace, say, wait_go, writer_report};
use crate::clock::{mono_ns, tighten_timer_slack};
use crate::data::{read_stamp, stamp};
use crate::stats::ReaderTally;
use anyhow::{Context, Result, anyhow};
use iceoryx2::prelude::*;
use std::time::Duration;

/// Samples each subscriber's queue holds.
const QUEUE: usize = 4096;

fn ice<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow!("iceoryx2 {what}: {e:?}"))
}

fn node() -> Result<Node<ipc::Service>> {
    // Its warning that no config file exists (defaults are used) would flood the table.
    set_log_level(LogLevel::Error);
    ice(
        NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>(),
        "node",
    )
}

fn names(a: &RoleArgs) -> Result<(ServiceName, ServiceName)> {
    let base = a.path()?;
    Ok((
        ice(ServiceName::new(base), "service name")?,
        ice(ServiceName::new(&format!("{base}/wake")), "event name")?,
    ))
}

/// Create both services and the publisher, then publish the plan, notifying after each block.
pub(super) fn publisher(a: &RoleArgs) -> Result<()> {
    tighten_timer_slack();
    let size = a.size()?;
    let mut record = size.record()?;
    let readers = a.readers()?;
    let node = node()?;
    let (data_name, wake_name) = names(a)?;
    let service = ice(
        node.service_builder(&data_name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(readers)
            .history_size(0)
            .subscriber_max_buffer_size(QUEUE)
            .enable_safe_overflow(true)
            .create(),
        "publish-subscribe service",
    )?;
    let publisher = ice(
        service
            .publisher_builder()
            .initial_max_slice_len(record.len())
            .create(),
        "publisher",
    )?;
    let wake = ice(
        node.service_builder(&wake_name)
            .event()
            .max_notifiers(1)
            .max_listeners(readers)
            .create(),
        "event service",
    )?;
    let notifier = ice(wake.notifier_builder().create(), "notifier")?;
    say("READY");
    wait_go()?;
    let sent = pace::drive(&a.plan()?, |first, n| {
        for seq in first..first + n {
            stamp(&mut record, mono_ns(), seq);
            let sample = ice(publisher.loan_slice_uninit(record.len()), "loan")?;
            ice(sample.write_from_slice(&record).send(), "send")?;
        }
        ice(notifier.notify(), "notify")?;
        Ok(())
    })?;
    let end = sent.records.to_le_bytes();
    let sample = ice(publisher.loan_slice_uninit(end.len()), "loan")?;
    ice(sample.write_from_slice(&end).send(), "send")?;
    ice(notifier.notify(), "notify")?;
    say(&writer_report(&sent));
    // Keep the services alive until the subscribers have read the end marker.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(())
}

/// Open both services, subscribe, and receive until the end marker (an 8-byte sample).
pub(super) fn subscriber(a: &RoleArgs) -> Result<()> {
    let spin = a.spin()?;
    let node = node()?;
    let (data_name, wake_name) = names(a)?;
    let service = ice(
        node.service_builder(&data_name)
            .publish_subscribe::<[u8]>()
            .open(),
        "open publish-subscribe",
    )?;
    let subscriber = ice(
        service.subscriber_builder().buffer_size(QUEUE).create(),
        "subscriber",
    )?;
    let wake = ice(
        node.service_builder(&wake_name).event().open(),
        "open event",
    )?;
    let listener = ice(wake.listener_builder().create(), "listener")?;
    say("READY");
    let mut tally = ReaderTally::default();
    let sent = 'outer: loop {
        while let Some(sample) = ice(subscriber.receive(), "receive")? {
            let now = mono_ns();
            let payload = sample.payload();
            if payload.len() == 8 {
                break 'outer u64::from_le_bytes(payload.try_into().context("end marker")?);
            }
            let (sent_ns, seq) = read_stamp(payload).context("sample without a stamp")?;
            tally.record(sent_ns, seq, now);
        }
        if spin {
            std::hint::spin_loop();
        } else {
            ice(
                listener.timed_wait(|_| {}, Duration::from_millis(50)),
                "wait",
            )?;
        }
    };
    say(&tally.report(sent)?.line());
    Ok(())
}
