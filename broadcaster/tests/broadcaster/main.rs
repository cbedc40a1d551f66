//! Integration tests of the broadcaster: decoding the real data, replaying it, following fake
//! nodes with faults (`node`), what a live network adds (`live`: other chains, refusals,
//! rate limits, stalls), the binary as a real process on a real ring (`processes`), and what an
//! idle broadcaster logs (`progress`).

mod live;
mod metrics;
mod node;
mod processes;
mod progress;
