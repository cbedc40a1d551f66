//! Integration tests of the bots crate, one binary: the bots' command lines (`cli`), the
//! `run.sh` supervisor on plain shell processes (`supervisor`), and the real swarm of
//! broadcaster and bots under `run.sh` with processes killed while they work (`swarm`), and the
//! example Procfiles of the NATS bridge carrying the demo from one swarm to another (`nats_demo`).

mod cli;
mod nats_demo;
mod supervisor;
mod swarm;
