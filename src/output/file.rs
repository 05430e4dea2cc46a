//! One output file on disk: where its bytes go while the run lasts (an unnamed temporary file,
//! a file appended to, a special file written through, standard output), how the new content
//! is put in place, and a writer that names the file in every error and never leaves a torn
//! line in a file appended to.
//!
//! Temporary files are unnamed (`O_TMPFILE`, Linux): a run killed at any moment leaves nothing.
//! Where the file system refuses them, a temporary file gets a name `.anomaly-detect-*.tmp` and
//! holds an exclusive `flock` for its whole life; [`remove_stale_temporaries`] removes only the
//! named temporaries whose lock it can take, so a live run's file is never taken for a stale
//! one, whatever host or PID namespace shares the folder.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{NamedWriteError, WriteStopped};

/// Named temporary files start with this and end with [`TEMP_SUFFIX`].
pub const TEMP_PREFIX: &str = ".anomaly-detect-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// Bytes gathered before a write to the file.
const BUFFER: usize = 1 << 16;

/// Set when the run is asked to stop (SIGINT, SIGTERM: see `signals`). A write to a pipe,
/// FIFO, socket or terminal whose reader stopped reading then gives up after about half a
/// second without room, so that a signal ends the run even while a write is blocked.
pub static STOP_WRITES: AtomicBool = AtomicBool::new(false);

/// How long a write to a file that is not a regular file waits for room before it looks at
/// [`STOP_WRITES`] again, in milliseconds.
const WAIT_STEP_MS: i32 = 100;

/// How many waits without any room a write gives a stopping run before it gives up: the
/// last lines still reach a reader that keeps reading, and a run whose reader stopped ends
/// within about half a second of the signal.
const STALLED_STEPS: u32 = 5;

/// The most bytes written at once to a file that is not a regular file, once it has room: a
/// pipe that polls writable has at least this much room, so the write never blocks.
const PIECE: usize = libc::PIPE_BUF;

/// A temporary file in a folder: unnamed, or named and locked.
pub struct Temp {
    file: File,
    dir: PathBuf,
    /// The name of a named temporary file (removed when dropped); `None` while unnamed.
    name: Option<PathBuf>,
}

impl Temp {
    /// Creates a temporary file in `dir` with the mode of an ordinary new file (0666 less the
    /// umask).
    pub fn create(dir: &Path) -> io::Result<Temp> {
        #[cfg(target_os = "linux")]
        {
            match OpenOptions::new()
                .write(true)
                .read(true)
                .mode(0o666)
                .custom_flags(libc::O_TMPFILE)
                .open(dir)
            {
                Ok(file) => {
                    // Locked, so that the name it gets just before its rename is not taken for
                    // a stale temporary by another run.
                    lock(&file, true)?;
                    return Ok(Temp {
                        file,
                        dir: dir.to_path_buf(),
                        name: None,
                    });
                }
                // The file system or the kernel has no unnamed temporary files.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT)
                    ) && dir.is_dir() => {}
                Err(e) => return Err(e),
            }
        }
        Temp::create_named(dir)
    }

    /// A named temporary file holding its lock.
    fn create_named(dir: &Path) -> io::Result<Temp> {
        loop {
            let name = dir.join(temp_name());
            let file = match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .mode(0o666)
                .open(&name)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            // A cleaner may have locked and removed the new name before this lock: then the
            // name no longer leads to this file, and another one is made.
            lock(&file, true)?;
            if same_file(&file, &name) {
                return Ok(Temp {
                    file,
                    dir: dir.to_path_buf(),
                    name: Some(name),
                });
            }
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Gives the temporary file a fresh name in its folder (a no-op when it has one), ready to
    /// be renamed; the lock keeps cleaners away from it.
    pub fn name(&mut self) -> io::Result<&Path> {
        if self.name.is_none() {
            loop {
                let name = self.dir.join(temp_name());
                match link_unnamed(&self.file, &name) {
                    Ok(()) => {
                        self.name = Some(name);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(self.name.as_deref().expect("named above"))
    }

    /// Renames the named temporary file over `target` (same folder).
    pub fn rename_over(mut self, target: &Path) -> io::Result<()> {
        let name = self.name()?.to_path_buf();
        std::fs::rename(&name, target)?;
        self.name = None;
        Ok(())
    }

    /// Puts the file at `target` unless something is there already (`AlreadyExists`).
    pub fn link_new(mut self, target: &Path) -> io::Result<()> {
        match self.name.take() {
            None => link_unnamed(&self.file, target),
            Some(name) => {
                let linked = std::fs::hard_link(&name, target);
                self.name = Some(name);
                linked
            }
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            let _ = std::fs::remove_file(name);
        }
    }
}

/// `.anomaly-detect-XXXXXXXXXXXX.tmp`, from the clock and a counter.
fn temp_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 32))
        .wrapping_add(
            COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    format!("{TEMP_PREFIX}{:012x}{TEMP_SUFFIX}", mixed >> 16)
}

/// Links an unnamed temporary file (or any open file) at `target`.
fn link_unnamed(file: &File, target: &Path) -> io::Result<()> {
    let to = CString::new(target.as_os_str().as_bytes())?;
    let proc_path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    // SAFETY: both paths are NUL-terminated C strings that outlive the calls.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::AlreadyExists {
        return Err(error);
    }
    // Without /proc: linking the descriptor itself (needs CAP_DAC_READ_SEARCH).
    let empty = c"";
    // SAFETY: as above; the descriptor is open.
    let linked = unsafe {
        libc::linkat(
            file.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if linked == 0 { Ok(()) } else { Err(error) }
}

/// An exclusive `flock` on `file`, waiting for it (`wait`) or not.
fn lock(file: &File, wait: bool) -> io::Result<()> {
    let operation = libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB };
    loop {
        // SAFETY: the descriptor is open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Whether `path` names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Removes the named temporary files in `dir` that no run holds: those whose lock can be
/// taken (left by a run killed without a chance to clean up, on a file system without
/// unnamed temporary files).
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_temp = name.to_str().is_some_and(|n| {
            n.len() > TEMP_PREFIX.len() + TEMP_SUFFIX.len()
                && n.starts_with(TEMP_PREFIX)
                && n.ends_with(TEMP_SUFFIX)
        });
        if !is_temp || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        if lock(&file, false).is_ok() && same_file(&file, &path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Duplicates descriptor N when `path` is `/dev/fd/N`, `/proc/self/fd/N`, `/dev/stdout` or
/// `/dev/stderr` (a pipe or socket inherited from the shell, `>(cmd)`: opening such a path
/// fails for a socket); `None` for other paths.
pub fn inherited_descriptor(path: &Path) -> Option<io::Result<File>> {
    let text = path.to_str()?;
    let fd: i32 = match text {
        "/dev/stdout" => 1,
        "/dev/stderr" => 2,
        _ => text
            .strip_prefix("/dev/fd/")
            .or_else(|| text.strip_prefix("/proc/self/fd/"))?
            .parse()
            .ok()?,
    };
    Some(duplicate(fd))
}

/// A new descriptor for `fd` (fails with `EBADF` when it is closed).
pub fn duplicate(fd: i32) -> io::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor table.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(new) }))
}

/// Makes the folder's entries durable (after a rename into it). Best effort: some file
/// systems refuse to sync a folder, and the rename has happened either way.
pub fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Cuts a file appended to back to its last whole line. Returns the number of bytes removed.
pub fn repair_tail(file: &File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = vec![0u8; 1 << 16];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let part = &mut block[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if end == len && part.last() == Some(&b'\n') {
            return Ok(0);
        }
        if let Some(at) = memchr::memrchr(b'\n', part) {
            end = start + at as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(end)?;
    Ok(len - end)
}

/// Waits until `file` (not a regular file) has room for a write of [`PIECE`] bytes, or reports
/// an error the write will tell. `Ok(false)`: the run is stopping ([`STOP_WRITES`]) and the
/// reader has taken nothing for [`STALLED_STEPS`] waits.
fn wait_for_room(file: &File) -> io::Result<bool> {
    let mut stalled = 0;
    loop {
        let mut poll = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid `pollfd` for the duration of the call.
        match unsafe { libc::poll(&mut poll, 1, WAIT_STEP_MS) } {
            // Room, or an error (a closed reader) that the write itself reports.
            ready if ready > 0 => return Ok(true),
            0 => {
                if STOP_WRITES.load(Ordering::Relaxed) {
                    stalled += 1;
                    if stalled >= STALLED_STEPS {
                        return Ok(false);
                    }
                }
            }
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// Writes an output: gathers bytes and writes them in large blocks (no write per line; to a
/// file that is not a regular file, in pieces that fit, each once there is room), names
/// the file in every error, and, when `undo` is set (a regular file appended to in live mode),
/// cuts the file back after a failed or short write so that it ends with a whole line.
pub struct OutputWriter {
    file: File,
    /// The output as the user named it.
    path: PathBuf,
    buf: Vec<u8>,
    /// The file's length after the last successful write, when failed writes are undone.
    undo: Option<u64>,
    /// Whether writes may block on a reader (not a regular file: a pipe, FIFO, socket,
    /// terminal): each waits for room, in pieces, looking at [`STOP_WRITES`] while it waits.
    waits: bool,
}

impl OutputWriter {
    pub fn new(file: File, path: PathBuf) -> OutputWriter {
        let waits = file.metadata().map_or(true, |meta| !meta.is_file());
        OutputWriter {
            file,
            path,
            buf: Vec::with_capacity(BUFFER),
            undo: None,
            waits,
        }
    }

    /// Failed writes are undone: the file is cut back to its last whole line.
    pub fn undoing(mut self) -> io::Result<OutputWriter> {
        self.undo = Some(self.file.metadata()?.len());
        Ok(self)
    }

    fn named(&self, error: io::Error) -> io::Error {
        NamedWriteError::wrap(&self.path, error)
    }

    /// Writes `buf[..end]` out; on failure, keeps only the whole lines that reached the file.
    fn write_out(&mut self, end: usize) -> io::Result<()> {
        let mut done = 0;
        while done < end {
            let mut piece = end;
            if self.waits {
                match wait_for_room(&self.file) {
                    Ok(true) => piece = end.min(done + PIECE),
                    Ok(false) => return self.fail(done, WriteStopped::error()),
                    Err(e) => return self.fail(done, e),
                }
            }
            match self.file.write(&self.buf[done..piece]) {
                Ok(0) => {
                    return self.fail(done, io::Error::from(io::ErrorKind::WriteZero));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(done, e),
            }
        }
        if let Some(len) = &mut self.undo {
            *len += end as u64;
        }
        self.buf.drain(..end);
        Ok(())
    }

    /// A write failed after `done` bytes of the buffer reached the file.
    fn fail(&mut self, done: usize, error: io::Error) -> io::Result<()> {
        if let Some(len) = self.undo {
            let whole = memchr::memrchr(b'\n', &self.buf[..done]).map_or(0, |at| at + 1);
            let keep = len + whole as u64;
            if let Err(cut) = self.file.set_len(keep) {
                let error = io::Error::new(
                    error.kind(),
                    format!("{error}; and cannot remove the partly written line: {cut}"),
                );
                self.buf.clear();
                return Err(self.named(error));
            }
            self.undo = Some(keep);
        }
        self.buf.clear();
        Err(self.named(error))
    }

    /// The file written to.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Write for OutputWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BUFFER
            && let Some(at) = memchr::memrchr(b'\n', &self.buf)
        {
            self.write_out(at + 1)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.write_out(self.buf.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_tail_cuts_back_to_the_last_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        for (before, after) in [
            (&b"a\nb\n"[..], &b"a\nb\n"[..]),
            (b"a\nb\n{\"event_", b"a\nb\n"),
            (b"torn", b""),
            (b"", b""),
        ] {
            std::fs::write(&path, before).unwrap();
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let removed = repair_tail(&file).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), after);
            assert_eq!(removed as usize, before.len() - after.len());
        }
    }

    #[test]
    fn a_locked_named_temporary_is_not_stale_and_an_unlocked_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let live = Temp::create_named(dir.path()).unwrap();
        let stale = dir
            .path()
            .join(format!("{TEMP_PREFIX}000000000000{TEMP_SUFFIX}"));
        std::fs::write(&stale, "left by a killed run").unwrap();
        remove_stale_temporaries(dir.path());
        assert!(live.name.as_ref().unwrap().exists());
        assert!(!stale.exists());
        let name = live.name.clone().unwrap();
        drop(live);
        assert!(!name.exists());
    }

    #[test]
    fn a_named_temporary_replaces_a_file_and_links_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::write(&target, "old").unwrap();
        let temp = Temp::create_named(dir.path()).unwrap();
        temp.file().write_all_at(b"new", 0).unwrap();
        temp.rename_over(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let temp = Temp::create_named(dir.path()).unwrap();
        let linked = Temp::create_named(dir.path()).unwrap();
        let exists = temp.link_new(&target).unwrap_err();
        assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
        linked.link_new(&dir.path().join("fresh")).unwrap();
        let mut names = names(dir.path());
        names.sort();
        assert_eq!(names, ["fresh", "out"], "no temporary left");
    }

    fn names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn an_unnamed_temporary_replaces_a_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::write(&target, "old").unwrap();
        let temp = Temp::create(dir.path()).unwrap();
        temp.file().write_all_at(b"new", 0).unwrap();
        temp.rename_over(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
