//! A multi-type dispatcher: one `match` over `Operation`, no topic strings.
//!
//! ```text
//! cargo run -p consumer-sdk --example dispatcher -- steem
//! ```

use consumer_sdk::ops::Operation;
use consumer_sdk::{Bot, Start};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = std::env::args().nth(1).unwrap_or_else(|| "steem".into());
    let mut bot = Bot::builder(ring).start(Start::Latest).open()?;
    while let Some(op) = bot.recv_op()? {
        let line = match op.operation() {
            Ok(Operation::Vote(v)) => {
                format!(
                    "{} votes {}% on @{}/{}",
                    v.voter,
                    v.weight / 100,
                    v.author,
                    v.permlink
                )
            }
            Ok(Operation::Comment(c)) if c.is_post() => {
                format!("new post @{}/{}: {}", c.author, c.permlink, c.title)
            }
            Ok(Operation::Transfer(t)) => format!("{} sends {} to {}", t.from, t.amount, t.to),
            Ok(Operation::ClaimRewardBalance(c)) => format!(
                "{} claims {}, {}, {}",
                c.account, c.reward_liquid, c.reward_debt, c.reward_vests
            ),
            Ok(Operation::LimitOrderCreate(o)) => format!(
                "{} offers {} for {} (order {})",
                o.owner, o.amount_to_sell, o.min_to_receive, o.orderid
            ),
            Ok(Operation::AuthorReward(r)) => format!(
                "@{}/{} paid {}, {}, {}",
                r.author, r.permlink, r.liquid_payout, r.debt_payout, r.vesting_payout
            ),
            // Op types without a view, and those this bot does not care about.
            Ok(_) => continue,
            Err(e) => format!("block {}: {e}", op.block()),
        };
        println!("{} {line}", op.block());
    }
    Ok(())
}
