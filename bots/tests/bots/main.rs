//! Integration tests of the bots crate, one binary: the bots' command lines (`cli`), the
//! `run.sh` supervisor on plain shell processes (`supervisor`), and the real swarm of
//! broadcaster and bots under `run.sh` with processes killed while they work (`swarm`).

mod cli;
mod supervisor;
mod swarm;
