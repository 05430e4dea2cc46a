//! Embeds the detector in a program of one's own: `embed BATCH STREAM` reads the batch log,
//! then hands the stream to the detector one line at a time, as a service would hand it the
//! messages of a queue, and prints each flagged purchase to standard output exactly as the
//! `anomaly-detect` command writes its flagged-purchases file. Only the library's public API.
//!
//!     cargo run --release --example embed -- log_input/batch_log.json log_input/stream_log.json

use std::error::Error;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use anomaly_detect::{Applied, Detector};

/// Runs the example; a problem is one line `Error: ...` on standard error and exit status 2,
/// as the command reports its fatal errors.
fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [batch, stream] = &args[..] else {
        eprintln!("usage: embed BATCH STREAM");
        return ExitCode::from(2);
    };
    match run(batch, stream) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(batch: &OsString, stream: &OsString) -> Result<(), Box<dyn Error>> {
    let named =
        |error: std::io::Error| format!("{}: cannot read: {error}", stream.to_string_lossy());
    let written = |error: std::io::Error| format!("standard output: cannot write: {error}");
    // Warnings about the batch's skipped lines go to standard error, as the command's do.
    let mut detector = Detector::builder()
        .warnings(std::io::stderr())
        .from_batch(batch)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut input = BufReader::new(std::fs::File::open(stream).map_err(named)?);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    while input.read_until(b'\n', &mut line).map_err(named)? > 0 {
        line_no += 1;
        // A log may start with a byte-order mark, which is not part of its first line.
        let text = match line.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) if line_no == 1 => rest,
            _ => &line[..],
        };
        match detector.apply(text)? {
            Applied::Purchase(decision) => {
                if let Some(flagged) = decision.flagged_line() {
                    out.write_all(flagged).map_err(written)?;
                }
            }
            Applied::Skipped(reason) => {
                let stream = stream.to_string_lossy();
                eprintln!("{stream}:{line_no}: skipped: {reason}");
            }
            Applied::Friendship | Applied::Blank => {}
        }
        line.clear();
    }
    out.flush().map_err(written)?;
    Ok(())
}
