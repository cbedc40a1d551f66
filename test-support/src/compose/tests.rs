use super::*;
use broadcaster::block::parse_timestamp;
use broadcaster::decode_block;
use std::collections::HashMap;

fn composer(seed: u64) -> Composer {
    Composer::new(seed).expect("composer over the repository's data")
}

fn compose(c: &Composer, first: u64, count: u64, encoding: Encoding) -> Vec<String> {
    c.blocks(first, count, encoding).unwrap().collect()
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    for encoding in [Encoding::Legacy, Encoding::Appbase] {
        let a = compose(&composer(42), 70_000_000, 20, encoding);
        let b = compose(&composer(42), 70_000_000, 20, encoding);
        assert_eq!(a, b, "{encoding:?}");
        let other = compose(&composer(43), 70_000_000, 20, encoding);
        for (x, y) in a.iter().zip(&other) {
            assert_ne!(x, y, "{encoding:?}: seeds 42 and 43 gave the same block");
        }
    }
}

#[test]
fn a_block_depends_only_on_the_seed_and_its_number() {
    let c = composer(5);
    let wide = compose(&c, 998, 7, Encoding::Legacy);
    let narrow = compose(&c, 1000, 5, Encoding::Legacy);
    assert_eq!(&wide[2..], &narrow[..]);
    assert_eq!(
        c.block(1001, Encoding::Appbase),
        c.block(1001, Encoding::Appbase)
    );
}

#[test]
fn blocks_decode_link_and_carry_100_to_300_ops_three_seconds_apart() {
    let c = composer(1);
    for encoding in [Encoding::Legacy, Encoding::Appbase] {
        let first = 80_000_000u64;
        let mut previous: Option<broadcaster::DecodedBlock> = None;
        let mut sizes = Vec::new();
        for (i, text) in c.blocks(first, 200, encoding).unwrap().enumerate() {
            let block = decode_block(text.as_bytes())
                .unwrap_or_else(|e| panic!("{encoding:?} block {}: {e}", first + i as u64));
            assert_eq!(block.number, first + i as u64);
            assert_eq!(block.id, c.block_id(block.number as u32));
            assert!(
                OPS_PER_BLOCK.contains(&block.ops.len()),
                "{} ops",
                block.ops.len()
            );
            sizes.push(block.ops.len());
            if let Some(prev) = &previous {
                assert_eq!(
                    block.previous, prev.id,
                    "block {} does not link",
                    block.number
                );
                assert_eq!(block.timestamp, prev.timestamp + 3);
            }
            // Transaction ids come from the block's `transaction_ids`, and op indexes restart
            // in every transaction.
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let ids = v["transaction_ids"].as_array().unwrap();
            assert_eq!(ids.len(), v["transactions"].as_array().unwrap().len());
            for op in &block.ops {
                let id = ids[op.trx_index as usize].as_str().unwrap();
                let hex: String = op.trx_id.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(hex, id);
                let trx = &v["transactions"][op.trx_index as usize];
                assert!((op.op_index as usize) < trx["operations"].as_array().unwrap().len());
            }
            previous = Some(block);
        }
        // The sizes spread over the range rather than sitting at one value.
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(*min < 130 && *max > 270, "{encoding:?}: sizes {min}..{max}");
    }
}

#[test]
fn block_one_follows_the_zero_id_at_genesis_time() {
    let c = composer(9);
    let block = decode_block(c.block(1, Encoding::Legacy).as_bytes()).unwrap();
    assert_eq!(block.previous, "0".repeat(40));
    assert_eq!(block.timestamp, GENESIS);
    assert_eq!(format_time(GENESIS), "2016-03-24T16:05:00");
}

#[test]
fn the_op_mix_follows_the_weights() {
    let c = composer(3);
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut total = 0usize;
    for text in c.blocks(60_000_000, 300, Encoding::Appbase).unwrap() {
        for op in decode_block(text.as_bytes()).unwrap().ops {
            *counts.entry(op.topic.to_string()).or_default() += 1;
            total += 1;
        }
    }
    let weights: u32 = MIX.iter().map(|&(_, w)| w).sum();
    assert_eq!(weights, 1000);
    for &(kind, weight) in MIX {
        let expected = total as f64 * f64::from(weight) / 1000.0;
        let got = counts.remove(kind).unwrap_or(0) as f64;
        assert!(
            (got - expected).abs() <= expected * 0.2,
            "{kind}: {got} ops, expected about {expected:.0} of {total}"
        );
    }
    assert!(counts.is_empty(), "kinds outside the mix: {counts:?}");
    assert!(total > 300 * 150, "{total} ops in 300 blocks");
}

#[test]
fn both_encodings_carry_the_same_ops_and_transactions() {
    let c = composer(11);
    for n in [1u32, 2, 77_000_123, u32::MAX] {
        let legacy = decode_block(c.block(n, Encoding::Legacy).as_bytes()).unwrap();
        let appbase = decode_block(c.block(n, Encoding::Appbase).as_bytes()).unwrap();
        assert_eq!(legacy.id, appbase.id);
        assert_eq!(legacy.previous, appbase.previous);
        assert_eq!(legacy.timestamp, appbase.timestamp);
        assert_eq!(legacy.ops.len(), appbase.ops.len());
        for (l, a) in legacy.ops.iter().zip(&appbase.ops) {
            assert_eq!(
                (&l.topic, l.trx_index, l.trx_id, l.op_index),
                (&a.topic, a.trx_index, a.trx_id, a.op_index)
            );
            let (l_body, a_body) = (
                json(std::str::from_utf8(&l.body).unwrap()),
                json(std::str::from_utf8(&a.body).unwrap()),
            );
            assert_eq!(to_legacy(&a_body), l_body, "block {n}: {}", l.topic);
            assert_eq!(to_appbase(&l_body, None), a_body, "block {n}: {}", l.topic);
        }
    }
}

#[test]
fn assets_are_strings_in_legacy_and_nai_objects_in_appbase() {
    let c = composer(2);
    let (mut legacy_transfers, mut appbase_transfers) = (0, 0);
    for n in 1_000..1_020 {
        for (encoding, seen) in [
            (Encoding::Legacy, &mut legacy_transfers),
            (Encoding::Appbase, &mut appbase_transfers),
        ] {
            for op in decode_block(c.block(n, encoding).as_bytes()).unwrap().ops {
                if op.topic != "transfer" {
                    continue;
                }
                *seen += 1;
                let body: serde_json::Value = serde_json::from_slice(&op.body).unwrap();
                let amount = &body["amount"];
                match encoding {
                    Encoding::Legacy => {
                        let s = amount.as_str().unwrap();
                        assert!(s.ends_with(" STEEM") || s.ends_with(" SBD"), "{s}");
                    }
                    Encoding::Appbase => {
                        assert_eq!(amount["precision"], 3, "{amount}");
                        assert!(amount["amount"].is_string(), "{amount}");
                        let nai = amount["nai"].as_str().unwrap();
                        assert!(nai == "@@000000021" || nai == "@@000000013", "{nai}");
                        // Memos are free text, never converted.
                        assert!(body["memo"].is_string());
                    }
                }
            }
        }
    }
    assert!(legacy_transfers > 0 && legacy_transfers == appbase_transfers);
}

#[test]
fn asset_conversion_handles_each_symbol_and_leaves_other_strings_alone() {
    let nai = |s: &str| parse_asset(s);
    assert_eq!(nai("0.001 STEEM"), Some(("1".into(), 3, "@@000000021")));
    assert_eq!(nai("0.000 SBD"), Some(("0".into(), 3, "@@000000013")));
    assert_eq!(
        nai("618086.446879 VESTS"),
        Some(("618086446879".into(), 6, "@@000000037"))
    );
    assert_eq!(nai("12.500 HIVE"), Some(("12500".into(), 3, "@@000000021")));
    assert_eq!(nai("1.00 STEEM"), None, "wrong precision");
    assert_eq!(nai("1.000 STEEMS"), None);
    assert_eq!(nai("-1.000 STEEM"), None);
    assert_eq!(nai("1.000  STEEM"), None);
    assert_eq!(nai("one.000 STEEM"), None);

    let body = json(
        r#"{"from":"a","amount":"0.513 STEEM","memo":"0.513 STEEM","fee":{"x":["2.000 SBD"]}}"#,
    );
    let mut out = String::new();
    to_appbase(&body, None).write(&mut out);
    assert_eq!(
        out,
        r#"{"from":"a","amount":{"amount":"513","precision":3,"nai":"@@000000021"},"memo":"0.513 STEEM","fee":{"x":[{"amount":"2000","precision":3,"nai":"@@000000013"}]}}"#
    );
    assert_eq!(to_legacy(&json(&out)), body);
    // An object that only looks like an asset stays an object.
    let odd = json(r#"{"amount":"5","precision":2,"nai":"@@000000021"}"#);
    assert_eq!(to_legacy(&odd), odd);
}

#[test]
fn every_recorded_body_survives_both_conversions() {
    let c = composer(0);
    let mut bodies = 0;
    for (kind, _, pool) in &c.pools {
        for body in pool {
            assert_eq!(&to_legacy(&to_appbase(body, None)), body, "{kind}");
            bodies += 1;
        }
    }
    assert!(
        c.bodies_of("custom_json") >= 20,
        "{}",
        c.bodies_of("custom_json")
    );
    assert!(bodies > 100, "{bodies} bodies");
    assert_eq!(c.bodies_of("pow"), 0);
}

#[test]
fn the_writer_gives_back_the_recorded_text() {
    for rel in &SOURCES[..2] {
        let path = Composer::data_dir().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let mut out = String::new();
            json(line).write(&mut out);
            assert_eq!(out, line, "{}", path.display());
        }
    }
    let mut out = String::new();
    Json::Str("a\"b\\c\n\u{1}é".into()).write(&mut out);
    assert_eq!(out, r#""a\"b\\c\n\u0001é""#);
    assert_eq!(
        serde_json::from_str::<String>(&out).unwrap(),
        "a\"b\\c\n\u{1}é"
    );
}

#[test]
fn timestamps_format_as_the_chains_write_them() {
    for unix in [
        0,
        GENESIS,
        951_782_400,
        1_709_164_800,
        4_102_444_799,
        u32::MAX,
    ] {
        let text = format_time(unix);
        assert_eq!(parse_timestamp(&text), Some(unix), "{text}");
    }
    assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00");
    assert_eq!(format_time(u32::MAX), "2106-02-07T06:28:15");
}

#[test]
fn bad_data_and_bad_ranges_are_errors_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let err = Composer::from_dir(dir.path(), 1).unwrap_err();
    assert!(matches!(err, ComposeError::Read { .. }), "{err}");
    assert!(err.to_string().contains(SOURCES[0]), "{err}");

    // A copy of the data with one broken line.
    for rel in SOURCES {
        let from = Composer::data_dir().join(rel);
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if from.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    Composer::from_dir(dir.path(), 1).expect("the copy is complete");
    let broken = dir.path().join(SOURCES[0]);
    let mut text = std::fs::read_to_string(&broken).unwrap();
    text.push_str("{\"transactions\":[{\"operations\":[[\"vote\"]]}]}\n{not json\n");
    std::fs::write(&broken, text).unwrap();
    let err = Composer::from_dir(dir.path(), 1).unwrap_err();
    assert!(
        matches!(err, ComposeError::Shape { line: 27, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("operations[0]"), "{err}");

    let c = composer(1);
    assert!(matches!(
        c.blocks(0, 1, Encoding::Legacy),
        Err(ComposeError::Range { .. })
    ));
    assert!(c.blocks(u64::from(u32::MAX), 1, Encoding::Legacy).is_ok());
    assert!(c.blocks(u64::from(u32::MAX), 2, Encoding::Legacy).is_err());
    assert!(c.blocks(u64::MAX, 2, Encoding::Legacy).is_err());
    assert_eq!(c.blocks(5, 0, Encoding::Legacy).unwrap().count(), 0);
}
