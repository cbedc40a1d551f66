//! The production [`Sink`]: the shared-memory ring of `consumer-sdk`.

use std::collections::HashMap;
use std::path::Path;

use compact_str::CompactString;
use consumer_sdk::{CreateOptions, OpMeta, Publisher, TopicId};

use crate::block::DecodedBlock;
use crate::sink::{Sink, SinkError};

/// Publishes each block into the ring as one atomic commit, one record per op.
#[derive(Debug)]
pub struct RingSink {
    publisher: Publisher,
    topics: HashMap<CompactString, TopicId>,
    /// The topic of the previous op: ops of one topic come in runs, and a run then needs no
    /// lookup.
    last_topic: Option<(CompactString, TopicId)>,
}

impl RingSink {
    /// Open the ring at `path` to continue it (validating it and discarding a partial block a
    /// dead broadcaster left), or create it with `capacity` data bytes.
    pub fn open_or_create(path: &Path, capacity: u64) -> Result<RingSink, consumer_sdk::Error> {
        let name = path
            .to_str()
            .ok_or_else(|| consumer_sdk::Error::InvalidName {
                name: path.display().to_string(),
                reason: "not valid UTF-8",
            })?;
        // A name without a `/` would be looked up under /dev/shm: keep relative paths relative.
        let name = if name.contains('/') {
            name.to_string()
        } else {
            format!("./{name}")
        };
        let options = CreateOptions {
            capacity,
            ..CreateOptions::default()
        };
        let publisher = Publisher::open_or_create(&name, &options)?;
        Ok(RingSink {
            publisher,
            topics: HashMap::new(),
            last_topic: None,
        })
    }

    /// The publisher underneath (ring path, epoch, capacity).
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    fn write(
        &mut self,
        block: &DecodedBlock,
        orphaned: Option<&[String]>,
    ) -> Result<(), consumer_sdk::WriteError> {
        let id = block_id_bytes(&block.id);
        match orphaned {
            None => self
                .publisher
                .begin_block(block.number, block.timestamp, id)?,
            Some(orphaned) => {
                let orphaned: Vec<[u8; 20]> =
                    orphaned.iter().map(|id| block_id_bytes(id)).collect();
                self.publisher.begin_fork(
                    block.number,
                    block.timestamp,
                    id,
                    block_id_bytes(&block.previous),
                    &orphaned,
                )?;
            }
        }
        for op in &block.ops {
            let topic = match &self.last_topic {
                Some((name, t)) if *name == op.topic => *t,
                _ => {
                    let t = match self.topics.get(op.topic.as_str()) {
                        Some(&t) => t,
                        None => {
                            let t = self.publisher.topic(&op.topic)?;
                            self.topics.insert(op.topic.clone(), t);
                            t
                        }
                    };
                    self.last_topic = Some((op.topic.clone(), t));
                    t
                }
            };
            let meta = OpMeta {
                trx_index: op.trx_index,
                trx_id: op.trx_id,
                op_index: op.op_index,
                virtual_op: op.virtual_op,
            };
            self.publisher.push(topic, &meta, &op.body)?;
        }
        self.publisher.commit()
    }
}

/// The 20 bytes of a 40-hex-digit block id (zeros if the node sent something else).
fn block_id_bytes(id: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    if id.len() != 40 {
        return out;
    }
    match const_hex::decode_to_slice(id, &mut out) {
        Ok(()) => out,
        Err(_) => [0; 20],
    }
}

impl RingSink {
    fn commit(
        &mut self,
        block: &DecodedBlock,
        orphaned: Option<&[String]>,
    ) -> Result<(), SinkError> {
        self.write(block, orphaned).map_err(|e| {
            // Nothing of the block is visible: drop it so the next attempt starts clean.
            self.publisher.abort_block();
            SinkError::Backend(Box::new(e))
        })?;
        crate::metrics::ring(
            self.publisher.capacity(),
            self.publisher.written_bytes(),
            self.publisher.sleeping_readers(),
            self.publisher.wakes(),
        );
        Ok(())
    }
}

impl Sink for RingSink {
    fn last_committed_block(&self) -> Option<u64> {
        self.publisher.last_block()
    }

    fn publish(&mut self, block: &DecodedBlock) -> Result<(), SinkError> {
        if let Some(last) = self.publisher.last_block()
            && block.number <= last
        {
            return Err(SinkError::NotIncreasing {
                block: block.number,
                last,
            });
        }
        self.commit(block, None)
    }

    fn publish_fork(&mut self, block: &DecodedBlock, orphaned: &[String]) -> Result<(), SinkError> {
        self.commit(block, Some(orphaned))
    }

    fn recent_links(&self, max: usize) -> Vec<(u64, String)> {
        let Some(last) = self.publisher.last_block() else {
            return Vec::new();
        };
        let first = last.saturating_sub(max.saturating_sub(1) as u64);
        self.publisher
            .block_ids(first)
            .into_iter()
            // All zeros: the block's id was unknown when it was published.
            .filter(|(_, id)| *id != [0; 20])
            .map(|(n, id)| (n, const_hex::encode(id)))
            .collect()
    }

    fn heartbeat(&mut self) {
        self.publisher.heartbeat();
    }

    fn chain(&self) -> Result<Option<consumer_sdk::Chain>, SinkError> {
        self.publisher
            .chain()
            .map_err(|e| SinkError::Backend(Box::new(e)))
    }

    fn set_chain(&mut self, chain: &consumer_sdk::Chain) -> Result<(), SinkError> {
        match self.publisher.set_chain(chain) {
            Ok(()) => Ok(()),
            Err(consumer_sdk::WriteError::OtherChain { ring, asked }) => {
                Err(SinkError::OtherChain { ring, asked })
            }
            Err(e) => Err(SinkError::Backend(Box::new(e))),
        }
    }

    fn last_committed_link(&self) -> Option<(String, u32)> {
        let (id, timestamp) = self.publisher.last_block_id()?;
        // All zeros: the block's id was unknown when it was published.
        (id != [0; 20]).then(|| (const_hex::encode(id), timestamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_decode_or_fall_back_to_zero() {
        let id = "02e29508a1b2c3d4e5f60718293a4b5c6d7e8f90";
        assert_eq!(block_id_bytes(id)[..4], [0x02, 0xe2, 0x95, 0x08]);
        assert_eq!(block_id_bytes("zz"), [0; 20]);
        assert_eq!(block_id_bytes(&"g".repeat(40)), [0; 20]);
    }
}
