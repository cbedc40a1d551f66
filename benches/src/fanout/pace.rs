//! The send schedule every peer's writer follows, so all peers see the same pacing.

use crate::clock::{mono_ns, wait_until};
use crate::stats::Costs;
use anyhow::Result;

/// How a writer sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// How long to send.
    pub secs: f64,
    /// Records per second; `None`: as fast as possible.
    pub rate: Option<u64>,
    /// Records per block when unpaced (paced runs send one record per block, at its due time).
    pub batch: usize,
}

/// What a writer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Records sent.
    pub records: u64,
    /// Blocks (calls of `send`) sent.
    pub blocks: u64,
    /// Time from the first send to the end of the last one.
    pub elapsed_ns: u64,
    /// What the sending cost this process (system calls, context switches, allocations).
    pub costs: Costs,
}

/// Call `send(first_seq, n)` for every block of the plan until its time is up. Paced plans
/// send record `i` when `start + i / rate` is due (late records go out at once, one by one, so
/// the average rate holds); unpaced plans send blocks of `batch` back to back.
pub fn drive(plan: &Plan, mut send: impl FnMut(u64, u64) -> Result<()>) -> Result<Sent> {
    let costs = Costs::now();
    let start = mono_ns();
    let end = start + (plan.secs * 1e9) as u64;
    let mut seq = 0u64;
    let mut blocks = 0u64;
    match plan.rate {
        Some(rate) => {
            let rate = rate.max(1);
            loop {
                let due = start + (u128::from(seq) * 1_000_000_000 / u128::from(rate)) as u64;
                if due >= end {
                    break;
                }
                wait_until(due);
                send(seq, 1)?;
                seq += 1;
                blocks += 1;
            }
        }
        None => {
            let batch = plan.batch.max(1) as u64;
            while mono_ns() < end {
                send(seq, batch)?;
                seq += batch;
                blocks += 1;
            }
        }
    }
    let elapsed_ns = mono_ns() - start;
    Ok(Sent {
        records: seq,
        blocks,
        elapsed_ns,
        costs: Costs::now().since(&costs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_plan_sends_on_schedule() {
        let mut n = 0;
        let sent = drive(
            &Plan {
                secs: 0.02,
                rate: Some(10_000),
                batch: 16,
            },
            |seq, k| {
                assert_eq!(seq, n);
                assert_eq!(k, 1);
                n += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(sent.records, 200);
        assert_eq!(sent.blocks, 200);
        assert!(sent.elapsed_ns >= 19_000_000);
    }

    #[test]
    fn unpaced_plan_sends_blocks() {
        let sent = drive(
            &Plan {
                secs: 0.001,
                rate: None,
                batch: 4,
            },
            |seq, k| {
                assert_eq!(seq % 4, 0);
                assert_eq!(k, 4);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(sent.records % 4, 0);
        assert_eq!(sent.records, sent.blocks * 4);
    }
}
