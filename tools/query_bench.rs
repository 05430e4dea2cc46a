//! The cost of one network query on a real state: replays a batch log, then times the query
//! (network, candidates, merge) for random buyers, with no parsing, windows or output around it.
//!
//! Prints the median, fastest and slowest of `--rounds` rounds in microseconds per query, and
//! the mean network size. A change to the query is judged by running the old and the new
//! binary alternately on the same log: whole-process timings mix in the batch and drift with
//! the machine, this isolates the query.
//!
//! `cargo run --release --bin query-bench -- target/bench-logs/batch10M-stream1M/batch_log.json`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use anomaly_detect::network::NetworkQuery;
use anomaly_detect::pipeline::{Replay, read_params};
use anomaly_detect::progress::Progress;
use anomaly_detect::report::SkipLog;
use anomaly_detect::{Config, LogFile};

/// The same allocator, on the same pages, as `anomaly-detect`: the query is bound by memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Options {
    /// The batch log whose final state is queried.
    batch: PathBuf,
    /// Network degree D (default: the log's).
    #[arg(short = 'D', long)]
    degree: Option<u32>,
    /// Number of tracked purchases T (default: the log's).
    #[arg(short = 'T', long)]
    tracked: Option<u32>,
    /// Queries per round, for buyers drawn at random among the log's users.
    #[arg(long, default_value_t = 50_000)]
    queries: usize,
    /// Rounds; the median round is reported.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Seed of the buyers drawn.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn run() -> anyhow::Result<()> {
    // SAFETY: sets a process-wide allocator option; takes effect for memory reserved later.
    unsafe {
        libmimalloc_sys::mi_option_set_enabled(libmimalloc_sys::mi_option_large_os_pages, true)
    };
    let options = Options::parse();
    anyhow::ensure!(options.queries > 0 && options.rounds > 0, "nothing to time");
    let batch = LogFile::open(&options.batch)?;
    let config = Config {
        degree: options.degree,
        tracked: options.tracked,
        ..Config::default()
    };
    let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
    let replay = Replay::batch(&batch, &config, &mut skips, &Progress::hidden())
        .context("cannot replay the batch log")?;
    let state = replay.state();
    let degree = match options.degree {
        Some(degree) => degree,
        None => read_params(&batch)?.0.degree,
    };
    let users = state.users.len() as u64;
    anyhow::ensure!(users > 0, "the batch log has no users");
    // xorshift64: the same buyers for every binary run with the same seed.
    let mut x = options.seed.max(1);
    let buyers: Vec<u32> = (0..options.queries)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % users) as u32
        })
        .collect();
    let mut query = NetworkQuery::new();
    let members: usize = buyers
        .iter()
        .map(|&u| query.members(&state.graph, u, degree).len())
        .sum();
    let mut rounds: Vec<f64> = (0..options.rounds)
        .map(|_| {
            let started = Instant::now();
            for &u in &buyers {
                black_box(query.baseline(&state.graph, &state.history, u, degree));
            }
            started.elapsed().as_secs_f64() * 1e6 / buyers.len() as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    println!(
        "query-bench: D={degree}, {} users, {} queries x {} rounds: median {:.2} us/query \
         (fastest {:.2}, slowest {:.2}); {:.1} members per network",
        users,
        buyers.len(),
        rounds.len(),
        rounds[rounds.len() / 2],
        rounds[0],
        rounds[rounds.len() - 1],
        members as f64 / buyers.len() as f64,
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
