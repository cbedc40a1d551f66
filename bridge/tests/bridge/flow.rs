//! The stream's format and delivery: what any NATS client sees, exactly once.

use crate::support::*;
use crate::{need_server, runtime, stream_records, to_rec};
use async_nats::jetstream::{self, consumer};
use bridge::wire::Msg;
use futures_util::StreamExt;
use std::time::Duration;

#[test]
fn the_far_ring_and_the_stream_hold_every_op_once_in_order() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    server.start();
    let rt = runtime();
    let js = server.js(&rt);

    let (src, far) = (dir.path().join("src.ring"), dir.path().join("far.ring"));
    let mut source = Source::create(&src, 4 << 20);
    let first: Vec<_> = (1000..1300).map(|n| model_block(1, n, 6, 300)).collect();
    first.iter().for_each(|b| source.write(b));

    let url = server.url();
    let mut sender = Proc::new(
        RING_TO_NATS,
        &[
            "--ring",
            src.to_str().unwrap(),
            "--nats",
            &url,
            "--stream",
            "CHAIN",
        ],
        dir.path().join("ring-to-nats.log"),
    );
    let mut receiver = Proc::new(
        NATS_TO_RING,
        &[
            "--ring",
            far.to_str().unwrap(),
            "--nats",
            &url,
            "--stream",
            "CHAIN",
            "--ring-mib",
            "4",
        ],
        dir.path().join("nats-to-ring.log"),
    );
    sender.start();
    receiver.start();
    let logs = Proc::logs_of(&[&sender, &receiver]);
    let got = read_ring(&far, 1299, Duration::from_secs(30));
    assert_same(&got, &expected(&first), &logs);

    // The stream holds the same, one message per op and per block end, and nothing else.
    let records = stream_records(&rt, &js, "CHAIN");
    let stream: Vec<Rec> = records.iter().map(|(_, r)| r.clone()).collect();
    assert_same(&stream, &expected(&first), &logs);

    // Plain JSON on plain subjects, the coordinates in headers, an id per op.
    let (block, op) = first
        .iter()
        .find_map(|b| b.ops.first().map(|op| (b, op)))
        .unwrap();
    let seq = records
        .iter()
        .find(|(_, r)| matches!(r, Rec::Op { block: b, index: 0, .. } if *b == block.number))
        .unwrap()
        .0;
    rt.block_on(async {
        let s = js.get_stream("CHAIN").await.unwrap();
        let subject = format!("steem.op.{}", op.topic);
        let m = s.get_raw_message(seq).await.unwrap();
        assert_eq!(m.subject.as_str(), subject);
        assert_eq!(&m.payload[..], &op.payload[..]);
        let h = |name: &str| m.headers.get(name).map(|v| v.as_str().to_string());
        let id = m.headers.get(async_nats::header::NATS_MESSAGE_ID);
        assert_eq!(
            id.map(|v| v.as_str()),
            Some(format!("steem/{}/0", block.number).as_str())
        );
        assert_eq!(h("Trx-Id"), Some(const_hex::encode(op.meta.trx_id)));
        assert_eq!(h("Trx-Index"), Some(op.meta.trx_index.to_string()));
        assert_eq!(h("Op-Index"), Some(op.meta.op_index.to_string()));
        assert_eq!(h("Virtual"), Some(op.meta.virtual_op.to_string()));
        assert_eq!(h("Timestamp"), Some(block.timestamp.to_string()));
        let body: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(body["n"], 0);

        // Exactly once by message id: the same id again is a duplicate, not a new message.
        let before = s.get_info().await.unwrap().state.messages;
        let ack = js
            .send_publish(
                subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(m.payload.clone())
                    .message_id(format!("steem/{}/0", block.number)),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(ack.duplicate, "a republished op was stored again");
        assert_eq!(s.get_info().await.unwrap().state.messages, before);
    });
    assert_eq!(
        sender.stop(Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        logs()
    );
    assert_eq!(
        receiver.stop(Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        logs()
    );
}

#[test]
fn a_durable_consumer_reads_every_op_once_across_a_sender_restart() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    server.start();
    let rt = runtime();
    // The pull subscription below is dropped (and cleans up) inside the runtime.
    let _in_runtime = rt.enter();
    let js = server.js(&rt);
    let src = dir.path().join("src.ring");
    let mut source = Source::create(&src, 4 << 20);
    let blocks: Vec<_> = (1..=400).map(|n| model_block(2, n, 5, 200)).collect();
    blocks[..200].iter().for_each(|b| source.write(b));

    let url = server.url();
    let mut sender = Proc::new(
        RING_TO_NATS,
        &[
            "--ring",
            src.to_str().unwrap(),
            "--nats",
            &url,
            "--max-in-flight",
            "8",
        ],
        dir.path().join("ring-to-nats.log"),
    );
    sender.start();
    let logs = Proc::logs_of(&[&sender]);
    let stream = rt.block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = js.get_stream("STEEM").await {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no stream: {}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let durable = rt
        .block_on(stream.create_consumer(consumer::pull::Config {
            durable_name: Some("bot".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        }))
        .unwrap();
    let mut got = Vec::new();
    // One pull subscription for the whole test, as a bot would keep it.
    let mut messages = rt.block_on(async { durable.messages().await }).unwrap();
    let mut fetch = |got: &mut Vec<Rec>, until: usize| {
        rt.block_on(async {
            while got.len() < until {
                let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
                    .await
                    .unwrap_or_else(|_| panic!("stalled at {} of {until}: {}", got.len(), logs()))
                    .unwrap()
                    .unwrap();
                let msg = Msg::decode(
                    "steem",
                    m.subject.as_str(),
                    m.headers.as_ref().unwrap(),
                    m.payload.clone(),
                )
                .unwrap();
                got.push(to_rec(msg));
                m.ack().await.unwrap();
            }
        })
    };
    let want = expected(&blocks);
    let half = expected(&blocks[..200]).len();
    // Read part of the first half, kill the sender while it may be mid-block, then go on.
    fetch(&mut got, half / 2);
    sender.kill9();
    blocks[200..].iter().for_each(|b| source.write(b));
    sender.start();
    fetch(&mut got, want.len());
    assert_same(&got, &want, &logs);
    // Nothing more arrives: no duplicate came after the last block end.
    rt.block_on(async {
        let more = tokio::time::timeout(Duration::from_millis(700), messages.next()).await;
        assert!(
            more.is_err(),
            "a message after the last block end: {more:?}"
        );
    });
}

#[test]
fn a_stream_of_other_subjects_is_refused_with_a_clear_error() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path());
    server.start();
    let rt = runtime();
    let js = server.js(&rt);
    rt.block_on(js.create_stream(jetstream::stream::Config {
        name: "OTHER".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    }))
    .unwrap();
    let src = dir.path().join("src.ring");
    let mut source = Source::create(&src, 1 << 20);
    source.write(&model_block(6, 1, 3, 10));
    let url = server.url();
    let mut sender = Proc::new(
        RING_TO_NATS,
        &[
            "--ring",
            src.to_str().unwrap(),
            "--nats",
            &url,
            "--stream",
            "OTHER",
        ],
        dir.path().join("ring-to-nats.log"),
    );
    sender.start();
    wait_for("ring-to-nats to give up", Duration::from_secs(20), || {
        sender.exited().is_some()
    });
    let log = sender.log_text();
    assert_eq!(sender.exited().and_then(|s| s.code()), Some(1), "{log}");
    assert!(
        log.contains("stream OTHER carries orders.>, not steem.>"),
        "{log}"
    );
    // Nothing was published into it.
    let messages = rt.block_on(async {
        let mut s = js.get_stream("OTHER").await.unwrap();
        s.info().await.unwrap().state.messages
    });
    assert_eq!(messages, 0);
}

#[test]
fn a_server_without_room_for_the_stream_is_named_and_a_fitting_size_then_flows() {
    let bin = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::new(bin, dir.path()).with_store_limit(64 << 20);
    server.start();
    let src = dir.path().join("src.ring");
    let mut source = Source::create(&src, 4 << 20);
    let blocks: Vec<_> = (1..=50).map(|n| model_block(3, n, 4, 100)).collect();
    blocks.iter().for_each(|b| source.write(b));
    let url = server.url();
    let args = |size: &'static str| {
        [
            "--ring",
            src.to_str().unwrap(),
            "--nats",
            &url,
            "--max-bytes",
            size,
        ]
        .map(str::to_string)
    };

    // 1 GiB does not fit a 64 MiB store: said plainly, and retried rather than given up.
    let log = dir.path().join("too-big.log");
    let too_big = args("1GiB");
    let too_big: Vec<&str> = too_big.iter().map(String::as_str).collect();
    let mut sender = Proc::new(RING_TO_NATS, &too_big, log.clone());
    sender.start();
    let said =
        "the NATS server has no room for a new stream STEEM of --max-bytes 1073741824 (1.0 GiB)";
    wait_for(
        "the sender to name the size",
        Duration::from_secs(20),
        || sender.log_text().contains(said),
    );
    wait_for("a retry", Duration::from_secs(20), || {
        sender.log_text().matches(said).count() >= 2
    });
    assert!(sender.exited().is_none(), "{}", sender.log_text());
    assert!(sender.log_text().contains("lower --max-bytes"));
    assert_eq!(sender.stop(Duration::from_secs(10)).code(), Some(0));

    // The same server takes a stream that fits, and every op reaches it.
    let fits = args("16MiB");
    let fits: Vec<&str> = fits.iter().map(String::as_str).collect();
    let mut sender = Proc::new(RING_TO_NATS, &fits, dir.path().join("fits.log"));
    sender.start();
    let rt = runtime();
    let js = server.js(&rt);
    let logs = Proc::logs_of(&[&sender]);
    let want = expected(&blocks);
    let stored = || {
        rt.block_on(async {
            match js.get_stream("STEEM").await {
                Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
                Err(_) => 0,
            }
        })
    };
    wait_for("every op in the stream", Duration::from_secs(30), || {
        stored() >= want.len() as u64
    });
    let got: Vec<Rec> = stream_records(&rt, &js, "STEEM")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_same(&got, &want, &logs);
    rt.block_on(async {
        let info = js
            .get_stream("STEEM")
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap();
        assert_eq!(info.config.max_bytes, 16 << 20);
    });
    assert_eq!(
        sender.stop(Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        logs()
    );
}
