//! `transfers`: alert on transfers and power-ups to or from watched accounts.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use bots::{Out, PositionArgs, RingArgs, StartAt, note};
use clap::Parser;
use consumer_sdk::Op;
use consumer_sdk::ops::{Asset, OpView as _, Transfer, TransferToVesting};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
One line per `transfer` or `transfer_to_vesting` op whose sender or recipient is watched:
  block 48404683 2020-11-07T20:22:33 transfer topfivefamily → esclavos75 2.000 STEEM memo \"...\"
  block 25926363 2018-09-13T14:31:39 transfer_to_vesting manimani → kstop1 0.007 STEEM
The time is the block time (UTC); the memo is quoted as a JSON string.

With --cursor, the cursor is saved after each line is flushed: after a crash, the alert printed
last may be printed again (at least once); no alert is skipped.";

/// Alert on transfers and power-ups to or from watched accounts.
#[derive(Debug, Parser)]
#[command(name = "transfers", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    ring: RingArgs,
    /// Account to watch; repeat the option to watch several
    #[arg(long = "account", value_name = "ACCOUNT", required = true, value_parser = bots::parse_account)]
    accounts: Vec<String>,
    #[command(flatten)]
    position: PositionArgs,
}

/// What `transfers` was asked to do, checked.
#[derive(Debug)]
struct Config {
    ring: String,
    accounts: BTreeSet<String>,
    from: StartAt,
    cursor: Option<PathBuf>,
}

impl From<Cli> for Config {
    fn from(cli: Cli) -> Config {
        Config {
            ring: cli.ring.ring,
            accounts: cli.accounts.into_iter().collect(),
            from: cli.position.from,
            cursor: cli.position.cursor,
        }
    }
}

fn main() -> ExitCode {
    let config = Config::from(Cli::parse());
    bots::exit_code(run(config))
}

fn run(config: Config) -> anyhow::Result<()> {
    let topics = [Transfer::TOPIC, TransferToVesting::TOPIC];
    let mut bot = bots::sparse_bot(&config.ring, &topics, config.from, config.cursor).open()?;
    let mut out = Out::new();
    while let Some(op) = bot.recv_op()? {
        match alert(&op, &config.accounts) {
            Ok(Some(line)) => {
                out.line(line.as_bytes()).context("writing to stdout")?;
                // Printed: never print it again after a restart.
                bot.save()?;
            }
            Ok(None) => {}
            Err(e) => note!(
                "block {} op {}: bad {} body ({e}); skipped",
                op.block(),
                op.index_in_block(),
                op.topic()
            ),
        }
    }
    Ok(())
}

/// The alert for `op`, if it moves funds from or to one of `accounts`.
fn alert(op: &Op, accounts: &BTreeSet<String>) -> Result<Option<String>, serde_json::Error> {
    Ok(match op.topic() {
        "transfer" => {
            let t: Transfer<'_> = op.decode()?;
            describe(op, accounts, &t.from, &t.to, t.amount, Some(&t.memo))
        }
        "transfer_to_vesting" => {
            let v: TransferToVesting<'_> = op.decode()?;
            // An empty recipient powers up the sender's own account.
            let to = if v.to.is_empty() { &v.from } else { &v.to };
            describe(op, accounts, &v.from, to, v.amount, None)
        }
        _ => None,
    })
}

fn describe(
    op: &Op,
    accounts: &BTreeSet<String>,
    from: &str,
    to: &str,
    amount: Asset,
    memo: Option<&str>,
) -> Option<String> {
    if !accounts.contains(from) && !accounts.contains(to) {
        return None;
    }
    let time = bots::format_timestamp(op.timestamp().into());
    let mut line = format!(
        "block {} {time} {} {from} → {to} {amount}",
        op.block(),
        op.topic()
    );
    if let Some(memo) = memo {
        line.push_str(" memo ");
        line.push_str(&serde_json::Value::from(memo).to_string());
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "transfers",
            "--account",
            "alice",
            "--account",
            "bob",
            "--account",
            "alice",
        ]);
        assert_eq!(Config::from(cli.unwrap()).accounts.len(), 2);
        assert!(Cli::try_parse_from(["transfers"]).is_err());
        assert!(Cli::try_parse_from(["transfers", "--account", "Alice"]).is_err());
    }
}
