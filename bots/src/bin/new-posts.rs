//! `new-posts`: print the URL of every new top-level post.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use bots::{Out, PositionArgs, RingArgs, StartAt, note};
use clap::Parser;
use consumer_sdk::ops::{Comment, OpView as _};
use consumer_sdk::{Cursor, Event, Op, RecvError, Start, Subscriber};
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
A top-level post is a `comment` op whose parent_author is empty; its URL is
BASE_URL/@AUTHOR/PERMLINK, one per line, flushed at once. Edits of a post printed in this run
(within the last 50000 posts) are not printed again.

With --cursor, the cursor is saved after each line is flushed: after a crash, the URL printed
last may be printed again (at least once: only if the crash fell between the two); no post is
skipped. On a restart with a saved cursor, the posts of the ring up to the cursor are read
first, without printing, so that an edit of a post printed before the restart is not printed
again.";

/// Print the URL of every new top-level post.
#[derive(Debug, Parser)]
#[command(name = "new-posts", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    ring: RingArgs,
    #[command(flatten)]
    position: PositionArgs,
    /// Front end the URLs point to, e.g. `https://peakd.com` or `https://hive.blog` for Hive
    #[arg(long, value_name = "URL", default_value = "https://steemit.com", value_parser = parse_base_url)]
    base_url: String,
}

/// What `new-posts` was asked to do, checked.
#[derive(Debug)]
struct Config {
    ring: String,
    from: StartAt,
    cursor: Option<PathBuf>,
    base_url: String,
}

impl From<Cli> for Config {
    fn from(cli: Cli) -> Config {
        Config {
            ring: cli.ring.ring,
            from: cli.position.from,
            cursor: cli.position.cursor,
            base_url: cli.base_url,
        }
    }
}

fn parse_base_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.trim_end_matches('/').is_empty() && !host.contains(char::is_whitespace) =>
        {
            Ok(s.trim_end_matches('/').to_string())
        }
        _ => Err(format!("{s:?} is not an http:// or https:// URL")),
    }
}

fn main() -> ExitCode {
    let config = Config::from(Cli::parse());
    bots::exit_code(run(config))
}

fn run(config: Config) -> anyhow::Result<()> {
    let topics = [Comment::TOPIC];
    let mut bot = bots::sparse_bot(&config.ring, &topics, config.from, config.cursor).open()?;
    let mut printed = Recent::new(50_000);
    // (No subscriber: stopped while waiting for the ring, and the loop below ends at once.)
    if let (Some(saved), Some(_)) = (bot.resumed_from(), bot.subscriber()) {
        recall_printed(&config.ring, saved, &mut printed)?;
    }
    let mut out = Out::new();
    while let Some(op) = bot.recv_op()? {
        let Some(key) = post_key(&op) else {
            continue;
        };
        if !printed.insert(key.clone()) {
            continue;
        }
        out.print(format_args!("{}/@{key}", config.base_url))
            .context("writing to stdout")?;
        // Printed: never print it again after a restart.
        bot.save()?;
    }
    Ok(())
}

/// `AUTHOR/PERMLINK` of a top-level post (the end of its URL), `None` for other comments (and for a body that is not a
/// comment, which is noted).
fn post_key(op: &Op) -> Option<String> {
    match op.decode::<Comment<'_>>() {
        Ok(c) if c.is_post() => Some(format!("{}/{}", c.author, c.permlink)),
        Ok(_) => None,
        Err(e) => {
            note!(
                "block {} op {}: not a comment ({e}); skipped",
                op.block(),
                op.index_in_block()
            );
            None
        }
    }
}

/// Fills `printed` with the posts the ring still holds up to `saved`, the cursor of an earlier
/// run: what that run printed (edits of those posts are not new).
fn recall_printed(ring: &str, saved: Cursor, printed: &mut Recent) -> anyhow::Result<()> {
    let mut sub = Subscriber::open(ring)
        .and_then(|b| b.topics([Comment::TOPIC]).start(Start::Earliest))
        .context("reading the ring for the posts printed before")?;
    loop {
        match sub.try_recv() {
            // By position only: a cursor saved at a block end has no transaction indexes.
            Ok(Some(Event::Op(op)))
                if (op.block(), op.index_in_block()) <= (saved.block, saved.index_in_block) =>
            {
                if let Some(key) = post_key(&op) {
                    printed.insert(key);
                }
            }
            Ok(Some(Event::BlockEnd(end))) if end.block < saved.block => {}
            // Lapped while recalling: the posts overwritten are too old to matter.
            Err(RecvError::Lagged { .. }) => {}
            // Past the cursor, caught up with the ring, or a ring that cannot be read now (the
            // bot's own subscriber reports it).
            _ => return Ok(()),
        }
    }
}

/// The last `capacity` distinct keys inserted.
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Recent {
    fn new(capacity: usize) -> Recent {
        Recent {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Whether `key` is new; if so it is remembered, and the oldest key forgotten when full.
    fn insert(&mut self, key: String) -> bool {
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base_url("https://peakd.com/").as_deref(),
            Ok("https://peakd.com")
        );
        assert_eq!(
            parse_base_url("http://localhost:8080").as_deref(),
            Ok("http://localhost:8080")
        );
        assert!(parse_base_url("peakd.com").is_err());
        assert!(parse_base_url("https://").is_err());
        Cli::command().debug_assert();
    }

    #[test]
    fn recent_forgets_the_oldest() {
        let mut r = Recent::new(2);
        assert!(r.insert("a".into()));
        assert!(!r.insert("a".into()));
        assert!(r.insert("b".into()));
        assert!(r.insert("c".into()));
        assert!(r.insert("a".into()));
        assert!(!r.insert("c".into()));
    }
}
