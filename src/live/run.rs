//! A live run with `--state DIR`, wired: the state directory opened for the run, the replay
//! restored from its checkpoint (or built from the batch log), the stream resumed where the
//! checkpoint left it, the outputs resumed at their marks, and checkpoints saved at drained
//! points ([`Checkpointer`]).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Fatal, shown};
use crate::ingest::chunks::read_params;
use crate::ingest::input::{BlockEnd, LogFile, LogReader, StreamSource};
use crate::ingest::position::{
    FINGERPRINT_BYTES, FileIdentity, Fingerprint, FollowedAt, Generation, Positions, ResumedFollow,
    StreamPosition,
};
use crate::live::checkpoint::{Checkpoint, Parameters, RunIdentity, StateDir, write_atomically};
use crate::output::file::OutputWriter;
use crate::output::outputs::{OpenOutputs, Outputs};
use crate::output::resume::ResumeWriter;
use crate::replay::{Checkpoints, Replay};
use crate::state::apply::State;
use crate::state::snapshot;
use crate::stderr;

/// The file in `DIR` that says where standard input must start when a run resumes: the stream
/// lines consumed, as text (`kcat -o` takes the offset from it: README, "Live mode").
pub const STDIN_LINES: &str = "stdin-lines";

/// The file in `DIR` that names the followed file a first run started on, written before the
/// batch is replayed: a first run killed before its first checkpoint is followed by one that
/// starts on the same file, found beside the path if it was rotated meanwhile. Removed once a
/// checkpoint is saved.
pub const STREAM_START: &str = "stream-start";

/// The journal in `DIR` of the files a followed stream read from their start after the
/// checkpoint's file ([`Generation`]): a run killed after a rotation and before its next
/// checkpoint is followed by one that reads them all, in order, even when they were rotated
/// away meanwhile.
pub const STREAM_FILES: &str = "stream-files";

/// A live run's state directory, opened, with its checkpoint if it has one.
pub struct LiveState {
    pub dir: StateDir,
    pub checkpoint: Option<Checkpoint>,
    /// A followed stream without checkpoint: the file the first run started on.
    start: Option<FollowedAt>,
}

impl LiveState {
    /// Opens `dir` for the run of `batch` (a regular file, mapped), `stream` (`-` or a
    /// followed regular file) and the outputs (role, path) with `config`'s `D`, `T` and line
    /// limit (the batch log's parameter line where the command line sets none).
    pub fn open(
        dir: &Path,
        batch: &LogFile,
        stream: &Path,
        outputs: &[(&str, &Path)],
        config: &Config,
    ) -> Result<LiveState, Fatal> {
        let (params, _, _) = read_params(batch)?;
        if stream.as_os_str() != "-" && !std::fs::metadata(stream).is_ok_and(|m| m.is_file()) {
            return Err(Fatal::State {
                dir: dir.to_path_buf(),
                problem: format!(
                    "{} is not a regular file: a followed pipe or device has no position to \
                     resume at (pipe it to standard input instead: STREAM `-`)",
                    shown(stream)
                ),
            });
        }
        let parameters = Parameters {
            degree: config.degree.unwrap_or(params.degree),
            tracked: config.tracked.unwrap_or(params.tracked),
            max_line: config.max_line as u64,
        };
        let run = RunIdentity::new(parameters, &batch.path, stream, outputs)?;
        let (dir, checkpoint) = StateDir::open(dir, run)?;
        let start = match &checkpoint {
            None if stream.as_os_str() != "-" => Some(stream_start(dir.dir(), stream)?),
            _ => None,
        };
        Ok(LiveState {
            dir,
            checkpoint,
            start,
        })
    }

    /// The replay restored from the checkpoint's state, if there is a checkpoint.
    pub fn restore(&self, config: &Config) -> Result<Option<Replay>, Fatal> {
        let Some(checkpoint) = &self.checkpoint else {
            return Ok(None);
        };
        let bytes = self.dir.read_state(checkpoint)?;
        let saved = snapshot::restore_bytes(&bytes).map_err(|error| Fatal::State {
            dir: self.dir.dir().to_path_buf(),
            problem: format!("its state cannot be restored: {error}"),
        })?;
        Replay::from_snapshot(saved, config).map(Some)
    }

    /// The stream, resumed where the checkpoint left it, and its positions. A followed file
    /// is read from the saved offset (its rotated copy first when it was rotated meanwhile);
    /// standard input must start where `DIR/stdin-lines` says: lines the checkpoint holds
    /// beyond that (a run killed between the checkpoint and that file) are read and dropped.
    pub fn stream(&self, stream: &Path) -> Result<(LogReader, Positions), Fatal> {
        let name = stream.display().to_string();
        let position = self.checkpoint.as_ref().map(|c| c.position);
        if stream.as_os_str() == "-" {
            let StreamSource::Live(log) = StreamSource::open(stream, false)? else {
                unreachable!("standard input is live");
            };
            let skip =
                match position {
                    Some(position) => {
                        let told = self.stdin_lines()?;
                        position.lines().checked_sub(told).ok_or_else(|| Fatal::State {
                        dir: self.dir.dir().to_path_buf(),
                        problem: format!(
                            "its {STDIN_LINES} says {told} lines, beyond the checkpoint's {}: \
                             it was not written by this program",
                            position.lines()
                        ),
                    })?
                    }
                    None => 0,
                };
            let reader: Box<dyn Read + Send> = if skip == 0 {
                log.reader
            } else {
                Box::new(SkipLines {
                    inner: log.reader,
                    lines: skip,
                })
            };
            return Ok((LogReader { name, reader }, Positions::stdin(position)));
        }
        let journal = self.stream_files()?;
        let resumed = match (position, &self.start) {
            (Some(StreamPosition::Followed { at, lines }), _) => {
                ResumedFollow::resume(stream, &at, lines, &journal)?
            }
            (_, Some(start)) => ResumedFollow::resume(stream, start, 0, &journal)?,
            _ => ResumedFollow::start(stream)?,
        };
        if let Some(warning) = resumed.warning {
            stderr::line(warning);
        }
        let dir = self.dir.dir().to_path_buf();
        resumed.positions.set_journal(Box::new(move |text: &str| {
            write_atomically(&dir, STREAM_FILES, text.as_bytes())
        }));
        let reader = Box::new(resumed.reader);
        Ok((LogReader { name, reader }, resumed.positions))
    }

    /// The files `DIR/stream-files` names (none when it is missing).
    fn stream_files(&self) -> Result<Vec<Generation>, Fatal> {
        let path = self.dir.dir().join(STREAM_FILES);
        match std::fs::read_to_string(&path) {
            Ok(text) => Generation::parse(&text).ok_or_else(|| Fatal::State {
                dir: self.dir.dir().to_path_buf(),
                problem: format!("its {STREAM_FILES} is damaged"),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(Fatal::Read { path, error }),
        }
    }

    /// The lines `DIR/stdin-lines` says standard input starts after (0 when it is missing).
    fn stdin_lines(&self) -> Result<u64, Fatal> {
        let path = self.dir.dir().join(STDIN_LINES);
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| Fatal::State {
                dir: self.dir.dir().to_path_buf(),
                problem: format!("its {STDIN_LINES} does not hold a line count"),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(Fatal::Read { path, error }),
        }
    }

    /// The outputs, each line output's writer resumed at the checkpoint's mark (or fresh),
    /// and the checkpointer that saves checkpoints every `every` or `events` stream lines.
    /// Call after [`OpenOutputs::begin`] (with [`OpenOutputs::keep_torn_tails`] before it
    /// when resuming).
    pub fn outputs(
        self,
        open: OpenOutputs,
        positions: Positions,
        stdin: bool,
        every: Duration,
        events: u64,
    ) -> Result<(Outputs, Checkpointer), Fatal> {
        let mut writers = Vec::new();
        let marks = self.checkpoint.as_ref().map(|c| c.outputs.clone());
        let outputs = Outputs::wrapped(open, |open, index, out| {
            let path = open.path(index).to_path_buf();
            let file = open.file(index).transpose().map_err(|error| Fatal::Write {
                path: path.clone(),
                error,
            })?;
            let writer = match (marks.as_ref().and_then(|m| m.get(index)), file) {
                (Some(mark), Some(file)) => {
                    let (writer, warning) =
                        ResumeWriter::resume(out, &path, file, mark).map_err(Fatal::Output)?;
                    if let Some(warning) = warning {
                        stderr::line(warning);
                    }
                    writer
                }
                (_, file) => ResumeWriter::fresh(out, &path, file),
            };
            let shared = Shared(Rc::new(RefCell::new(writer)));
            writers.push(shared.clone());
            Ok::<_, Fatal>(shared)
        })?;
        let checkpointer = Checkpointer {
            dir: self.dir,
            positions,
            writers,
            stdin,
            every,
            events,
            last: BlockEnd::default(),
            saved_at: Instant::now(),
            bytes: Vec::new(),
            failing: false,
            fresh: self.checkpoint.is_none(),
        };
        Ok((outputs, checkpointer))
    }
}

/// The file a first run on `dir` starts following at `stream`: the one `DIR/stream-start`
/// names (an earlier first run was killed before its first checkpoint), else the path's file
/// now, recorded there (its device, inode and first bytes).
fn stream_start(dir: &Path, stream: &Path) -> Result<FollowedAt, Fatal> {
    let fail = |problem: String| Fatal::State {
        dir: dir.to_path_buf(),
        problem,
    };
    let path = dir.join(STREAM_START);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let fields: Vec<u64> = text
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| fail(format!("its {STREAM_START} is damaged")))?;
            let &[dev, ino, len, hash] = &fields[..] else {
                return Err(fail(format!("its {STREAM_START} is damaged")));
            };
            return Ok(FollowedAt {
                file: FileIdentity { dev, ino },
                fingerprint: Fingerprint { len, hash },
                offset: 0,
                length: 0,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(Fatal::Read { path, error }),
    }
    let read = |error| Fatal::Read {
        path: stream.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(stream).map_err(read)?;
    let id = FileIdentity::of(&file.metadata().map_err(read)?);
    let fingerprint = Fingerprint::of(&file, FINGERPRINT_BYTES).map_err(read)?;
    let text = format!(
        "{} {} {} {}\n",
        id.dev, id.ino, fingerprint.len, fingerprint.hash
    );
    write_atomically(dir, STREAM_START, text.as_bytes()).map_err(|error| Fatal::Write {
        path: path.clone(),
        error,
    })?;
    Ok(FollowedAt {
        file: id,
        fingerprint,
        offset: 0,
        length: 0,
    })
}

/// Standard input with its first `lines` lines dropped.
struct SkipLines {
    inner: Box<dyn Read + Send>,
    lines: u64,
}

impl Read for SkipLines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.lines > 0 {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut at = 0;
            while self.lines > 0 {
                match memchr::memchr(b'\n', &buf[at..n]) {
                    Some(i) => {
                        at += i + 1;
                        self.lines -= 1;
                    }
                    None => {
                        at = n;
                        break;
                    }
                }
            }
            if self.lines == 0 && at < n {
                buf.copy_within(at..n, 0);
                return Ok(n - at);
            }
        }
        self.inner.read(buf)
    }
}

/// An output writer shared between its sink and the checkpointer, which takes its mark.
#[derive(Clone)]
pub struct Shared(Rc<RefCell<ResumeWriter<OutputWriter>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// Saves a live run's checkpoints: at a drained point, once `every` has passed or `events`
/// stream lines were read since the last one, and when the stream stops; never when nothing
/// was read since the last one. A checkpoint that cannot be saved (a full disk) leaves the
/// previous one in place: a warning says so, once until one is saved again, and the run goes
/// on.
pub struct Checkpointer {
    dir: StateDir,
    positions: Positions,
    writers: Vec<Shared>,
    /// Standard input: `DIR/stdin-lines` is written after each checkpoint.
    stdin: bool,
    every: Duration,
    events: u64,
    /// Where the stream stood at the last checkpoint (this run's count).
    last: BlockEnd,
    saved_at: Instant,
    /// The state's snapshot, kept: no allocation per checkpoint once it has grown.
    bytes: Vec<u8>,
    /// The last save failed (warned).
    failing: bool,
    /// The state directory has no checkpoint yet.
    fresh: bool,
}

impl Checkpointer {
    fn save(&mut self, state: &State, line_one: u64, at: BlockEnd) -> Result<(), Fatal> {
        let dir = self.dir.dir().to_path_buf();
        let problem = |what: &str, error: io::Error| Fatal::State {
            dir: dir.clone(),
            problem: format!("cannot save a checkpoint: {what}: {error}"),
        };
        self.bytes.clear();
        snapshot::save_state(state, line_one, &mut self.bytes)
            .map_err(|e| problem("the state", e))?;
        let position = self
            .positions
            .at(at)
            .map_err(|e| problem("the stream's position", e))?;
        let marks = self
            .writers
            .iter()
            .map(|w| w.0.borrow().mark())
            .collect::<io::Result<Vec<_>>>()
            .map_err(Fatal::Output)?;
        self.dir.save(&self.bytes, &position, &marks)?;
        // The journal's files before the checkpoint's are no longer needed (a failure leaves
        // them: a restart reads past them).
        let _ = self.positions.saved();
        if self.stdin {
            let text = format!("{}\n", position.lines());
            write_atomically(&dir, STDIN_LINES, text.as_bytes()).map_err(|error| Fatal::Write {
                path: dir.join(STDIN_LINES),
                error,
            })?;
        }
        Ok(())
    }

    /// Saves the first checkpoint of a state directory that has none, before the stream's
    /// first line is read: a run killed at any later moment then resumes at a checkpoint
    /// that knows how long every output was (else the lines a killed first run wrote would
    /// be written again). `state`: after the batch log. Fails when it cannot be saved.
    pub fn start(&mut self, state: &State) -> Result<(), Fatal> {
        if self.fresh {
            self.save(state, state.next_seq, BlockEnd::default())?;
            self.fresh = false;
            let _ = std::fs::remove_file(self.dir.dir().join(STREAM_START));
        }
        Ok(())
    }
}

impl Checkpoints for Checkpointer {
    fn due(&self, at: BlockEnd) -> bool {
        at.lines - self.last.lines >= self.events || self.saved_at.elapsed() >= self.every
    }

    fn drained(
        &mut self,
        state: &State,
        line_one: u64,
        at: BlockEnd,
        stopping: bool,
    ) -> Result<(), Fatal> {
        if at == self.last || !(stopping || self.due(at)) {
            return Ok(());
        }
        match self.save(state, line_one, at) {
            Ok(()) => {
                self.last = at;
                self.saved_at = Instant::now();
                self.failing = false;
            }
            Err(error) => {
                if !std::mem::replace(&mut self.failing, true) {
                    stderr::line(format_args!(
                        "warning: {error}; the previous checkpoint stays in place, and the run \
                         goes on (a restart resumes from the last checkpoint saved)"
                    ));
                }
                // Tried again after another interval, not at every block.
                self.saved_at = Instant::now();
            }
        }
        Ok(())
    }
}
