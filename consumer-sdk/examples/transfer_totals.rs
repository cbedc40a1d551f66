//! Transfer totals per asset: sums every `transfer` and prints the totals, per asset in the
//! ring's chain's spelling, every 100 blocks and when stopped (Ctrl-C).
//!
//! ```text
//! cargo run -p consumer-sdk --example transfer_totals -- steem earliest
//! ```

use consumer_sdk::ops::{OpView, Totals, Transfer};
use consumer_sdk::{Bot, Start, Step};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ring = args.next().unwrap_or_else(|| "steem".into());
    let start = match args.next().as_deref() {
        None | Some("latest") => Start::Latest,
        Some("earliest") => Start::Earliest,
        Some(n) => Start::Block(n.parse()?),
    };
    let mut bot = Bot::builder(ring)
        .topics([Transfer::TOPIC])
        .start(start)
        .open()?;
    let mut totals = Totals::new();
    let mut count = 0u64;
    loop {
        match bot.recv_timeout(Duration::from_secs(1))? {
            Step::Op(op) => match op.view::<Transfer>() {
                Ok(t) => {
                    totals.add(&t.amount);
                    count += 1;
                }
                // Keep going: one bad body must not stop the totals.
                Err(e) => eprintln!("block {}: {e}", op.block()),
            },
            Step::BlockEnd(end) if end.block % 100 == 0 => {
                println!("through block {}: {count} transfers, {totals}", end.block);
            }
            Step::Stopped | Step::Done => break,
            _ => {}
        }
    }
    println!("{count} transfers: {totals}");
    Ok(())
}
