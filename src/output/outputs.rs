//! The run's outputs, from the command line to their place on disk.
//!
//! [`OutputPlan::new`] checks, before anything is read or written, that no output names an
//! input or another output: the same file by device and inode where it exists (symlinks, hard
//! links, `./x` and `x`), the same resolved path (canonical folder and file name) where it does
//! not; at most one output is `-`. [`OutputPlan::open`] prepares every output before the replay
//! (a missing folder or a permission problem fails at once): a temporary file beside the final
//! target for an output that is replaced, the file itself for one appended to, the file itself
//! for a special file (device, FIFO, socket, `/dev/fd/N`), which is written through and never
//! replaced. [`OpenOutputs::commit`] puts every replaced output in place only once the whole run
//! succeeded; dropping [`OpenOutputs`] instead leaves every old output as it was.
//!
//! Every command that writes files goes through these two steps.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Fatal, shown};
use crate::output::file::{
    OutputWriter, Temp, duplicate, inherited_descriptor, remove_stale_temporaries, repair_tail,
    sync_dir,
};
use crate::output::sink::{FlaggedLines, Sink};
use crate::output::social::{SocialLines, SocialList};

/// How an output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Written whole to a temporary file that replaces the output when the run commits.
    Replace,
    /// Appended to as the run goes (live mode), each line whole or not at all; created when
    /// missing.
    Append,
}

/// One output of a run: its role for messages (`OUTPUT`, `--feed`), its path as given, and
/// how it is written.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    pub role: &'static str,
    pub path: &'a Path,
    pub mode: Mode,
}

/// One input of a run: its role (`BATCH`) and path; `-` (standard input) clashes with nothing.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub role: &'static str,
    pub path: &'a Path,
}

/// What an output path leads to.
#[derive(Debug)]
enum Target {
    /// `-`.
    Stdout,
    /// An existing file that is not a regular file: written through.
    Special,
    /// A regular file, existing or not: `file` is the path after following symbolic links,
    /// where the new content goes.
    Regular {
        file: PathBuf,
        existing: Option<Metadata>,
    },
}

/// The checked outputs of a run, not yet opened.
#[derive(Debug)]
pub struct OutputPlan {
    outputs: Vec<(&'static str, PathBuf, Mode, Target)>,
}

/// Whether standard output was closed (`>&-`) when the process started. The Rust runtime puts
/// `/dev/null` in place of a closed standard descriptor before `main` runs, so that writes to
/// `-` would silently go nowhere: the binary sets this from a constructor that runs before
/// the runtime (see `main.rs`).
pub static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// What makes two paths the same file.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    /// A file that does not exist yet, by its resolved path.
    Path(PathBuf),
    Stdout,
}

impl OutputPlan {
    /// Checks the outputs against the inputs and each other, and where each one's content
    /// goes. Nothing is created or changed.
    pub fn new(outputs: &[Output<'_>], inputs: &[Input<'_>]) -> Result<OutputPlan, Fatal> {
        let mut plan = OutputPlan {
            outputs: Vec::new(),
        };
        // (role, path, identity) of everything already seen.
        let mut seen: Vec<(&'static str, &Path, Identity)> = Vec::new();
        for input in inputs {
            if input.path.as_os_str() == "-" {
                continue;
            }
            if let Some(identity) = input_identity(input.path) {
                seen.push((input.role, input.path, identity));
            }
        }
        for output in outputs {
            let fail = |problem: String| Fatal::Clash {
                path: output.path.to_path_buf(),
                problem,
            };
            let (target, identity) = resolve(output.path).map_err(|error| Fatal::Write {
                path: output.path.to_path_buf(),
                error,
            })?;
            // Standard output redirected to a file (`- >> batch_log.json`) is that file too.
            let redirected = (identity == Some(Identity::Stdout))
                .then(stdout_file)
                .flatten();
            for identity in identity.into_iter().chain(redirected) {
                if let Some((role, path, _)) = seen.iter().find(|(_, _, seen)| *seen == identity) {
                    return Err(fail(if identity == Identity::Stdout {
                        format!(
                            "{} and {role} are both standard output; at most one output may be `-`",
                            output.role
                        )
                    } else {
                        format!(
                            "{} is the same file as {role} ({}); nothing was written",
                            output.role,
                            shown(path)
                        )
                    }));
                }
                seen.push((output.role, output.path, identity));
            }
            plan.outputs
                .push((output.role, output.path.to_path_buf(), output.mode, target));
        }
        Ok(plan)
    }

    /// Prepares every output: temporary files for those replaced, the files themselves for
    /// those appended to and for special files. Nothing visible changes yet (an output appended
    /// to is created by [`OpenOutputs::begin`]). `-` is refused when standard output was closed
    /// as the process started (see [`STDOUT_CLOSED`]).
    pub fn open(self) -> Result<OpenOutputs, Fatal> {
        let stdout_closed = STDOUT_CLOSED.load(Ordering::Relaxed);
        let mut opened = OpenOutputs {
            outputs: Vec::new(),
        };
        for (role, path, mode, target) in self.outputs {
            let fail = |error: io::Error| Fatal::Write {
                path: path.clone(),
                error,
            };
            let place = match target {
                Target::Stdout => {
                    let closed = || io::Error::other("standard output is closed");
                    if stdout_closed {
                        return Err(fail(closed()));
                    }
                    let file = duplicate(1).map_err(|e| {
                        fail(if e.raw_os_error() == Some(libc::EBADF) {
                            closed()
                        } else {
                            e
                        })
                    })?;
                    Place::Through(file)
                }
                Target::Special => {
                    let file = match inherited_descriptor(&path) {
                        Some(file) => file,
                        None => OpenOptions::new().write(true).open(&path),
                    }
                    .map_err(fail)?;
                    Place::Through(file)
                }
                Target::Regular { file, existing } => {
                    let dir = parent(&file);
                    match (mode, &existing) {
                        (Mode::Append, Some(_)) => {
                            let out = OpenOptions::new()
                                .read(true)
                                .append(true)
                                .open(&file)
                                .map_err(fail)?;
                            Place::Appended(out)
                        }
                        _ => {
                            remove_stale_temporaries(&dir);
                            let temp = Temp::create(&dir).map_err(fail)?;
                            if let Some(meta) = &existing {
                                keep_owner_and_mode(temp.file(), meta).map_err(fail)?;
                            }
                            Place::Temp { temp, file, dir }
                        }
                    }
                }
            };
            let writer = place.writer(&path).map_err(fail)?;
            opened.outputs.push(Opened {
                role,
                path,
                mode,
                place: Some(place),
                writer: Some(writer),
            });
        }
        Ok(opened)
    }
}

/// The folder of a path (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where an output path leads, and what identifies its file (`None`: a character device,
/// which may be written by several outputs and read as an input without loss, `/dev/null`).
fn resolve(path: &Path) -> io::Result<(Target, Option<Identity>)> {
    if path.as_os_str() == "-" {
        return Ok((Target::Stdout, Some(Identity::Stdout)));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io::Error::other("is a directory")),
        Ok(meta) if meta.is_file() => {
            let file = std::fs::canonicalize(path)?;
            let identity = Identity::Inode(meta.dev(), meta.ino());
            let existing = Some(meta);
            Ok((Target::Regular { file, existing }, Some(identity)))
        }
        Ok(meta) => {
            let identity = (!meta.file_type().is_char_device())
                .then(|| Identity::Inode(meta.dev(), meta.ino()));
            Ok((Target::Special, identity))
        }
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            let file = new_file_path(path)?;
            let identity = Identity::Path(file.clone());
            Ok((
                Target::Regular {
                    file,
                    existing: None,
                },
                Some(identity),
            ))
        }
        Err(e) => Err(e),
    }
}

/// The file that standard output writes to, when it is a regular file.
fn stdout_file() -> Option<Identity> {
    let out = duplicate(1).ok()?;
    let meta = out.metadata().ok()?;
    meta.is_file()
        .then(|| Identity::Inode(meta.dev(), meta.ino()))
}

/// The resolved path of a file that does not exist: a dangling symbolic link followed to the
/// file it would create, its folder made canonical.
fn new_file_path(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)?;
                path = parent(&path).join(target);
            }
            _ => break,
        }
    }
    let missing_dir = || io::Error::other("its directory does not exist");
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("is a directory"))?;
    let dir = std::fs::canonicalize(parent(&path)).map_err(|_| missing_dir())?;
    if !dir.is_dir() {
        return Err(missing_dir());
    }
    Ok(dir.join(name))
}

/// What identifies an input's file; `None` when it cannot clash (a character device, or a
/// path that leads nowhere: reading it fails anyway).
fn input_identity(path: &Path) -> Option<Identity> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_char_device() => None,
        Ok(meta) => Some(Identity::Inode(meta.dev(), meta.ino())),
        Err(_) => new_file_path(path).ok().map(Identity::Path),
    }
}

/// Gives a new file the owner (when run as root) and mode of the output it replaces.
fn keep_owner_and_mode(file: &File, meta: &Metadata) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))?;
    }
    // After the owner: changing the owner clears set-user-ID bits.
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

/// Where an opened output's bytes go.
enum Place {
    /// Standard output or a special file, written directly.
    Through(File),
    /// An existing regular file, appended to.
    Appended(File),
    /// A temporary file in `dir`, to become `file`.
    Temp {
        temp: Temp,
        file: PathBuf,
        dir: PathBuf,
    },
}

impl Place {
    fn writer(&self, path: &Path) -> io::Result<OutputWriter> {
        let (file, undo) = match self {
            Place::Through(file) => (file.try_clone()?, false),
            Place::Appended(file) => (file.try_clone()?, true),
            Place::Temp { temp, .. } => (temp.file().try_clone()?, false),
        };
        let writer = OutputWriter::new(file, path.to_path_buf());
        if undo { writer.undoing() } else { Ok(writer) }
    }
}

/// One opened output.
struct Opened {
    role: &'static str,
    path: PathBuf,
    mode: Mode,
    place: Option<Place>,
    writer: Option<OutputWriter>,
}

/// The opened outputs of a run, in the order they were planned.
pub struct OpenOutputs {
    outputs: Vec<Opened>,
}

impl OpenOutputs {
    /// Starts writing, once the run's input has been found valid: an output appended to is
    /// created if missing, and an existing one that ends in a line without its `\n` (left by a
    /// run that stopped mid-write) is cut back to its last whole line. Returns one warning
    /// per repaired file.
    pub fn begin(&mut self) -> Result<Vec<String>, Fatal> {
        let mut warnings = Vec::new();
        for output in &mut self.outputs {
            if output.mode != Mode::Append {
                continue;
            }
            let fail = |error: io::Error| Fatal::Write {
                path: output.path.clone(),
                error,
            };
            match output.place.take() {
                Some(Place::Temp {
                    temp, file, dir, ..
                }) => {
                    let handle = temp.file().try_clone().map_err(fail)?;
                    match temp.link_new(&file) {
                        Ok(()) => {
                            sync_dir(&dir);
                            output.place = Some(Place::Appended(handle));
                        }
                        // Created meanwhile by someone else: appended to like any existing file.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            let appended = OpenOptions::new()
                                .read(true)
                                .append(true)
                                .open(&file)
                                .map_err(fail)?;
                            output.place = Some(Place::Appended(appended));
                        }
                        Err(e) => return Err(fail(e)),
                    }
                }
                place => output.place = place,
            }
            if let Some(Place::Appended(file)) = &output.place {
                let removed = repair_tail(file).map_err(fail)?;
                if removed > 0 {
                    warnings.push(format!(
                        "warning: {}: its last line had no end of line (a run stopped while \
                         writing it): {removed} bytes removed",
                        shown(&output.path)
                    ));
                }
                output.writer = Some(
                    output
                        .place
                        .as_ref()
                        .expect("set")
                        .writer(&output.path)
                        .map_err(fail)?,
                );
            }
        }
        Ok(warnings)
    }

    /// The writer of the output at `index` (in plan order), once.
    pub fn writer(&mut self, index: usize) -> OutputWriter {
        self.outputs[index]
            .writer
            .take()
            .expect("each output's writer is taken once")
    }

    /// The role of the output at `index`.
    pub fn role(&self, index: usize) -> &'static str {
        self.outputs[index].role
    }

    /// Puts every replaced output in place; every writer must have been flushed. Each new
    /// content is synced to disk and given a name beside its target before the first rename,
    /// so that whatever can fail fails before any output changes; then the renames, then the
    /// folders are synced.
    pub fn commit(self) -> Result<(), Fatal> {
        let mut ready = Vec::new();
        for output in self.outputs {
            let fail = |error: io::Error| Fatal::Write {
                path: output.path.clone(),
                error,
            };
            match output.place {
                Some(Place::Temp {
                    mut temp,
                    file,
                    dir,
                }) => {
                    temp.file().sync_all().map_err(fail)?;
                    temp.name().map_err(fail)?;
                    ready.push((output.path, temp, file, dir));
                }
                Some(Place::Appended(file)) => {
                    file.sync_data().map_err(fail)?;
                }
                Some(Place::Through(_)) | None => {}
            }
        }
        let mut dirs = Vec::new();
        for (path, temp, file, dir) in ready {
            temp.rename_over(&file)
                .map_err(|error| Fatal::Write { path, error })?;
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs.iter().for_each(|dir| sync_dir(dir));
        Ok(())
    }
}

/// The outputs of an `anomaly-detect` run: the flagged purchases, and if asked the feed, the
/// recommendations and the statistics.
pub struct Outputs {
    pub sinks: Vec<Box<dyn Sink>>,
    stats: Option<OutputWriter>,
    open: OpenOutputs,
}

/// The order of [`Outputs::plan`]'s outputs.
const FLAGGED: usize = 0;

impl Outputs {
    /// Checks the run's outputs against its inputs and each other (see [`OutputPlan::new`]).
    pub fn plan(
        inputs: [&Path; 2],
        flagged: &Path,
        feed: Option<&Path>,
        recommend: Option<&Path>,
        stats: Option<&Path>,
        live: bool,
    ) -> Result<OutputPlan, Fatal> {
        let mode = if live { Mode::Append } else { Mode::Replace };
        let mut outputs = vec![Output {
            role: "OUTPUT",
            path: flagged,
            mode,
        }];
        for (role, path, mode) in [
            ("--feed", feed, mode),
            ("--recommend", recommend, mode),
            ("--stats", stats, Mode::Replace),
        ] {
            if let Some(path) = path {
                outputs.push(Output { role, path, mode });
            }
        }
        let inputs = [
            Input {
                role: "BATCH",
                path: inputs[0],
            },
            Input {
                role: "STREAM",
                path: inputs[1],
            },
        ];
        OutputPlan::new(&outputs, &inputs)
    }

    /// The sinks over opened outputs, once [`OpenOutputs::begin`] ran.
    pub fn new(mut open: OpenOutputs) -> Outputs {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        let mut stats = None;
        for index in 0..open.outputs.len() {
            let out = open.writer(index);
            match open.role(index) {
                _ if index == FLAGGED => sinks.push(Box::new(FlaggedLines::new(out))),
                "--feed" => sinks.push(Box::new(SocialLines::new(out, SocialList::Feed))),
                "--recommend" => {
                    sinks.push(Box::new(SocialLines::new(out, SocialList::Recommend)));
                }
                _ => stats = Some(out),
            }
        }
        Outputs { sinks, stats, open }
    }

    /// Writes the statistics, flushes every output and puts the replaced ones in place.
    pub fn commit(mut self, stats: impl FnOnce() -> String) -> Result<(), Fatal> {
        self.sinks.flush().map_err(Fatal::Output)?;
        if let Some(mut out) = self.stats.take() {
            out.write_all(stats().as_bytes())
                .and_then(|()| out.flush())
                .map_err(Fatal::Output)?;
        }
        drop(self.sinks);
        self.open.commit()
    }
}
