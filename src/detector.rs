//! The library's front door: a [`Detector`] holds the state that events change and decides
//! each stream purchase, one line at a time ([`Detector::apply`]) or a whole stream log at
//! once ([`Detector::replay_stream`]). Both go through the same engine as the command: lines
//! parsed into events, applied in order, each purchase checked against its network just
//! before it joins the history.

use std::io::{Read, Write};
use std::path::Path;

use crate::config::Config;
use crate::error::{Fatal, SkipReason};
use crate::ingest::chunks::{ChunkSource, SkipReport};
use crate::ingest::event::Action;
use crate::ingest::input::{BatchSource, StreamSource};
use crate::ingest::parse::{IdHasher, LineParser, MAX_TRACKED, Params, ParsedChunk};
use crate::output::progress::Progress;
use crate::output::report::SkipLog;
use crate::output::sink::{Checked, Sink};
use crate::query::baseline::Baseline;
use crate::replay::Replay;
use crate::state::apply::State;
use crate::state::snapshot;

/// The detector: the users, their friendships and their purchase histories, and the rule that
/// flags a purchase far above what the buyer's network spent lately.
///
/// Build one from a batch log (its parameter line gives `D` and `T`), or empty with given
/// parameters; then hand it stream lines.
///
/// ```
/// use anomaly_detect::{Applied, Detector, Params};
///
/// let mut detector = Detector::new(Params { degree: 1, tracked: 3 })?;
/// let lines = [
///     r#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2"}"#,
///     r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "16.83"}"#,
///     r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "59.28"}"#,
///     r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "11.20"}"#,
///     r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "2", "amount": "1601.83"}"#,
/// ];
/// let mut flagged = Vec::new();
/// for line in lines {
///     if let Applied::Purchase(decision) = detector.apply(line.as_bytes())? {
///         flagged.extend_from_slice(decision.flagged_line().unwrap_or_default());
///     }
/// }
/// assert!(String::from_utf8(flagged)?.ends_with(r#""amount": "1601.83", "mean": "29.10", "sd": "21.46"}
/// "#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Detector {
    replay: Replay,
    skips: SkipLog,
    parser: LineParser,
    chunk: ParsedChunk,
}

/// Chooses how a [`Detector`] runs: its worker threads, whether flagged purchases carry the
/// buyer's friends and suggestions, where warnings about skipped lines go.
///
/// ```
/// use anomaly_detect::{Detector, Params};
///
/// let detector = Detector::builder()
///     .threads(2)
///     .social(true)
///     .build(Params { degree: 2, tracked: 50 })?;
/// assert_eq!(detector.params(), Params { degree: 2, tracked: 50 });
/// # Ok::<(), anomaly_detect::Fatal>(())
/// ```
pub struct Builder {
    config: Config,
    warnings: Box<dyn Write + Send>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config {
                threads: 1,
                ..Config::default()
            },
            warnings: Box::new(std::io::sink()),
        }
    }
}

impl Builder {
    /// The worker threads that parse logs and check purchases (1 by default, at most
    /// [`Builder::MAX_THREADS`]); decisions are the same at every count. They speed up
    /// [`Builder::from_batch`] and [`Detector::replay_stream`]; [`Detector::apply`] decides one
    /// line at a time and is fastest with 1.
    ///
    /// ```
    /// let builder = anomaly_detect::Detector::builder().threads(4);
    /// # let _ = builder;
    /// ```
    pub fn threads(mut self, threads: usize) -> Builder {
        self.config.threads = threads.clamp(1, Builder::MAX_THREADS);
        self
    }

    /// The most worker threads a detector starts (as the command's `--threads`).
    pub const MAX_THREADS: usize = 1024;

    /// Whether each flagged purchase carries the buyer's friends and friends of friends
    /// ([`Checked::friends`], [`Checked::suggested`], [`Decision::friends`]); off by default.
    pub fn social(mut self, social: bool) -> Builder {
        self.config.social = social;
        self
    }

    /// Where the warnings about skipped lines of the logs a detector reads go, as the command
    /// writes them to standard error (`batch_log.json:7: skipped: ...`); nowhere by default.
    pub fn warnings(mut self, out: impl Write + Send + 'static) -> Builder {
        self.warnings = Box::new(out);
        self
    }

    /// An empty detector with these parameters: no user, no friendship, no purchase.
    /// Parameters out of range (`degree` 0, `tracked` outside `2..=10000000`, as a batch
    /// log's parameter line may not hold them either) are [`Fatal::Parameters`].
    ///
    /// ```
    /// use anomaly_detect::{Detector, Fatal, Params};
    ///
    /// let wrong = Detector::builder().build(Params { degree: 2, tracked: 1 });
    /// assert!(matches!(wrong, Err(Fatal::Parameters { .. })));
    /// ```
    pub fn build(self, params: Params) -> Result<Detector, Fatal> {
        let problem = if params.degree == 0 {
            Some("D must be at least 1".to_string())
        } else if !(2..=MAX_TRACKED).contains(&u64::from(params.tracked)) {
            Some(format!("T must be between 2 and {MAX_TRACKED}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Fatal::Parameters {
                path: "Params".into(),
                problem,
            });
        }
        let config = self.config.bounded();
        // Numbered as after a parameter line: sequence number 0 is never a purchase's.
        let mut state = State::new(params, config.recent, IdHasher::random(), 1);
        state.end_batch();
        Detector::of(Replay::from_state(state, &config)?, &config, self.warnings)
    }

    /// A detector with the state that [`Detector::save`] wrote (see [`Detector::restore`]).
    pub fn restore(self, mut input: impl Read) -> Result<Detector, Fatal> {
        let config = self.config.bounded();
        let saved = snapshot::restore(&mut input)?;
        Detector::of(
            Replay::from_snapshot(saved, &config)?,
            &config,
            self.warnings,
        )
    }

    /// A detector after the batch log at `path` (a file or a pipe): `D` and `T` from its
    /// parameter line, then its events as the history. Its skipped lines go to the
    /// [`warnings`](Builder::warnings).
    pub fn from_batch(self, path: impl AsRef<Path>) -> Result<Detector, Fatal> {
        let config = self.config.bounded();
        let mut skips = SkipLog::new(self.warnings, false);
        let batch = BatchSource::open(path.as_ref())?;
        let file;
        let source = match batch {
            BatchSource::File(log) => {
                file = log;
                ChunkSource::whole(&file)
            }
            BatchSource::Read(log) => ChunkSource::Read(log),
        };
        let replay = Replay::batch(source, &config, &mut skips, &Progress::hidden())?;
        let hasher = replay.state().users.hasher();
        Ok(Detector {
            replay,
            skips,
            parser: line_parser(&config, hasher),
            chunk: ParsedChunk::default(),
        })
    }
}

fn line_parser(config: &Config, hasher: IdHasher) -> LineParser {
    crate::ingest::chunks::line_parser(config, hasher)
}

impl Detector {
    /// A [`Builder`] with the defaults: one thread, no friends lists, warnings dropped.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// An empty detector with these parameters and the [`Builder`]'s defaults.
    ///
    /// ```
    /// use anomaly_detect::{Detector, Params};
    ///
    /// let detector = Detector::new(Params { degree: 1, tracked: 2 })?;
    /// assert_eq!(detector.params().tracked, 2);
    /// # Ok::<(), anomaly_detect::Fatal>(())
    /// ```
    pub fn new(params: Params) -> Result<Detector, Fatal> {
        Detector::builder().build(params)
    }

    /// A detector after the batch log at `path`, with the [`Builder`]'s defaults.
    ///
    /// ```no_run
    /// let detector = anomaly_detect::Detector::from_batch("log_input/batch_log.json")?;
    /// assert!(detector.params().degree >= 1);
    /// # Ok::<(), anomaly_detect::Fatal>(())
    /// ```
    pub fn from_batch(path: impl AsRef<Path>) -> Result<Detector, Fatal> {
        Detector::builder().from_batch(path)
    }

    fn of(
        replay: Replay,
        config: &Config,
        warnings: Box<dyn Write + Send>,
    ) -> Result<Detector, Fatal> {
        let hasher = replay.state().users.hasher();
        Ok(Detector {
            replay,
            skips: SkipLog::new(warnings, false),
            parser: line_parser(config, hasher),
            chunk: ParsedChunk::default(),
        })
    }

    /// The network's degree `D` and the baseline's size `T`.
    pub fn params(&self) -> Params {
        self.replay.state().params
    }

    /// Applies one line of a stream log (with or without its `\n`; a byte-order mark is part
    /// of the line, as anywhere but at a log's start): a purchase is checked
    /// against the buyer's network and then joins the history; a befriend or unfriend changes
    /// the network. A line that is not an event changes nothing and says why, with the same
    /// reasons as the command's warnings. Errors are those that stop the command: more users
    /// than ids ([`Fatal::TooManyUsers`]), more lines than sequence numbers.
    ///
    /// ```
    /// use anomaly_detect::{Applied, Detector, Params, SkipReason};
    ///
    /// let mut detector = Detector::new(Params { degree: 1, tracked: 2 })?;
    /// let line = br#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "1.5x"}"#;
    /// match detector.apply(line)? {
    ///     Applied::Skipped(reason) => assert!(matches!(reason, SkipReason::InvalidAmount(_))),
    ///     _ => unreachable!(),
    /// }
    /// # Ok::<(), anomaly_detect::Fatal>(())
    /// ```
    pub fn apply(&mut self, line: &[u8]) -> Result<Applied, Fatal> {
        let mut body = line;
        while let Some(rest) = body.strip_suffix(b"\n") {
            body = rest;
        }
        if memchr::memchr(b'\n', body).is_some() {
            return Ok(Applied::Skipped(SkipReason::not_json(body)));
        }
        let mut sink = Capture(None);
        let mut skipped = LastSkip(None);
        let mut checks = self.replay.single_check(&mut sink);
        let source = ChunkSource::Text {
            name: "line",
            text: body,
            parser: &mut self.parser,
            chunk: &mut self.chunk,
        };
        self.replay
            .stream(source, &mut checks, &mut skipped, &Progress::hidden())?;
        if let Some(reason) = skipped.0 {
            return Ok(Applied::Skipped(reason));
        }
        Ok(match (sink.0, self.chunk.events.first()) {
            (Some(decision), _) => Applied::Purchase(decision),
            (None, Some(event)) if !matches!(event.action, Action::Purchase { .. }) => {
                Applied::Friendship
            }
            _ => Applied::Blank,
        })
    }

    /// Replays the stream log at `path` (a file or a pipe) and hands every checked purchase to
    /// `sink`, in stream order, with its line and line number; this is what the command does
    /// with STREAM, in parallel with the detector's threads. Skipped lines go to the
    /// [`warnings`](Builder::warnings).
    ///
    /// When the sink ends the stream (`Ok(false)`) or fails, no later line is read, but the
    /// events read with that purchase (up to a window of them, with more than one thread) are
    /// applied: the detector is then past the purchase the sink stopped at. To resume a source
    /// at an exact line, hand it lines with [`Detector::apply`].
    ///
    /// ```no_run
    /// use anomaly_detect::{Checked, Detector, Sink};
    ///
    /// struct Print;
    /// impl Sink for Print {
    ///     type Error = std::io::Error;
    ///     fn checked(&mut self, purchase: &Checked<'_>) -> std::io::Result<bool> {
    ///         let mut line = Vec::new();
    ///         purchase.write_flagged_line(&mut line);
    ///         std::io::Write::write_all(&mut std::io::stdout(), &line)?;
    ///         Ok(true)
    ///     }
    /// }
    ///
    /// let mut detector = Detector::from_batch("log_input/batch_log.json")?;
    /// detector.replay_stream("log_input/stream_log.json", &mut Print)?;
    /// # Ok::<(), anomaly_detect::Fatal>(())
    /// ```
    pub fn replay_stream<S: Sink + ?Sized>(
        &mut self,
        path: impl AsRef<Path>,
        sink: &mut S,
    ) -> Result<(), Fatal> {
        let stream = StreamSource::open(path.as_ref(), false)?;
        let file;
        let source = match stream {
            StreamSource::File(log) => {
                file = log;
                ChunkSource::whole(&file)
            }
            StreamSource::Read(log) | StreamSource::Live(log) => ChunkSource::Read(log),
        };
        let mut checks = self.replay.single_check(sink);
        self.replay
            .stream(source, &mut checks, &mut self.skips, &Progress::hidden())
    }

    /// Writes the detector's state (users, friendships, the purchases that can still count,
    /// `D` and `T`) to `out`, in a compact versioned format with a checksum;
    /// [`Detector::restore`] reads it back and goes on deciding exactly as this detector would.
    ///
    /// ```
    /// use anomaly_detect::{Detector, Params};
    ///
    /// let mut detector = Detector::new(Params { degree: 2, tracked: 10 })?;
    /// detector.apply(br#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2"}"#)?;
    /// let mut saved = Vec::new();
    /// detector.save(&mut saved)?;
    /// let restored = Detector::restore(&saved[..])?;
    /// assert_eq!(restored.params(), detector.params());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, mut out: impl Write) -> std::io::Result<()> {
        self.replay.save(&mut out)
    }

    /// A detector with the state that [`Detector::save`] wrote, and the [`Builder`]'s
    /// defaults. A state that cannot be read back (another format version, truncated, changed
    /// bytes) is [`Fatal::Snapshot`], never a panic.
    pub fn restore(input: impl Read) -> Result<Detector, Fatal> {
        Detector::builder().restore(input)
    }

    /// How many lines of the logs this detector replayed were skipped (lines given to
    /// [`Detector::apply`] are not counted: it returns their reason).
    pub fn skipped(&self) -> u64 {
        self.skips.counts().map(|(_, count)| count).sum()
    }
}

/// What [`Detector::apply`] did with a line.
///
/// ```
/// use anomaly_detect::{Applied, Detector, Params};
///
/// let mut detector = Detector::new(Params { degree: 1, tracked: 2 })?;
/// let befriend = br#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2"}"#;
/// assert_eq!(detector.apply(befriend)?, Applied::Friendship);
/// assert_eq!(detector.apply(b"   ")?, Applied::Blank);
/// # Ok::<(), anomaly_detect::Fatal>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A purchase, checked against its network's baseline, then added to the buyer's history.
    Purchase(Decision),
    /// A befriend or unfriend, applied to the network.
    Friendship,
    /// A blank line: nothing to do.
    Blank,
    /// A line that is not an event, and why; nothing changed.
    Skipped(SkipReason),
}

/// The decision on one purchase: flagged or not, the baseline it was judged by, and for a
/// flagged purchase the line the command writes to its output.
///
/// ```
/// use anomaly_detect::{Applied, Detector, Params};
///
/// let mut detector = Detector::new(Params { degree: 1, tracked: 2 })?;
/// let purchase = br#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "9.99"}"#;
/// let Applied::Purchase(decision) = detector.apply(purchase)? else { unreachable!() };
/// assert!(!decision.is_flagged());
/// assert_eq!((decision.cents(), decision.baseline().n), (999, 0));
/// assert_eq!(decision.flagged_line(), None);
/// # Ok::<(), anomaly_detect::Fatal>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    flagged: bool,
    cents: u64,
    baseline: Baseline,
    flagged_line: Vec<u8>,
    friends: Vec<Vec<u8>>,
    suggested: Vec<(Vec<u8>, u32)>,
}

impl Decision {
    fn of(purchase: &Checked<'_>) -> Decision {
        let mut flagged_line = Vec::new();
        purchase.write_flagged_line(&mut flagged_line);
        Decision {
            flagged: purchase.is_flagged(),
            cents: purchase.cents(),
            baseline: purchase.baseline(),
            flagged_line,
            friends: purchase.friends().map(<[u8]>::to_vec).collect(),
            suggested: purchase
                .suggested()
                .map(|(id, mutual)| (id.to_vec(), mutual))
                .collect(),
        }
    }

    /// Whether the purchase is anomalous: more than 3 standard deviations above the mean of
    /// its network's latest `T` purchases (never with fewer than 2 of them).
    pub fn is_flagged(&self) -> bool {
        self.flagged
    }

    /// The purchase's amount in cents.
    pub fn cents(&self) -> u64 {
        self.cents
    }

    /// The network's latest purchases that the purchase was judged by.
    pub fn baseline(&self) -> Baseline {
        self.baseline
    }

    /// For a flagged purchase, the line the command writes to its flagged-purchases output:
    /// the purchase's line with `"mean"` and `"sd"` added, and a newline; `None` otherwise.
    pub fn flagged_line(&self) -> Option<&[u8]> {
        self.flagged.then_some(&self.flagged_line[..])
    }

    /// For a flagged purchase of a detector built with [`Builder::social`]: the buyer's
    /// friends, by id, in no particular order.
    pub fn friends(&self) -> impl Iterator<Item = &[u8]> {
        self.friends.iter().map(Vec::as_slice)
    }

    /// For a flagged purchase of a detector built with [`Builder::social`]: the users at
    /// distance exactly 2, by id, with their number of mutual friends, in no particular order.
    pub fn suggested(&self) -> impl Iterator<Item = (&[u8], u32)> {
        self.suggested.iter().map(|(id, n)| (id.as_slice(), *n))
    }
}

/// Keeps the decision on the one purchase of a line.
struct Capture(Option<Decision>);

impl Sink for Capture {
    type Error = Fatal;

    fn checked(&mut self, purchase: &Checked<'_>) -> Result<bool, Fatal> {
        self.0 = Some(Decision::of(purchase));
        Ok(true)
    }
}

/// Keeps why the one line was skipped.
struct LastSkip(Option<SkipReason>);

impl SkipReport for LastSkip {
    fn skip(&mut self, _file: &str, _line: u64, reason: &SkipReason) -> Result<(), Fatal> {
        self.0 = Some(reason.clone());
        Ok(())
    }
}
