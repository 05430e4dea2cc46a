//! Interning user ids: every distinct id (its bytes after JSON unescaping, or an integer's
//! literal text) becomes a dense [`UserId`] so the state lives in plain vectors.

use hashbrown::HashTable;

use crate::ingest::event::{IdRef, NOT_SMALL, id_hash, small_number, small_number_digits};
use crate::ingest::parse::{IdHasher, ParsedChunk};
use crate::state::snapshot::{In, Out, SnapshotError, inconsistent};
use std::hash::BuildHasher;
use std::io::{self, Write};

/// A dense user index, assigned in order of first appearance.
pub type UserId = u32;

/// Marks "no user yet" in the direct table: never a user's index.
const NO_USER: UserId = UserId::MAX;

/// The most distinct users a run holds: 4 294 967 294, every index below `NO_USER` (`u32::MAX`) but the
/// last (one spare, so that `users + 1` still fits). One more is [`TooManyUsers`], a fatal
/// error naming the line that brought it; never a collision with `NO_USER`.
pub const MAX_USERS: usize = UserId::MAX as usize - 1;

/// A log names more than [`MAX_USERS`] distinct users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyUsers;

#[cfg(test)]
thread_local! {
    /// Lowers the user limit of the interners this thread makes (tests of the limit, which
    /// cannot intern four billion users).
    pub static TEST_LIMIT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The interner: a direct table for small canonical decimal ids (most logs' ids), a hash
/// table of indices into an arena of id bytes for the others.
pub struct UserIds {
    /// `by_number[n]` is the user with id `n` (as canonical decimal), or [`NO_USER`].
    by_number: Vec<UserId>,
    table: HashTable<UserId>,
    arena: Vec<u8>,
    /// `ends[u]` is where user `u`'s bytes end in `arena`; they start at `ends[u - 1]`.
    ends: Vec<usize>,
    hasher: IdHasher,
    /// At most this many users: [`MAX_USERS`] but in tests.
    limit: usize,
}

impl UserIds {
    pub fn new(hasher: IdHasher) -> Self {
        UserIds {
            by_number: Vec::new(),
            table: HashTable::new(),
            arena: Vec::new(),
            ends: Vec::new(),
            hasher,
            limit: {
                #[cfg(test)]
                let limit = TEST_LIMIT.get().unwrap_or(MAX_USERS);
                #[cfg(not(test))]
                let limit = MAX_USERS;
                limit
            },
        }
    }

    /// The most users this interner holds: [`MAX_USERS`].
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn hasher(&self) -> IdHasher {
        self.hasher
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of a user's id.
    pub fn name(&self, user: UserId) -> &[u8] {
        name_in(&self.arena, &self.ends, user)
    }

    /// The index the next new user gets, if one more fits.
    #[inline]
    fn next_user(ends: &[usize], limit: usize) -> Result<UserId, TooManyUsers> {
        if ends.len() < limit {
            // Below the limit, so below `MAX_USERS`: it fits.
            Ok(ends.len() as UserId)
        } else {
            Err(TooManyUsers)
        }
    }

    /// The user of the small number `number` (see [`IdRef`]).
    #[inline]
    pub fn intern_number(&mut self, number: u32) -> Result<UserId, TooManyUsers> {
        let n = number as usize;
        if self.by_number.len() <= n {
            self.by_number.resize((n + 1).next_power_of_two(), NO_USER);
        }
        if self.by_number[n] == NO_USER {
            self.by_number[n] = Self::next_user(&self.ends, self.limit)?;
            let (digits, len) = small_number_digits(number);
            self.arena.extend_from_slice(&digits[..len]);
            self.ends.push(self.arena.len());
        }
        Ok(self.by_number[n])
    }

    /// Starts loading what interning `id` will read, when that is the direct table.
    #[inline]
    pub fn prefetch(&self, id: IdRef) {
        if let Some(entry) = id.number().and_then(|n| self.by_number.get(n as usize)) {
            crate::state::prefetch::prefetch(entry);
        }
    }

    /// The user of an id parsed into `chunk`.
    #[inline]
    pub fn intern_from(&mut self, chunk: &ParsedChunk, id: IdRef) -> Result<UserId, TooManyUsers> {
        match id.number() {
            Some(number) => self.intern_number(number),
            None => self.intern_hashed(id.hash().unwrap_or_default(), chunk.stored_id(id)),
        }
    }

    /// The user with these id bytes (not a small number), whose hash the parser computed with
    /// [`Self::hasher`].
    pub fn intern_hashed(&mut self, hash: u64, bytes: &[u8]) -> Result<UserId, TooManyUsers> {
        let UserIds {
            by_number: _,
            table,
            arena,
            ends,
            hasher,
            limit,
        } = self;
        if let Some(&user) = table.find(hash, |&u| name_in(arena, ends, u) == bytes) {
            return Ok(user);
        }
        let user = Self::next_user(ends, *limit)?;
        table.insert_unique(hash, user, |&u| {
            id_hash(hasher.hash_one(name_in(arena, ends, u)))
        });
        arena.extend_from_slice(bytes);
        ends.push(arena.len());
        Ok(user)
    }

    /// The user with these id bytes.
    pub fn intern(&mut self, bytes: &[u8]) -> Result<UserId, TooManyUsers> {
        match small_number(bytes) {
            NOT_SMALL => self.intern_hashed(id_hash(self.hasher.hash_one(bytes)), bytes),
            number => self.intern_number(number),
        }
    }
}

impl UserIds {
    /// Bytes of [`Self::save`]'s part of a snapshot.
    pub(crate) fn snapshot_len(&self) -> u64 {
        4 * self.ends.len() as u64 + self.arena.len() as u64
    }

    /// Writes every user's id, in order: their lengths (`u32`), then their bytes.
    pub(crate) fn save(&self, out: &mut Out<'_, impl Write>) -> io::Result<()> {
        let mut start = 0;
        for &end in &self.ends {
            // An id is a part of one line, and lines are below 4 GiB.
            out.u32((end - start) as u32)?;
            start = end;
        }
        out.bytes(&self.arena)
    }

    /// Reads `users` ids written by [`Self::save`] and indexes them anew with `hasher`.
    pub(crate) fn restore(
        input: &mut In<'_>,
        users: usize,
        hasher: IdHasher,
    ) -> Result<UserIds, SnapshotError> {
        let mut ids = UserIds::new(hasher);
        if users > ids.limit {
            return inconsistent(format!("{users} users, beyond the limit of {}", ids.limit));
        }
        let lengths = input.u32s(users as u64)?;
        let total: u64 = lengths.clone().map(u64::from).sum();
        ids.arena = input.take_u64(total)?.to_vec();
        ids.ends.reserve_exact(users);
        let mut end = 0;
        for length in lengths {
            if length == 0 {
                return inconsistent(format!("user {} has an empty id", ids.ends.len()));
            }
            end += length as usize;
            ids.ends.push(end);
        }
        let UserIds {
            by_number,
            table,
            arena,
            ends,
            ..
        } = &mut ids;
        for user in 0..users as UserId {
            let name = name_in(arena, ends, user);
            let known = match small_number(name) {
                NOT_SMALL => {
                    let hash = id_hash(hasher.hash_one(name));
                    let known = table
                        .find(hash, |&u| name_in(arena, ends, u) == name)
                        .is_some();
                    if !known {
                        table.insert_unique(hash, user, |&u| {
                            id_hash(hasher.hash_one(name_in(arena, ends, u)))
                        });
                    }
                    known
                }
                number => {
                    let n = number as usize;
                    if by_number.len() <= n {
                        by_number.resize((n + 1).next_power_of_two(), NO_USER);
                    }
                    let known = by_number[n] != NO_USER;
                    by_number[n] = user;
                    known
                }
            };
            if known {
                return inconsistent(format!("user {user} has the id of an earlier user"));
            }
        }
        Ok(ids)
    }
}

/// The text of `user`: its slice of `arena`, which holds every id back to back ending at `ends`.
#[inline]
fn name_in<'a>(arena: &'a [u8], ends: &[usize], user: UserId) -> &'a [u8] {
    let u = user as usize;
    let start = if u == 0 { 0 } else { ends[u - 1] };
    &arena[start..ends[u]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_same_user_in_order_of_first_appearance() {
        let mut users = UserIds::new(IdHasher::default());
        let mut intern = |bytes: &[u8]| users.intern(bytes).expect("below the limit");
        let a = intern(b"7");
        let b = intern(b"07");
        let c = intern(b"-7");
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(intern(b"7"), a);
        for i in 0..10_000u32 {
            intern(i.to_string().as_bytes());
        }
        assert_eq!(intern(b"07"), b);
        assert_eq!(users.name(c), b"-7");
        assert_eq!(users.len(), 3 + 10_000 - 1); // "7" was already there
    }

    #[test]
    fn one_user_beyond_the_limit_is_refused_and_known_ones_still_resolve() {
        assert_eq!(MAX_USERS, 4_294_967_294);
        TEST_LIMIT.set(Some(3));
        let mut users = UserIds::new(IdHasher::default());
        TEST_LIMIT.set(None);
        assert_eq!(users.intern(b"5"), Ok(0));
        assert_eq!(users.intern(b"x"), Ok(1));
        assert_eq!(users.intern(b"07"), Ok(2));
        // A fourth user, whether a small number or hashed: refused, nothing recorded.
        assert_eq!(users.intern(b"6"), Err(TooManyUsers));
        assert_eq!(users.intern(b"y"), Err(TooManyUsers));
        assert_eq!(users.len(), 3);
        assert_eq!(users.intern(b"5"), Ok(0));
        assert_eq!(users.intern(b"07"), Ok(2));
        assert_eq!(users.intern(b"6"), Err(TooManyUsers), "refused again");
    }
}
