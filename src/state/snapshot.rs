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
use crate::state::apply::State;
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

pub use crate::error::SnapshotError;

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

impl Snapshot {
    /// The restored [`State`] (its parameters and next sequence number the snapshot's), and
    /// the sequence number of the stream's line 1 (`at.batch_lines`).
    pub fn into_state(self) -> (State, u64) {
        let Snapshot {
            users,
            graph,
            history,
            at,
        } = self;
        let state = State {
            users,
            graph,
            history,
            params: at.params,
            next_seq: at.seq,
        };
        (state, at.batch_lines)
    }
}

/// Writes a snapshot of `state` (with its `D`, `T` and next sequence number) to `out`;
/// `stream_start` is the sequence number of the stream's line 1 (the batch log's lines). See
/// [`save`].
pub fn save_state(state: &State, stream_start: u64, out: &mut impl Write) -> io::Result<()> {
    let at = Position {
        params: state.params,
        seq: state.next_seq,
        batch_lines: stream_start,
    };
    save(&state.users, &state.graph, &state.history, &at, out)
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
        return Err(SnapshotError::Version {
            found: version,
            reads: VERSION,
        });
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
    if batch_lines > seq || seq >= Purchase::SEQ_LIMIT {
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

    /// Writes `values`, each as the `N` bytes `bytes` makes of it.
    #[inline]
    fn items<T: Copy, const N: usize>(
        &mut self,
        values: &[T],
        bytes: impl Fn(T) -> [u8; N],
    ) -> io::Result<()> {
        for piece in values.chunks(Self::BUFFER / N) {
            self.room(N * piece.len())?;
            let start = self.buffer.len();
            self.buffer.resize(start + N * piece.len(), 0);
            for (to, &value) in self.buffer[start..].chunks_exact_mut(N).zip(piece) {
                to.copy_from_slice(&bytes(value));
            }
        }
        Ok(())
    }

    pub(crate) fn u32s(&mut self, values: &[u32]) -> io::Result<()> {
        self.items(values, u32::to_le_bytes)
    }

    pub(crate) fn purchases(&mut self, values: &[Purchase]) -> io::Result<()> {
        self.items(values, |p| p.bits().to_le_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::{MAX_CENTS, Timestamp};
    use crate::state::graph::INDEX_ABOVE;
    use crate::state::users::UserId;
    use proptest::prelude::*;

    /// A small state: ids of every kind, a few friendships (made and unmade), purchases of
    /// the batch and of the stream, beyond `T` for some users and fewer for others, recent
    /// purchases that keep 4 to 7 (so some were dropped).
    fn small_state() -> (UserIds, FriendGraph, PurchaseHistory, Position) {
        let mut users = UserIds::new(IdHasher::random());
        for id in ["10", "07", "ab", "é", "-3", "11", "4194304", "0"] {
            users.intern(id.as_bytes()).expect("below the limit");
        }
        let mut graph = FriendGraph::new();
        for (a, b) in [(0, 1), (1, 2), (2, 3), (0, 5), (4, 5), (3, 1), (6, 0)] {
            graph.befriend(a, b);
        }
        graph.unfriend(2, 3);
        let mut history = PurchaseHistory::keeping_recent(3, 4);
        let mut seq = 2;
        let mut purchase = |time: u64, cents: u64| {
            seq += 1;
            Purchase::new(Timestamp(1_000 + time), seq, cents)
        };
        for (user, time, cents) in [(0, 5, 100), (1, 3, 250), (0, 1, 300), (0, 9, 75)] {
            history.record_unranked(user, purchase(time, cents));
        }
        for (user, time, cents) in [(0, 2, 120), (2, 8, 999), (1, 8, 10), (5, 4, MAX_CENTS)] {
            history.record_unranked(user, purchase(time, cents));
        }
        history.rank_all();
        for (user, time, cents) in [(3, 20, 5), (0, 21, 6), (1, 2, 7), (6, 22, 8), (3, 23, 9)] {
            history.record(user, purchase(time, cents));
        }
        let at = Position {
            params: Params {
                degree: 2,
                tracked: 3,
            },
            seq: seq + 1,
            batch_lines: 5,
        };
        (users, graph, history, at)
    }

    fn saved(state: &(UserIds, FriendGraph, PurchaseHistory, Position)) -> Vec<u8> {
        let (users, graph, history, at) = state;
        let mut bytes = Vec::new();
        save(users, graph, history, at, &mut bytes).expect("saved");
        bytes
    }

    fn saved_snapshot(s: &Snapshot) -> Vec<u8> {
        let mut bytes = Vec::new();
        save(&s.users, &s.graph, &s.history, &s.at, &mut bytes).expect("saved");
        bytes
    }

    /// Sets the checksum of a changed snapshot.
    fn reseal(bytes: &mut [u8]) {
        let end = bytes.len() - TRAILER;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
    }

    /// Where section `index` (0: names ...) starts its payload, and its length.
    fn section_at(bytes: &[u8], index: usize) -> (usize, usize) {
        let mut at = HEADER;
        for i in 0.. {
            let len = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
            if i == index {
                return (at + SECTION_HEAD, len);
            }
            at += SECTION_HEAD + len;
        }
        unreachable!()
    }

    fn inconsistent_error(bytes: &[u8]) -> String {
        match restore_bytes(bytes) {
            Err(SnapshotError::Inconsistent(what)) => what,
            Err(other) => panic!("another error: {other}"),
            Ok(_) => panic!("restored"),
        }
    }

    #[test]
    fn a_restored_state_equals_the_saved_one() {
        let state = small_state();
        let bytes = saved(&state);
        let (users, graph, history, at) = &state;
        let mut restored = restore(&mut &bytes[..]).expect("restored");
        assert_eq!(restored.at, *at);
        let n = users.len() as UserId;
        assert_eq!(restored.users.len(), users.len());
        for u in 0..n {
            assert_eq!(restored.users.name(u), users.name(u));
            let mut friends = graph.friends(u).to_vec();
            friends.sort_unstable();
            assert_eq!(restored.graph.friends(u), friends, "user {u}");
            let kept = |h: &PurchaseHistory| h.newest_first(u).collect::<Vec<_>>();
            assert_eq!(kept(&restored.history), kept(history), "user {u}");
            assert_eq!(restored.history.recency(u), history.recency(u));
            assert_eq!(restored.history.newest(u), history.newest(u));
        }
        assert_eq!(restored.graph.edges(), graph.edges());
        assert_eq!(restored.history.buyers(), history.buyers());
        assert_eq!(restored.history.tracked(), history.tracked());
        let (recent, again) = (history.recent(), restored.history.recent());
        assert_eq!(
            (again.purchases(), again.buyers(), again.keep()),
            (recent.purchases(), recent.buyers(), recent.keep())
        );
        assert!(recent.purchases()[0] > Purchase::new(Timestamp(1_000), 3, 100));
        // The id tables work: known ids are found, a new one comes next.
        for u in 0..n {
            let name = users.name(u).to_vec();
            assert_eq!(restored.users.intern(&name), Ok(u));
        }
        assert_eq!(restored.users.intern(b"new"), Ok(n));
        assert_eq!(restored.users.intern(b"12"), Ok(n + 1));
        // And the rest changes as it would have.
        assert!(restored.graph.unfriend(1, 0) && !restored.graph.are_friends(0, 1));
        restored
            .history
            .record(7, Purchase::new(Timestamp(2_000), at.seq, 1));
        assert_eq!(restored.history.len_of(7), 1);
    }

    #[test]
    fn saving_is_deterministic_and_ignores_the_order_friendships_were_made_in() {
        let state = small_state();
        let bytes = saved(&state);
        assert_eq!(saved(&state), bytes);
        assert_eq!(saved_snapshot(&restore_bytes(&bytes).unwrap()), bytes);
        let (users, _, history, at) = state;
        let mut graph = FriendGraph::new();
        for (a, b) in [(6, 0), (5, 4), (1, 3), (0, 5), (2, 1), (1, 0)] {
            graph.befriend(a, b);
        }
        assert_eq!(saved(&(users, graph, history, at)), bytes);
    }

    #[test]
    fn a_hub_is_restored_and_indexed_again_when_searched() {
        let mut users = UserIds::new(IdHasher::random());
        let mut graph = FriendGraph::new();
        let hub = 2 * INDEX_ABOVE as UserId;
        for u in 0..=hub {
            users.intern(u.to_string().as_bytes()).unwrap();
        }
        for f in (0..hub).rev() {
            graph.befriend(hub, f);
        }
        graph.unfriend(hub, 7);
        assert_eq!(graph.indexed_users(), 1);
        let history = PurchaseHistory::new(2);
        let at = Position {
            params: Params {
                degree: 1,
                tracked: 2,
            },
            seq: 1 + u64::from(hub),
            batch_lines: 1,
        };
        let bytes = saved(&(users, graph, history, at));
        let mut restored = restore_bytes(&bytes).unwrap();
        assert_eq!(restored.graph.indexed_users(), 0);
        assert_eq!(restored.graph.edges(), hub as usize - 1);
        assert!(restored.graph.unfriend(9, hub) && !restored.graph.unfriend(hub, 7));
        assert_eq!(restored.graph.indexed_users(), 1);
        assert!(!restored.graph.are_friends(hub, 9) && restored.graph.are_friends(10, hub));
    }

    #[test]
    fn no_snapshot_is_taken_inside_a_window() {
        let (users, graph, mut history, at) = small_state();
        history.record_in_window(2, Purchase::new(Timestamp(5_000), at.seq, 1));
        let error = save(&users, &graph, &history, &at, &mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        history.close_window(2);
        let at = Position {
            seq: at.seq + 1,
            ..at
        };
        assert!(save(&users, &graph, &history, &at, &mut Vec::new()).is_ok());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = saved(&small_state());
        assert!(bytes.len() > 300, "{} bytes", bytes.len());
        for len in 0..bytes.len() {
            match restore_bytes(&bytes[..len]) {
                Err(SnapshotError::Truncated { have, expected }) => {
                    assert!(
                        have == len as u64 && expected > have,
                        "{len}: {have}/{expected}"
                    );
                }
                Err(other) => panic!("cut at {len}: {other}"),
                Ok(_) => panic!("cut at {len}: restored"),
            }
        }
        assert!(restore_bytes(&bytes).is_ok());
    }

    #[test]
    fn every_changed_byte_is_an_error() {
        let bytes = saved(&small_state());
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[at] ^= flip;
                let error = restore_bytes(&changed).err();
                let expected = match at {
                    0..8 => matches!(error, Some(SnapshotError::NotASnapshot)),
                    8..12 => matches!(error, Some(SnapshotError::Version { .. })),
                    16..24 => matches!(
                        error,
                        Some(SnapshotError::Truncated { .. } | SnapshotError::Inconsistent(_))
                    ),
                    _ => matches!(error, Some(SnapshotError::Checksum { .. })),
                };
                assert!(expected, "byte {at} ^ {flip:#x}: {error:?}");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(inconsistent_error(&longer).contains("1 bytes follow its end"));
    }

    #[test]
    fn another_magic_or_version_is_named() {
        let mut bytes = saved(&small_state());
        let mut other = bytes.clone();
        other[..8].copy_from_slice(b"{\"D\":\"2\"");
        assert!(matches!(
            restore_bytes(&other),
            Err(SnapshotError::NotASnapshot)
        ));
        assert!(matches!(
            restore_bytes(b"ANOM"),
            Err(SnapshotError::Truncated { .. })
        ));
        bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
        reseal(&mut bytes);
        let error = restore_bytes(&bytes).err().unwrap();
        assert!(matches!(error, SnapshotError::Version { found: 2, .. }));
        assert_eq!(
            error.to_string(),
            "it is a snapshot of format version 2; this program reads version 1"
        );
    }

    #[test]
    fn inconsistent_content_with_a_good_checksum_is_an_error() {
        let state = small_state();
        let bytes = saved(&state);
        let n = state.0.len();
        let change = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut changed = bytes.clone();
            edit(&mut changed);
            reseal(&mut changed);
            inconsistent_error(&changed)
        };
        let put32 =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        // Counts far beyond the snapshot's size.
        assert!(change(&|b| put64(b, 56, u64::MAX)).contains("users in"));
        assert!(change(&|b| put64(b, 56, n as u64 + 1)).contains("left"));
        assert!(change(&|b| put64(b, HEADER + 8, u64::MAX)).contains("asked for"));
        let (names, _) = section_at(&bytes, 0);
        assert!(change(&|b| put32(b, names, u32::MAX)).contains("asked for"));
        let (recent, _) = section_at(&bytes, 3);
        assert!(change(&|b| put64(b, recent, u64::MAX / 2)).contains("recent purchases"));
        // Parameters and positions.
        assert!(change(&|b| put32(b, 24, 0)).contains("out of range"));
        assert!(change(&|b| put32(b, 28, 1)).contains("out of range"));
        assert!(change(&|b| put64(b, 32, 0)).contains("recent purchases kept"));
        assert!(change(&|b| put64(b, 48, u64::MAX)).contains("batch lines"));
        assert!(change(&|b| b[12] = 1).contains("flags"));
        assert!(change(&|b| b[HEADER] = 9).contains("section 9"));
        // Two users with one id ("10" and "11" are users 0 and 5).
        let eleven = names + 4 * n + "1007abé-3".len() + 1;
        assert_eq!(&bytes[eleven - 1..eleven + 1], b"11");
        assert!(change(&|b| b[eleven] = b'0').contains("earlier user"));
        assert!(change(&|b| put32(b, names, 0)).contains("empty id"));
        // Friends: out of range, oneself, out of order, one-sided.
        let (friends, _) = section_at(&bytes, 1);
        let first = friends + 4 * n; // user 0's friends: 1, 5, 6
        assert_eq!(&bytes[first..first + 4], &1u32.to_le_bytes());
        assert!(change(&|b| put32(b, first + 8, n as u32)).contains("has friend"));
        assert!(change(&|b| put32(b, first, 0)).contains("has friend 0"));
        assert!(change(&|b| put32(b, first, 7)).contains("not in order"));
        assert!(change(&|b| put32(b, first + 8, 7)).contains("does not have"));
        // Purchases: amount, sequence number, order, beyond T, missing from the recent ones.
        let (histories, _) = section_at(&bytes, 2);
        let purchase = histories + 4 * n; // user 0's oldest
        let bits = u128::from_le_bytes(bytes[purchase..purchase + 16].try_into().unwrap());
        let with =
            |b: &mut Vec<u8>, at: usize, p: u128| b[at..at + 16].copy_from_slice(&p.to_le_bytes());
        let old = Purchase::from_bits(bits, Purchase::SEQ_LIMIT).unwrap();
        let seq_of = |seq: u64| Purchase::new(old.timestamp(), seq, old.cents()).bits();
        assert!(change(&|b| with(b, purchase, bits | (MAX_CENTS as u128 + 1))).contains("cents"));
        assert!(change(&|b| with(b, purchase, seq_of(0))).contains("sequence number 0"));
        assert!(change(&|b| with(b, purchase, seq_of(state.3.seq))).contains("the next is"));
        assert!(change(&|b| with(b, purchase + 16, bits)).contains("not in order"));
        let (user_0, user_1) = (histories, histories + 4);
        assert_eq!(&bytes[user_0..user_1 + 4], [3, 0, 0, 0, 3, 0, 0, 0]);
        let moved = change(&|b| {
            put32(b, user_0, 4);
            put32(b, user_1, 2);
        });
        assert!(moved.contains("above T"), "{moved}");
        let count = state.2.recent().purchases().len();
        let newest = recent + 8 + 16 * (count - 1);
        assert!(change(&|b| b[newest] ^= 1).contains("missing from the recent"));
        let buyers = recent + 8 + 16 * count;
        assert!(change(&|b| put32(b, buyers, n as u32)).contains("by user"));
    }

    proptest! {
        /// A snapshot changed anywhere, its checksum made good again, restores or fails:
        /// never a panic, never an allocation out of proportion.
        #[test]
        fn a_changed_snapshot_with_a_good_checksum_never_panics(
            changes in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6),
        ) {
            let mut bytes = saved(&small_state());
            let body = bytes.len() - TRAILER;
            for (at, value, width) in changes {
                // Small values into counts more often than chance would.
                let at = at % body;
                match width {
                    0 => bytes[at] = value,
                    1 => bytes[at] ^= 1 << (value % 8),
                    _ => {
                        let at = at.min(body - 4);
                        let v = u32::from(value) * if width == 2 { 1 } else { 1 << 24 };
                        bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
            reseal(&mut bytes);
            if let Ok(restored) = restore_bytes(&bytes) {
                // What restores saves again, to the same bytes.
                prop_assert_eq!(saved_snapshot(&restored), bytes);
            }
        }
    }
}
