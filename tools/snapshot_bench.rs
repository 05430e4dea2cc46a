//! The cost of a state snapshot on a real state: replays BATCH then STREAM (timed, as the
//! replay a restart from a snapshot replaces), then saves the state's snapshot to memory and to
//! OUT (timed, with and without `fsync`), restores it from the file (timed: read, check and
//! rebuild, and the replay made from it; and from memory, without the read) and checks that the
//! restored state saves the same bytes. Also times the snapshot's checksum through `crc32fast`
//! and through a byte-at-a-time table. Prints the snapshot's size (total and per user) and the median of each
//! timing over the rounds.
//!
//! `cargo run --release --bin snapshot-bench -- target/bench-logs/batch10M-stream1M/{batch,stream}_log.json /tmp/state.snap`

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use anomaly_detect::config::Config;
use anomaly_detect::ingest::chunks::ChunkSource;
use anomaly_detect::ingest::input::LogFile;
use anomaly_detect::output::progress::Progress;
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::replay::Replay;
use anomaly_detect::state::snapshot;
use anomaly_detect::{Checked, Sink};

/// The same allocator, on the same pages, as `anomaly-detect`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Options {
    /// The batch log.
    batch: PathBuf,
    /// The stream log, replayed after the batch before the snapshot is taken.
    stream: PathBuf,
    /// Where the snapshot is written (replaced).
    out: PathBuf,
    /// Worker threads of the replay.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Rounds of saving and restoring; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// Counts the flagged purchases.
struct Count(u64);

impl Sink for Count {
    type Error = std::io::Error;

    fn checked(&mut self, purchase: &Checked<'_>) -> std::io::Result<bool> {
        self.0 += u64::from(purchase.is_flagged());
        Ok(true)
    }
}

/// CRC-32 (IEEE) a byte at a time through a 256-entry table: what a hand-written checksum
/// would cost, against `crc32fast`.
fn table_crc(bytes: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|mut c| {
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            c
        })
        .collect();
    !bytes.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort_unstable();
    times[times.len() / 2].as_secs_f64() * 1e3
}

fn run() -> anyhow::Result<()> {
    // SAFETY: sets a process-wide allocator option; takes effect for memory reserved later.
    unsafe {
        libmimalloc_sys::mi_option_set_enabled(libmimalloc_sys::mi_option_large_os_pages, true)
    };
    let options = Options::parse();
    anyhow::ensure!(options.rounds > 0, "nothing to time");
    let config = Config {
        threads: options.threads,
        ..Config::default()
    };
    let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
    let hidden = Progress::hidden();
    let started = Instant::now();
    let batch = LogFile::open(&options.batch)?;
    let mapped = |log| ChunkSource::Mapped { log, from: 0 };
    let mut replay = Replay::batch(mapped(&batch), &config, &mut skips, &hidden)
        .context("cannot replay the batch log")?;
    let stream = LogFile::open(&options.stream)?;
    let mut flagged = Count(0);
    let mut checks = replay.single_check(&mut flagged);
    replay.stream(mapped(&stream), &mut checks, &mut skips, &hidden)?;
    let replayed = started.elapsed();
    let users = replay.state().users.len();

    let (mut to_memory, mut to_file, mut synced) = (vec![], vec![], vec![]);
    let (mut restored, mut in_memory) = (vec![], vec![]);
    let mut bytes = Vec::new();
    for _ in 0..options.rounds {
        bytes.clear();
        let started = Instant::now();
        replay.save(&mut bytes)?;
        to_memory.push(started.elapsed());

        let started = Instant::now();
        let mut file = File::create(&options.out)?;
        replay.save(&mut file)?;
        to_file.push(started.elapsed());
        file.sync_all()?;
        synced.push(started.elapsed());
        drop(file);

        let started = Instant::now();
        let mut file = BufReader::new(File::open(&options.out)?);
        let saved = snapshot::restore(&mut file)
            .with_context(|| format!("cannot restore {}", options.out.display()))?;
        let again = Replay::from_snapshot(saved, &config)?;
        restored.push(started.elapsed());
        let mut resaved = Vec::with_capacity(bytes.len());
        again.save(&mut resaved)?;
        anyhow::ensure!(resaved == bytes, "the restored state saves other bytes");
        drop(again);

        let started = Instant::now();
        let saved = snapshot::restore_bytes(&bytes)?;
        in_memory.push(started.elapsed());
        drop(saved);
    }
    let size = bytes.len();
    let started = Instant::now();
    let fast = crc32fast::hash(&bytes);
    let fast_time = started.elapsed();
    let started = Instant::now();
    let by_table = table_crc(&bytes);
    let table_time = started.elapsed();
    anyhow::ensure!(fast == by_table, "the two checksums differ");
    println!("users {users}, {} flagged", flagged.0);
    println!(
        "snapshot {size} bytes ({:.1} MB), {:.0} bytes per user",
        size as f64 / 1e6,
        size as f64 / users.max(1) as f64
    );
    println!(
        "replay (batch + stream, {} threads) {:.0} ms",
        options.threads,
        replayed.as_secs_f64() * 1e3
    );
    println!(
        "save to memory {:.1} ms, to a file {:.1} ms, with fsync {:.1} ms",
        median(to_memory),
        median(to_file),
        median(synced)
    );
    println!(
        "checksum of the snapshot: crc32fast {:.1} ms, a byte-at-a-time table {:.1} ms",
        fast_time.as_secs_f64() * 1e3,
        table_time.as_secs_f64() * 1e3
    );
    let restore = median(restored);
    println!(
        "restore from the file {restore:.1} ms (from memory {:.1} ms): {:.1}x faster than the replay",
        median(in_memory),
        replayed.as_secs_f64() * 1e3 / restore
    );
    Ok(())
}

fn main() {
    if let Err(error) = run() {
        eprintln!("snapshot-bench: {error:#}");
        std::process::exit(2);
    }
}
