//! `vote-stats`: count votes, comments and transfers, and rank the busiest voters.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use bots::{IDLE_POLL, Out, RingArgs, StartAt, note};
use clap::{CommandFactory as _, Parser};
use consumer_sdk::ops::Vote;
use consumer_sdk::{FORK_MAX_BLOCKS, Fork, Op, Step};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const AFTER_HELP: &str = "\
Every interval, one line with what was seen in it, e.g.
  last 60s: 20 blocks 48403720..48403739, votes 89, comments 5, transfers 3; top voters: alice 4, bob 2
`comments` counts every `comment` op (posts, replies and edits); `transfers` counts `transfer`
ops. An interval without blocks is reported at most once a minute. Top voters are the 10 accounts with most votes, ties in name order. On SIGTERM or SIGINT,
or once --until-block is reached, a last line `summary: ...` covers the whole run.

When the broadcaster follows the head and the chain switches to another branch, the ring says
which blocks were orphaned: their counts are taken back (from the current interval, or from the
summary if their interval was reported already; a line on stderr says so), and the new branch's
blocks are counted instead.";

/// Count votes, comments and transfers, and rank the busiest voters.
#[derive(Debug, Parser)]
#[command(name = "vote-stats", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    ring: RingArgs,
    /// Seconds between two reports
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: u64,
    /// Where to start: `latest`, `earliest` or a block number
    #[arg(long, value_name = "latest|earliest|BLOCK", default_value = "latest")]
    from: StartAt,
    /// Print the summary and exit once every op through block N was counted
    #[arg(long, value_name = "N")]
    until_block: Option<u64>,
}

/// What `vote-stats` was asked to do, checked.
#[derive(Debug)]
struct Config {
    ring: String,
    interval: Duration,
    from: StartAt,
    until_block: Option<u64>,
}

impl Cli {
    fn config(self) -> Result<Config, clap::Error> {
        bots::check_until(self.from, self.until_block)
            .map_err(|e| Cli::command().error(clap::error::ErrorKind::ArgumentConflict, e))?;
        Ok(Config {
            ring: self.ring.ring,
            interval: Duration::from_secs(self.interval),
            from: self.from,
            until_block: self.until_block,
        })
    }
}

fn main() -> ExitCode {
    let config = Cli::parse().config().unwrap_or_else(|e| e.exit());
    bots::exit_code(run(config))
}

fn run(config: Config) -> anyhow::Result<()> {
    let topics = ["vote", "comment", "transfer"];
    let mut out = Out::new();
    let mut builder = bots::bot(&config.ring, &topics, config.from, None);
    if let Some(n) = config.until_block {
        builder = builder.until_block(n);
    }
    // Stopped while waiting for the ring: the loop ends at once, with nothing seen.
    let mut bot = builder.open()?;
    let (mut interval, mut total) = (Tally::default(), Tally::default());
    // The block being read, and the newest blocks counted, each on its own, so that a fork
    // notice can take them back.
    let mut block = Tally::default();
    let mut recent: VecDeque<Tally> = VecDeque::new();
    let mut next_report = Instant::now() + config.interval;
    let mut last_line = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_report {
            if interval.blocks > 0 || now.duration_since(last_line) >= QUIET_REPORT_EVERY {
                print_report(
                    &mut out,
                    &format!("last {}s", config.interval.as_secs()),
                    &interval,
                )?;
                last_line = now;
            }
            total.merge(std::mem::take(&mut interval));
            next_report += config.interval;
            if next_report <= now {
                // Fell behind (e.g. the machine was suspended): report again a whole interval on.
                next_report = now + config.interval;
            }
        }
        match bot.recv_timeout(next_report.saturating_duration_since(now).min(IDLE_POLL))? {
            Step::Stopped | Step::Done => break,
            Step::BlockEnd(end) => {
                block.block(end.block);
                interval.merge(block.clone());
                if recent.len() as u64 == FORK_MAX_BLOCKS {
                    recent.pop_front();
                }
                recent.push_back(std::mem::take(&mut block));
            }
            Step::Fork(fork) => {
                block = Tally::default();
                take_back(&fork, &mut recent, &mut interval, &mut total);
            }
            Step::Op(op) => {
                if let Err(e) = block.add(&op) {
                    note!(
                        "block {} op {}: bad {} body ({e}); not counted",
                        op.block(),
                        op.index_in_block(),
                        op.topic()
                    );
                }
            }
            _ => {}
        }
    }
    total.merge(interval);
    print_report(&mut out, "summary", &total)
}

/// Takes the counts of the blocks `fork` orphaned back from the interval that counted them (the
/// current one, or the summary's total when theirs was reported already).
fn take_back(fork: &Fork, recent: &mut VecDeque<Tally>, interval: &mut Tally, total: &mut Tally) {
    let mut taken = 0;
    while let Some(last) = recent.back().and_then(|b| b.first_block) {
        if last < fork.first_block {
            break;
        }
        let orphaned = recent.pop_back().unwrap_or_default();
        if interval.first_block.is_some_and(|first| last >= first) {
            interval.take_back(&orphaned);
        } else {
            total.take_back(&orphaned);
        }
        taken += 1;
    }
    note!(
        "fork: blocks {}..={} were orphaned; the counts of the {taken} of them counted here are taken back",
        fork.first_block,
        fork.last_block()
    );
}

/// The shortest time between two reports of intervals without blocks.
const QUIET_REPORT_EVERY: Duration = Duration::from_secs(60);

fn print_report(out: &mut Out, label: &str, tally: &Tally) -> anyhow::Result<()> {
    out.print(format_args!("{}", Report { label, tally }))
        .context("writing to stdout")
}

/// Counts over some span of blocks.
#[derive(Debug, Default, Clone)]
struct Tally {
    blocks: u64,
    first_block: Option<u64>,
    last_block: Option<u64>,
    votes: u64,
    comments: u64,
    transfers: u64,
    voters: HashMap<String, u64>,
}

impl Tally {
    fn add(&mut self, op: &Op) -> Result<(), serde_json::Error> {
        match op.topic() {
            "vote" => {
                let vote: Vote<'_> = op.decode()?;
                self.votes += 1;
                match self.voters.get_mut(vote.voter.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        self.voters.insert(vote.voter.into_owned(), 1);
                    }
                }
            }
            "comment" => self.comments += 1,
            "transfer" => self.transfers += 1,
            _ => {}
        }
        Ok(())
    }

    fn block(&mut self, block: u64) {
        self.blocks += 1;
        self.first_block.get_or_insert(block);
        self.last_block = Some(block);
    }

    /// Removes the counts of `newest`, the newest blocks counted here (orphaned by a fork).
    fn take_back(&mut self, newest: &Tally) {
        self.blocks = self.blocks.saturating_sub(newest.blocks);
        self.votes = self.votes.saturating_sub(newest.votes);
        self.comments = self.comments.saturating_sub(newest.comments);
        self.transfers = self.transfers.saturating_sub(newest.transfers);
        for (voter, n) in &newest.voters {
            if let Some(count) = self.voters.get_mut(voter) {
                *count = count.saturating_sub(*n);
                if *count == 0 {
                    self.voters.remove(voter);
                }
            }
        }
        if self.blocks == 0 {
            (self.first_block, self.last_block) = (None, None);
        } else if let Some(first) = newest.first_block {
            self.last_block = Some(first - 1);
        }
    }

    fn merge(&mut self, later: Tally) {
        self.blocks += later.blocks;
        self.first_block = self.first_block.or(later.first_block);
        self.last_block = later.last_block.or(self.last_block);
        self.votes += later.votes;
        self.comments += later.comments;
        self.transfers += later.transfers;
        for (voter, n) in later.voters {
            *self.voters.entry(voter).or_default() += n;
        }
    }

    /// The `n` accounts with most votes, most first, ties in name order.
    fn top_voters(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.voters.iter().map(|(v, &c)| (v.as_str(), c)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

/// One report line.
struct Report<'a> {
    label: &'a str,
    tally: &'a Tally,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.tally;
        write!(f, "{}: {} blocks", self.label, t.blocks)?;
        if let (Some(first), Some(last)) = (t.first_block, t.last_block) {
            write!(f, " {first}..{last}")?;
        }
        write!(
            f,
            ", votes {}, comments {}, transfers {}; top voters:",
            t.votes, t.comments, t.transfers
        )?;
        let top = self.tally.top_voters(10);
        if top.is_empty() {
            return f.write_str(" none");
        }
        for (i, (voter, n)) in top.iter().enumerate() {
            write!(f, "{} {voter} {n}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line() {
        let mut t = Tally::default();
        assert_eq!(
            Report {
                label: "last 60s",
                tally: &t
            }
            .to_string(),
            "last 60s: 0 blocks, votes 0, comments 0, transfers 0; top voters: none"
        );
        let mut later = Tally {
            votes: 3,
            comments: 1,
            ..Tally::default()
        };
        later.voters.extend([
            ("bob".to_string(), 1),
            ("carol".to_string(), 1),
            ("alice".to_string(), 1),
        ]);
        later.block(7);
        later.block(9);
        t.block(5);
        t.votes = 1;
        t.voters.insert("carol".into(), 1);
        t.merge(later);
        assert_eq!(
            Report {
                label: "summary",
                tally: &t
            }
            .to_string(),
            "summary: 3 blocks 5..9, votes 4, comments 1, transfers 0; top voters: carol 2, alice 1, bob 1"
        );
        Cli::command().debug_assert();
        assert!(Cli::try_parse_from(["vote-stats", "--interval", "0"]).is_err());
    }

    /// Orphaned blocks leave the interval that counted them: the current one, or the total
    /// when theirs was reported already.
    #[test]
    fn a_fork_takes_counts_back_where_they_were_counted() {
        let counted = |block: u64, voter: &str| {
            let mut t = Tally {
                votes: 1,
                ..Tally::default()
            };
            t.voters.insert(voter.into(), 1);
            t.block(block);
            t
        };
        let (mut total, mut interval) = (counted(3, "alice"), Tally::default());
        total.merge(counted(4, "bob"));
        interval.merge(counted(5, "bob"));
        let mut recent: VecDeque<Tally> =
            [counted(3, "alice"), counted(4, "bob"), counted(5, "bob")].into();
        let fork = Fork {
            first_block: 4,
            orphaned_ids: vec![[4; 20], [5; 20]],
            ancestor_id: [3; 20],
        };
        take_back(&fork, &mut recent, &mut interval, &mut total);
        assert_eq!(recent.len(), 1);
        let line = |tally: &Tally| Report { label: "x", tally }.to_string();
        assert_eq!(
            line(&total),
            "x: 1 blocks 3..3, votes 1, comments 0, transfers 0; top voters: alice 1"
        );
        assert_eq!(
            line(&interval),
            "x: 0 blocks, votes 0, comments 0, transfers 0; top voters: none"
        );
    }

    #[test]
    fn cli_checks() {
        let cli = Cli::try_parse_from(["vote-stats", "--from", "10", "--until-block", "9"]);
        assert!(cli.unwrap().config().is_err());
    }
}
