//! An upvoter: for every new root post by one of the given authors, print the vote it would
//! broadcast (signing and broadcasting are a node client's job, outside this crate).
//!
//! ```text
//! cargo run -p consumer-sdk --example upvoter -- hive alice bob
//! ```
//!
//! Resumes where it stopped (cursor file `upvoter.cursor`), waits for the broadcaster if it is
//! not there yet, and stops cleanly on Ctrl-C.

use consumer_sdk::ops::{Comment, OpView, Vote};
use consumer_sdk::{Bot, Start};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ring = args.next().ok_or("usage: upvoter RING AUTHOR...")?;
    let authors: BTreeSet<String> = args.collect();
    if authors.is_empty() {
        return Err("usage: upvoter RING AUTHOR...".into());
    }
    let mut bot = Bot::builder(ring)
        .topics([Comment::TOPIC])
        .start(Start::Latest)
        .cursor_file("upvoter.cursor")
        .open()?;
    let mut out = std::io::stdout().lock();
    bot.run(|op| {
        let post: Comment = op.view()?;
        // Edits are comment ops too; a real upvoter would remember what it voted on.
        if post.is_post() && authors.contains(post.author.as_ref()) {
            let vote = Vote {
                voter: Cow::Borrowed("my-curator"),
                author: post.author,
                permlink: post.permlink,
                weight: 10_000,
            };
            // The op a node client would sign: ["vote", {...}].
            writeln!(out, "{}", serde_json::json!(["vote", vote]))?;
            out.flush()?;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    Ok(())
}
