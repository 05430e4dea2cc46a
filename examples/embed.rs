//! Embeds the detector in a program of one's own: `embed BATCH STREAM` reads the batch log,
//! then hands the stream to the detector one line at a time, as a service would hand it the
//! messages of a queue, and prints each flagged purchase to standard output exactly as the
//! `anomaly-detect` command writes its flagged-purchases file. Only the library's public API.
//!
//!     cargo run --release --example embed -- log_input/batch_log.json log_input/stream_log.json

use std::error::Error;
use std::io::{BufRead, BufReader, Write};

use anomaly_detect::{Applied, Detector};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [batch, stream] = &args[..] else {
        return Err("usage: embed BATCH STREAM".into());
    };
    // Warnings about the batch's skipped lines go to standard error, as the command's do.
    let mut detector = Detector::builder()
        .warnings(std::io::stderr())
        .from_batch(batch)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut input = BufReader::new(std::fs::File::open(stream)?);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    while input.read_until(b'\n', &mut line)? > 0 {
        line_no += 1;
        // A log may start with a byte-order mark, which is not part of its first line.
        let text = match line.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) if line_no == 1 => rest,
            _ => &line[..],
        };
        match detector.apply(text)? {
            Applied::Purchase(decision) => {
                if let Some(flagged) = decision.flagged_line() {
                    out.write_all(flagged)?;
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
    out.flush()?;
    Ok(())
}
