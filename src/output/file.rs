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
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
    unique_name(TEMP_PREFIX, TEMP_SUFFIX)
}

/// `{prefix}XXXXXXXXXXXX{suffix}`: twelve hex digits mixed from the clock, the process id and
/// a counter, so that names made at once, or by processes sharing a folder, differ.
pub fn unique_name(prefix: &str, suffix: &str) -> String {
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
    format!("{prefix}{:012x}{suffix}", mixed >> 16)
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
pub fn lock(file: &File, wait: bool) -> io::Result<()> {
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
pub fn same_file(file: &File, path: &Path) -> bool {
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

/// Makes every write to `file` go to its end, as if it had been opened with `O_APPEND`: the
/// lines of other writers are never overwritten, and after a truncation (`logrotate`'s
/// copytruncate) writes go to the new end instead of leaving a hole of zeros.
pub fn set_append(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL and F_SETFL only read and set the open file's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_APPEND) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How long a writer waits for the lock of a file appended to before writing without it.
const APPEND_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the exclusive `flock` of a file appended to, held while this process writes to it or
/// repairs its end, so that runs of this program appending to one file take turns: a write
/// cut short is cut back before another run appends after it, and a run never repairs the
/// end of a line another run is writing. Returns whether the lock is held: after
/// two seconds (a program that is not this one keeps the lock), the write goes ahead
/// without it, still whole lines at the end of the file (`O_APPEND`).
pub fn lock_for_append(file: &File) -> bool {
    let started = std::time::Instant::now();
    loop {
        match lock(file, false) {
            Ok(()) => return true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if started.elapsed() >= APPEND_LOCK_WAIT {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // A file system without locks.
            Err(_) => return false,
        }
    }
}

/// Releases the `flock` held through `file`.
pub fn unlock(file: &File) {
    // SAFETY: the descriptor is open for the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// Whether `path` (a path without symbolic links) is a mount point: a file bind-mounted over
/// another (`mount --bind`, `docker run -v out.json:/out.json`), which `rename` cannot replace
/// (`EBUSY`). Asks `statx` for the mount-root attribute (Linux 5.8), else compares the mount
/// ids of the file and its folder, else their devices (a bind mount from the same file system
/// is then not seen).
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    #[cfg(target_os = "linux")]
    {
        let root = libc::STATX_ATTR_MOUNT_ROOT as u64;
        if let Some(file) = statx(path)? {
            if file.stx_attributes_mask & root != 0 {
                return Ok(file.stx_attributes & root != 0);
            }
            if file.stx_mask & libc::STATX_MNT_ID != 0
                && let Some(dir) = statx(dir)?
                && dir.stx_mask & libc::STATX_MNT_ID != 0
            {
                return Ok(file.stx_mnt_id != dir.stx_mnt_id);
            }
        }
    }
    Ok(std::fs::metadata(path)?.dev() != std::fs::metadata(dir)?.dev())
}

/// `statx` of `path` with its mount id; `None` where the kernel or a sandbox refuses the call.
#[cfg(target_os = "linux")]
fn statx(path: &Path) -> io::Result<Option<libc::statx>> {
    let name = CString::new(path.as_os_str().as_bytes())?;
    let mut buf = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the name is a NUL-terminated C string and the buffer a `statx`, both live for
    // the call.
    let done = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BASIC_STATS | libc::STATX_MNT_ID,
            buf.as_mut_ptr(),
        )
    };
    if done == 0 {
        // SAFETY: filled by the kernel (and zeroed before).
        return Ok(Some(unsafe { buf.assume_init() }));
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL) => Ok(None),
        _ => Err(error),
    }
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
/// the file in every error, and, when appending (a regular file in live mode), takes the file's
/// [`lock_for_append`] for each write and cuts a write that fails or stops short back to the
/// last whole line it wrote.
pub struct OutputWriter {
    file: File,
    /// The output as the user named it.
    path: PathBuf,
    buf: Vec<u8>,
    /// A regular file appended to (opened `O_APPEND`).
    append: bool,
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
            append: false,
            waits,
        }
    }

    /// The file is appended to: writes take turns with other writers of this program, and a
    /// failed write is cut back to its last whole line.
    pub fn appending(mut self) -> OutputWriter {
        self.append = true;
        self
    }

    fn named(&self, error: io::Error) -> io::Error {
        NamedWriteError::wrap(&self.path, error)
    }

    /// Writes `buf[..end]` out; on failure, keeps only the whole lines that reached the file.
    fn write_out(&mut self, end: usize) -> io::Result<()> {
        if !self.append {
            return self.write_all_of(end);
        }
        let locked = lock_for_append(&self.file);
        let written = self.write_all_of(end);
        if locked {
            unlock(&self.file);
        }
        written
    }

    fn write_all_of(&mut self, end: usize) -> io::Result<()> {
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
        self.buf.drain(..end);
        Ok(())
    }

    /// A write failed after `done` bytes of the buffer reached the file.
    fn fail(&mut self, done: usize, error: io::Error) -> io::Result<()> {
        if self.append {
            let whole = memchr::memrchr(b'\n', &self.buf[..done]).map_or(0, |at| at + 1);
            let partial = (done - whole) as u64;
            if partial > 0
                && let Err(cut) = cut_back(&self.file, partial)
            {
                let error = io::Error::new(
                    error.kind(),
                    format!("{error}; and cannot remove the partly written line: {cut}"),
                );
                self.buf.clear();
                return Err(self.named(error));
            }
        }
        self.buf.clear();
        Err(self.named(error))
    }

    /// The file written to.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Removes the last `partial` bytes written through `file` (opened `O_APPEND`: its offset is
/// the end of its last write), when they still end the file: bytes another program appended
/// since are never cut.
fn cut_back(file: &File, partial: u64) -> io::Result<()> {
    use std::io::Seek;
    let end = (&*file).stream_position()?;
    if file.metadata()?.len() != end || end < partial {
        return Err(io::Error::other(
            "the file was changed by another program meanwhile",
        ));
    }
    file.set_len(end - partial)
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
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_partly_written_line_is_cut_back_only_while_it_ends_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "").unwrap();
        let open = || {
            OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .unwrap()
        };
        let (mut mine, mut other) = (open(), open());
        mine.write_all(b"a\n").unwrap();
        other.write_all(b"b\n").unwrap();
        mine.write_all(b"torn").unwrap();
        cut_back(&mine, 4).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a\nb\n");
        // Another writer's line after the partial one: nothing is cut.
        mine.write_all(b"torn").unwrap();
        other.write_all(b"c\n").unwrap();
        assert!(cut_back(&mine, 4).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"a\nb\ntornc\n");
    }

    #[test]
    fn set_append_makes_writes_go_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "").unwrap();
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        set_append(&file).unwrap();
        file.write_all(b"first line\n").unwrap();
        // A copytruncate: the next write lands at the new end, not after a hole.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        file.write_all(b"b\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"b\n");
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
