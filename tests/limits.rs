//! Every limit stated: a celebrity with hundreds of thousands of friends costs what as many
//! ordinary friendships cost, and the hidden tuning options are bounded with a clear message.

mod common;

use std::time::Duration;

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
                let run = Run::of(&mut cmd);
                assert_eq!(
                    run.code,
                    Some(2),
                    "{option} {value} (sweep: {sweep}): {run:?}"
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

/// One user befriending 200 000 others, then unfriended by all but two (in the batch, then
/// one by one in the stream's windows), gives the same flag at 1 and 2 threads and in the sweep.
/// What a change costs at any degree is measured in the benchmark (docs/performance.md,
/// "Celebrity users"); that long lists are indexed is checked by `state::graph`'s unit tests.
/// `PATIENCE` only guards against a hang.
#[test]
fn a_celebrity_with_two_hundred_thousand_friends_gives_the_same_flags_everywhere() {
    let (batch, stream) = celebrity_logs();
    let celebrity = Case::new(batch, stream);
    let flagged = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "0", "amount": "1000.00", "mean": "15.00", "sd": "5.00"}"#;
    for threads in ["1", "2"] {
        let mut cmd = celebrity.cmd();
        cmd.args([BATCH, STREAM, OUTPUT, "--quiet", "--threads", threads])
            .timeout(PATIENCE);
        Run::of(&mut cmd).success();
        assert_eq!(
            show(&celebrity.output().unwrap()),
            format!("{flagged}\n"),
            "threads {threads}"
        );
        // The sweep replays through the same graph.
        let mut sweep = celebrity.cmd();
        sweep
            .args([
                "sweep", "--quiet", "-D", "1,2", "-T", "2", "--csv", "-", BATCH, STREAM,
            ])
            .args(["--threads", threads])
            .timeout(PATIENCE);
        let run = Run::of(&mut sweep).success();
        assert!(
            run.stdout.contains("\n1,2,1,"),
            "threads {threads}: the sweep flags the purchase at D=1 T=2: {}",
            run.stdout
        );
    }
}
