//! The end of a file appended to (live mode): whole, torn by a run of this program that
//! stopped while writing a line, or the end of some other file.
//!
//! A live run appends whole lines; a run killed in the middle of a write (or a crash) can leave
//! the start of a line without its `\n`. Before appending, such a torn line is cut off, so that
//! the next line does not glue onto it, but only when it can be one: the file's last line
//! lacks its `\n`, it is at most [`MAX_TORN`] bytes, it can be the start of a line of the
//! output's kind ([`LineShape`]: a JSON object prefix, valid UTF-8, no control bytes), and the
//! line before it, if any, is a whole line of that kind. Anything else (a notes file, a JSON
//! document, a binary file) is not an output of this program: the run refuses it and leaves
//! it untouched. The bytes cut are never lost: they are kept in a file beside the output
//! (`flagged.json.torn`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::ingest::input::MAX_LINE;

/// The longest line a torn tail may be: a flagged line is an input line (at most
/// [`MAX_LINE`] bytes) with its mean and standard deviation added.
pub const MAX_TORN: u64 = MAX_LINE as u64 + 64;

/// The kind of line an output appended to holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineShape {
    /// OUTPUT: an event object ending `, "mean": "M", "sd": "S"}`.
    Flagged,
    /// `--feed`: `{"id": ..., "friends": [...]}`.
    Feed,
    /// `--recommend`: `{"id": ..., "suggest": [...]}`.
    Recommend,
}

impl LineShape {
    /// How every line of this kind starts.
    fn start(self) -> &'static [u8] {
        match self {
            LineShape::Flagged => b"{",
            LineShape::Feed | LineShape::Recommend => b"{\"id\": ",
        }
    }

    /// Whether `line` (without its `\n`) is a whole line of this kind.
    pub fn is_whole(self, line: &[u8]) -> bool {
        if !line.starts_with(self.start()) || !matches!(json_object_prefix(line), Prefix::Closed) {
            return false;
        }
        match self {
            LineShape::Flagged => has_mean_and_sd(line),
            LineShape::Feed => {
                line.ends_with(b"]}") && memchr::memmem::rfind(line, b", \"friends\": [").is_some()
            }
            LineShape::Recommend => {
                line.ends_with(b"]}") && memchr::memmem::rfind(line, b", \"suggest\": [").is_some()
            }
        }
    }

    /// Whether `tail` can be the start of a line of this kind, cut anywhere before its `\n`.
    pub fn is_start(self, tail: &[u8]) -> bool {
        let start = self.start();
        let n = tail.len().min(start.len());
        if tail.is_empty() || tail[..n] != start[..n] {
            return false;
        }
        match json_object_prefix(tail) {
            Prefix::Open => true,
            // Cut just before its `\n`: the whole line.
            Prefix::Closed => self.is_whole(tail),
            Prefix::Invalid => false,
        }
    }
}

/// `line` ends with `, "mean": "D.DD", "sd": "D.DD"}`.
fn has_mean_and_sd(line: &[u8]) -> bool {
    const MEAN: &[u8] = b", \"mean\": \"";
    let Some(at) = memchr::memmem::rfind(line, MEAN) else {
        return false;
    };
    let rest = &line[at + MEAN.len()..];
    dollars(rest)
        .and_then(|rest| rest.strip_prefix(b"\", \"sd\": \""))
        .and_then(dollars)
        .is_some_and(|rest| rest == b"\"}")
}

/// Skips an amount written as digits, a dot and two digits.
fn dollars(text: &[u8]) -> Option<&[u8]> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = text[digits..].strip_prefix(b".")?;
    (digits > 0 && rest.len() >= 2 && rest[..2].iter().all(u8::is_ascii_digit)).then(|| &rest[2..])
}

/// How far a byte string is a JSON object.
#[derive(Debug, PartialEq, Eq)]
enum Prefix {
    /// The start of an object, not yet closed.
    Open,
    /// One object, closed at the last byte.
    Closed,
    /// Not the start of a JSON object: invalid UTF-8 (a sequence cut at the very end is
    /// allowed), a control byte other than tab and carriage return, a first byte other than
    /// `{`, brackets that do not match, or bytes after the object's end.
    Invalid,
}

/// Checks the structure only (strings, brackets), which is all a torn line needs.
fn json_object_prefix(bytes: &[u8]) -> Prefix {
    if let Err(error) = std::str::from_utf8(bytes)
        && error.error_len().is_some()
    {
        return Prefix::Invalid;
    }
    let mut closers = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if b < 0x20 && b != b'\t' && b != b'\r' {
            return Prefix::Invalid;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => closers.push(b'}'),
            b'[' => closers.push(b']'),
            b'}' | b']' => {
                if closers.pop() != Some(b) {
                    return Prefix::Invalid;
                }
                if closers.is_empty() {
                    return if i + 1 == bytes.len() {
                        Prefix::Closed
                    } else {
                        Prefix::Invalid
                    };
                }
            }
            _ => {}
        }
        if closers.is_empty() {
            return Prefix::Invalid;
        }
    }
    Prefix::Open
}

/// What the end of a file appended to is.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    /// Empty, or ending with `\n`: appended to as it is.
    Whole,
    /// A torn line of this program's from byte `at` to the end.
    Torn { at: u64 },
    /// The last line lacks its `\n` and is not a torn line of this program's (or the line
    /// before it is not one of its lines): not an output of this program.
    Foreign,
}

/// Looks at the end of `file`, appended to as an output of kind `shape`.
pub fn inspect(file: &File, shape: LineShape) -> io::Result<Tail> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Tail::Whole);
    }
    let mut last = [0u8];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(Tail::Whole);
    }
    let Some(at) = line_start(file, len)? else {
        return Ok(Tail::Foreign);
    };
    if !shape.is_start(&read(file, at, len)?) {
        return Ok(Tail::Foreign);
    }
    if at > 0 {
        // The line before, without its `\n`.
        let Some(before) = line_start(file, at - 1)? else {
            return Ok(Tail::Foreign);
        };
        if !shape.is_whole(&read(file, before, at - 1)?) {
            return Ok(Tail::Foreign);
        }
    }
    Ok(Tail::Torn { at })
}

/// The start of the line that ends at `end` (exclusive): just after the `\n` before it, or 0;
/// `None` when the line is longer than [`MAX_TORN`].
fn line_start(file: &File, end: u64) -> io::Result<Option<u64>> {
    let floor = end.saturating_sub(MAX_TORN);
    let mut block = vec![0u8; 1 << 16];
    let mut upto = end;
    while upto > floor {
        let from = upto.saturating_sub(block.len() as u64).max(floor);
        let part = &mut block[..(upto - from) as usize];
        file.read_exact_at(part, from)?;
        if let Some(at) = memchr::memrchr(b'\n', part) {
            return Ok(Some(from + at as u64 + 1));
        }
        upto = from;
    }
    Ok((floor == 0).then_some(0))
}

fn read(file: &File, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; (to - from) as usize];
    file.read_exact_at(&mut bytes, from)?;
    Ok(bytes)
}

/// Cuts the torn line at `at` off `file` (whose content lives at `target`), after keeping its
/// bytes, synced, in a new file beside it: `TARGET.torn`, or `TARGET.torn.2` and on when that
/// name is taken. Returns the bytes removed and the file keeping them.
pub fn cut(file: &File, at: u64, target: &Path) -> io::Result<(u64, PathBuf)> {
    let len = file.metadata()?.len();
    let bytes = read(file, at, len)?;
    let aside = keep_aside(target, &bytes)?;
    file.set_len(at)?;
    file.sync_data()?;
    Ok((len - at, aside))
}

/// Writes `bytes` to a new file beside `target`, synced.
fn keep_aside(target: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let mut name = target.as_os_str().to_owned();
    name.push(".torn");
    for n in 1u32.. {
        let mut path = name.clone();
        if n > 1 {
            path.push(format!(".{n}"));
        }
        let path = PathBuf::from(path);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&path)
        {
            Ok(mut aside) => {
                aside.write_all(bytes)?;
                aside.sync_all()?;
                if let Some(dir) = path.parent() {
                    super::file::sync_dir(if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir
                    });
                }
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {}
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAG: &str = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "2", "amount": "1601.83", "mean": "29.10", "sd": "21.46"}"#;
    const FEED: &str = r#"{"id": "2", "timestamp": "2017-06-13 11:33:02", "amount": "1601.83", "friends": ["1", "9"]}"#;
    const RECOMMEND: &str = r#"{"id": "2", "timestamp": "2017-06-13 11:33:02", "amount": "1601.83", "suggest": [{"id": "4", "mutual": 2}]}"#;

    fn tail_of(bytes: &[u8], shape: LineShape) -> Tail {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(bytes, 0).unwrap();
        inspect(&file, shape).unwrap()
    }

    #[test]
    fn whole_lines_of_each_kind_are_recognised() {
        assert!(LineShape::Flagged.is_whole(FLAG.as_bytes()));
        assert!(LineShape::Feed.is_whole(FEED.as_bytes()));
        assert!(LineShape::Recommend.is_whole(RECOMMEND.as_bytes()));
        assert!(!LineShape::Feed.is_whole(FLAG.as_bytes()));
        assert!(!LineShape::Flagged.is_whole(FEED.as_bytes()));
        assert!(!LineShape::Flagged.is_whole(br#"{"a": 1}"#));
        assert!(!LineShape::Flagged.is_whole(br#"{"mean": "1.00", "sd": "2.0"}"#));
    }

    #[test]
    fn every_cut_of_a_line_is_a_torn_line_after_whole_lines() {
        for (shape, line) in [
            (LineShape::Flagged, FLAG),
            (LineShape::Feed, FEED),
            (LineShape::Recommend, RECOMMEND),
        ] {
            let before = format!("{line}\n{line}\n");
            for cut in 1..=line.len() {
                let bytes = format!("{before}{}", &line[..cut]);
                assert_eq!(
                    tail_of(bytes.as_bytes(), shape),
                    Tail::Torn {
                        at: before.len() as u64
                    },
                    "{shape:?} cut at {cut}"
                );
                // The first line written, torn.
                assert_eq!(
                    tail_of(&line.as_bytes()[..cut], shape),
                    Tail::Torn { at: 0 }
                );
            }
            assert_eq!(tail_of(before.as_bytes(), shape), Tail::Whole);
        }
        assert_eq!(tail_of(b"", LineShape::Flagged), Tail::Whole);
        // A multi-byte character cut in the middle.
        assert_eq!(
            tail_of(
                "{\"a\": \"é".as_bytes().split_last().unwrap().1,
                LineShape::Flagged
            ),
            Tail::Torn { at: 0 }
        );
    }

    #[test]
    fn a_file_this_program_did_not_write_is_foreign() {
        let document = format!("{{\"items\": [{}]}}", "1, ".repeat(1000) + "1");
        for bytes in [
            "my notes\nlast line without its end".to_string(),
            // A JSON document, pretty-printed or on one line.
            "{\n  \"a\": 1\n}".to_string(),
            document.clone(),
            // A closed object after flagged lines, but not a flagged line.
            format!("{FLAG}\n{document}"),
            // A torn-looking line after a line that is not a flagged line.
            format!("notes\n{}", &FLAG[..20]),
            // Bytes after the object's end, brackets that do not match.
            format!("{FLAG}\n{FLAG} "),
            format!("{FLAG}\n{{\"a\": [}}"),
            // NUL bytes (a crash on some file systems), invalid UTF-8.
            format!("{FLAG}\n{{\0\0\0"),
        ] {
            assert_eq!(
                tail_of(bytes.as_bytes(), LineShape::Flagged),
                Tail::Foreign,
                "{bytes:?}"
            );
        }
        assert_eq!(
            tail_of(b"{\"a\": \"\xff", LineShape::Flagged),
            Tail::Foreign
        );
        assert_eq!(
            tail_of(
                format!("{FLAG}\n{}", &FLAG[..30]).as_bytes(),
                LineShape::Feed
            ),
            Tail::Foreign
        );
    }

    #[test]
    fn a_last_line_longer_than_any_line_written_is_foreign() {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(b"{\"a\": \"", 0).unwrap();
        file.set_len(MAX_TORN + 1).unwrap();
        // Zeros are control bytes anyway; the length alone decides, without reading it all.
        assert_eq!(line_start(&file, MAX_TORN + 1).unwrap(), None);
        assert_eq!(line_start(&file, MAX_TORN).unwrap(), Some(0));
        assert_eq!(inspect(&file, LineShape::Flagged).unwrap(), Tail::Foreign);
    }

    #[test]
    fn a_torn_line_is_cut_and_kept_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        let whole = format!("{FLAG}\n");
        std::fs::write(&target, format!("{whole}{{\"event_")).unwrap();
        std::fs::write(dir.path().join("out.json.torn"), "an earlier one").unwrap();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&target)
            .unwrap();
        let at = whole.len() as u64;
        assert_eq!(
            inspect(&file, LineShape::Flagged).unwrap(),
            Tail::Torn { at }
        );
        let (removed, aside) = cut(&file, at, &target).unwrap();
        assert_eq!(removed, 8);
        assert_eq!(aside, dir.path().join("out.json.torn.2"));
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), "{\"event_");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), whole);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.json.torn")).unwrap(),
            "an earlier one"
        );
    }
}
