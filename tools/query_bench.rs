//! The cost of one network query on a real state: replays a batch log, then times the query
//! (network, candidates, merge) for random buyers, with no parsing, windows or output around it.
//!
//! Each round times the queries one by one (as `--threads 1` runs them), then their first stage
//! alone (the walk and the choice of candidates: the rest of a query is the merge of the
//! candidates' purchases), then staggered (as a window's checks run, see
//! `NetworkQuery::baselines`), then staggered on two threads that share the state (as the
//! pipeline's two workers run them; in core-microseconds per query, so that a figure equal to
//! the staggered one means no slowdown from sharing the caches and memory), and checks that all
//! give the same baselines. Prints the median, fastest and slowest round of each in
//! microseconds per query, and the mean network size. A change to the query is judged by running
//! the old and the new binary alternately on the same log: whole-process timings mix in the
//! batch and drift with the machine, this isolates the query.
//!
//! `cargo run --release --bin query-bench -- target/bench-logs/batch10M-stream1M/batch_log.json`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use anomaly_detect::ingest::chunks::{ChunkSource, read_params};
use anomaly_detect::output::progress::Progress;
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::query::network::NetworkQuery;
use anomaly_detect::replay::Replay;
use anomaly_detect::{config::Config, ingest::input::LogFile};

/// The same allocator, on the same pages, as `anomaly-detect`: the query is bound by memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Options {
    /// The batch log whose final state is queried.
    batch: PathBuf,
    /// Network degree D (default: the log's).
    #[arg(short = 'D', long, value_parser = anomaly_detect::cli::degree)]
    degree: Option<u32>,
    /// Number of tracked purchases T (default: the log's).
    #[arg(short = 'T', long, value_parser = anomaly_detect::cli::tracked)]
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
    let source = ChunkSource::Mapped {
        log: &batch,
        from: 0,
    };
    let replay = Replay::batch(source, &config, &mut skips, &Progress::hidden())
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
    // Each round times the queries one by one, then their ranking alone, then staggered (as a
    // window's checks run), then staggered on two threads sharing the state (as the pipeline's
    // two workers run them), and all must give the same baseline for every buyer.
    let mut one_by_one = Vec::new();
    let mut ranking = Vec::new();
    let mut staggered = Vec::new();
    let mut two_threads = Vec::new();
    let mut workers = [NetworkQuery::new(), NetworkQuery::new()];
    let mut baselines = Vec::with_capacity(buyers.len());
    for _ in 0..options.rounds {
        baselines.clear();
        let started = Instant::now();
        for &u in &buyers {
            baselines.push(black_box(query.baseline(
                &state.graph,
                &state.history,
                u,
                degree,
            )));
        }
        one_by_one.push(per_query(started, buyers.len()));
        let started = Instant::now();
        for &u in &buyers {
            black_box(query.rank(&state.graph, &state.history, u, degree));
        }
        ranking.push(per_query(started, buyers.len()));
        let started = Instant::now();
        let mut differ = 0usize;
        query.baselines(
            &state.history,
            degree,
            buyers.len(),
            |i| (&state.graph, buyers[i], u64::MAX),
            |_, i, baseline| differ += usize::from(black_box(baseline) != baselines[i]),
        );
        staggered.push(per_query(started, buyers.len()));
        anyhow::ensure!(
            differ == 0,
            "staggered queries gave {differ} other baselines"
        );
        let started = Instant::now();
        let half = buyers.len() / 2;
        let differ: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = workers
                .iter_mut()
                .zip([0..half, half..buyers.len()])
                .map(|(query, part)| {
                    let (state, buyers, baselines) = (&state, &buyers, &baselines);
                    scope.spawn(move || {
                        let mut differ = 0usize;
                        query.baselines(
                            &state.history,
                            degree,
                            part.len(),
                            |i| (&state.graph, buyers[part.start + i], u64::MAX),
                            |_, i, baseline| {
                                differ +=
                                    usize::from(black_box(baseline) != baselines[part.start + i])
                            },
                        );
                        differ
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().expect("a query thread panicked"))
                .sum()
        });
        // Core-microseconds per query: wall time times the two threads.
        two_threads.push(2.0 * per_query(started, buyers.len()));
        anyhow::ensure!(
            differ == 0,
            "queries on two threads gave {differ} other baselines"
        );
    }
    println!(
        "query-bench: D={degree}, {} users, {} queries x {} rounds, {:.1} members per network",
        users,
        buyers.len(),
        options.rounds,
        members as f64 / buyers.len() as f64,
    );
    for (name, mut times) in [
        ("one by one", one_by_one),
        ("ranking only, one by one", ranking),
        ("staggered", staggered),
        ("two threads, core-us", two_threads),
    ] {
        times.sort_by(f64::total_cmp);
        println!(
            "  {name}: median {:.2} us/query (fastest {:.2}, slowest {:.2})",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
        );
    }
    Ok(())
}

/// Microseconds per query since `started`.
fn per_query(started: Instant, queries: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / queries as f64
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
