//! `gen-log`: writes synthetic `batch_log.json` and `stream_log.json` files for testing and
//! benchmarking `anomaly-detect`.
//!
//! The batch log starts with the parameter line, then builds a social graph with a skewed degree
//! distribution (preferential attachment: a few users end up with hundreds of friends while the
//! mean stays near `--friends`), then mixes purchases, befriends and unfriends. The stream log
//! continues the same graph and clock. Output is deterministic for a given `--seed`.
//!
//! With `--celebrities N`, users `1..=N` are celebrities, outside the ordinary graph: spread
//! evenly over the batch, `--celebrity-events` events build each of them up to
//! `--celebrity-friends` friends (befriends of ordinary users, round robin), then churn on them
//! (unfriend a random friend or befriend a new one, as often; one in ten a purchase by the
//! celebrity). The stream has celebrity churn at the same rate.
//!
//! Example:
//!
//! ```text
//! cargo run --release --bin gen-log -- --out /tmp/g10m --batch-events 10000000 \
//!     --stream-events 1000000 --dirty-rate 0.001 --disorder-rate 0.01
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "gen-log",
    about = "Write synthetic batch_log.json and stream_log.json files for anomaly-detect"
)]
struct Args {
    /// Output directory (created if missing); receives batch_log.json and stream_log.json.
    #[arg(long)]
    out: PathBuf,
    /// Number of users; ids are "1" ..= "USERS".
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(2..=4_000_000_000))]
    users: u32,
    /// Number of events in the batch log (dirty lines come on top).
    #[arg(long, default_value_t = 1_000_000)]
    batch_events: u64,
    /// Number of events in the stream log (dirty lines come on top).
    #[arg(long, default_value_t = 100_000)]
    stream_events: u64,
    /// D written on the parameter line.
    #[arg(short = 'D', long, default_value_t = 2)]
    degree: u64,
    /// T written on the parameter line.
    #[arg(short = 'T', long, default_value_t = 50)]
    tracked: u64,
    /// Target mean number of friends per user.
    #[arg(long, default_value_t = 10.0, value_parser = non_negative)]
    friends: f64,
    /// Share of events (after the graph-building start) that are purchases.
    #[arg(long, default_value_t = 0.6, value_parser = probability)]
    purchase_share: f64,
    /// Share of purchases with an anomalously large amount (20-100x a typical one).
    #[arg(long, default_value_t = 0.01, value_parser = probability)]
    anomaly_rate: f64,
    /// Share of lines that are dirty (malformed, unknown type, bad amount or timestamp, missing
    /// field, blank); at most 0.99.
    #[arg(long, default_value_t = 0.0, value_parser = dirty_probability)]
    dirty_rate: f64,
    /// Share of events whose timestamp goes back in time by 1 to 300 seconds.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    disorder_rate: f64,
    /// Seconds the clock moves on after an event, half the time (0 the other half): the
    /// stream's span scales with it (100 000 events span about 14 hours at 1, a week at 12).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=86400))]
    seconds_per_event: u32,
    /// PRNG seed; the same seed and options give byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// End lines with \r\n instead of \n.
    #[arg(long)]
    crlf: bool,
    /// Write D and T as JSON integers instead of JSON strings.
    #[arg(long)]
    int_params: bool,
    /// Number of celebrities: users 1..=N, befriended by --celebrity-friends ordinary users
    /// each, with churn on them (they take no part in ordinary friendships).
    #[arg(long, default_value_t = 0)]
    celebrities: u32,
    /// Friends each celebrity is built up to in the batch, and stays near; at most half of
    /// the ordinary users.
    #[arg(long, default_value_t = 1000)]
    celebrity_friends: u32,
    /// Batch events that touch a celebrity, evenly spread [default: celebrities x
    /// celebrity-friends, the build alone]; those beyond the build are churn. The stream has
    /// celebrity events at the same rate, all churn.
    #[arg(long)]
    celebrity_events: Option<u64>,
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"))
}

fn probability(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not in 0..=1"))
    }
}

fn dirty_probability(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if (0.0..=0.99).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not in 0..=0.99"))
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a finite number >= 0"))
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG: xoshiro256** seeded through SplitMix64.

struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-32 for the sizes used here).
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, days since 1970-01-01; H. Hinnant's algorithms).

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats seconds since the epoch as `YYYY-MM-DD HH:MM:SS`, caching the date part.
struct Clock {
    day: i64,
    date: [u8; 10],
}

impl Clock {
    fn new() -> Self {
        let mut c = Clock {
            day: 0,
            date: [0; 10],
        };
        c.set_day(0);
        c
    }

    fn set_day(&mut self, day: i64) {
        let (y, m, d) = civil_from_days(day);
        let y = y.clamp(0, 9999) as u32;
        self.date = [
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'-',
            b'0' + (d / 10) as u8,
            b'0' + (d % 10) as u8,
        ];
        self.day = day;
    }

    #[inline]
    fn format(&mut self, t: i64) -> [u8; 19] {
        let day = t.div_euclid(86_400);
        if day != self.day {
            self.set_day(day);
        }
        let s = t.rem_euclid(86_400) as u32;
        let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
        let mut out = [0u8; 19];
        out[..10].copy_from_slice(&self.date);
        out[10..].copy_from_slice(&[
            b' ',
            b'0' + (h / 10) as u8,
            b'0' + (h % 10) as u8,
            b':',
            b'0' + (mi / 10) as u8,
            b'0' + (mi % 10) as u8,
            b':',
            b'0' + (se / 10) as u8,
            b'0' + (se % 10) as u8,
        ]);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-rolled formatting into a reusable line buffer.

#[inline]
fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Cents as `D.CC`.
#[inline]
fn push_cents(buf: &mut Vec<u8>, cents: u64) {
    push_u64(buf, cents / 100);
    let c = (cents % 100) as u8;
    buf.extend_from_slice(&[b'.', b'0' + c / 10, b'0' + c % 10]);
}

// ---------------------------------------------------------------------------------------------
// Friendship state: a list of edges (for uniform picks and swap_remove) indexed by a hash map
// from the pair key to the edge's position, plus a degree-weighted endpoint list for
// preferential attachment.

/// A cheap, well-mixing hasher for u64 pair keys.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ b as u64);
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        let mut z = x ^ self.0;
        z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        self.0 = z ^ (z >> 32);
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// Probability that an endpoint of a new friendship is drawn in proportion to current degree
/// rather than uniformly.
const ATTACH_PREFERENTIAL: f64 = 0.5;
/// Share of purchases while the batch is still building the graph.
const BUILD_PURCHASE_SHARE: f64 = 0.1;
/// Befriends per unfriend in the steady mix.
const BEFRIENDS_PER_UNFRIEND: u64 = 3;
/// Largest backwards jump of a disordered timestamp, in seconds.
const MAX_DISORDER_SECS: u64 = 300;
/// Median and log-spread of a typical purchase.
const TYPICAL_MEDIAN_DOLLARS: f64 = 45.0;
const TYPICAL_SIGMA: f64 = 0.55;
/// Lines are formatted straight into one reusable buffer, handed to the writer in chunks of
/// this many bytes (saves a copy per line).
const CHUNK: usize = 1 << 20;
/// The largest amount the spec accepts, in cents.
const MAX_CENTS: u64 = 100_000_000_000;

#[derive(Clone, Copy)]
enum Kind {
    Befriend,
    Unfriend,
}

impl Kind {
    fn name(self) -> &'static [u8] {
        match self {
            Kind::Befriend => b"befriend",
            Kind::Unfriend => b"unfriend",
        }
    }
}

#[derive(Default)]
struct FileStats {
    events: u64,
    dirty: u64,
    bytes: u64,
}

/// The celebrities' friendships: per celebrity, its friends and where each is in the list
/// (for uniform unfriends and swap_remove).
struct Celebrities {
    friends: Vec<Vec<u32>>,
    at: Vec<KeyMap>,
    /// Friends each is built up to.
    target: u32,
    /// Celebrity events per event, as a fraction `per / of` spread evenly (no draw).
    per: u64,
    of: u64,
    /// Events of the current file so far, to spread the celebrity events.
    seen: u64,
    /// The next celebrity the build befriends (round robin).
    next: usize,
    /// Celebrity events written so far: befriends, unfriends, purchases.
    written: [u64; 3],
}

struct Gen {
    rng: Rng,
    users: u32,
    /// Users 1..=this are celebrities (0: none).
    first_ordinary: u32,
    celebrities: Celebrities,
    target_edges: usize,
    edges: Vec<u64>,
    index: KeyMap,
    endpoints: Vec<u32>,
    built: bool,
    t: i64,
    /// Seconds the clock moves on after an event, half the time.
    step: i64,
    clock: Clock,
    /// Formatted lines not yet handed to the writer; the current line is at its end.
    line: Vec<u8>,
    eol: &'static [u8],
    purchase_share: f64,
    anomaly_rate: f64,
    dirty_rate: f64,
    disorder_rate: f64,
    typical_mu: f64,
}

#[inline]
fn pair_key(a: u32, b: u32) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    ((lo as u64) << 32) | hi as u64
}

impl Gen {
    fn new(args: &Args) -> Self {
        let users = args.users as u64;
        let max_pairs = users * (users - 1) / 2;
        // Never aim for more than half of all possible pairs, so new pairs stay easy to find.
        let wanted = (users as f64 * args.friends / 2.0).round() as u64;
        let target_edges = wanted.min(max_pairs / 2) as usize;
        let n = args.celebrities as usize;
        Gen {
            rng: Rng::new(args.seed),
            users: args.users,
            first_ordinary: args.celebrities + 1,
            celebrities: Celebrities {
                friends: vec![Vec::new(); n],
                at: (0..n).map(|_| KeyMap::default()).collect(),
                target: args.celebrity_friends,
                per: if n == 0 {
                    0
                } else {
                    args.celebrity_events
                        .unwrap_or(args.celebrities as u64 * args.celebrity_friends as u64)
                },
                of: args.batch_events.max(1),
                seen: 0,
                next: 0,
                written: [0; 3],
            },
            target_edges,
            edges: Vec::with_capacity(target_edges + target_edges / 4),
            index: KeyMap::with_capacity_and_hasher(
                target_edges + target_edges / 4,
                Default::default(),
            ),
            endpoints: Vec::with_capacity(2 * target_edges + target_edges / 2),
            built: target_edges == 0,
            t: days_from_civil(2017, 6, 13) * 86_400,
            clock: Clock::new(),
            line: Vec::with_capacity(CHUNK + 4096),
            eol: if args.crlf { b"\r\n" } else { b"\n" },
            purchase_share: args.purchase_share,
            anomaly_rate: args.anomaly_rate,
            dirty_rate: args.dirty_rate,
            disorder_rate: args.disorder_rate,
            step: i64::from(args.seconds_per_event),
            typical_mu: (TYPICAL_MEDIAN_DOLLARS * 100.0).ln(),
        }
    }

    #[inline]
    fn uniform_user(&mut self) -> u32 {
        1 + self.rng.below(self.users as u64) as u32
    }

    /// A user who is not a celebrity (any user when there are none).
    #[inline]
    fn ordinary_user(&mut self) -> u32 {
        let first = self.first_ordinary;
        first + self.rng.below((self.users - first + 1) as u64) as u32
    }

    #[inline]
    fn attach_endpoint(&mut self) -> u32 {
        if !self.endpoints.is_empty() && self.rng.chance(ATTACH_PREFERENTIAL) {
            self.endpoints[self.rng.below(self.endpoints.len() as u64) as usize]
        } else {
            self.ordinary_user()
        }
    }

    /// Whether the next event touches a celebrity: `per` in every `of` events, evenly spread.
    #[inline]
    fn celebrity_turn(&mut self) -> bool {
        let c = &mut self.celebrities;
        if c.per == 0 {
            return false;
        }
        let (before, after) = (c.seen * c.per / c.of, (c.seen + 1) * c.per / c.of);
        c.seen += 1;
        after > before
    }

    /// Appends one celebrity event: a befriend that builds a celebrity still short of its
    /// target, else churn on a random one (unfriend a random friend, befriend a new one, or
    /// one in ten a purchase).
    fn push_celebrity_event(&mut self, ts: &[u8]) {
        let n = self.celebrities.friends.len();
        let short = (0..n)
            .map(|k| (self.celebrities.next + k) % n)
            .find(|&c| self.celebrities.friends[c].len() < self.celebrities.target as usize);
        let (c, roll) = match short {
            Some(c) => {
                self.celebrities.next = (c + 1) % n;
                (c, 0)
            }
            None => (self.rng.below(n as u64) as usize, 1 + self.rng.below(20)),
        };
        let celebrity = c as u32 + 1;
        if roll == 1 || roll == 2 {
            let cents = self.purchase_cents();
            self.push_purchase_line(ts, celebrity, cents);
            self.celebrities.written[2] += 1;
        } else if roll > 11 && !self.celebrities.friends[c].is_empty() {
            let list = &mut self.celebrities.friends[c];
            let at = self.rng.below(list.len() as u64) as usize;
            let friend = list.swap_remove(at);
            let index = &mut self.celebrities.at[c];
            index.remove(&(friend as u64));
            if let Some(&moved) = list.get(at) {
                index.insert(moved as u64, at as u32);
            }
            self.celebrities.written[1] += 1;
            let (a, b) = self.oriented(celebrity, friend);
            self.push_friend_line(Kind::Unfriend, ts, a, b);
        } else {
            // A new friend: at most half of the ordinary users are friends already.
            let friend = loop {
                let f = self.ordinary_user();
                if !self.celebrities.at[c].contains_key(&(f as u64)) {
                    break f;
                }
            };
            let list = &mut self.celebrities.friends[c];
            self.celebrities.at[c].insert(friend as u64, list.len() as u32);
            list.push(friend);
            self.celebrities.written[0] += 1;
            let (a, b) = self.oriented(celebrity, friend);
            self.push_friend_line(Kind::Befriend, ts, a, b);
        }
    }

    /// The pair in random order.
    fn oriented(&mut self, a: u32, b: u32) -> (u32, u32) {
        if self.rng.chance(0.5) { (a, b) } else { (b, a) }
    }

    fn add_edge(&mut self, a: u32, b: u32) {
        let key = pair_key(a, b);
        self.index.insert(key, self.edges.len() as u32);
        self.edges.push(key);
        self.endpoints.push(a);
        self.endpoints.push(b);
    }

    /// A new friendship (a, b), recorded in the state; falls back to an existing one (a no-op
    /// befriend) only if no new pair turns up after many tries.
    fn new_friendship(&mut self) -> (u32, u32) {
        for attempt in 0..128 {
            let (a, b) = if attempt < 64 {
                (self.attach_endpoint(), self.attach_endpoint())
            } else {
                (self.ordinary_user(), self.ordinary_user())
            };
            if a != b && !self.index.contains_key(&pair_key(a, b)) {
                self.add_edge(a, b);
                return (a, b);
            }
        }
        let first = self.first_ordinary;
        self.existing_friendship()
            .unwrap_or((first, first + 1 + (self.users > first + 1) as u32))
    }

    /// An existing friendship in random orientation, or None when there is none.
    fn existing_friendship(&mut self) -> Option<(u32, u32)> {
        if self.edges.is_empty() {
            return None;
        }
        let key = self.edges[self.rng.below(self.edges.len() as u64) as usize];
        let (lo, hi) = ((key >> 32) as u32, key as u32);
        Some(if self.rng.chance(0.5) {
            (lo, hi)
        } else {
            (hi, lo)
        })
    }

    /// Removes a random existing friendship and returns it.
    fn remove_friendship(&mut self) -> Option<(u32, u32)> {
        if self.edges.is_empty() {
            return None;
        }
        let i = self.rng.below(self.edges.len() as u64) as usize;
        let key = self.edges.swap_remove(i);
        self.index.remove(&key);
        if let Some(&moved) = self.edges.get(i) {
            self.index.insert(moved, i as u32);
        }
        let (lo, hi) = ((key >> 32) as u32, key as u32);
        Some(if self.rng.chance(0.5) {
            (lo, hi)
        } else {
            (hi, lo)
        })
    }

    fn typical_cents(&mut self) -> u64 {
        let z = self.rng.normal();
        let c = (self.typical_mu + TYPICAL_SIGMA * z).exp().round();
        (c as u64).clamp(1, 100_000_000)
    }

    fn purchase_cents(&mut self) -> u64 {
        let base = self.typical_cents();
        if self.rng.chance(self.anomaly_rate) {
            let factor = 20.0 + 80.0 * self.rng.unit();
            ((base as f64 * factor).round() as u64).clamp(1, MAX_CENTS)
        } else {
            base
        }
    }

    /// The timestamp of the next event: the clock, or with `disorder_rate` a bit earlier.
    fn event_time(&mut self) -> [u8; 19] {
        let t = if self.disorder_rate > 0.0 && self.rng.chance(self.disorder_rate) {
            self.t - 1 - self.rng.below(MAX_DISORDER_SECS) as i64
        } else {
            self.t
        };
        self.clock.format(t)
    }

    fn push_purchase_line(&mut self, ts: &[u8], id: u32, cents: u64) {
        let l = &mut self.line;
        l.extend_from_slice(b"{\"event_type\":\"purchase\", \"timestamp\":\"");
        l.extend_from_slice(ts);
        l.extend_from_slice(b"\", \"id\": \"");
        push_u64(l, id as u64);
        l.extend_from_slice(b"\", \"amount\": \"");
        push_cents(l, cents);
        l.extend_from_slice(b"\"}");
    }

    fn push_friend_line(&mut self, kind: Kind, ts: &[u8], a: u32, b: u32) {
        let l = &mut self.line;
        l.extend_from_slice(b"{\"event_type\":\"");
        l.extend_from_slice(kind.name());
        l.extend_from_slice(b"\", \"timestamp\":\"");
        l.extend_from_slice(ts);
        l.extend_from_slice(b"\", \"id1\": \"");
        push_u64(l, a as u64);
        l.extend_from_slice(b"\", \"id2\": \"");
        push_u64(l, b as u64);
        l.extend_from_slice(b"\"}");
    }

    /// Appends one clean event (without line ending) to `self.line` and updates the state.
    fn push_event(&mut self, in_batch: bool) {
        let ts = self.event_time();
        if self.celebrity_turn() {
            self.push_celebrity_event(&ts);
            self.t += self.rng.below(2) as i64 * self.step;
            return;
        }
        let building = in_batch && !self.built;
        let share = if building {
            BUILD_PURCHASE_SHARE.min(self.purchase_share)
        } else {
            self.purchase_share
        };
        if self.rng.chance(share) {
            let id = self.uniform_user();
            let cents = self.purchase_cents();
            self.push_purchase_line(&ts, id, cents);
        } else if building {
            let (a, b) = self.new_friendship();
            self.push_friend_line(Kind::Befriend, &ts, a, b);
            if self.edges.len() >= self.target_edges {
                self.built = true;
            }
        } else if self.rng.below(BEFRIENDS_PER_UNFRIEND + 1) == 0
            && let Some((a, b)) = self.remove_friendship()
        {
            self.push_friend_line(Kind::Unfriend, &ts, a, b);
        } else {
            // Steady state: below the target density every befriend adds a friendship; at or
            // above it only one in BEFRIENDS_PER_UNFRIEND does (the others befriend existing
            // friends, which changes nothing), so the mean degree stays near --friends.
            let fresh =
                self.edges.len() < self.target_edges || self.rng.below(BEFRIENDS_PER_UNFRIEND) == 0;
            let (a, b) = if fresh {
                self.new_friendship()
            } else {
                match self.existing_friendship() {
                    Some(p) => p,
                    None => self.new_friendship(),
                }
            };
            self.push_friend_line(Kind::Befriend, &ts, a, b);
        }
        self.t += self.rng.below(2) as i64 * self.step;
    }

    /// Appends one dirty line (without line ending) to `self.line`.
    fn push_dirty(&mut self) {
        let ts = self.clock.format(self.t);
        let id = self.uniform_user();
        let id2 = self.uniform_user();
        let cents = self.typical_cents();
        match self.rng.below(6) {
            0 => self.push_malformed(&ts, id, id2, cents),
            1 => {
                // Unknown event_type.
                let kind = self.rng.pick(&[
                    "refund",
                    "Purchase",
                    "PURCHASE",
                    "",
                    "befriends",
                    "unfriended",
                    "follow",
                ]);
                let l = &mut self.line;
                l.extend_from_slice(b"{\"event_type\":\"");
                l.extend_from_slice(kind.as_bytes());
                l.extend_from_slice(b"\", \"timestamp\":\"");
                l.extend_from_slice(&ts);
                l.extend_from_slice(b"\", \"id\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\", \"amount\": \"");
                push_cents(l, cents);
                l.extend_from_slice(b"\"}");
            }
            2 => {
                // Invalid amount.
                let amount = self.rng.pick(&[
                    "\"12.345\"",
                    "\"-1\"",
                    "\"-12.50\"",
                    "\"1e3\"",
                    "\".5\"",
                    "\"+5\"",
                    "\"\"",
                    "\"12.\"",
                    "\"12,50\"",
                    "\"abc\"",
                    "16.830",
                    "1e2",
                    "-3",
                    "null",
                    "\"1000000000.01\"",
                    "\" 12.00\"",
                ]);
                let l = &mut self.line;
                l.extend_from_slice(b"{\"event_type\":\"purchase\", \"timestamp\":\"");
                l.extend_from_slice(&ts);
                l.extend_from_slice(b"\", \"id\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\", \"amount\": ");
                l.extend_from_slice(amount.as_bytes());
                l.push(b'}');
            }
            3 => {
                // Invalid timestamp.
                let bad = self.rng.pick(&[
                    "2017-02-30 10:00:00",
                    "2017-02-29 10:00:00",
                    "2017-04-31 08:15:00",
                    "2017-13-01 00:00:00",
                    "2017-00-10 00:00:00",
                    "2017-06-13 24:00:00",
                    "2017-06-13 12:60:00",
                    "2017-06-13 12:00:60",
                    "2017-6-13 12:00:00",
                    "2017-06-13T12:00:00",
                    "2017-06-13 12:00",
                    "2017-06-13",
                    "",
                    "yesterday",
                ]);
                if self.rng.chance(0.5) {
                    self.push_purchase_line(bad.as_bytes(), id, cents);
                } else {
                    self.push_friend_line(Kind::Befriend, bad.as_bytes(), id, id2);
                }
            }
            4 => self.push_missing_field(&ts, id, id2, cents),
            _ => {
                let blank = self.rng.pick(&["", "", " ", "\t", "  \t "]);
                self.line.extend_from_slice(blank.as_bytes());
            }
        }
    }

    fn push_malformed(&mut self, ts: &[u8], id: u32, id2: u32, cents: u64) {
        match self.rng.below(6) {
            0 => {
                // A valid line cut short (never at length 0, never complete).
                let start = self.line.len();
                self.push_purchase_line(ts, id, cents);
                let len = self.line.len() - start;
                let cut = start + 1 + self.rng.below(len as u64 - 1) as usize;
                self.line.truncate(cut);
            }
            1 => {
                // A duplicated key.
                let l = &mut self.line;
                l.extend_from_slice(b"{\"event_type\":\"purchase\", \"timestamp\":\"");
                l.extend_from_slice(ts);
                l.extend_from_slice(b"\", \"id\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\", \"id\": \"");
                push_u64(l, id2 as u64);
                l.extend_from_slice(b"\", \"amount\": \"");
                push_cents(l, cents);
                l.extend_from_slice(b"\"}");
            }
            2 => {
                // Trailing garbage after the object.
                self.push_friend_line(Kind::Befriend, ts, id, id2);
                self.line.extend_from_slice(b" x");
            }
            3 => {
                // Not a JSON object at all.
                let text = self.rng.pick(&[
                    "not json at all",
                    "null",
                    "42",
                    "[\"purchase\", \"2017-06-13 00:00:00\", \"1\", \"1.00\"]",
                    "{",
                    "}",
                    "{\"event_type\":\"purchase\",}",
                ]);
                self.line.extend_from_slice(text.as_bytes());
            }
            4 => {
                // Invalid UTF-8 inside the id string.
                let start = self.line.len();
                self.push_purchase_line(ts, id, cents);
                let pos = start
                    + self.line[start..]
                        .iter()
                        .position(|&c| c == b'd')
                        .unwrap_or(0);
                // `"id": "` starts a few bytes after the first 'd' in `"id"`; put 0xFF inside.
                let at = (pos + 6).min(self.line.len() - 1);
                self.line.insert(at, 0xFF);
            }
            _ => {
                // An unquoted key.
                let l = &mut self.line;
                l.extend_from_slice(b"{event_type:\"purchase\", \"timestamp\":\"");
                l.extend_from_slice(ts);
                l.extend_from_slice(b"\", \"id\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\", \"amount\": \"");
                push_cents(l, cents);
                l.extend_from_slice(b"\"}");
            }
        }
    }

    fn push_missing_field(&mut self, ts: &[u8], id: u32, id2: u32, cents: u64) {
        let l = &mut self.line;
        match self.rng.below(6) {
            0 => {
                l.extend_from_slice(b"{\"event_type\":\"purchase\", \"timestamp\":\"");
                l.extend_from_slice(ts);
                l.extend_from_slice(b"\", \"id\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\"}");
            }
            1 => {
                l.extend_from_slice(b"{\"event_type\":\"purchase\", \"timestamp\":\"");
                l.extend_from_slice(ts);
                l.extend_from_slice(b"\", \"amount\": \"");
                push_cents(l, cents);
                l.extend_from_slice(b"\"}");
            }
            2 => {
                l.extend_from_slice(b"{\"event_type\":\"purchase\", \"id\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\", \"amount\": \"");
                push_cents(l, cents);
                l.extend_from_slice(b"\"}");
            }
            3 => {
                l.extend_from_slice(b"{\"timestamp\":\"");
                l.extend_from_slice(ts);
                l.extend_from_slice(b"\", \"id\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\", \"amount\": \"");
                push_cents(l, cents);
                l.extend_from_slice(b"\"}");
            }
            4 => {
                l.extend_from_slice(b"{\"event_type\":\"befriend\", \"timestamp\":\"");
                l.extend_from_slice(ts);
                l.extend_from_slice(b"\", \"id1\": \"");
                push_u64(l, id as u64);
                l.extend_from_slice(b"\"}");
            }
            _ => {
                l.extend_from_slice(b"{\"event_type\":\"unfriend\", \"timestamp\":\"");
                l.extend_from_slice(ts);
                l.extend_from_slice(b"\", \"id2\": \"");
                push_u64(l, id2 as u64);
                l.extend_from_slice(b"\"}");
            }
        }
    }

    /// Ends the current line; hands the buffer to the writer once it holds `CHUNK` bytes.
    #[inline]
    fn end_line(&mut self, w: &mut impl Write, stats: &mut FileStats) -> io::Result<()> {
        self.line.extend_from_slice(self.eol);
        if self.line.len() >= CHUNK {
            self.drain(w, stats)?;
        }
        Ok(())
    }

    fn drain(&mut self, w: &mut impl Write, stats: &mut FileStats) -> io::Result<()> {
        w.write_all(&self.line)?;
        stats.bytes += self.line.len() as u64;
        self.line.clear();
        Ok(())
    }

    fn write_file(
        &mut self,
        path: &Path,
        params: Option<&[u8]>,
        events: u64,
        in_batch: bool,
    ) -> io::Result<FileStats> {
        let mut w = BufWriter::with_capacity(CHUNK, File::create(path)?);
        let mut stats = FileStats::default();
        if let Some(p) = params {
            self.line.extend_from_slice(p);
            self.end_line(&mut w, &mut stats)?;
        }
        for _ in 0..events {
            while self.dirty_rate > 0.0 && self.rng.chance(self.dirty_rate) {
                self.push_dirty();
                self.end_line(&mut w, &mut stats)?;
                stats.dirty += 1;
            }
            self.push_event(in_batch);
            self.end_line(&mut w, &mut stats)?;
            stats.events += 1;
        }
        self.drain(&mut w, &mut stats)?;
        w.flush()?;
        Ok(stats)
    }
}

fn params_line(args: &Args) -> Vec<u8> {
    let mut l = Vec::new();
    let q: &[u8] = if args.int_params { b"" } else { b"\"" };
    l.extend_from_slice(b"{\"D\":");
    l.extend_from_slice(q);
    push_u64(&mut l, args.degree);
    l.extend_from_slice(q);
    l.extend_from_slice(b", \"T\":");
    l.extend_from_slice(q);
    push_u64(&mut l, args.tracked);
    l.extend_from_slice(q);
    l.push(b'}');
    l
}

fn run(args: &Args) -> io::Result<()> {
    let start = Instant::now();
    std::fs::create_dir_all(&args.out)?;
    let mut g = Gen::new(args);
    let batch = g.write_file(
        &args.out.join("batch_log.json"),
        Some(&params_line(args)),
        args.batch_events,
        true,
    )?;
    // The stream's celebrity events come at the batch's rate.
    g.celebrities.seen = 0;
    let stream = g.write_file(
        &args.out.join("stream_log.json"),
        None,
        args.stream_events,
        false,
    )?;
    eprintln!(
        "gen-log: batch_log.json {} events + {} dirty lines, {} bytes; \
         stream_log.json {} events + {} dirty lines, {} bytes; {} friendships; {:.2} s",
        batch.events,
        batch.dirty,
        batch.bytes,
        stream.events,
        stream.dirty,
        stream.bytes,
        g.edges.len(),
        start.elapsed().as_secs_f64()
    );
    let c = &g.celebrities;
    if !c.friends.is_empty() {
        let degrees: Vec<String> = c.friends.iter().map(|f| f.len().to_string()).collect();
        eprintln!(
            "gen-log: {} celebrity events ({} befriends, {} unfriends, {} purchases); \
             celebrities' friends at the end: {}",
            c.written.iter().sum::<u64>(),
            c.written[0],
            c.written[1],
            c.written[2],
            degrees.join(", ")
        );
    }
    Ok(())
}

/// Refuses celebrity settings the generator cannot meet: more celebrity friends than half of
/// the ordinary users, celebrities without ordinary users, or more celebrity events than
/// batch events.
fn check(args: &Args) -> Result<(), String> {
    if args.celebrities == 0 {
        return Ok(());
    }
    let ordinary = u64::from(args.users).saturating_sub(u64::from(args.celebrities));
    if ordinary < 2 {
        return Err(format!(
            "--celebrities {} leaves fewer than 2 of the {} users ordinary",
            args.celebrities, args.users
        ));
    }
    if u64::from(args.celebrity_friends) > ordinary / 2 {
        return Err(format!(
            "--celebrity-friends {} is more than half of the {ordinary} ordinary users",
            args.celebrity_friends
        ));
    }
    let events = args
        .celebrity_events
        .unwrap_or(u64::from(args.celebrities) * u64::from(args.celebrity_friends));
    if events > args.batch_events {
        return Err(format!(
            "{events} celebrity events do not fit in --batch-events {}",
            args.batch_events
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(problem) = check(&args) {
        use clap::CommandFactory;
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, problem)
            .exit();
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-log: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days_in_month(y: i64, m: u32) -> u32 {
        match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            _ => 28,
        }
    }

    #[test]
    fn calendar_matches_naive_walk() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        let (mut y, mut m, mut d) = (1600i64, 1u32, 1u32);
        let mut day = days_from_civil(y, m, d);
        while y < 2500 {
            assert_eq!(civil_from_days(day), (y, m, d));
            assert_eq!(days_from_civil(y, m, d), day);
            day += 1;
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn clock_formats_rollovers() {
        let mut c = Clock::new();
        let t = days_from_civil(2016, 12, 31) * 86_400 + 86_399;
        assert_eq!(&c.format(t), b"2016-12-31 23:59:59");
        assert_eq!(&c.format(t + 1), b"2017-01-01 00:00:00");
        let t = days_from_civil(2020, 2, 28) * 86_400 + 86_399;
        assert_eq!(&c.format(t + 1), b"2020-02-29 00:00:00");
        assert_eq!(&c.format(t + 86_401), b"2020-03-01 00:00:00");
    }

    #[test]
    fn numbers_format() {
        let mut b = Vec::new();
        push_cents(&mut b, 1683);
        b.push(b' ');
        push_cents(&mut b, 5);
        b.push(b' ');
        push_u64(&mut b, 0);
        b.push(b' ');
        push_u64(&mut b, u64::MAX);
        assert_eq!(b, b"16.83 0.05 0 18446744073709551615");
    }
}
