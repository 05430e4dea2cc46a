//! Opening the run's outputs: in file mode each is written to a temporary file and renamed
//! into place only when the run succeeds; in live mode each is appended to and flushed as
//! checks are decided; `-` is standard output.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::Fatal;
use crate::output::sink::{FlaggedLines, OutputFile, Sink};
use crate::output::social::{SocialLines, SocialList};

/// The sinks of a run, and the files to move into place at its end.
pub struct Outputs {
    pub sinks: Vec<Box<dyn Sink>>,
    pending: Vec<OutputFile>,
}

impl Outputs {
    /// Opens the flagged-purchases output and, if asked, the feed and recommendation outputs.
    pub fn open(
        flagged: &Path,
        feed: Option<&Path>,
        recommend: Option<&Path>,
        live: bool,
    ) -> Result<Outputs, Fatal> {
        let mut outputs = Outputs {
            sinks: Vec::new(),
            pending: Vec::new(),
        };
        let out = outputs.writer(flagged, live)?;
        outputs.sinks.push(Box::new(FlaggedLines::new(out)));
        for (path, list) in [(feed, SocialList::Feed), (recommend, SocialList::Recommend)] {
            if let Some(path) = path {
                let out = outputs.writer(path, live)?;
                outputs.sinks.push(Box::new(SocialLines::new(out, list)));
            }
        }
        Ok(outputs)
    }

    /// Checks, before any work, that every output can be created: not a directory, in an
    /// existing directory.
    pub fn check(
        flagged: &Path,
        feed: Option<&Path>,
        recommend: Option<&Path>,
    ) -> Result<(), Fatal> {
        for path in [Some(flagged), feed, recommend].into_iter().flatten() {
            if path.as_os_str() == "-" {
                continue;
            }
            let in_existing_dir = path
                .parent()
                .is_none_or(|dir| dir.as_os_str().is_empty() || dir.is_dir());
            let problem = if path.is_dir() {
                "is a directory"
            } else if !in_existing_dir {
                "its directory does not exist"
            } else {
                continue;
            };
            return Err(Fatal::Write {
                path: path.to_path_buf(),
                error: std::io::Error::other(problem),
            });
        }
        Ok(())
    }

    fn writer(&mut self, path: &Path, live: bool) -> Result<Box<dyn Write>, Fatal> {
        if path.as_os_str() == "-" {
            return Ok(Box::new(BufWriter::new(std::io::stdout())));
        }
        if live {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| Fatal::Write {
                    path: path.to_path_buf(),
                    error,
                })?;
            return Ok(Box::new(BufWriter::new(file)));
        }
        let (file, writer) = OutputFile::create(path)?;
        self.pending.push(file);
        Ok(Box::new(writer))
    }

    /// Flushes every output and moves the file-mode ones into place.
    pub fn commit(mut self) -> Result<(), Fatal> {
        self.sinks.flush().map_err(Fatal::Output)?;
        drop(self.sinks);
        self.pending.into_iter().try_for_each(OutputFile::commit)
    }
}
