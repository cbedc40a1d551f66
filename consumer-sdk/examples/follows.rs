//! A `custom_json` follower: prints who follows, unfollows or mutes whom, parsing the
//! `follow` plugin's JSON into a type of its own.
//!
//! ```text
//! cargo run -p consumer-sdk --example follows -- hive
//! ```

use consumer_sdk::ops::{CustomJson, OpView};
use consumer_sdk::{Bot, Start};
use serde::Deserialize;
use std::borrow::Cow;

/// `["follow", {"follower": .., "following": .., "what": ["blog"]}]`; `what` is empty for an
/// unfollow and `["ignore"]` for a mute. Other messages of the plugin (`reblog`) are skipped.
#[derive(Deserialize)]
struct Follow<'a> {
    #[serde(borrow)]
    follower: Cow<'a, str>,
    #[serde(borrow)]
    following: Cow<'a, str>,
    #[serde(default)]
    what: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = std::env::args().nth(1).unwrap_or_else(|| "hive".into());
    let mut bot = Bot::builder(ring)
        .topics([CustomJson::TOPIC])
        .start(Start::Latest)
        .open()?;
    while let Some(op) = bot.recv_op()? {
        let Ok(cj) = op.view::<CustomJson>() else {
            continue;
        };
        if cj.id != "follow" {
            continue;
        }
        // The JSON inside the op is whatever the app wrote: a parse failure is not ours to fix.
        let Ok((kind, follow)) = cj.parse_json::<(&str, Follow)>() else {
            continue;
        };
        if kind != "follow" {
            continue;
        }
        let action = match follow.what.first().map(String::as_str) {
            None => "unfollows",
            Some("ignore") => "mutes",
            Some(_) => "follows",
        };
        println!(
            "{} {} {action} {}",
            op.time(),
            follow.follower,
            follow.following
        );
    }
    Ok(())
}
