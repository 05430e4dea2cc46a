//! The library's public API as an embedding program uses it: decisions one line at a time
//! equal those of a whole stream replayed at once, a saved and restored detector decides as
//! one that never stopped, broken saved states are errors, and a sink can stop a replay.

mod common;

use std::io;

use anomaly_detect::{Applied, Checked, Detector, Fatal, Params, Sink};
use common::{Case, Rng, STREAM, joined, random_lines};

/// The decisions of applying `lines` one at a time, as text (flag, mean, sd, friends lists).
fn decisions(detector: &mut Detector, lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| match detector.apply(line.as_bytes()).unwrap() {
            Applied::Purchase(d) => {
                // The lists come in the network's order, which a restored state need not keep:
                // the outputs sort them.
                let mut friends: Vec<_> = d.friends().collect();
                let mut suggested: Vec<_> = d.suggested().collect();
                friends.sort();
                suggested.sort();
                format!(
                    "{} {:?} {friends:?} {suggested:?}",
                    d.is_flagged(),
                    d.baseline()
                )
            }
            other => format!("{other:?}"),
        })
        .collect()
}

fn detector(params: Params, threads: usize) -> Detector {
    Detector::builder()
        .threads(threads)
        .social(true)
        .build(params)
        .unwrap()
}

#[test]
fn a_restored_detector_decides_as_one_that_never_stopped() {
    for seed in 1..=30u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let params = Params {
            degree: 1 + rng.below(3) as u32,
            tracked: 2 + rng.below(5) as u32,
        };
        let users = 5 + rng.below(30);
        let lines = random_lines(&mut rng, 600, users);
        let cut = rng.below(lines.len() as u64) as usize;
        let threads = [1, 2, 8][seed as usize % 3];
        let whole = decisions(&mut detector(params, threads), &lines);

        let mut first = detector(params, threads);
        let mut decided = decisions(&mut first, &lines[..cut]);
        let mut saved = Vec::new();
        first.save(&mut saved).unwrap();
        let mut again = Vec::new();
        first.save(&mut again).unwrap();
        assert_eq!(saved, again, "saving twice gives the same bytes");
        let mut restored = Detector::builder()
            .threads(threads)
            .social(true)
            .restore(&saved[..])
            .unwrap();
        assert_eq!(restored.params(), params);
        decided.extend(decisions(&mut restored, &lines[cut..]));
        let differ = decided.iter().zip(&whole).position(|(a, b)| a != b);
        assert_eq!(differ, None, "seed {seed}, cut at line {cut}");
        assert_eq!(decided.len(), whole.len());
    }
}

#[test]
fn a_broken_saved_state_is_an_error_never_a_panic() {
    let mut rng = Rng(7);
    let lines = random_lines(&mut rng, 200, 10);
    let mut detector = detector(
        Params {
            degree: 2,
            tracked: 3,
        },
        1,
    );
    decisions(&mut detector, &lines);
    let mut saved = Vec::new();
    detector.save(&mut saved).unwrap();
    for len in (0..saved.len()).step_by(7) {
        let error = Detector::restore(&saved[..len])
            .err()
            .expect("a truncated state fails");
        assert!(matches!(error, Fatal::Snapshot(_)), "{error}");
    }
    for at in (0..saved.len()).step_by(5) {
        let mut changed = saved.clone();
        changed[at] ^= 0x20;
        let error = Detector::restore(&changed[..])
            .err()
            .expect("a changed state fails");
        assert!(
            error
                .to_string()
                .starts_with("cannot restore the detector's state: ")
        );
    }
}

/// Counts purchases and stops the stream after `stop_after` of them, or fails then.
struct Stops {
    seen: u64,
    stop_after: u64,
    fail: bool,
}

impl Sink for Stops {
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn checked(&mut self, _: &Checked<'_>) -> Result<bool, Self::Error> {
        self.seen += 1;
        if self.seen == self.stop_after && self.fail {
            return Err("the queue is full".into());
        }
        Ok(self.seen < self.stop_after)
    }
}

#[test]
fn a_sink_stops_a_replay_or_fails_it_with_its_own_error() {
    let mut rng = Rng(11);
    let stream = random_lines(&mut rng, 2000, 20);
    let case = Case::new("{\"D\":\"2\", \"T\":\"5\"}\n", joined(&stream, false));
    let mut sink = Stops {
        seen: 0,
        stop_after: 10,
        fail: false,
    };
    let mut detector = Detector::from_batch(case.path(common::BATCH)).unwrap();
    detector
        .replay_stream(case.path(STREAM), &mut sink)
        .unwrap();
    assert_eq!(
        sink.seen, 10,
        "no purchase is handed over after the sink says stop"
    );

    let mut sink = Stops {
        seen: 0,
        stop_after: 3,
        fail: true,
    };
    let mut detector = Detector::from_batch(case.path(common::BATCH)).unwrap();
    let error = detector
        .replay_stream(case.path(STREAM), &mut sink)
        .unwrap_err();
    assert!(matches!(error, Fatal::Sink(_)));
    assert_eq!(error.to_string(), "the sink failed: the queue is full");
}

/// Every flagged purchase of a whole stream replayed at once, as the command writes them.
struct Flagged(Vec<u8>);

impl Sink for Flagged {
    type Error = io::Error;

    fn checked(&mut self, purchase: &Checked<'_>) -> io::Result<bool> {
        purchase.write_flagged_line(&mut self.0);
        Ok(true)
    }
}

#[test]
fn one_line_at_a_time_decides_as_a_whole_stream_at_once() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let batch = random_lines(&mut rng, 400, 25);
        let stream = random_lines(&mut rng, 400, 25);
        let case = Case::new(
            format!("{{\"D\":\"2\", \"T\":\"4\"}}\n{}", joined(&batch, false)),
            joined(&stream, false),
        );
        let threads = [1, 2, 8][seed as usize % 3];
        let build = || Detector::builder().threads(threads);
        let mut whole = build().from_batch(case.path(common::BATCH)).unwrap();
        let mut sink = Flagged(Vec::new());
        whole.replay_stream(case.path(STREAM), &mut sink).unwrap();
        let mut single = build().from_batch(case.path(common::BATCH)).unwrap();
        let mut lines = Vec::new();
        for line in &stream {
            if let Applied::Purchase(decision) = single.apply(line.as_bytes()).unwrap() {
                lines.extend_from_slice(decision.flagged_line().unwrap_or_default());
            }
        }
        assert_eq!(
            String::from_utf8(lines).unwrap(),
            String::from_utf8(sink.0).unwrap()
        );
    }
}

#[test]
fn parameters_out_of_range_and_odd_line_endings_are_handled_as_the_command_does() {
    for (degree, tracked) in [(0, 50), (2, 0), (2, 1), (2, 10_000_001)] {
        let built = Detector::new(Params { degree, tracked });
        assert!(
            matches!(built, Err(Fatal::Parameters { .. })),
            "D={degree} T={tracked}"
        );
    }
    assert!(
        Detector::new(Params {
            degree: 1,
            tracked: 10_000_000
        })
        .is_ok()
    );
    let mut detector = detector(
        Params {
            degree: 1,
            tracked: 2,
        },
        1,
    );
    let purchase = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "1.00"}"#;
    for ending in ["", "\n", "\r\n", "\n\n"] {
        let line = format!("{purchase}{ending}");
        assert!(
            matches!(
                detector.apply(line.as_bytes()).unwrap(),
                Applied::Purchase(_)
            ),
            "{ending:?}"
        );
    }
    let two = format!("{purchase}\n{purchase}");
    assert!(matches!(
        detector.apply(two.as_bytes()).unwrap(),
        Applied::Skipped(_)
    ));
}
