//! Carry a host's ring to other hosts through NATS JetStream, and back into rings there.
//!
//! `ring-to-nats` ([`sender`]) reads a ring and publishes every op, block end, gap and fork into a
//! JetStream stream; `nats-to-ring` ([`receiver`]) reads the stream and writes whole blocks into
//! a local ring, so the bots of that host run unchanged. Any NATS client can read the stream: the
//! payloads are the ops' JSON as the chain's API nodes sent them.
//!
//! # The stream
//!
//! One stream (file storage, retention by age and size) holds the subjects `PREFIX.>`:
//!
//! | subject | payload | headers |
//! |---|---|---|
//! | `PREFIX.op.TYPE` (`steem.op.comment`) | the op body, exactly as in the ring | `Block`, `Op-In-Block`, `Trx-Index`, `Trx-Id`, `Op-Index`, `Virtual`, `Timestamp` |
//! | `PREFIX.block` | `{"block","id","ops","timestamp","previous"}` | `Block` |
//! | `PREFIX.gap` | `{"after","from","to","resume","ops_lost"}` | `Block` (= `resume`) |
//! | `PREFIX.fork` | `{"first","orphaned":[ID,..],"ancestor"}` | `Block` (= `first`), `Branch` |
//!
//! Every message has a `Nats-Msg-Id` (`CHAIN/BLOCK/INDEX_IN_BLOCK`, `CHAIN/BLOCK/end`,
//! `CHAIN/gap/RESUME`), so JetStream drops a message published twice within its duplicate
//! window. Once the stream carries a fork notice, every message also has a `Branch` header
//! (the fork notices up to and including it), and the ids name the branch
//! (`CHAIN/BRANCH/BLOCK/...`, `CHAIN/gap/BRANCH/RESUME`, `CHAIN/fork/BRANCH`): the new branch's
//! blocks repeat the orphaned ones' numbers and must not be taken for repeats. The ops of a block come in order, then its block end; a consumer that commits whole
//! blocks commits at the block end, whose `ops` says how many ops came before it.
//!
//! # Exactly once, in order
//!
//! The stream is the sender's cursor. At every (re)start it reads the stream's last message and
//! continues the ring right after it. Each publish carries `Nats-Expected-Last-Sequence`, the
//! sequence its predecessor got, so JetStream stores nothing out of order: if one publish is
//! lost (a server restart, a dropped connection), every later one is refused, and the sender
//! starts over from the stream's last message. A killed sender thus never leaves a hole or a
//! duplicate, with or without the duplicate window.
//!
//! The receiver's cursor is its ring: at every (re)start it looks for the first message after
//! the ring's last committed block (bisecting the stream on the `Branch` and `Block` headers,
//! and checking the block's id where forks make numbers repeat) and reads from there, writing a
//! block only when its block end arrived with all its ops. A killed receiver loses only a block
//! it had not committed, and reads it again.
//!
//! # Gaps
//!
//! When the sender's ring laps it, the ops it had not read are gone. It logs that loudly and
//! publishes a `PREFIX.gap` message before the next block it publishes: the block numbers lost
//! and the exact number of ops lost (the ring counts them), including those of a block whose
//! start it had published but not its end (consumers must drop such a partial block). After a
//! restart whose resume point the ring no longer holds, the count is unknown (`null`). The
//! receiver writes a gap notice into its ring ([`consumer_sdk::Publisher::gap`]) at the start
//! of the next block, so its readers get [`consumer_sdk::RecvError::UpstreamGap`]; it does the
//! same when the stream itself lacks blocks (a block end naming a `previous` the ring does not
//! have, a block without all its ops), with an unknown count.
//!
//! # Forks
//!
//! A ring written by a broadcaster following the head carries a fork notice where published
//! blocks were orphaned ([`consumer_sdk::Event::Fork`]). The sender publishes it as a
//! `PREFIX.fork` message, raising the stream's branch, then the new branch's blocks. The
//! receiver writes the notice into its ring ([`consumer_sdk::Publisher::begin_fork`]) with the
//! new branch's first block, so its readers get the same event at the same place. Both resume
//! across a fork after a restart: the sender continues the source ring on the branch of the
//! stream's last message (cursors with block ids), the receiver finds its ring's last block on
//! whichever branch of the stream holds it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod nats;
pub mod receiver;
pub mod sender;
pub mod wire;

use consumer_sdk::Subscriber;

/// What ends a bridge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening or positioning on a ring failed.
    #[error(transparent)]
    Ring(#[from] consumer_sdk::Error),
    /// Writing into the local ring failed.
    #[error("writing the ring: {0}")]
    Write(#[from] consumer_sdk::WriteError),
    /// Reading the ring failed (corruption).
    #[error("reading the ring: {0}")]
    Recv(#[from] consumer_sdk::RecvError),
    /// A setting, or the stream's configuration, cannot work.
    #[error("{0}")]
    Config(String),
    /// The server has no room in its JetStream store for a new stream of `max_bytes`; retried
    /// with backoff, as the operator may give it room.
    #[error(
        "the NATS server has no room for a new stream {stream} of --max-bytes {max_bytes} ({size}): \
         {source}; give its JetStream store more room (disk, or `max_file_store`) or lower \
         --max-bytes (NATS_STREAM_MAX_BYTES)",
        size = bytesize::ByteSize::b(max_bytes.unsigned_abs()).display().iec()
    )]
    NoRoom {
        /// The stream that could not be created.
        stream: String,
        /// The size asked for it.
        max_bytes: i64,
        /// What the server said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// NATS failed; retried with backoff inside the bridges.
    #[error("NATS, {what}: {source}")]
    Nats {
        /// What the bridge was doing.
        what: &'static str,
        /// What the client said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stream holds something no sender writes.
    #[error("stream: {0}")]
    Stream(String),
}

impl Error {
    /// A NATS failure while doing `what`.
    pub fn nats(what: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Nats {
            what,
            source: Box::new(e),
        }
    }

    /// Worth retrying after a pause (NATS down, stream briefly missing, a ring reader overrun
    /// by its writer), not a fault of the data or the settings.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Nats { .. }
                | Error::NoRoom { .. }
                | Error::Recv(consumer_sdk::RecvError::Overrun { .. })
        )
    }
}

/// The subject prefix when none is given: the name of the chain the ring records (`steem`,
/// `hive`, ...), or `steem` for a ring that records none (one written by an older broadcaster).
pub fn default_prefix(ring: &Subscriber) -> String {
    ring.chain()
        .map_or_else(|| "steem".to_string(), |c| c.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::default_prefix;
    use consumer_sdk::{Chain, ChainId, CreateOptions, Publisher, Start, Subscriber};

    fn reader(path: &std::path::Path) -> Subscriber {
        Subscriber::open(path)
            .unwrap()
            .start(Start::Latest)
            .unwrap()
    }

    #[test]
    fn the_default_prefix_is_the_chain_the_ring_records() {
        let dir = tempfile::tempdir().unwrap();
        let hive = dir.path().join("hive");
        let mut publisher = Publisher::create(&hive, &CreateOptions::default()).unwrap();
        // A ring that records no chain (an older broadcaster's) keeps the historic default.
        let early = reader(&hive);
        assert_eq!(default_prefix(&early), "steem");
        publisher.set_chain(&Chain::HIVE).unwrap();
        // Read from the header each time: a reader opened before the chain was recorded sees it.
        assert_eq!(default_prefix(&early), "hive");
        assert_eq!(default_prefix(&reader(&hive)), "hive");

        let other = dir.path().join("other");
        let mut publisher = Publisher::create(&other, &CreateOptions::default()).unwrap();
        let testnet = Chain::new(ChainId([7; 32]), "testnet").unwrap();
        publisher.set_chain(&testnet).unwrap();
        assert_eq!(default_prefix(&reader(&other)), "testnet");
    }
}
