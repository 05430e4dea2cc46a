//! Reading logs: a regular file memory-mapped, its byte-order mark dropped, cut into lines and
//! into chunks that start and end at line boundaries; anything else (a pipe, a FIFO, a device,
//! standard input, a file followed like `tail -F`, a regular file that cannot be mapped) read
//! block by block, in bounded memory.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::Mmap;

use crate::error::{Fatal, shown};
use crate::ingest::shrink::{Damage, Watch};

/// Whether standard input was closed (`<&-`) when the process started. The Rust runtime puts
/// `/dev/null` in place of a closed standard descriptor before `main` runs, so that `-` would
/// read as an empty stream: the binary sets this from a constructor that runs before the
/// runtime (see `main.rs`), and a log read from standard input is refused.
pub static STDIN_CLOSED: AtomicBool = AtomicBool::new(false);

/// Refuses `path` when it reads standard input and standard input was closed as the process
/// started (see [`STDIN_CLOSED`]): `-` for STREAM, and `/dev/stdin` or its descriptor paths
/// for either log.
fn check_stdin(path: &Path, dash_is_stdin: bool) -> Result<(), Fatal> {
    if reads_stdin(path, dash_is_stdin) && STDIN_CLOSED.load(Ordering::Relaxed) {
        return Err(Fatal::Read {
            path: path.to_path_buf(),
            error: std::io::Error::other("standard input is closed"),
        });
    }
    Ok(())
}

/// Whether `path` names standard input.
fn reads_stdin(path: &Path, dash_is_stdin: bool) -> bool {
    match path.to_str() {
        Some("-") => dash_is_stdin,
        Some("/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0") => true,
        _ => false,
    }
}

/// The bytes of one log, with a name for messages.
pub struct LogFile {
    pub path: PathBuf,
    /// The file name used in messages (`batch_log.json`).
    pub name: String,
    data: Data,
    /// Length of a leading UTF-8 byte-order mark, skipped.
    bom: usize,
}

enum Data {
    /// The watch is dropped before the map is unmapped, and the map before its file is closed
    /// (fields drop in order).
    Mapped {
        watch: Watch,
        map: Mmap,
        file: File,
    },
    Owned(Vec<u8>),
}

/// Set in the environment (to anything), it makes every map of a log fail as a file system
/// without `mmap` fails it (`ENODEV`: sysfs, procfs, FUSE with `direct_io`), so that tests
/// reach the fallback that reads such a file with `read`.
pub const NO_MAP_VAR: &str = "ANOMALY_DETECT_NO_MMAP";

/// Maps `file` whole, read-only.
fn map_file(file: &File) -> std::io::Result<Mmap> {
    if std::env::var_os(NO_MAP_VAR).is_some() {
        return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: the map is read-only. A file truncated (or failing) while the run lasts would
    // raise SIGBUS: the watch turns that into zero pages and a mark (see `shrink`), and the
    // replay checks the mark and the file's size before using a chunk.
    unsafe { Mmap::map(file) }
}

/// Opens `path` for reading, refusing a directory.
fn open_file(path: &Path) -> Result<(File, std::fs::Metadata), Fatal> {
    let fail = |error| Fatal::Read {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if meta.is_dir() {
        return Err(fail(std::io::Error::other("is a directory")));
    }
    Ok((file, meta))
}

impl LogFile {
    /// Opens a log: memory-mapped when it is a regular file that can be mapped, read whole
    /// otherwise (the developer tools; a run reads other files block by block, see
    /// [`BatchSource`]).
    pub fn open(path: &Path) -> Result<LogFile, Fatal> {
        let (mut file, meta) = open_file(path)?;
        if meta.is_file() && meta.len() > 0 {
            match LogFile::map(path, file) {
                Ok(log) => return Ok(log),
                Err(unmapped) => file = unmapped,
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|error| Fatal::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(LogFile::from_data(path, Data::Owned(bytes)))
    }

    /// Maps a regular file and watches the map; gives the file back when it cannot be mapped
    /// (a file system without `mmap`: sysfs, FUSE `direct_io`) or the map cannot be watched:
    /// it is then read with `read`, never through an unwatched map.
    fn map(path: &Path, file: File) -> Result<LogFile, File> {
        let Ok(map) = map_file(&file) else {
            return Err(file);
        };
        let Some(watch) = Watch::map(map.as_ptr(), map.len(), file.as_raw_fd()) else {
            return Err(file);
        };
        // A hint only: read ahead, the log is read front to back.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(LogFile::from_data(path, Data::Mapped { watch, map, file }))
    }

    /// A log held in memory (tests and benchmarks).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> LogFile {
        LogFile::from_data(Path::new(name), Data::Owned(bytes))
    }

    fn from_data(path: &Path, data: Data) -> LogFile {
        let name = path.display().to_string();
        let mut log = LogFile {
            path: path.to_path_buf(),
            name,
            data,
            bom: 0,
        };
        if log.bytes().starts_with(b"\xEF\xBB\xBF") {
            log.bom = 3;
        }
        log
    }

    fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Mapped { map, .. } => map,
            Data::Owned(bytes) => bytes,
        }
    }

    /// Tells the kernel that `body()[range]` has been consumed: its pages leave this process's
    /// resident memory (they stay in the page cache), so memory does not grow with the log.
    pub fn release(&self, range: Range<usize>) {
        if let Data::Mapped { map, .. } = &self.data {
            // SAFETY: the map is a read-only, shared file mapping: dropped pages are read back
            // from the file, unchanged, if they are ever touched again.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.bom + range.start,
                    range.len(),
                )
            };
        }
    }

    /// What happened to a mapped file while it was read, if anything: it shrank (a fault
    /// beyond its end was taken, or it is now shorter than its map: the bytes it lost read as
    /// zeros, without a fault in the last page) or a page could not be read. Nothing read since
    /// may be used.
    pub fn damage(&self) -> Option<Damage> {
        let Data::Mapped { watch, map, file } = &self.data else {
            return None;
        };
        watch.damage().or_else(|| {
            file.metadata()
                .is_ok_and(|meta| meta.len() < map.len() as u64)
                .then_some(Damage::Shrank)
        })
    }

    /// Fails when the file was damaged while mapped (see [`Self::damage`]).
    pub fn check_size(&self) -> Result<(), Fatal> {
        match self.damage() {
            None => Ok(()),
            Some(Damage::Shrank) => Err(Fatal::Shrank {
                path: self.path.clone(),
            }),
            Some(Damage::Unreadable) => Err(Fatal::Read {
                path: self.path.clone(),
                error: std::io::Error::from_raw_os_error(libc::EIO),
            }),
        }
    }

    /// The log's bytes after any byte-order mark.
    pub fn body(&self) -> &[u8] {
        &self.bytes()[self.bom..]
    }
}

pub use crate::config::MAX_LINE;

/// A log read as it comes, from a pipe, a FIFO, a device or a followed file: never whole.
pub struct LogReader {
    /// The file name used in messages.
    pub name: String,
    pub reader: Box<dyn Read + Send>,
}

/// Where batch events come from: a regular file, memory-mapped, or any other file read as it
/// comes (a pipe, a FIFO, a device, a regular file that cannot be mapped), so that memory
/// stays bounded whatever its length.
pub enum BatchSource {
    File(LogFile),
    Read(LogReader),
}

impl BatchSource {
    pub fn open(path: &Path) -> Result<BatchSource, Fatal> {
        check_stdin(path, false)?;
        Ok(match open_log(path)? {
            Opened::Mapped(log) => BatchSource::File(log),
            Opened::Read(reader) => BatchSource::Read(reader),
        })
    }
}

/// A log opened to be replayed.
enum Opened {
    /// A regular file, mapped and watched.
    Mapped(LogFile),
    /// Anything else, read as it comes: a pipe, a FIFO, a device, a regular file that cannot
    /// be mapped or that says it is empty (procfs files say so and hold bytes).
    Read(LogReader),
}

/// Opens a log to replay (see [`Opened`]).
fn open_log(path: &Path) -> Result<Opened, Fatal> {
    let (file, meta) = open_file(path)?;
    let file = if meta.is_file() && meta.len() > 0 {
        match LogFile::map(path, file) {
            Ok(log) => return Ok(Opened::Mapped(log)),
            Err(file) => file,
        }
    } else {
        file
    };
    Ok(Opened::Read(LogReader {
        name: path.display().to_string(),
        reader: Box::new(file),
    }))
}

/// Opens `path` as a [`LogReader`] when it has no size to follow: not a regular file, or a
/// regular file of a file system whose sizes are not real (see [`sizeless`]). `None`: a
/// regular file, to be followed.
fn open_special(path: &Path) -> Result<Option<LogReader>, Fatal> {
    let fail = |error| Fatal::Read {
        path: path.to_path_buf(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(fail)?;
    if meta.is_dir() {
        return Ok(None);
    }
    let file = File::open(path).map_err(fail)?;
    if meta.is_file() && !sizeless(&file) {
        return Ok(None);
    }
    Ok(Some(LogReader {
        name: path.display().to_string(),
        reader: Box::new(file),
    }))
}

/// Whether `file` lives on a file system whose sizes say nothing of what a read gives: procfs,
/// sysfs and their kin report 0 bytes (or a page) for files that hold text. Followed by size,
/// such a file would look truncated at every poll and be read again and again; it is read to
/// its end instead, like a FIFO.
fn sizeless(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    {
        let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: the descriptor is open and the buffer a `statfs`, both live for the call.
        if unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) } != 0 {
            return false;
        }
        // SAFETY: filled by the kernel (and zeroed before).
        let kind = unsafe { fs.assume_init() }.f_type as u64;
        const PSEUDO: [u64; 8] = [
            0x9fa0,     // procfs
            0x62656572, // sysfs
            0x64626720, // debugfs
            0x74726163, // tracefs
            0x73636673, // securityfs
            0x27e0eb,   // cgroup
            0x63677270, // cgroup2
            0x62656570, // configfs
        ];
        PSEUDO.contains(&kind)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// Where stream events come from: a log file replayed whole, a special file read as it comes
/// (replayed like a file), or a live source.
pub enum StreamSource {
    File(LogFile),
    /// A pipe, FIFO or device named as STREAM, or a regular file that cannot be mapped: read
    /// incrementally, replayed like a file.
    Read(LogReader),
    /// Standard input, or a file followed as it grows (`--follow`, like `tail -F`).
    Live(LogReader),
}

impl StreamSource {
    /// `-` is standard input (live); a file is live when followed.
    pub fn open(path: &Path, follow: bool) -> Result<StreamSource, Fatal> {
        let name = path.display().to_string();
        check_stdin(path, true)?;
        if path.as_os_str() == "-" {
            let reader = Box::new(std::io::stdin());
            return Ok(StreamSource::Live(LogReader { name, reader }));
        }
        if !follow {
            return Ok(match open_log(path)? {
                Opened::Mapped(log) => StreamSource::File(log),
                Opened::Read(reader) => StreamSource::Read(reader),
            });
        }
        // A FIFO or device has no size nor rotation to follow: read live to its end.
        if let Some(reader) = open_special(path)? {
            return Ok(StreamSource::Live(reader));
        }
        let reader = Box::new(FollowedFile::open(path)?);
        Ok(StreamSource::Live(LogReader { name, reader }))
    }

    pub fn is_live(&self) -> bool {
        matches!(self, StreamSource::Live(_))
    }
}

/// A file followed by name as it grows, like `tail -F`: reading it never ends (at the end it
/// polls). When the file shrinks below the read position (copytruncate), a warning names it
/// and reading starts again from its start; when the path names another file (rename and
/// create), the old file is read to its end and the new one from its start; while the path is
/// gone, the old file is read and the path waited for. A last line without `\n` left at a
/// rotation ends there: a `\n` is read in its place, so it is read as a line of its own (as
/// the file replay reads a final line without `\n`), and the new file's first line never
/// glues onto it.
pub struct FollowedFile {
    path: PathBuf,
    file: File,
    /// Device and inode of `file`.
    id: (u64, u64),
    /// Bytes of `file` read so far.
    position: u64,
    /// The last byte handed out, if not `\n`: a rotation then hands out a `\n` first.
    open_line: bool,
    /// How long to wait at the end of the file before looking again.
    poll: std::time::Duration,
}

impl FollowedFile {
    pub fn open(path: &Path) -> Result<FollowedFile, Fatal> {
        let fail = |error| Fatal::Read {
            path: path.to_path_buf(),
            error,
        };
        let file = File::open(path).map_err(fail)?;
        let id = file_id(&file.metadata().map_err(fail)?);
        Ok(FollowedFile {
            path: path.to_path_buf(),
            file,
            id,
            position: 0,
            open_line: false,
            poll: std::time::Duration::from_millis(20),
        })
    }

    /// Follows `file`, opened from `path`, from byte `position` on (the start of a line: where
    /// a checkpoint left it).
    pub fn resume(path: &Path, mut file: File, position: u64) -> std::io::Result<FollowedFile> {
        use std::io::{Seek, SeekFrom};
        let id = file_id(&file.metadata()?);
        file.seek(SeekFrom::Start(position))?;
        Ok(FollowedFile {
            path: path.to_path_buf(),
            file,
            id,
            position,
            open_line: false,
            poll: std::time::Duration::from_millis(20),
        })
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file read now, its device and inode, and how many of its bytes were handed out.
    pub fn reading(&self) -> (&File, (u64, u64), u64) {
        (&self.file, self.id, self.position)
    }

    /// At the end of the open file: what became of the path. `Ok(true)` when reading goes on
    /// from the start of a truncated or new file.
    fn rotated(&mut self) -> std::io::Result<bool> {
        use std::io::{Seek, SeekFrom};
        let now = std::fs::metadata(&self.path);
        let open_len = self.file.metadata()?.len();
        match now {
            // Renamed away and replaced, and the old file read to its end (it may have grown
            // since the read that found its end: then that is read first).
            Ok(meta) if file_id(&meta) != self.id && open_len <= self.position => {
                let Ok(file) = File::open(&self.path) else {
                    return Ok(false);
                };
                crate::stderr::line(format_args!(
                    "warning: {}: replaced by a new file; reading the new file from its start",
                    shown(&self.path)
                ));
                self.id = file_id(&file.metadata()?);
                self.file = file;
                self.position = 0;
                Ok(true)
            }
            Ok(meta) if file_id(&meta) == self.id && open_len < self.position => {
                crate::stderr::line(format_args!(
                    "warning: {}: truncated; reading it again from its start",
                    shown(&self.path)
                ));
                self.file.seek(SeekFrom::Start(0))?;
                self.position = 0;
                Ok(true)
            }
            // Unchanged, grown, or gone (waited for): the open file may still grow.
            _ => Ok(false),
        }
    }
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

impl Read for FollowedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                self.position += n as u64;
                self.open_line = buf[n - 1] != b'\n';
                return Ok(n);
            }
            let grew = self.file.metadata()?.len() > self.position;
            if self.rotated()? {
                if std::mem::take(&mut self.open_line) {
                    buf[0] = b'\n';
                    return Ok(1);
                }
                continue;
            }
            if !grew {
                std::thread::sleep(self.poll);
            }
        }
    }
}

/// How many blocks a reader may have sent ahead of the parser: few, since a block holding a
/// too-long line's first `max_line + 1` bytes is large.
pub const BLOCKS_AHEAD: usize = 4;

/// Reads a log as it comes (a pipe, a FIFO, a device, a followed file) and sends blocks of
/// whole lines as soon as they arrive; a final line without `\n` is sent at the end. A line
/// longer than `max_line` is cut after `max_line + 1` bytes (so that the parser skips it as
/// too long) and the rest of it, up to its `\n`, is dropped as it is read: memory stays
/// bounded whatever the input. Ends when the input ends or the receiver is gone.
pub fn read_blocks(
    source: Box<dyn Read + Send>,
    max_line: usize,
    blocks: &crossbeam_channel::Sender<Vec<u8>>,
) -> std::io::Result<()> {
    read_blocks_with(source, max_line, |block, _| blocks.send(block).is_ok())
}

/// Where a block sent by [`read_blocks_counted`] ends in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockEnd {
    /// Bytes read from the source up to the end of the block (a byte-order mark and the
    /// dropped bytes of a too-long line included): where reading resumes after it.
    pub bytes: u64,
    /// Lines up to the end of the block (a final line without `\n` included).
    pub lines: u64,
}

/// [`read_blocks`], each block sent with where it ends in the source (a checkpoint taken once
/// a block is decided records that place: see `ingest::position`).
pub fn read_blocks_counted(
    source: Box<dyn Read + Send>,
    max_line: usize,
    blocks: &crossbeam_channel::Sender<(Vec<u8>, BlockEnd)>,
) -> std::io::Result<()> {
    let mut lines = 0u64;
    read_blocks_with(source, max_line, |block, bytes| {
        lines += memchr::memchr_iter(b'\n', &block).count() as u64;
        if block.last() != Some(&b'\n') {
            lines += 1; // the final line, without `\n`
        }
        blocks.send((block, BlockEnd { bytes, lines })).is_ok()
    })
}

/// The reading loop of [`read_blocks`]: `send` gets each block and the count of source bytes
/// up to its end, and says whether to go on.
fn read_blocks_with(
    mut source: Box<dyn Read + Send>,
    max_line: usize,
    mut send: impl FnMut(Vec<u8>, u64) -> bool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::new();
    let mut at_start = true;
    // Inside a too-long line: its bytes are dropped up to the next `\n`.
    let mut dropping = false;
    // Source bytes read, and the source position just after the last `\n` in `pending`.
    let (mut read, mut after_newline) = (0u64, 0u64);
    loop {
        let n = match source.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if !pending.is_empty() {
                let _ = send(pending, read);
            }
            return Ok(());
        }
        let base = read;
        read += n as u64;
        let mut data = &buf[..n];
        if dropping {
            match memchr::memchr(b'\n', data) {
                None => continue,
                Some(end) => {
                    pending.push(b'\n');
                    after_newline = base + end as u64 + 1;
                    data = &data[end + 1..];
                    dropping = false;
                }
            }
        }
        if let Some(last) = memchr::memrchr(b'\n', data) {
            after_newline = read - (data.len() - last - 1) as u64;
        }
        pending.extend_from_slice(data);
        if at_start && (pending.len() >= 3 || pending.contains(&b'\n')) {
            if pending.starts_with(b"\xEF\xBB\xBF") {
                pending.drain(..3);
            }
            at_start = false;
        }
        let line_start = memchr::memrchr(b'\n', &pending).map_or(0, |last| last + 1);
        if pending.len() - line_start > max_line {
            // Keep one byte more than a line may hold: the parser skips the line as too long.
            pending.truncate(line_start + max_line + 1);
            dropping = true;
        }
        if line_start > 0 {
            let rest = pending.split_off(line_start);
            if !send(std::mem::replace(&mut pending, rest), after_newline) {
                return Ok(()); // the replay stopped
            }
        }
    }
}

/// Iterates the lines of a buffer as ranges, without their `\n`; a final line without `\n`
/// counts, an empty buffer has no lines.
pub struct Lines<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Lines<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Lines { bytes, at: 0 }
    }
}

impl Iterator for Lines<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let start = self.at;
        let end =
            memchr::memchr(b'\n', &self.bytes[start..]).map_or(self.bytes.len(), |p| start + p);
        self.at = end + 1;
        Some(start..end)
    }
}

/// Trims JSON white space (space, tab, `\r`) around a line: returns its start and length.
pub fn trim_line(bytes: &[u8], line: Range<usize>) -> (usize, usize) {
    let text = &bytes[line.clone()];
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let Some(first) = text.iter().position(|b| !is_ws(b)) else {
        return (line.start, 0);
    };
    let last = text.iter().rposition(|b| !is_ws(b)).unwrap_or(first);
    (line.start + first, last + 1 - first)
}

/// Cuts `bytes[from..]` into chunks of about `target` bytes, each ending just after a `\n`
/// (or at the end). Lazily: a chunk's end is looked for only when it is asked for, so the pages
/// of a mapped log are touched in order, once.
pub fn chunks(bytes: &[u8], from: usize, target: usize) -> Chunks<'_> {
    Chunks {
        bytes,
        start: from,
        target: target.max(1),
        max_line: usize::MAX,
        release: None,
        too_long: None,
    }
}

/// How far the end of a chunk is looked for at a time once it lies in a too-long line: the
/// pages looked through are released window by window.
const SCAN_WINDOW: usize = 8 << 20;

/// The iterator of [`chunks`].
pub struct Chunks<'a> {
    bytes: &'a [u8],
    start: usize,
    target: usize,
    /// A line longer than this that a chunk's end would fall in becomes a piece of its own.
    max_line: usize,
    /// Gives back pages looked through in a too-long line (see [`LogFile::release`]).
    release: Option<&'a (dyn Fn(Range<usize>) + Sync)>,
    /// The too-long line that comes after the chunk handed out last.
    too_long: Option<Range<usize>>,
}

impl<'a> Chunks<'a> {
    /// Hands out a line longer than `max_line` that a chunk's end would fall in as a piece of
    /// its own (see [`Self::next_piece`]), found without keeping its pages: `release` gives
    /// them back, window by window, as they are looked through.
    pub fn with_limit(
        mut self,
        max_line: usize,
        release: &'a (dyn Fn(Range<usize>) + Sync),
    ) -> Self {
        self.max_line = max_line;
        self.release = Some(release);
        self
    }

    /// The next piece and whether it is one line longer than the limit, which needs no
    /// parsing: it is skipped as too long.
    pub fn next_piece(&mut self) -> Option<(Range<usize>, bool)> {
        if let Some(line) = self.too_long.take() {
            self.start = line.end;
            return Some((line, true));
        }
        let (bytes, start) = (self.bytes, self.start);
        if start >= bytes.len() {
            return None;
        }
        let probe = (start + self.target).min(bytes.len());
        if probe >= bytes.len() {
            self.start = bytes.len();
            return Some((start..bytes.len(), false));
        }
        // The usual case: a `\n` within the line limit after the probe.
        let near = (probe - 1)
            .saturating_add(self.max_line.saturating_add(1))
            .min(bytes.len());
        if let Some(p) = memchr::memchr(b'\n', &bytes[probe - 1..near]) {
            self.start = probe + p;
            return Some((start..probe + p, false));
        }
        if near == bytes.len() {
            self.start = bytes.len();
            return Some((start..bytes.len(), false));
        }
        // The chunk's end falls in a line longer than the limit: the line becomes a piece of its
        // own, its end found window by window, each given back once looked through.
        let line_start =
            memchr::memrchr(b'\n', &bytes[start..probe - 1]).map_or(start, |p| start + p + 1);
        let release = |range: Range<usize>| {
            if let Some(release) = self.release {
                release(range);
            }
        };
        release(line_start.max(probe - 1)..near);
        let mut at = near;
        let end = loop {
            let window = (at + SCAN_WINDOW).min(bytes.len());
            let found = memchr::memchr(b'\n', &bytes[at..window]);
            release(at..window);
            match found {
                Some(p) => break at + p + 1,
                None if window == bytes.len() => break bytes.len(),
                None => at = window,
            }
        };
        if line_start > start {
            self.too_long = Some(line_start..end);
            self.start = line_start;
            return Some((start..line_start, false));
        }
        self.start = end;
        Some((line_start..end, true))
    }
}

impl Iterator for Chunks<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        self.next_piece().map(|(range, _)| range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_a_final_line_without_newline() {
        let lines: Vec<_> = Lines::new(b"a\n\nbc").collect();
        assert_eq!(lines, vec![0..1, 2..2, 3..5]);
        assert_eq!(Lines::new(b"a\n").count(), 1);
        assert_eq!(Lines::new(b"").count(), 0);
    }

    #[test]
    fn trimming_drops_json_white_space_only() {
        let text = b" \t{\"a\":1}\r";
        assert_eq!(trim_line(text, 0..text.len()), (2, 7));
        assert_eq!(trim_line(b" \r\t", 0..3).1, 0);
    }

    #[test]
    fn chunks_end_at_line_boundaries_and_cover_everything() {
        let text = b"aaaa\nbb\ncccccc\nd\n\ne";
        for target in 1..25 {
            let cut: Vec<_> = chunks(text, 0, target).collect();
            assert_eq!(cut.first().unwrap().start, 0);
            assert_eq!(cut.last().unwrap().end, text.len());
            for pair in cut.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(text[pair[0].end - 1], b'\n');
            }
        }
    }

    /// What [`read_blocks`] sends for `input` read in pieces of `piece` bytes, joined.
    fn blocks_of(input: &[u8], piece: usize, max_line: usize) -> Vec<u8> {
        struct Pieces(Vec<u8>, usize);
        impl Read for Pieces {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(self.0.len()).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        read_blocks(Box::new(Pieces(input.to_vec(), piece)), max_line, &tx).unwrap();
        drop(tx);
        let blocks: Vec<Vec<u8>> = rx.iter().collect();
        for block in &blocks[..blocks.len().saturating_sub(1)] {
            assert_eq!(block.last(), Some(&b'\n'), "blocks end at line ends");
        }
        blocks.concat()
    }

    #[test]
    fn a_reader_keeps_short_lines_whole_and_too_long_ones_too_long() {
        let input = b"ab\nxxxxxxxxxx\ncd\n\nyyyyy\nzzzzzz\nlast-too-long";
        for piece in [1, 2, 5, 64] {
            let read = blocks_of(input, piece, 5);
            let (wanted, got): (Vec<_>, Vec<_>) = (
                input.split(|&b| b == b'\n').collect(),
                read.split(|&b| b == b'\n').collect(),
            );
            assert_eq!(wanted.len(), got.len(), "one line for one line");
            for (want, got) in wanted.iter().zip(&got) {
                if want.len() <= 5 {
                    assert_eq!(want, got);
                } else {
                    assert!(want.starts_with(got) && got.len() > 5, "{got:?}");
                }
            }
        }
        // An endless line is cut after one byte more than the maximum.
        assert_eq!(blocks_of(&[b'x'; 100], 1, 5), b"xxxxxx");
        assert_eq!(blocks_of(b"\xEF\xBB\xBFabc\n", 1, 3), b"abc\n");
    }

    #[test]
    fn counted_blocks_end_where_reading_resumes_in_the_source() {
        struct Pieces(Vec<u8>, usize);
        impl Read for Pieces {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(self.0.len()).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        // A byte-order mark, a too-long line whose dropped bytes count, a final line without
        // `\n`.
        let input = b"\xEF\xBB\xBFab\nxxxxxxxxxx\ncd\n\nyy\nlast";
        for piece in [1, 2, 3, 5, 64] {
            let (tx, rx) = crossbeam_channel::unbounded();
            read_blocks_counted(Box::new(Pieces(input.to_vec(), piece)), 5, &tx).unwrap();
            drop(tx);
            let mut previous = BlockEnd::default();
            for (block, end) in rx.iter() {
                assert!(end.bytes > previous.bytes && end.lines > previous.lines);
                let source = &input[..end.bytes as usize];
                if block.ends_with(b"\n") {
                    assert_eq!(source.last(), Some(&b'\n'), "piece {piece}: {end:?}");
                    assert_eq!(
                        end.lines,
                        source.iter().filter(|&&b| b == b'\n').count() as u64
                    );
                } else {
                    assert_eq!(
                        end,
                        BlockEnd {
                            bytes: input.len() as u64,
                            lines: 6
                        }
                    );
                }
                previous = end;
            }
            assert_eq!(previous.bytes, input.len() as u64, "piece {piece}");
        }
    }

    #[test]
    fn a_too_long_line_that_a_chunk_end_falls_in_is_a_piece_of_its_own() {
        let text = b"ab\ncd\nxxxxxxxxxxxxxxxx\nef\nyyyyyyyyyyyyyyyyyyyy";
        let released = std::sync::Mutex::new(Vec::new());
        let release = |range: Range<usize>| released.lock().unwrap().push(range);
        for target in 1..12 {
            released.lock().unwrap().clear();
            let mut cut = chunks(text, 0, target).with_limit(8, &release);
            let mut pieces = Vec::new();
            while let Some(piece) = cut.next_piece() {
                pieces.push(piece);
            }
            assert_eq!(pieces.first().unwrap().0.start, 0);
            assert_eq!(pieces.last().unwrap().0.end, text.len());
            for pair in pieces.windows(2) {
                assert_eq!(pair[0].0.end, pair[1].0.start);
                assert_eq!(text[pair[0].0.end - 1], b'\n');
            }
            for (range, too_long) in &pieces {
                if *too_long {
                    let line = &text[range.clone()];
                    assert!(line.len() > 9, "target {target}: {range:?}");
                    assert!(!line[..line.len() - 1].contains(&b'\n'), "one line");
                }
            }
            let long: Vec<_> = pieces.iter().filter(|p| p.1).map(|p| p.0.clone()).collect();
            assert_eq!(long.last(), Some(&(26..text.len())), "target {target}");
            assert!(!released.lock().unwrap().is_empty());
        }
    }

    #[test]
    fn standard_input_is_named_by_dash_for_the_stream_and_by_its_device_paths() {
        for path in ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"] {
            assert!(reads_stdin(Path::new(path), false), "{path}");
        }
        assert!(reads_stdin(Path::new("-"), true));
        assert!(
            !reads_stdin(Path::new("-"), false),
            "a batch named - is a file"
        );
        for path in ["./-", "/dev/fd/01", "/dev/stdout", "stdin"] {
            assert!(!reads_stdin(Path::new(path), true), "{path}");
        }
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let log = LogFile::from_bytes("x", b"\xEF\xBB\xBF{}\n".to_vec());
        assert_eq!(log.body(), b"{}\n");
    }
}
