//! Outputs of a live run resumed from a checkpoint, written exactly once.
//!
//! At a checkpoint each output file has some length `L` ([`OutputMark`]). A run killed after
//! it may have written more lines, decided after the checkpoint; the resumed run decides them
//! again (the replay is deterministic). [`ResumeWriter`] compares the first bytes it is given
//! with what the output already holds after `L` and writes nothing while they agree, then
//! appends: no line reaches the file twice, and a torn last line that is the start of a line
//! decided gets its rest appended, so a reader following the file (`tail -F`) never sees a
//! line twice. Bytes that differ stop the run before anything is written, naming the output.
//!
//! An output rotated or truncated since the checkpoint (`logrotate`, rename + create or
//! copytruncate) is shorter than `L` or another file: its old content is looked for beside it
//! (`NAME.1` first, then a file of the folder with its inode) and, when found, what it holds
//! after `L` counts as written, then what the output file holds now. When the old content is
//! gone, the output file must continue the checkpoint; the lines decided after the checkpoint
//! that reached the old file are written again, and a warning says so.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{NamedWriteError, shown};
use crate::ingest::position::{FileIdentity, Fingerprint};

/// How many bytes before an output's checkpoint length its mark covers: the file's end is
/// recognised by them (an output rewritten by another program, a copy made by a rotation).
pub const MARK_BYTES: u64 = 4096;

/// An output at a checkpoint: its file and length, and the hash of its last bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputMark {
    /// The file; `None` when the output is not a regular file (standard output, a FIFO, a
    /// device), which has no length to resume at: `len` counts the bytes written through.
    pub file: Option<FileIdentity>,
    pub len: u64,
    /// Of the bytes `len - min(len, MARK_BYTES)..len`.
    pub tail: Fingerprint,
}

impl OutputMark {
    /// The mark of `file` at `len` bytes.
    pub fn of(file: &File, len: u64) -> io::Result<OutputMark> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(OutputMark {
                file: None,
                len,
                tail: Fingerprint::default(),
            });
        }
        let covered = len.min(MARK_BYTES);
        Ok(OutputMark {
            file: Some(FileIdentity::of(&meta)),
            len,
            tail: Fingerprint::of_range(file, len - covered, covered)?,
        })
    }

    /// Whether `file` holds this mark's bytes just before `len`.
    fn ends(&self, file: &File) -> bool {
        let covered = self.len.min(MARK_BYTES);
        file.metadata().is_ok_and(|meta| meta.len() >= self.len)
            && Fingerprint::of_range(file, self.len - covered, covered)
                .is_ok_and(|t| t == self.tail)
    }
}

/// Bytes of a file already written after a checkpoint: `from..to`.
#[derive(Debug)]
struct Written {
    file: File,
    from: u64,
    to: u64,
}

/// What an output already holds after its checkpoint, found by [`ResumeWriter::resume`].
#[derive(Debug, Default)]
pub struct AlreadyWritten {
    parts: VecDeque<Written>,
}

impl AlreadyWritten {
    /// Bytes left to match.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.to - p.from).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An output writer that first matches what the output already holds after its checkpoint,
/// writing nothing while it agrees, then writes through to `inner` (an
/// [`OutputWriter`](crate::output::file::OutputWriter) appending to the output).
pub struct ResumeWriter<W: Write> {
    inner: W,
    /// The output as the user named it, for errors.
    path: PathBuf,
    already: AlreadyWritten,
    /// The output's file, for marks; `None` for an output that is not a regular file.
    file: Option<File>,
    /// Bytes given to the writer (matched or written), for marks of outputs that are not
    /// regular files.
    given: u64,
    /// The compared bytes read from the file (kept: no allocation per line).
    scratch: Vec<u8>,
}

impl<W: Write> ResumeWriter<W> {
    /// A writer that starts afresh: nothing to match (a run without a checkpoint).
    pub fn fresh(inner: W, path: &Path, file: Option<File>) -> ResumeWriter<W> {
        ResumeWriter {
            inner,
            path: path.to_path_buf(),
            already: AlreadyWritten::default(),
            file,
            given: 0,
            scratch: Vec::new(),
        }
    }

    /// Resumes the output `path` whose file (opened for appending) is `file`, at `mark`.
    /// Returns the writer and a warning when lines may be written again (the output was
    /// rotated and its old content is gone). Fails, naming the output, when the output no
    /// longer holds what it held at the checkpoint (rewritten by another program): nothing is
    /// written.
    pub fn resume(
        inner: W,
        path: &Path,
        file: File,
        mark: &OutputMark,
    ) -> io::Result<(ResumeWriter<W>, Option<String>)> {
        let named = |error: io::Error| NamedWriteError::wrap(path, error);
        let meta = file.metadata().map_err(named)?;
        let mut writer = ResumeWriter::fresh(inner, path, None);
        let Some(saved) = mark.file.filter(|_| meta.is_file()) else {
            // A pipe or a device: what it was given after the checkpoint cannot be read back.
            writer.given = mark.len;
            writer.file = meta.is_file().then_some(file);
            return Ok((writer, None));
        };
        let id = FileIdentity::of(&meta);
        let len = meta.len();
        let part = |file: File, from, to| Written { file, from, to };
        let mut warning = None;
        if id == saved && mark.ends(&file) {
            let handle = file.try_clone().map_err(named)?;
            writer.already.parts.push_back(part(handle, mark.len, len));
        } else if let Some(old) = find_old(path, mark, id) {
            let old_len = old.metadata().map_err(named)?.len();
            writer.already.parts.push_back(part(old, mark.len, old_len));
            let handle = file.try_clone().map_err(named)?;
            writer.already.parts.push_back(part(handle, 0, len));
        } else if mark.ends(&file) {
            // A copy of the output put in its place: it holds the checkpoint.
            let handle = file.try_clone().map_err(named)?;
            writer.already.parts.push_back(part(handle, mark.len, len));
        } else if id == saved && len >= mark.len {
            return Err(named(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "its content before byte {} is not what it was at the checkpoint: another \
                     program changed it, so lines could be lost or written twice; nothing was \
                     written (restore it, or name another output with another --state)",
                    mark.len
                ),
            )));
        } else {
            // Rotated or truncated, its old content gone: the file now must continue the
            // checkpoint.
            let handle = file.try_clone().map_err(named)?;
            writer.already.parts.push_back(part(handle, 0, len));
            warning = Some(format!(
                "warning: {}: rotated or truncated since the checkpoint, and its old content is \
                 not beside it: lines decided after the checkpoint that reached the old file \
                 are written again",
                shown(path)
            ));
        }
        writer.already.parts.retain(|p| p.to > p.from);
        writer.file = Some(file);
        Ok((writer, warning))
    }

    /// Bytes still to be matched before anything is written.
    pub fn pending(&self) -> u64 {
        self.already.len()
    }

    /// The output's mark now, for a checkpoint: call once the writer is flushed (at a drained
    /// point). While the output is still being matched, the place matched up to.
    pub fn mark(&self) -> io::Result<OutputMark> {
        let named = |error: io::Error| NamedWriteError::wrap(&self.path, error);
        if let Some(part) = self.already.parts.front() {
            return OutputMark::of(&part.file, part.from).map_err(named);
        }
        match &self.file {
            Some(file) => {
                let len = file.metadata().map_err(named)?.len();
                OutputMark::of(file, len).map_err(named)
            }
            None => Ok(OutputMark {
                file: None,
                len: self.given,
                tail: Fingerprint::default(),
            }),
        }
    }

    /// Matches `bytes` against the next bytes already written; returns how many matched.
    fn match_written(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut matched = 0;
        while matched < bytes.len() {
            let Some(part) = self.already.parts.front_mut() else {
                break;
            };
            let n = ((part.to - part.from) as usize)
                .min(bytes.len() - matched)
                .min(1 << 16);
            self.scratch.resize(n, 0);
            part.file.read_exact_at(&mut self.scratch, part.from)?;
            if self.scratch[..] != bytes[matched..matched + n] {
                let at = part.from
                    + self
                        .scratch
                        .iter()
                        .zip(&bytes[matched..])
                        .take_while(|(a, b)| a == b)
                        .count() as u64;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "what it holds after the checkpoint differs from what this run \
                         decides (at byte {at}): another program wrote to it, or it is the \
                         output of another run; nothing was written"
                    ),
                ));
            }
            part.from += n as u64;
            matched += n;
            if part.from == part.to {
                self.already.parts.pop_front();
            }
        }
        Ok(matched)
    }
}

/// The output's content at the checkpoint, beside it after a rotation: `NAME.1`, then any
/// regular file of the folder with the checkpoint's inode; it must hold the bytes that ended
/// the output at the checkpoint. `now` (the output's file) is never one.
fn find_old(path: &Path, mark: &OutputMark, now: FileIdentity) -> Option<File> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut first = path.file_name()?.to_os_string();
    first.push(".1");
    let candidates = std::iter::once(dir.join(first)).chain(
        std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                entry
                    .metadata()
                    .is_ok_and(|m| m.is_file() && Some(FileIdentity::of(&m)) == mark.file)
            })
            .map(|entry| entry.path()),
    );
    for candidate in candidates {
        let Ok(file) = File::open(&candidate) else {
            continue;
        };
        let Ok(meta) = file.metadata() else {
            continue;
        };
        if meta.is_file() && FileIdentity::of(&meta) != now && mark.ends(&file) {
            return Some(file);
        }
    }
    None
}

impl<W: Write> Write for ResumeWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let matched = if self.already.parts.is_empty() {
            0
        } else {
            self.match_written(bytes)
                .map_err(|error| NamedWriteError::wrap(&self.path, error))?
        };
        if matched < bytes.len() {
            self.inner.write_all(&bytes[matched..])?;
        }
        self.given += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::file::OutputWriter;
    use std::fs::OpenOptions;

    const A: &str = "{\"a\": 1, \"mean\": \"1.00\", \"sd\": \"0.00\"}\n";
    const B: &str = "{\"b\": 2, \"mean\": \"1.00\", \"sd\": \"0.00\"}\n";
    const C: &str = "{\"c\": 3, \"mean\": \"1.00\", \"sd\": \"0.00\"}\n";
    const D: &str = "{\"d\": 4, \"mean\": \"1.00\", \"sd\": \"0.00\"}\n";

    fn open(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
    }

    /// The output at `path` holding `before` at the checkpoint: its mark.
    fn checkpoint(path: &Path, before: &str) -> OutputMark {
        std::fs::write(path, before).unwrap();
        OutputMark::of(&open(path), before.len() as u64).unwrap()
    }

    /// The resumed run's writer over the existing live output writer.
    fn resumed(
        path: &Path,
        mark: &OutputMark,
    ) -> io::Result<(ResumeWriter<OutputWriter>, Option<String>)> {
        let file = open(path);
        let inner = OutputWriter::new(file.try_clone().unwrap(), path.to_path_buf()).appending();
        ResumeWriter::resume(inner, path, file, mark)
    }

    /// Writes the lines the resumed run decides, one `write` each, and flushes.
    fn decide(writer: &mut impl Write, lines: &[&str]) -> io::Result<()> {
        for line in lines {
            writer.write_all(line.as_bytes())?;
        }
        writer.flush()
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn lines_written_after_the_checkpoint_are_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mark = checkpoint(&path, A);
        std::fs::write(&path, [A, B, C].concat()).unwrap(); // written before the kill
        let (mut writer, warning) = resumed(&path, &mark).unwrap();
        assert_eq!(
            (warning, writer.pending()),
            (None, (B.len() + C.len()) as u64)
        );
        decide(&mut writer, &[B]).unwrap();
        // A checkpoint while matching records the place matched up to.
        assert_eq!(writer.mark().unwrap().len, (A.len() + B.len()) as u64);
        decide(&mut writer, &[C, D]).unwrap();
        assert_eq!(read(&path), [A, B, C, D].concat());
        assert_eq!(
            writer.mark().unwrap(),
            OutputMark::of(&open(&path), read(&path).len() as u64).unwrap()
        );
    }

    #[test]
    fn an_output_at_its_checkpoint_length_is_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mark = checkpoint(&path, A);
        let (mut writer, _) = resumed(&path, &mark).unwrap();
        assert_eq!(writer.pending(), 0);
        decide(&mut writer, &[B]).unwrap();
        assert_eq!(read(&path), [A, B].concat());
    }

    #[test]
    fn a_torn_last_line_gets_its_rest_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mark = checkpoint(&path, A);
        std::fs::write(&path, format!("{A}{B}{}", &C[..10])).unwrap();
        let (mut writer, _) = resumed(&path, &mark).unwrap();
        decide(&mut writer, &[B, C, D]).unwrap();
        assert_eq!(read(&path), [A, B, C, D].concat());
    }

    #[test]
    fn bytes_that_differ_stop_the_run_naming_the_output_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mark = checkpoint(&path, A);
        std::fs::write(&path, [A, C].concat()).unwrap();
        let (mut writer, _) = resumed(&path, &mark).unwrap();
        let error = decide(&mut writer, &[B, C]).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "{}: cannot write: what it holds after the checkpoint differs",
                path.display()
            )),
            "{error}"
        );
        assert!(
            error.contains(&format!("at byte {}", A.len() + 2)),
            "{error}"
        );
        assert_eq!(read(&path), [A, C].concat());
        // The content before the checkpoint changed in place: refused at once.
        let mark = checkpoint(&path, A);
        std::fs::write(&path, [B, C].concat()).unwrap();
        let error = resumed(&path, &mark).err().unwrap().to_string();
        assert!(
            error.contains("is not what it was at the checkpoint"),
            "{error}"
        );
        assert_eq!(read(&path), [B, C].concat());
    }

    #[test]
    fn after_rename_and_create_the_old_file_counts_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mark = checkpoint(&path, A);
        std::fs::write(&path, [A, B].concat()).unwrap();
        // Rotated (to any name: found by its inode) while the run went on, then killed.
        std::fs::rename(&path, dir.path().join("out.json-1")).unwrap();
        std::fs::write(&path, C).unwrap();
        let (mut writer, warning) = resumed(&path, &mark).unwrap();
        assert!(warning.is_none());
        decide(&mut writer, &[B, C, D]).unwrap();
        assert_eq!(read(&path), [C, D].concat());
        assert_eq!(read(&dir.path().join("out.json-1")), [A, B].concat());
    }

    #[test]
    fn after_a_copytruncate_the_copy_beside_counts_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mark = checkpoint(&path, A);
        std::fs::write(&path, [A, B].concat()).unwrap();
        std::fs::copy(&path, dir.path().join("out.json.1")).unwrap();
        open(&path).set_len(0).unwrap();
        let (mut writer, warning) = resumed(&path, &mark).unwrap();
        assert!(warning.is_none());
        decide(&mut writer, &[B, C]).unwrap();
        assert_eq!(read(&path), C);
    }

    #[test]
    fn an_output_rotated_with_its_old_content_gone_is_written_on_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mark = checkpoint(&path, [A, B].concat().as_str());
        open(&path).set_len(0).unwrap();
        let (mut writer, warning) = resumed(&path, &mark).unwrap();
        let warning = warning.unwrap();
        assert!(
            warning.starts_with(&format!(
                "warning: {}: rotated or truncated",
                path.display()
            )),
            "{warning}"
        );
        decide(&mut writer, &[C, D]).unwrap();
        assert_eq!(read(&path), [C, D].concat());
    }

    #[test]
    fn an_output_that_is_not_a_regular_file_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let mark = OutputMark {
            file: None,
            len: 5,
            tail: Fingerprint::default(),
        };
        let file = open(&dir.path().join("plain"));
        let (mut writer, _) = ResumeWriter::resume(Vec::new(), &path, file, &mark).unwrap();
        decide(&mut writer, &[A]).unwrap();
        assert_eq!(writer.inner, A.as_bytes());
    }
}
