//! The state directory of a restartable live run and the checkpoints in it.
//!
//! `DIR` holds `LOCK` (an exclusive `flock` held while a run uses the directory: a second run
//! on it refuses), `checkpoint` (a small file: what the run is and where it stands) and
//! `state-N` (the detector's state as the checkpoint numbered `N` saved it, an opaque
//! snapshot). Both files are written atomically: a temporary file in `DIR`, `fsync`, `rename`,
//! `fsync` of `DIR`; `state-N` first, then the `checkpoint` that names it, then the previous
//! `state-M` is removed. A run killed at any moment, or a full disk, leaves the previous
//! checkpoint and its state whole.
//!
//! The checkpoint file: a magic line, a format version, the body's length, the body, and a
//! checksum ([`stable_hash`]) of everything before it. The body holds the run's identity
//! ([`RunIdentity`]: the parameters that change decisions, the batch log's identity, the
//! stream, the outputs), the stream position, every output's mark and the state file's
//! number, length and checksum. [`StateDir::open`] compares the identity with the run's and
//! refuses a checkpoint that does not fit, or a damaged one, naming `DIR` and the reason,
//! before anything is touched.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Fatal, shown};
use crate::ingest::position::{
    FileIdentity, Fingerprint, FollowedAt, StableHasher, StreamPosition, stable_hash,
};
use crate::output::file::{lock, sync_dir, unique_name};
use crate::output::resume::OutputMark;

/// The first bytes of a checkpoint file.
pub const MAGIC: &[u8; 26] = b"anomaly-detect checkpoint\n";

/// The checkpoint format this program writes and reads.
pub const VERSION: u32 = 1;

/// The name of the lock file, the checkpoint file, and the prefix of state files.
pub const LOCK: &str = "LOCK";
pub const CHECKPOINT: &str = "checkpoint";
pub const STATE_PREFIX: &str = "state-";

/// Temporary files in `DIR` start with this.
const TEMP_PREFIX: &str = ".tmp-";

/// How much of the batch log's start and end its identity hashes.
pub const BATCH_SAMPLE: u64 = 1 << 20;

/// The parameters that change a run's decisions: what a resumed run must share with the run
/// that saved the checkpoint. (Threads, chunk and window sizes change no decision.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameters {
    /// `D` and `T` in effect (the batch log's, or `-D`/`-T`).
    pub degree: u32,
    pub tracked: u32,
    /// `--max-line-bytes`: which lines are skipped as too long.
    pub max_line: u64,
}

/// What identifies the batch log: its size, modification time and the hash of its first and
/// last MiB (the parameter line and the newest events), with its device and inode. Content
/// decides: a copy that keeps size, time and bytes (`cp -p`, a restored backup, another disk)
/// is the same log; an edited or replaced one is not. The whole file is not hashed: that would
/// read the whole batch at every restart, the cost a checkpoint saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    pub file: FileIdentity,
    pub size: u64,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    pub head: u64,
    pub tail: u64,
}

impl BatchIdentity {
    pub fn of(path: &Path) -> io::Result<BatchIdentity> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        let sample = |from: u64| Fingerprint::of_range(&file, from, BATCH_SAMPLE.min(size));
        Ok(BatchIdentity {
            file: FileIdentity::of(&meta),
            size,
            mtime: (meta.mtime(), meta.mtime_nsec() as u32),
            head: sample(0)?.hash,
            tail: sample(size.saturating_sub(BATCH_SAMPLE))?.hash,
        })
    }

    /// Why `self` (the checkpoint's) is not `now`, if it is not.
    fn differs(&self, now: &BatchIdentity) -> Option<String> {
        if self.size != now.size {
            Some(format!("{} bytes then, {} now", self.size, now.size))
        } else if self.mtime != now.mtime {
            Some("its modification time changed".to_string())
        } else if (self.head, self.tail) != (now.head, now.tail) {
            Some("its bytes changed".to_string())
        } else {
            None
        }
    }
}

/// Where a run's stream comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSpec {
    /// Standard input (`-`).
    Stdin,
    /// A file followed (`--follow`), by its path made absolute (its folder's canonical path
    /// and its name, so a rotation that replaces the file keeps it).
    Followed(PathBuf),
}

/// What a run is: a checkpoint serves only a run with the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub parameters: Parameters,
    pub batch: BatchIdentity,
    pub stream: StreamSpec,
    /// Each output's role (`OUTPUT`, `--feed`, `--recommend`) and path made absolute (`-`
    /// stays `-`), in plan order. `--stats` is not one: it is replaced at each run's end.
    pub outputs: Vec<(String, PathBuf)>,
}

impl RunIdentity {
    /// The identity of a run with these parameters, batch log, stream (`-` or a followed
    /// file) and outputs (role, path as given).
    pub fn new(
        parameters: Parameters,
        batch: &Path,
        stream: &Path,
        outputs: &[(&str, &Path)],
    ) -> Result<RunIdentity, Fatal> {
        let batch = BatchIdentity::of(batch).map_err(|error| Fatal::Read {
            path: batch.to_path_buf(),
            error,
        })?;
        let stream = if stream.as_os_str() == "-" {
            StreamSpec::Stdin
        } else {
            StreamSpec::Followed(absolute(stream))
        };
        let outputs = outputs
            .iter()
            .map(|(role, path)| {
                let path = if path.as_os_str() == "-" {
                    path.to_path_buf()
                } else {
                    absolute(path)
                };
                (role.to_string(), path)
            })
            .collect();
        Ok(RunIdentity {
            parameters,
            batch,
            stream,
            outputs,
        })
    }

    /// Why a checkpoint of `saved` does not serve this run, if it does not.
    fn mismatch(&self, saved: &RunIdentity) -> Option<String> {
        let (p, q) = (&saved.parameters, &self.parameters);
        if p != q {
            // The longest line read (the hidden `--max-line-bytes`) is named only when it
            // is what differs.
            let limit = |max_line: u64| {
                if p.max_line == q.max_line {
                    String::new()
                } else {
                    format!(" (lines up to {max_line} bytes)")
                }
            };
            return Some(format!(
                "the checkpoint was made with D={} T={}{}; this run has D={} T={}{}",
                p.degree,
                p.tracked,
                limit(p.max_line),
                q.degree,
                q.tracked,
                limit(q.max_line)
            ));
        }
        if let Some(why) = saved.batch.differs(&self.batch) {
            return Some(format!(
                "the checkpoint is of another batch log ({why}): its state holds what that log \
                 held"
            ));
        }
        if saved.stream != self.stream {
            let name = |s: &StreamSpec| match s {
                StreamSpec::Stdin => "standard input".to_string(),
                StreamSpec::Followed(path) => shown(path),
            };
            return Some(format!(
                "the checkpoint reads the stream from {}; this run reads {}",
                name(&saved.stream),
                name(&self.stream)
            ));
        }
        if saved.outputs != self.outputs {
            let list = |outputs: &[(String, PathBuf)]| {
                outputs
                    .iter()
                    .map(|(role, path)| format!("{role} {}", shown(path)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Some(format!(
                "the checkpoint's outputs are {}; this run's are {}",
                list(&saved.outputs),
                list(&self.outputs)
            ));
        }
        None
    }
}

/// A path made absolute without following its last component: the canonical folder and the
/// name (the folder as given when it cannot be resolved).
fn absolute(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// The state file a checkpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRef {
    /// The checkpoint's number: the file is `state-N`.
    pub seq: u64,
    pub len: u64,
    pub hash: u64,
}

/// A checkpoint as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub run: RunIdentity,
    pub position: StreamPosition,
    /// One per output of `run.outputs`, in order.
    pub outputs: Vec<OutputMark>,
    pub state: StateRef,
}

/// A state directory held by this run (its lock taken).
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Holds the `flock` while the run lasts.
    _lock: File,
    run: RunIdentity,
    /// The last checkpoint's state, if any: removed once a newer one is saved.
    last: Option<StateRef>,
}

impl StateDir {
    /// Takes `dir` for the run `run` (creating it, mode 0700, when missing; its parent must
    /// exist) and reads its checkpoint. `None`: no checkpoint yet (a first run). Refuses,
    /// naming `dir`: a directory another run holds, a checkpoint that does not fit `run`
    /// (another batch log, other parameters, stream or outputs), one of another format
    /// version, a damaged one. Nothing is changed in `dir` but the lock, unless the checkpoint
    /// fits: then files left by a killed run (temporary files, older states) are removed.
    pub fn open(dir: &Path, run: RunIdentity) -> Result<(StateDir, Option<Checkpoint>), Fatal> {
        let fail = |problem: String| Fatal::State {
            dir: dir.to_path_buf(),
            problem,
        };
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => sync_dir(&parent(dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(fail(
                    "cannot create it: its parent directory does not exist".into(),
                ));
            }
            Err(e) => return Err(fail(format!("cannot create it: {e}"))),
        }
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK))
            .map_err(|e| fail(format!("cannot open its {LOCK}: {e}")))?;
        match lock_soon(&lock_file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(fail(format!(
                    "another live run uses this state directory (it holds {LOCK}); two runs \
                     on one state would write the same outputs twice"
                )));
            }
            Err(e) => return Err(fail(format!("cannot lock its {LOCK}: {e}"))),
        }
        let checkpoint = match std::fs::read(dir.join(CHECKPOINT)) {
            Ok(bytes) => Some(decode(&bytes).map_err(|why| fail(refused(&why)))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail(format!("cannot read its {CHECKPOINT}: {e}"))),
        };
        if let Some(checkpoint) = &checkpoint {
            if let Some(why) = run.mismatch(&checkpoint.run) {
                return Err(fail(refused(&why)));
            }
            let state = dir.join(state_name(checkpoint.state.seq));
            match std::fs::metadata(&state) {
                Ok(meta) if meta.len() == checkpoint.state.len => {}
                Ok(meta) => {
                    return Err(fail(refused(&format!(
                        "{} is damaged: {} bytes, {} expected",
                        state_name(checkpoint.state.seq),
                        meta.len(),
                        checkpoint.state.len
                    ))));
                }
                Err(e) => {
                    return Err(fail(refused(&format!(
                        "its state {} cannot be read: {e}",
                        state_name(checkpoint.state.seq)
                    ))));
                }
            }
        }
        let state_dir = StateDir {
            dir: dir.to_path_buf(),
            _lock: lock_file,
            run,
            last: checkpoint.as_ref().map(|c| c.state),
        };
        state_dir.remove_leftovers();
        Ok((state_dir, checkpoint))
    }

    /// Removes temporary files and state files other than the last checkpoint's (left by a
    /// run killed while saving). Only this run writes in the directory: it holds the lock.
    fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let keep = self.last.map(|s| state_name(s.seq));
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let leftover = name.starts_with(TEMP_PREFIX)
                || (name.starts_with(STATE_PREFIX)
                    && name[STATE_PREFIX.len()..]
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                    && Some(name) != keep.as_deref());
            if leftover {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves a checkpoint: the detector's state `state` (a snapshot's bytes), where the stream
    /// stands and every output's mark (in the order of the run's outputs), all taken at one
    /// drained point (every line read decided and its outputs flushed). The new state file
    /// and checkpoint are synced and renamed into place before the previous state is removed:
    /// on any failure (a full disk) the previous checkpoint stays whole and usable, and the
    /// error names the file.
    pub fn save(
        &mut self,
        state: &[u8],
        position: &StreamPosition,
        outputs: &[OutputMark],
    ) -> Result<(), Fatal> {
        assert_eq!(outputs.len(), self.run.outputs.len(), "a mark per output");
        let seq = self.last.map_or(1, |s| s.seq + 1);
        let state_ref = StateRef {
            seq,
            len: state.len() as u64,
            hash: stable_hash(state),
        };
        let write = |name: &str, bytes: &[u8]| {
            write_atomically(&self.dir, name, bytes).map_err(|error| Fatal::Write {
                path: self.dir.join(name),
                error,
            })
        };
        write(&state_name(seq), state)?;
        let checkpoint = Checkpoint {
            run: self.run.clone(),
            position: *position,
            outputs: outputs.to_vec(),
            state: state_ref,
        };
        if let Err(error) = write(CHECKPOINT, &encode(&checkpoint)) {
            let _ = std::fs::remove_file(self.dir.join(state_name(seq)));
            return Err(error);
        }
        if let Some(previous) = self.last.replace(state_ref) {
            let _ = std::fs::remove_file(self.dir.join(state_name(previous.seq)));
        }
        Ok(())
    }

    /// The checkpoint's state, read back and checked: its bytes, when they have the length
    /// and checksum the checkpoint recorded.
    pub fn read_state(&self, checkpoint: &Checkpoint) -> Result<Vec<u8>, Fatal> {
        let mut reader = self.state_reader(checkpoint)?;
        let mut bytes = Vec::with_capacity(checkpoint.state.len as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| self.damaged(checkpoint, e))?;
        Ok(bytes)
    }

    /// The checkpoint's state as a reader (for a restore that reads as it goes): it fails
    /// with `InvalidData` at its end when the bytes are not those saved; call
    /// [`StateReader::finish`] once the restore is done, to check the rest.
    pub fn state_reader(&self, checkpoint: &Checkpoint) -> Result<StateReader, Fatal> {
        let file = File::open(self.dir.join(state_name(checkpoint.state.seq)))
            .map_err(|e| self.damaged(checkpoint, e))?;
        Ok(StateReader {
            file,
            at: 0,
            expected: checkpoint.state,
            hasher: StableHasher::default(),
        })
    }

    fn damaged(&self, checkpoint: &Checkpoint, error: io::Error) -> Fatal {
        Fatal::State {
            dir: self.dir.clone(),
            problem: refused(&format!(
                "its state {} cannot be used: {error}",
                state_name(checkpoint.state.seq)
            )),
        }
    }
}

/// How long a run waits for the lock of a state directory before it refuses: a process forked
/// by the run that held it may keep the lock until it runs its program (the descriptor closes
/// on exec); another run holding it keeps it far longer.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Takes `file`'s exclusive lock, waiting at most [`LOCK_WAIT`] (`WouldBlock` after that).
fn lock_soon(file: &File) -> io::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match lock(file, false) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            done => return done,
        }
    }
}

/// The refusal of a checkpoint, with what to do.
fn refused(why: &str) -> String {
    format!(
        "{why}; nothing was touched (run with the files and options the checkpoint was made \
         with, or remove the directory to start afresh)"
    )
}

/// `state-N`.
fn state_name(seq: u64) -> String {
    format!("{STATE_PREFIX}{seq}")
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `dir/name` atomically: a temporary file in `dir`, synced, renamed over
/// the name, then `dir` synced. On failure the temporary file is removed and `dir/name` is
/// as it was.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(unique_name(TEMP_PREFIX, &format!("-{name}")));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
        return written;
    }
    let dir = File::open(dir)?;
    dir.sync_all()
}

/// Reads a state file, checking its length and checksum at its end.
pub struct StateReader {
    file: File,
    at: u64,
    expected: StateRef,
    hasher: StableHasher,
}

impl StateReader {
    /// Reads what the restore left and checks the whole file.
    pub fn finish(mut self) -> io::Result<()> {
        io::copy(&mut self, &mut io::sink()).map(|_| ())
    }
}

impl Read for StateReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.expected.len - self.at;
        let want = buf.len().min(left as usize);
        let n = if want == 0 {
            0
        } else {
            self.file.read_at(&mut buf[..want], self.at)?
        };
        if n == 0 && !buf.is_empty() {
            if self.at < self.expected.len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("truncated at byte {}", self.at),
                ));
            }
            if self.hasher.finish() != self.expected.hash {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "its checksum does not match: the file is corrupt",
                ));
            }
            return Ok(0);
        }
        self.hasher.write(&buf[..n]);
        self.at += n as u64;
        Ok(n)
    }
}

// The checkpoint file's encoding: little-endian integers, byte strings as a u32 length and
// the bytes.

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

fn put_identity(out: &mut Vec<u8>, id: FileIdentity) {
    put_u64(out, id.dev);
    put_u64(out, id.ino);
}

fn put_fingerprint(out: &mut Vec<u8>, fp: Fingerprint) {
    put_u64(out, fp.len);
    put_u64(out, fp.hash);
}

/// The checkpoint file's bytes.
pub fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    let mut body = Vec::new();
    let run = &checkpoint.run;
    put_u32(&mut body, run.parameters.degree);
    put_u32(&mut body, run.parameters.tracked);
    put_u64(&mut body, run.parameters.max_line);
    let batch = &run.batch;
    put_identity(&mut body, batch.file);
    put_u64(&mut body, batch.size);
    put_u64(&mut body, batch.mtime.0 as u64);
    put_u32(&mut body, batch.mtime.1);
    put_u64(&mut body, batch.head);
    put_u64(&mut body, batch.tail);
    match &run.stream {
        StreamSpec::Stdin => body.push(0),
        StreamSpec::Followed(path) => {
            body.push(1);
            put_bytes(&mut body, path.as_os_str().as_bytes());
        }
    }
    match checkpoint.position {
        StreamPosition::Stdin { lines, bytes } => {
            body.push(0);
            put_u64(&mut body, lines);
            put_u64(&mut body, bytes);
        }
        StreamPosition::Followed { at, lines } => {
            body.push(1);
            put_u64(&mut body, lines);
            put_identity(&mut body, at.file);
            put_fingerprint(&mut body, at.fingerprint);
            put_u64(&mut body, at.offset);
            put_u64(&mut body, at.length);
        }
    }
    put_u32(&mut body, run.outputs.len() as u32);
    for ((role, path), mark) in run.outputs.iter().zip(&checkpoint.outputs) {
        put_bytes(&mut body, role.as_bytes());
        put_bytes(&mut body, path.as_os_str().as_bytes());
        match mark.file {
            None => body.push(0),
            Some(id) => {
                body.push(1);
                put_identity(&mut body, id);
            }
        }
        put_u64(&mut body, mark.len);
        put_fingerprint(&mut body, mark.tail);
    }
    put_u64(&mut body, checkpoint.state.seq);
    put_u64(&mut body, checkpoint.state.len);
    put_u64(&mut body, checkpoint.state.hash);

    let mut out = Vec::with_capacity(MAGIC.len() + 20 + body.len());
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_u64(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    let sum = stable_hash(&out);
    put_u64(&mut out, sum);
    out
}

/// Reads a body field by field; `None` past its end.
struct Fields<'a> {
    bytes: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn path(&mut self) -> Option<PathBuf> {
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(self.bytes()?)))
    }
    fn identity(&mut self) -> Option<FileIdentity> {
        Some(FileIdentity {
            dev: self.u64()?,
            ino: self.u64()?,
        })
    }
    fn fingerprint(&mut self) -> Option<Fingerprint> {
        Some(Fingerprint {
            len: self.u64()?,
            hash: self.u64()?,
        })
    }
}

/// Reads a checkpoint file; the error says what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let header = MAGIC.len() + 12;
    if !bytes.starts_with(MAGIC) {
        let matching = bytes.iter().zip(MAGIC).take_while(|(a, b)| a == b).count();
        return Err(if matching == bytes.len() {
            format!("its {CHECKPOINT} is truncated ({} bytes)", bytes.len())
        } else {
            format!("its {CHECKPOINT} is not a checkpoint of anomaly-detect")
        });
    }
    if bytes.len() < header {
        return Err(format!(
            "its {CHECKPOINT} is truncated ({} bytes)",
            bytes.len()
        ));
    }
    let mut head = Fields {
        bytes: &bytes[MAGIC.len()..],
    };
    let version = head.u32().expect("length checked");
    if version != VERSION {
        return Err(format!(
            "its {CHECKPOINT} is of format version {version}, made by another version of \
             anomaly-detect; this one reads version {VERSION}"
        ));
    }
    let body_len = head.u64().expect("length checked");
    let expected = (header as u64).saturating_add(body_len).saturating_add(8);
    if (bytes.len() as u64) < expected {
        return Err(format!(
            "its {CHECKPOINT} is truncated ({} bytes, {expected} expected)",
            bytes.len()
        ));
    }
    if bytes.len() as u64 > expected {
        return Err(format!(
            "its {CHECKPOINT} is corrupt ({} bytes, {expected} expected)",
            bytes.len()
        ));
    }
    let (signed, sum) = bytes.split_at(bytes.len() - 8);
    if stable_hash(signed) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return Err(format!(
            "its {CHECKPOINT} is corrupt (its checksum does not match)"
        ));
    }
    decode_body(&signed[header..])
        .ok_or_else(|| format!("its {CHECKPOINT} is corrupt (its fields do not parse)"))
}

fn decode_body(body: &[u8]) -> Option<Checkpoint> {
    let mut f = Fields { bytes: body };
    let parameters = Parameters {
        degree: f.u32()?,
        tracked: f.u32()?,
        max_line: f.u64()?,
    };
    let batch = BatchIdentity {
        file: f.identity()?,
        size: f.u64()?,
        mtime: (f.u64()? as i64, f.u32()?),
        head: f.u64()?,
        tail: f.u64()?,
    };
    let stream = match f.u8()? {
        0 => StreamSpec::Stdin,
        1 => StreamSpec::Followed(f.path()?),
        _ => return None,
    };
    let position = match f.u8()? {
        0 => StreamPosition::Stdin {
            lines: f.u64()?,
            bytes: f.u64()?,
        },
        1 => {
            let lines = f.u64()?;
            let at = FollowedAt {
                file: f.identity()?,
                fingerprint: f.fingerprint()?,
                offset: f.u64()?,
                length: f.u64()?,
            };
            (at.offset <= at.length).then_some(StreamPosition::Followed { at, lines })?
        }
        _ => return None,
    };
    let count = f.u32()? as usize;
    let mut outputs = Vec::new();
    let mut marks = Vec::new();
    for _ in 0..count.min(body.len()) {
        let role = String::from_utf8(f.bytes()?.to_vec()).ok()?;
        let path = f.path()?;
        let file = match f.u8()? {
            0 => None,
            1 => Some(f.identity()?),
            _ => return None,
        };
        marks.push(OutputMark {
            file,
            len: f.u64()?,
            tail: f.fingerprint()?,
        });
        outputs.push((role, path));
    }
    let state = StateRef {
        seq: f.u64()?,
        len: f.u64()?,
        hash: f.u64()?,
    };
    if !f.bytes.is_empty() || outputs.len() != count {
        return None;
    }
    Some(Checkpoint {
        run: RunIdentity {
            parameters,
            batch,
            stream,
            outputs,
        },
        position,
        outputs: marks,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's files in a temporary folder: a batch log, a followed stream, two outputs.
    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Files {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("batch.json"),
                "{\"D\":\"2\",\"T\":\"50\"}\n{}\n",
            )
            .unwrap();
            std::fs::write(dir.path().join("stream.json"), "{}\n").unwrap();
            std::fs::write(dir.path().join("out.json"), "").unwrap();
            Files { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn state(&self) -> PathBuf {
            self.path("state")
        }

        fn run(&self) -> RunIdentity {
            self.run_with(
                PARAMS,
                "stream.json",
                &[("OUTPUT", "out.json"), ("--feed", "-")],
            )
        }

        fn run_with(
            &self,
            params: Parameters,
            stream: &str,
            outputs: &[(&str, &str)],
        ) -> RunIdentity {
            let stream = if stream == "-" {
                PathBuf::from("-")
            } else {
                self.path(stream)
            };
            let outputs: Vec<(&str, PathBuf)> = outputs
                .iter()
                .map(|(role, path)| {
                    (
                        *role,
                        if *path == "-" {
                            PathBuf::from("-")
                        } else {
                            self.path(path)
                        },
                    )
                })
                .collect();
            let outputs: Vec<(&str, &Path)> =
                outputs.iter().map(|(r, p)| (*r, p.as_path())).collect();
            RunIdentity::new(params, &self.path("batch.json"), &stream, &outputs).unwrap()
        }

        /// A state directory with one checkpoint saved by [`Self::run`].
        fn saved(&self) {
            let (mut dir, none) = StateDir::open(&self.state(), self.run()).unwrap();
            assert!(none.is_none());
            dir.save(b"the state", &position(), &marks(&self.path("out.json")))
                .unwrap();
        }

        /// What the state directory holds, for "nothing was touched".
        fn contents(&self) -> Vec<(String, Vec<u8>)> {
            let mut all: Vec<_> = std::fs::read_dir(self.state())
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            all.sort();
            all
        }

        /// Opens the state directory for `run`: the refusal's message, checked to name DIR and
        /// to have touched nothing.
        fn refusal(&self, run: RunIdentity) -> String {
            let before = self.contents();
            let error = StateDir::open(&self.state(), run).unwrap_err();
            assert!(matches!(error, Fatal::State { .. }), "{error:?}");
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("{}: ", self.state().display())),
                "{message}"
            );
            assert!(message.contains("nothing was touched"), "{message}");
            assert_eq!(self.contents(), before, "nothing touched");
            message
        }
    }

    const PARAMS: Parameters = Parameters {
        degree: 2,
        tracked: 50,
        max_line: 1 << 26,
    };

    fn position() -> StreamPosition {
        StreamPosition::Followed {
            at: FollowedAt {
                file: FileIdentity { dev: 1, ino: 2 },
                fingerprint: Fingerprint { len: 3, hash: 4 },
                offset: 3,
                length: 10,
            },
            lines: 1,
        }
    }

    fn marks(out: &Path) -> Vec<OutputMark> {
        let file = File::open(out).unwrap();
        vec![
            OutputMark::of(&file, 0).unwrap(),
            OutputMark {
                file: None,
                len: 7,
                tail: Fingerprint::default(),
            },
        ]
    }

    #[test]
    fn a_checkpoint_is_read_back_as_saved_and_its_state_checked() {
        let files = Files::new();
        files.saved();
        let (dir, checkpoint) = StateDir::open(&files.state(), files.run()).unwrap();
        let checkpoint = checkpoint.unwrap();
        assert_eq!(checkpoint.run, files.run());
        assert_eq!(checkpoint.position, position());
        assert_eq!(checkpoint.outputs, marks(&files.path("out.json")));
        assert_eq!(dir.read_state(&checkpoint).unwrap(), b"the state");
        let mut reader = dir.state_reader(&checkpoint).unwrap();
        let mut first = [0u8; 3];
        reader.read_exact(&mut first).unwrap();
        reader.finish().unwrap();
        // Standard input's position, encoded and decoded.
        let stdin = Checkpoint {
            position: StreamPosition::Stdin {
                lines: 5,
                bytes: 99,
            },
            run: files.run_with(PARAMS, "-", &[("OUTPUT", "-")]),
            outputs: vec![OutputMark {
                file: None,
                len: 0,
                tail: Fingerprint::default(),
            }],
            state: StateRef {
                seq: 3,
                len: 0,
                hash: stable_hash(b""),
            },
        };
        assert_eq!(decode(&encode(&stdin)).unwrap(), stdin);
    }

    #[test]
    fn a_new_checkpoint_replaces_the_previous_one_and_its_state() {
        let files = Files::new();
        files.saved();
        let (mut dir, _) = StateDir::open(&files.state(), files.run()).unwrap();
        dir.save(b"newer", &position(), &marks(&files.path("out.json")))
            .unwrap();
        drop(dir);
        let names: Vec<String> = files.contents().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["LOCK", "checkpoint", "state-2"]);
        let (dir, checkpoint) = StateDir::open(&files.state(), files.run()).unwrap();
        assert_eq!(dir.read_state(&checkpoint.unwrap()).unwrap(), b"newer");
    }

    #[test]
    fn files_left_by_a_run_killed_while_saving_are_removed_when_the_checkpoint_fits() {
        let files = Files::new();
        files.saved();
        for leftover in [
            ".tmp-0123456789ab-checkpoint",
            ".tmp-0123456789ab-state-2",
            "state-2",
        ] {
            std::fs::write(files.state().join(leftover), "x").unwrap();
        }
        std::fs::write(files.state().join("notes"), "kept").unwrap();
        let (dir, checkpoint) = StateDir::open(&files.state(), files.run()).unwrap();
        assert_eq!(dir.read_state(&checkpoint.unwrap()).unwrap(), b"the state");
        let names: Vec<String> = files.contents().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["LOCK", "checkpoint", "notes", "state-1"]);
    }

    #[test]
    fn a_second_run_on_one_state_directory_is_refused() {
        let files = Files::new();
        let (held, _) = StateDir::open(&files.state(), files.run()).unwrap();
        let message = StateDir::open(&files.state(), files.run())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("another live run uses this state directory"),
            "{message}"
        );
        drop(held);
        StateDir::open(&files.state(), files.run()).unwrap();
    }

    #[test]
    fn a_state_directory_whose_parent_is_missing_is_refused() {
        let files = Files::new();
        let error = StateDir::open(&files.path("no/state"), files.run()).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("cannot create it: its parent directory does not exist")
        );
    }

    #[test]
    fn a_checkpoint_of_another_run_is_refused_with_the_reason() {
        let files = Files::new();
        files.saved();
        let outputs = [("OUTPUT", "out.json"), ("--feed", "-")];
        let other = |degree, tracked, max_line| Parameters {
            degree,
            tracked,
            max_line,
        };
        for (params, why) in [
            (
                other(3, 50, 1 << 26),
                "made with D=2 T=50; this run has D=3 T=50",
            ),
            (
                other(2, 10, 1 << 26),
                "made with D=2 T=50; this run has D=2 T=10",
            ),
            (
                other(2, 50, 100),
                "made with D=2 T=50 (lines up to 67108864 bytes); this run has D=2 T=50 (lines \
                 up to 100 bytes)",
            ),
        ] {
            let message = files.refusal(files.run_with(params, "stream.json", &outputs));
            assert!(
                message.contains(&format!(": the checkpoint was {why}; ")),
                "{message}"
            );
        }
        let message = files.refusal(files.run_with(PARAMS, "-", &outputs));
        assert!(
            message.contains("reads the stream from")
                && message.contains("this run reads standard input"),
            "{message}"
        );
        std::fs::write(files.path("other.json"), "").unwrap();
        let message = files.refusal(files.run_with(PARAMS, "other.json", &outputs));
        assert!(message.contains("other.json"), "{message}");
        for outputs in [
            &[("OUTPUT", "other-out.json"), ("--feed", "-")][..],
            &[("OUTPUT", "out.json")][..],
            &[("OUTPUT", "out.json"), ("--recommend", "-")][..],
        ] {
            let message = files.refusal(files.run_with(PARAMS, "stream.json", outputs));
            assert!(
                message.contains("the checkpoint's outputs are OUTPUT"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_checkpoint_of_another_batch_log_is_refused() {
        let files = Files::new();
        files.saved();
        let batch = files.path("batch.json");
        let time = std::fs::metadata(&batch).unwrap().modified().unwrap();
        let set_time = |time| {
            File::options()
                .write(true)
                .open(&batch)
                .unwrap()
                .set_modified(time)
                .unwrap()
        };
        // Longer.
        std::fs::write(&batch, "{\"D\":\"2\",\"T\":\"50\"}\n{}\n{}\n").unwrap();
        assert!(
            files
                .refusal(files.run())
                .contains("another batch log (22 bytes then, 25 now)")
        );
        // Same size, other bytes, same time.
        std::fs::write(&batch, "{\"D\":\"3\",\"T\":\"50\"}\n{}\n").unwrap();
        set_time(time);
        assert!(
            files
                .refusal(files.run())
                .contains("another batch log (its bytes changed)")
        );
        // Same bytes, touched.
        std::fs::write(&batch, "{\"D\":\"2\",\"T\":\"50\"}\n{}\n").unwrap();
        set_time(time + std::time::Duration::from_secs(5));
        assert!(
            files
                .refusal(files.run())
                .contains("another batch log (its modification time changed)")
        );
        // The same content with its time, as a copy keeps it (`cp -p`): the same log.
        std::fs::remove_file(&batch).unwrap();
        std::fs::write(&batch, "{\"D\":\"2\",\"T\":\"50\"}\n{}\n").unwrap();
        set_time(time);
        StateDir::open(&files.state(), files.run()).unwrap();
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_whatever_its_damage() {
        let files = Files::new();
        files.saved();
        let path = files.state().join(CHECKPOINT);
        let good = std::fs::read(&path).unwrap();
        let refused_as = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            files.refusal(files.run())
        };
        // Truncated anywhere, down to nothing.
        for len in 0..good.len() {
            let message = refused_as(&good[..len]);
            assert!(message.contains("is truncated"), "{len}: {message}");
        }
        // Any bit flipped.
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            let message = refused_as(&bad);
            let expected = if at < MAGIC.len() {
                "is not a checkpoint of anomaly-detect"
            } else if at < MAGIC.len() + 4 {
                "is of format version"
            } else if at < MAGIC.len() + 12 {
                "bytes, " // a length that does not fit: truncated or corrupt
            } else {
                "is corrupt (its checksum does not match)"
            };
            assert!(message.contains(expected), "byte {at}: {message}");
        }
        let mut longer = good.clone();
        longer.push(b'\n');
        assert!(refused_as(&longer).contains("is corrupt"));
        // Another format version, checksum and all.
        let mut other = good.clone();
        other[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&2u32.to_le_bytes());
        assert!(refused_as(&other).contains("is of format version 2, made by another version of anomaly-detect; this one reads version 1"));
        assert!(refused_as(b"{\"D\": 2}\n").contains("is not a checkpoint of anomaly-detect"));
        // A body whose fields do not parse, with a right checksum.
        let mut odd = Vec::from(&MAGIC[..]);
        odd.extend_from_slice(&VERSION.to_le_bytes());
        odd.extend_from_slice(&3u64.to_le_bytes());
        odd.extend_from_slice(b"abc");
        let sum = stable_hash(&odd);
        odd.extend_from_slice(&sum.to_le_bytes());
        assert!(refused_as(&odd).contains("is corrupt (its fields do not parse)"));
        std::fs::write(&path, &good).unwrap();
        StateDir::open(&files.state(), files.run()).unwrap();
    }

    #[test]
    fn a_damaged_or_missing_state_file_is_refused() {
        let files = Files::new();
        files.saved();
        let state = files.state().join("state-1");
        std::fs::write(&state, "the stat").unwrap();
        assert!(
            files
                .refusal(files.run())
                .contains("state-1 is damaged: 8 bytes, 9 expected")
        );
        std::fs::remove_file(&state).unwrap();
        assert!(
            files
                .refusal(files.run())
                .contains("its state state-1 cannot be read")
        );
        // Same length, other bytes: found when read.
        std::fs::write(&state, "the State").unwrap();
        let (dir, checkpoint) = StateDir::open(&files.state(), files.run()).unwrap();
        let checkpoint = checkpoint.unwrap();
        let message = dir.read_state(&checkpoint).unwrap_err().to_string();
        assert!(
            message.contains("its state state-1 cannot be used: its checksum does not match"),
            "{message}"
        );
        let mut reader = dir.state_reader(&checkpoint).unwrap();
        reader.read_exact(&mut [0u8; 2]).unwrap();
        assert!(reader.finish().is_err());
    }

    /// A full disk while a checkpoint is written: the save fails naming the file, and the
    /// previous checkpoint and state stay usable. Needs the right to mount a tmpfs (skipped
    /// otherwise); unmounted on every path.
    #[test]
    fn a_full_disk_while_saving_keeps_the_previous_checkpoint() {
        let files = Files::new();
        let state = files.state();
        std::fs::create_dir(&state).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&state)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            crate::stderr::line("skipped: mounting a tmpfs is not permitted here");
            return;
        }
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
        let _unmount = Unmount(state.clone());
        files.saved();
        let (mut dir, _) = StateDir::open(&state, files.run()).unwrap();
        let error = dir
            .save(
                &vec![7u8; 1 << 20],
                &position(),
                &marks(&files.path("out.json")),
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("state-2: cannot write: No space left on device"),
            "{error}"
        );
        // A checkpoint file that does not fit either: the state is too big, then a small one
        // whose checkpoint is written fine.
        drop(dir);
        let names: Vec<String> = files.contents().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["LOCK", "checkpoint", "state-1"],
            "no temporary file left"
        );
        let (dir, checkpoint) = StateDir::open(&state, files.run()).unwrap();
        assert_eq!(dir.read_state(&checkpoint.unwrap()).unwrap(), b"the state");
    }
}
