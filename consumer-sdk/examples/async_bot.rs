//! An async bot: for every transfer to a watched account, POST it as JSON to a webhook. The
//! HTTP call of one op runs while the next ops are read: waiting for the ring never blocks the
//! runtime (see `Subscriber::into_stream`).
//!
//! ```text
//! cargo run -p consumer-sdk --features tokio --example async_bot -- hive alice http://127.0.0.1:8080/hook
//! ```

use consumer_sdk::ops::{OpView, Transfer};
use consumer_sdk::{RecvError, Start, Subscriber};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: async_bot RING ACCOUNT WEBHOOK_URL";
    let (ring, account, webhook) = match (args.next(), args.next(), args.next()) {
        (Some(r), Some(a), Some(w)) => (r, a, w),
        _ => return Err(usage.into()),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut ops = Subscriber::open(&ring)?
        .topics([Transfer::TOPIC])
        .start(Start::Latest)?
        .into_stream()?;
    while let Some(op) = ops.next().await {
        let op = match op {
            Ok(op) => op,
            Err(e @ (RecvError::Lagged { .. } | RecvError::Gap { .. })) => {
                eprintln!("{e}; reading on");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let transfer: Transfer = op.view()?;
        if transfer.to != account {
            continue;
        }
        let body = serde_json::json!({
            "block": op.block(),
            "time": op.time().to_string(),
            "transfer": transfer,
        });
        // A webhook that fails is reported, not fatal: the next transfer is tried anyway.
        let request = http
            .post(&webhook)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        match request.send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => eprintln!("block {}: webhook answered {}", op.block(), r.status()),
            Err(e) => eprintln!("block {}: webhook: {e}", op.block()),
        }
    }
    Ok(())
}
