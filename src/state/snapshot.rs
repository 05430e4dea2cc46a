//! A snapshot of the state: everything that decides the outcome of later events (the interned
//! user ids, the friend graph, the purchase histories and the log's recent purchases), with the
//! parameters and the sequence numbers a replay goes on from, in a compact, versioned binary
//! format that restores much faster than replaying the logs.
//!
//! The format (all integers little-endian; docs/design.md, "State snapshots"):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `ANOMSNAP` |
//! | 4, 4 | format version ([`VERSION`]), flags (0) |
//! | 8 | the snapshot's whole length in bytes, checksum included |
//! | 4, 4 | `D`, `T` |
//! | 8 | recent purchases kept ([`crate::state::recent::RecentPurchases::keep`]) |
//! | 8, 8 | sequence number of the next line, lines of the batch log |
//! | 8 | users `n` |
//! | sections | each: tag (4), 0 (4), payload length (8), payload |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! The sections, in this order: names (`n` lengths `u32`, then the ids' bytes back to back),
//! friends (`n` degrees `u32`, then every user's friends `u32` in ascending order), histories
//! (`n` lengths `u32`, then every user's kept purchases as `u128`, oldest first), recent
//! purchases (a count `u64`, the purchases `u128`, their buyers `u32`).
//!
//! A snapshot is taken between windows (no check pending). Friend lists are written sorted, so
//! the bytes depend only on what the logs say, not on the thread count or window size that
//! ordered the lists; the order of a list decides no outcome. What can be derived is not
//! written: the id tables, the lists' position indexes, each user's recency and newest
//! purchases, the counts of buyers and friendships. Restoring reads the whole snapshot,
//! checks its length and checksum, then checks every value that could break the state (ids
//! in range, lists sorted, friendships both ways, amounts and sequence numbers in range, ...):
//! a corrupt or crafted snapshot is an error, never a panic, and no count in it makes a
//! restore allocate more than a small multiple of the snapshot's own size.

use std::io::{self, Read, Write};

use crate::ingest::parse::{IdHasher, MAX_TRACKED, Params};
use crate::state::graph::FriendGraph;
use crate::state::history::{Purchase, PurchaseHistory};
use crate::state::users::UserIds;

/// The first bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"ANOMSNAP";

/// The format version this program writes and reads.
pub const VERSION: u32 = 1;

/// Bytes before the first section.
const HEADER: usize = 64;

/// Bytes of a section's head: tag, a reserved zero, payload length.
const SECTION_HEAD: usize = 16;

/// Bytes of the checksum at the end.
const TRAILER: usize = 4;

/// The sections' tags, in the order they come.
const NAMES: u32 = 1;
const FRIENDS: u32 = 2;
const HISTORIES: u32 = 3;
const RECENT: u32 = 4;

/// Why a snapshot cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading it failed.
    #[error("cannot read it: {0}")]
    Read(#[from] io::Error),
    /// It does not start with [`MAGIC`].
    #[error("it is not a snapshot of anomaly-detect's state")]
    NotASnapshot,
    /// It was written in another format version.
    #[error("it is a snapshot of format version {found}; this program reads version {VERSION}")]
    Version { found: u32 },
    /// It ends before its length says.
    #[error("it is truncated: {have} bytes of {expected}")]
    Truncated { have: u64, expected: u64 },
    /// Its bytes are not those that were written.
    #[error(
        "its checksum does not match its content (stored {stored:08x}, computed {computed:08x})"
    )]
    Checksum { stored: u32, computed: u32 },
    /// Its checksum matches but its content cannot be the state of a replay.
    #[error("its content is inconsistent: {0}")]
    Inconsistent(String),
}

/// An [`SnapshotError::Inconsistent`] error saying `what`.
pub(crate) fn inconsistent<T>(what: impl Into<String>) -> Result<T, SnapshotError> {
    Err(SnapshotError::Inconsistent(what.into()))
}

/// Where a replay stands besides its state: what a restored replay goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The `D` and `T` in force (after the command line's overrides).
    pub params: Params,
    /// The sequence number of the next line (the batch's lines come first).
    pub seq: u64,
    /// The lines of the batch log, its parameter line and the blank lines before it included:
    /// stream line numbers count from there.
    pub batch_lines: u64,
}

/// A restored state, with where its replay stood.
pub struct Snapshot {
    pub users: UserIds,
    pub graph: FriendGraph,
    pub history: PurchaseHistory,
    pub at: Position,
}

/// Writes a snapshot of the state to `out`. The state must be between windows (no purchase
/// of an open window: [`io::ErrorKind::InvalidInput`]), and `at.params.tracked` the
/// history's `T`. The same state gives the same bytes.
pub fn save(
    users: &UserIds,
    graph: &FriendGraph,
    history: &PurchaseHistory,
    at: &Position,
    out: &mut impl Write,
) -> io::Result<()> {
    if history.in_window() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a snapshot is taken between windows, and purchases of this one are still pending",
        ));
    }
    if at.params.tracked as usize != history.tracked() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the snapshot's T is not the history's",
        ));
    }
    let n = users.len();
    let sections = [
        (NAMES, users.snapshot_len()),
        (FRIENDS, graph.snapshot_len(n)),
        (HISTORIES, history.snapshot_len(n)),
        (RECENT, history.recent().snapshot_len()),
    ];
    let total = HEADER as u64
        + sections
            .iter()
            .map(|&(_, len)| SECTION_HEAD as u64 + len)
            .sum::<u64>()
        + TRAILER as u64;
    let mut out = Out::new(out);
    out.bytes(&MAGIC)?;
    out.u32(VERSION)?;
    out.u32(0)?;
    out.u64(total)?;
    out.u32(at.params.degree)?;
    out.u32(at.params.tracked)?;
    out.u64(history.recent().keep() as u64)?;
    out.u64(at.seq)?;
    out.u64(at.batch_lines)?;
    out.u64(n as u64)?;
    for (tag, len) in sections {
        out.u32(tag)?;
        out.u32(0)?;
        out.u64(len)?;
        let start = out.written();
        match tag {
            NAMES => users.save(&mut out)?,
            FRIENDS => graph.save(&mut out, n)?,
            HISTORIES => history.save(&mut out, n)?,
            _ => history.recent().save(&mut out)?,
        }
        if out.written() - start != len {
            return Err(io::Error::other(format!(
                "snapshot section {tag} wrote {} bytes instead of {len}",
                out.written() - start
            )));
        }
    }
    out.finish()
}

/// Reads a snapshot written by [`save`]. The ids are hashed with a new random seed
/// ([`UserIds::hasher`], which a replay's parsers then use).
pub fn restore(input: &mut impl Read) -> Result<Snapshot, SnapshotError> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    restore_bytes(&bytes)
}

/// [`restore`] from the snapshot's bytes.
pub fn restore_bytes(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let hasher = IdHasher::random();
    let have = bytes.len() as u64;
    let truncated = |expected: u64| SnapshotError::Truncated { have, expected };
    let magic = &bytes[..bytes.len().min(MAGIC.len())];
    if magic != &MAGIC[..magic.len()] {
        return Err(SnapshotError::NotASnapshot);
    }
    if bytes.len() < MAGIC.len() + 4 {
        return Err(truncated(HEADER as u64));
    }
    let mut head = In::new(&bytes[MAGIC.len()..]);
    let version = head.u32()?;
    if version != VERSION {
        return Err(SnapshotError::Version { found: version });
    }
    if bytes.len() < HEADER + TRAILER {
        return Err(truncated((HEADER + TRAILER) as u64));
    }
    let flags = head.u32()?;
    let total = head.u64()?;
    if have < total {
        return Err(truncated(total));
    }
    if have > total {
        return inconsistent(format!(
            "{} bytes follow its end at {total} bytes",
            have - total
        ));
    }
    let (body, stored) = bytes.split_at(bytes.len() - TRAILER);
    let stored = u32::from_le_bytes(stored.try_into().expect("4 bytes"));
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    if flags != 0 {
        return inconsistent(format!("unknown flags {flags:#x}"));
    }
    let params = Params {
        degree: head.u32()?,
        tracked: head.u32()?,
    };
    if params.degree == 0 || !(2..=MAX_TRACKED).contains(&u64::from(params.tracked)) {
        return inconsistent(format!(
            "parameters D = {} and T = {} out of range",
            params.degree, params.tracked
        ));
    }
    let keep = head.u64()?;
    let seq = head.u64()?;
    let batch_lines = head.u64()?;
    let users = head.u64()?;
    if keep == 0 || usize::try_from(keep).is_err() {
        return inconsistent(format!("{keep} recent purchases kept"));
    }
    if batch_lines == 0 || batch_lines > seq || seq >= Purchase::SEQ_LIMIT {
        return inconsistent(format!("next line {seq} after {batch_lines} batch lines"));
    }
    let mut body = In::new(&body[HEADER..]);
    // Each user takes at least 4 bytes in each of three sections, so this bounds every
    // per-user array by the snapshot's size.
    let n = usize::try_from(users)
        .ok()
        .filter(|&n| n as u64 <= have / 12)
        .map_or_else(
            || inconsistent(format!("{users} users in {have} bytes")),
            Ok,
        )?;
    let mut names = section(&mut body, NAMES)?;
    let users = UserIds::restore(&mut names, n, hasher)?;
    names.end("names")?;
    let mut friends = section(&mut body, FRIENDS)?;
    let graph = FriendGraph::restore(&mut friends, n)?;
    friends.end("friends")?;
    let mut histories = section(&mut body, HISTORIES)?;
    let mut recent = section(&mut body, RECENT)?;
    let history = PurchaseHistory::restore(
        &mut histories,
        &mut recent,
        n,
        params.tracked,
        keep as usize,
        seq,
    )?;
    histories.end("histories")?;
    recent.end("recent purchases")?;
    body.end("the sections")?;
    Ok(Snapshot {
        users,
        graph,
        history,
        at: Position {
            params,
            seq,
            batch_lines,
        },
    })
}

/// The next section of `body`, which must be `tag`.
fn section<'a>(body: &mut In<'a>, tag: u32) -> Result<In<'a>, SnapshotError> {
    let (found, zero, len) = (body.u32()?, body.u32()?, body.u64()?);
    if found != tag || zero != 0 {
        return inconsistent(format!("section {found} where section {tag} belongs"));
    }
    Ok(In::new(body.take_u64(len)?))
}

/// Where a snapshot is written: a buffer drained to the writer once full, and the checksum of
/// everything drained.
pub(crate) struct Out<'w, W: Write> {
    out: &'w mut W,
    buffer: Vec<u8>,
    crc: crc32fast::Hasher,
    drained: u64,
}

impl<'w, W: Write> Out<'w, W> {
    /// Bytes buffered before they go to the writer.
    const BUFFER: usize = 1 << 18;

    fn new(out: &'w mut W) -> Self {
        Out {
            out,
            buffer: Vec::with_capacity(Self::BUFFER),
            crc: crc32fast::Hasher::new(),
            drained: 0,
        }
    }

    /// Bytes written so far.
    fn written(&self) -> u64 {
        self.drained + self.buffer.len() as u64
    }

    fn drain(&mut self) -> io::Result<()> {
        self.crc.update(&self.buffer);
        self.out.write_all(&self.buffer)?;
        self.drained += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Makes room for `bytes` more in the buffer (at most [`Self::BUFFER`]).
    #[inline]
    fn room(&mut self, bytes: usize) -> io::Result<()> {
        if self.buffer.len() + bytes > Self::BUFFER {
            self.drain()?;
        }
        Ok(())
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        for piece in bytes.chunks(Self::BUFFER) {
            self.room(piece.len())?;
            self.buffer.extend_from_slice(piece);
        }
        Ok(())
    }

    pub(crate) fn u32(&mut self, value: u32) -> io::Result<()> {
        self.room(4)?;
        self.buffer.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    pub(crate) fn u64(&mut self, value: u64) -> io::Result<()> {
        self.room(8)?;
        self.buffer.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    pub(crate) fn u32s(&mut self, values: &[u32]) -> io::Result<()> {
        for piece in values.chunks(Self::BUFFER / 4) {
            self.room(4 * piece.len())?;
            for value in piece {
                self.buffer.extend_from_slice(&value.to_le_bytes());
            }
        }
        Ok(())
    }

    pub(crate) fn u128s(&mut self, values: &[u128]) -> io::Result<()> {
        for piece in values.chunks(Self::BUFFER / 16) {
            self.room(16 * piece.len())?;
            for value in piece {
                self.buffer.extend_from_slice(&value.to_le_bytes());
            }
        }
        Ok(())
    }

    /// Writes the checksum and flushes the writer.
    fn finish(mut self) -> io::Result<()> {
        self.drain()?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()
    }
}

/// A section of a snapshot being read: every read is bounded by what is left of it, so a
/// count in a corrupt snapshot can ask for no more than the snapshot holds.
pub(crate) struct In<'a> {
    bytes: &'a [u8],
}

impl<'a> In<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        In { bytes }
    }

    /// The next `len` bytes.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], SnapshotError> {
        if len > self.bytes.len() {
            return inconsistent(format!(
                "{len} bytes asked for where {} are left",
                self.bytes.len()
            ));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    /// The next `len` bytes, `len` as read from the snapshot.
    pub(crate) fn take_u64(&mut self, len: u64) -> Result<&'a [u8], SnapshotError> {
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// The next `count` items of `width` bytes each, as one slice.
    fn items(&mut self, count: u64, width: u64) -> Result<&'a [u8], SnapshotError> {
        match count.checked_mul(width) {
            Some(len) => self.take_u64(len),
            None => inconsistent(format!("{count} items of {width} bytes")),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// The next `count` `u32`s.
    pub(crate) fn u32s(
        &mut self,
        count: u64,
    ) -> Result<impl ExactSizeIterator<Item = u32> + Clone + 'a, SnapshotError> {
        Ok(self
            .items(count, 4)?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))))
    }

    /// The next `count` `u128`s.
    pub(crate) fn u128s(
        &mut self,
        count: u64,
    ) -> Result<impl ExactSizeIterator<Item = u128> + Clone + 'a, SnapshotError> {
        Ok(self
            .items(count, 16)?
            .chunks_exact(16)
            .map(|b| u128::from_le_bytes(b.try_into().expect("16 bytes"))))
    }

    /// Fails unless the section was read to its end.
    fn end(&self, what: &str) -> Result<(), SnapshotError> {
        match self.bytes.len() {
            0 => Ok(()),
            left => inconsistent(format!("{left} bytes left over after {what}")),
        }
    }
}
