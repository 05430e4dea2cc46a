//! The replay, a thin orchestrator: the batch log builds the state, then every stream event is
//! applied in order and every stream purchase is checked against its network's baseline just
//! before it joins the history. One entry per phase ([`Replay::batch`], [`Replay::stream`]),
//! each over a [`ChunkSource`]; the state can be taken out and a replay started from one.

use std::time::Instant;

use crate::check::single::SingleCheck;
use crate::check::window::{Checks, Handed, StreamWindow};
use crate::config::Config;
use crate::error::{Fatal, SkipReason};
use crate::ingest::chunks::{ChunkSource, Consumer, Numbered, Numbering, SkipReport};
use crate::ingest::input::{BlockEnd, LogFile};
use crate::ingest::parse::{IdHasher, Params};
use crate::output::progress::Progress;
use crate::output::report::{SkipLog, Summary};
use crate::output::sink::Sink;
use crate::state::apply::State;
use crate::state::snapshot;
use crate::state::users::UserId;

/// Replays the batch then the stream, handing every checked stream purchase to `sink`.
pub fn replay<S: Sink + ?Sized>(
    batch: &LogFile,
    stream: &LogFile,
    config: &Config,
    sink: &mut S,
    skips: &mut SkipLog,
) -> Result<Summary, Fatal> {
    let hidden = Progress::hidden();
    let mut replay = Replay::batch(ChunkSource::whole(batch), config, skips, &hidden)?;
    let mut checks = replay.single_check(sink);
    replay.stream(ChunkSource::whole(stream), &mut checks, skips, &hidden)?;
    Ok(replay.finish(skips))
}

impl SkipReport for SkipLog {
    fn skip(&mut self, file: &str, line: u64, reason: &SkipReason) -> Result<(), Fatal> {
        SkipLog::skip(self, file, line, reason)
    }
}

/// A replay in progress: the state, fed with events, and the machinery that feeds it.
pub struct Replay {
    config: Config,
    pool: rayon::ThreadPool,
    state: State,
    window: StreamWindow,
    summary: Summary,
    started: Instant,
    /// Scratch: the interned ids of a batch chunk's events.
    interned: Vec<[UserId; 2]>,
    /// The sequence number of line 1 of the stream being (or last) replayed; `None` before
    /// the first stream. Set by [`Replay::from_snapshot`], it numbers the next stream's lines
    /// on from where the saved stream stood.
    line_one: Option<u64>,
    /// The next stream continues the saved one's line numbers ([`Replay::from_snapshot`]).
    continues: bool,
}

impl Replay {
    /// The state after the events replayed so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Ends the replay and keeps its state, which [`Replay::from_state`] continues.
    pub fn into_state(self) -> State {
        self.state
    }

    /// Reads the batch log: the parameters (the command line's `D` and `T` override them), then
    /// the history.
    pub fn batch(
        source: ChunkSource<'_>,
        config: &Config,
        skips: &mut SkipLog,
        progress: &Progress,
    ) -> Result<Replay, Fatal> {
        let config = &config.bounded();
        let start = source.batch_start(config)?;
        let params = Params {
            degree: config.degree.unwrap_or(start.params.degree),
            tracked: config.tracked.unwrap_or(start.params.tracked),
        };
        let state = State::new(params, config.recent, IdHasher::random(), start.lines);
        let mut replay = Replay::new(state, config, start.started)?;
        replay.summary.batch_file = start.rest.name().to_string();
        let shown = match &start.rest {
            ChunkSource::Mapped { log, .. } => {
                progress.start("batch", log.body().len() as u64);
                Some(progress)
            }
            _ => None,
        };
        let numbering = Numbering {
            seq: start.lines,
            line_one: 0,
        };
        let Replay {
            config,
            pool,
            state,
            summary,
            interned,
            ..
        } = &mut replay;
        let hasher = state.users.hasher();
        let mut applier = BatchApplier {
            state,
            summary,
            interned,
            progress: shown,
        };
        let bytes = start
            .rest
            .run(numbering, config, pool, hasher, skips, &mut applier)?;
        replay.state.end_batch();
        progress.finish();
        replay.summary.batch_bytes = bytes;
        replay.summary.batch_elapsed = start.clock.wall();
        replay.summary.batch_cpu = start.clock.cpu();
        replay.summary.batch_system = start.clock.system();
        Ok(replay)
    }

    /// A replay that continues from `state` (its parameters and its next sequence number);
    /// `config`'s `D` and `T` are not used.
    pub fn from_state(state: State, config: &Config) -> Result<Replay, Fatal> {
        Replay::new(state, &config.bounded(), Instant::now())
    }

    /// A replay of `state` with `config` (within bounds), its thread pool started.
    fn new(state: State, config: &Config, started: Instant) -> Result<Replay, Fatal> {
        let threads = config.threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Fatal::Threads {
                what: match threads {
                    1 => "its worker thread".to_string(),
                    n => format!("{n} worker threads"),
                },
                error: e.to_string(),
            })?;
        let window = StreamWindow::new(config, pool.current_num_threads());
        Ok(Replay {
            config: config.clone(),
            pool,
            state,
            window,
            summary: Summary::default(),
            started,
            interned: Vec::new(),
            line_one: None,
            continues: false,
        })
    }

    /// Writes a snapshot of the state ([`crate::state::snapshot`]), with the sequence number
    /// of the current stream's line 1, between streams or from a sink when the input stalls
    /// (no check pending: else [`std::io::ErrorKind::InvalidInput`]).
    pub fn save(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let line_one = self.line_one.unwrap_or(self.state.next_seq);
        snapshot::save_state(&self.state, line_one, out)
    }

    /// A replay that goes on from a snapshot read by [`snapshot::restore`]: its state, with its
    /// `D`, `T` and recent purchases kept (`config`'s are not used), and the next stream's
    /// lines numbered on from the saved stream's.
    pub fn from_snapshot(saved: snapshot::Snapshot, config: &Config) -> Result<Replay, Fatal> {
        let (state, line_one) = saved.into_state();
        let mut replay = Replay::from_state(state, config)?;
        (replay.line_one, replay.continues) = (Some(line_one), true);
        Ok(replay)
    }

    /// Names, in the summary, the batch log whose state was restored from the checkpoint in
    /// `dir` instead of replayed.
    pub fn restored_from(&mut self, batch: &str, dir: &str) {
        self.summary.batch_file = batch.to_string();
        self.summary.restored_from = Some(dir.to_string());
    }

    /// The check with the replay's `D` and `T`, handing every checked purchase to `sink` (with
    /// the buyer's friends and friends of friends when the configuration asks for them).
    pub fn single_check<'s, S: Sink + ?Sized>(&self, sink: &'s mut S) -> SingleCheck<'s, S> {
        SingleCheck::new(self.state.params.degree, self.config.social, sink)
    }

    /// Replays a stream log: every event applied, every purchase checked by `checks` (see
    /// [`Self::single_check`]) against the state just before it. A live source's checks are
    /// decided, and handed on, whenever its input stalls. The checks' sink hears of the stream
    /// before its first purchase (`begin`) and after its last one (`finish`), and may end it
    /// early.
    pub fn stream(
        &mut self,
        source: ChunkSource<'_>,
        checks: &mut dyn Checks,
        skips: &mut dyn SkipReport,
        progress: &Progress,
    ) -> Result<(), Fatal> {
        self.stream_with(source, checks, skips, progress, None)
    }

    /// [`Self::stream`] of a live source whose drained points go to `checkpoints` (a live run
    /// with `--state`): whenever the input stalls, a checkpoint is due, or the stream stops,
    /// once every line read is decided and the checks' sink is flushed.
    pub fn stream_live(
        &mut self,
        source: ChunkSource<'_>,
        checks: &mut dyn Checks,
        skips: &mut SkipLog,
        checkpoints: &mut dyn Checkpoints,
    ) -> Result<(), Fatal> {
        let hidden = Progress::hidden();
        self.stream_with(source, checks, skips, &hidden, Some(checkpoints))
    }

    fn stream_with(
        &mut self,
        source: ChunkSource<'_>,
        checks: &mut dyn Checks,
        skips: &mut dyn SkipReport,
        progress: &Progress,
        checkpoints: Option<&mut dyn Checkpoints>,
    ) -> Result<(), Fatal> {
        let clock = crate::clock::PhaseClock::start();
        self.summary.stream_file = source.name().to_string();
        let shown = match &source {
            ChunkSource::Mapped { log, .. } => {
                progress.start("stream", log.body().len() as u64);
                Some(progress)
            }
            _ => None,
        };
        let line_one = match self.line_one {
            Some(line_one) if std::mem::take(&mut self.continues) => line_one,
            _ => self.state.next_seq,
        };
        self.line_one = Some(line_one);
        let numbering = Numbering {
            seq: self.state.next_seq,
            line_one,
        };
        if !checks.begin()? {
            return checks.finish();
        }
        let Replay {
            config,
            pool,
            state,
            window,
            summary,
            ..
        } = self;
        let hasher = state.users.hasher();
        let mut applier = StreamApplier {
            state,
            window,
            summary,
            pool,
            checks,
            progress: shown,
            checkpoints,
            line_one,
        };
        let bytes = source.run(numbering, config, pool, hasher, skips, &mut applier)?;
        self.summary.stream_bytes += bytes;
        if let Some(progress) = shown {
            progress.finish();
        }
        checks.finish()?;
        self.summary.add_stream_time(&clock);
        Ok(())
    }

    /// Ends the replay: the run's figures.
    pub fn finish(mut self, skips: &SkipLog) -> Summary {
        self.summary.skipped = skips.counts().collect();
        self.summary.users = self.state.users.len();
        self.summary.friendships = self.state.graph.edges();
        self.summary.elapsed = self.started.elapsed();
        self.summary
    }
}

/// Applies batch chunks to the state.
struct BatchApplier<'r> {
    state: &'r mut State,
    summary: &'r mut Summary,
    interned: &'r mut Vec<[UserId; 2]>,
    /// The progress bar, for a mapped log.
    progress: Option<&'r Progress>,
}

impl Consumer for BatchApplier<'_> {
    fn chunk(&mut self, chunk: &Numbered<'_>) -> Result<bool, Fatal> {
        self.state.apply_batch(chunk, self.interned)?;
        self.summary.count_batch(chunk.chunk);
        if let Some(progress) = self.progress {
            progress.set((chunk.chunk.offset + chunk.chunk.len) as u64);
        }
        Ok(true)
    }
}

/// Applies stream chunks to the state through the window, whose checks go to `checks`.
struct StreamApplier<'r, 'c, 'k> {
    state: &'r mut State,
    window: &'r mut StreamWindow,
    summary: &'r mut Summary,
    pool: &'r rayon::ThreadPool,
    checks: &'c mut dyn Checks,
    /// The progress bar, for a mapped log.
    progress: Option<&'r Progress>,
    /// Where a live run's drained points go.
    checkpoints: Option<&'k mut dyn Checkpoints>,
    /// The sequence number of the stream's line 1.
    line_one: u64,
}

/// What a live run does at its drained points (every line read decided, every output
/// flushed): saves checkpoints ([`Replay::stream_live`]).
pub trait Checkpoints {
    /// Whether a checkpoint is due once the block ending at `at` is decided: the input keeps
    /// coming, but the stream is drained there.
    fn due(&self, at: BlockEnd) -> bool;

    /// A drained point: `state` holds every line of the stream up to `at` (the stream's line
    /// 1 has sequence number `line_one`); `stopping`: the stream stops normally.
    fn drained(
        &mut self,
        state: &State,
        line_one: u64,
        at: BlockEnd,
        stopping: bool,
    ) -> Result<(), Fatal>;
}

impl StreamApplier<'_, '_, '_> {
    /// Runs the checks of the events applied so far and hands them on.
    fn run_window(&mut self) -> Result<Handed, Fatal> {
        let (state, pool) = (&mut *self.state, self.pool);
        let handed = self
            .window
            .run(state, pool, self.checks, &self.summary.stream_file)?;
        self.summary.flagged += handed.flagged;
        Ok(handed)
    }
}

impl Consumer for StreamApplier<'_, '_, '_> {
    fn chunk(&mut self, chunk: &Numbered<'_>) -> Result<bool, Fatal> {
        let handed = self
            .window
            .apply_chunk(self.state, chunk, self.pool, self.checks)?;
        self.summary.flagged += handed.flagged;
        self.summary.count_stream(chunk.chunk);
        if let Some(progress) = self.progress {
            progress.set((chunk.chunk.offset + chunk.chunk.len) as u64);
        }
        Ok(handed.go_on)
    }

    fn stalled(&mut self, at: BlockEnd, stopping: bool) -> Result<(), Fatal> {
        self.run_window()?;
        self.checks.flush()?;
        match &mut self.checkpoints {
            Some(checkpoints) => checkpoints.drained(self.state, self.line_one, at, stopping),
            None => Ok(()),
        }
    }

    fn due(&self, at: BlockEnd) -> bool {
        self.checkpoints.as_ref().is_some_and(|c| c.due(at))
    }

    fn end(&mut self) -> Result<(), Fatal> {
        self.run_window().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::input::LogReader;
    use crate::output::sink::{Checked, flagged_line};

    /// A log read as it comes that hands out `lines`, then panics.
    fn panicking_reader(name: &str, lines: &'static [u8]) -> LogReader {
        struct Panics(&'static [u8]);
        impl std::io::Read for Panics {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    panic!("the reader broke");
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        LogReader {
            name: name.to_string(),
            reader: Box::new(Panics(lines)),
        }
    }

    const BATCH: &[u8] = b"{\"D\":\"1\", \"T\":\"2\"}\n";
    const STREAM: &[u8] = b"{\"event_type\":\"befriend\", \"timestamp\":\"2017-06-13 11:33:01\", \"id1\": \"1\", \"id2\": \"2\"}\n";

    fn assert_reader_failed(result: Result<(), Fatal>, name: &str) {
        match result {
            Err(error @ Fatal::ReaderFailed { .. }) => assert_eq!(
                error.to_string(),
                format!("{name}: cannot read: the thread reading it failed (the reader broke)")
            ),
            Err(other) => panic!("another error: {other}"),
            Ok(()) => panic!("a reader that panicked ended the input as a success"),
        }
    }

    #[test]
    fn a_reader_thread_that_panics_is_a_fatal_error_naming_the_file() {
        let config = Config {
            threads: 1,
            ..Config::default()
        };
        let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
        let progress = Progress::hidden();
        let batch = Replay::batch(
            ChunkSource::Read(panicking_reader("batch.fifo", BATCH)),
            &config,
            &mut skips,
            &progress,
        );
        assert_reader_failed(batch.map(drop), "batch.fifo");
        let batch = LogFile::from_bytes("batch", BATCH.to_vec());
        let mapped = || ChunkSource::whole(&batch);
        let mut sink: Vec<Box<crate::output::sink::OutputSink>> = Vec::new();
        let mut replay = Replay::batch(mapped(), &config, &mut skips, &progress).unwrap();
        let mut checks = replay.single_check(&mut sink);
        let read = replay.stream(
            ChunkSource::Read(panicking_reader("stream.fifo", STREAM)),
            &mut checks,
            &mut skips,
            &progress,
        );
        assert_reader_failed(read, "stream.fifo");
        // Live: the stop channel stays open; the reader's end is the only way out.
        let (_stop, stopped) = crossbeam_channel::bounded(1);
        let mut replay = Replay::batch(mapped(), &config, &mut skips, &progress).unwrap();
        let mut checks = replay.single_check(&mut sink);
        let live = replay.stream(
            ChunkSource::Live {
                log: panicking_reader("-", STREAM),
                stop: &stopped,
            },
            &mut checks,
            &mut skips,
            &progress,
        );
        assert_reader_failed(live, "-");
    }

    /// A log naming one distinct user more than a run holds stops the run with an error naming
    /// the file and the line, in the batch and in the stream, at any thread count and chunk size.
    /// (The limit is lowered to 3 here; the real one is `MAX_USERS`, 4 294 967 294.)
    #[test]
    fn one_user_too_many_is_a_fatal_error_naming_the_file_and_line() {
        use crate::output::report::SkipLog;
        use crate::state::users::TEST_LIMIT;
        let line = |kind: &str, ids: &str| {
            format!(r#"{{"event_type":"{kind}", "timestamp":"2017-06-13 11:33:01", {ids}}}"#)
        };
        let befriend =
            |a: &str, b: &str| line("befriend", &format!(r#""id1": "{a}", "id2": "{b}""#));
        let purchase = |a: &str| line("purchase", &format!(r#""id": "{a}", "amount": "1.00""#));
        let params = r#"{"D":"1", "T":"2"}"#;
        // Users 1, x and 2 fit; "y" (batch line 6, stream line 3) is one too many.
        let fits = [
            params.to_string(),
            String::new(),
            befriend("1", "x"),
            purchase("2"),
        ];
        let batch_over = [&fits[..], &[purchase("1"), befriend("x", "y")]]
            .concat()
            .join("\n");
        let batch_fits = fits.join("\n");
        let stream = [
            purchase("2"),
            befriend("1", "2"),
            purchase("y"),
            purchase("1"),
        ]
        .join("\n");
        for threads in [1, 2] {
            for chunk_bytes in [1, 1 << 20] {
                let config = Config {
                    threads,
                    chunk_bytes,
                    window: 2,
                    ..Config::default()
                };
                let run = |batch: &str, stream: &str| {
                    let batch = LogFile::from_bytes("batch_log.json", batch.as_bytes().to_vec());
                    let stream = LogFile::from_bytes("stream_log.json", stream.as_bytes().to_vec());
                    let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
                    let mut sink = crate::output::sink::FlaggedLines::new(Vec::new());
                    TEST_LIMIT.set(Some(3));
                    let result = replay(&batch, &stream, &config, &mut sink, &mut skips);
                    TEST_LIMIT.set(None);
                    result.map(|_| ()).map_err(|e| e.to_string())
                };
                let beyond =
                    "the logs name more than 3 distinct users, beyond what a run can index";
                assert_eq!(
                    run(&batch_over, ""),
                    Err(format!("batch_log.json:6: {beyond}")),
                    "threads {threads}, chunks of {chunk_bytes} bytes"
                );
                assert_eq!(
                    run(&batch_fits, &stream),
                    Err(format!("stream_log.json:3: {beyond}")),
                    "threads {threads}, chunks of {chunk_bytes} bytes"
                );
                assert_eq!(run(&batch_fits, &stream.replace("\"y\"", "\"x\"")), Ok(()));
            }
        }
    }

    /// A library caller's tuning values beyond the command line's bounds are brought within
    /// them (`config::tests::tuning_values_are_brought_within_bounds`): the largest chunk, line
    /// limit and window work (a chunk target of `usize::MAX` overflowed the chunk cutter).
    #[test]
    fn out_of_bounds_tuning_values_are_brought_within_bounds() {
        use crate::output::report::SkipLog;
        let wild = Config {
            chunk_bytes: usize::MAX,
            max_line: usize::MAX,
            window: usize::MAX,
            ..Config::default()
        };
        let batch = concat!(
            r#"{"D":"1", "T":"2"}"#,
            "\n",
            r#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2"}"#,
            "\n",
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "2", "amount": "10.00"}"#,
            "\n",
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "2", "amount": "12.00"}"#,
        );
        let stream = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "1", "amount": "100.00"}"#;
        for threads in [1, 2] {
            let config = Config {
                threads,
                ..wild.clone()
            };
            let batch = LogFile::from_bytes("batch_log.json", batch.as_bytes().to_vec());
            let stream = LogFile::from_bytes("stream_log.json", stream.as_bytes().to_vec());
            let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
            let mut sink = crate::output::sink::FlaggedLines::new(Vec::new());
            let summary = replay(&batch, &stream, &config, &mut sink, &mut skips).expect("a run");
            assert_eq!(summary.flagged, 1, "threads {threads}");
        }
    }

    /// A replay continues from a state taken out of another: the batch replayed, its state
    /// taken out and put into a new replay, then the stream, flags what one replay of both
    /// flags, with the same stream line numbers, at one and two threads.
    #[test]
    fn a_replay_started_from_a_state_continues_it() {
        let batch = concat!(
            "{\"D\":\"1\", \"T\":\"2\"}\n",
            r#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2"}"#,
            "\n",
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "2", "amount": "10.00"}"#,
            "\n",
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "2", "amount": "12.00"}"#,
            "\n",
        );
        let stream = concat!(
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "1", "amount": "100.00"}"#,
            "\nnot json\n",
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "200.00"}"#,
            "\n",
        );
        let batch = LogFile::from_bytes("batch_log.json", batch.as_bytes().to_vec());
        let stream = LogFile::from_bytes("stream_log.json", stream.as_bytes().to_vec());
        /// The line numbers of the checked purchases, and the flagged lines.
        #[derive(Default)]
        struct Record {
            line_numbers: Vec<u64>,
            flagged: Vec<u8>,
        }
        impl Sink for Record {
            type Error = std::io::Error;

            fn checked(&mut self, purchase: &Checked<'_>) -> std::io::Result<bool> {
                self.line_numbers.push(purchase.line_no);
                if purchase.flagged {
                    flagged_line(&mut self.flagged, purchase.line, &purchase.baseline);
                }
                Ok(true)
            }
        }
        for threads in [1, 2] {
            let config = Config {
                threads,
                window: 1,
                ..Config::default()
            };
            let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
            let mut whole = Record::default();
            replay(&batch, &stream, &config, &mut whole, &mut skips).expect("a run");
            let hidden = Progress::hidden();
            let mapped = |log| ChunkSource::Mapped { log, from: 0 };
            let state = Replay::batch(mapped(&batch), &config, &mut skips, &hidden)
                .expect("the batch")
                .into_state();
            assert_eq!(state.next_seq, 4);
            let mut continued = Replay::from_state(state, &config).expect("a replay");
            let mut record = Record::default();
            let mut checks = continued.single_check(&mut record);
            continued
                .stream(mapped(&stream), &mut checks, &mut skips, &hidden)
                .expect("the stream");
            assert_eq!(whole.line_numbers, [1, 3], "threads {threads}");
            assert!(!whole.flagged.is_empty());
            assert_eq!(record.line_numbers, whole.line_numbers, "threads {threads}");
            assert_eq!(record.flagged, whole.flagged, "threads {threads}");
        }
    }

    /// A sink hears `begin` once before the stream's first purchase and `finish` once after
    /// its last; `false` from `checked` ends the stream after that purchase (no later one is
    /// handed over), `false` from `begin` before any; whether the log is mapped or read as it
    /// comes, at one and two threads.
    #[test]
    fn a_sink_hears_begin_and_finish_and_may_end_the_stream() {
        /// Records what it hears; says stop at line `stop_at` (0: at `begin`).
        struct Stopping {
            heard: Vec<String>,
            stop_at: u64,
        }
        impl Sink for Stopping {
            type Error = std::io::Error;

            fn begin(&mut self) -> std::io::Result<bool> {
                self.heard.push("begin".into());
                Ok(self.stop_at != 0)
            }

            fn checked(&mut self, purchase: &Checked<'_>) -> std::io::Result<bool> {
                self.heard.push(purchase.line_no.to_string());
                Ok(purchase.line_no != self.stop_at)
            }

            fn finish(&mut self) -> std::io::Result<()> {
                self.heard.push("finish".into());
                Ok(())
            }
        }
        let batch = LogFile::from_bytes("batch_log.json", BATCH.to_vec());
        let purchase = |id: u32| {
            format!(
                r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "{id}", "amount": "1.00"}}"#
            )
        };
        let stream: String = (1..=6).map(|id| purchase(id) + "\n").collect();
        for threads in [1, 2] {
            for read in [false, true] {
                for (stop_at, heard) in [
                    (2, &["begin", "1", "2", "finish"][..]),
                    (0, &["begin", "finish"][..]),
                    (9, &["begin", "1", "2", "3", "4", "5", "6", "finish"][..]),
                ] {
                    let config = Config {
                        threads,
                        window: 1,
                        chunk_bytes: 1,
                        ..Config::default()
                    };
                    let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
                    let hidden = Progress::hidden();
                    let mapped = ChunkSource::whole(&batch);
                    let mut replay = Replay::batch(mapped, &config, &mut skips, &hidden).unwrap();
                    let stream_log =
                        LogFile::from_bytes("stream_log.json", stream.clone().into_bytes());
                    let source = if read {
                        ChunkSource::Read(LogReader {
                            name: "stream.fifo".into(),
                            reader: Box::new(std::io::Cursor::new(stream.clone().into_bytes())),
                        })
                    } else {
                        ChunkSource::whole(&stream_log)
                    };
                    let mut sink = Stopping {
                        heard: Vec::new(),
                        stop_at,
                    };
                    let mut checks = replay.single_check(&mut sink);
                    replay
                        .stream(source, &mut checks, &mut skips, &hidden)
                        .expect("the stream");
                    assert_eq!(
                        sink.heard, heard,
                        "threads {threads}, read {read}, stop at {stop_at}"
                    );
                }
            }
        }
    }
}
