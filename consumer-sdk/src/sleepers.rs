//! The sleeper registry's protocol (SYNC sleepers in [`crate::protocol`]) over any slice of
//! atomic words: the mapped `<ring>.wait` file in production (see `waiters`), heap words in the
//! loom model.

use crate::sync::{AtomicU64, Ordering, fence};

/// Reader slots with a bit each.
pub(crate) const SLOTS: usize = 256;
/// Word 2: readers asleep without a slot.
pub(crate) const W_OVERFLOW: usize = 2;
/// Words 8..12: the slot bitmap, on a cache line of its own.
pub(crate) const W_BITS: usize = 8;
/// Words of the bitmap.
pub(crate) const BIT_WORDS: usize = SLOTS / 64;
/// Words the protocol needs at least.
#[cfg_attr(not(loom), allow(dead_code))]
pub(crate) const MIN_WORDS: usize = W_BITS + BIT_WORDS;

/// What a reader holds to say it sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Bit `n` of the bitmap.
    Bit(usize),
    /// The overflow count.
    Overflow,
}

/// Say whether the holder of `slot` sleeps: a `SeqCst` read-modify-write, then a `SeqCst`
/// fence. SYNC sleepers (reader side): the reader then sleeps only if the notify word still
/// holds the value it read before its last poll (the kernel compares it in `FUTEX_WAIT`); of
/// this fence and the writer's in [`anyone_sleeps`] one comes first, so either the writer sees
/// the bit or the reader sees the new notify value.
pub(crate) fn set(words: &[AtomicU64], slot: Slot, asleep: bool) {
    match (slot, asleep) {
        (Slot::Bit(n), true) => {
            words[W_BITS + n / 64].fetch_or(1 << (n % 64), Ordering::SeqCst);
        }
        (Slot::Bit(n), false) => {
            words[W_BITS + n / 64].fetch_and(!(1 << (n % 64)), Ordering::SeqCst);
        }
        (Slot::Overflow, true) => {
            words[W_OVERFLOW].fetch_add(1, Ordering::SeqCst);
        }
        (Slot::Overflow, false) => {
            // Never below zero, whatever another process stored.
            let word = &words[W_OVERFLOW];
            let mut n = word.load(Ordering::SeqCst);
            while let Err(now) =
                word.compare_exchange(n, n.saturating_sub(1), Ordering::SeqCst, Ordering::SeqCst)
            {
                n = now;
            }
        }
    }
    fence(Ordering::SeqCst);
}

/// Whether any reader is registered as asleep. SYNC sleepers (writer side): called after the
/// store of the notify word that follows a commit; the fence orders that store before the
/// loads below.
#[inline]
#[cfg_attr(not(feature = "writer"), allow(dead_code))]
pub(crate) fn anyone_sleeps(words: &[AtomicU64]) -> bool {
    fence(Ordering::SeqCst);
    // Relaxed: ordered by the fence above.
    words[W_OVERFLOW].load(Ordering::Relaxed) != 0
        || (0..BIT_WORDS).any(|i| words[W_BITS + i].load(Ordering::Relaxed) != 0)
}

/// Readers registered as asleep now (set bits plus the overflow count).
#[cfg_attr(any(loom, not(feature = "writer")), allow(dead_code))]
pub(crate) fn count(words: &[AtomicU64]) -> u64 {
    let bits: u64 = (0..BIT_WORDS)
        // Relaxed: a count for reports, not a decision.
        .map(|i| u64::from(words[W_BITS + i].load(Ordering::Relaxed).count_ones()))
        .sum();
    bits.saturating_add(words[W_OVERFLOW].load(Ordering::Relaxed))
}
