//! Tests of the views against every op instance in the repository's data.

use super::*;
use crate::{Chain, ChainId};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::str::FromStr;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data");

/// One operation found in the data: where, its chain, its topic, its compact body.
struct Op {
    source: String,
    chain: Option<Chain>,
    topic: String,
    body: String,
}

/// The testnet the Hive unit tests run on (it spells assets `TESTS` and `TBD`).
fn testnet() -> Chain {
    Chain::new(ChainId([0x18; 32]), "testnet").unwrap()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The files of a data directory whose names end in `suffix`, sorted by name.
fn files(dir: &str, suffix: &str) -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{DATA}/{dir}"))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), read(&format!("{dir}/{n}"))))
        .collect()
}

/// Collects every operation in `v`, in either encoding.
fn collect(source: &str, chain: Option<Chain>, v: &Value, out: &mut Vec<Op>) {
    let mut push = |name: &str, body: &Value| {
        out.push(Op {
            source: source.into(),
            chain,
            topic: topic_of(name).into(),
            body: body.to_string(),
        })
    };
    match v {
        Value::Array(a) => match a.as_slice() {
            [Value::String(name), body @ Value::Object(_)] => push(name, body),
            items => items.iter().for_each(|x| collect(source, chain, x, out)),
        },
        Value::Object(o) => match (o.get("type"), o.get("value")) {
            (Some(Value::String(name)), Some(body @ Value::Object(_)))
                if name.ends_with("_operation") =>
            {
                push(name, body)
            }
            _ => o.values().for_each(|x| collect(source, chain, x, out)),
        },
        _ => {}
    }
}

/// The JSON documents inside the C++ raw strings `R"~(...)~"`.
fn cpp_raw_strings() -> Vec<String> {
    let src = read("ops/hive-unit-tests/condenser_api_ops_in_block_tests.cpp");
    src.split(r#"R"~("#)
        .skip(1)
        .map(|s| {
            s.split_once(r#")~""#)
                .expect("unterminated raw string")
                .0
                .to_owned()
        })
        .collect()
}

fn parse(name: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The ops of the recent blocks (`data/recent/`): today's traffic, as far as the data has it.
fn recent() -> Vec<Op> {
    let mut ops = Vec::new();
    for (name, text) in files("recent", ".jsonl") {
        let chain = if name.starts_with("hive") {
            Chain::HIVE
        } else {
            Chain::STEEM
        };
        for (i, line) in text.lines().enumerate() {
            let block = parse(&format!("{name} line {i}"), line);
            collect(&format!("recent {chain}"), Some(chain), &block, &mut ops);
        }
    }
    ops
}

/// Every operation in the repository's data: blocks, `get_ops_in_block` results, op files and
/// the raw strings of the Hive unit tests.
fn corpus() -> Vec<Op> {
    let (steem, hive) = (Some(Chain::STEEM), Some(Chain::HIVE));
    let mut ops = recent();
    for (name, text) in files("steem/condenser_api.get_block", ".json") {
        collect("steem get_block", steem, &parse(&name, &text), &mut ops);
    }
    let range = read("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl");
    for (i, line) in range.lines().enumerate() {
        let block = parse(&format!("line {i}"), line);
        collect("hive get_block_range", hive, &block, &mut ops);
    }
    let block = read("hive/condenser_api.get_block/1092.result.json");
    collect(
        "hive get_block 1092",
        hive,
        &parse("1092", &block),
        &mut ops,
    );
    let demo = read("demo-blocks.jsonl");
    for (i, line) in demo.lines().enumerate() {
        let block = parse(&format!("demo line {i}"), line);
        collect("demo blocks", None, &block, &mut ops);
    }
    for (dir, chain) in [
        ("steem/condenser_api.get_ops_in_block", steem),
        ("steem/account_history_api.get_ops_in_block", steem),
        ("hive/condenser_api.get_ops_in_block", hive),
        ("hive/account_history_api.get_ops_in_block", hive),
    ] {
        for (name, text) in files(dir, ".json") {
            collect(dir, chain, &parse(&name, &text), &mut ops);
        }
    }
    let defective = ["convert.json", "custom.json", "custom_json.json"];
    for (name, text) in files("ops/steem-python", ".json") {
        let parsed = serde_json::from_str::<Value>(&text);
        let expected_defect = defective.contains(&name.as_str());
        assert_eq!(parsed.is_err(), expected_defect, "{name}: {parsed:?}");
        if let Ok(v) = parsed {
            collect("steem-python", steem, &v, &mut ops);
        }
    }
    for (i, raw) in cpp_raw_strings().iter().enumerate() {
        let op = &parse(&format!("raw string {i}"), raw)["op"];
        collect("hive unit tests", Some(testnet()), op, &mut ops);
    }
    ops
}

/// `op` decoded in its chain.
fn operation(op: &Op) -> Result<Operation<'_>, ViewError> {
    with_chain(op.chain, || {
        Operation::decode(&op.topic, op.body.as_bytes())
    })
}

/// The first op of `V`'s topic in `ops` satisfying `pred`, decoded in its chain.
fn find<'a, V: OpView<'a>>(ops: &'a [Op], pred: impl Fn(&V) -> bool) -> V {
    ops.iter()
        .filter(|op| op.topic == V::TOPIC)
        .map(|op| with_chain(op.chain, || serde_json::from_str::<V>(&op.body)).unwrap())
        .find(|v| pred(v))
        .unwrap_or_else(|| panic!("no matching {}", V::TOPIC))
}

fn asset(s: &str) -> Asset {
    s.parse().unwrap()
}

#[test]
fn every_op_in_the_data_decodes_and_round_trips() {
    let ops = corpus();
    let mut counts = BTreeMap::<(&str, &str), usize>::new();
    for op in &ops {
        let context = || format!("{} {}\n{}", op.source, op.topic, op.body);
        assert!(is_known_topic(&op.topic), "unknown topic: {}", context());
        let decoded = operation(op).unwrap_or_else(|e| panic!("{e}: {}", context()));
        assert_eq!(decoded.topic(), op.topic);
        let typed = !matches!(decoded, Operation::Other(_));
        assert_eq!(
            typed,
            TYPED_TOPICS.contains(&op.topic.as_str()),
            "{}",
            context()
        );
        // Serialize writes {"type", "value"}; the value decodes to the same view again.
        let json = serde_json::to_value(&decoded).unwrap();
        assert_eq!(json["type"], op.topic.as_str());
        let value = json["value"].to_string();
        let again = Operation::decode(&op.topic, value.as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {value}: {}", context()));
        assert_eq!(again, decoded, "{}", context());
        // into_owned keeps every value.
        assert_eq!(decoded.clone().into_owned(), decoded);
        *counts
            .entry((op.topic.as_str(), op.source.as_str()))
            .or_default() += usize::from(typed);
    }
    for ((topic, source), n) in &counts {
        println!("{topic:44} {source:44} {n}");
    }
    for topic in TYPED_TOPICS {
        assert!(is_known_topic(topic), "{topic}");
        assert!(
            counts.iter().any(|((t, _), n)| t == topic && *n > 0),
            "{topic} has a view but no instance in the data"
        );
    }
    assert_eq!(counts[&("vote", "steem get_block")], 56);
    let unit_tests = ops.iter().filter(|op| op.source == "hive unit tests");
    assert_eq!(unit_tests.count(), 336);
}

#[test]
fn recent_traffic_is_typed() {
    let ops = recent();
    let typed = ops
        .iter()
        .filter(|op| !matches!(operation(op).unwrap(), Operation::Other(_)))
        .count();
    let share = typed as f64 / ops.len() as f64;
    println!(
        "typed views cover {typed} of {} ops in data/recent ({:.1} %)",
        ops.len(),
        share * 100.0
    );
    assert_eq!(ops.len(), 154);
    assert!(share >= 0.95, "{share}");
}

#[test]
fn view_errors_name_what_is_wrong() {
    let e = Operation::decode("vote", br#"{"voter":"a","author":"b","permlink":"c"}"#).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("\"vote\"") && msg.contains("weight"), "{msg}");
    let raw = Operation::decode("no_such_op", br#"{"x":1}"#).unwrap();
    assert_eq!(raw.topic(), "no_such_op");
    let Operation::Other(raw) = raw else {
        panic!("{raw:?}")
    };
    assert_eq!(raw.parse::<Value>().unwrap()["x"], 1);
    assert!(Operation::decode("no_such_op", b"\xff").is_err());
    assert!(!is_known_topic("coment") && is_known_topic("comment"));
    assert_eq!(VIRTUAL_TOPICS.first(), Some(&"fill_convert_request"));
    assert_eq!(KNOWN_TOPICS[FIRST_VIRTUAL - 1], "smt_contribute");
    assert!(is_virtual_topic("producer_reward") && is_virtual_topic("effective_comment_vote"));
    assert!(!is_virtual_topic("vote") && !is_virtual_topic("custom_json"));
}

#[test]
fn known_ops_have_expected_fields() {
    let ops = corpus();
    let vote: Vote = find(&ops, |v: &Vote| v.voter == "tammyfit95");
    assert_eq!(
        (vote.author.as_ref(), vote.weight),
        ("andreanerazzurro", 10000)
    );
    assert_eq!(vote.permlink, "appics-v1-appics-im-321782");
    assert!(matches!(vote.voter, Cow::Borrowed(_)));

    let t: Transfer = find(&ops, |t: &Transfer| t.from == "topfivefamily");
    assert_eq!(
        (t.to.as_ref(), t.amount),
        ("esclavos75", asset("2.000 STEEM"))
    );
    assert_eq!(
        t.memo,
        "Anunciando los ganadores del concurso. Observa Piensa Escribe. "
    );
    let t: Transfer = find(&ops, |t: &Transfer| t.from == "executive-board");
    assert!(t.memo.starts_with("\u{2757} Hello zbnbscharge1"));

    let c: ClaimRewardBalance = find(&ops, |c: &ClaimRewardBalance| c.account == "lereve");
    assert_eq!(
        c.reward_vests,
        Asset {
            amount: 20_220_225,
            precision: 6,
            symbol: Symbol::VESTS
        }
    );
    assert_eq!(
        (c.reward_liquid.amount, c.reward_liquid.kind()),
        (0, AssetKind::Liquid)
    );
    assert_eq!(c.reward_debt.to_string(), "0.000 SBD");

    let cj: CustomJson = find(&ops, |c: &CustomJson| {
        c.required_posting_auths == ["masichan"]
    });
    assert!(cj.required_auths.is_empty());
    let (what, follow): (&str, Value) = cj.parse_json().unwrap();
    assert_eq!(
        (cj.id.as_ref(), what, &follow["following"]),
        ("follow", "follow", &Value::from("emarem"))
    );
    let cj: CustomJson = find(&ops, |c: &CustomJson| c.required_auths == ["appics-pool"]);
    assert_eq!(
        cj.parse_json::<Value>().unwrap()["contractPayload"]["quantity"],
        "158.7790"
    );

    let post: Comment = find(&ops, |c: &Comment| c.author == "jeniya");
    assert!(post.is_post());
    assert_eq!(
        post.parse_metadata::<Value>().unwrap()["app"],
        "steemit/0.2"
    );

    let opts: CommentOptions = find(&ops, |o: &CommentOptions| o.author == "testing001");
    assert_eq!(
        (opts.max_accepted_payout, opts.percent_debt),
        (asset("1000.000 SBD"), 5000)
    );
    assert!(opts.allow_votes && opts.allow_curation_rewards && opts.beneficiaries().is_empty());

    let w: AccountWitnessVote = find(&ops, |w: &AccountWitnessVote| w.account == "clayop");
    assert_eq!((w.witness.as_ref(), w.approve), ("joseph", true));

    let d: DelegateVestingShares = find(&ops, |d: &DelegateVestingShares| {
        d.vesting_shares.amount == 3
    });
    assert_eq!(
        (d.delegator.as_ref(), d.delegatee.as_ref()),
        ("alice4ah", "carol4ah")
    );
    assert_eq!(d.vesting_shares, asset("0.000003 VESTS"));

    // NAI form (Hive block_api, keys sorted) equals the text form.
    let feed: FeedPublish = find(&ops, |f: &FeedPublish| f.publisher == "silversteem");
    assert_eq!(
        feed.exchange_rate,
        Price {
            base: asset("0.440 HBD"),
            quote: asset("1.000 HIVE")
        }
    );
    assert_eq!(
        feed.exchange_rate.base.for_chain(&Chain::STEEM).to_string(),
        "0.440 SBD"
    );

    let wu: WitnessUpdate = find(&ops, |w: &WitnessUpdate| w.owner == "arhag");
    assert_eq!(
        (wu.props.debt_interest_rate, wu.props.account_creation_fee),
        (1000, asset("100.000 STEEM"))
    );
    let wu: WitnessUpdate = find(&ops, |w: &WitnessUpdate| w.owner == "alice5ah");
    assert_eq!(wu.fee, asset("1.000 TESTS"));
}

#[test]
fn both_encodings_of_each_unit_test_op_decode_equal() {
    let raws = cpp_raw_strings();
    let mut compared = 0;
    for pair in raws.chunks_exact(2) {
        let [appbase, legacy] = [&pair[0], &pair[1]].map(|raw| {
            let mut ops = Vec::new();
            collect(
                "",
                Some(testnet()),
                &serde_json::from_str::<Value>(raw).unwrap()["op"],
                &mut ops,
            );
            ops.pop().unwrap()
        });
        assert!(pair[0].contains(r#""op":{"type""#) && pair[1].contains(r#""op":[""#));
        assert_eq!(appbase.topic, legacy.topic);
        let (a, b) = (operation(&appbase).unwrap(), operation(&legacy).unwrap());
        // `pow2.work` is a static variant kept as sent, which differs by encoding.
        if !matches!(a, Operation::Other(_) | Operation::Pow2(_)) {
            assert_eq!(a, b, "{}\n{}", appbase.body, legacy.body);
            compared += 1;
        }
    }
    assert!(compared >= 30, "{compared}");
}

#[test]
fn chain_specific_field_names() {
    let steem = r#"{"account":"a","reward_steem":"1.000 STEEM","reward_sbd":"2.000 SBD","reward_vests":"3.000000 VESTS"}"#;
    let hive = r#"{"account":"a","reward_hive":"1.000 HIVE","reward_hbd":"2.000 HBD","reward_vests":"3.000000 VESTS","x":[1]}"#;
    let (s, h): (ClaimRewardBalance, ClaimRewardBalance) = (
        serde_json::from_str(steem).unwrap(),
        serde_json::from_str(hive).unwrap(),
    );
    assert_ne!(s, h, "STEEM and HIVE are different tokens");
    let on_hive: ClaimRewardBalance =
        with_chain(Some(Chain::HIVE), || serde_json::from_str(steem)).unwrap();
    assert_eq!(on_hive, h);
    assert_eq!(h.reward_debt.to_string(), "2.000 HBD");
    // Serialize writes the neutral names, which decode again.
    let neutral = serde_json::to_string(&h).unwrap();
    assert!(neutral.contains(r#""reward_liquid":"1.000 HIVE","reward_debt":"2.000 HBD""#));
    assert_eq!(
        serde_json::from_str::<ClaimRewardBalance>(&neutral).unwrap(),
        h
    );
}

#[test]
fn strings_borrow_unless_escaped() {
    let body = br#"{"voter":"a\u0062c","author":"x","permlink":"p\"q","weight":-10000}"#;
    let v: Vote = serde_json::from_slice(body).unwrap();
    assert_eq!(
        (v.voter.as_ref(), v.permlink.as_ref(), v.weight),
        ("abc", "p\"q", -10000)
    );
    assert!(matches!(v.author, Cow::Borrowed("x")) && matches!(v.voter, Cow::Owned(_)));
    let cj =
        br#"{"required_auths":["a","b\u0063"],"required_posting_auths":[],"id":"i","json":"{}"}"#;
    let cj: CustomJson = serde_json::from_slice(cj).unwrap();
    assert!(matches!(
        cj.required_auths[..],
        [Cow::Borrowed("a"), Cow::Owned(_)]
    ));
}

#[test]
fn beneficiaries_in_all_encodings() {
    let with = |ext: &str| {
        format!(
            r#"{{"author":"a","permlink":"p","max_accepted_payout":"1000000.000 SBD","percent_steem_dollars":10000,
            "allow_votes":true,"allow_curation_rewards":true,"extensions":[{ext}]}}"#
        )
    };
    let list = r#"{"beneficiaries":[{"account":"good-karma","weight":2000},{"account":"null","weight":5000}]}"#;
    let expected = [("good-karma", 2000), ("null", 5000)];
    for ext in [
        format!("[0,{list}]"),
        format!(r#"["comment_payout_beneficiaries",{list}]"#),
        format!(r#"{{"type":"comment_payout_beneficiaries","value":{list}}}"#),
    ] {
        let body = with(&ext);
        let o: CommentOptions = serde_json::from_str(&body).unwrap();
        let got: Vec<_> = o
            .beneficiaries()
            .iter()
            .map(|b| (b.account.as_ref(), b.weight))
            .collect();
        assert_eq!(got, expected, "{ext}");
    }
    let unknown = with(r#"[1,{"votable_assets":[]}]"#);
    let o: CommentOptions = serde_json::from_str(&unknown).unwrap();
    assert!(o.beneficiaries().is_empty());
    assert!(matches!(&o.extensions[..], [CommentOptionsExtension::Other { tag, .. }] if *tag == 1));
    for bad in [r#"{"value":{}}"#, "[0]", r#"[0,{"beneficiaries":3}]"#, "7"] {
        assert!(
            serde_json::from_str::<CommentOptions>(&with(bad)).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn topics() {
    assert_eq!(topic_of("vote_operation"), "vote");
    assert_eq!(topic_of("vote"), "vote");
    assert_eq!(topic_of("_operation"), "");
    assert_eq!(
        topic_of("claim_reward_balance_operation"),
        ClaimRewardBalance::TOPIC
    );
}

#[test]
fn asset_text_form() {
    let a = asset("10.000000 VESTS");
    assert_eq!(
        (a.amount, a.precision, a.kind()),
        (10_000_000, 6, AssetKind::Vests)
    );
    assert_eq!(
        asset("-0.5 TBD"),
        Asset {
            amount: -5,
            precision: 1,
            symbol: Symbol::TBD
        }
    );
    assert_eq!(asset("7 FOO").to_string(), "7 FOO");
    assert_eq!(asset("007.010 HIVE").to_string(), "7.010 HIVE");
    assert_eq!(asset("-9223372036854.775808 STEEM").amount, i64::MIN);
    assert_eq!(asset("1.500 HIVE").to_f64(), 1.5);
    assert_ne!(asset("1.000 HIVE"), asset("1.000 STEEM"));
    assert_eq!(asset("1.000 HIVE").kind(), asset("1.000 STEEM").kind());
    assert_ne!(asset("1.000 HIVE"), asset("1.000 HBD"));
    assert_ne!(asset("1.000 STEEM"), asset("1.00 STEEM"));
    assert_ne!(asset("1.000 FOO"), asset("1.000 BAR"));
    assert_eq!(
        asset("1.000 TESTS").for_chain(&Chain::STEEM).to_string(),
        "1.000 STEEM"
    );
    assert_eq!(Symbol::HBD.nai(), Some("@@000000013"));
    assert_eq!(Symbol::from_str("FOO").unwrap().nai(), None);
}

#[test]
fn malformed_assets_are_errors() {
    use AssetError::{Amount, Form, Nai, Overflow, Symbol as Sym};
    let whole = |kind: fn(String) -> AssetError, texts: &[&str]| {
        texts
            .iter()
            .map(|t| (t.to_string(), kind(t.to_string())))
            .collect::<Vec<_>>()
    };
    let mut cases = vec![
        (String::new(), AssetError::Empty),
        ("1.000".into(), Form("1.000".into())),
        ("1.000 ".into(), Sym("".into())),
        ("1.000  STEEM".into(), Sym(" STEEM".into())),
        ("1.000 steem".into(), Sym("steem".into())),
        ("1.000 STEEM X".into(), Sym("STEEM X".into())),
        ("1.000 ABCDEFGHIJKL".into(), Sym("ABCDEFGHIJKL".into())),
        ("1.000 @@00000002".into(), Nai("@@00000002".into())),
        (
            "1.0000000000000000000 STEEM".into(),
            AssetError::Precision(19),
        ),
    ];
    cases.extend(whole(
        Amount,
        &[
            "1.0.0 STEEM",
            "abc STEEM",
            " 1.000 STEEM",
            "1. STEEM",
            ".5 STEEM",
            "+1.000 STEEM",
            "--1 STEEM",
            "1,000 STEEM",
            "1.000STEEM X",
        ],
    ));
    cases.extend(whole(
        Overflow,
        &[
            "9223372036854775808 STEEM",
            "9223372036854.775808 STEEM",
            "99999999999999999999999 STEEM",
            "-9223372036854775809 STEEM",
        ],
    ));
    for (text, expected) in cases {
        assert_eq!(text.parse::<Asset>(), Err(expected.clone()), "{text:?}");
        let json = serde_json::to_string(&text).unwrap();
        let msg = serde_json::from_str::<Asset>(&json)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with(&expected.to_string()), "{msg}");
    }
}

#[test]
fn asset_nai_form() {
    let nai = |amount: &str, precision: u64, nai: &str| {
        serde_json::from_str::<Asset>(&format!(
            r#"{{"amount":"{amount}","precision":{precision},"nai":"{nai}"}}"#
        ))
    };
    assert_eq!(
        nai("1000", 3, "@@000000021").unwrap().to_string(),
        "1.000 @@000000021"
    );
    let on = |chain: Chain, amount, precision, n| {
        with_chain(Some(chain), || nai(amount, precision, n))
            .unwrap()
            .to_string()
    };
    assert_eq!(on(Chain::STEEM, "1000", 3, "@@000000021"), "1.000 STEEM");
    assert_eq!(on(Chain::HIVE, "1000", 3, "@@000000021"), "1.000 HIVE");
    assert_eq!(on(Chain::STEEM, "-1", 3, "@@000000013"), "-0.001 SBD");
    assert_eq!(on(Chain::HIVE, "-1", 3, "@@000000013"), "-0.001 HBD");
    assert_eq!(on(testnet(), "-1", 3, "@@000000013"), "-0.001 TBD");
    assert_eq!(on(Chain::HIVE, "5", 0, "@@000000099"), "5 @@000000099");
    // Text forms are respelled too, and the previous spelling is restored afterwards.
    let text = |chain| with_chain(chain, || serde_json::from_str::<Asset>(r#""1.000 STEEM""#));
    assert_eq!(text(Some(Chain::HIVE)).unwrap(), asset("1.000 HIVE"));
    assert_eq!(text(None).unwrap(), asset("1.000 STEEM"));
    assert_eq!(
        nai("10000000", 6, "@@000000037").unwrap(),
        asset("10.000000 VESTS")
    );
    assert_eq!(
        nai("5", 0, "@@000000099").unwrap().to_string(),
        "5 @@000000099"
    );
    let sorted = r#"{"amount":"440","nai":"@@000000013","precision":3,"extra":null}"#;
    assert_eq!(
        with_chain(Some(Chain::HIVE), || serde_json::from_str::<Asset>(sorted)).unwrap(),
        asset("0.440 HBD")
    );
    for (bad, why) in [
        (nai("1.5", 3, "@@000000021"), "amount"),
        (nai("", 3, "@@000000021"), "amount"),
        (nai("9223372036854775808", 3, "@@000000021"), "overflows"),
        (nai("1", 19, "@@000000021"), "precision"),
        (nai("1", 256, "@@000000021"), "u8"),
        (nai("1", 3, "@@00000002x"), "NAI"),
        (nai("1", 3, "STEEM"), "NAI"),
        (
            serde_json::from_str(r#"{"amount":"1","precision":3}"#),
            "nai",
        ),
        (
            serde_json::from_str(r#"{"amount":1000,"precision":3,"nai":"@@000000021"}"#),
            "string",
        ),
        (serde_json::from_str("1000"), "asset like"),
        (serde_json::from_str("[]"), "asset like"),
    ] {
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains(why), "{msg}");
    }
}

fn any_symbol() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "STEEM",
        "SBD",
        "VESTS",
        "HIVE",
        "HBD",
        "TESTS",
        "TBD",
        "FOO",
        "ABCDEFGHIJK",
        "@@000000099",
    ])
}

proptest! {
    // Failures are reported, never written into the source tree.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn display_then_parse_is_identity(amount: i64, precision in 0..=Asset::MAX_PRECISION, symbol in any_symbol()) {
        let a = Asset { amount, precision, symbol: symbol.parse().unwrap() };
        let text = a.to_string();
        let back: Asset = text.parse().unwrap();
        prop_assert_eq!(back, a);
        prop_assert_eq!(&back.to_string(), &text);
        let json: Asset = serde_json::from_str(&serde_json::to_string(&text).unwrap()).unwrap();
        prop_assert_eq!(json, a);
    }

    #[test]
    fn nai_form_equals_text_form(amount: i64, precision in 0..=Asset::MAX_PRECISION, core in 0..3usize) {
        let (nai, symbol, chain) = [
            ("@@000000021", "HIVE", Chain::HIVE),
            ("@@000000013", "SBD", Chain::STEEM),
            ("@@000000037", "VESTS", Chain::HIVE),
        ][core];
        let json = format!(r#"{{"amount":"{amount}","precision":{precision},"nai":"{nai}"}}"#);
        let from_nai: Asset = with_chain(Some(chain), || serde_json::from_str(&json)).unwrap();
        let text = Asset { amount, precision, symbol: symbol.parse().unwrap() }.to_string();
        prop_assert_eq!(from_nai, asset(&text));
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".*", near in "-?[0-9.]{0,24} ?[A-Z@0-9]{0,13}") {
        for s in [s, near] {
            let parsed = s.parse::<Asset>();
            let via_json = serde_json::from_str::<Asset>(&serde_json::to_string(&s).unwrap());
            prop_assert_eq!(parsed.is_ok(), via_json.is_ok());
        }
    }

    #[test]
    fn arbitrary_nai_never_panics(amount in ".*", precision: u64, nai in "(@@)?[0-9a]{0,10}") {
        let json = serde_json::json!({"amount": amount, "precision": precision, "nai": nai});
        let _ = serde_json::from_str::<Asset>(&json.to_string());
    }

    #[test]
    fn display_never_panics(amount: i64, precision: u8) {
        let text = Asset { amount, precision, symbol: Symbol::VESTS }.to_string();
        prop_assert!(text.ends_with(" VESTS"));
    }
}

#[test]
fn asset_arithmetic_and_order() {
    let a = Asset::new(1500, 3, Symbol::HIVE).unwrap();
    assert_eq!(a, asset("1.500 HIVE"));
    assert_eq!(
        Asset::new(1, 19, Symbol::HIVE),
        Err(AssetError::Precision(19))
    );
    assert_eq!(a.checked_add(asset("0.500 HIVE")), Ok(asset("2.000 HIVE")));
    assert_eq!(a.checked_sub(asset("2.000 HIVE")), Ok(asset("-0.500 HIVE")));
    for (other, why) in [
        ("1.000 STEEM", "different symbols"),
        ("1.00 HIVE", "different precisions"),
    ] {
        let e = a.checked_add(asset(other)).unwrap_err().to_string();
        assert!(e.contains(why) && e.contains(other), "{e}");
        assert!(a.checked_sub(asset(other)).is_err());
    }
    let max = Asset::new(i64::MAX, 3, Symbol::HIVE).unwrap();
    assert!(
        max.checked_add(asset("0.001 HIVE"))
            .unwrap_err()
            .to_string()
            .contains("overflows")
    );
    let min = Asset::new(i64::MIN, 3, Symbol::HIVE).unwrap();
    assert!(min.checked_sub(asset("0.001 HIVE")).is_err());

    assert!(asset("1.000 HIVE") < asset("1.001 HIVE"));
    assert!(asset("-1.000 HBD") < asset("0.000 HBD"));
    assert_eq!(asset("1.000 HIVE").partial_cmp(&asset("0.001 STEEM")), None);
    assert_eq!(asset("1.000 HIVE").partial_cmp(&asset("0.1 HIVE")), None);

    let totals: Totals = [
        "1.000 HIVE",
        "0.500 HBD",
        "2.250 HIVE",
        "1.000000 VESTS",
        "1 FOO",
    ]
    .iter()
    .map(|a| asset(a))
    .sum();
    assert_eq!(
        totals.to_string(),
        "3.250 HIVE, 0.500 HBD, 1.000000 VESTS, 1 FOO"
    );
    assert_eq!(totals.get(&Symbol::HIVE, 3), Some(3250));
    assert_eq!(totals.get(&Symbol::STEEM, 3), None);
    // Totals do not overflow where an i64 would.
    let big: Totals = [max, max].into_iter().sum();
    assert_eq!(big.get(&Symbol::HIVE, 3), Some(2 * i128::from(i64::MAX)));
    assert_eq!(big.to_string(), "18446744073709551.614 HIVE");
    assert!(Totals::new().is_empty() && Totals::new().to_string().is_empty());
}
