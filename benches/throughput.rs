//! Criterion benchmarks: parsing a chunk of log lines, one network query, and a whole replay
//! at 1 and 2 threads, on deterministic synthetic logs built in memory.

use std::hint::black_box;
use std::io::Write;

use anomaly_detect::ingest::event::Timestamp;
use anomaly_detect::ingest::parse::{IdHasher, LineParser, ParsedChunk};
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::query::network::NetworkQuery;
use anomaly_detect::state::graph::FriendGraph;
use anomaly_detect::state::history::{Purchase, PurchaseHistory};
use anomaly_detect::{
    config::Config, ingest::input::LogFile, output::sink::FlaggedLines, replay::replay,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A log of `events` lines over `users` users: 60 % purchases, the rest friendship changes.
fn synthetic_log(rng: &mut Rng, users: u64, events: usize, header: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(events * 100);
    if header {
        out.extend_from_slice(b"{\"D\":\"2\", \"T\":\"50\"}\n");
    }
    for i in 0..events {
        let second = i / 7;
        let ts = format!(
            "2017-06-13 {:02}:{:02}:{:02}",
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60
        );
        match rng.below(10) {
            0..=5 => {
                let amount = 1000 + rng.below(9000) + if rng.below(100) == 0 { 500_000 } else { 0 };
                writeln!(
                    out,
                    "{{\"event_type\":\"purchase\", \"timestamp\":\"{ts}\", \"id\": \"{}\", \"amount\": \"{}.{:02}\"}}",
                    rng.below(users),
                    amount / 100,
                    amount % 100
                )
            }
            6..=8 => writeln!(
                out,
                "{{\"event_type\":\"befriend\", \"timestamp\":\"{ts}\", \"id1\": \"{}\", \"id2\": \"{}\"}}",
                rng.below(users),
                rng.below(users)
            ),
            _ => writeln!(
                out,
                "{{\"event_type\":\"unfriend\", \"timestamp\":\"{ts}\", \"id1\": \"{}\", \"id2\": \"{}\"}}",
                rng.below(users),
                rng.below(users)
            ),
        }
        .expect("write to a Vec");
    }
    out
}

fn parsing(c: &mut Criterion) {
    let log = synthetic_log(&mut Rng(7), 100_000, 20_000, false);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(log.len() as u64));
    let mut parser = LineParser::new(IdHasher::default());
    let mut chunk = ParsedChunk::default();
    group.bench_function("chunk_20k_lines", |b| {
        b.iter(|| {
            parser.parse_chunk(&log, 0..log.len(), &mut chunk);
            black_box(chunk.events.len())
        })
    });
    group.finish();
}

fn network_query(c: &mut Criterion) {
    let mut rng = Rng(11);
    let users = 100_000u32;
    let mut graph = FriendGraph::new();
    while graph.edges() < users as usize * 5 {
        graph.befriend(
            rng.below(users.into()) as u32,
            rng.below(users.into()) as u32,
        );
    }
    let mut history = PurchaseHistory::new(50);
    for seq in 0..2_000_000u64 {
        history.record(
            rng.below(users.into()) as u32,
            Purchase::new(Timestamp(seq / 3), seq, 1000 + rng.below(5000)),
        );
    }
    let mut group = c.benchmark_group("network_query");
    for degree in [1u32, 2, 3] {
        let mut query = NetworkQuery::new();
        let mut pick = Rng(3);
        group.bench_with_input(BenchmarkId::new("D", degree), &degree, |b, &degree| {
            b.iter(|| {
                let user = pick.below(users.into()) as u32;
                black_box(query.baseline(&graph, &history, user, degree))
            })
        });
    }
    group.finish();
}

fn whole_replay(c: &mut Criterion) {
    let mut rng = Rng(5);
    let batch = synthetic_log(&mut rng, 20_000, 200_000, true);
    let stream = synthetic_log(&mut rng, 20_000, 50_000, false);
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.throughput(Throughput::Elements(250_000));
    for threads in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                b.iter(|| {
                    let batch = LogFile::from_bytes("batch_log.json", batch.clone());
                    let stream = LogFile::from_bytes("stream_log.json", stream.clone());
                    let config = Config {
                        threads,
                        ..Config::default()
                    };
                    let mut sink = FlaggedLines::new(Vec::new());
                    let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
                    let summary =
                        replay(&batch, &stream, &config, &mut sink, &mut skips).expect("replay");
                    black_box(summary.flagged)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, parsing, network_query, whole_replay);
criterion_main!(benches);
