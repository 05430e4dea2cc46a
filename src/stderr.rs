//! Messages on standard error (warnings, the summary, `Error:` lines) that can never fail a
//! run: each message goes out whole in one write, and a write error (a full disk, a reader
//! that closed the pipe, `2>&1 | true`) is ignored, as `rg` and `cat` ignore it. A message
//! that cannot be shown neither changes the exit status nor stops a live run. The standard
//! library's printing macros, which panic on such an error, are not used anywhere in `src/`.

use std::io::Write;

/// Writes `message` and a `\n` to standard error in one write; a failure is ignored.
pub fn line(message: impl std::fmt::Display) {
    let mut text = message.to_string();
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
