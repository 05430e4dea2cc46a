//! Typed errors: fatal problems that stop a run, and the reasons a single log line is skipped.

use std::fmt;
use std::path::PathBuf;

/// A problem that stops the whole run (exit code 2, no output file written). Every file name
/// in a message is [`shown`] escaped.
/// The fields name the file (or log and line) and say what went wrong; the message
/// (`Display`) is the one line the command prints after `Error: `.
///
/// ```
/// let error = anomaly_detect::Detector::from_batch("no/such/batch_log.json").err().unwrap();
/// assert!(error.to_string().starts_with("no/such/batch_log.json: cannot read: "));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// A log cannot be opened or read.
    #[error("{}: cannot read: {error}", shown(path))]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A mapped log was truncated by another program while it was read.
    #[error(
        "{}: the file shrank while it was being read (truncated by another program)",
        shown(path)
    )]
    Shrank { path: PathBuf },
    /// The batch log's parameter line is missing or invalid.
    #[error("{}: {problem}", shown(path))]
    Parameters { path: PathBuf, problem: String },
    /// An output cannot be created or written.
    #[error("{}: cannot write: {error}", shown(path))]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Two of the run's files are one: an output that would replace an input or another
    /// output (nothing is read or written).
    #[error("{}: {problem}", shown(path))]
    Clash { path: PathBuf, problem: String },
    /// More lines than the sequence numbers can number.
    #[error(
        "{}: the logs hold more than {limit} lines in all, beyond what a run can number",
        shown(file)
    )]
    TooManyLines { file: String, limit: u64 },
    /// More distinct users than dense ids can index.
    #[error(
        "{file}:{line}: the logs name more than {limit} distinct users, beyond what a run can index"
    )]
    TooManyUsers { file: String, line: u64, limit: u64 },
    /// A live run's state directory (`--state DIR`) that cannot serve: another run holds it,
    /// or its checkpoint does not fit this run or is damaged. Nothing was touched.
    #[error("{}: {problem}", shown(dir))]
    State { dir: PathBuf, problem: String },
    /// A signal stopped a file replay before its outputs were committed.
    #[error("interrupted: the output was not saved")]
    Interrupted,
    /// A write error from an output: it names its file when it comes from an output file's
    /// writer (see [`NamedWriteError`]).
    #[error("{}", output_message(.0))]
    Output(std::io::Error),
    /// A saved state that cannot be restored.
    #[error("cannot restore the detector's state: {0}")]
    Snapshot(#[from] SnapshotError),
    /// A library user's [`Sink`](crate::Sink) failed with its own error.
    #[error("the sink failed: {0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
    /// A skipped line under `--strict`.
    #[error("{}:{line}: skipped line in --strict mode: {reason}", shown(file))]
    Strict {
        file: String,
        line: u64,
        reason: SkipReason,
    },
    /// A thread the run needs could not be started: `what` says which (`64 worker threads`).
    #[error(
        "cannot start {what}: {error}; the system refuses more threads (lower --threads, or \
         raise the limit on processes: ulimit -u)"
    )]
    Threads { what: String, error: String },
    /// The thread reading a log panicked: what it read may be cut short, so nothing of the
    /// run may count as a success.
    #[error(
        "{}: cannot read: the thread reading it failed ({message})",
        shown(path)
    )]
    ReaderFailed { path: PathBuf, message: String },
}

impl Fatal {
    /// Whether the run was stopped by a signal: interrupted, or an output write given up
    /// because of the stop (see [`WriteStopped`]). Such a run exits with 128 + the signal.
    pub fn is_interrupt(&self) -> bool {
        match self {
            Fatal::Interrupted => true,
            Fatal::Output(error) => WriteStopped::is(error),
            _ => false,
        }
    }
}

/// A write to a pipe, FIFO, socket or terminal given up because the run was asked to stop
/// while the reader at the other end was not reading.
#[derive(Debug)]
pub struct WriteStopped;

impl WriteStopped {
    /// The error an output writer returns (not of kind `Interrupted`, which `write_all`
    /// would retry).
    pub fn error() -> std::io::Error {
        std::io::Error::other(WriteStopped)
    }

    /// Whether `error` is (or wraps, inside a [`NamedWriteError`]) a [`WriteStopped`].
    pub fn is(error: &std::io::Error) -> bool {
        match error.get_ref() {
            Some(inner) if inner.is::<WriteStopped>() => true,
            Some(inner) => inner
                .downcast_ref::<NamedWriteError>()
                .is_some_and(|named| WriteStopped::is(&named.error)),
            None => false,
        }
    }
}

impl fmt::Display for WriteStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "stopped by a signal while its reader was not reading: the output is incomplete",
        )
    }
}

impl std::error::Error for WriteStopped {}

/// A write error that names the output it happened on: `flagged.json: cannot write: No space
/// left on device (os error 28)`. Output writers return it inside an [`std::io::Error`], so
/// that the sinks' plain I/O results carry the file's name to the message.
#[derive(Debug)]
pub struct NamedWriteError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl NamedWriteError {
    /// `error`, of the same kind, naming `path`; an error that names its file already is kept.
    pub fn wrap(path: &std::path::Path, error: std::io::Error) -> std::io::Error {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<NamedWriteError>())
        {
            return error;
        }
        let kind = error.kind();
        std::io::Error::new(
            kind,
            NamedWriteError {
                path: path.to_path_buf(),
                error,
            },
        )
    }
}

impl fmt::Display for NamedWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot write: {}", shown(&self.path), self.error)
    }
}

impl std::error::Error for NamedWriteError {}

fn output_message(error: &std::io::Error) -> String {
    match error.get_ref() {
        Some(inner) if inner.is::<NamedWriteError>() => inner.to_string(),
        _ => format!("cannot write the output: {error}"),
    }
}

/// Why one event line was skipped. Each variant is one class of dirty input.
///
/// ```
/// use anomaly_detect::{Applied, Detector, Params, SkipReason};
///
/// let mut detector = Detector::new(Params { degree: 1, tracked: 2 })?;
/// let Applied::Skipped(reason) = detector.apply(br#"{"event_type":"refund"}"#)? else { unreachable!() };
/// assert_eq!(reason, SkipReason::UnknownEventType("\"refund\"".to_string()));
/// assert_eq!(reason.to_string(), r#"unknown event_type "refund""#);
/// # Ok::<(), anomaly_detect::Fatal>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The line is not UTF-8.
    #[error("not valid UTF-8")]
    InvalidUtf8,
    /// The start of the line, [`escaped`] (see [`SkipReason::not_json`]).
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The line is JSON but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// The key, unescaped; shown [`quoted`].
    #[error("key {} appears twice", quoted(.0.as_bytes()))]
    DuplicateKey(String),
    /// A field the event needs is absent.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// `event_type` is none of `purchase`, `befriend`, `unfriend` (its value shown).
    #[error("unknown event_type {0}")]
    UnknownEventType(String),
    /// The timestamp is not a real `YYYY-MM-DD HH:MM:SS` (its value shown).
    #[error("invalid timestamp {0} (expected a real \"YYYY-MM-DD HH:MM:SS\")")]
    InvalidTimestamp(String),
    /// The amount is not digits with at most 2 decimals, up to 1000000000.00 (shown).
    #[error("invalid amount {0} (expected digits with at most 2 decimals, at most 1000000000.00)")]
    InvalidAmount(String),
    /// A user id is neither a non-empty string nor an integer (the field and value shown).
    #[error("invalid user id in {field:?}: {value} (expected a non-empty string or an integer)")]
    InvalidId { field: &'static str, value: String },
    /// Longer than the longest line read (`--max-line-bytes`); the line is not held in memory.
    #[error("line too long (more than {0} bytes)")]
    LineTooLong(usize),
}

/// How much of a line that is not JSON its warning shows (the rest is `...`).
pub const NOT_JSON_SHOWN: usize = 40;

impl SkipReason {
    /// A line that is not valid JSON, shown by its first [`NOT_JSON_SHOWN`] characters.
    pub fn not_json(raw: &[u8]) -> SkipReason {
        SkipReason::NotJson(escaped(raw, NOT_JSON_SHOWN))
    }

    /// Short name of the reason's class, used to count skips in the run summary.
    pub fn class(&self) -> SkipClass {
        match self {
            SkipReason::InvalidUtf8 => SkipClass::InvalidUtf8,
            SkipReason::NotJson(_) => SkipClass::NotJson,
            SkipReason::NotObject => SkipClass::NotObject,
            SkipReason::DuplicateKey(_) => SkipClass::DuplicateKey,
            SkipReason::MissingField(_) => SkipClass::MissingField,
            SkipReason::UnknownEventType(_) => SkipClass::UnknownEventType,
            SkipReason::InvalidTimestamp(_) => SkipClass::InvalidTimestamp,
            SkipReason::InvalidAmount(_) => SkipClass::InvalidAmount,
            SkipReason::InvalidId { .. } => SkipClass::InvalidId,
            SkipReason::LineTooLong(_) => SkipClass::LineTooLong,
        }
    }
}

/// The classes of [`SkipReason`], without their details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipClass {
    InvalidUtf8,
    NotJson,
    NotObject,
    DuplicateKey,
    MissingField,
    UnknownEventType,
    InvalidTimestamp,
    InvalidAmount,
    InvalidId,
    LineTooLong,
}

impl SkipClass {
    pub const ALL: [SkipClass; 10] = [
        SkipClass::InvalidUtf8,
        SkipClass::NotJson,
        SkipClass::NotObject,
        SkipClass::DuplicateKey,
        SkipClass::MissingField,
        SkipClass::UnknownEventType,
        SkipClass::InvalidTimestamp,
        SkipClass::InvalidAmount,
        SkipClass::InvalidId,
        SkipClass::LineTooLong,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SkipClass::InvalidUtf8 => "invalid UTF-8",
            SkipClass::NotJson => "not JSON",
            SkipClass::NotObject => "not an object",
            SkipClass::DuplicateKey => "duplicate key",
            SkipClass::MissingField => "missing field",
            SkipClass::UnknownEventType => "unknown event_type",
            SkipClass::InvalidTimestamp => "invalid timestamp",
            SkipClass::InvalidAmount => "invalid amount",
            SkipClass::InvalidId => "invalid id",
            SkipClass::LineTooLong => "line too long",
        }
    }
}

impl fmt::Display for SkipClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Input bytes as they may appear in a message: text passes unchanged, but control characters
/// (C0, DEL, C1) and bytes that are not UTF-8 become `\xNN` (or `\u{NNNN}` beyond a byte), so a
/// log line can never send escape sequences or bells to a terminal. At most `max_chars` units
/// (a character or an invalid byte) are kept; `...` marks a cut. Every message that quotes input
/// goes through here (or [`quoted`]).
pub fn escaped(bytes: &[u8], max_chars: usize) -> String {
    let mut out = String::new();
    escape_into(&mut out, bytes, max_chars, false);
    out
}

/// A file name as it may appear in a message: escaped like input bytes (see [`escaped`]), so
/// that a name holding ESC, BEL, an OSC sequence or a newline can neither drive the terminal
/// nor split a one-line message; bytes that are not UTF-8 show as `\xNN`.
pub fn shown(name: impl AsRef<std::ffi::OsStr>) -> String {
    use std::os::unix::ffi::OsStrExt;
    escaped(name.as_ref().as_bytes(), usize::MAX)
}

/// A key quoted for a message: `"..."` around its [`escaped`] text, with `"` and `\` escaped
/// too, as Rust's `{:?}` quotes them.
pub fn quoted(text: &[u8]) -> String {
    let mut out = String::from("\"");
    escape_into(&mut out, text, usize::MAX, true);
    out.push('"');
    out
}

fn escape_into(out: &mut String, bytes: &[u8], max_chars: usize, quoting: bool) {
    use std::fmt::Write;
    let mut kept = 0;
    for chunk in bytes.utf8_chunks() {
        let invalid = chunk.invalid().iter().map(|&b| Err(b));
        for unit in chunk.valid().chars().map(Ok).chain(invalid) {
            if kept == max_chars {
                out.push_str("...");
                return;
            }
            kept += 1;
            let _ = match unit {
                Err(byte) => write!(out, "\\x{byte:02x}"),
                Ok(c) if c.is_control() && u32::from(c) < 0x100 => {
                    write!(out, "\\x{:02x}", u32::from(c))
                }
                Ok(c) if c.is_control() => write!(out, "\\u{{{:04x}}}", u32::from(c)),
                Ok(c @ ('"' | '\\')) if quoting => write!(out, "\\{c}"),
                Ok(c) => write!(out, "{c}"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_invalid_bytes_are_escaped() {
        assert_eq!(escaped(b"a\x1b[31mb\x07", 100), "a\\x1b[31mb\\x07");
        assert_eq!(escaped(b"\xff\xc3", 100), "\\xff\\xc3");
        assert_eq!(escaped("\u{9b}\u{2028}é".as_bytes(), 100), "\\x9b\u{2028}é");
        assert_eq!(escaped(b"abcdef", 3), "abc...");
        assert_eq!(escaped(b"\x1b\x1b\x1b", 2), "\\x1b\\x1b...");
    }

    #[test]
    fn file_names_are_escaped_in_every_message() {
        use std::os::unix::ffi::OsStrExt;
        let name =
            std::path::Path::new(std::ffi::OsStr::from_bytes(b"b\x1b]0;title\x07\n\xff.json"));
        let shown = r"b\x1b]0;title\x07\x0a\xff.json";
        assert_eq!(super::shown(name), shown);
        let error = || std::io::Error::other("boom");
        let messages = [
            Fatal::Read {
                path: name.into(),
                error: error(),
            }
            .to_string(),
            Fatal::Shrank { path: name.into() }.to_string(),
            Fatal::Write {
                path: name.into(),
                error: error(),
            }
            .to_string(),
            Fatal::Output(NamedWriteError::wrap(name, error())).to_string(),
            Fatal::Strict {
                file: name.to_string_lossy().into_owned(),
                line: 3,
                reason: SkipReason::not_json(b"x"),
            }
            .to_string(),
            Fatal::ReaderFailed {
                path: name.into(),
                message: "boom".into(),
            }
            .to_string(),
        ];
        for message in messages {
            assert!(
                !message.contains(|c: char| c.is_control()),
                "raw control character in {message:?}"
            );
            assert!(message.starts_with(r"b\x1b]0;title\x07\x0a"), "{message}");
        }
    }

    #[test]
    fn a_stopped_write_is_an_interrupt_named_or_not() {
        let stopped = WriteStopped::error();
        assert!(WriteStopped::is(&stopped));
        let named = NamedWriteError::wrap(std::path::Path::new("-"), WriteStopped::error());
        assert!(Fatal::Output(named).is_interrupt());
        assert_eq!(
            Fatal::Output(NamedWriteError::wrap(std::path::Path::new("-"), stopped)).to_string(),
            "-: cannot write: stopped by a signal while its reader was not reading: the output \
             is incomplete"
        );
        assert!(Fatal::Interrupted.is_interrupt());
        assert!(!Fatal::Output(std::io::Error::other("full")).is_interrupt());
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quoted(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quoted(b"k\x1b"), r#""k\x1b""#);
    }
}

/// Why a snapshot cannot be restored.
///
/// ```
/// use anomaly_detect::{Detector, Fatal, SnapshotError};
///
/// let error = Detector::restore(&b"not a saved state"[..]).err().unwrap();
/// assert!(matches!(error, Fatal::Snapshot(SnapshotError::NotASnapshot)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading it failed.
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    /// It does not start with the snapshot format's magic bytes.
    #[error("it is not a snapshot of anomaly-detect's state")]
    NotASnapshot,
    /// It was written in another format version.
    #[error("it is a snapshot of format version {found}; this program reads version {reads}")]
    Version {
        /// The snapshot's format version.
        found: u32,
        /// The version this program reads.
        reads: u32,
    },
    /// It ends before its length says.
    #[error("it is truncated: {have} bytes of {expected}")]
    Truncated { have: u64, expected: u64 },
    /// Its bytes are not those that were written.
    #[error(
        "its checksum does not match its content (stored {stored:08x}, computed {computed:08x})"
    )]
    Checksum { stored: u32, computed: u32 },
    /// Its checksum matches but its content cannot be the state of a replay.
    #[error("its content is inconsistent: {0}")]
    Inconsistent(String),
}
