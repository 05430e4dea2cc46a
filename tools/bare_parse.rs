//! The speed limit of ingest: a bare parallel simd-json parse of a log, with no state.
//!
//! Cuts the log into the same line-aligned chunks as `anomaly-detect`, and on every core runs
//! `fill_tape_padded` over each line of a padded per-chunk copy, reading the same fields
//! (event_type, timestamp, id/id1/id2, amount) off the tape. Prints MB/s and lines/s, and the
//! CPU time of all threads (the work parsing alone takes).
//!
//! `cargo run --release --bin bare-parse -- log_input/batch_log.json [--threads N]`

use std::path::PathBuf;

use anomaly_detect::clock::PhaseClock;
use anomaly_detect::ingest::input::{Lines, LogFile, chunks, trim_line};
use clap::Parser;
use rayon::prelude::*;
use simd_json::{Buffers, INPUT_PADDING, Node, Tape, fill_tape_padded};

#[derive(Parser)]
struct Options {
    /// The log to parse.
    log: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Chunk size in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    chunk_bytes: usize,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Parses one chunk; returns (lines parsed, a checksum of the fields read).
fn parse_chunk(
    body: &[u8],
    range: std::ops::Range<usize>,
    scratch: &mut Vec<u8>,
    buffers: &mut Buffers,
    tape_store: &mut Tape<'static>,
) -> (u64, u64) {
    let chunk = &body[range];
    scratch.clear();
    scratch.extend_from_slice(chunk);
    scratch.resize(chunk.len() + INPUT_PADDING, b' ');
    let (mut lines, mut check) = (0u64, 0u64);
    for line in Lines::new(chunk) {
        let (start, len) = trim_line(chunk, line);
        if len == 0 {
            continue;
        }
        let mut tape = std::mem::replace(tape_store, Tape(Vec::new())).reset();
        if fill_tape_padded(&mut scratch[start..], len, buffers, &mut tape).is_ok() {
            lines += 1;
            if let Some(Node::Object { len, .. }) = tape.0.first() {
                let mut at = 1;
                for _ in 0..*len {
                    if let (Node::String(key), Some(Node::String(value))) =
                        (tape.0[at], tape.0.get(at + 1))
                        && matches!(
                            key,
                            "event_type" | "timestamp" | "id" | "id1" | "id2" | "amount"
                        )
                    {
                        check = check.wrapping_add(value.len() as u64);
                    }
                    at += 2;
                }
            }
        }
        *tape_store = tape.reset();
    }
    (lines, check)
}

fn main() {
    let options = Options::parse();
    let log = LogFile::open(&options.log).unwrap_or_else(|e| {
        eprintln!("Error: {e}");
        std::process::exit(2)
    });
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let body = log.body();
    let ranges: Vec<_> = chunks(body, 0, options.chunk_bytes).collect();
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let mut lines = 0;
    for _ in 0..options.runs.max(1) {
        let clock = PhaseClock::start();
        let (n, _check) = pool.install(|| {
            ranges
                .par_iter()
                .map_init(
                    || (Vec::new(), Buffers::new(4096), Tape(Vec::new())),
                    |(scratch, buffers, tape), range| {
                        parse_chunk(body, range.clone(), scratch, buffers, tape)
                    },
                )
                .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1.wrapping_add(b.1)))
        });
        times.push(clock.wall().as_secs_f64());
        cpu_times.push(clock.cpu().map(|cpu| cpu.as_secs_f64()));
        lines = n;
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let cpu = match cpu_times.into_iter().collect::<Option<Vec<f64>>>() {
        Some(mut cpu_times) => {
            cpu_times.sort_by(f64::total_cmp);
            format!("{:.3} s", cpu_times[cpu_times.len() / 2])
        }
        None => "unknown".to_string(),
    };
    println!(
        "bare-parse: {} lines, {:.1} MB in {:.3} s (median of {}) on {} threads: {:.0} MB/s, {:.2} M lines/s; CPU time {}",
        lines,
        body.len() as f64 / 1e6,
        median,
        times.len(),
        threads,
        body.len() as f64 / 1e6 / median,
        lines as f64 / 1e6 / median,
        cpu
    );
}
