//! `nats-to-ring`: rebuild a ring from the stream `ring-to-nats` writes (see the crate docs).

use crate::Error;
use crate::nats::{self, Backoff, nap};
use crate::wire::{BlockEndMsg, ForkMsg, GapMsg, Msg, OpMsg, WireError, branch_of, unhex};
use async_nats::jetstream::{self, consumer};
use consumer_sdk::{CreateOptions, OpMeta, Publisher, TopicId};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

/// Settings of `nats-to-ring`.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// NATS server URL.
    pub nats: String,
    /// Stream name.
    pub stream: String,
    /// Ring name or path (created when missing).
    pub ring: String,
    /// Data capacity of a new ring, bytes (a power of two).
    pub ring_size: u64,
    /// Longest silence of the server (no message, no heartbeat) before reconnecting.
    pub heartbeat: Duration,
}

/// Copy the stream into the ring until `stop` is raised. NATS failures (server restarts, the
/// stream deleted or missing) are retried with backoff.
pub async fn run(cfg: &ReceiverConfig, stop: Arc<AtomicBool>) -> Result<(), Error> {
    let options = CreateOptions {
        capacity: cfg.ring_size,
        ..CreateOptions::default()
    };
    let mut publisher = Publisher::open_or_create(&cfg.ring, &options)?;
    info!(
        ring = %publisher.path().display(),
        last_block = ?publisher.last_block(),
        epoch = publisher.epoch(),
        "ring open"
    );
    let Some(client) = nats::connect(&cfg.nats, "nats-to-ring", &stop).await? else {
        return Ok(());
    };
    let js = jetstream::new(client);
    let mut backoff = Backoff::default();
    let mut topics = HashMap::new();
    loop {
        let mut session = Assembler::new(&mut publisher, &mut topics);
        match session.run(cfg, &js, &stop, &mut backoff).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => {
                let wait = backoff.next_wait();
                warn!(error = %e, retry_in = ?wait, "reading the stream interrupted; resuming after the ring's last block");
                if !nap(wait, &stop).await {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Blocks lost before the next block committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Notice {
    from: u64,
    to: u64,
    ops: Option<u64>,
}

/// The block being received.
#[derive(Debug)]
struct Partial {
    block: u64,
    ops: Vec<OpMsg>,
    /// An op is missing: the block cannot be written.
    broken: bool,
}

/// Turns the stream into whole blocks in the ring.
struct Assembler<'a> {
    publisher: &'a mut Publisher,
    topics: &'a mut HashMap<String, TopicId>,
    open: Option<Partial>,
    notice: Option<Notice>,
    /// The stream's branch (see [`crate::wire::H_BRANCH`]) the ring's last block is on.
    branch: u64,
    /// A fork notice read, for the next block written.
    fork: Option<ForkMsg>,
}

impl<'a> Assembler<'a> {
    fn new(
        publisher: &'a mut Publisher,
        topics: &'a mut HashMap<String, TopicId>,
    ) -> Assembler<'a> {
        Assembler {
            publisher,
            topics,
            open: None,
            notice: None,
            branch: 0,
            fork: None,
        }
    }

    async fn run(
        &mut self,
        cfg: &ReceiverConfig,
        js: &jetstream::Context,
        stop: &AtomicBool,
        backoff: &mut Backoff,
    ) -> Result<(), Error> {
        let Some(mut stream) = nats::get_stream(js, &cfg.stream).await? else {
            return Err(Error::nats(
                "looking up the stream",
                std::io::Error::other(format!(
                    "stream {} does not exist (yet); is ring-to-nats running?",
                    cfg.stream
                )),
            ));
        };
        let prefix = nats::stream_prefix(stream.cached_info())?;
        let last = self.publisher.last_block();
        let (start, branch) = self.start_sequence(&mut stream, &prefix).await?;
        self.branch = branch;
        info!(stream = %cfg.stream, %prefix, ring_last_block = ?last, start_sequence = start, branch, "reading the stream");
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats("creating a consumer", e))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(1000)
            .heartbeat(cfg.heartbeat)
            .expires(cfg.heartbeat * 4)
            .messages()
            .await
            .map_err(|e| Error::nats("starting to read", e))?;
        let mut beat = Instant::now();
        let mut reset = false;
        loop {
            // Relaxed: a flag with no data attached.
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if beat.elapsed() >= Duration::from_millis(500) {
                self.publisher.heartbeat();
                beat = Instant::now();
            }
            let next = tokio::time::timeout(Duration::from_millis(200), messages.next()).await;
            let message = match next {
                Err(_) => continue,
                Ok(None) => {
                    return Err(Error::nats(
                        "reading the stream",
                        std::io::Error::other("the consumer ended"),
                    ));
                }
                Ok(Some(Err(e))) => return Err(Error::nats("reading the stream", e)),
                Ok(Some(Ok(m))) => m,
            };
            let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            let headers = message.headers.clone().unwrap_or_default();
            let msg = Msg::decode(
                &prefix,
                message.subject.as_str(),
                &headers,
                message.payload.clone(),
            )
            .and_then(|msg| {
                let branch = branch_of(&headers).map_err(|v| WireError::Header {
                    subject: message.subject.to_string(),
                    name: crate::wire::H_BRANCH,
                    value: Some(v),
                })?;
                Ok((msg, branch))
            });
            match msg {
                Ok((msg, branch)) => self.apply(msg, branch)?,
                // Its block (if it was an op) will lack an op and be reported lost.
                Err(e) => error!(seq, error = %e, "skipping a malformed message"),
            }
            if !reset {
                reset = true;
                backoff.reset();
            }
        }
    }

    /// The first stream sequence after the ring's last block, and the branch that block is on.
    ///
    /// On a stream without fork notices: bisecting on the `Block` header. After forks, block
    /// numbers repeat on each branch: the ring's last block is looked for on the newest branch
    /// first, then on older ones, by bisecting on (`Branch`, `Block`) and checking that the
    /// message before the place found is that block's end (or a fork notice after it) with the
    /// ring's own block id.
    async fn start_sequence(
        &self,
        stream: &mut jetstream::stream::Stream,
        prefix: &str,
    ) -> Result<(u64, u64), Error> {
        let last = self.publisher.last_block();
        let last_id = self.publisher.last_block_id().map(|(id, _)| id);
        for _ in 0..8 {
            let state = stream
                .info()
                .await
                .map_err(|e| Error::nats("reading the stream's state", e))?
                .state
                .clone();
            let Some(last) = last else {
                return Ok((state.first_sequence.max(1), 0));
            };
            if state.messages == 0 {
                return Ok((state.last_sequence + 1, 0));
            }
            let newest =
                match nats::last_on_subject(stream, prefix, &format!("{prefix}.fork")).await? {
                    Some(Ok(_)) => nats::branch_at_end(stream, state.last_sequence).await?,
                    _ => Some(0),
                };
            let Some(newest) = newest else { continue };
            let mut found = None;
            let mut newest_after = None;
            let mut vanished = false;
            for branch in (0..=newest).rev() {
                let Some(seq) = nats::first_after(
                    stream,
                    state.first_sequence,
                    state.last_sequence,
                    (branch, last),
                )
                .await?
                else {
                    vanished = true;
                    break;
                };
                newest_after.get_or_insert((seq, branch));
                if newest == 0 || seq <= state.first_sequence {
                    found = Some((seq, branch));
                    break;
                }
                // The message before is the end of the ring's last block when that block is on
                // this branch (and a notice orphaning it, if any, comes at `seq`).
                let Some(before) = nats::message_at(stream, seq - 1).await? else {
                    vanished = true;
                    break;
                };
                let here = matches!(
                    nats::decode(prefix, before),
                    Ok(Msg::BlockEnd(e)) if e.block == last && unhex(&e.id) == last_id
                );
                if here {
                    found = Some((seq, branch));
                    break;
                }
            }
            if vanished {
                continue;
            }
            if found.is_none() {
                warn!(
                    ring_last_block = last,
                    "the ring's last block is on no branch of the stream; reading on after that block number on the newest branch"
                );
            }
            return Ok(found
                .or(newest_after)
                .unwrap_or((state.last_sequence + 1, newest)));
        }
        Err(Error::nats(
            "looking for the ring's last block in the stream",
            std::io::Error::other("messages kept expiring during the search"),
        ))
    }

    /// Take one message of branch `branch` in stream order.
    fn apply(&mut self, msg: Msg, branch: u64) -> Result<(), Error> {
        let last = self.publisher.last_block();
        // After a fork notice the new branch's numbers repeat the ring's: they are news.
        let stale = branch < self.branch
            || (branch == self.branch
                && self.fork.is_none()
                && last.is_some_and(|l| msg.key() <= l));
        if stale {
            debug!(key = msg.key(), branch, "already in the ring");
            return Ok(());
        }
        self.branch = branch;
        match msg {
            Msg::Op(op) => self.op(op),
            Msg::BlockEnd(end) => return self.block_end(end),
            Msg::Gap(gap) => self.gap(gap),
            Msg::Fork(fork) => self.fork(fork),
        }
        Ok(())
    }

    fn fork(&mut self, fork: ForkMsg) {
        if let Some(p) = self.open.take() {
            warn!(
                block = p.block,
                "a block without its end in the stream before a fork notice; dropped"
            );
        }
        warn!(
            first_block = fork.first,
            last_block = fork.last(),
            "the source reports a fork; its readers here will be told"
        );
        self.fork = Some(fork);
    }

    /// The ids of the ring's blocks `first..=last`, read back from the ring itself (its own
    /// fork notices applied); where it cannot say (a block number it lacks, the ring unreadable),
    /// as the fork notice read names them; else zero. The last one is always the ring's own.
    fn orphaned_ids(&self, fork: Option<&ForkMsg>, first: u64, last: u64) -> Vec<[u8; 20]> {
        let held = self.publisher.block_ids(first);
        let mut ids: Vec<[u8; 20]> = (first..=last)
            .map(|n| {
                let from_ring = held.iter().find(|(b, _)| *b == n).map(|(_, id)| *id);
                let from_notice = fork
                    .and_then(|f| n.checked_sub(f.first))
                    .and_then(|i| fork?.orphaned.get(i as usize))
                    .and_then(|id| unhex(id));
                from_ring.or(from_notice).unwrap_or([0; 20])
            })
            .collect();
        if let (Some(slot), Some((id, _))) = (ids.last_mut(), self.publisher.last_block_id()) {
            *slot = id;
        }
        ids
    }

    fn op(&mut self, op: OpMsg) {
        if let Some(p) = self.open.as_mut()
            && p.block == op.block
        {
            let have = p.ops.len() as u64;
            let index = u64::from(op.index_in_block);
            if p.broken || index < have {
                // Part of a block that cannot be written, or an op seen already.
                return;
            }
            if index > have {
                warn!(
                    block = op.block,
                    index,
                    expected = have,
                    "an op of this block is missing from the stream"
                );
                p.broken = true;
                p.ops.clear();
                return;
            }
            p.ops.push(op);
            return;
        }
        if let Some(old) = self.open.take() {
            warn!(
                block = old.block,
                "a block without its end in the stream; it is lost"
            );
            self.lost(old.block, old.block, None);
        }
        let broken = op.index_in_block != 0;
        if broken {
            warn!(
                block = op.block,
                index = op.index_in_block,
                "the stream holds this block only from a later op"
            );
        }
        self.open = Some(Partial {
            block: op.block,
            ops: if broken { Vec::new() } else { vec![op] },
            broken,
        });
    }

    fn gap(&mut self, gap: GapMsg) {
        // A partial block before the gap is part of it (and of its op count).
        if self.open.as_ref().is_some_and(|p| p.block < gap.resume) {
            self.open = None;
        }
        error!(
            from = gap.from,
            to = gap.to,
            ops_lost = ?gap.ops_lost,
            "the source lost blocks; its readers here will be told"
        );
        self.lost(gap.from, gap.to, gap.ops_lost);
    }

    fn lost(&mut self, from: u64, to: u64, ops: Option<u64>) {
        let last = self.publisher.last_block();
        // Only blocks after the ring's last can be reported; what was cut off is not counted.
        let floor = last.map_or(0, |l| l + 1);
        let (from, ops) = if from < floor {
            (floor, None)
        } else {
            (from, ops)
        };
        if from > to {
            return;
        }
        self.notice = Some(match self.notice {
            None => Notice { from, to, ops },
            Some(n) => Notice {
                from: n.from.min(from),
                to: n.to.max(to),
                ops: n.ops.zip(ops).map(|(a, b)| a.saturating_add(b)),
            },
        });
    }

    fn block_end(&mut self, end: BlockEndMsg) -> Result<(), Error> {
        let open = self.open.take();
        if let Some(p) = open.as_ref().filter(|p| p.block != end.block) {
            warn!(
                block = p.block,
                "a block without its end in the stream; it is lost"
            );
            self.lost(p.block, p.block, None);
        }
        let ops = match open {
            Some(p) if p.block == end.block => {
                if p.broken || p.ops.len() as u64 != end.ops {
                    None
                } else {
                    Some(p.ops)
                }
            }
            _ if end.ops == 0 => Some(Vec::new()),
            _ => None,
        };
        let Some(ops) = ops else {
            warn!(
                block = end.block,
                ops = end.ops,
                "the stream lacks ops of this block; it is lost"
            );
            self.lost(end.block, end.block, None);
            return Ok(());
        };
        // Blocks between the ring's last and the one before this are missing from the stream
        // (expired, or the stream was recreated later on), unless a notice covers them already.
        let last = self.publisher.last_block();
        if let (Some(last), Some(previous)) = (last, end.previous) {
            let covered = self.notice.map_or(last, |n| n.to.max(last));
            if previous > covered {
                warn!(
                    ring_last = last,
                    previous, "blocks are missing from the stream; its readers here will be told"
                );
                self.lost(covered + 1, previous, None);
            }
        }
        self.write(&end, &ops)
    }

    fn write(&mut self, end: &BlockEndMsg, ops: &[OpMsg]) -> Result<(), Error> {
        let id = unhex(&end.id).unwrap_or([0; 20]);
        // A block at or below the ring's last one comes after a fork notice: it replaces the
        // ring's blocks from its number on, which its readers are told were orphaned.
        let replaces = self
            .publisher
            .last_block()
            .filter(|&last| end.block <= last);
        let fork = self.fork.take();
        let mut notice = self.notice;
        match replaces {
            Some(last) => {
                if fork.is_none() {
                    warn!(
                        block = end.block,
                        ring_last = last,
                        "a block the ring holds already, without a fork notice; skipped"
                    );
                    return Ok(());
                }
                if let Some(f) = fork.as_ref().filter(|f| f.first < end.block) {
                    error!(
                        first_block = f.first,
                        block = end.block,
                        "the stream lacks the new branch's first blocks; the ring's readers are told of the fork from this block on only"
                    );
                }
                let orphaned = self.orphaned_ids(fork.as_ref(), end.block, last);
                let ancestor = fork
                    .as_ref()
                    .filter(|f| f.first == end.block)
                    .and_then(|f| unhex(&f.ancestor))
                    .unwrap_or([0; 20]);
                self.publisher
                    .begin_fork(end.block, end.timestamp, id, ancestor, &orphaned)?;
                // Blocks lost before the orphaned ones are no longer news.
                notice = None;
            }
            None => self.publisher.begin_block(end.block, end.timestamp, id)?,
        }
        let publisher = &mut *self.publisher;
        let written = (|| {
            if let Some(n) = notice.filter(|n| n.to < end.block) {
                publisher.gap(n.from, n.to, n.ops)?;
            }
            for op in ops {
                let topic = match self.topics.get(&op.topic) {
                    Some(&t) => t,
                    None => {
                        let t = publisher.topic(&op.topic)?;
                        self.topics.insert(op.topic.clone(), t);
                        t
                    }
                };
                let meta = OpMeta {
                    trx_index: op.trx_index,
                    trx_id: op.trx_id,
                    op_index: op.op_index,
                    virtual_op: op.virtual_op,
                };
                publisher.push(topic, &meta, &op.body)?;
            }
            publisher.commit()
        })();
        if let Err(e) = written {
            publisher.abort_block();
            return Err(e.into());
        }
        self.notice = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consumer_sdk::{Event, RecvError, Start, Subscriber};

    fn op(block: u64, index: u32) -> Msg {
        Msg::Op(OpMsg {
            topic: "vote".into(),
            block,
            index_in_block: index,
            trx_index: index,
            trx_id: [index as u8; 20],
            op_index: 0,
            virtual_op: false,
            timestamp: 7,
            body: bytes::Bytes::from(format!("{{\"b\":{block},\"i\":{index}}}")),
        })
    }

    fn end(block: u64, ops: u64, previous: Option<u64>) -> Msg {
        Msg::BlockEnd(BlockEndMsg {
            block,
            id: const_hex::encode([block as u8; 20]),
            ops,
            timestamp: 7,
            previous,
        })
    }

    /// Feed `msgs` to an assembler over a fresh ring; what a reader of the ring then sees, as
    /// `(block, index)` for ops, `(block, u32::MAX)` for block ends, errors for reports.
    fn feed(msgs: Vec<Msg>) -> Vec<Result<(u64, u32), RecvError>> {
        feed_events(msgs)
            .into_iter()
            .map(|ev| match ev {
                Ok(Event::Op(o)) => Ok((o.block(), o.index_in_block())),
                Ok(Event::BlockEnd(e)) => Ok((e.block, u32::MAX)),
                Ok(Event::Fork(f)) => Err(f.into()),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// Feed `msgs` (each fork notice raising the branch) to an assembler over a fresh ring;
    /// every event and report a reader of the ring then gets.
    fn feed_events(msgs: Vec<Msg>) -> Vec<Result<Event, RecvError>> {
        let dir = tempfile::tempdir().unwrap();
        let ring = dir.path().join("r");
        let ring = ring.to_str().unwrap();
        let mut publisher = Publisher::create(ring, &CreateOptions::default()).unwrap();
        let mut topics = HashMap::new();
        let mut a = Assembler::new(&mut publisher, &mut topics);
        let mut branch = 0;
        for m in msgs {
            branch += u64::from(matches!(m, Msg::Fork(_)));
            a.apply(m, branch).unwrap();
        }
        let mut sub = Subscriber::open(ring)
            .unwrap()
            .start(Start::Earliest)
            .unwrap();
        let mut out = Vec::new();
        loop {
            match sub.try_recv() {
                Ok(Some(ev)) => out.push(Ok(ev)),
                Ok(None) => return out,
                Err(e) => out.push(Err(e)),
            }
        }
    }

    fn gap(from: u64, to: u64, ops: Option<u64>) -> Result<(u64, u32), RecvError> {
        Err(RecvError::UpstreamGap {
            from_block: from,
            to_block: to,
            lost_ops: ops,
        })
    }

    const END: u32 = u32::MAX;

    /// The end of block `block` of the branch whose ids are filled with `branch`.
    fn end_on(block: u64, ops: u64, previous: Option<u64>, branch: u8) -> Msg {
        Msg::BlockEnd(BlockEndMsg {
            block,
            id: const_hex::encode([branch.wrapping_add(block as u8); 20]),
            ops,
            timestamp: 7,
            previous,
        })
    }

    fn fork(first: u64, last: u64) -> Msg {
        Msg::Fork(ForkMsg {
            first,
            orphaned: (first..=last)
                .map(|n| const_hex::encode([n as u8; 20]))
                .collect(),
            ancestor: const_hex::encode([(first - 1) as u8; 20]),
        })
    }

    fn forked(first_block: u64, last_block: u64) -> Result<(u64, u32), RecvError> {
        Err(RecvError::Forked {
            first_block,
            last_block,
        })
    }

    #[test]
    fn a_fork_notice_replaces_the_orphaned_blocks_with_the_new_branch() {
        let mut msgs = Vec::new();
        for n in 1..=3 {
            msgs.extend([op(n, 0), end(n, 1, n.checked_sub(1).filter(|&p| p > 0))]);
        }
        msgs.push(fork(2, 3));
        for n in 2..=4 {
            msgs.extend([op(n, 0), end_on(n, 1, Some(n - 1), 0x40)]);
        }
        assert_eq!(
            feed(msgs),
            vec![
                Ok((1, 0)),
                Ok((1, END)),
                Ok((2, 0)),
                Ok((2, END)),
                Ok((3, 0)),
                Ok((3, END)),
                forked(2, 3),
                Ok((2, 0)),
                Ok((2, END)),
                Ok((3, 0)),
                Ok((3, END)),
                Ok((4, 0)),
                Ok((4, END)),
            ]
        );
    }

    #[test]
    fn a_notice_names_the_ids_the_ring_holds_even_after_two_notices_in_a_row() {
        // Blocks 1..=3; then two notices before any block of the new branch: the first
        // orphaning 2..=3 (a branch the stream carried), the second 2..=2 of a branch that
        // never reached this ring. The ring's notice names the ring's own blocks 2 and 3.
        let mut msgs = Vec::new();
        for n in 1..=3 {
            msgs.extend([op(n, 0), end(n, 1, n.checked_sub(1).filter(|&p| p > 0))]);
        }
        msgs.push(fork(2, 3));
        msgs.push(Msg::Fork(ForkMsg {
            first: 2,
            orphaned: vec![const_hex::encode([0x77; 20])],
            ancestor: const_hex::encode([1; 20]),
        }));
        msgs.extend([op(2, 0), end_on(2, 1, Some(1), 0x40)]);
        let forks: Vec<_> = feed_events(msgs)
            .into_iter()
            .filter_map(|ev| match ev {
                Ok(Event::Fork(f)) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(forks.len(), 1);
        assert_eq!(forks[0].first_block, 2);
        assert_eq!(forks[0].orphaned_ids, [[2; 20], [3; 20]]);
        assert_eq!(forks[0].ancestor_id, [1; 20]);
    }

    #[test]
    fn a_repeated_block_without_a_fork_notice_is_skipped_and_a_pending_gap_dropped_at_a_fork() {
        // Blocks 1..=3; a gap notice for blocks 4..=5; a fork orphaning 3 (the gap is no
        // longer news: the new branch goes on from 3).
        let mut msgs = Vec::new();
        for n in 1..=3 {
            msgs.extend([op(n, 0), end(n, 1, n.checked_sub(1).filter(|&p| p > 0))]);
        }
        // Block 2 again, on the same branch: not news.
        msgs.extend([op(2, 0), end(2, 1, Some(1))]);
        msgs.push(Msg::Gap(GapMsg {
            after: Some(3),
            from: 4,
            to: 5,
            resume: 6,
            ops_lost: Some(2),
        }));
        msgs.push(fork(3, 3));
        msgs.extend([op(3, 0), end_on(3, 1, Some(2), 0x40)]);
        assert_eq!(
            feed(msgs),
            vec![
                Ok((1, 0)),
                Ok((1, END)),
                Ok((2, 0)),
                Ok((2, END)),
                Ok((3, 0)),
                Ok((3, END)),
                forked(3, 3),
                Ok((3, 0)),
                Ok((3, END)),
            ]
        );
    }

    #[test]
    fn whole_blocks_once_and_repeats_ignored() {
        let got = feed(vec![
            op(1, 0),
            op(1, 1),
            op(1, 0), // a repeat (the stream holds none, but a resumed read may)
            op(1, 1),
            end(1, 2, None),
            end(1, 2, None), // already in the ring
            op(1, 0),
            end(2, 0, Some(1)),
        ]);
        assert_eq!(
            got,
            vec![Ok((1, 0)), Ok((1, 1)), Ok((1, END)), Ok((2, END))]
        );
    }

    #[test]
    fn a_block_missing_an_op_is_reported_lost() {
        let got = feed(vec![
            op(1, 0),
            end(1, 1, None),
            op(2, 0),
            op(2, 2),
            end(2, 3, Some(1)),
            op(3, 0),
            end(3, 1, Some(2)),
        ]);
        assert_eq!(
            got,
            vec![
                Ok((1, 0)),
                Ok((1, END)),
                gap(2, 2, None),
                Ok((3, 0)),
                Ok((3, END))
            ]
        );
    }

    #[test]
    fn blocks_missing_from_the_stream_are_reported() {
        // Block 5's predecessor in the stream is 4, but the ring ends at 1: 2..=4 are gone.
        let got = feed(vec![
            op(1, 0),
            end(1, 1, None),
            op(5, 0),
            end(5, 1, Some(4)),
        ]);
        assert_eq!(
            got,
            vec![
                Ok((1, 0)),
                Ok((1, END)),
                gap(2, 4, None),
                Ok((5, 0)),
                Ok((5, END))
            ]
        );
        // A block seen only from a later op (the stream was cut inside it) is lost too.
        let got = feed(vec![
            op(1, 0),
            end(1, 1, None),
            op(2, 1),
            end(2, 2, Some(1)),
        ]);
        assert_eq!(got, vec![Ok((1, 0)), Ok((1, END))]);
    }

    #[test]
    fn a_gap_notice_passes_on_with_its_exact_count() {
        let got = feed(vec![
            op(1, 0),
            end(1, 1, None),
            op(2, 0), // the start of a block the source lost: counted in the notice
            Msg::Gap(GapMsg {
                after: Some(1),
                from: 2,
                to: 6,
                resume: 7,
                ops_lost: Some(12),
            }),
            op(7, 0),
            end(7, 1, Some(1)),
        ]);
        assert_eq!(
            got,
            vec![
                Ok((1, 0)),
                Ok((1, END)),
                gap(2, 6, Some(12)),
                Ok((7, 0)),
                Ok((7, END))
            ]
        );
    }

    #[test]
    fn losses_before_one_block_merge_into_one_notice() {
        let got = feed(vec![
            op(1, 0),
            end(1, 1, None),
            op(2, 1),
            end(2, 2, Some(1)),
            Msg::Gap(GapMsg {
                after: Some(2),
                from: 3,
                to: 4,
                resume: 5,
                ops_lost: Some(3),
            }),
            end(5, 0, Some(2)),
        ]);
        assert_eq!(
            got,
            vec![Ok((1, 0)), Ok((1, END)), gap(2, 4, None), Ok((5, END))]
        );
    }
}
