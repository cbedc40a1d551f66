//! Positioning: the oldest whole block, the newest, block `n`, through the records and the
//! block index (SYNC index: entries are checked against the records they point to).

use super::{FLAG_BLOCK_START, ReadFault, Ring, check_tail, check_walk, corrupt};
use crate::layout::{self, INDEX_SLOTS, Kind, RECORD_HEADER_LEN, RecordHeader, off};
use crate::sync::Ordering;

/// Give up finding a valid record after this many laps in a row.
const MAX_SEEK_ATTEMPTS: usize = 64;

/// Where `Block(n)` leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seek {
    /// Position of the first record of the first block numbered `n` or more.
    Found(u64),
    /// Block `n` was overwritten; `earliest` is the oldest whole block left.
    Gone { earliest: u64 },
    /// Block `n` is not committed yet; `last` is the last committed block.
    NotYet { last: Option<u64> },
}

/// The global sequence at block boundary `pos` (`None`: overwritten meanwhile).
pub(super) fn seq_at(ring: &Ring<'_>, pos: u64) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    if pos % 8 != 0 {
        return Err(corrupt(pos, "position not 8-byte aligned"));
    }
    if pos > tail {
        return Err(corrupt(
            pos,
            format!("position beyond the committed tail {tail}"),
        ));
    }
    let at = if pos == tail {
        if tail == 0 {
            return Ok(Some(0));
        }
        tail - RECORD_HEADER_LEN as u64
    } else if ring.room(pos) < RECORD_HEADER_LEN as u64 {
        pos + ring.room(pos)
    } else {
        pos
    };
    let h = ring.load_record_header(at);
    if ring.overwritten(at) {
        return Ok(None);
    }
    if pos == tail && Kind::from_u8(h.kind) != Some(Kind::BlockEnd) {
        return Err(corrupt(
            at,
            "the committed tail does not follow a block end record",
        ));
    }
    Ok(Some(h.seq))
}

/// First block boundary at or after `from` (the tail if no block starts before it).
/// `None`: the records walked were overwritten meanwhile.
pub(super) fn first_block_start(ring: &Ring<'_>, from: u64) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    if from % 8 != 0 {
        return Err(corrupt(from, "head not 8-byte aligned"));
    }
    let mut pos = from;
    while pos < tail {
        check_walk(ring, from, pos)?;
        let room = ring.room(pos);
        if room < RECORD_HEADER_LEN as u64 {
            pos += room;
            continue;
        }
        let h = ring.load_record_header(pos);
        if ring.overwritten(pos) {
            return Ok(None);
        }
        if h.flags & FLAG_BLOCK_START != 0 {
            return Ok(Some(pos));
        }
        pos += ring.skip_len(pos, &h).map_err(|e| corrupt(pos, e))?;
    }
    Ok(Some(tail.max(from)))
}

/// Start of the block that ends at committed tail `tail` (`Some(0)` for an empty ring; `None`
/// if it was overwritten meanwhile). Found through the block index, whose entry for that block
/// was written before its commit; if the index does not have it, the oldest block start.
pub(super) fn last_block_start(ring: &Ring<'_>, tail: u64) -> Result<Option<u64>, ReadFault> {
    if tail == 0 {
        return Ok(Some(0));
    }
    let end = tail - RECORD_HEADER_LEN as u64;
    let h = ring.load_record_header(end);
    if ring.overwritten(end) {
        return Ok(None);
    }
    if Kind::from_u8(h.kind) != Some(Kind::BlockEnd) {
        return Err(corrupt(
            end,
            "the committed tail does not follow a block end record",
        ));
    }
    // The entry of the block ending at the tail is the newest or, while the writer commits
    // the next block, the one before it: a few entries are enough.
    if let Some(p) = indexed_block_starts(ring, tail, 4)?
        .into_iter()
        .find(|&(block, _)| block == h.block)
        .map(|(_, p)| p)
    {
        return Ok(Some(p));
    }
    match first_block_start(ring, ring.head())? {
        Some(p) if p < tail => Ok(Some(p)),
        _ => Ok(None),
    }
}

/// Valid (block number, start) pairs among the newest `newest` entries of the block index
/// below `tail`, newest first. SYNC index (reader side): entries are checked against the
/// records they point to.
fn indexed_block_starts(
    ring: &Ring<'_>,
    tail: u64,
    newest: usize,
) -> Result<Vec<(u64, u64)>, ReadFault> {
    // Relaxed: the count is stored before the tail store that publishes it (SYNC tail), and
    // each entry is validated by content below anyway.
    let written = ring.at(off::INDEX_NEXT).load(Ordering::Relaxed);
    let mut found = Vec::new();
    let span = newest.min(INDEX_SLOTS) as u64;
    for e in (written.saturating_sub(span)..written).rev() {
        let slot = (e % INDEX_SLOTS as u64) as usize;
        // Relaxed: validated below by content.
        let block = ring.at(layout::index_slot(slot)).load(Ordering::Relaxed);
        let pos = ring
            .at(layout::index_slot(slot) + 8)
            .load(Ordering::Relaxed);
        if pos < tail
            && tail - pos <= ring.capacity()
            && pos % 8 == 0
            && block_at(ring, pos)? == Some(block)
        {
            found.push((block, pos));
        }
    }
    Ok(found)
}

/// The oldest block start at or after `from` known to the index (the newest block's start if
/// none is): where a reader resumes to keep a margin behind the writer.
pub(super) fn block_start_from(ring: &Ring<'_>, from: u64) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    let best = indexed_block_starts(ring, tail, INDEX_SLOTS)?
        .into_iter()
        .map(|(_, p)| p)
        .filter(|&p| p >= from)
        .min();
    match best {
        Some(p) => Ok(Some(p)),
        None => newest_block_start(ring),
    }
}

/// Start of the newest committed block (the tail of an empty ring).
pub(super) fn newest_block_start(ring: &Ring<'_>) -> Result<Option<u64>, ReadFault> {
    let tail = ring.tail();
    check_tail(ring, tail)?;
    last_block_start(ring, tail)
}

/// Oldest whole block still in the ring (its first record's position), or the tail.
pub(crate) fn seek_earliest(ring: &Ring<'_>) -> Result<u64, ReadFault> {
    for _ in 0..MAX_SEEK_ATTEMPTS {
        if let Some(p) = first_block_start(ring, ring.head())? {
            return Ok(p);
        }
    }
    Err(ReadFault::Overrun)
}

/// The committed tail, a block boundary: where a reader that wants only new blocks starts.
pub(crate) fn seek_latest(ring: &Ring<'_>) -> u64 {
    ring.tail()
}

/// Last committed block, read from the block end record before the tail.
pub(crate) fn last_committed_block(ring: &Ring<'_>) -> Result<Option<u64>, ReadFault> {
    for _ in 0..MAX_SEEK_ATTEMPTS {
        let tail = ring.tail();
        check_tail(ring, tail)?;
        if tail == 0 {
            return Ok(None);
        }
        let at = tail - RECORD_HEADER_LEN as u64;
        let h = ring.load_record_header(at);
        if ring.overwritten(at) {
            continue;
        }
        if Kind::from_u8(h.kind) != Some(Kind::BlockEnd) {
            return Err(corrupt(
                at,
                "the committed tail does not follow a block end record",
            ));
        }
        return Ok(Some(h.block));
    }
    Err(ReadFault::Overrun)
}

/// Which block of a ring whose numbers go back at a fork notice (see [`Kind::Fork`]) a seek
/// finds, when the ring holds more than one numbered `n` or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Branch {
    /// On the newest branch: the last block start numbered `n` or less, then the first one
    /// numbered `n` or more from there (without forks, the first block numbered `n` or more).
    Newest,
    /// The first block start numbered `n` or more, in ring order: where a reader that may have
    /// read an orphaned block `n` resumes, so that it meets the fork notice after it.
    Oldest,
}

/// Position of the first block numbered `n` or more (on the branch `branch` says).
pub(crate) fn seek_block(ring: &Ring<'_>, n: u64, branch: Branch) -> Result<Seek, ReadFault> {
    for _ in 0..MAX_SEEK_ATTEMPTS {
        let last = last_committed_block(ring)?;
        // On the newest branch nothing comes after the last block; an older branch, before a
        // fork notice, may hold higher numbers than the last block.
        let beyond = last.is_none_or(|last| n > last);
        if beyond && (branch == Branch::Newest || last.is_none()) {
            return Ok(Seek::NotYet { last });
        }
        let tail = ring.tail();
        let Some(oldest) = first_block_start(ring, ring.head())? else {
            continue;
        };
        if oldest >= tail {
            // Everything before the tail was overwritten while we looked; `last` is gone too.
            continue;
        }
        let Some(oldest_block) = block_at(ring, oldest)? else {
            continue;
        };
        // Index entries that still check out, oldest first.
        // SYNC index (reader side): entries are validated against the records they point to.
        let written = ring.at(off::INDEX_NEXT).load(Ordering::Acquire);
        let mut indexed = Vec::new();
        for e in written.saturating_sub(INDEX_SLOTS as u64)..written {
            let slot = (e % INDEX_SLOTS as u64) as usize;
            // Relaxed: validated below by content.
            let block = ring.at(layout::index_slot(slot)).load(Ordering::Relaxed);
            let pos = ring
                .at(layout::index_slot(slot) + 8)
                .load(Ordering::Relaxed);
            if pos > oldest && pos < tail && block_at(ring, pos)? == Some(block) {
                indexed.push((block, pos));
            }
        }
        // Block `n` was overwritten, unless a fork took the numbers back to it after the
        // oldest block left.
        if n < oldest_block && !indexed.iter().any(|&(block, _)| block <= n) {
            return Ok(Seek::Gone {
                earliest: oldest_block,
            });
        }
        let from = match branch {
            // Start from the newest entry at or before `n`.
            Branch::Newest => indexed
                .iter()
                .rev()
                .find(|&&(block, _)| block <= n)
                .map_or(oldest, |&(_, pos)| pos),
            // The oldest block, unless it and every indexed block before the first match
            // are older than `n`: then from the last of those.
            Branch::Oldest => {
                if oldest_block >= n {
                    return Ok(Seek::Found(oldest));
                }
                indexed
                    .iter()
                    .take_while(|&&(block, _)| block < n)
                    .last()
                    .map_or(oldest, |&(_, pos)| pos)
            }
        };
        let mut p = from;
        let mut lapped = false;
        while p < tail {
            let room = ring.room(p);
            if room < RECORD_HEADER_LEN as u64 {
                p += room;
                continue;
            }
            check_walk(ring, from, p)?;
            let h = ring.load_record_header(p);
            if ring.overwritten(p) {
                lapped = true;
                break;
            }
            if h.flags & FLAG_BLOCK_START != 0 && h.block >= n {
                return Ok(Seek::Found(p));
            }
            p += ring.skip_len(p, &h).map_err(|e| corrupt(p, e))?;
        }
        if !lapped {
            return Ok(if beyond {
                Seek::NotYet { last }
            } else {
                Seek::Found(tail)
            });
        }
    }
    Err(ReadFault::Overrun)
}

/// Where a reader resumes after the whole of block `n` whose id is `id`, on that block's
/// branch: the start of block `n` itself (the caller skips its ops), or, when a fork notice
/// after it orphaned the blocks that followed (its shared block being `n` with this id), the
/// start of the new branch's block `n + 1`, which is that notice. The newest such place wins.
/// `None`: the ring's block index names no block `n` with that id.
pub(crate) fn seek_block_id(
    ring: &Ring<'_>,
    n: u64,
    id: [u8; 20],
) -> Result<Option<(u64, BlockIdFound)>, ReadFault> {
    for _ in 0..MAX_SEEK_ATTEMPTS {
        let tail = ring.tail();
        check_tail(ring, tail)?;
        let mut best = None;
        let mut lapped = false;
        // Newest first: the first match is the one.
        for (block, pos) in indexed_block_starts(ring, tail, INDEX_SLOTS)? {
            let found = if block == n {
                match block_end_id(ring, pos, tail)? {
                    None => {
                        lapped = true;
                        break;
                    }
                    Some(end) => (end == id).then_some(BlockIdFound::Block),
                }
            } else if block == n.wrapping_add(1) {
                match first_record(ring, pos) {
                    None => {
                        lapped = true;
                        break;
                    }
                    Some(h) => (Kind::from_u8(h.kind) == Some(Kind::Fork) && h.trx_id == id)
                        .then_some(BlockIdFound::AfterFork),
                }
            } else {
                None
            };
            if let Some(found) = found {
                best = Some((pos, found));
                break;
            }
        }
        if !lapped {
            return Ok(best);
        }
    }
    Err(ReadFault::Overrun)
}

/// What [`seek_block_id`] found at the position it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockIdFound {
    /// The block itself starts there.
    Block,
    /// A fork notice whose shared block is the one asked for starts there.
    AfterFork,
}

/// The header of the first record of the block starting at `pos`, past the padding before it
/// (`None`: overwritten).
fn first_record(ring: &Ring<'_>, pos: u64) -> Option<RecordHeader> {
    let mut at = pos;
    if ring.room(at) < RECORD_HEADER_LEN as u64 {
        at += ring.room(at);
    }
    let mut h = ring.load_record_header(at);
    if Kind::from_u8(h.kind) == Some(Kind::Padding) {
        at += ring.room(at);
        h = ring.load_record_header(at);
    }
    (!ring.overwritten(pos)).then_some(h)
}

/// The id in the block end of the block starting at `pos` (`None`: overwritten meanwhile).
fn block_end_id(ring: &Ring<'_>, pos: u64, tail: u64) -> Result<Option<[u8; 20]>, ReadFault> {
    let mut p = pos;
    while p < tail {
        let room = ring.room(p);
        if room < RECORD_HEADER_LEN as u64 {
            p += room;
            continue;
        }
        check_walk(ring, pos, p)?;
        let h = ring.load_record_header(p);
        if ring.overwritten(p) {
            return Ok(None);
        }
        if Kind::from_u8(h.kind) == Some(Kind::BlockEnd) {
            return Ok(Some(h.trx_id));
        }
        p += ring.skip_len(p, &h).map_err(|e| corrupt(p, e))?;
    }
    Err(corrupt(
        pos,
        "an indexed block has no end before the committed tail",
    ))
}

/// Block number of the block starting at `pos` (`None`: not a block start, or overwritten).
pub(super) fn block_at(ring: &Ring<'_>, pos: u64) -> Result<Option<u64>, ReadFault> {
    let at = if ring.room(pos) < RECORD_HEADER_LEN as u64 {
        pos + ring.room(pos)
    } else {
        pos
    };
    if at % 8 != 0 {
        return Ok(None);
    }
    let h = ring.load_record_header(at);
    if ring.overwritten(at) || h.flags & FLAG_BLOCK_START == 0 {
        return Ok(None);
    }
    Ok(Some(h.block))
}
