//! Messages on standard error (warnings, the summary, `Error:` lines) that can never fail a
//! run: each message goes out whole in one write, and a write error (a full disk, a reader
//! that closed the pipe, `2>&1 | true`) is ignored, as `rg` and `cat` ignore it. A message
//! that cannot be shown neither changes the exit status nor stops a live run. The standard
//! library's printing macros, which panic on such an error, are not used anywhere in `src/`.
//!
//! In the crate's unit tests standard error is a buffer (`captured()`): a passing test prints
//! no warnings of its own, and a test can check the messages it gave.

#[cfg(not(test))]
use std::io::Write;

/// Writes `message` and a `\n` to standard error in one write; a failure is ignored.
pub fn line(message: impl std::fmt::Display) {
    let mut text = message.to_string();
    text.push('\n');
    let _ = write_all(text.as_bytes());
}

/// Writes `bytes` to standard error in one write and returns a failure, for writers that pass
/// it on (the progress bar's `ProgressStderr`).
pub fn write_all(bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(test)]
    {
        CAPTURED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(())
    }
    #[cfg(not(test))]
    std::io::stderr().lock().write_all(bytes)
}

/// Everything the crate's unit tests wrote to standard error, in the order written (tests run
/// in parallel: a test looks for its own message, e.g. one naming its temporary file).
#[cfg(test)]
static CAPTURED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// What the unit tests wrote to standard error so far (see [`CAPTURED`]).
#[cfg(test)]
pub(crate) fn captured() -> String {
    let bytes = CAPTURED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    String::from_utf8_lossy(&bytes).into_owned()
}
