//! `ring-to-nats`: publish every op of a ring into a JetStream stream (see the crate docs for
//! the format and the guarantees).

use crate::nats::{self, Backoff, nap};
use crate::wire::{BlockEndMsg, ForkMsg, GapMsg, Msg, OpMsg, branch_of, check_prefix, unhex};
use crate::{Error, default_prefix};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use consumer_sdk::{Cursor, Event, RecvError, Start, Subscriber};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Where a sender starts when the stream is new (empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest whole block in the ring.
    Earliest,
    /// Blocks committed from now on.
    Latest,
}

/// Settings of `ring-to-nats`.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Ring name or path.
    pub ring: String,
    /// NATS server URL.
    pub nats: String,
    /// Stream name (created when missing).
    pub stream: String,
    /// Subject prefix; `None`: [`default_prefix`] of the ring.
    pub prefix: Option<String>,
    /// A new stream drops messages older than this.
    pub max_age: Duration,
    /// A new stream drops its oldest messages beyond this many bytes.
    pub max_bytes: i64,
    /// A new stream's de-duplication window.
    pub duplicate_window: Duration,
    /// Publishes sent whose acks are still awaited, at most.
    pub max_in_flight: usize,
    /// How long to wait for one ack (and for JetStream API replies).
    pub ack_timeout: Duration,
    /// Where to start when the stream is empty.
    pub from: StartAt,
}

/// Publish the ring into the stream until `stop` is raised. NATS failures are retried with
/// backoff; what returns an error is a fault of the settings, the ring or the stream's
/// contents.
pub async fn run(cfg: &SenderConfig, stop: Arc<AtomicBool>) -> Result<(), Error> {
    let Some(probe) = open_ring(&cfg.ring, &stop, Start::Latest).await? else {
        return Ok(());
    };
    let prefix = match &cfg.prefix {
        Some(p) => p.clone(),
        None => default_prefix(&probe),
    };
    drop(probe);
    check_prefix(&prefix).map_err(|e| Error::Config(e.to_string()))?;
    let Some(client) = nats::connect(&cfg.nats, "ring-to-nats", &stop).await? else {
        return Ok(());
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(cfg.ack_timeout)
        .max_ack_inflight(cfg.max_in_flight + 1)
        .build(client);
    let mut backoff = Backoff::default();
    loop {
        let mut session = Session::new(cfg, &js, &prefix);
        match session.run(&stop, &mut backoff).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => {
                let wait = backoff.next_wait();
                warn!(error = %e, retry_in = ?wait, "publishing interrupted; resuming after the stream's last message");
                if !nap(wait, &stop).await {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Open the ring at `start`, waiting (and saying so) while it does not exist yet.
async fn open_ring(
    ring: &str,
    stop: &Arc<AtomicBool>,
    start: Start,
) -> Result<Option<Subscriber>, Error> {
    let mut backoff = Backoff::default();
    loop {
        match Subscriber::open(ring) {
            Ok(b) => return Ok(Some(b.stop_flag(stop.clone()).start(start)?)),
            Err(consumer_sdk::Error::NotFound { path }) => {
                let wait = backoff.next_wait();
                warn!(ring = %path.display(), retry_in = ?wait, "no ring yet; waiting for its broadcaster");
                if !nap(wait, stop).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Where publishing resumes, from the stream's last message.
#[derive(Debug)]
struct Resume {
    start: Start,
    /// The last block end in the stream.
    prev: Option<u64>,
    /// First block number the stream does not hold whole yet.
    floor: Option<u64>,
    /// A block whose first ops the stream holds, but not its end: (block, ops published).
    partial: Option<(u64, u64)>,
    /// The stream's branch (see [`crate::wire::H_BRANCH`]).
    branch: u64,
    /// Ops of this block through this index are in the stream already.
    skip_through: Option<(u64, u32)>,
}

/// Loss noticed but not published yet (published with the next block, once its number is known).
#[derive(Debug)]
struct Loss {
    /// Extra block range reported by an upstream gap notice.
    from: Option<u64>,
    /// Ops lost; `None` once any part of the loss is of unknown size.
    ops: Option<u64>,
}

/// One connection's worth of publishing: from the stream's last message until an error.
struct Session<'a> {
    cfg: &'a SenderConfig,
    js: &'a jetstream::Context,
    prefix: &'a str,
    /// Sequence the last message sent will get in the stream.
    last_seq: u64,
    in_flight: VecDeque<(u64, PublishAckFuture)>,
    prev: Option<u64>,
    floor: Option<u64>,
    partial: Option<(u64, u64)>,
    loss: Option<Loss>,
    /// Fork notices the stream holds (see [`crate::wire::H_BRANCH`]).
    branch: u64,
    /// Ops of this block through this index are in the stream already (resuming a block the
    /// stream holds a part of).
    skip_through: Option<(u64, u32)>,
}

/// Raises the reading thread's stop flag when the session ends, however it ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Relaxed: a flag with no data attached.
        self.0.store(true, Ordering::Relaxed);
    }
}

impl<'a> Session<'a> {
    fn new(cfg: &'a SenderConfig, js: &'a jetstream::Context, prefix: &'a str) -> Session<'a> {
        Session {
            cfg,
            js,
            prefix,
            last_seq: 0,
            in_flight: VecDeque::new(),
            prev: None,
            floor: None,
            partial: None,
            loss: None,
            branch: 0,
            skip_through: None,
        }
    }

    async fn run(&mut self, stop: &Arc<AtomicBool>, backoff: &mut Backoff) -> Result<(), Error> {
        let stream = self.ensure_stream().await?;
        let state = stream.cached_info().state.clone();
        let resume = self.resume_point(&stream, &state).await?;
        info!(
            stream = %self.cfg.stream,
            last_seq = state.last_sequence,
            start = ?resume.start,
            "resuming after the stream's last message"
        );
        self.last_seq = state.last_sequence;
        self.prev = resume.prev;
        self.floor = resume.floor;
        self.partial = resume.partial;
        self.branch = resume.branch;
        self.skip_through = resume.skip_through;

        let reader_stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop(reader_stop.clone());
        let Some(sub) = open_ring(&self.cfg.ring, &reader_stop, resume.start).await? else {
            return Ok(());
        };
        let (tx, mut rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("ring-reader".into())
            .spawn(move || read_ring(sub, tx))
            .map_err(|e| Error::Config(format!("cannot start the ring reading thread: {e}")))?;

        let mut published_any = false;
        loop {
            // Relaxed: a flag with no data attached.
            if stop.load(Ordering::Relaxed) {
                return self.drain().await;
            }
            let ev = match rx.try_recv() {
                Ok(ev) => ev,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing to read: settle every ack before waiting.
                    self.drain().await?;
                    match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                        Ok(Some(ev)) => ev,
                        Ok(None) => return Err(Error::Config("the ring reader ended".into())),
                        Err(_) => continue,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Err(Error::Config("the ring reader ended".into()));
                }
            };
            self.handle(ev).await?;
            if !published_any && !self.in_flight.is_empty() {
                published_any = true;
                backoff.reset();
            }
        }
    }

    async fn handle(&mut self, ev: Result<Event, RecvError>) -> Result<(), Error> {
        match ev {
            Ok(Event::Op(op)) => {
                if let Some((block, through)) = self.skip_through {
                    if op.block() == block && op.index_in_block() <= through {
                        return Ok(());
                    }
                    self.skip_through = None;
                }
                self.publish_loss(op.block()).await?;
                let count = match self.partial {
                    Some((b, n)) if b == op.block() => n + 1,
                    _ => 1,
                };
                self.publish(Msg::Op(OpMsg {
                    topic: op.topic().to_string(),
                    block: op.block(),
                    index_in_block: op.index_in_block(),
                    trx_index: op.trx_index(),
                    trx_id: op.trx_id(),
                    op_index: op.op_index(),
                    virtual_op: op.is_virtual(),
                    timestamp: op.timestamp(),
                    body: bytes::Bytes::copy_from_slice(op.payload()),
                }))
                .await?;
                self.partial = Some((op.block(), count));
                if self.floor.is_none() {
                    self.floor = Some(op.block());
                }
            }
            Ok(Event::BlockEnd(end)) => {
                self.skip_through = None;
                self.publish_loss(end.block).await?;
                self.publish(Msg::BlockEnd(BlockEndMsg {
                    block: end.block,
                    id: const_hex::encode(end.block_id),
                    ops: end.op_count,
                    timestamp: end.timestamp,
                    previous: self.prev,
                }))
                .await?;
                self.prev = Some(end.block);
                self.floor = Some(end.block + 1);
                self.partial = None;
            }
            Ok(Event::Fork(fork)) => {
                self.skip_through = None;
                // Blocks lost to a lap before the notice: those the fork orphans are moot; the
                // others (after the stream's last block, before the first orphaned one) are
                // reported before the notice, keeping the stream's keys in order.
                if self.loss.is_some() {
                    match self.prev {
                        Some(prev) if fork.first_block <= prev + 1 => {
                            self.loss = None;
                            self.partial = None;
                            info!(
                                first_block = fork.first_block,
                                "lapped, but every block lost was orphaned by the fork that follows"
                            );
                        }
                        _ => {
                            // The count of records lost includes the orphaned blocks' ops.
                            if let Some(loss) = self.loss.as_mut() {
                                loss.ops = None;
                            }
                            self.publish_loss(fork.first_block).await?;
                        }
                    }
                }
                warn!(
                    ring = %self.cfg.ring,
                    first_block = fork.first_block,
                    last_block = fork.last_block(),
                    "the ring reports a fork; passing the notice on"
                );
                // The notice raises the stream's branch: its messages and the new branch's
                // sort after the orphaned ones although their block numbers repeat.
                self.branch += 1;
                self.publish(Msg::Fork(ForkMsg {
                    first: fork.first_block,
                    orphaned: fork.orphaned_ids.iter().map(const_hex::encode).collect(),
                    ancestor: const_hex::encode(fork.ancestor_id),
                }))
                .await?;
                self.prev = Some(fork.first_block - 1);
                self.floor = Some(fork.first_block);
                self.partial = None;
            }
            Err(RecvError::Lagged { lost, .. }) => {
                let partial = self.partial.take().map_or(0, |(_, n)| n);
                error!(
                    ring = %self.cfg.ring,
                    lost_ops = lost,
                    partial_block_ops = partial,
                    after_block = ?self.prev,
                    "LAPPED: the ring overwrote ops before they were published; publishing a gap notice"
                );
                self.add_loss(Some(lost + partial), None);
            }
            Err(RecvError::Gap {
                last_seen,
                resumed_at,
            }) => {
                self.partial = None;
                error!(
                    ring = %self.cfg.ring,
                    last_seen,
                    resumed_at,
                    "the ring no longer holds the blocks after the stream's last one; publishing a gap notice"
                );
                self.add_loss(None, None);
            }
            Err(RecvError::UpstreamGap {
                from_block,
                lost_ops,
                ..
            }) => {
                warn!(ring = %self.cfg.ring, from_block, ?lost_ops, "the ring reports blocks lost upstream; passing the notice on");
                self.partial = None;
                self.add_loss(lost_ops, Some(from_block));
            }
            Err(RecvError::Stopped) => return self.drain().await,
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn add_loss(&mut self, ops: Option<u64>, from: Option<u64>) {
        let loss = self.loss.get_or_insert(Loss {
            from: None,
            ops: Some(0),
        });
        loss.ops = match (loss.ops, ops) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            _ => None,
        };
        loss.from = match (loss.from, from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Publish the pending loss, if any, as a gap before block `resume`.
    async fn publish_loss(&mut self, resume: u64) -> Result<(), Error> {
        let Some(loss) = self.loss.take() else {
            return Ok(());
        };
        let Some(to) = resume.checked_sub(1) else {
            return Ok(());
        };
        let from = [self.floor, loss.from]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(to)
            .min(to);
        if loss.ops == Some(0) && self.floor.is_some_and(|f| f >= resume) {
            info!(resume, "lapped, but no op was lost");
            return Ok(());
        }
        let gap = GapMsg {
            after: self.prev,
            from,
            to,
            resume,
            ops_lost: loss.ops,
        };
        error!(
            from,
            to,
            resume,
            ops_lost = ?loss.ops,
            "GAP: blocks lost before they were published; gap notice published"
        );
        self.publish(Msg::Gap(gap)).await?;
        self.floor = Some(resume);
        Ok(())
    }

    async fn publish(&mut self, msg: Msg) -> Result<(), Error> {
        let (headers, payload) = msg.encode(self.branch);
        let mut publish = PublishMessage::build()
            .headers(headers)
            .payload(payload)
            .message_id(msg.msg_id(self.prefix, self.branch));
        if self.last_seq > 0 {
            publish = publish.expected_last_sequence(self.last_seq);
        }
        let ack = self
            .js
            .send_publish(msg.subject(self.prefix), publish)
            .await
            .map_err(|e| Error::nats("publishing", e))?;
        self.last_seq += 1;
        self.in_flight.push_back((self.last_seq, ack));
        while self.in_flight.len() >= self.cfg.max_in_flight {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    async fn settle_oldest(&mut self) -> Result<(), Error> {
        let Some((want, ack)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let ack = ack
            .await
            .map_err(|e| Error::nats("waiting for an ack", e))?;
        if ack.duplicate || ack.sequence != want {
            return Err(Error::nats(
                "checking an ack",
                std::io::Error::other(format!(
                    "stored as sequence {} (duplicate: {}) where {want} was due: the stream moved",
                    ack.sequence, ack.duplicate
                )),
            ));
        }
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), Error> {
        while !self.in_flight.is_empty() {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    async fn ensure_stream(&self) -> Result<stream::Stream, Error> {
        let name = &self.cfg.stream;
        if let Some(s) = nats::get_stream(self.js, name).await? {
            let have = nats::stream_prefix(s.cached_info())?;
            if have != self.prefix {
                return Err(Error::Config(format!(
                    "stream {name} carries {have}.>, not {}.>; choose another --stream or --subject",
                    self.prefix
                )));
            }
            return Ok(s);
        }
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.>", self.prefix)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_age: self.cfg.max_age,
            max_bytes: self.cfg.max_bytes,
            duplicate_window: self.cfg.duplicate_window,
            ..Default::default()
        };
        let s = self.js.create_stream(config).await.map_err(|e| {
            use async_nats::jetstream::ErrorCode;
            use async_nats::jetstream::context::CreateStreamErrorKind;
            match e.kind() {
                CreateStreamErrorKind::JetStream(js)
                    if [
                        ErrorCode::STORAGE_RESOURCES_EXCEEDED,
                        ErrorCode::INSUFFICIENT_RESOURCES,
                    ]
                    .contains(&js.error_code()) =>
                {
                    Error::NoRoom {
                        stream: name.clone(),
                        max_bytes: self.cfg.max_bytes,
                        source: Box::new(e),
                    }
                }
                _ => Error::nats("creating the stream", e),
            }
        })?;
        info!(stream = %name, subjects = %format!("{}.>", self.prefix), max_age = ?self.cfg.max_age, max_bytes = self.cfg.max_bytes, "created the stream");
        Ok(s)
    }

    async fn resume_point(
        &self,
        stream: &stream::Stream,
        state: &stream::State,
    ) -> Result<Resume, Error> {
        let fresh = |start| Resume {
            start,
            prev: None,
            floor: None,
            partial: None,
            branch: 0,
            skip_through: None,
        };
        if state.last_sequence == 0 {
            return Ok(fresh(match self.cfg.from {
                StartAt::Earliest => Start::Earliest,
                StartAt::Latest => Start::Latest,
            }));
        }
        let Some(last) = nats::message_at(stream, state.last_sequence).await? else {
            if state.messages == 0 {
                warn!(
                    stream = %self.cfg.stream,
                    "every message of the stream expired, so it no longer says where to resume; starting at the ring's latest block"
                );
                return Ok(fresh(Start::Latest));
            }
            return Err(Error::nats(
                "reading the stream's last message",
                std::io::Error::other("it vanished while being read"),
            ));
        };
        let seq = state.last_sequence;
        let malformed = |e: &dyn std::fmt::Display| {
            Error::Stream(format!(
                "its last message (sequence {seq}) is not one ring-to-nats writes, so there is no telling where to resume: {e}"
            ))
        };
        let branch = branch_of(&last.headers)
            .map_err(|v| malformed(&format!("{} header {v:?}", crate::wire::H_BRANCH)))?;
        let last = nats::decode(self.prefix, last).map_err(|e| malformed(&e))?;
        Ok(match last {
            Msg::BlockEnd(e) => Resume {
                // With its id, so the ring is resumed on the block's own branch.
                start: Start::After(Cursor::after_block(e.block, unhex(&e.id))),
                prev: Some(e.block),
                floor: Some(e.block + 1),
                partial: None,
                branch,
                skip_through: None,
            },
            Msg::Gap(g) => Resume {
                start: Start::After(Cursor::after_block(g.resume - 1, None)),
                prev: g.after,
                floor: Some(g.resume),
                partial: None,
                branch,
                skip_through: None,
            },
            // Just after the ring's notice: its cursor names the block both branches share.
            Msg::Fork(f) => Resume {
                start: Start::After(Cursor::after_block(f.first - 1, unhex(&f.ancestor))),
                prev: Some(f.first - 1),
                floor: Some(f.first),
                partial: None,
                branch,
                skip_through: None,
            },
            Msg::Op(o) => {
                let subject = format!("{}.block", self.prefix);
                let prev = match nats::last_on_subject(stream, self.prefix, &subject).await? {
                    Some(Ok(Msg::BlockEnd(e))) => Some(e.block),
                    Some(Ok(_)) | None => None,
                    Some(Err(e)) => {
                        return Err(Error::Stream(format!(
                            "its last block end is malformed: {e}"
                        )));
                    }
                };
                // A fork notice just before the block's first op says the block is the new
                // branch's: resume just after the ring's notice and pass over the ops the
                // stream holds. Otherwise the op's cursor, which has no block id: the oldest
                // copy of its block the ring holds, the one the stream had when the ring
                // has no fork there.
                let before = seq.checked_sub(u64::from(o.index_in_block) + 1);
                let branch_start = match before {
                    Some(at) if at > 0 => match nats::message_at(stream, at).await? {
                        Some(m) => match nats::decode(self.prefix, m) {
                            Ok(Msg::Fork(f)) if f.first == o.block => {
                                Some(Cursor::after_block(f.first - 1, unhex(&f.ancestor)))
                            }
                            _ => None,
                        },
                        None => None,
                    },
                    _ => None,
                };
                let (start, skip_through) = match branch_start {
                    Some(c) => (c, Some((o.block, o.index_in_block))),
                    None => (
                        Cursor {
                            block: o.block,
                            index_in_block: o.index_in_block,
                            trx_index: o.trx_index,
                            op_index: o.op_index,
                            block_id: None,
                        },
                        None,
                    ),
                };
                Resume {
                    start: Start::After(start),
                    prev,
                    floor: Some(o.block),
                    partial: Some((o.block, u64::from(o.index_in_block) + 1)),
                    branch,
                    skip_through,
                }
            }
        })
    }
}

/// The reading thread: every event of the ring, in order, until the receiver is gone or the
/// subscriber's stop flag is raised.
fn read_ring(mut sub: Subscriber, tx: mpsc::Sender<Result<Event, RecvError>>) {
    loop {
        let ev = sub.recv();
        let last = matches!(
            ev,
            Err(RecvError::Stopped | RecvError::Corrupt { .. } | RecvError::Overrun { .. })
        );
        if tx.blocking_send(ev).is_err() || last {
            return;
        }
    }
}
