//! `new-posts`: print the URL of every new top-level post.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use bots::{Out, PositionArgs, RingArgs, StartAt, note};
use clap::Parser;
use consumer_sdk::ops::Comment;
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
A top-level post is a `comment` op whose parent_author is empty; its URL is
BASE_URL/@AUTHOR/PERMLINK, one per line, flushed at once. Edits of a post printed in this run
(within the last 50000 posts) are not printed again.

With --cursor, the cursor is saved after each line is flushed: after a crash, the URL printed
last may be printed again (at least once); no post is skipped.";

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
    let topics = ["comment".to_string()];
    let mut bot = bots::open_bot(&config.ring, &topics, config.from, config.cursor, None)?;
    let mut out = Out::new();
    let mut printed = Recent::new(50_000);
    bot.run(|op| -> anyhow::Result<()> {
        let post = match op.decode::<Comment<'_>>() {
            Ok(c) => c,
            Err(e) => {
                note!(
                    "block {} op {}: not a comment ({e}); skipped",
                    op.block(),
                    op.index_in_block()
                );
                return Ok(());
            }
        };
        if !post.is_post() || !printed.insert(format!("{}/{}", post.author, post.permlink)) {
            return Ok(());
        }
        out.print(format_args!(
            "{}/@{}/{}",
            config.base_url, post.author, post.permlink
        ))
        .context("writing to stdout")?;
        Ok(())
    })?;
    Ok(())
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
