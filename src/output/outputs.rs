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
    OutputWriter, Temp, duplicate, inherited_descriptor, is_mount_point, lock_for_append,
    remove_stale_temporaries, set_append, sync_dir, unlock,
};
use crate::output::sink::{FlaggedLines, OutputSink, Sink};
use crate::output::social::{SocialLines, SocialList};
use crate::output::tail::{self, LineShape, Tail};

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

/// One input of a run: its role (`BATCH`) and path; `-` is standard input, which clashes with
/// an output when it is a regular file or a FIFO (`< stream_log.json`).
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
    /// The run's inputs (role, path), checked again when outputs appended to are opened.
    inputs: Vec<(&'static str, PathBuf)>,
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
            inputs: inputs
                .iter()
                .map(|input| (input.role, input.path.to_path_buf()))
                .collect(),
        };
        // (role, path, identity) of everything already seen.
        let mut seen: Vec<(&'static str, &Path, Identity)> = inputs
            .iter()
            .filter_map(|input| Some((input.role, input.path, input_identity(input.path)?)))
            .collect();
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
                        same_file(output.role, role, path)
                    }));
                }
                seen.push((output.role, output.path, identity));
            }
            // `rename` cannot replace a mount point: refused before anything is read, rather
            // than failing after the whole replay with some outputs already replaced.
            if let (
                Mode::Replace,
                Target::Regular {
                    file,
                    existing: Some(_),
                },
            ) = (output.mode, &target)
                && is_mount_point(file).unwrap_or(false)
            {
                return Err(Fatal::Write {
                    path: output.path.to_path_buf(),
                    error: io::Error::other(
                        "it is a mount point (a file bind-mounted, as `docker run -v` does), \
                         which cannot be replaced whole; nothing was read: mount its folder \
                         instead, or write to `-`",
                    ),
                });
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
            keep_torn: false,
            // The inputs have been opened by now: the files they read.
            inputs: input_identities(&self.inputs),
            input_paths: self.inputs,
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
                            // A file that is not an output of this program is refused before
                            // the batch is read.
                            if tail::inspect(&out, shape(role)).map_err(fail)? == Tail::Foreign {
                                return Err(fail(foreign()));
                            }
                            Place::Appended {
                                file: out,
                                target: file,
                            }
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

/// The file that standard input reads, when it is a regular file or a FIFO (`< stream.json`):
/// an output writing into it would change the input being read.
fn stdin_file() -> Option<Identity> {
    let input = duplicate(0).ok()?;
    let meta = input.metadata().ok()?;
    (meta.is_file() || meta.file_type().is_fifo()).then(|| Identity::Inode(meta.dev(), meta.ino()))
}

/// `OUTPUT is the same file as STREAM (stream_log.json); nothing was written`.
fn same_file(role: &str, other: &str, path: &Path) -> String {
    let path = if path.as_os_str() == "-" {
        "-, standard input".to_string()
    } else {
        shown(path)
    };
    format!("{role} is the same file as {other} ({path}); nothing was written")
}

/// The kind of line an output appended to holds.
fn shape(role: &str) -> LineShape {
    match role {
        "--feed" => LineShape::Feed,
        "--recommend" => LineShape::Recommend,
        _ => LineShape::Flagged,
    }
}

/// Why an existing file is not appended to.
fn foreign() -> io::Error {
    io::Error::other(
        "its last line has no end of line and is not a line anomaly-detect was writing, so it \
         is not an output of this program; it was left untouched (end it with a newline to \
         append to it, or name another output)",
    )
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

/// What identifies an input's file; `None` when it cannot clash (a character device, standard
/// input that is not a regular file or a FIFO, or a path that leads nowhere: reading it fails
/// anyway).
fn input_identity(path: &Path) -> Option<Identity> {
    if path.as_os_str() == "-" {
        return stdin_file();
    }
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

/// The inputs' files as they are now, by role and path (the path as given).
fn input_identities(inputs: &[(&'static str, PathBuf)]) -> Vec<(&'static str, PathBuf, Identity)> {
    inputs
        .iter()
        .filter_map(|(role, path)| Some((*role, path.clone(), input_identity(path)?)))
        .collect()
}

/// Where an opened output's bytes go.
enum Place {
    /// Standard output or a special file, written directly.
    Through(File),
    /// An existing regular file at `target`, appended to (`O_APPEND`).
    Appended { file: File, target: PathBuf },
    /// A temporary file in `dir`, to become `file`.
    Temp {
        temp: Temp,
        file: PathBuf,
        dir: PathBuf,
    },
}

impl Place {
    fn writer(&self, path: &Path) -> io::Result<OutputWriter> {
        let (file, append) = match self {
            Place::Through(file) => (file.try_clone()?, false),
            Place::Appended { file, .. } => (file.try_clone()?, true),
            Place::Temp { temp, .. } => (temp.file().try_clone()?, false),
        };
        let writer = OutputWriter::new(file, path.to_path_buf());
        Ok(if append { writer.appending() } else { writer })
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
    /// A live run resumed from a checkpoint: a torn last line is left for
    /// [`ResumeWriter`](crate::output::resume::ResumeWriter) to complete.
    keep_torn: bool,
    /// The inputs' files when the outputs were opened (the inputs were open by then).
    inputs: Vec<(&'static str, PathBuf, Identity)>,
    input_paths: Vec<(&'static str, PathBuf)>,
}

impl OpenOutputs {
    /// Starts writing, once the run's input has been found valid: an output appended to is
    /// created if missing, and checked again against the inputs by the file it opened (an
    /// output linked to an input while the batch was read is refused, nothing written). An
    /// existing one that ends in a torn line of this program's (left by a run that stopped
    /// mid-write) is cut back to its last whole line, the bytes cut kept beside it (see
    /// [`tail`]); one whose end is not this program's is refused, untouched. Returns one
    /// warning per repaired file.
    pub fn begin(&mut self) -> Result<Vec<String>, Fatal> {
        // First every output is opened and checked, so that a refusal changes nothing.
        let mut inputs = input_identities(&self.input_paths);
        inputs.append(&mut self.inputs);
        for output in &mut self.outputs {
            let fail = |error: io::Error| Fatal::Write {
                path: output.path.clone(),
                error,
            };
            output.place = match output.place.take() {
                Some(Place::Temp { temp, file, dir }) if output.mode == Mode::Append => {
                    Some(create_appended(temp, file, &dir).map_err(fail)?)
                }
                place => place,
            };
            let file = match &output.place {
                Some(Place::Appended { file, .. } | Place::Through(file)) => file,
                _ => continue,
            };
            let meta = file.metadata().map_err(fail)?;
            if !meta.file_type().is_char_device() {
                let identity = Identity::Inode(meta.dev(), meta.ino());
                if let Some((role, path, _)) = inputs.iter().find(|(_, _, id)| *id == identity) {
                    return Err(Fatal::Clash {
                        path: output.path.clone(),
                        problem: same_file(output.role, role, path),
                    });
                }
            }
            if let Some(Place::Appended { file, .. }) = &output.place
                && tail::inspect(file, shape(output.role)).map_err(fail)? == Tail::Foreign
            {
                return Err(fail(foreign()));
            }
        }
        let mut warnings = Vec::new();
        for output in &mut self.outputs {
            let Some(Place::Appended { file, target }) = &output.place else {
                continue;
            };
            let fail = |error: io::Error| Fatal::Write {
                path: output.path.clone(),
                error,
            };
            // Under the lock: no other run of this program is writing a line meanwhile.
            let locked = lock_for_append(file);
            let repaired = match tail::inspect(file, shape(output.role)) {
                Ok(Tail::Whole) => Ok(None),
                Ok(Tail::Torn { .. }) if self.keep_torn => Ok(None),
                Ok(Tail::Torn { at }) => tail::cut(file, at, target).map(Some),
                Ok(Tail::Foreign) => Err(foreign()),
                Err(error) => Err(error),
            };
            if locked {
                unlock(file);
            }
            if let Some((removed, aside)) = repaired.map_err(fail)? {
                warnings.push(format!(
                    "warning: {}: its last line had no end of line (a run stopped while \
                     writing it): {removed} bytes removed, kept in {}",
                    shown(&output.path),
                    shown(beside(&output.path, &aside))
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
        Ok(warnings)
    }

    /// Leaves a torn last line in place when [`Self::begin`] runs: a run resumed from a
    /// checkpoint decides that line again and completes it (see
    /// [`ResumeWriter`](crate::output::resume::ResumeWriter)).
    pub fn keep_torn_tails(&mut self) {
        self.keep_torn = true;
    }

    /// The file the output at `index` is appended or written to, once [`Self::begin`] ran
    /// (`None` for an output replaced at the end): for checkpoint marks and resumed writers.
    pub fn file(&self, index: usize) -> Option<io::Result<File>> {
        match &self.outputs[index].place {
            Some(Place::Appended { file, .. } | Place::Through(file)) => Some(file.try_clone()),
            _ => None,
        }
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

    /// The output at `index` as the user named it.
    pub fn path(&self, index: usize) -> &Path {
        &self.outputs[index].path
    }

    /// Puts every replaced output in place; every writer must have been flushed. Each new
    /// content is synced to disk and given a name beside its target before the first rename,
    /// so that whatever can fail fails before any output changes. Then the renames, the first
    /// output of the plan (the main one, OUTPUT) last, after the folders of the others are
    /// synced: a run killed in the middle leaves the main output old whenever another one is
    /// old.
    pub fn commit(self) -> Result<(), Fatal> {
        self.commit_observed(|_| {})
    }

    /// [`Self::commit`], calling `renamed` with each target just after its rename (tests).
    fn commit_observed(self, mut renamed: impl FnMut(&Path)) -> Result<(), Fatal> {
        let mut ready = Vec::new();
        for (index, output) in self.outputs.into_iter().enumerate() {
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
                    ready.push((index == 0, output.path, temp, file, dir));
                }
                Some(Place::Appended { file, .. }) => {
                    file.sync_data().map_err(fail)?;
                }
                Some(Place::Through(_)) | None => {}
            }
        }
        // The main output, when it is replaced, goes last (a stable sort keeps the others in
        // plan order).
        ready.sort_by_key(|(main, ..)| *main);
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (main, path, temp, file, dir) in ready {
            if main {
                // The others' renames reach the disk before the main one's.
                dirs.iter().for_each(|dir| sync_dir(dir));
                dirs.clear();
            }
            temp.rename_over(&file)
                .map_err(|error| Fatal::Write { path, error })?;
            renamed(&file);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs.iter().for_each(|dir| sync_dir(dir));
        Ok(())
    }
}

/// The file `aside` (beside the file `path` leads to) named beside `path` as the user named it,
/// when `path` is not a symbolic link: `flagged.json.torn`, not its absolute path.
fn beside(path: &Path, aside: &Path) -> PathBuf {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match aside.file_name() {
        Some(name) if !is_link => path.with_file_name(name),
        _ => aside.to_path_buf(),
    }
}

/// Creates a live output that did not exist by linking its temporary file at `file` (or, when
/// some other file took the name meanwhile, opens that one), for appending (`O_APPEND`).
fn create_appended(temp: Temp, file: PathBuf, dir: &Path) -> io::Result<Place> {
    let handle = temp.file().try_clone()?;
    match temp.link_new(&file) {
        Ok(()) => {
            sync_dir(dir);
            set_append(&handle)?;
            // The temporary file's lock is for the cleaner; writers take it per write.
            unlock(&handle);
            Ok(Place::Appended {
                file: handle,
                target: file,
            })
        }
        // Created meanwhile by someone else: appended to like any existing file.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let appended = OpenOptions::new().read(true).append(true).open(&file)?;
            Ok(Place::Appended {
                file: appended,
                target: file,
            })
        }
        Err(e) => Err(e),
    }
}

/// The outputs of an `anomaly-detect` run: the flagged purchases, and if asked the feed, the
/// recommendations and the statistics.
pub struct Outputs {
    pub sinks: Vec<Box<OutputSink>>,
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
    pub fn new(open: OpenOutputs) -> Outputs {
        let wrapped = Outputs::wrapped(open, |_, _, out| Ok::<_, std::convert::Infallible>(out));
        wrapped.unwrap_or_else(|never| match never {})
    }

    /// [`Self::new`], each line output's writer (not `--stats`) wrapped by `wrap`, given the
    /// opened outputs and its index in plan order (a live run's resumed writers).
    pub fn wrapped<W: Write + 'static, E>(
        mut open: OpenOutputs,
        mut wrap: impl FnMut(&OpenOutputs, usize, OutputWriter) -> Result<W, E>,
    ) -> Result<Outputs, E> {
        let mut sinks: Vec<Box<OutputSink>> = Vec::new();
        let mut stats = None;
        for index in 0..open.outputs.len() {
            let out = open.writer(index);
            let role = open.role(index);
            if index != FLAGGED && role == "--stats" {
                stats = Some(out);
                continue;
            }
            let out = wrap(&open, index, out)?;
            match role {
                "--feed" => sinks.push(Box::new(SocialLines::new(out, SocialList::Feed))),
                "--recommend" => {
                    sinks.push(Box::new(SocialLines::new(out, SocialList::Recommend)));
                }
                _ => sinks.push(Box::new(FlaggedLines::new(out))),
            }
        }
        Ok(Outputs { sinks, stats, open })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A resumed live run keeps a torn last line for its resumed writer to complete; a plain
    /// live run cuts it off.
    #[test]
    fn a_resumed_live_run_keeps_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        for name in ["batch.json", "stream.json"] {
            std::fs::write(path(name), "").unwrap();
        }
        let whole = "{\"a\": 1, \"mean\": \"1.00\", \"sd\": \"0.00\"}\n";
        let torn = format!("{whole}{{\"b\": 2, \"me");
        for keep in [true, false] {
            std::fs::write(path("out.json"), &torn).unwrap();
            let plan = Outputs::plan(
                [&path("batch.json"), &path("stream.json")],
                &path("out.json"),
                None,
                None,
                None,
                true,
            )
            .unwrap();
            let mut open = plan.open().unwrap();
            if keep {
                open.keep_torn_tails();
            }
            let warnings = open.begin().unwrap();
            assert_eq!(warnings.is_empty(), keep);
            let kept = std::fs::read_to_string(path("out.json")).unwrap();
            assert_eq!(
                kept,
                if keep { torn.as_str() } else { whole },
                "keep: {keep}"
            );
            let file = open.file(0).unwrap().unwrap();
            assert_eq!(file.metadata().unwrap().len(), kept.len() as u64);
            let _ = std::fs::remove_file(path("out.json.torn"));
        }
    }

    /// A run killed between the commit's renames leaves OUTPUT old whenever another output is
    /// old: at every rename, OUTPUT new means every other output new.
    #[test]
    fn the_main_output_is_renamed_after_every_other_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let names = ["flagged.json", "feed.json", "recommend.json", "stats.json"];
        for name in names.iter().chain(&["batch.json", "stream.json"]) {
            std::fs::write(path(name), "old").unwrap();
        }
        let paths: Vec<PathBuf> = names.iter().map(|n| path(n)).collect();
        let plan = Outputs::plan(
            [&path("batch.json"), &path("stream.json")],
            &paths[0],
            Some(&paths[1]),
            Some(&paths[2]),
            Some(&paths[3]),
            false,
        )
        .unwrap();
        let mut open = plan.open().unwrap();
        assert!(open.begin().unwrap().is_empty());
        for index in 0..names.len() {
            let mut out = open.writer(index);
            out.write_all(b"new").unwrap();
            out.flush().unwrap();
        }
        let read = |path: &Path| std::fs::read_to_string(path).unwrap();
        let mut order = Vec::new();
        open.commit_observed(|renamed| {
            order.push(renamed.file_name().unwrap().to_string_lossy().into_owned());
            if read(&paths[0]) == "new" {
                for other in &paths[1..] {
                    assert_eq!(read(other), "new", "OUTPUT new before {}", other.display());
                }
            }
        })
        .unwrap();
        assert_eq!(
            order,
            ["feed.json", "recommend.json", "stats.json", "flagged.json"]
        );
        for path in &paths {
            assert_eq!(read(path), "new");
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            6,
            "no temporary left"
        );
    }
}
