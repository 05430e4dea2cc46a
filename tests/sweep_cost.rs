//! `anomaly-detect sweep`'s answers about cost and reach: the befriends' distances against a
//! plain breadth-first search on a replayed graph, the per-day columns on streams of known
//! spans, and the picture (well-formed, with both panels and their legends, the same at
//! every thread count).

mod common;
mod model;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;

use common::{BATCH, Case, STREAM, befriend, log, purchase, show, unfriend};

/// A xorshift64 generator: `below(n)` draws from `0..n`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random logs among `users` users: many befriends (some of a user with itself, some of
/// friends), unfriends, purchases and a few dirty lines; timestamps over minutes.
fn random_logs(seed: u64, users: u64, batch: usize, stream: usize) -> (String, String) {
    let mut rng = Rng(seed | 1);
    let mut event = |at: usize| -> String {
        let ts = format!("2017-06-13 11:{:02}:{:02}", at / 60 % 60, at % 60);
        let (a, b) = (rng.below(users).to_string(), rng.below(users).to_string());
        match rng.below(100) {
            0..=34 => befriend(&ts, &a, &b),
            35..=47 => unfriend(&ts, &a, &b),
            48..=49 => "{\"event_type\": \"befriend\", \"id1\": 1".to_string(),
            _ => purchase(&ts, &a, &format!("{}.00", 10 + rng.below(90))),
        }
    };
    let batch_log: String = (0..batch).map(|at| event(at) + "\n").collect();
    let stream_log: String = (batch..batch + stream).map(|at| event(at) + "\n").collect();
    (
        format!("{{\"D\":\"2\", \"T\":\"5\"}}\n{batch_log}"),
        stream_log,
    )
}

/// The distance from `a` to `b` by a plain breadth-first search from `a`.
fn plain_distance(friends: &BTreeMap<String, BTreeSet<String>>, a: &str, b: &str) -> Option<u64> {
    let mut distance = BTreeMap::from([(a.to_string(), 0u64)]);
    let mut queue = VecDeque::from([a.to_string()]);
    while let Some(u) = queue.pop_front() {
        if u == b {
            return Some(distance[&u]);
        }
        for f in friends.get(&u).into_iter().flatten() {
            if !distance.contains_key(f) {
                distance.insert(f.clone(), distance[&u] + 1);
                queue.push_back(f.clone());
            }
        }
    }
    None
}

/// The `--distances` CSV the model expects: the batch replayed, then every stream befriend of
/// two different users counted at its distance just before it (past `largest`: `more`); rows
/// 1 to `largest`, or past 32 to the farthest found.
fn model_distances(batch: &str, stream: &str, largest: u64) -> String {
    let mut friends: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut more = 0;
    let batch_lines = model::lines(batch.as_bytes());
    let stream_lines = model::lines(stream.as_bytes());
    let events = batch_lines[1..]
        .iter()
        .map(|l| (false, l))
        .chain(stream_lines.iter().map(|l| (true, l)));
    for (in_stream, line) in events {
        match model::parse_event(line) {
            Some(model::Event::Befriend(a, b)) if a != b => {
                if in_stream {
                    match plain_distance(&friends, &a, &b).filter(|&d| d <= largest) {
                        Some(d) => *counts.entry(d).or_default() += 1,
                        None => more += 1,
                    }
                }
                friends.entry(a.clone()).or_default().insert(b.clone());
                friends.entry(b).or_default().insert(a);
            }
            Some(model::Event::Unfriend(a, b)) => {
                friends.entry(a.clone()).or_default().remove(&b);
                friends.entry(b).or_default().remove(&a);
            }
            _ => {}
        }
    }
    let farthest = counts.keys().last().copied().unwrap_or(0);
    let rows = if largest <= 32 {
        largest
    } else {
        farthest.max(32)
    };
    let mut csv = String::from("distance,friendships\n");
    for d in 1..=rows {
        csv.push_str(&format!("{d},{}\n", counts.get(&d).copied().unwrap_or(0)));
    }
    csv.push_str(&format!("more,{more}\n"));
    csv
}

#[test]
fn distances_are_those_of_a_plain_search_on_the_replayed_graph_at_every_thread_count() {
    let grids: [(&str, u64); 5] = [
        ("1..3", 3),
        ("1", 1),
        ("2,5", 5),
        ("1,40", 40),
        ("2,99999999999", u64::from(u32::MAX)),
    ];
    let mut seen_more = false;
    for seed in 0..10u64 {
        let users = [6, 20, 60, 120][seed as usize % 4];
        let (batch, stream) = random_logs(seed * 7919 + 1, users, 150 + 40 * seed as usize, 400);
        let case = Case::new(&batch, &stream);
        let (degrees, largest) = grids[seed as usize % grids.len()];
        let expected = model_distances(&batch, &stream, largest);
        seen_more |= !expected.ends_with("more,0\n");
        let window = (1 + seed * 13 % 50).to_string();
        for threads in ["1", "2", "8"] {
            let run = case
                .cmd()
                .args([
                    "sweep",
                    "-q",
                    "-D",
                    degrees,
                    "-T",
                    "2,5",
                    "--distances",
                    "-",
                ])
                .args(["--threads", threads, "--window", &window, BATCH, STREAM])
                .output()
                .unwrap();
            assert!(run.status.success(), "{}", show(&run.stderr));
            assert_eq!(
                show(&run.stdout),
                expected,
                "seed {seed}, -D {degrees}, {threads} threads, window {window}"
            );
        }
    }
    assert!(seen_more, "some befriend joins users farther apart");
}

#[test]
fn the_distance_table_follows_the_grid_and_the_file_replaces_it_on_stdout() {
    // 1-2-3-4 a path; the stream befriends 1-2 (friends), 1-4 (3), 1-3 (now 2: 1-4-3),
    // 1-5 (not connected) and 6-6 (not counted).
    let ts = "2017-06-13 00:00:00";
    let batch = format!(
        "{{\"D\":\"3\", \"T\":\"2\"}}\n{}",
        log(&[
            befriend(ts, "1", "2"),
            befriend(ts, "2", "3"),
            befriend(ts, "3", "4")
        ])
    );
    let stream = log(&[
        befriend(ts, "1", "2"),
        befriend(ts, "1", "4"),
        befriend(ts, "1", "3"),
        befriend(ts, "1", "5"),
        befriend(ts, "6", "6"),
    ]);
    let case = Case::new(batch, stream);
    let run = case
        .cmd()
        .args([
            "sweep",
            "-q",
            "-D",
            "1..3",
            "-T",
            "2",
            "--distances",
            "d.csv",
        ])
        .args([BATCH, STREAM])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    assert_eq!(
        fs::read_to_string(case.path("d.csv")).unwrap(),
        "distance,friendships\n1,1\n2,1\n3,1\nmore,1\n"
    );
    let table = show(&run.stdout);
    assert!(
        table.ends_with(
            "Stream befriends by how far apart the two users were just before \
             (4 of two different users; more: farther than 3 or not connected)\n\
             distance  friendships  share\n\
             \x20      1            1  25.0%\n\
             \x20      2            1  25.0%\n\
             \x20      3            1  25.0%\n\
             \x20   more            1  25.0%\n"
        ),
        "{table}"
    );
    // `--distances -` takes standard output: no table.
    let run = case
        .cmd()
        .args(["sweep", "-q", "-D", "1..3", "-T", "2", "--distances", "-"])
        .args([BATCH, STREAM])
        .output()
        .unwrap();
    assert_eq!(
        show(&run.stdout),
        "distance,friendships\n1,1\n2,1\n3,1\nmore,1\n"
    );
    // Like every output, it may not be another one or an input.
    let run = case
        .cmd()
        .args([
            "sweep",
            "--csv",
            "x.csv",
            "--distances",
            "x.csv",
            BATCH,
            STREAM,
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(show(&run.stderr).contains("--distances is the same file as --csv"));
}

/// A sweep with `-D 1 -T 2` of a stream of purchases by user 1 at `stamps`, each flagged
/// (user 1's friend 2 bought 10.00 twice; user 1 has one friend and one user at distance 2):
/// its CSV row and its table.
fn per_day(stamps: &[&str]) -> (String, String) {
    let ts = "2017-06-01 00:00:00";
    let batch = format!(
        "{{\"D\":\"1\", \"T\":\"2\"}}\n{}",
        log(&[
            befriend(ts, "1", "2"),
            befriend(ts, "2", "3"),
            purchase(ts, "2", "10.00"),
            purchase(ts, "2", "10.00"),
        ])
    );
    let stream: Vec<String> = stamps.iter().map(|t| purchase(t, "1", "900.00")).collect();
    let case = Case::new(batch, log(&stream));
    let run = case
        .cmd()
        .args(["sweep", "-q", "-D", "1", "-T", "2", "--csv", "grid.csv"])
        .args([BATCH, STREAM])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    let csv = fs::read_to_string(case.path("grid.csv")).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some(
            "D,T,flagged,share,buyers,feed,recommend,\
             flagged_per_day,feed_per_day,recommend_per_day"
        )
    );
    (rows.next().unwrap().to_string(), show(&run.stdout))
}

#[test]
fn per_day_columns_divide_by_the_span_of_the_stream_s_purchases() {
    // One day exactly: the counts themselves.
    let (row, table) = per_day(&["2017-06-13 00:00:00", "2017-06-14 00:00:00"]);
    assert_eq!(row, "1,2,2,1.000000,1,2,2,2.00,2.00,2.00");
    assert!(
        table.contains(
            "Per day, over the 1.00 days of stream purchases \
             (from 2017-06-13 00:00:00 to 2017-06-14 00:00:00)\n"
        ),
        "{table}"
    );
    assert!(table.contains("D=1  flagged  2.0\n"), "{table}");
    assert!(table.contains("     emails   2.0\n"), "{table}");
    // A week, the latest purchase first (timestamps may go back): 3 over 7 days.
    let (row, table) = per_day(&[
        "2017-06-20 00:00:00",
        "2017-06-13 00:00:00",
        "2017-06-15 00:00:00",
    ]);
    assert_eq!(row, "1,2,3,1.000000,1,3,3,0.43,0.43,0.43");
    assert!(table.contains("over the 7.00 days"), "{table}");
    assert!(table.contains("D=1  flagged  0.4\n"), "{table}");
    // Across a month's end and a leap day: 2016-02-28 to 2016-03-01 is 2 days.
    let (row, _) = per_day(&["2016-02-28 00:00:00", "2016-03-01 00:00:00"]);
    assert_eq!(row, "1,2,2,1.000000,1,2,2,1.00,1.00,1.00");
    // A second short of a day, and equal timestamps: no rate, and the table says why.
    for (stamps, span) in [
        (
            &["2017-06-13 00:00:00", "2017-06-13 23:59:59"][..],
            "23 h 59 min 59 s",
        ),
        (
            &["2017-06-13 08:00:00", "2017-06-13 08:00:00"][..],
            "0 h 0 min 0 s",
        ),
    ] {
        let (row, table) = per_day(stamps);
        assert_eq!(row, "1,2,2,1.000000,1,2,2,,,");
        assert!(
            table.contains(&format!(
                "Per day: no daily rate, the stream spans less than a day ({span}, purchases from"
            )),
            "{table}"
        );
    }
    // No purchases at all.
    let (row, table) = per_day(&[]);
    assert_eq!(row, "1,2,0,0.000000,0,0,0,,,");
    assert!(
        table.contains("Per day: no daily rate, the stream has no purchases\n"),
        "{table}"
    );
}

/// The texts of an SVG document, trimmed, in document order.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the picture is well-formed XML");
    assert!(doc.root_element().has_tag_name("svg"));
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

#[test]
fn the_picture_parses_and_holds_both_panels_with_legends_the_same_at_every_thread_count() {
    // Over a week, more than a thousand purchases: the batch log's pair D=2 T=5 is in the grid.
    let (batch, stream) = random_logs(11, 40, 600, 2600);
    let stream: String = stream
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let day = 13 + i * 7 / 2600;
            line.replace("2017-06-13 ", &format!("2017-06-{day:02} ")) + "\n"
        })
        .collect();
    let case = Case::new(&batch, &stream);
    let mut pictures = Vec::new();
    for threads in ["1", "2", "8"] {
        let name = format!("map{threads}.svg");
        let run = case
            .cmd()
            .args(["sweep", "-q", "-D", "1..3", "-T", "2,5,9", "--svg", &name])
            .args(["--threads", threads, "--window", "13", BATCH, STREAM])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", show(&run.stderr));
        pictures.push(fs::read_to_string(case.path(&name)).unwrap());
    }
    assert!(
        pictures.iter().all(|p| *p == pictures[0]),
        "the same at 1, 2 and 8 threads"
    );
    let svg = &pictures[0];
    let texts = texts(svg);
    let has = |want: &str| texts.iter().any(|t| t == want);
    let starts = |want: &str| texts.iter().any(|t| t.starts_with(want));
    let checked = model::run(batch.as_bytes(), stream.as_bytes(), None, None)
        .checks
        .len();
    assert!(checked >= 1000);
    let grouped = format!("{},{:03}", checked / 1000, checked % 1000);
    assert!(
        has(&format!(
            "Share of the {grouped} stream purchases flagged, by D and T"
        )),
        "{texts:?}"
    );
    assert!(
        starts("Recommendation emails per day, over the "),
        "{texts:?}"
    );
    assert!(
        has("share flagged:") && has("emails per day:"),
        "both legends"
    );
    assert!(has("T=5*") && has("D=2*") && has("T=9") && has("D=3"));
    assert_eq!(
        texts
            .iter()
            .filter(|t| *t == "* thick border: the batch log's own D=2 T=5")
            .count(),
        2,
        "the note under each panel"
    );
    assert_eq!(texts.iter().filter(|t| t.starts_with("feed ")).count(), 9);
    // Per panel: per cell its fill and border, the marked border, the legend's steps and
    // frame; and the background.
    assert_eq!(svg.matches("<rect").count(), 1 + 2 * (2 * 9 + 1 + 21));

    // Without the batch log's pair in the grid, nothing is starred and there is no note.
    let run = case
        .cmd()
        .args([
            "sweep", "-q", "-D", "1,3", "-T", "2,5", "--svg", "-", BATCH, STREAM,
        ])
        .output()
        .unwrap();
    let texts = self::texts(&show(&run.stdout));
    assert!(!texts.iter().any(|t| t.contains('*')), "{texts:?}");
}
