//! How a replay runs: [`Config`], its defaults and the bounds it holds to. A leaf, like
//! `error`: every stage may read it, and it reads no stage.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Default number of stream events per window of parallel queries. Between two windows' checks
/// the pool's workers wait for the applier; after 2 048 events the wait is short, and the
/// workers sleep less often per window than after 8 192: the same work with less idle time,
/// 12-19% faster streams at D=1, 2 and 3 (docs/performance.md, "Designs measured and not kept").
pub const DEFAULT_WINDOW: usize = 2048;

/// The largest window (`--window`): 1 048 576 events, 512 times the default; a window holds
/// its purchases' lines and a `u32` index per changed friendship.
pub const MAX_WINDOW: usize = 1 << 20;

/// The longest line read, in bytes (64 MiB, without its `\n`): a longer line is skipped as
/// "line too long" and never held whole in memory (a reader keeps its first
/// `MAX_LINE + 1` bytes, to tell the parser, and drops the rest up to the next `\n`).
pub const MAX_LINE: usize = 64 << 20;

/// The largest parsing chunk (`--chunk-bytes`): 1 GiB, a thousand times the default.
pub const MAX_CHUNK_BYTES: usize = 1 << 30;

/// The largest limit on a line's length (`--max-line-bytes`): 1 GiB, 16 times the default.
pub const MAX_LINE_LIMIT: usize = 1 << 30;

/// Recent purchases of the whole log kept for scanning large networks by default (1.3 to 2.6
/// MB; see `state::recent::RecentPurchases`).
pub const RECENT_KEPT: usize = 1 << 16;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Overrides the parameter line's `D`.
    pub degree: Option<u32>,
    /// Overrides the parameter line's `T`.
    pub tracked: Option<u32>,
    /// Worker threads; 1 is the plain sequential path.
    pub threads: usize,
    /// Target size of a parsing chunk in bytes (see [`Config::bounded`]).
    pub chunk_bytes: usize,
    /// Stream events applied per window before the window's queries run in parallel (see
    /// [`Config::bounded`]).
    pub window: usize,
    /// Recent purchases kept for scanning large networks ([`RECENT_KEPT`] by default); tests
    /// use a few, so that scans reach the oldest kept and give way to ranking.
    pub recent: usize,
    /// Whether flagged purchases also get the buyer's friends and friends of friends (for the
    /// feed and recommendation sinks).
    pub social: bool,
    /// Set (by a signal handler) to interrupt reading logs: the replay fails with
    /// [`crate::error::Fatal::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
    /// The longest line read (see [`MAX_LINE`] and [`Config::bounded`]); longer ones are
    /// skipped as too long.
    pub max_line: usize,
    /// Called after a line over 1 MiB is parsed and the buffers it grew are dropped: the
    /// program's allocator may hand the freed pages back to the system now (the binary passes
    /// mimalloc's `mi_collect`). The library calls no allocator itself; the default does
    /// nothing.
    pub release_memory: fn(),
}

impl Config {
    /// This configuration within the bounds a replay holds to: a chunk of 1 to
    /// [`MAX_CHUNK_BYTES`] bytes, a line limit of 1 to [`MAX_LINE_LIMIT`] bytes, a window of 1
    /// to [`MAX_WINDOW`] events. The command line refuses values beyond them; a library caller's
    /// are brought within.
    pub fn bounded(&self) -> Config {
        Config {
            chunk_bytes: self.chunk_bytes.clamp(1, MAX_CHUNK_BYTES),
            max_line: self.max_line.clamp(1, MAX_LINE_LIMIT),
            window: self.window.clamp(1, MAX_WINDOW),
            ..self.clone()
        }
    }
}

/// The default [`Config::release_memory`]: nothing to release.
pub fn keep_memory() {}

impl Default for Config {
    fn default() -> Self {
        Config {
            degree: None,
            tracked: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk_bytes: 1 << 20,
            window: DEFAULT_WINDOW,
            recent: RECENT_KEPT,
            social: false,
            stop: None,
            max_line: MAX_LINE,
            release_memory: keep_memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library caller's tuning values beyond the command line's bounds are brought within
    /// them.
    #[test]
    fn tuning_values_are_brought_within_bounds() {
        let wild = Config {
            chunk_bytes: usize::MAX,
            max_line: usize::MAX,
            window: usize::MAX,
            ..Config::default()
        }
        .bounded();
        assert_eq!(
            (wild.chunk_bytes, wild.max_line, wild.window),
            (MAX_CHUNK_BYTES, MAX_LINE_LIMIT, MAX_WINDOW)
        );
        let zero = Config {
            chunk_bytes: 0,
            max_line: 0,
            window: 0,
            ..Config::default()
        }
        .bounded();
        assert_eq!((zero.chunk_bytes, zero.max_line, zero.window), (1, 1, 1));
    }
}
