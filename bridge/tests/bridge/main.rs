//! The bridges as real processes against a real `nats-server -js` on 127.0.0.1 (each test
//! starts its own on a free port with a temporary store, and kills it at the end, also on a
//! panic). Rings are real files in temporary directories; everything read on the far side is
//! checked op for op against what the source ring was given.
//!
//! * `flow`: the stream's format, plain JSON for any client, exactly once by message id, a
//!   durable consumer across a bridge restart.
//! * `faults`: SIGKILLs of both bridges at random moments, a server restart, NATS unreachable
//!   at start, the stream deleted under the bridges.
//! * `gap`: the source ring laps `ring-to-nats`; the far ring's readers get the exact loss.
//!
//! Where `nats-server` cannot be found the tests print that they are skipped and why.

mod faults;
mod flow;
mod fork;
mod gap;
mod support;

use async_nats::jetstream;
use bridge::wire::{Msg, unhex};
use futures_util::StreamExt;
use support::Rec;

/// Every message of `stream` in order, as records, read by an ephemeral ordered consumer.
pub fn stream_records(
    rt: &tokio::runtime::Runtime,
    js: &jetstream::Context,
    stream: &str,
) -> Vec<(u64, Rec)> {
    stream_messages(rt, js, stream)
        .into_iter()
        .map(|(seq, _, rec)| (seq, rec))
        .collect()
}

/// Every message of `stream` in order: sequence, (`Branch`, `Block`) key, record.
pub fn stream_messages(
    rt: &tokio::runtime::Runtime,
    js: &jetstream::Context,
    stream: &str,
) -> Vec<(u64, (u64, u64), Rec)> {
    rt.block_on(async {
        let mut s = js.get_stream(stream).await.expect("the stream");
        let info = s.info().await.expect("stream info").clone();
        let prefix = info.config.subjects[0].trim_end_matches(".>").to_string();
        let total = info.state.messages;
        let consumer = s
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut out = Vec::new();
        while (out.len() as u64) < total {
            let m = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
                .await
                .expect("the stream delivers all its messages")
                .expect("a message")
                .expect("no error");
            let seq = m.info().expect("info").stream_sequence;
            let msg = Msg::decode(
                &prefix,
                m.subject.as_str(),
                m.headers.as_ref().expect("headers"),
                m.payload.clone(),
            )
            .expect("a well-formed message");
            let headers = m.headers.as_ref().expect("headers");
            let branch = bridge::wire::branch_of(headers).expect("a valid Branch header");
            out.push((seq, (branch, msg.key()), to_rec(msg)));
        }
        out
    })
}

/// A stream message as the record a ring reader would see.
pub fn to_rec(msg: Msg) -> Rec {
    match msg {
        Msg::Op(o) => Rec::Op {
            block: o.block,
            index: o.index_in_block,
            topic: o.topic,
            meta: consumer_sdk::OpMeta {
                trx_index: o.trx_index,
                trx_id: o.trx_id,
                op_index: o.op_index,
                virtual_op: o.virtual_op,
            },
            timestamp: o.timestamp,
            payload: o.body.to_vec(),
        },
        Msg::BlockEnd(e) => Rec::End {
            block: e.block,
            timestamp: e.timestamp,
            id: unhex(&e.id).expect("hex id"),
            ops: e.ops,
        },
        Msg::Gap(g) => Rec::Gap {
            from: g.from,
            to: g.to,
            ops: g.ops_lost,
        },
        Msg::Fork(f) => Rec::Fork {
            first: f.first,
            orphaned: f
                .orphaned
                .iter()
                .map(|id| unhex(id).expect("hex id"))
                .collect(),
        },
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
