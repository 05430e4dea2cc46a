//! The product manager's sinks: for every flagged purchase, the friends whose feed should show
//! it (`--feed`), and the friends of friends who could be sent a suggestion to befriend the big
//! spender, with their number of mutual friends (`--recommend`).

use std::cmp::Ordering;
use std::io::{self, Write};

use crate::output::report::json_string;
use crate::output::sink::{Checked, Sink};
use crate::query::baseline::write_dollars;
use crate::state::users::{UserId, UserIds};

/// What a social sink writes for each flagged purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocialList {
    /// `"friends": [ids...]`, ascending.
    Feed,
    /// `"suggest": [{"id": .., "mutual": N}, ...]`, most mutual friends first, then by id.
    Recommend,
}

/// Writes one JSON line per flagged purchase with its feed or recommendation list.
pub struct SocialLines<W: Write> {
    out: W,
    list: SocialList,
    line: Vec<u8>,
}

impl<W: Write> SocialLines<W> {
    pub fn new(out: W, list: SocialList) -> Self {
        SocialLines {
            out,
            list,
            line: Vec::with_capacity(256),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for SocialLines<W> {
    type Error = io::Error;

    fn checked(&mut self, purchase: &Checked<'_>) -> io::Result<bool> {
        let (true, Some(social)) = (purchase.flagged, purchase.social) else {
            return Ok(true);
        };
        let users = purchase.users;
        let name = |u: UserId| json_string(&String::from_utf8_lossy(users.name(u)));
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"id\": ");
        line.extend_from_slice(name(purchase.buyer).as_bytes());
        line.extend_from_slice(b", \"timestamp\": \"");
        purchase.timestamp.write(line);
        line.extend_from_slice(b"\", \"amount\": \"");
        write_dollars(line, u128::from(purchase.cents));
        line.extend_from_slice(b"\", ");
        match self.list {
            SocialList::Feed => {
                let mut friends = social.friends.clone();
                let numeric = all_integers(users, friends.iter().copied());
                friends.sort_by(|&a, &b| id_order(users.name(a), users.name(b), numeric));
                let names: Vec<String> = friends.iter().map(|&f| name(f)).collect();
                line.extend_from_slice(
                    format!("\"friends\": [{}]}}\n", names.join(", ")).as_bytes(),
                );
            }
            SocialList::Recommend => {
                let mut suggest = social.suggest.clone();
                let numeric = all_integers(users, suggest.iter().map(|&(u, _)| u));
                suggest.sort_by(|&(a, ma), &(b, mb)| {
                    mb.cmp(&ma)
                        .then_with(|| id_order(users.name(a), users.name(b), numeric))
                });
                let items: Vec<String> = suggest
                    .iter()
                    .map(|&(u, mutual)| format!("{{\"id\": {}, \"mutual\": {mutual}}}", name(u)))
                    .collect();
                line.extend_from_slice(
                    format!("\"suggest\": [{}]}}\n", items.join(", ")).as_bytes(),
                );
            }
        }
        self.out.write_all(line)?;
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn is_integer(id: &[u8]) -> bool {
    let digits = id.strip_prefix(b"-").unwrap_or(id);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn all_integers(users: &UserIds, mut ids: impl Iterator<Item = UserId>) -> bool {
    ids.all(|u| is_integer(users.name(u)))
}

/// Ascending order of ids: numeric when `numeric` (all ids of the list are integers), with
/// bytewise order between equal numbers (`7` before `07`); bytewise otherwise.
pub fn id_order(a: &[u8], b: &[u8], numeric: bool) -> Ordering {
    if !numeric {
        return a.cmp(b);
    }
    let ((neg_a, da), (neg_b, db)) = (magnitude(a), magnitude(b));
    let by_size = (da.len(), da).cmp(&(db.len(), db));
    let by_value = match (neg_a, neg_b) {
        (false, false) => by_size,
        (true, true) => by_size.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    };
    by_value.then_with(|| a.cmp(b))
}

/// The sign (true: negative and not zero) and the digits without leading zeros of an integer.
fn magnitude(id: &[u8]) -> (bool, &[u8]) {
    let digits = id.strip_prefix(b"-").unwrap_or(id);
    let first = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    let digits = &digits[first..];
    (id.starts_with(b"-") && !digits.is_empty(), digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_numerically_when_all_are_integers() {
        let mut ids: Vec<&[u8]> = vec![b"10", b"9", b"-3", b"07", b"7", b"-20", b"0", b"100"];
        ids.sort_by(|a, b| id_order(a, b, true));
        assert_eq!(
            ids,
            vec![&b"-20"[..], b"-3", b"0", b"07", b"7", b"9", b"10", b"100"]
        );
        let mut ids: Vec<&[u8]> = vec![b"10", b"9", b"a"];
        ids.sort_by(|a, b| id_order(a, b, false));
        assert_eq!(ids, vec![&b"10"[..], b"9", b"a"]);
    }
}
