//! Atomics facade and the typed views through which all ring memory is accessed.
//!
//! `std` atomics in normal builds, `loom` under `--cfg loom`, so the ring's protocol can be
//! model-checked without changing a line of it.
//!
//! Ring memory is only ever seen as [`Words`] (loads only: every reader, including one over a
//! read-only mapping) or [`WordsMut`] (loads and stores: the writer over its own writable
//! mapping or a heap buffer). No `&[u8]` or `&mut [u8]` over shared memory exists anywhere:
//! another process stores into it at any time, which a plain reference forbids.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering, fence};

/// One shared 64-bit word that can only be loaded.
#[derive(Clone, Copy)]
pub(crate) struct Word<'a>(&'a AtomicU64);

impl Word<'_> {
    /// Atomic load.
    #[inline]
    pub(crate) fn load(self, order: Ordering) -> u64 {
        self.0.load(order)
    }

    /// Address of the word (for the futex system calls, which take one).
    #[cfg(not(loom))]
    pub(crate) fn as_ptr(self) -> *const AtomicU64 {
        self.0
    }
}

/// The ring's memory as 64-bit words, loads only. All a reader ever gets: it has no way to
/// store, so a read-only mapping is never written through.
#[derive(Clone, Copy)]
pub(crate) struct Words<'a>(&'a [AtomicU64]);

impl<'a> Words<'a> {
    pub(crate) fn new(words: &'a [AtomicU64]) -> Words<'a> {
        Words(words)
    }

    /// Number of words.
    pub(crate) fn len(self) -> usize {
        self.0.len()
    }

    /// Word `i` (an index the caller derived from the validated geometry).
    #[inline]
    pub(crate) fn get(self, i: usize) -> Word<'a> {
        Word(&self.0[i])
    }
}

/// One shared 64-bit word of memory this process may write.
#[derive(Clone, Copy)]
#[cfg(any(feature = "writer", test, loom))]
pub(crate) struct WordMut<'a>(&'a AtomicU64);

#[cfg(any(feature = "writer", test, loom))]
impl WordMut<'_> {
    /// Atomic load.
    #[inline]
    pub(crate) fn load(self, order: Ordering) -> u64 {
        self.0.load(order)
    }

    /// Atomic store.
    #[inline]
    pub(crate) fn store(self, value: u64, order: Ordering) {
        self.0.store(value, order);
    }
}

/// The ring's memory as 64-bit words, loads and stores: only built over memory this process
/// may write (the writer's read-write mapping, a heap buffer).
#[derive(Clone, Copy)]
#[cfg(any(feature = "writer", test, loom))]
pub(crate) struct WordsMut<'a>(&'a [AtomicU64]);

#[cfg(any(feature = "writer", test, loom))]
impl<'a> WordsMut<'a> {
    pub(crate) fn new(words: &'a [AtomicU64]) -> WordsMut<'a> {
        WordsMut(words)
    }

    /// Word `i` (an index the caller derived from the validated geometry).
    #[inline]
    pub(crate) fn get(self, i: usize) -> WordMut<'a> {
        WordMut(&self.0[i])
    }

    /// The same memory, loads only.
    pub(crate) fn view(self) -> Words<'a> {
        Words(self.0)
    }
}
