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
