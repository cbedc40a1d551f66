//! Integration tests of the broadcaster: decoding the real data, replaying it, following fake
//! nodes with faults (`node`), and the binary as a real process on a real ring (`processes`).

mod node;
mod processes;
