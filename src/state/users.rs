//! Interning user ids: every distinct id (its bytes after JSON unescaping, or an integer's
//! literal text) becomes a dense [`UserId`] so the state lives in plain vectors.

use hashbrown::HashTable;

use crate::ingest::event::{IdRef, NOT_SMALL, id_hash, small_number, small_number_digits};
use crate::ingest::parse::{IdHasher, ParsedChunk};
use std::hash::BuildHasher;

/// A dense user index, assigned in order of first appearance.
pub type UserId = u32;

const NO_USER: UserId = UserId::MAX;

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
}

impl UserIds {
    pub fn new(hasher: IdHasher) -> Self {
        UserIds {
            by_number: Vec::new(),
            table: HashTable::new(),
            arena: Vec::new(),
            ends: Vec::new(),
            hasher,
        }
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

    /// The user of the small number `number` (see [`IdRef`]).
    #[inline]
    pub fn intern_number(&mut self, number: u32) -> UserId {
        let n = number as usize;
        if self.by_number.len() <= n {
            self.by_number.resize((n + 1).next_power_of_two(), NO_USER);
        }
        if self.by_number[n] == NO_USER {
            self.by_number[n] = self.ends.len() as UserId;
            let (digits, len) = small_number_digits(number);
            self.arena.extend_from_slice(&digits[..len]);
            self.ends.push(self.arena.len());
        }
        self.by_number[n]
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
    pub fn intern_from(&mut self, chunk: &ParsedChunk, id: IdRef) -> UserId {
        match id.number() {
            Some(number) => self.intern_number(number),
            None => self.intern_hashed(id.hash().unwrap_or_default(), chunk.stored_id(id)),
        }
    }

    /// The user with these id bytes (not a small number), whose hash the parser computed with
    /// [`Self::hasher`].
    pub fn intern_hashed(&mut self, hash: u64, bytes: &[u8]) -> UserId {
        let UserIds {
            by_number: _,
            table,
            arena,
            ends,
            hasher,
        } = self;
        if let Some(&user) = table.find(hash, |&u| name_in(arena, ends, u) == bytes) {
            return user;
        }
        let user = ends.len() as UserId;
        table.insert_unique(hash, user, |&u| {
            id_hash(hasher.hash_one(name_in(arena, ends, u)))
        });
        arena.extend_from_slice(bytes);
        ends.push(arena.len());
        user
    }

    /// The user with these id bytes.
    pub fn intern(&mut self, bytes: &[u8]) -> UserId {
        match small_number(bytes) {
            NOT_SMALL => self.intern_hashed(id_hash(self.hasher.hash_one(bytes)), bytes),
            number => self.intern_number(number),
        }
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
        let a = users.intern(b"7");
        let b = users.intern(b"07");
        let c = users.intern(b"-7");
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(users.intern(b"7"), a);
        for i in 0..10_000u32 {
            users.intern(i.to_string().as_bytes());
        }
        assert_eq!(users.intern(b"07"), b);
        assert_eq!(users.name(c), b"-7");
        assert_eq!(users.len(), 3 + 10_000 - 1); // "7" was already there
    }
}
