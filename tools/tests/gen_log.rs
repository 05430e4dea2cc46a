//! gen-log, the generator every benchmark and several tests rely on: the same seed and options
//! give byte-identical logs, another seed other logs, and the logs have the asked-for shape.
//! (Building this crate's tests also builds its binaries, which the main crate's tests run.)

use std::fs;
use std::path::Path;

use assert_cmd::Command;

fn generate(out: &Path, seed: &str) {
    Command::cargo_bin("gen-log")
        .expect("the gen-log binary is built")
        .arg("--out")
        .arg(out)
        .args([
            "--users",
            "50",
            "--batch-events",
            "300",
            "--stream-events",
            "40",
        ])
        .args(["--seed", seed])
        .assert()
        .success();
}

#[test]
fn the_same_seed_gives_the_same_logs_and_another_seed_other_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    generate(&a, "7");
    generate(&b, "7");
    generate(&c, "8");
    for name in ["batch_log.json", "stream_log.json"] {
        let first = fs::read(a.join(name)).unwrap();
        assert_eq!(first, fs::read(b.join(name)).unwrap(), "{name} differs");
        assert_ne!(
            first,
            fs::read(c.join(name)).unwrap(),
            "{name} ignores the seed"
        );
    }
    let batch = fs::read_to_string(a.join("batch_log.json")).unwrap();
    let mut lines = batch.lines();
    assert_eq!(lines.next(), Some(r#"{"D":"2", "T":"50"}"#));
    assert_eq!(lines.count(), 300);
    let stream = fs::read_to_string(a.join("stream_log.json")).unwrap();
    assert_eq!(stream.lines().count(), 40);
}

/// `--seconds-per-event` stretches the clock: the same events, each timestamp's distance from
/// the first one multiplied.
#[test]
fn seconds_per_event_stretches_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, stretched) = (dir.path().join("a"), dir.path().join("b"));
    generate(&plain, "3");
    Command::cargo_bin("gen-log")
        .unwrap()
        .arg("--out")
        .arg(&stretched)
        .args([
            "--users",
            "50",
            "--batch-events",
            "300",
            "--stream-events",
            "40",
        ])
        .args(["--seed", "3", "--seconds-per-event", "12"])
        .assert()
        .success();
    let seconds = |line: &str| -> i64 {
        let at = line.find("\"timestamp\":\"").unwrap() + 13;
        let (day, time) = (&line[at + 8..at + 10], &line[at + 11..at + 19]);
        let hms: Vec<i64> = time.split(':').map(|n| n.parse().unwrap()).collect();
        day.parse::<i64>().unwrap() * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
    };
    let strip = |line: &str| {
        let at = line.find("\"timestamp\":\"").unwrap() + 13;
        format!("{}{}", &line[..at], &line[at + 19..])
    };
    let a = fs::read_to_string(plain.join("stream_log.json")).unwrap();
    let b = fs::read_to_string(stretched.join("stream_log.json")).unwrap();
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a.len(), b.len());
    let (a0, b0) = (seconds(a[0]), seconds(b[0]));
    assert!(seconds(a[a.len() - 1]) > a0, "the clock moves");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(strip(x), strip(y));
        assert_eq!(12 * (seconds(x) - a0), seconds(y) - b0, "{x} / {y}");
    }
}

/// The friendship lines of a log as (befriend?, id1, id2), read off the generator's layout.
fn friend_events(log: &str) -> Vec<(bool, u32, u32)> {
    let id = |line: &str, key: &str| -> u32 {
        let from = line.find(key).expect("the key") + key.len();
        let rest = &line[from..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    log.lines()
        .filter(|l| l.contains("friend\""))
        .map(|l| {
            let befriend = l.contains("\"befriend\"");
            (befriend, id(l, "\"id1\": \""), id(l, "\"id2\": \""))
        })
        .collect()
}

/// Applies friendship lines to a set of pairs.
fn apply(pairs: &mut std::collections::HashSet<(u32, u32)>, events: &[(bool, u32, u32)]) {
    for &(befriend, a, b) in events {
        let key = (a.min(b), a.max(b));
        if befriend {
            pairs.insert(key);
        } else {
            pairs.remove(&key);
        }
    }
}

fn degree(pairs: &std::collections::HashSet<(u32, u32)>, user: u32) -> usize {
    pairs
        .iter()
        .filter(|&&(a, b)| a == user || b == user)
        .count()
}

/// `--celebrities 2 --celebrity-friends 50`: users 1 and 2 are built up to 50 ordinary friends
/// each, take no part in ordinary friendships, and with more celebrity events than the build
/// churn (unfriends and new friends) in the batch and at the same rate in the stream.
#[test]
fn celebrities_are_built_up_to_their_friends_then_churned() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        Command::cargo_bin("gen-log")
            .unwrap()
            .arg("--out")
            .arg(&out)
            .args(["--users", "300", "--batch-events", "2000"])
            .args(["--stream-events", "500", "--celebrities", "2"])
            .args(["--celebrity-friends", "50"])
            .args(extra)
            .assert()
            .success();
        let read = |file: &str| fs::read_to_string(out.join(file)).unwrap();
        (read("batch_log.json"), read("stream_log.json"))
    };
    let celebrity = |&(_, a, b): &(bool, u32, u32)| a <= 2 || b <= 2;

    // The build alone (the default: 2 x 50 events).
    let (batch, stream) = run("build", &[]);
    let events = friend_events(&batch);
    let mut pairs = std::collections::HashSet::new();
    apply(&mut pairs, &events);
    assert_eq!((degree(&pairs, 1), degree(&pairs, 2)), (50, 50));
    let touching: Vec<_> = events.iter().filter(|e| celebrity(e)).collect();
    assert_eq!(touching.len(), 100, "one befriend per friend");
    assert!(
        touching
            .iter()
            .all(|&&(befriend, a, b)| befriend && a.max(b) > 2)
    );
    // At the batch's rate: 100 of 2000 events, so 25 of the stream's 500.
    let in_stream = friend_events(&stream)
        .iter()
        .filter(|e| celebrity(e))
        .count();
    assert!((20..=25).contains(&in_stream), "{in_stream} in the stream");

    // 400 celebrity events: the build, then churn around 50 friends.
    let (batch, stream) = run("churn", &["--celebrity-events", "400"]);
    let events = friend_events(&batch);
    let touching: Vec<_> = events.iter().filter(|e| celebrity(e)).collect();
    assert!((330..=400).contains(&touching.len()), "{}", touching.len());
    let unfriends = touching.iter().filter(|e| !e.0).count();
    assert!(
        unfriends > 100,
        "{unfriends} celebrity unfriends in the batch"
    );
    let mut pairs = std::collections::HashSet::new();
    apply(&mut pairs, &events);
    for user in [1, 2] {
        let friends = degree(&pairs, user);
        assert!(
            (25..=75).contains(&friends),
            "celebrity {user}: {friends} friends"
        );
    }
    let stream = friend_events(&stream);
    assert!(stream.iter().filter(|e| celebrity(e) && !e.0).count() > 20);

    // Settings the generator cannot meet are refused.
    let refused = Command::cargo_bin("gen-log")
        .unwrap()
        .arg("--out")
        .arg(dir.path().join("refused"))
        .args([
            "--users",
            "300",
            "--celebrities",
            "2",
            "--celebrity-friends",
            "150",
        ])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        stderr.contains("--celebrity-friends 150 is more than half of the 298 ordinary users"),
        "{stderr}"
    );
}
