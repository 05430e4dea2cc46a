//! Every limit stated: a celebrity with hundreds of thousands of friends costs what as many
//! ordinary friendships cost, and the hidden tuning options are bounded with a clear message.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Hidden options, their largest value, and the message a value beyond it gets.
const BOUNDS: [(&str, &str, &str); 3] = [
    (
        "--chunk-bytes",
        "1073741824",
        "must be a whole number from 1 to 1073741824 (1 GiB)",
    ),
    (
        "--max-line-bytes",
        "1073741824",
        "must be a whole number from 1 to 1073741824 (1 GiB)",
    ),
    (
        "--window",
        "1048576",
        "must be a whole number from 1 to 1048576",
    ),
];

/// A run that never ends is a failure, not a hung test.
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn hidden_tuning_options_refuse_values_beyond_their_bounds_at_once() {
    let case = Case::from_fixture("official");
    let expected = {
        case.run(&[]).success();
        case.output().expect("an output")
    };
    for (option, max, message) in BOUNDS {
        let beyond = (max.parse::<u64>().unwrap() + 1).to_string();
        for value in [
            "0",
            beyond.as_str(),
            "18446744073709551615",
            "99999999999999999999999",
            "-1",
            "+5",
            "1e3",
        ] {
            for sweep in [false, true] {
                if sweep && option == "--max-line-bytes" {
                    continue; // not an option of the sweep
                }
                let mut cmd = case.cmd();
                if sweep {
                    cmd.arg("sweep").args([BATCH, STREAM]);
                } else {
                    cmd.args([BATCH, STREAM, OUTPUT]);
                }
                cmd.arg(format!("{option}={value}")).timeout(PATIENCE);
                let started = Instant::now();
                let run = Run::of(&mut cmd);
                assert_eq!(
                    run.code,
                    Some(2),
                    "{option} {value} (sweep: {sweep}): {run:?}"
                );
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{option} {value} took {:?}",
                    started.elapsed()
                );
                assert!(
                    run.stderr.contains(&format!("'{value}' for '{option} "))
                        && run.stderr.contains(message),
                    "{option} {value} (sweep: {sweep}): {}",
                    run.stderr
                );
            }
        }
        // The bound itself is accepted, and changes nothing.
        case.run(&[option, max]).success();
        assert_eq!(case.output(), Some(expected.clone()), "{option} {max}");
    }
}

const TS: &str = "2017-06-13 11:33:01";

/// Friendships in the celebrity test.
const FRIENDS: u32 = 200_000;

/// A batch where user 0 befriends `FRIENDS` users, then loses every even one, and a stream
/// where it loses all its odd friends but 1 and 3, one by one, then buys.
fn celebrity_logs() -> (String, String) {
    let mut batch = vec![r#"{"D":"1", "T":"2"}"#.to_string()];
    batch.push(purchase(TS, "1", "10.00"));
    batch.push(purchase(TS, "3", "20.00"));
    batch.push(purchase(TS, "2", "5000.00"));
    for f in 1..=FRIENDS {
        let f = f.to_string();
        // Both orientations: the celebrity's side is looked up as the first id and the second.
        batch.push(match f.len() % 2 {
            0 => befriend(TS, "0", &f),
            _ => befriend(TS, &f, "0"),
        });
    }
    batch.extend(
        (2..=FRIENDS)
            .step_by(2)
            .map(|f| unfriend(TS, &f.to_string(), "0")),
    );
    let mut stream: Vec<String> = (5..=FRIENDS)
        .step_by(2)
        .map(|f| unfriend(TS, "0", &f.to_string()))
        .collect();
    stream.push(purchase("2017-06-13 11:33:02", "0", "1000.00"));
    (log(&batch), log(&stream))
}

/// The same numbers of lines of each kind among ordinary users: pairs `(2k, 2k + 1)`.
fn ordinary_logs() -> (String, String) {
    let pair = |f: u32| ((2 * f).to_string(), (2 * f + 1).to_string());
    let mut batch = vec![r#"{"D":"1", "T":"2"}"#.to_string()];
    batch.push(purchase(TS, "1", "10.00"));
    batch.push(purchase(TS, "3", "20.00"));
    batch.push(purchase(TS, "2", "5000.00"));
    for f in 1..=FRIENDS {
        let (a, b) = pair(f);
        batch.push(befriend(TS, &a, &b));
    }
    batch.extend((2..=FRIENDS).step_by(2).map(|f| {
        let (a, b) = pair(f);
        unfriend(TS, &b, &a)
    }));
    let mut stream: Vec<String> = (5..=FRIENDS)
        .step_by(2)
        .map(|f| {
            let (a, b) = pair(f);
            unfriend(TS, &a, &b)
        })
        .collect();
    stream.push(purchase("2017-06-13 11:33:02", "0", "1000.00"));
    (log(&batch), log(&stream))
}

/// The wall time of a run, and its output.
fn timed(case: &Case, args: &[&str]) -> (Duration, Option<Vec<u8>>) {
    let mut cmd = case.cmd();
    cmd.args([BATCH, STREAM, OUTPUT, "--quiet"])
        .args(args)
        .timeout(PATIENCE);
    let started = Instant::now();
    Run::of(&mut cmd).success();
    (started.elapsed(), case.output())
}

/// One user befriending 200 000 others, then unfriended by all but two (in the batch, then
/// one by one in the stream's windows) costs about what as many ordinary friendships cost:
/// each change is O(1) whatever the degree. A scan of the celebrity's list per change takes
/// tens of seconds here.
#[test]
fn a_celebrity_costs_what_as_many_ordinary_friendships_cost() {
    let (batch, stream) = celebrity_logs();
    let celebrity = Case::new(batch, stream);
    let (batch, stream) = ordinary_logs();
    let ordinary = Case::new(batch, stream);
    let flagged = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "0", "amount": "1000.00", "mean": "15.00", "sd": "5.00"}"#;
    for threads in ["1", "2"] {
        let args = ["--threads", threads];
        // Alternated, so that a change in the machine's speed hits both.
        let (mut hub, mut plain) = (Duration::MAX, Duration::MAX);
        for _ in 0..2 {
            let (took, output) = timed(&celebrity, &args);
            assert_eq!(
                show(&output.unwrap()),
                format!("{flagged}\n"),
                "threads {threads}"
            );
            hub = hub.min(took);
            let (took, output) = timed(&ordinary, &args);
            assert_eq!(output, Some(Vec::new()), "threads {threads}");
            plain = plain.min(took);
        }
        assert!(
            hub < 3 * plain + Duration::from_secs(2),
            "threads {threads}: the celebrity took {hub:?}, as many ordinary friendships {plain:?}"
        );
        // The sweep replays through the same graph.
        let mut sweep = celebrity.cmd();
        sweep
            .args(["sweep", "--quiet", "-D", "1,2", "-T", "2", BATCH, STREAM])
            .args(args)
            .timeout(PATIENCE);
        let started = Instant::now();
        let run = Run::of(&mut sweep).success();
        assert!(
            started.elapsed() < 3 * plain + Duration::from_secs(4),
            "threads {threads}: the sweep took {:?}: {}",
            started.elapsed(),
            run.stdout
        );
    }
}
