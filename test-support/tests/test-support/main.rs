//! Integration tests of the test-support crate: the `compose-blocks` binary as a real process.

mod compose_blocks;
