//! The product manager's outputs end to end: `--feed` (the buyer's friends who should see a
//! flagged purchase), `--recommend` (friends of friends to suggest befriending the big spender)
//! and `--stats` (the run's figures as JSON). Expected lines are worked out by hand on small
//! logs, and checked against a plain model of the friendship graph on a generated one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use common::{BATCH, Case, OUTPUT, STREAM, befriend, log, purchase, show, unfriend};

const FEED: &str = "feed.json";
const RECOMMEND: &str = "recommend.json";
const STATS: &str = "stats.json";

// ---------------------------------------------------------------------------------------------
// Building logs.

/// `2017-06-13 HH:MM:SS`.
fn at(hour: u32, second: u32) -> String {
    format!("2017-06-13 {hour:02}:{:02}:{:02}", second / 60, second % 60)
}

/// The output line of a flagged purchase.
fn flagged(line: &str, mean: &str, sd: &str) -> String {
    let body = line.strip_suffix('}').expect("a line ends with }");
    format!("{body}, \"mean\": \"{mean}\", \"sd\": \"{sd}\"}}\n")
}

/// A feed line; `friends` are JSON string literals, in the expected order.
fn feed(id: &str, ts: &str, amount: &str, friends: &[&str]) -> String {
    format!(
        "{{\"id\": {id}, \"timestamp\": \"{ts}\", \"amount\": \"{amount}\", \"friends\": [{}]}}\n",
        friends.join(", ")
    )
}

/// A recommendation line; `suggest` holds JSON string literals and mutual counts, in order.
fn recommend(id: &str, ts: &str, amount: &str, suggest: &[(&str, u32)]) -> String {
    let items: Vec<String> = suggest
        .iter()
        .map(|(s, n)| format!("{{\"id\": {s}, \"mutual\": {n}}}"))
        .collect();
    format!(
        "{{\"id\": {id}, \"timestamp\": \"{ts}\", \"amount\": \"{amount}\", \"suggest\": [{}]}}\n",
        items.join(", ")
    )
}

/// The thread counts and windows every social output must be identical at.
const CONFIGS: [&[&str]; 7] = [
    &["--threads", "1"],
    &["--threads", "2"],
    &["--threads", "8"],
    &["--threads", "2", "--window", "1"],
    &["--threads", "2", "--window", "3"],
    &["--threads", "8", "--window", "1"],
    &["--threads", "8", "--window", "3"],
];

/// What one run wrote: flagged purchases, feed and recommendations.
#[derive(Debug, PartialEq, Eq)]
struct Written {
    flagged: String,
    feed: String,
    recommend: String,
}

/// Runs the case with `--feed` and `--recommend` and `extra`, and reads the three outputs.
fn run_social(case: &Case, extra: &[&str]) -> Written {
    let mut args = vec!["--quiet", "--feed", FEED, "--recommend", RECOMMEND];
    args.extend_from_slice(extra);
    let run = case.run(&args).success();
    assert_eq!(run.stdout, "");
    let read = |name: &str| show(&fs::read(case.path(name)).expect("the output exists"));
    Written {
        flagged: read(OUTPUT),
        feed: read(FEED),
        recommend: read(RECOMMEND),
    }
}

/// Asserts that every configuration writes `expected`, and that the flagged purchases are the
/// same bytes without `--feed` and `--recommend` (and with only one of them).
fn assert_everywhere(case: &Case, expected: &Written) {
    for config in CONFIGS {
        let got = run_social(case, config);
        assert_eq!(got.flagged, expected.flagged, "flagged at {config:?}");
        assert_eq!(got.feed, expected.feed, "feed at {config:?}");
        assert_eq!(got.recommend, expected.recommend, "recommend at {config:?}");
        let mut plain = vec!["--quiet"];
        plain.extend_from_slice(config);
        case.run(&plain).success();
        let alone = show(&case.output().unwrap());
        assert_eq!(
            alone, expected.flagged,
            "without social outputs at {config:?}"
        );
        for only in [["--feed", "only.json"], ["--recommend", "only.json"]] {
            let mut args = plain.clone();
            args.extend_from_slice(&only);
            case.run(&args).success();
            assert_eq!(show(&case.output().unwrap()), expected.flagged, "{args:?}");
            let list = if only[0] == "--feed" {
                &expected.feed
            } else {
                &expected.recommend
            };
            assert_eq!(&show(&fs::read(case.path("only.json")).unwrap()), list);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-worked logs.

/// Integer ids, D = 1: the graph changes in the stream between flagged purchases.
///
/// Batch graph: 1-2, 1-9, 1-10, 2-3, 10-3, 9-4, 2-11, 2-5, 9-5, 10-5, 2-9; purchases of 1.00
/// by 2, 9 and 10.
fn integer_case() -> (Case, Written) {
    let b = |s| at(10, s);
    let s = |s| at(11, s);
    let batch = log(&[
        r#"{"D":"1", "T":"50"}"#.to_string(),
        befriend(&b(0), "1", "2"),
        befriend(&b(1), "1", "9"),
        befriend(&b(2), "1", "10"),
        befriend(&b(3), "2", "3"),
        befriend(&b(4), "10", "3"),
        befriend(&b(5), "9", "4"),
        befriend(&b(6), "2", "11"),
        befriend(&b(7), "2", "5"),
        befriend(&b(8), "9", "5"),
        befriend(&b(9), "10", "5"),
        befriend(&b(10), "2", "9"),
        purchase(&b(11), "2", "1.00"),
        purchase(&b(12), "9", "1.00"),
        purchase(&b(13), "10", "1.00"),
    ]);
    // 1's baseline is {1.00, 1.00, 1.00}: 0.50 is not flagged, 7.50 is.
    let s1 = purchase(&s(1), "1", "0.50");
    let s2 = purchase(&s(2), "1", "007.50");
    // Now 1's friends are 2, 3 and 10; a JSON integer id and a JSON number amount.
    let s5 = format!(
        r#"{{"event_type":"purchase", "timestamp":"{}", "id": 1, "amount": 16.8}}"#,
        s(5)
    );
    // 3's friends 2, 10 and 1 bought {1.00, 1.00, 0.50, 7.50, 16.80}: mean 5.36, not flagged.
    let s7 = purchase(&s(7), "3", "2.00");
    // 4's friends 9 and 1 bought {1.00, 0.50, 7.50, 16.80}: mean 6.45, sd 6.58 (sqrt(43.3325)).
    let s8 = purchase(&s(8), "4", "30.00");
    let stream = log(&[
        s1,
        s2.clone(),
        befriend(&s(3), "1", "3"),
        unfriend(&s(4), "1", "9"),
        s5.clone(),
        befriend(&s(6), "1", "4"),
        s7,
        s8.clone(),
    ]);
    let expected = Written {
        flagged: [
            flagged(&s2, "1.00", "0.00"),
            flagged(&s5, "1.00", "0.00"),
            flagged(&s8, "6.45", "6.58"),
        ]
        .concat(),
        feed: [
            // Numeric order: 9 before 10.
            feed(r#""1""#, &s(2), "7.50", &[r#""2""#, r#""9""#, r#""10""#]),
            // 3 joined and 9 left before the purchase; 4 joins only after it.
            feed(r#""1""#, &s(5), "16.80", &[r#""2""#, r#""3""#, r#""10""#]),
            feed(r#""4""#, &s(8), "30.00", &[r#""1""#, r#""9""#]),
        ]
        .concat(),
        recommend: [
            // 5 through 2, 9 and 10; 3 through 2 and 10; 4 through 9; 11 through 2. Friends
            // (9 is 2's friend) and the buyer are never suggested. 4 before 11: numeric.
            recommend(
                r#""1""#,
                &s(2),
                "7.50",
                &[(r#""5""#, 3), (r#""3""#, 2), (r#""4""#, 1), (r#""11""#, 1)],
            ),
            // 5 through 2 and 10; 9 (no longer a friend) and 11 through 2; 3 is a friend.
            recommend(
                r#""1""#,
                &s(5),
                "16.80",
                &[(r#""5""#, 2), (r#""9""#, 1), (r#""11""#, 1)],
            ),
            // 4's friends are 9 (friends 2, 5) and 1 (friends 2, 3, 10): 2 twice.
            recommend(
                r#""4""#,
                &s(8),
                "30.00",
                &[(r#""2""#, 2), (r#""3""#, 1), (r#""5""#, 1), (r#""10""#, 1)],
            ),
        ]
        .concat(),
    };
    (Case::new(batch, stream), expected)
}

#[test]
fn feed_and_recommendations_by_hand_with_integer_ids() {
    let (case, expected) = integer_case();
    assert_everywhere(&case, &expected);
}

/// String ids, D = 1, T = 3: lists with a non-integer id sort bytewise, lists of integers
/// numerically; ids are unescaped and written back as JSON strings.
fn string_case() -> (Case, Written) {
    let b = |s| at(10, s);
    let s = |s| at(11, s);
    let batch = log(&[
        r#"{"D":1,"T":3}"#.to_string(),
        befriend(&b(0), "alice", "bob"),
        befriend(&b(1), "alice", "Carol"),
        befriend(&b(2), "alice", "10"),
        format!(
            r#"{{"event_type":"befriend", "timestamp":"{}", "id1": 9, "id2": "alice"}}"#,
            b(3)
        ),
        befriend(&b(4), "bob", "12"),
        befriend(&b(5), "Carol", "12"),
        befriend(&b(6), "Carol", "3"),
        befriend(&b(7), "10", "100"),
        purchase(&b(8), "bob", "1.00"),
        purchase(&b(9), "Carol", "1.00"),
        purchase(&b(10), "10", "1.00"),
        befriend(&b(11), "lonely", r#"q\"t"#),
        befriend(&b(12), "lonely", "x"),
        purchase(&b(13), r#"q\"t"#, "1.00"),
        purchase(&b(14), "x", "1.00"),
        purchase(&b(15), "nobody", "1.00"),
    ]);
    // "\u0062ob" is bob: 12 keeps one mutual friend, Carol.
    let unfriend_bob = format!(
        r#"{{"event_type":"unfriend", "timestamp":"{}", "id1": "\u0062ob", "id2": "12"}}"#,
        s(0)
    );
    let s1 = purchase(&s(1), "alice", "5");
    let s2 = purchase(&s(2), "lonely", "9.99");
    // No friends: no baseline, never flagged.
    let s3 = purchase(&s(3), "nobody", "5000.00");
    let stream = log(&[unfriend_bob, s1.clone(), s2.clone(), s3]);
    let expected = Written {
        flagged: [flagged(&s1, "1.00", "0.00"), flagged(&s2, "1.00", "0.00")].concat(),
        feed: [
            feed(
                r#""alice""#,
                &s(1),
                "5.00",
                &[r#""10""#, r#""9""#, r#""Carol""#, r#""bob""#],
            ),
            feed(r#""lonely""#, &s(2), "9.99", &[r#""q\"t""#, r#""x""#]),
        ]
        .concat(),
        recommend: [
            recommend(
                r#""alice""#,
                &s(1),
                "5.00",
                &[(r#""3""#, 1), (r#""12""#, 1), (r#""100""#, 1)],
            ),
            recommend(r#""lonely""#, &s(2), "9.99", &[]),
        ]
        .concat(),
    };
    (Case::new(batch, stream), expected)
}

#[test]
fn feed_and_recommendations_by_hand_with_string_ids() {
    let (case, expected) = string_case();
    assert_everywhere(&case, &expected);
}

#[test]
fn negative_and_huge_integer_ids_sort_numerically() {
    let b = |s| at(10, s);
    let int_befriend = |s: u32, a: &str, id: &str| {
        format!(
            r#"{{"event_type":"befriend", "timestamp":"{}", "id1": "{a}", "id2": {id}}}"#,
            b(s)
        )
    };
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        int_befriend(0, "b", "-3"),
        befriend(&b(1), "b", "-20"),
        befriend(&b(2), "b", "0"),
        befriend(&b(3), "b", "5"),
        int_befriend(4, "b", "123456789012345678901234567890"),
        befriend(&b(5), "b", "99"),
        befriend(&b(6), "99", "x10"),
        befriend(&b(7), "5", "x9"),
        befriend(&b(8), "-20", "z"),
        befriend(&b(9), "0", "z"),
        purchase(&b(10), "-3", "1.00"),
        purchase(&b(11), "99", "1.00"),
    ]);
    let line = purchase(&at(11, 0), "b", "3.00");
    let case = Case::new(batch, log(std::slice::from_ref(&line)));
    let expected = Written {
        flagged: flagged(&line, "1.00", "0.00"),
        feed: feed(
            r#""b""#,
            &at(11, 0),
            "3.00",
            &[
                r#""-20""#,
                r#""-3""#,
                r#""0""#,
                r#""5""#,
                r#""99""#,
                r#""123456789012345678901234567890""#,
            ],
        ),
        // Not all integers: bytewise, "x10" before "x9".
        recommend: recommend(
            r#""b""#,
            &at(11, 0),
            "3.00",
            &[(r#""z""#, 2), (r#""x10""#, 1), (r#""x9""#, 1)],
        ),
    };
    assert_everywhere(&case, &expected);
}

#[test]
fn amounts_are_canonical_and_timestamps_as_given() {
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        befriend("2017-01-01 00:00:00", "1", "2"),
        purchase("2017-01-01 00:00:01", "2", "0.01"),
        purchase("2017-01-01 00:00:02", "2", "0.01"),
    ]);
    let lines = [
        r#"{"event_type":"purchase", "timestamp":"2019-12-31 23:59:59", "id": "1", "amount": "007.50"}"#,
        r#"{"event_type":"purchase", "timestamp":"2020-02-29 00:00:00", "id": "1", "amount": 16.8}"#,
        r#"{"event_type":"purchase", "timestamp":"2020-03-01 08:09:10", "id": "1", "amount": "0.5"}"#,
        r#"{"event_type":"purchase", "timestamp":"2020-03-01 08:09:11", "id": "1", "amount": 1000000000}"#,
        r#"{"event_type":"purchase", "timestamp":"2020-03-01 08:09:12", "id": "1", "amount": "00000.10"}"#,
    ];
    let case = Case::new(batch, log(&lines.map(String::from)));
    let got = run_social(&case, &[]);
    let expected = [
        ("2019-12-31 23:59:59", "7.50"),
        ("2020-02-29 00:00:00", "16.80"),
        ("2020-03-01 08:09:10", "0.50"),
        ("2020-03-01 08:09:11", "1000000000.00"),
        ("2020-03-01 08:09:12", "0.10"),
    ];
    let feed_lines: String = expected
        .iter()
        .map(|(ts, amount)| feed(r#""1""#, ts, amount, &[r#""2""#]))
        .collect();
    let recommend_lines: String = expected
        .iter()
        .map(|(ts, amount)| recommend(r#""1""#, ts, amount, &[]))
        .collect();
    let flagged_lines: String = lines.iter().map(|l| flagged(l, "0.01", "0.00")).collect();
    assert_eq!(
        got,
        Written {
            flagged: flagged_lines,
            feed: feed_lines,
            recommend: recommend_lines,
        }
    );
}

#[test]
fn nothing_flagged_gives_empty_social_files() {
    let batch = log(&[
        r#"{"D":"2", "T":"5"}"#.to_string(),
        befriend(&at(10, 0), "1", "2"),
        purchase(&at(10, 1), "2", "10.00"),
        purchase(&at(10, 2), "2", "10.00"),
    ]);
    let stream = log(&[purchase(&at(11, 0), "1", "10.00")]);
    let case = Case::new(batch, stream);
    for config in CONFIGS {
        let got = run_social(&case, config);
        assert_eq!(
            got,
            Written {
                flagged: String::new(),
                feed: String::new(),
                recommend: String::new(),
            }
        );
    }
}

#[test]
fn a_failed_run_leaves_previous_social_files_alone() {
    let case = Case::new("{\"D\":\"0\", \"T\":\"5\"}\n", "");
    case.write(FEED, "previous feed\n");
    case.write(RECOMMEND, "previous recommend\n");
    let run = case.run(&["--feed", FEED, "--recommend", RECOMMEND]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(fs::read(case.path(FEED)).unwrap(), b"previous feed\n");
    assert_eq!(
        fs::read(case.path(RECOMMEND)).unwrap(),
        b"previous recommend\n"
    );
    assert!(case.output().is_none());
    assert_eq!(
        case.files().iter().filter(|f| f.ends_with(".tmp")).count(),
        0,
        "{:?}",
        case.files()
    );
}

// ---------------------------------------------------------------------------------------------
// A generated log against a model of the graph.

/// Ascending order of integer ids.
fn numeric(id: &str) -> u64 {
    id.parse().expect("gen-log ids are integers")
}

/// The expected feed and recommendation lines of the flagged purchases in `flagged`, from a
/// plain replay of the friendship graph (the flag decisions are taken from the program).
fn model_social(batch: &str, stream: &str, flagged: &str) -> (String, String) {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let apply = |event: &serde_json::Value, graph: &mut BTreeMap<_, BTreeSet<_>>| {
        let id = |key: &str| event[key].as_str().expect("string ids").to_string();
        match event["event_type"].as_str() {
            Some("befriend") if id("id1") != id("id2") => {
                graph.entry(id("id1")).or_default().insert(id("id2"));
                graph.entry(id("id2")).or_default().insert(id("id1"));
            }
            Some("unfriend") => {
                graph.entry(id("id1")).or_default().remove(&id("id2"));
                graph.entry(id("id2")).or_default().remove(&id("id1"));
            }
            _ => {}
        }
    };
    for line in batch.lines().skip(1) {
        apply(&serde_json::from_str(line).unwrap(), &mut graph);
    }
    let mut flagged = flagged.lines().map(|l| {
        let cut = l.rfind(", \"mean\": ").expect("a flagged line");
        format!("{}}}", &l[..cut])
    });
    let mut next = flagged.next();
    let (mut feed_out, mut recommend_out) = (String::new(), String::new());
    for line in stream.lines() {
        let line = line.trim_matches([' ', '\t', '\r']);
        if next.as_deref() == Some(line) {
            next = flagged.next();
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let buyer = event["id"].as_str().unwrap().to_string();
            let empty = BTreeSet::new();
            let friends_of = |u: &String| graph.get(u).unwrap_or(&empty);
            let mut friends: Vec<&String> = friends_of(&buyer).iter().collect();
            friends.sort_by_key(|f| numeric(f));
            let mut mutual: BTreeMap<&String, u32> = BTreeMap::new();
            for f in &friends {
                for g in friends_of(f) {
                    if *g != buyer && !friends_of(&buyer).contains(g) {
                        *mutual.entry(g).or_default() += 1;
                    }
                }
            }
            let mut suggest: Vec<(&String, u32)> = mutual.into_iter().collect();
            suggest.sort_by_key(|&(g, n)| (std::cmp::Reverse(n), numeric(g)));
            let quoted = |s: &str| format!("\"{s}\"");
            let ts = event["timestamp"].as_str().unwrap();
            let amount = event["amount"].as_str().unwrap();
            let friends: Vec<String> = friends.iter().map(|f| quoted(f)).collect();
            let friends: Vec<&str> = friends.iter().map(String::as_str).collect();
            feed_out.push_str(&feed(&quoted(&buyer), ts, amount, &friends));
            let suggest: Vec<(String, u32)> =
                suggest.iter().map(|(g, n)| (quoted(g), *n)).collect();
            let suggest: Vec<(&str, u32)> = suggest.iter().map(|(g, n)| (g.as_str(), *n)).collect();
            recommend_out.push_str(&recommend(&quoted(&buyer), ts, amount, &suggest));
        }
        if !line.is_empty() {
            apply(&serde_json::from_str(line).unwrap(), &mut graph);
        }
    }
    assert!(next.is_none(), "every flagged line was found in the stream");
    (feed_out, recommend_out)
}

#[test]
fn generated_log_matches_a_model_of_the_graph_at_every_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("gen-log"))
        .args([
            "--users",
            "150",
            "--batch-events",
            "6000",
            "--stream-events",
            "3000",
        ])
        .args(["--friends", "6", "--anomaly-rate", "0.05", "--seed", "7"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", show(&status.stderr));
    let batch = fs::read_to_string(dir.path().join(BATCH)).unwrap();
    let stream = fs::read_to_string(dir.path().join(STREAM)).unwrap();
    let case = Case::new(&batch, &stream);
    let reference = run_social(&case, &["--threads", "1"]);
    let flagged_count = reference.flagged.lines().count();
    assert!(
        flagged_count >= 20,
        "too few flagged purchases: {flagged_count}"
    );
    let (feed_lines, recommend_lines) = model_social(&batch, &stream, &reference.flagged);
    assert!(
        recommend_lines.contains("\"mutual\": 2"),
        "the log should exercise mutual counts above 1"
    );
    assert_eq!(reference.feed, feed_lines);
    assert_eq!(reference.recommend, recommend_lines);
    assert_everywhere(&case, &reference);
}

// ---------------------------------------------------------------------------------------------
// --stats.

#[test]
fn stats_are_valid_json_with_the_run_figures() {
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        befriend(&at(10, 0), "1", "2"),
        befriend(&at(10, 1), "2", "3"),
        befriend(&at(10, 2), "3", "4"),
        unfriend(&at(10, 3), "3", "4"),
        purchase(&at(10, 4), "2", "10.00"),
        purchase(&at(10, 5), "2", "10.00"),
        purchase(&at(10, 6), "2", "1e3"),
        r#"{"event_type":"refund", "timestamp":"2017-06-13 10:00:07", "id": "2", "amount": "1.00"}"#
            .to_string(),
    ]);
    let stream = log(&[
        purchase(&at(11, 0), "1", "50.00"),
        String::new(),
        "not json".to_string(),
        // A skipped line names a new user: it must not count.
        purchase("2017-02-30 00:00:00", "999", "1.00"),
        befriend(&at(11, 1), "1", "5"),
        unfriend(&at(11, 2), "2", "3"),
        purchase(&at(11, 3), "3", "10.00"),
        purchase(&at(11, 4), "1", "10.00"),
    ]);
    let case = Case::new(&batch, &stream);
    for config in CONFIGS {
        let mut args = vec!["--quiet", "--stats", STATS];
        args.extend_from_slice(config);
        let run = case.run(&args).success();
        assert_eq!(run.stdout, "");
        let text = show(&fs::read(case.path(STATS)).expect("the stats file exists"));
        let stats: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("stats are not JSON ({e}): {text}"));
        let counts = |events: u64, purchases: u64, befriends: u64, unfriends: u64| {
            serde_json::json!({
                "events": events, "purchase": purchases,
                "befriend": befriends, "unfriend": unfriends,
            })
        };
        assert_eq!(stats["batch"]["file"], BATCH, "{text}");
        assert_eq!(stats["batch"]["bytes"], batch.len() as u64, "{text}");
        assert_eq!(stats["batch"]["counts"], counts(6, 2, 3, 1), "{text}");
        assert_eq!(stats["stream"]["file"], STREAM, "{text}");
        assert_eq!(stats["stream"]["bytes"], stream.len() as u64, "{text}");
        assert_eq!(stats["stream"]["counts"], counts(5, 3, 1, 1), "{text}");
        assert_eq!(
            stats["skipped"],
            serde_json::json!({
                "invalid amount": 1, "unknown event_type": 1,
                "not JSON": 1, "invalid timestamp": 1,
            }),
            "{text}"
        );
        // 1 bought 50.00 against {10.00, 10.00}; then 1 (friends 2, 5) bought 10.00 against
        // 2's {10.00, 10.00}: not flagged; 3 (no friends left) has no baseline.
        assert_eq!(stats["flagged"], 1, "{text}");
        assert_eq!(stats["users"], 5, "users 1, 2, 3, 4 and 5: {text}");
        assert_eq!(stats["friendships"], 2, "1-2 and 1-5: {text}");
        for key in ["seconds", "events_per_second"] {
            for file in ["batch", "stream"] {
                assert!(
                    stats[file][key].as_f64().is_some_and(|v| v >= 0.0),
                    "{text}"
                );
            }
        }
        assert!(
            stats["seconds"].as_f64().is_some_and(|v| v >= 0.0),
            "{text}"
        );
        // A phase's CPU time (all threads) is known on unix, and within a few times its wall
        // time on every core (the figures are rounded to milliseconds, and a CPU quota can make
        // `available_parallelism` tell fewer cores than the process runs on): a unit or a
        // starting point gone wrong would be far off. Its system time is part of it.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        for file in ["batch", "stream"] {
            let (cpu, system) = (&stats[file]["cpu_seconds"], &stats[file]["system_seconds"]);
            if cfg!(unix) {
                let (cpu, wall) = (cpu.as_f64(), stats[file]["seconds"].as_f64());
                assert!(
                    cpu.zip(wall)
                        .is_some_and(|(cpu, wall)| cpu >= 0.0 && cpu <= 4.0 * wall * cores + 0.01),
                    "{file}: {text}"
                );
                assert!(
                    system
                        .as_f64()
                        .zip(cpu)
                        .is_some_and(|(system, cpu)| system >= 0.0 && system <= cpu + 0.01),
                    "{file}: {text}"
                );
            } else {
                assert!(cpu.is_null() && system.is_null(), "{text}");
            }
        }
        assert_eq!(
            show(&case.output().unwrap()),
            flagged(&purchase(&at(11, 0), "1", "50.00"), "10.00", "0.00")
        );
    }
}

#[test]
fn stats_of_a_failed_run_are_not_written() {
    let case = Case::new("{\"D\":\"1\"}\n", "");
    let run = case.run(&["--stats", STATS]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(!case.path(STATS).exists());
}
