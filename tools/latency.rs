//! `latency`: measures how long `anomaly-detect` in live mode takes from a stream line entering
//! its standard input to that line's flag leaving its standard output.
//!
//! It spawns `anomaly-detect --quiet [--threads T] BATCH - -`, scans BATCH once for user ids,
//! the latest timestamp and the median purchase amount, and pre-generates N stream events
//! (deterministic for a given `--seed`): about 60% purchases, 25% befriends and 15% unfriends
//! between the batch's users, 5% of the purchases about 100 times the median amount so that
//! flags are common. Every purchase line carries an extra key `"probe": K` that comes back in
//! its flag. After a warm-up (anomalous purchases sent every 20 ms, not measured, until the first
//! flag shows that the batch is loaded and the stream is read), the events are written at the
//! requested rate: each has a deadline, the sender sleeps while it is ahead, and writes all the
//! events that are due in one `write` (at most 64 KiB), taking their send instant when the write
//! returns. A reader thread takes the receive instant of every output line and its probe.
//! At the end stdin is closed, the child waited for, and the tool prints the events sent, the
//! achieved rate, the flags received and the latency median, p90, p99 and max — measured from
//! the write and, to show queueing in the sender too, from each event's deadline.
//!
//! Example:
//!
//! ```text
//! target/release/gen-log --out /tmp/lat --users 100000 --batch-events 1000000 --stream-events 0
//! target/release/latency --batch /tmp/lat/batch_log.json --rate 10000 --events 100000 --threads 2
//! ```

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

/// Measure the stdin-to-stdout latency of `anomaly-detect` in live mode.
#[derive(Parser, Debug)]
#[command(name = "latency")]
struct Args {
    /// The batch log given to anomaly-detect (also scanned for user ids).
    #[arg(long)]
    batch: PathBuf,
    /// Stream events written per second.
    #[arg(long, value_parser = positive)]
    rate: f64,
    /// Number of measured stream events.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Worker threads passed to anomaly-detect (its default: all cores).
    #[arg(long)]
    threads: Option<u32>,
    /// The anomaly-detect binary.
    #[arg(long, default_value = "target/release/anomaly-detect")]
    binary: PathBuf,
    /// PRNG seed of the generated events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of purchases that are anomalous (about 100x the median amount).
    #[arg(long, default_value_t = 0.05)]
    anomaly_rate: f64,
    /// Longest wait for the first flag of the warm-up, in seconds.
    #[arg(long, default_value_t = 300)]
    warmup_timeout: u64,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        Ok(_) => Err(format!("{s}: must be positive")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

/// SplitMix64: small, fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the stream generator takes from the batch log.
struct BatchFacts {
    ids: Vec<Vec<u8>>,
    /// The latest timestamp, used for every stream event.
    timestamp: Vec<u8>,
    median_cents: u64,
}

/// The text value of `"key"` in a JSON line, found by substring search (string or bare literal).
fn value_of<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&line[from..], key) {
        let mut i = from + at + key.len();
        from = i;
        while line.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        if line.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        while line.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        let rest = &line[i.min(line.len())..];
        return match rest.first() {
            Some(b'"') => memchr::memchr(b'"', &rest[1..]).map(|end| &rest[1..1 + end]),
            _ => {
                let end = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b' '))
                    .unwrap_or(rest.len());
                Some(&rest[..end])
            }
        };
    }
    None
}

/// `12.34` (or `12`) as cents.
fn cents(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    let whole: u64 = whole.parse().ok()?;
    let frac = format!("{frac:0<2}");
    let frac: u64 = frac.get(..2)?.parse().ok()?;
    Some(whole * 100 + frac)
}

fn scan_batch(path: &PathBuf) -> anyhow::Result<BatchFacts> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut ids = HashSet::new();
    let mut timestamp: Vec<u8> = Vec::new();
    let mut amounts = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if let Some(ts) = value_of(line, b"\"timestamp\"")
            && ts.len() == 19
            && ts > timestamp.as_slice()
        {
            timestamp = ts.to_vec();
        }
        for key in [&b"\"id\""[..], b"\"id1\"", b"\"id2\""] {
            if let Some(id) = value_of(line, key)
                && !id.is_empty()
                && !ids.contains(id)
            {
                ids.insert(id.to_vec());
            }
        }
        if let Some(amount) = value_of(line, b"\"amount\"").and_then(cents) {
            amounts.push(amount);
        }
    }
    if ids.len() < 2 || timestamp.is_empty() {
        bail!(
            "{}: found {} user ids and no timestamp; is it a batch log?",
            path.display(),
            ids.len()
        );
    }
    let mut ids: Vec<Vec<u8>> = ids.into_iter().collect();
    ids.sort_unstable();
    let median_cents = if amounts.is_empty() {
        5000
    } else {
        let mid = amounts.len() / 2;
        *amounts.select_nth_unstable(mid).1
    }
    .max(1);
    Ok(BatchFacts {
        ids,
        timestamp,
        median_cents,
    })
}

/// Generates stream lines.
struct Generator {
    rng: Rng,
    facts: BatchFacts,
    anomaly_rate: f64,
}

impl Generator {
    fn user(&mut self) -> usize {
        self.rng.below(self.facts.ids.len())
    }

    fn push_purchase(&mut self, out: &mut Vec<u8>, probe: i64, anomalous: bool) {
        let factor = if anomalous {
            80.0 + 40.0 * self.rng.unit()
        } else {
            0.3 + 2.7 * self.rng.unit()
        };
        let cents = ((self.facts.median_cents as f64 * factor).round() as u64).max(1);
        let id = self.user();
        out.extend_from_slice(b"{\"event_type\":\"purchase\", \"timestamp\":\"");
        out.extend_from_slice(&self.facts.timestamp);
        out.extend_from_slice(b"\", \"id\": \"");
        out.extend_from_slice(&self.facts.ids[id]);
        let _ = writeln!(
            out,
            "\", \"amount\": \"{}.{:02}\", \"probe\": {probe}}}",
            cents / 100,
            cents % 100
        );
    }

    /// Appends one event; returns whether it is a purchase (carrying `probe`).
    fn push_event(&mut self, out: &mut Vec<u8>, probe: i64) -> bool {
        let roll = self.rng.unit();
        if roll < 0.6 {
            let anomalous = self.rng.unit() < self.anomaly_rate;
            self.push_purchase(out, probe, anomalous);
            return true;
        }
        let kind: &[u8] = if roll < 0.85 {
            b"befriend"
        } else {
            b"unfriend"
        };
        let a = self.user();
        let mut b = self.user();
        if b == a {
            b = (a + 1) % self.facts.ids.len();
        }
        out.extend_from_slice(b"{\"event_type\":\"");
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\", \"timestamp\":\"");
        out.extend_from_slice(&self.facts.timestamp);
        out.extend_from_slice(b"\", \"id1\": \"");
        out.extend_from_slice(&self.facts.ids[a]);
        out.extend_from_slice(b"\", \"id2\": \"");
        out.extend_from_slice(&self.facts.ids[b]);
        out.extend_from_slice(b"\"}\n");
        false
    }
}

/// One output line of the child: when it arrived and its probe (`None`: none found).
struct Received {
    at: Instant,
    probe: Option<i64>,
}

fn probe_of(line: &[u8]) -> Option<i64> {
    let text = value_of(line, b"\"probe\"")?;
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Sorted latencies: nearest-rank percentile.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn print_latencies(label: &str, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    println!(
        "{label:<22} median {:>11}  p90 {:>11}  p99 {:>11}  max {:>11}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
}

/// Largest write: a pipe's default capacity.
const MAX_WRITE: usize = 1 << 16;
/// The warm-up lines' probe.
const WARMUP: i64 = -1;

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.anomaly_rate) {
        bail!("--anomaly-rate must be within 0..=1");
    }
    let scan_start = Instant::now();
    let facts = scan_batch(&args.batch)?;
    eprintln!(
        "batch: {} users, latest timestamp {}, median amount {}.{:02} (scanned in {:.2} s)",
        facts.ids.len(),
        String::from_utf8_lossy(&facts.timestamp),
        facts.median_cents / 100,
        facts.median_cents % 100,
        scan_start.elapsed().as_secs_f64()
    );
    let mut generator = Generator {
        rng: Rng(args.seed),
        facts,
        anomaly_rate: args.anomaly_rate,
    };

    // Pre-generate the measured events: `ends[i]` is the end of event i in `text`.
    let n = usize::try_from(args.events).context("--events is too large")?;
    let mut text = Vec::with_capacity(n * 110);
    let mut ends = Vec::with_capacity(n);
    let mut probe_event = Vec::new(); // probe -> event index
    for i in 0..n {
        if generator.push_event(&mut text, probe_event.len() as i64) {
            probe_event.push(i);
        }
        ends.push(text.len());
    }

    let mut command = Command::new(&args.binary);
    command.arg("--quiet");
    if let Some(threads) = args.threads {
        command.arg("--threads").arg(threads.to_string());
    }
    command
        .arg(&args.batch)
        .arg("-")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", args.binary.display()))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let stdout = child.stdout.take().context("no stdout")?;

    let warmed = Arc::new(AtomicBool::new(false));
    let reader = {
        let warmed = warmed.clone();
        std::thread::spawn(move || -> std::io::Result<Vec<Received>> {
            let mut out = BufReader::with_capacity(1 << 16, stdout);
            let mut line = Vec::new();
            let mut received = Vec::new();
            loop {
                line.clear();
                if out.read_until(b'\n', &mut line)? == 0 {
                    return Ok(received);
                }
                let at = Instant::now();
                let probe = probe_of(&line);
                if probe == Some(WARMUP) {
                    warmed.store(true, Ordering::Release);
                }
                received.push(Received { at, probe });
            }
        })
    };

    // Warm-up: until the child flags something, it is still loading the batch.
    let spawned = Instant::now();
    let mut warmup_lines = 0u64;
    let mut line = Vec::new();
    while !warmed.load(Ordering::Acquire) {
        if spawned.elapsed() > Duration::from_secs(args.warmup_timeout) {
            let _ = child.kill();
            bail!("no flag after {} s of warm-up", args.warmup_timeout);
        }
        if reader.is_finished() {
            bail!("anomaly-detect closed its output during the warm-up");
        }
        line.clear();
        generator.push_purchase(&mut line, WARMUP, true);
        stdin
            .write_all(&line)
            .context("anomaly-detect stopped reading during the warm-up")?;
        warmup_lines += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let warmup = spawned.elapsed();
    std::thread::sleep(Duration::from_millis(100)); // let the warm-up lines drain

    // The measured run: event i is due at start + i / rate.
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut sent_at: Vec<Instant> = Vec::with_capacity(n);
    let start = Instant::now();
    let deadline = |i: usize| start + interval.mul_f64(i as f64);
    let mut write_error = None;
    let mut writes = 0u64;
    let mut max_behind = Duration::ZERO;
    while sent_at.len() < n {
        let next = sent_at.len();
        let now = Instant::now();
        let due_at = deadline(next);
        if due_at > now {
            std::thread::sleep(due_at - now);
            continue;
        }
        max_behind = max_behind.max(now - due_at);
        // Every event due by now, within one write.
        let elapsed = (now - start).as_secs_f64();
        let due = ((elapsed * args.rate).floor() as usize + 1).clamp(next + 1, n);
        let from = if next == 0 { 0 } else { ends[next - 1] };
        let mut last = next;
        while last + 1 < due && ends[last + 1] - from <= MAX_WRITE {
            last += 1;
        }
        if let Err(error) = stdin.write_all(&text[from..ends[last]]) {
            write_error = Some(error);
            break;
        }
        writes += 1;
        let at = Instant::now();
        sent_at.resize(last + 1, at);
    }
    let send_end = Instant::now();
    drop(stdin);
    let status = child.wait().context("waiting for anomaly-detect")?;
    let all_done = Instant::now();
    let received = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))?
        .context("reading anomaly-detect's output")?;
    if let Some(error) = write_error {
        eprintln!("writing to anomaly-detect failed: {error}");
    }
    if !status.success() {
        eprintln!("anomaly-detect exited with {status}");
    }

    // Match the flags to their probes.
    let sent = sent_at.len();
    let mut latencies = Vec::new();
    let mut from_deadline = Vec::new();
    let (mut unmatched, mut warmup_flags, mut after_close) = (0u64, 0u64, 0u64);
    let mut seen = vec![false; probe_event.len()];
    for r in &received {
        match r.probe {
            Some(WARMUP) => warmup_flags += 1,
            Some(p) if p >= 0 && (p as usize) < probe_event.len() => {
                let p = p as usize;
                let event = probe_event[p];
                if event >= sent || seen[p] {
                    unmatched += 1;
                    continue;
                }
                seen[p] = true;
                if r.at > send_end {
                    after_close += 1;
                }
                latencies.push(r.at.saturating_duration_since(sent_at[event]));
                from_deadline.push(r.at.saturating_duration_since(deadline(event)));
            }
            _ => unmatched += 1,
        }
    }
    let purchases = probe_event.iter().filter(|&&e| e < sent).count();
    let span = sent_at.last().map_or(Duration::ZERO, |&last| {
        last.saturating_duration_since(start)
    });
    // The last event is due at (n - 1) / rate: the achieved rate over the same spacing.
    let achieved = if sent > 1 && !span.is_zero() {
        (sent - 1) as f64 / span.as_secs_f64()
    } else {
        0.0
    };
    let kept_up = sent == n && achieved >= 0.99 * args.rate;

    println!(
        "anomaly-detect {}: batch loaded and first flag after {:.2} s ({warmup_lines} warm-up lines, {warmup_flags} flagged)",
        match args.threads {
            Some(t) => format!("--threads {t}"),
            None => "default threads".to_string(),
        },
        warmup.as_secs_f64()
    );
    println!(
        "events sent            {sent} of {n} ({purchases} purchases) in {writes} writes over {:.3} s",
        span.as_secs_f64()
    );
    println!(
        "rate                   requested {:.0}/s, achieved {achieved:.0}/s, worst lag behind schedule {}",
        args.rate,
        ms(max_behind)
    );
    println!(
        "flags received         {} ({:.2}% of purchases; {after_close} after stdin closed, {unmatched} unmatched); child done {} after the last write",
        latencies.len(),
        100.0 * latencies.len() as f64 / purchases.max(1) as f64,
        ms(all_done - send_end)
    );
    print_latencies("latency (from write)", latencies);
    print_latencies("latency (from due)", from_deadline);
    println!(
        "kept up                {}",
        if kept_up {
            "yes".to_string()
        } else {
            format!(
                "NO (achieved {:.1}% of the requested rate)",
                100.0 * achieved / args.rate
            )
        }
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::from(2)
        }
    }
}
