//! Integration tests of the broadcaster: decoding the real data, replaying it, following fake
//! nodes with faults (`node`), the binary as a real process on a real ring (`processes`), and what an idle broadcaster
//! logs (`progress`).

mod node;
mod processes;
mod progress;
