//! The pairs' flagged-purchases files of a sweep whose grid needs more descriptors than the
//! process may hold (two per file through the output plan): written through a private folder
//! in `--outputs`, one file open at a time, and renamed into place together at the end.
//!
//! The folder, `.anomaly-detect-sweep-XXXXXXXXXXXX.tmpdir`, holds an exclusive `flock` while
//! the sweep lasts; a sweep removes such folders left by a killed sweep only when it can take
//! their lock (no other sweep uses them). Each pair's lines are gathered in memory
//! ([`BUFFER`] bytes at most per pair) and appended to the pair's file in the folder when the
//! buffer fills. Only regular files (or names not yet taken) can be written this way: a pair
//! file that is a symbolic link or a special file is refused before any work.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Fatal, NamedWriteError};
use crate::output::file::{self, same_file, sync_dir};

/// The private folders' names start and end with these.
const PREFIX: &str = ".anomaly-detect-sweep-";
const SUFFIX: &str = ".tmpdir";

/// Bytes of a pair's lines gathered before they are appended to its file: with a 32 x 32 grid
/// at most 16 MiB in all.
const BUFFER: usize = 16 << 10;

/// The pair files of a sweep, written through a private folder.
pub struct ParkedPairs {
    /// `--outputs`.
    dir: PathBuf,
    /// The private folder in `dir`, and its descriptor, which holds the lock.
    temp: PathBuf,
    _lock: File,
    pairs: Vec<Pair>,
    /// Set once every file is in place: nothing is left to remove.
    done: bool,
}

struct Pair {
    /// The pair's file as the user named it.
    path: PathBuf,
    /// Its new content in the private folder.
    part: PathBuf,
    /// The file it replaces, whose mode (and owner, as root) the new one keeps.
    existing: Option<Metadata>,
    buf: Vec<u8>,
    /// Whether `part` exists.
    created: bool,
}

impl ParkedPairs {
    /// Prepares the pair files `paths`, all in `dir`: refuses any that is not a regular file,
    /// and makes this sweep's private folder.
    pub fn create(dir: &Path, paths: Vec<PathBuf>) -> Result<ParkedPairs, Fatal> {
        let mut pairs = Vec::with_capacity(paths.len());
        for (index, path) in paths.into_iter().enumerate() {
            let existing = match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_file() => Some(meta),
                Ok(_) => {
                    return Err(Fatal::Write {
                        path,
                        error: io::Error::other(
                            "not a regular file: the grid has more pair files than can be open \
                             at once, and they are written through a folder of their own, which \
                             replaces regular files only",
                        ),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(error) => return Err(Fatal::Write { path, error }),
            };
            pairs.push(Pair {
                path,
                part: PathBuf::from(index.to_string()),
                existing,
                buf: Vec::new(),
                created: false,
            });
        }
        let fail = |error| Fatal::Write {
            path: dir.to_path_buf(),
            error,
        };
        let (temp, lock) = make_private_dir(dir).map_err(fail)?;
        for pair in &mut pairs {
            pair.part = temp.join(&pair.part);
        }
        Ok(ParkedPairs {
            dir: dir.to_path_buf(),
            temp,
            _lock: lock,
            pairs,
            done: false,
        })
    }

    /// Appends `bytes` (whole lines) to the file of the pair at `index` (grid order).
    pub fn write(&mut self, index: usize, bytes: &[u8]) -> io::Result<()> {
        let pair = &mut self.pairs[index];
        pair.buf.extend_from_slice(bytes);
        if pair.buf.len() >= BUFFER {
            pair.flush()?;
        }
        Ok(())
    }

    /// Writes out every pair's lines and makes each new file durable, with the mode (and
    /// owner) of the file it replaces: whatever can fail, before anything is replaced.
    pub fn prepare(&mut self) -> Result<(), Fatal> {
        for pair in &mut self.pairs {
            pair.flush().map_err(Fatal::Output)?;
            let path = pair.path.clone();
            let fail = |error| Fatal::Write {
                path: path.clone(),
                error,
            };
            let file = pair.open().map_err(fail)?;
            if let Some(meta) = &pair.existing {
                keep_owner_and_mode(&file, meta).map_err(fail)?;
            }
            file.sync_all().map_err(fail)?;
        }
        Ok(())
    }

    /// Renames every prepared file over its pair's file, then removes the private folder.
    pub fn put_in_place(mut self) -> Result<(), Fatal> {
        for pair in &self.pairs {
            std::fs::rename(&pair.part, &pair.path).map_err(|error| Fatal::Write {
                path: pair.path.clone(),
                error,
            })?;
        }
        self.done = true;
        let _ = std::fs::remove_dir(&self.temp);
        sync_dir(&self.dir);
        Ok(())
    }
}

impl Pair {
    /// Opens the pair's new file, created when missing (mode 0666 less the umask), to append.
    fn open(&mut self) -> io::Result<File> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o666)
            .open(&self.part)?;
        self.created = true;
        Ok(file)
    }

    /// Appends the gathered lines to the pair's new file.
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self
            .open()
            .and_then(|mut file| file.write_all(&self.buf))
            .map_err(|error| NamedWriteError::wrap(&self.path, error));
        self.buf.clear();
        written
    }
}

impl Drop for ParkedPairs {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for pair in self.pairs.iter().filter(|pair| pair.created) {
            let _ = std::fs::remove_file(&pair.part);
        }
        let _ = std::fs::remove_dir(&self.temp);
    }
}

/// Gives a new file the owner (when run as root) and mode of the file it replaces.
fn keep_owner_and_mode(file: &File, meta: &Metadata) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))?;
    }
    // After the owner: changing the owner clears set-user-ID bits.
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

/// Makes a private folder in `dir` and takes its lock; a cleaner that removed the fresh
/// folder before the lock was taken makes another one be made.
fn make_private_dir(dir: &Path) -> io::Result<(PathBuf, File)> {
    loop {
        let temp = dir.join(private_name());
        match std::fs::DirBuilder::new().mode(0o700).create(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        let lock = open_dir(&temp)?;
        file::lock(&lock, true)?;
        if same_file(&lock, &temp) {
            return Ok((temp, lock));
        }
    }
}

/// `.anomaly-detect-sweep-XXXXXXXXXXXX.tmpdir`, from the clock, the process and a counter.
fn private_name() -> String {
    file::unique_name(PREFIX, SUFFIX)
}

fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// Removes the private folders in `dir` that no sweep holds: those whose lock can be taken
/// (left by a sweep killed without a chance to clean up). Every sweep with `--outputs` runs it.
pub fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_private = name.to_str().is_some_and(|n| {
            n.len() > PREFIX.len() + SUFFIX.len() && n.starts_with(PREFIX) && n.ends_with(SUFFIX)
        });
        if !is_private || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let Ok(lock) = open_dir(&path) else {
            continue;
        };
        if file::lock(&lock, false).is_ok() && same_file(&lock, &path) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_held_private_folder_survives_and_a_stale_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(format!("{PREFIX}000000000000{SUFFIX}"));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("0"), "left by a killed sweep").unwrap();
        let held = ParkedPairs::create(dir.path(), vec![dir.path().join("a")]).unwrap();
        remove_stale(dir.path());
        assert_eq!(
            names(dir.path()),
            [held.temp.file_name().unwrap().to_str().unwrap()],
            "a held folder is not stale"
        );
        drop(held);
        assert!(
            names(dir.path()).is_empty(),
            "nothing left by a sweep that failed"
        );
    }

    #[test]
    fn pair_files_are_replaced_together_with_their_lines_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "old\n").unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut pairs = ParkedPairs::create(dir.path(), vec![a.clone(), b.clone()]).unwrap();
        let line = vec![b'x'; 1000];
        for _ in 0..40 {
            pairs.write(0, &line).unwrap();
        }
        pairs.prepare().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"old\n", "nothing replaced yet");
        pairs.put_in_place().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), line.repeat(40));
        assert_eq!(
            std::fs::read(&b).unwrap(),
            b"",
            "a pair that flags nothing: empty"
        );
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    #[test]
    fn a_pair_file_that_is_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("a");
        std::os::unix::fs::symlink("elsewhere", &link).unwrap();
        let refused = ParkedPairs::create(dir.path(), vec![link]).err().unwrap();
        assert!(
            refused.to_string().contains("not a regular file"),
            "{refused}"
        );
        assert_eq!(names(dir.path()), ["a"]);
    }
}
