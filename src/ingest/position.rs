//! Where a live stream stands, so that a restarted run reads on exactly where a checkpoint left
//! it: for a followed file its identity (device, inode and a fingerprint of its first bytes)
//! and byte offset, for standard input the bytes and lines consumed.
//!
//! [`ResumedFollow`] is the reader of a followed file that a live run uses with `--state`: it
//! starts at a saved position, finds the file it was reading even when that file was rotated
//! while the program was down (rename + create, or copytruncate with the copy beside it, as
//! logrotate leaves `NAME.1`), reads that file to its end first, then follows the path from
//! its start. Its [`Positions`] handle turns "bytes read up to the end of a block" (see
//! [`read_blocks_counted`](crate::ingest::input::read_blocks_counted)) into a
//! [`StreamPosition`] at any moment, so a checkpoint records where the decided lines end.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Fatal, shown};
use crate::ingest::input::{BlockEnd, FollowedFile};

/// How many of a file's first bytes its fingerprint covers (Filebeat's default): enough to
/// tell two logs apart by their first lines, few enough to read at every checkpoint.
pub const FINGERPRINT_BYTES: u64 = 1024;

/// A 64-bit hash whose value is fixed by this code alone (no seed, no library version), for
/// what is written to disk and compared by a later run: fingerprints, checksums. Not meant to
/// resist crafted collisions: it tells apart files and finds corruption. Four lanes of 8
/// bytes, each a multiply and a rotation per word, so it runs at memory speed.
#[derive(Debug, Clone)]
pub struct StableHasher {
    lanes: [u64; 4],
    stripe: [u8; 32],
    buffered: usize,
    len: u64,
}

const PRIME: u64 = 0x9E37_79B1_85EB_CA87;
const SEEDS: [u64; 4] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
    0x082E_FA98_EC4E_6C89,
];

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher {
            lanes: SEEDS,
            stripe: [0; 32],
            buffered: 0,
            len: 0,
        }
    }
}

impl StableHasher {
    fn mix_stripe(lanes: &mut [u64; 4], stripe: &[u8]) {
        for (lane, word) in lanes.iter_mut().zip(stripe.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            *lane = (*lane ^ word).wrapping_mul(PRIME).rotate_left(31);
        }
    }

    pub fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.buffered > 0 {
            let take = (32 - self.buffered).min(bytes.len());
            self.stripe[self.buffered..self.buffered + take].copy_from_slice(&bytes[..take]);
            self.buffered += take;
            bytes = &bytes[take..];
            if self.buffered < 32 {
                return;
            }
            let stripe = self.stripe;
            Self::mix_stripe(&mut self.lanes, &stripe);
            self.buffered = 0;
        }
        let mut stripes = bytes.chunks_exact(32);
        for stripe in &mut stripes {
            Self::mix_stripe(&mut self.lanes, stripe);
        }
        let rest = stripes.remainder();
        self.stripe[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    pub fn finish(&self) -> u64 {
        let mut lanes = self.lanes;
        if self.buffered > 0 {
            let mut last = [0u8; 32];
            last[..self.buffered].copy_from_slice(&self.stripe[..self.buffered]);
            Self::mix_stripe(&mut lanes, &last);
        }
        let mut h = self.len.wrapping_mul(PRIME);
        for (i, lane) in lanes.iter().enumerate() {
            h = (h ^ lane.rotate_left(17 * i as u32)).wrapping_mul(PRIME);
        }
        // splitmix64's finaliser: every input bit reaches every output bit.
        h ^= h >> 30;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^ (h >> 31)
    }
}

/// [`StableHasher`] over one byte string.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hasher = StableHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// A file's device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
}

impl FileIdentity {
    pub fn of(meta: &std::fs::Metadata) -> FileIdentity {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The hash of a file's first `len` bytes ([`stable_hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    /// The bytes covered: at most [`FINGERPRINT_BYTES`].
    pub len: u64,
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `file`'s first `min(upto, FINGERPRINT_BYTES)` bytes (fewer when the
    /// file is shorter).
    pub fn of(file: &File, upto: u64) -> io::Result<Fingerprint> {
        Fingerprint::of_range(file, 0, upto.min(FINGERPRINT_BYTES))
    }

    /// The hash of `file`'s bytes `from..from + len` (fewer when the file is shorter).
    pub fn of_range(file: &File, from: u64, len: u64) -> io::Result<Fingerprint> {
        let mut bytes = vec![0u8; len as usize];
        let got = Fingerprint::read_range(file, from, &mut bytes)?;
        Ok(Fingerprint {
            len: got as u64,
            hash: stable_hash(&bytes[..got]),
        })
    }

    /// Reads `file`'s first bytes into `bytes`: how many it holds.
    fn read_upto(file: &File, bytes: &mut [u8]) -> io::Result<usize> {
        Fingerprint::read_range(file, 0, bytes)
    }

    /// Reads `file`'s bytes from `from` into `bytes`: how many it holds.
    fn read_range(file: &File, from: u64, bytes: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < bytes.len() {
            match file.read_at(&mut bytes[got..], from + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Whether `file` starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> bool {
        Fingerprint::of_range(file, 0, self.len).is_ok_and(|now| now == *self)
    }
}

/// Where a followed file was read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FollowedAt {
    pub file: FileIdentity,
    /// Of the file's first bytes, up to `offset` (bytes read, which never change in a log
    /// that is only appended to).
    pub fingerprint: Fingerprint,
    /// Bytes of the file read: the start of the next line.
    pub offset: u64,
    /// The file's length when the position was taken (at least `offset`): the bytes a
    /// rotation that lost the file is known to have lost.
    pub length: u64,
}

/// Where a live stream stands after the lines a run has decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPosition {
    /// `--follow`: the file and offset, and the stream's lines read in all (every file).
    Followed { at: FollowedAt, lines: u64 },
    /// Standard input: the lines and bytes consumed since the first run on this state.
    Stdin { lines: u64, bytes: u64 },
}

impl StreamPosition {
    /// The stream's lines read in all.
    pub fn lines(&self) -> u64 {
        match self {
            StreamPosition::Followed { lines, .. } | StreamPosition::Stdin { lines, .. } => *lines,
        }
    }
}

/// Which file the bytes handed out from some count on come from.
struct Segment {
    /// Bytes handed out before this segment's first.
    start: u64,
    file: Arc<File>,
    id: FileIdentity,
    /// The file offset of the segment's first byte.
    offset: u64,
    /// The file's first bytes (up to [`FINGERPRINT_BYTES`]), kept as they are read: a
    /// checkpoint's fingerprint is of what was read, though the file may be truncated and
    /// rewritten (copytruncate) by the time the checkpoint is taken.
    prefix: Vec<u8>,
}

struct Log {
    segments: VecDeque<Segment>,
    /// Lines and bytes of the stream consumed before this run (from the checkpoint).
    base_lines: u64,
    base_bytes: u64,
    /// The files read from their start after the checkpoint's file (the journal's entries),
    /// each with the count of bytes handed out before its first (0: found in the journal when
    /// the run started).
    generations: Vec<(u64, Generation)>,
    /// Where the journal goes (`DIR/stream-files`): given its text whenever it changes.
    journal: Option<Journal>,
    /// The journal was written by this run (else it may still hold an earlier run's files).
    written: bool,
}

/// Writes the journal's text durably.
pub type Journal = Box<dyn FnMut(&str) -> io::Result<()> + Send>;

/// A file a followed stream read from its start: its identity and the fingerprint of its
/// first bytes as they were read. A run records each in the journal before handing out its
/// bytes, so that a run resumed at an earlier checkpoint reads, after the checkpoint's file,
/// every file read since, in order, even when they were all rotated away meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    pub file: FileIdentity,
    pub fingerprint: Fingerprint,
}

impl Generation {
    /// The journal's text: one line per file, `dev ino len hash`.
    pub fn text(generations: &[Generation]) -> String {
        generations
            .iter()
            .map(|g| {
                format!(
                    "{} {} {} {}\n",
                    g.file.dev, g.file.ino, g.fingerprint.len, g.fingerprint.hash
                )
            })
            .collect()
    }

    /// Reads [`Generation::text`]; `None` when it is damaged.
    pub fn parse(text: &str) -> Option<Vec<Generation>> {
        text.lines()
            .map(|line| {
                let fields: Vec<u64> = line
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?;
                let &[dev, ino, len, hash] = &fields[..] else {
                    return None;
                };
                Some(Generation {
                    file: FileIdentity { dev, ino },
                    fingerprint: Fingerprint { len, hash },
                })
            })
            .collect()
    }
}

impl Log {
    fn write_journal(&mut self) -> io::Result<()> {
        let text = Generation::text(&self.generations.iter().map(|g| g.1).collect::<Vec<_>>());
        match &mut self.journal {
            Some(journal) => {
                journal(&text)?;
                self.written = true;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Turns a count of bytes read from a stream into a [`StreamPosition`]; shared between the
/// reader (on its thread) and the run, which asks at its checkpoints.
#[derive(Clone)]
pub struct Positions {
    log: Arc<Mutex<Log>>,
    /// Standard input: no file, only counts.
    stdin: bool,
}

impl Positions {
    fn new(stdin: bool, base_lines: u64, base_bytes: u64) -> Positions {
        Positions {
            log: Arc::new(Mutex::new(Log {
                segments: VecDeque::new(),
                base_lines,
                base_bytes,
                generations: Vec::new(),
                journal: None,
                written: false,
            })),
            stdin,
        }
    }

    /// The positions of standard input, counted on from a checkpoint's (`None`: the first
    /// run).
    pub fn stdin(from: Option<StreamPosition>) -> Positions {
        match from {
            Some(StreamPosition::Stdin { lines, bytes }) => Positions::new(true, lines, bytes),
            _ => Positions::new(true, 0, 0),
        }
    }

    /// Sends the journal of the files read from their start to `journal` from now on.
    pub fn set_journal(&self, journal: Journal) {
        self.lock().journal = Some(journal);
    }

    /// Records that the bytes handed out from `start` on are the start of the file
    /// `generation`, and writes the journal (before those bytes are handed out).
    fn read_from_start(&self, start: u64, generation: Generation) -> io::Result<()> {
        let mut log = self.lock();
        log.generations.push((start, generation));
        log.write_journal()
    }

    /// The first of the journal's files still to come is read from `start` on.
    fn reached(&self, start: u64) {
        let mut log = self.lock();
        if let Some(entry) = log.generations.iter_mut().find(|g| g.0 == u64::MAX) {
            entry.0 = start;
        }
    }

    /// Forgets the journal's files read before the stream position last taken by
    /// [`Positions::at`], once the checkpoint holding that position is saved.
    pub fn saved(&self) -> io::Result<()> {
        let mut log = self.lock();
        let Some(front) = log.segments.front().map(|s| s.start) else {
            return Ok(());
        };
        let before = log.generations.len();
        log.generations.retain(|&(start, _)| start >= front);
        if log.generations.len() == before && log.written {
            return Ok(());
        }
        log.write_journal()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that the bytes handed out from `start` on come from `file` at `offset`.
    fn push(&self, start: u64, file: Arc<File>, id: FileIdentity, offset: u64) {
        let mut log = self.lock();
        if let Some(last) = log.segments.back()
            && last.id == id
            && last.offset + (start - last.start) == offset
            && Arc::ptr_eq(&last.file, &file)
        {
            return; // contiguous
        }
        // The file's first bytes as it holds them now (the file just found to hold the
        // offset, or just opened): bytes of a log only appended to never change, and a
        // position at the file's start is told apart from a file rewritten since by them.
        let mut prefix = vec![0u8; FINGERPRINT_BYTES as usize];
        let got = Fingerprint::read_upto(&file, &mut prefix).unwrap_or(0);
        prefix.truncate(got);
        log.segments.push_back(Segment {
            start,
            file,
            id,
            offset,
            prefix,
        });
    }

    /// The fingerprint of the last segment's file up to `offset`, from the bytes kept as
    /// they were read (`None` when too few were kept).
    fn prefix_fingerprint(&self, offset: u64) -> Option<Fingerprint> {
        let log = self.lock();
        let last = log.segments.back()?;
        let covered = offset.min(FINGERPRINT_BYTES);
        (last.prefix.len() as u64 >= covered).then(|| Fingerprint {
            len: covered,
            hash: stable_hash(&last.prefix[..covered as usize]),
        })
    }

    /// Notes the bytes handed out from `start` on (called by the reader after it recorded
    /// their segment): the last segment's file prefix grows with them while it is short.
    fn note(&self, start: u64, bytes: &[u8]) {
        let mut log = self.lock();
        let Some(last) = log.segments.back_mut() else {
            return;
        };
        let kept = last.prefix.len() as u64;
        if kept < FINGERPRINT_BYTES
            && start >= last.start
            && last.offset + (start - last.start) == kept
        {
            let n = bytes.len().min((FINGERPRINT_BYTES - kept) as usize);
            last.prefix.extend_from_slice(&bytes[..n]);
        }
    }

    /// Where the stream stands once the block ending at `end` is decided. Positions before it
    /// are forgotten (a checkpoint never goes back).
    pub fn at(&self, end: BlockEnd) -> io::Result<StreamPosition> {
        let mut log = self.lock();
        let lines = log.base_lines + end.lines;
        if self.stdin {
            let bytes = log.base_bytes + end.bytes;
            return Ok(StreamPosition::Stdin { lines, bytes });
        }
        while log.segments.len() > 1 && log.segments[1].start <= end.bytes {
            log.segments.pop_front();
        }
        let Some(segment) = log.segments.front() else {
            return Err(io::Error::other("no stream position recorded"));
        };
        let offset = segment.offset + end.bytes.saturating_sub(segment.start);
        let kept = segment.prefix.len() as u64;
        let fingerprint = if kept >= offset.min(FINGERPRINT_BYTES) {
            Fingerprint {
                len: kept,
                hash: stable_hash(&segment.prefix),
            }
        } else {
            Fingerprint::of(&segment.file, offset)?
        };
        let at = FollowedAt {
            file: segment.id,
            fingerprint,
            offset,
            length: segment.file.metadata()?.len().max(offset),
        };
        Ok(StreamPosition::Followed { at, lines })
    }
}

/// A rotated file read from a saved offset to its end, before the followed path.
struct RotatedTail {
    file: Arc<File>,
    id: FileIdentity,
    offset: u64,
    /// A file the journal names after the checkpoint's (read from its start).
    generation: bool,
}

/// A followed file resumed at a saved position: the rotated copy that holds the rest of the
/// file being read when the checkpoint was taken (if it was rotated meanwhile), then the path
/// followed like `tail -F` ([`FollowedFile`]). Hands out whole lines at the switch: a copy's
/// last line without `\n` gets one.
pub struct ResumedFollow {
    /// Rotated files to read before the path: the checkpoint's file from its offset, then
    /// the files the journal names after it, each from its start.
    tails: VecDeque<RotatedTail>,
    /// The last byte handed out was not `\n`.
    open_line: bool,
    follow: FollowedFile,
    /// The followed file's descriptor as last recorded, shared with [`Positions`].
    follow_file: Option<(Arc<File>, (u64, u64))>,
    /// Bytes handed out so far.
    handed: u64,
    /// The path is read after rotated files (the checkpoint's file was not at the path): its
    /// file, read from its start, goes in the journal even when none of their bytes were left
    /// to hand out.
    after_rotated: bool,
    positions: Positions,
}

/// What [`ResumedFollow::resume`] found.
pub struct Resumed {
    pub reader: ResumedFollow,
    pub positions: Positions,
    /// One warning when lines could not be read (the file was rotated away and is gone), or
    /// when a rotated copy is read first.
    pub warning: Option<String>,
}

impl ResumedFollow {
    /// Follows `path` from its start (a first run on a state directory).
    pub fn start(path: &Path) -> Result<Resumed, Fatal> {
        let file = File::open(path).map_err(|error| read_error(path, error))?;
        let follow = FollowedFile::resume(path, file, 0).map_err(|e| read_error(path, e))?;
        Ok(ResumedFollow::assemble(
            VecDeque::new(),
            follow,
            Positions::new(false, 0, 0),
            None,
        ))
    }

    fn assemble(
        tails: VecDeque<RotatedTail>,
        follow: FollowedFile,
        positions: Positions,
        warning: Option<String>,
    ) -> Resumed {
        {
            // The journal's files to come stay in it until they are read.
            let mut log = positions.lock();
            log.generations = tails
                .iter()
                .filter(|t| t.generation)
                .map(|t| {
                    let generation = Generation {
                        file: t.id,
                        fingerprint: Fingerprint::of(&t.file, FINGERPRINT_BYTES)
                            .unwrap_or_default(),
                    };
                    (u64::MAX, generation)
                })
                .collect();
        }
        let mut reader = ResumedFollow {
            after_rotated: !tails.is_empty(),
            tails,
            open_line: false,
            follow,
            follow_file: None,
            handed: 0,
            positions: positions.clone(),
        };
        match reader.tails.front() {
            Some(tail) => positions.push(0, tail.file.clone(), tail.id, tail.offset),
            None => {
                let (_, _, position) = reader.follow.reading();
                reader.record_follow_at(0, position);
            }
        }
        Resumed {
            reader,
            positions,
            warning,
        }
    }

    /// Follows `path` on from `saved`, `lines` lines into the stream: the file at the path
    /// when it is the one that was read (same device and inode and first bytes, or the same
    /// first bytes after a copy) and holds the offset; else a file beside it that is the one
    /// that was read (logrotate's `NAME.1` first, then any file of the folder with its inode
    /// or its first bytes), read from the offset to its end, then the path from its start.
    /// When neither holds the offset, the lines after it are gone: one warning says how many
    /// bytes at least, and the path is read from its start. `journal`: the files earlier runs
    /// read from their start ([`Generation`]); those after the checkpoint's file that are no
    /// longer at the path (rotated away while the program was down) are found beside it and
    /// read, in order, between the checkpoint's file and the path.
    pub fn resume(
        path: &Path,
        saved: &FollowedAt,
        lines: u64,
        journal: &[Generation],
    ) -> Result<Resumed, Fatal> {
        let fail = |error| read_error(path, error);
        let file = File::open(path).map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        let positions = Positions::new(false, lines, 0);
        let holds = |file: &File, meta: &std::fs::Metadata| {
            meta.is_file() && meta.len() >= saved.offset && saved.fingerprint.matches(file)
        };
        let same = FileIdentity::of(&meta) == saved.file;
        if same && holds(&file, &meta) {
            let follow = FollowedFile::resume(path, file, saved.offset).map_err(fail)?;
            return Ok(ResumedFollow::assemble(
                VecDeque::new(),
                follow,
                positions,
                None,
            ));
        }
        let found = find_rotated(path, saved, FileIdentity::of(&meta)).map_err(fail)?;
        // The path itself, a copy of the file read (same first bytes), when nothing beside
        // it is the file by its inode.
        let copy_in_place = !same && saved.fingerprint.len > 0 && holds(&file, &meta);
        if copy_in_place && !matches!(found, Some((_, _, true))) {
            let follow = FollowedFile::resume(path, file, saved.offset).map_err(fail)?;
            return Ok(ResumedFollow::assemble(
                VecDeque::new(),
                follow,
                positions,
                None,
            ));
        }
        let now = FileIdentity::of(&meta);
        let path_file = file.try_clone().map_err(fail)?;
        let follow = FollowedFile::resume(path, file, 0).map_err(fail)?;
        match found {
            Some((rotated, copy, _)) => {
                let copy_meta = copy.metadata().map_err(fail)?;
                let mut tails = VecDeque::new();
                let mut shown_tails =
                    vec![format!("{} from byte {}", shown(&rotated), saved.offset)];
                // The files read after it, by the journal: the last entry that is this file
                // (by its first bytes) and every one after it (all when none is).
                let after = journal
                    .iter()
                    .rposition(|g| g.fingerprint.len > 0 && g.fingerprint.matches(&copy))
                    .map_or(0, |i| i + 1);
                tails.push_back(RotatedTail {
                    id: FileIdentity::of(&copy_meta),
                    file: Arc::new(copy),
                    offset: saved.offset,
                    generation: false,
                });
                let (more, shown_more, missing) =
                    journal_tails(path, &journal[after..], now, &path_file).map_err(fail)?;
                tails.extend(more);
                shown_tails.extend(shown_more);
                let mut warning = format!(
                    "warning: {}: rotated while the run was stopped; reading {} to its end \
                     first, then the new file from its start",
                    shown(path),
                    shown_tails.join(", then ")
                );
                warning.push_str(&missing_sentence(&missing));
                Ok(ResumedFollow::assemble(
                    tails,
                    follow,
                    positions,
                    Some(warning),
                ))
            }
            None => {
                // The files read after it (by the journal) may still be beside the path.
                let (tails, shown_more, missing) =
                    journal_tails(path, journal, now, &path_file).map_err(fail)?;
                let lost = saved.length - saved.offset;
                let warning = format!(
                    "warning: {}: the file read when the run stopped is gone (rotated away and \
                     not found beside it): the lines after its byte {} could not be read ({} \
                     bytes known lost{}); reading {}{} from its start",
                    shown(path),
                    saved.offset,
                    lost,
                    if lost == 0 {
                        ", maybe more"
                    } else {
                        " at least"
                    },
                    shown_more
                        .iter()
                        .map(|s| format!("{s}, then "))
                        .collect::<String>(),
                    shown(path)
                ) + &missing_sentence(&missing);
                let mut resumed =
                    ResumedFollow::assemble(tails.into(), follow, positions, Some(warning));
                // The path's file is not the checkpoint's: its start goes in the journal.
                resumed.reader.after_rotated = true;
                Ok(resumed)
            }
        }
    }
}

/// The files `journal` names (read from their start after the checkpoint's file, in order),
/// found beside `path`, up to the path's own file (`now`, `path_file`): their tails, how the
/// warning names them, and the inodes of those not found.
fn journal_tails(
    path: &Path,
    journal: &[Generation],
    now: FileIdentity,
    path_file: &File,
) -> io::Result<(Vec<RotatedTail>, Vec<String>, Vec<String>)> {
    let (mut tails, mut shown_tails, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for generation in journal {
        if generation.file == now && generation.fingerprint.matches(path_file) {
            break; // the path's file: read next, from its start
        }
        let at = FollowedAt {
            file: generation.file,
            fingerprint: generation.fingerprint,
            offset: 0,
            length: 0,
        };
        match find_rotated(path, &at, now)? {
            Some((name, file, _)) => {
                shown_tails.push(format!("{} from its start", shown(&name)));
                tails.push(RotatedTail {
                    id: FileIdentity::of(&file.metadata()?),
                    file: Arc::new(file),
                    offset: 0,
                    generation: true,
                });
            }
            None => missing.push(generation.file.ino.to_string()),
        }
    }
    Ok((tails, shown_tails, missing))
}

/// The warning's sentence for the journal's files not found (empty when all were).
fn missing_sentence(missing: &[String]) -> String {
    if missing.is_empty() {
        return String::new();
    }
    format!(
        "; the files read after it with inode {} are gone (rotated away and not found beside \
         it): their lines could not be read",
        missing.join(", ")
    )
}

fn read_error(path: &Path, error: io::Error) -> Fatal {
    Fatal::Read {
        path: path.to_path_buf(),
        error,
    }
}

/// The file beside `path` that holds the rest of the file read at `saved`: its path, the file,
/// and whether it was found by its inode (else by its first bytes). `NAME.1` is looked at
/// first, then every regular file of the folder in name order; `now` (the path's file) is
/// never one.
fn find_rotated(
    path: &Path,
    saved: &FollowedAt,
    now: FileIdentity,
) -> io::Result<Option<(PathBuf, File, bool)>> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut names: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    if let Some(name) = path.file_name() {
        let mut first = name.to_os_string();
        first.push(".1");
        let first = dir.join(first);
        names.retain(|p| *p != first);
        names.insert(0, first);
    }
    let mut by_bytes = None;
    for candidate in names {
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        let id = FileIdentity::of(&meta);
        if !meta.is_file() || id == now || meta.len() < saved.offset {
            continue;
        }
        let by_inode = id == saved.file;
        if !by_inode && (saved.fingerprint.len == 0 || by_bytes.is_some()) {
            continue;
        }
        let Ok(file) = File::open(&candidate) else {
            continue;
        };
        if !saved.fingerprint.matches(&file) {
            continue;
        }
        if by_inode {
            return Ok(Some((candidate, file, true)));
        }
        by_bytes = Some((candidate, file, false));
    }
    Ok(by_bytes)
}

impl Read for ResumedFollow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while let Some(tail) = self.tails.front_mut() {
            let n = tail.file.read_at(buf, tail.offset)?;
            if n > 0 {
                tail.offset += n as u64;
                self.positions.note(self.handed, &buf[..n]);
                self.handed += n as u64;
                self.open_line = buf[n - 1] != b'\n';
                return Ok(n);
            }
            self.tails.pop_front();
            if std::mem::take(&mut self.open_line) {
                // The copy's last line ends at its end, as at a rotation seen while running.
                buf[0] = b'\n';
                self.handed += 1;
                self.next_file();
                return Ok(1);
            }
            self.next_file();
        }
        let (_, id_before, before) = self.follow.reading();
        let n = self.follow.read(buf)?;
        let (_, id, position) = self.follow.reading();
        if id == id_before && before > 0 && position >= n as u64 && position - n as u64 == 0 {
            // Truncated in place (copytruncate) while it was read: the copy beside it holds
            // the lines after `before` that were not read yet; they come first.
            if let Some(tail) = self.copy_of_truncated(id, before) {
                let (file, _, _) = self.follow.reading();
                let file = file.try_clone()?;
                self.follow = FollowedFile::resume(self.follow.path(), file, 0)?;
                self.positions
                    .push(self.handed, tail.file.clone(), tail.id, tail.offset);
                self.tails.push_back(tail);
                return self.read(buf);
            }
        }
        if n > 0 && position == n as u64 && (self.handed > 0 || self.after_rotated) {
            // A file read from its start after another: in the journal before its bytes go.
            let covered = n.min(FINGERPRINT_BYTES as usize);
            let generation = Generation {
                file: FileIdentity {
                    dev: id.0,
                    ino: id.1,
                },
                fingerprint: Fingerprint {
                    len: covered as u64,
                    hash: stable_hash(&buf[..covered]),
                },
            };
            if let Err(error) = self.positions.read_from_start(self.handed, generation) {
                crate::stderr::line(format_args!(
                    "warning: {}: cannot record the file read in the state directory ({error}); \
                     a restart before the next checkpoint may miss its lines if it is rotated \
                     away meanwhile",
                    shown(self.follow.path())
                ));
            }
        }
        let new_file = self
            .follow_file
            .as_ref()
            .is_none_or(|(_, known)| *known != id);
        if position >= n as u64 {
            if new_file || position - n as u64 == 0 {
                self.record_follow_at(self.handed, position - n as u64);
            }
        } else {
            // A `\n` the followed file put at a rotation: the new file starts after it.
            self.record_follow_at(self.handed + n as u64, position);
        }
        self.positions.note(self.handed, &buf[..n]);
        self.handed += n as u64;
        Ok(n)
    }
}

impl ResumedFollow {
    /// After a rotated file read to its end: the next one's bytes (a file the journal names,
    /// now reached) or the path's from its start.
    fn next_file(&mut self) {
        match self.tails.front() {
            Some(next) => {
                self.positions
                    .push(self.handed, next.file.clone(), next.id, next.offset);
                if next.generation {
                    self.positions.reached(self.handed);
                }
            }
            None => {
                self.positions.reached(self.handed);
                self.record_follow_at(self.handed, 0);
            }
        }
    }

    /// The copy, beside the followed path, of the file `id` truncated in place after its
    /// first `offset` bytes were read (logrotate's copytruncate), to be read from `offset`.
    fn copy_of_truncated(&self, id: (u64, u64), offset: u64) -> Option<RotatedTail> {
        let file = FileIdentity {
            dev: id.0,
            ino: id.1,
        };
        let fingerprint = self.positions.prefix_fingerprint(offset)?;
        let saved = FollowedAt {
            file,
            fingerprint,
            offset,
            length: offset,
        };
        let (_, copy, _) = find_rotated(self.follow.path(), &saved, file).ok()??;
        let meta = copy.metadata().ok()?;
        Some(RotatedTail {
            id: FileIdentity::of(&meta),
            file: Arc::new(copy),
            offset,
            generation: false,
        })
    }

    /// Records that the followed file's bytes handed out from `handed` on start at its byte
    /// `offset` (a new segment only when it does not continue the last one).
    fn record_follow_at(&mut self, handed: u64, offset: u64) {
        let (file, id, _) = self.follow.reading();
        if self
            .follow_file
            .as_ref()
            .is_none_or(|(_, known)| *known != id)
            && let Ok(clone) = file.try_clone()
        {
            self.follow_file = Some((Arc::new(clone), id));
        }
        if let Some((shared, _)) = &self.follow_file {
            let identity = FileIdentity {
                dev: id.0,
                ino: id.1,
            };
            self.positions
                .push(handed, shared.clone(), identity, offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_stable_hash_is_fixed_and_the_same_in_pieces() {
        // Written to checkpoints: a change of value is a change of format.
        assert_eq!(stable_hash(b""), 0xbdb4_0944_3826_c20c);
        assert_eq!(stable_hash(b"{\"a\":1}\n"), stable_hash(b"{\"a\":1}\n"));
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = stable_hash(&bytes);
        for cut in [0, 1, 7, 31, 32, 33, 64, 999, 1000] {
            let mut hasher = StableHasher::default();
            hasher.write(&bytes[..cut]);
            for piece in bytes[cut..].chunks(5) {
                hasher.write(piece);
            }
            assert_eq!(hasher.finish(), whole, "cut at {cut}");
        }
        let mut changed = bytes.clone();
        for at in [0, 31, 500, 999] {
            changed[at] ^= 1;
            assert_ne!(stable_hash(&changed), whole, "a bit flipped at {at}");
            changed[at] ^= 1;
        }
        assert_ne!(stable_hash(&bytes[..999]), whole, "one byte fewer");
        assert_ne!(
            stable_hash(&[0; 32]),
            stable_hash(&[0; 33]),
            "zeros of two lengths"
        );
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// Reads exactly `len` bytes from the resumed reader (it never ends: it follows).
    fn take(reader: &mut ResumedFollow, len: usize) -> String {
        let mut bytes = vec![0u8; len];
        reader.read_exact(&mut bytes).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// A followed file read `lines` lines in (through a resumed reader started at 0) and the
    /// position saved there.
    fn saved_after(path: &Path, upto: &str) -> FollowedAt {
        let Resumed {
            mut reader,
            positions,
            ..
        } = ResumedFollow::start(path).unwrap();
        assert_eq!(take(&mut reader, upto.len()), upto);
        let lines = upto.matches('\n').count() as u64;
        match positions
            .at(BlockEnd {
                bytes: upto.len() as u64,
                lines,
            })
            .unwrap()
        {
            StreamPosition::Followed { at, lines: l } => {
                assert_eq!(l, lines);
                at
            }
            other => panic!("{other:?}"),
        }
    }

    /// The journal's text as the reader of `resumed` last wrote it.
    fn journal_of(resumed: &Resumed) -> Arc<Mutex<String>> {
        let journal = Arc::new(Mutex::new(String::new()));
        let kept = journal.clone();
        resumed.positions.set_journal(Box::new(move |text: &str| {
            *kept.lock().unwrap() = text.to_string();
            Ok(())
        }));
        journal
    }

    const FIRST: &str = "{\"a\":1}\n{\"a\":2}\n";
    const THIRD: &str = "{\"a\":3}\n";
    const NEW: &str = "{\"b\":1}\n{\"b\":2}\n";

    fn identity(path: &Path) -> FileIdentity {
        FileIdentity::of(&std::fs::metadata(path).unwrap())
    }

    #[test]
    fn without_rotation_the_file_is_read_on_from_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, FIRST);
        append(&path, THIRD);
        let saved = saved_after(&path, FIRST);
        assert_eq!(saved.offset, FIRST.len() as u64);
        assert_eq!(saved.length, (FIRST.len() + THIRD.len()) as u64);
        assert_eq!(saved.file, identity(&path));
        append(&path, NEW);
        let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
        assert!(resumed.warning.is_none());
        assert_eq!(
            take(&mut resumed.reader, THIRD.len() + NEW.len()),
            format!("{THIRD}{NEW}")
        );
        let end = BlockEnd {
            bytes: (THIRD.len() + NEW.len()) as u64,
            lines: 3,
        };
        let StreamPosition::Followed { at, lines } = resumed.positions.at(end).unwrap() else {
            panic!()
        };
        assert_eq!(
            (at.file, at.offset, lines),
            (
                identity(&path),
                (FIRST.len() + THIRD.len() + NEW.len()) as u64,
                5
            )
        );
    }

    /// Rotates `path` while the program is down: copytruncate (its bytes copied to `aside`,
    /// then truncated) or rename + create.
    fn rotate(path: &Path, aside: &Path, copytruncate: bool) {
        if copytruncate {
            std::fs::copy(path, aside).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(0)
                .unwrap();
        } else {
            std::fs::rename(path, aside).unwrap();
            std::fs::write(path, "").unwrap();
        }
    }

    /// The crash test's failing case: a run resumed at a checkpoint in the first file reads
    /// it to its end and the second file from its start, and is killed before its next
    /// checkpoint; the second file is rotated away while the program is down. The next run,
    /// resumed at the same checkpoint, reads the first file's rest, then the second file (by
    /// the journal), then the third: nothing skipped. Also when the checkpoint is at the end
    /// of the first file (no byte of it left to read before the second).
    #[test]
    fn files_read_after_the_checkpoint_s_file_are_read_again_after_a_second_rotation() {
        for (copytruncate, rest) in [(true, THIRD), (false, THIRD), (true, ""), (false, "")] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.json");
            append(&path, FIRST);
            let saved = saved_after(&path, FIRST);
            append(&path, rest);
            rotate(&path, &dir.path().join("s.json.1"), copytruncate);
            append(&path, NEW);
            let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
            let journal = journal_of(&resumed);
            assert_eq!(
                take(&mut resumed.reader, rest.len() + NEW.len()),
                format!("{rest}{NEW}")
            );
            // Killed here, before a checkpoint; while down, one more line and a rotation.
            drop(resumed);
            let fourth = "{\"b\":3}\n";
            let last = "{\"c\":1}\n";
            append(&path, fourth);
            rotate(&path, &dir.path().join("s.json.2"), copytruncate);
            append(&path, last);
            let text = journal.lock().unwrap().clone();
            let files = Generation::parse(&text).unwrap();
            assert_eq!(files.len(), 1, "the second file is in the journal: {text}");
            let mut resumed = ResumedFollow::resume(&path, &saved, 2, &files).unwrap();
            let warning = resumed.warning.clone().unwrap();
            assert!(
                warning.contains("s.json.1 from byte 16, then ")
                    && warning.contains("s.json.2 from its start"),
                "{warning}"
            );
            let all = format!("{rest}{NEW}{fourth}{last}");
            assert_eq!(
                take(&mut resumed.reader, all.len()),
                all,
                "copytruncate: {copytruncate}, rest: {rest:?}"
            );
            // A position in the second file names its copy; the journal keeps it until a
            // checkpoint past it is saved.
            let end = BlockEnd {
                bytes: (rest.len() + 8) as u64,
                lines: 4,
            };
            let StreamPosition::Followed { at, .. } = resumed.positions.at(end).unwrap() else {
                panic!()
            };
            assert_eq!(
                (at.file, at.offset),
                (identity(&dir.path().join("s.json.2")), 8)
            );
        }
    }

    #[test]
    fn after_rename_and_create_the_renamed_file_is_read_to_its_end_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, FIRST);
        let saved = saved_after(&path, FIRST);
        // Rotated while down: the old file got one more line, then went to NAME.1.
        append(&path, THIRD);
        let old = dir.path().join("s.json.1");
        std::fs::rename(&path, &old).unwrap();
        append(&path, NEW);
        let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
        let warning = resumed.warning.clone().unwrap();
        assert!(warning.contains("s.json.1 from byte 16"), "{warning}");
        assert_eq!(
            take(&mut resumed.reader, THIRD.len() + NEW.len()),
            format!("{THIRD}{NEW}")
        );
        // Positions inside the old file, then in the new one.
        let at = |bytes: usize| match resumed
            .positions
            .at(BlockEnd {
                bytes: bytes as u64,
                lines: 0,
            })
            .unwrap()
        {
            StreamPosition::Followed { at, .. } => (at.file, at.offset),
            other => panic!("{other:?}"),
        };
        assert_eq!(at(0), (identity(&old), FIRST.len() as u64));
        // At the old file's end: the new file's start (the old one is done).
        assert_eq!(at(THIRD.len()), (identity(&path), 0));
        assert_eq!(at(THIRD.len() + 8), (identity(&path), 8));
    }

    #[test]
    fn after_a_copytruncate_the_copy_beside_is_read_from_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, FIRST);
        let saved = saved_after(&path, FIRST);
        append(&path, "{\"a\":3}"); // its last line without `\n`
        std::fs::copy(&path, dir.path().join("s.json.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, NEW);
        // Another file of the folder is looked at too, but has other first bytes.
        std::fs::write(
            dir.path().join("other.json"),
            "{\"z\":0}\n{\"z\":1}\n{\"z\":2}\n",
        )
        .unwrap();
        let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
        assert!(resumed.warning.is_some());
        assert_eq!(
            take(&mut resumed.reader, THIRD.len() + NEW.len()),
            format!("{THIRD}{NEW}")
        );
    }

    #[test]
    fn a_rotated_copy_is_found_by_its_inode_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, FIRST);
        let saved = saved_after(&path, FIRST);
        append(&path, THIRD);
        std::fs::rename(&path, dir.path().join("s.json-20240101")).unwrap();
        append(&path, NEW);
        let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
        assert!(resumed.warning.unwrap().contains("s.json-20240101"));
        assert_eq!(
            take(&mut resumed.reader, THIRD.len() + NEW.len()),
            format!("{THIRD}{NEW}")
        );
    }

    #[test]
    fn when_the_copy_was_deleted_the_lost_bytes_are_reported_once_and_the_path_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, FIRST);
        append(&path, THIRD);
        let saved = saved_after(&path, FIRST);
        // copytruncate without a copy.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, NEW);
        let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
        let warning = resumed.warning.unwrap();
        assert!(
            warning.contains("after its byte 16 could not be read (8 bytes known lost at least)"),
            "{warning}"
        );
        assert!(warning.starts_with("warning: ") && warning.contains("s.json"));
        assert_eq!(take(&mut resumed.reader, NEW.len()), NEW);
        // A rotated-away file that was deleted: the same.
        let saved = saved_after(&path, NEW);
        std::fs::rename(&path, dir.path().join("gone")).unwrap();
        std::fs::remove_file(dir.path().join("gone")).unwrap();
        append(&path, THIRD);
        let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
        assert!(resumed.warning.unwrap().contains("maybe more"));
        assert_eq!(take(&mut resumed.reader, THIRD.len()), THIRD);
    }

    /// The checkpoint's file is gone (its copy deleted): the path's file is read from its
    /// start and journaled, so a restart before the next checkpoint, after that file was
    /// rotated away too, reads it beside the path before the new one.
    #[test]
    fn after_a_lost_file_the_file_read_next_is_found_again_after_its_rotation() {
        for copytruncate in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.json");
            append(&path, FIRST);
            let saved = saved_after(&path, FIRST);
            append(&path, THIRD);
            std::fs::rename(&path, dir.path().join("gone")).unwrap();
            std::fs::remove_file(dir.path().join("gone")).unwrap();
            append(&path, NEW);
            let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
            let journal = journal_of(&resumed);
            assert_eq!(take(&mut resumed.reader, NEW.len()), NEW);
            drop(resumed); // killed before a checkpoint
            let last = "{\"c\":1}\n";
            rotate(&path, &dir.path().join("s.json.1"), copytruncate);
            append(&path, last);
            let files = Generation::parse(&journal.lock().unwrap()).unwrap();
            assert_eq!(files.len(), 1, "copytruncate: {copytruncate}");
            let mut resumed = ResumedFollow::resume(&path, &saved, 2, &files).unwrap();
            let warning = resumed.warning.clone().unwrap();
            assert!(
                warning.contains("could not be read")
                    && warning.contains("s.json.1 from its start, then "),
                "{warning}"
            );
            let all = format!("{NEW}{last}");
            assert_eq!(take(&mut resumed.reader, all.len()), all);
        }
    }

    #[test]
    fn a_file_whose_inode_was_reused_is_not_taken_for_the_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, FIRST);
        let mut saved = saved_after(&path, FIRST);
        // Same device and inode, other first bytes: not the file read.
        std::fs::write(&path, format!("{NEW}{NEW}")).unwrap();
        saved.length = saved.offset;
        let mut resumed = ResumedFollow::resume(&path, &saved, 2, &[]).unwrap();
        assert!(resumed.warning.unwrap().contains("is gone"));
        assert_eq!(
            take(&mut resumed.reader, 2 * NEW.len()),
            format!("{NEW}{NEW}")
        );
    }

    /// A position at a file's start (a first checkpoint, before any line was read) is of its
    /// first bytes as they were then: after a copytruncate made while the run was down, the
    /// copy is read first, not only the file's new content; and a fingerprint taken after
    /// the file was truncated and rewritten is still of the bytes read.
    #[test]
    fn a_position_at_a_file_s_start_finds_its_copy_after_a_copytruncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, FIRST);
        let Resumed { positions, .. } = ResumedFollow::start(&path).unwrap();
        let StreamPosition::Followed { at, lines } = positions.at(BlockEnd::default()).unwrap()
        else {
            panic!()
        };
        std::fs::copy(&path, dir.path().join("s.json.1")).unwrap();
        std::fs::write(&path, NEW).unwrap(); // truncated in place, then a new line
        let mut resumed = ResumedFollow::resume(&path, &at, lines, &[]).unwrap();
        assert!(resumed.warning.unwrap().contains("s.json.1"));
        assert_eq!(
            take(&mut resumed.reader, FIRST.len() + NEW.len()),
            format!("{FIRST}{NEW}")
        );
        // Read, then truncated and rewritten before the checkpoint: the bytes read count.
        std::fs::write(&path, FIRST).unwrap();
        let Resumed {
            mut reader,
            positions,
            ..
        } = ResumedFollow::start(&path).unwrap();
        assert_eq!(take(&mut reader, FIRST.len()), FIRST);
        std::fs::write(&path, NEW).unwrap();
        let StreamPosition::Followed { at, .. } = positions
            .at(BlockEnd {
                bytes: FIRST.len() as u64,
                lines: 2,
            })
            .unwrap()
        else {
            panic!()
        };
        let first = dir.path().join("first");
        std::fs::write(&first, FIRST).unwrap();
        assert!(at.fingerprint.matches(&File::open(&first).unwrap()));
    }

    #[test]
    fn a_position_read_while_following_a_rotation_names_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        append(&path, "{\"a\":1}");
        let Resumed {
            mut reader,
            positions,
            ..
        } = ResumedFollow::start(&path).unwrap();
        assert_eq!(take(&mut reader, 7), "{\"a\":1}");
        std::fs::rename(&path, dir.path().join("s.json.1")).unwrap();
        append(&path, NEW);
        // The old file's open last line gets its `\n`, then the new file.
        assert_eq!(take(&mut reader, 1 + NEW.len()), format!("\n{NEW}"));
        let warning = format!("warning: {}: replaced by a new file", path.display());
        assert!(
            crate::stderr::captured().contains(&warning),
            "no `{warning}`"
        );
        let StreamPosition::Followed { at, .. } =
            positions.at(BlockEnd { bytes: 8, lines: 1 }).unwrap()
        else {
            panic!()
        };
        // At the new file's start, its first bytes (read ahead) tell it apart.
        assert_eq!(
            (at.file, at.offset, at.fingerprint.len),
            (identity(&path), 0, NEW.len() as u64)
        );
        assert!(at.fingerprint.matches(&File::open(&path).unwrap()));
        let StreamPosition::Followed { at, .. } = positions
            .at(BlockEnd {
                bytes: 16,
                lines: 2,
            })
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((at.file, at.offset), (identity(&path), 8));
        assert!(at.fingerprint.matches(&File::open(&path).unwrap()));
    }

    #[test]
    fn standard_input_counts_on_from_the_checkpoint() {
        let positions = Positions::stdin(Some(StreamPosition::Stdin {
            lines: 10,
            bytes: 100,
        }));
        assert_eq!(
            positions.at(BlockEnd { bytes: 5, lines: 1 }).unwrap(),
            StreamPosition::Stdin {
                lines: 11,
                bytes: 105
            }
        );
    }
}
