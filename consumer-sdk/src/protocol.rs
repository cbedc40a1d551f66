//! The ring protocol: layout, orderings and what every crash leaves behind.
//!
//! This page is documentation only; the code is in `src/ring/` (writer, reader, seek, loom
//! models), `src/layout.rs` (offsets) and `src/file.rs` (files, mappings, locks).
//!
//! The file (see `src/layout.rs`) is a 84 KiB header followed by a data region whose capacity
//! `C` is a power of two. Positions are monotonic byte counts (`u64`); a position's place in the
//! region is `pos & (C - 1)`. Records are 8-byte aligned, start with a 64-byte
//! `RecordHeader` (`src/layout.rs`) and never straddle the end of the region: the writer fills the
//! rest with a padding record (or, when fewer than 64 bytes are left, readers and writer both
//! skip them implicitly).
//!
//! Header words that change: `tail` (end of the last committed block), `tail intent` (end of
//! what the writer may be writing; never decreases), `head` (oldest record not yet overwritten),
//! producer `epoch`, `pid` and `heartbeat`, `last block`, a `notify` word, a table of 256 topics
//! (name and committed record count each) and a 4096-entry index of (block number, position)
//! pairs.
//!
//! Every op record carries its global sequence number and its sequence within its topic. Each
//! block ends with a block-end record (block number, timestamp, id, op count); the first record
//! of each block is flagged. A gap notice (kind 5, `Kind::Gap` in `src/layout.rs`) may open a
//! block: blocks lost upstream of this ring; it takes no sequence number. A fork notice (kind 4,
//! `Kind::Fork`) may open a block too: the newest committed blocks, from this block's number on,
//! were orphaned (their ids follow), so block numbers go back here, and only here. Seeking by
//! number finds the newest branch's block (the index entry at the highest position); resuming
//! after a cursor with a block id finds that block by id, or the fork notice whose shared block
//! it is; a cursor without one resumes at the oldest copy of its block.
//!
//! All accesses to shared memory are atomic 64-bit loads and stores, so concurrent access is
//! never a data race. The orderings that matter come in labelled pairs (see `src/ring/`):
//!
//! * **SYNC intent.** Before overwriting bytes, the writer stores the new tail intent and issues
//!   a Release fence; then it stores the bytes. A reader loads a record's words, issues an
//!   Acquire fence, then loads the tail intent. If any loaded word came from a store after the
//!   writer's fence, the fences synchronise and the reader sees an intent that reveals the
//!   overwrite. So a copy taken at `pos` is valid exactly when `intent <= pos + C` afterwards;
//!   otherwise the reader was lapped. Lapping is detected from the writer's counter, never from
//!   record contents (which might be half-written).
//! * **SYNC batch.** A reader applies SYNC intent to a run of records at once: it copies the
//!   committed bytes from its position (up to the tail, the region's end and
//!   `READ_BATCH_BYTES`, 16 KiB, or one whole longer record it needs), then one Acquire fence
//!   and one intent load judge the run's first byte, the first the writer would overwrite. The
//!   records are then parsed and validated from the private copy. A copy that passed stays
//!   what was committed at those positions, so it is delivered even if the writer overwrites
//!   the ring meanwhile; a lap shows when the next run is copied. Padding and ops of topics a
//!   reader does not want are never copied beyond their header.
//! * **SYNC tail.** The writer stores every record of a block and its block-end record, then
//!   stores `tail` with Release: this single store is the commit. Readers load `tail` with
//!   Acquire and only read below it, so they see whole blocks or nothing. A writer that dies
//!   before the store leaves the block invisible.
//! * **SYNC counters.** After the tail store, the writer stores the counter of each topic of
//!   the block with Release. A reader loads the tail (Acquire), the counters (Acquire), and the
//!   tail again: each counter is then exact for every topic without a record in the blocks
//!   between the two tails, and the others are counted from the records themselves (each op
//!   carries its sequence within its topic) by walking from the start of the first of those
//!   blocks. No lock is involved, so the counts are exact whatever step of a commit the writer
//!   died (or stopped) in.
//! * **SYNC topics.** The writer stores a topic's name, then the topic count with Release;
//!   readers load the count with Acquire before reading names.
//! * **SYNC index.** Index entries are written before the commit and validated by readers
//!   against the record they point to (which must be the flagged first record of that block),
//!   so a torn or stale entry is detected and skipped.
//!
//! * **SYNC head.** The writer stores the head (oldest record not overwritten) before raising
//!   the tail intent with Release; a reader that loads the intent with Acquire then finds a head
//!   at least `intent - C`.
//!
//! When lapped, a reader resumes at a whole block (see [`crate::LagPolicy`]: the oldest one, or
//! one a safe distance behind the writer when it overwrites faster than the reader can count, or
//! the newest) and computes `lost` as that block's first sequence number minus the one it
//! expected, and `lost_matching` from the topic counts at both positions. Being lapped is never
//! an error: a reader that keeps being overwritten while it resynchronises tries again at its
//! next receive.
//!
//! A writer holds an exclusive open-file-description lock (`F_OFD_SETLK`) on the ring for its
//! whole life; the kernel drops it when the writer dies, and readers probe it (`F_OFD_GETLK`) to
//! tell a live writer from a dead one, which stays right after pid reuse and across pid
//! namespaces. The heartbeat runs on `CLOCK_BOOTTIME` and tells a live writer from a hung one. A
//! writer that opens an existing ring takes the lock, validates every record from head to tail,
//! recomputes its sequence numbers and topic counts, keeps the tail intent (so readers keep
//! judging overwritten bytes correctly), bumps the epoch and continues at the committed tail,
//! overwriting any partial block.
//!
//! Readers wait by polling for a while (adaptive: about twice as long as recent waits lasted,
//! 2 to 50 µs), then sleeping on a futex over the `notify` word, which the writer bumps after
//! every commit ([`crate::Wait`]). The writer makes the `FUTEX_WAKE` system call only when a
//! reader has registered as asleep in the ring's `<ring>.wait` file, a one-page file beside the
//! ring that readers may write (the ring itself they only map read-only):
//!
//! * **SYNC sleepers.** A reader about to sleep loads the notify word (Acquire), looks for data
//!   once more, sets its bit in the wait file with a `SeqCst` read-modify-write followed by a
//!   `SeqCst` fence, then calls `FUTEX_WAIT` with the value it loaded, and clears its bit
//!   after. The writer stores the notify word, issues a `SeqCst` fence, then loads the bitmap
//!   (and an overflow count for readers that found no free slot) and wakes only if something is
//!   set. Of the two fences one comes first: either the writer sees the bit, or the reader's
//!   `FUTEX_WAIT`, which compares the word in the kernel, sees it changed and returns at once.
//!
//! A reader owns its slot through an open-file-description lock on one byte of the wait file,
//! which the kernel drops when the reader dies; about once a second the writer clears the bits
//! of slots nobody holds (a reader killed asleep) and makes the file again if it was deleted.
//! A reader that cannot use the file wakes up on its own at least every 50 ms.
//!
//! # The file
//!
//! * **Space.** The writer reserves every byte of the file (`posix_fallocate`) when it creates or
//!   reopens a ring, so a full file system is an error at start ([`crate::Error::NoSpace`]),
//!   never a `SIGBUS` when a page is first touched.
//! * **Mapping.** Mappings are raw (`memmap2::MmapRaw`): no `&[u8]` over shared memory exists.
//!   A mapping is exactly the size validated before it, and the size is checked again once it
//!   exists. Readers get a view that can only load.
//! * **Trust.** Nobody but the owner may write a ring: the writer refuses a file of another user
//!   or one that group or others may write, readers refuse the latter
//!   ([`crate::Error::Permissions`]). New rings are `0600`, or `0640` for readers in the owner's
//!   group. What is left: a process of the owner (or root) that truncates a live ring crashes
//!   its mappers with `SIGBUS`, as with any shared-memory transport.
//! * **Liveness.** See above: an open-file-description lock and a `CLOCK_BOOTTIME` heartbeat.
//!
//! # Memory model tests
//! The algorithm runs over any slice of atomic words: a heap buffer in unit, property and loom
//! tests, the shared mapping in production. The loom models
//! (`RUSTFLAGS="--cfg loom" cargo test -p consumer-sdk --lib --release loom`) race real payload
//! copies against an overwrite, a filtered reader's counts against a commit, whole-block
//! delivery against commits, and a reader going to sleep against the commit it waits for
//! (SYNC sleepers: it fails if either `SeqCst` fence is weakened); each explores every interleaving with up to three preemptions
//! completely, and fails if it does not finish within its budget (60 s, see
//! `RING_LOOM_BUDGET_SECS`) rather than pass on a partial exploration. Miri needs a nightly
//! toolchain: `cargo +nightly miri test -p consumer-sdk --lib ring` runs the heap-backed tests
//! under it.
