//! The bot loop: waiting for the ring, cursor saving, reports, caught-up, signals, with real
//! files, threads and processes.

use crate::TempRing;
use crate::processes::{child, finish, ops_in, publish, signal, wait_for_file};
use consumer_sdk::{
    Bot, BotError, CreateOptions, Cursor, CursorFile, Notice, ProducerStatus, Publisher, Start,
};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Notices collected by a bot's handler.
#[derive(Clone, Default)]
struct Notices(Arc<Mutex<Vec<Notice>>>);

impl Notices {
    fn handler(&self) -> impl FnMut(&Notice) + Send + 'static {
        let list = Arc::clone(&self.0);
        move |n| list.lock().unwrap().push(n.clone())
    }
    fn all(&self) -> Vec<Notice> {
        self.0.lock().unwrap().clone()
    }
    fn count(&self, pred: impl Fn(&Notice) -> bool) -> usize {
        self.all().iter().filter(|n| pred(n)).count()
    }
    /// Waits (generously) until a notice satisfying `pred` arrived.
    fn wait_for(&self, what: &str, pred: impl Fn(&Notice) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count(&pred) == 0 {
            assert!(Instant::now() < deadline, "no {what}: {:?}", self.all());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Every (block, index in block) that blocks `from..=to` of `processes::publish` hold.
fn all_ops(from: u64, to: u64) -> Vec<(u64, u32)> {
    (from..=to)
        .flat_map(|b| (0..ops_in(b) as u32).map(move |i| (b, i)))
        .collect()
}

#[test]
fn waits_for_the_ring_and_saves_the_cursor_after_each_op() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("late.ring");
    let cursor_path = dir.path().join("bot.cursor");
    let notices = Notices::default();
    let bot = {
        let (ring, cursor_path, notices) = (ring.clone(), cursor_path.clone(), notices.clone());
        std::thread::spawn(move || {
            let mut bot = Bot::builder(ring.to_str().unwrap())
                .start(Start::Earliest)
                .cursor_file(&cursor_path)
                .until_block(4)
                .handle_signals(false)
                .on_notice(notices.handler())
                .open()
                .unwrap();
            let file = CursorFile::new(&cursor_path);
            let mut seen = Vec::new();
            let mut previous: Option<Cursor> = None;
            bot.run(|op| {
                // The op before this one is saved by now; this one is not yet.
                assert_eq!(file.load().unwrap(), previous);
                previous = Some(op.cursor());
                seen.push((op.block(), op.index_in_block()));
                Ok::<_, std::io::Error>(())
            })
            .unwrap();
            assert_eq!(file.load().unwrap().map(|c| c.block), Some(4));
            seen
        })
    };
    notices.wait_for(
        "waiting notice",
        |n| matches!(n, Notice::WaitingForRing { path } if path == &ring),
    );
    let mut p = Publisher::create(ring.to_str().unwrap(), &CreateOptions::default()).unwrap();
    for b in 1..=4 {
        publish(&mut p, b);
    }
    assert_eq!(bot.join().unwrap(), all_ops(1, 4));
    assert_eq!(
        notices.count(|n| matches!(n, Notice::WaitingForRing { .. })),
        1
    );
}

#[test]
fn a_failed_op_is_not_saved_and_comes_again_after_a_restart() {
    let (ring, mut p) = TempRing::create(1 << 16);
    for b in 1..=4 {
        publish(&mut p, b);
    }
    let cursor = ring.dir().join("c");
    let open = || {
        Bot::builder(ring.name())
            .start(Start::Earliest)
            .cursor_file(&cursor)
            .until_block(4)
            .handle_signals(false)
            .on_notice(|_| {})
            .open()
            .unwrap()
    };
    let mut seen = Vec::new();
    let err = open()
        .run(|op| {
            if seen.len() == 3 {
                return Err("cannot reach the node");
            }
            seen.push((op.block(), op.index_in_block()));
            Ok(())
        })
        .unwrap_err();
    let BotError::Handler { cursor: c, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((c.block, c.index_in_block), all_ops(1, 4)[3]);
    assert!(err.to_string().contains("cannot reach the node"), "{err}");
    let mut again = Vec::new();
    open()
        .run(|op| {
            again.push((op.block(), op.index_in_block()));
            Ok::<_, std::io::Error>(())
        })
        .unwrap();
    seen.extend(again);
    assert_eq!(seen, all_ops(1, 4));
}

#[test]
fn lag_is_reported_once_then_caught_up() {
    let (ring, mut p) = TempRing::create(8192);
    publish(&mut p, 1);
    let notices = Notices::default();
    let mut bot = Bot::builder(ring.name())
        .start(Start::Earliest)
        .handle_signals(false)
        .on_notice(notices.handler())
        .open()
        .unwrap();
    // Lap the bot several times over before it reads anything.
    for b in 2..=400 {
        publish(&mut p, b);
    }
    let mut last = 0;
    while !bot.is_caught_up() {
        if let consumer_sdk::Step::BlockEnd(end) =
            bot.recv_timeout(Duration::from_millis(50)).unwrap()
        {
            last = end.block;
        }
    }
    assert_eq!(last, 400);
    let all = notices.all();
    let lagged: Vec<_> = all
        .iter()
        .filter(|n| matches!(n, Notice::Lagged { lost, .. } if *lost > 0))
        .collect();
    assert_eq!(lagged.len(), 1, "{all:?}");
    assert_eq!(
        all.last(),
        Some(&Notice::CaughtUp { block: Some(400) }),
        "{all:?}"
    );
    assert!(lagged[0].to_string().contains("records lost"));
    let caught_up = |n: &Notice| matches!(n, Notice::CaughtUp { .. });
    assert_eq!(all.iter().filter(|n| caught_up(n)).count(), 1, "{all:?}");
    // More blocks, read at once: no new report.
    publish(&mut p, 401);
    while bot.recv_timeout(Duration::from_millis(50)).unwrap() != consumer_sdk::Step::Idle {}
    assert_eq!(notices.all().len(), all.len());
}

#[test]
fn a_dead_broadcaster_is_reported_once_and_its_return_too() {
    let (ring, mut p) = TempRing::create(1 << 16);
    publish(&mut p, 1);
    drop(p);
    // A writer process publishes block 2, then exits: its heartbeat goes stale, its pid away.
    let writer = child(
        "writer",
        ring.path(),
        &[("FROM", "2".into()), ("TO", "2".into())],
    );
    finish(writer, Duration::from_secs(30), "writer");
    let notices = Notices::default();
    let mut bot = Bot::builder(ring.name())
        .start(Start::Earliest)
        .stale_after(Duration::from_millis(100))
        .handle_signals(false)
        .on_notice(notices.handler())
        .open()
        .unwrap();
    let down = |n: &Notice| matches!(n, Notice::ProducerDown(ProducerStatus::Dead { .. }));
    let deadline = Instant::now() + Duration::from_secs(30);
    while notices.count(down) == 0 {
        assert!(Instant::now() < deadline, "{:?}", notices.all());
        bot.recv_timeout(Duration::from_millis(20)).unwrap();
    }
    // Many more idle polls: still one report.
    for _ in 0..20 {
        bot.recv_timeout(Duration::from_millis(20)).unwrap();
    }
    assert_eq!(notices.count(down), 1, "{:?}", notices.all());
    let mut p = crate::reopen(ring.name()).unwrap();
    publish(&mut p, 3);
    let back = |n: &Notice| matches!(n, Notice::ProducerBack { .. });
    while notices.count(back) == 0 {
        assert!(Instant::now() < deadline, "{:?}", notices.all());
        bot.recv_timeout(Duration::from_millis(20)).unwrap();
        p.heartbeat();
    }
    assert_eq!(notices.count(down), 1);
    let text = notices.all().iter().find(|n| down(n)).unwrap().to_string();
    assert!(text.contains("is not running"), "{text}");
}

/// Child role: a bot with the default signal handling that reads every op of the ring at
/// `RING` into the file `OUT`, saving its cursor to `CURSOR`, and creates `OUT.ready` once it
/// is caught up.
pub(crate) fn bot_role(ring: &str) {
    let out_path = std::env::var("OUT").unwrap();
    let ready = format!("{out_path}.ready");
    let mut out = std::fs::File::create(&out_path).unwrap();
    let mut bot = Bot::builder(ring)
        .start(Start::Earliest)
        .cursor_file(std::env::var("CURSOR").unwrap())
        .on_notice(move |n| {
            if matches!(n, Notice::CaughtUp { .. }) {
                std::fs::write(&ready, b"").unwrap();
            }
        })
        .open()
        .unwrap();
    bot.run(|op| {
        use std::io::Write;
        writeln!(out, "{} {}", op.block(), op.index_in_block())
    })
    .unwrap();
}

#[test]
fn sigterm_stops_a_bot_cleanly_with_its_cursor_saved() {
    let (ring, mut p) = TempRing::create(1 << 16);
    for b in 1..=6 {
        publish(&mut p, b);
    }
    let out = ring.dir().join("bot.out");
    let cursor = ring.dir().join("bot.cursor");
    let bot = child(
        "bot",
        ring.path(),
        &[
            ("OUT", out.display().to_string()),
            ("CURSOR", cursor.display().to_string()),
        ],
    );
    wait_for_file(
        Path::new(&format!("{}.ready", out.display())),
        Duration::from_secs(30),
    );
    signal(&bot, libc::SIGTERM);
    finish(bot, Duration::from_secs(30), "bot after SIGTERM");
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(lines.lines().count(), all_ops(1, 6).len());
    let saved = CursorFile::new(&cursor).load().unwrap().unwrap();
    let (b, i) = *all_ops(1, 6).last().unwrap();
    assert_eq!((saved.block, saved.index_in_block), (b, i));
}

#[test]
fn a_topic_no_chain_has_is_reported() {
    let (ring, mut p) = TempRing::create(1 << 16);
    publish(&mut p, 1);
    let notices = Notices::default();
    let bot = Bot::builder(ring.path())
        .topics(["vote", "coment"])
        .handle_signals(false)
        .on_notice(notices.handler())
        .open()
        .unwrap();
    assert_eq!(
        notices.all(),
        [Notice::UnknownTopic {
            topic: "coment".into()
        }]
    );
    assert!(notices.all()[0].to_string().contains("\"coment\""));
    assert_eq!(bot.subscriber().unwrap().unknown_topics(), ["coment"]);
}

#[test]
fn saving_every_interval_writes_the_cursor_only_when_due_asked_or_stopping() {
    let (ring, mut p) = TempRing::create(1 << 16);
    for b in 1..=6 {
        publish(&mut p, b);
    }
    let cursor = ring.dir().join("c");
    let file = CursorFile::new(&cursor);
    let open = || {
        Bot::builder(ring.name())
            .start(Start::Earliest)
            .cursor_file(&cursor)
            .save_cursor(consumer_sdk::CursorSaves::Every(Duration::from_secs(3600)))
            .until_block(6)
            .handle_signals(false)
            .on_notice(|_| {})
            .open()
            .unwrap()
    };
    let ops = all_ops(1, 6);
    let mut bot = open();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let op = bot.recv_op().unwrap().unwrap();
        seen.push((op.block(), op.index_in_block()));
    }
    // Not due, not asked: nothing saved although three ops were received.
    let _ = bot.recv_op().unwrap().unwrap();
    assert_eq!(file.load().unwrap(), None);
    // Asked: everything handled so far (the fourth op included) is saved.
    bot.save().unwrap();
    let saved = file.load().unwrap().unwrap();
    assert_eq!((saved.block, saved.index_in_block), ops[3]);
    seen.push(ops[3]);
    // Two more ops, then the bot dies without saving (as under SIGKILL).
    for _ in 0..2 {
        let op = bot.recv_op().unwrap().unwrap();
        seen.push((op.block(), op.index_in_block()));
    }
    drop(bot);
    assert_eq!(file.load().unwrap(), Some(saved));
    // The restart redelivers the two ops handled after the save (at least once), skips none,
    // and saves when it is done.
    let mut bot = open();
    assert_eq!(bot.resumed_from(), Some(saved));
    let mut again = Vec::new();
    while let Some(op) = bot.recv_op().unwrap() {
        again.push((op.block(), op.index_in_block()));
    }
    assert_eq!(again, ops[4..]);
    assert_eq!(seen[4..], ops[4..6]);
    assert_eq!(file.load().unwrap().map(|c| c.block), Some(6));
}

#[test]
fn a_cursor_file_in_a_missing_directory_is_refused_at_open() {
    let (ring, mut p) = TempRing::create(1 << 16);
    publish(&mut p, 1);
    let cursor = ring.dir().join("no-such-dir").join("c");
    let err = Bot::builder(ring.name())
        .start(Start::Earliest)
        .cursor_file(&cursor)
        .handle_signals(false)
        .on_notice(|_| {})
        .open()
        .unwrap_err();
    assert!(
        matches!(&err, BotError::CursorDirectory { file, .. } if file == &cursor),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("no-such-dir") && text.contains("does not exist"),
        "{text}"
    );
}

#[test]
fn an_upstream_gap_is_a_notice_and_reading_goes_on() {
    let (ring, mut p) = TempRing::create(1 << 16);
    publish(&mut p, 1);
    // Block 10 opens with the notice that blocks 2..=9 were lost upstream.
    p.begin_block(10, 10, [10; 20]).unwrap();
    p.gap(2, 9, Some(40)).unwrap();
    p.commit().unwrap();
    publish(&mut p, 11);
    let notices = Notices::default();
    let mut bot = Bot::builder(ring.name())
        .start(Start::Earliest)
        .until_block(11)
        .handle_signals(false)
        .on_notice(notices.handler())
        .open()
        .unwrap();
    let mut seen = Vec::new();
    while let Some(op) = bot.recv_op().unwrap() {
        seen.push((op.block(), op.index_in_block()));
    }
    let mut expected = all_ops(1, 1);
    expected.extend(all_ops(11, 11));
    assert!(expected.len() > all_ops(1, 1).len());
    assert_eq!(seen, expected);
    let gaps: Vec<Notice> = notices
        .all()
        .into_iter()
        .filter(|n| matches!(n, Notice::UpstreamGap { .. }))
        .collect();
    assert_eq!(
        gaps,
        [Notice::UpstreamGap {
            from_block: 2,
            to_block: 9,
            lost_ops: Some(40),
        }]
    );
    assert!(
        gaps[0]
            .to_string()
            .contains("blocks 2..=9 were lost upstream")
    );
}
