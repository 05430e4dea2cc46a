//! Where checked stream purchases go. The replay hands every checked purchase to a [`Sink`];
//! the flagged-purchases file is one sink, tests and other outputs are others.

use std::io::{self, Write};

use crate::error::Fatal;
use crate::ingest::event::Timestamp;
use crate::query::baseline::{Baseline, write_dollars};
use crate::query::network::Social;
use crate::state::users::{UserId, UserIds};

/// A stream purchase after its check against its network's baseline, as a [`Sink`] receives it.
///
/// ```
/// use anomaly_detect::{Checked, Sink};
///
/// /// Counts the flagged purchases and remembers the largest flagged amount.
/// #[derive(Default)]
/// struct Largest { flagged: u64, cents: u64 }
///
/// impl Sink for Largest {
///     type Error = std::io::Error;
///     fn checked(&mut self, purchase: &Checked<'_>) -> std::io::Result<bool> {
///         if purchase.is_flagged() {
///             self.flagged += 1;
///             self.cents = self.cents.max(purchase.cents());
///         }
///         Ok(true)
///     }
/// }
/// # let _ = Largest::default();
/// ```
#[derive(Clone, Copy)]
pub struct Checked<'a> {
    /// The original line, trimmed of surrounding JSON white space.
    pub(crate) line: &'a [u8],
    /// 1-based line number in the stream log.
    pub(crate) line_no: u64,
    pub(crate) buyer: UserId,
    pub(crate) cents: u64,
    pub(crate) timestamp: Timestamp,
    pub(crate) baseline: Baseline,
    pub(crate) flagged: bool,
    /// For a flagged purchase when the replay was asked for it: the buyer's friends and
    /// friends of friends at that moment.
    pub(crate) social: Option<&'a Social>,
    /// The user ids, to name `buyer` and the users in `social`.
    pub(crate) users: &'a UserIds,
}

impl<'a> Checked<'a> {
    /// The purchase's line, trimmed of surrounding JSON white space.
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// The line's number in its stream log, from 1.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Whether the purchase is anomalous: more than 3 standard deviations above the mean of
    /// its network's latest `T` purchases (never with fewer than 2 of them).
    pub fn is_flagged(&self) -> bool {
        self.flagged
    }

    /// The amount in cents.
    pub fn cents(&self) -> u64 {
        self.cents
    }

    /// The buyer's id as the log gives it (a string's text, or a number's digits).
    pub fn buyer(&self) -> &'a [u8] {
        self.users.name(self.buyer)
    }

    /// The network's latest `T` purchases before this one, that the purchase was judged by.
    pub fn baseline(&self) -> Baseline {
        self.baseline
    }

    /// Appends the line that the flagged-purchases output holds for this purchase: the line
    /// with `"mean"` and `"sd"` added, and a newline. Nothing for a purchase not flagged.
    pub fn write_flagged_line(&self, out: &mut Vec<u8>) {
        if self.flagged {
            flagged_line(out, self.line, &self.baseline);
        }
    }

    /// For a flagged purchase of a detector asked for them ([`Builder::social`]): the
    /// buyer's friends, by id, in no particular order (the outputs sort them).
    ///
    /// [`Builder::social`]: crate::Builder::social
    pub fn friends(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let users = self.users;
        self.social
            .into_iter()
            .flat_map(|social| social.friends.iter())
            .map(move |&user| users.name(user))
    }

    /// For a flagged purchase of a detector asked for them ([`Builder::social`]): the
    /// users at distance exactly 2 from the buyer, by id, each with its number of mutual
    /// friends, in no particular order (the recommendations output sorts them).
    ///
    /// [`Builder::social`]: crate::Builder::social
    pub fn suggested(&self) -> impl Iterator<Item = (&'a [u8], u32)> + 'a {
        let users = self.users;
        self.social
            .into_iter()
            .flat_map(|social| social.suggest.iter())
            .map(move |&(user, mutual)| (users.name(user), mutual))
    }
}

/// What a sink receives for each stream purchase: a [`Checked`] in a run ([`Single`]), every
/// pair's baselines in a sweep (`sweep::grid::Sweep`).
///
/// ```
/// use anomaly_detect::{Checked, Kind, Single};
///
/// // A run's sinks receive `Checked` purchases.
/// fn line_of<'a>(purchase: &<Single as Kind>::Checked<'a>) -> &'a [u8] {
///     Checked::line(purchase)
/// }
/// # let _ = line_of;
/// ```
pub trait Kind {
    /// The checked purchase.
    type Checked<'a>;
}

/// A run's checks: each purchase against its network's baseline with the run's `D` and `T`.
///
/// ```
/// fn takes_run_sinks(_: &mut dyn anomaly_detect::Sink<anomaly_detect::Single, Error = std::io::Error>) {}
/// # let _ = takes_run_sinks;
/// ```
pub enum Single {}

impl Kind for Single {
    type Checked<'a> = Checked<'a>;
}

/// An error a sink's output can fail with: it ends the replay as a [`Fatal`] error, which
/// names the output (the writers of the output files name it in their errors). A library
/// user's sink fails with [`std::io::Error`], [`Fatal`] or any error boxed as
/// `Box<dyn std::error::Error + Send + Sync>` ([`Fatal::Sink`]).
///
/// ```
/// use anomaly_detect::{Fatal, SinkError};
///
/// let error: Box<dyn std::error::Error + Send + Sync> = "the queue is full".into();
/// assert_eq!(error.into_fatal().to_string(), "the sink failed: the queue is full");
/// ```
pub trait SinkError {
    /// The error as the replay's.
    fn into_fatal(self) -> Fatal;
}

impl SinkError for io::Error {
    fn into_fatal(self) -> Fatal {
        Fatal::Output(self)
    }
}

impl SinkError for Box<dyn std::error::Error + Send + Sync> {
    fn into_fatal(self) -> Fatal {
        Fatal::Sink(self)
    }
}

impl SinkError for Fatal {
    fn into_fatal(self) -> Fatal {
        self
    }
}

/// Receives every checked stream purchase, in stream order: the flagged-purchases file, the
/// feed and recommendations, a sweep's grid, a library user's own sink. `K` says what a
/// checked purchase is (a run's [`Checked`] by default).
///
/// ```
/// use anomaly_detect::{Checked, Sink};
///
/// /// Keeps the first three flagged lines, then ends the stream.
/// struct FirstThree(Vec<Vec<u8>>);
///
/// impl Sink for FirstThree {
///     type Error = std::io::Error;
///     fn checked(&mut self, purchase: &Checked<'_>) -> std::io::Result<bool> {
///         if purchase.is_flagged() {
///             let mut line = Vec::new();
///             purchase.write_flagged_line(&mut line);
///             self.0.push(line);
///         }
///         Ok(self.0.len() < 3)
///     }
/// }
/// # let _ = FirstThree(Vec::new());
/// ```
pub trait Sink<K: Kind = Single> {
    /// The error the sink's output can fail with; it ends the replay.
    type Error: SinkError;

    /// Called once before the stream's first purchase; `false` ends the stream at once.
    fn begin(&mut self) -> Result<bool, Self::Error> {
        Ok(true)
    }

    /// A checked purchase; `false` ends the stream after it: no later line is read, and the
    /// purchases checked with it but after it are not handed over.
    fn checked(&mut self, purchase: &K::Checked<'_>) -> Result<bool, Self::Error>;

    /// Pushes out what was written so far (live mode calls this whenever the input stalls).
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Called once after the stream's last purchase (also after one that ended it early).
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A sink of the run's outputs, which fail with an I/O error naming the output.
pub type OutputSink = dyn Sink<Error = io::Error>;

/// Several sinks fed the same checks; the stream ends when any of them ends it.
impl<K: Kind, E: SinkError> Sink<K> for Vec<Box<dyn Sink<K, Error = E>>> {
    type Error = E;

    fn begin(&mut self) -> Result<bool, E> {
        let mut go_on = true;
        for sink in self.iter_mut() {
            go_on &= sink.begin()?;
        }
        Ok(go_on)
    }

    fn checked(&mut self, purchase: &K::Checked<'_>) -> Result<bool, E> {
        let mut go_on = true;
        for sink in self.iter_mut() {
            go_on &= sink.checked(purchase)?;
        }
        Ok(go_on)
    }

    fn flush(&mut self) -> Result<(), E> {
        self.iter_mut().try_for_each(|sink| sink.flush())
    }

    fn finish(&mut self) -> Result<(), E> {
        self.iter_mut().try_for_each(|sink| sink.finish())
    }
}

/// Writes the line of every flagged purchase with its `mean` and `sd` appended.
pub struct FlaggedLines<W: Write> {
    out: W,
    line: Vec<u8>,
    flagged: u64,
}

impl<W: Write> FlaggedLines<W> {
    pub fn new(out: W) -> Self {
        FlaggedLines {
            out,
            line: Vec::with_capacity(256),
            flagged: 0,
        }
    }

    pub fn flagged(&self) -> u64 {
        self.flagged
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The output line of a flagged purchase: its final `}` becomes `, "mean": "M", "sd": "S"}`.
pub fn flagged_line(out: &mut Vec<u8>, line: &[u8], baseline: &Baseline) {
    let body = line.strip_suffix(b"}").unwrap_or(line);
    out.extend_from_slice(body);
    out.extend_from_slice(b", \"mean\": \"");
    write_dollars(out, baseline.mean_cents());
    out.extend_from_slice(b"\", \"sd\": \"");
    write_dollars(out, baseline.sd_cents());
    out.extend_from_slice(b"\"}\n");
}

impl<W: Write> Sink for FlaggedLines<W> {
    type Error = io::Error;

    fn checked(&mut self, purchase: &Checked<'_>) -> io::Result<bool> {
        if !purchase.flagged {
            return Ok(true);
        }
        self.line.clear();
        flagged_line(&mut self.line, purchase.line, &purchase.baseline);
        self.flagged += 1;
        self.out.write_all(&self.line)?;
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flagged_line_replaces_the_final_brace() {
        let mut out = Vec::new();
        let line = br#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "2", "amount": "1601.83"}"#;
        flagged_line(&mut out, line, &Baseline::from_amounts([1683, 5928, 1120]));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"event_type\":\"purchase\", \"timestamp\":\"2017-06-13 11:33:02\", \"id\": \"2\", \"amount\": \"1601.83\", \"mean\": \"29.10\", \"sd\": \"21.46\"}\n"
        );
    }

    #[test]
    fn only_flagged_purchases_are_written() {
        let mut sink = FlaggedLines::new(Vec::new());
        let users = UserIds::new(Default::default());
        let mut checked = Checked {
            line: b"{\"a\":1}",
            line_no: 1,
            buyer: 0,
            cents: 5,
            timestamp: Timestamp::default(),
            baseline: Baseline::from_amounts([1, 1]),
            flagged: false,
            social: None,
            users: &users,
        };
        sink.checked(&checked).unwrap();
        checked.flagged = true;
        sink.checked(&checked).unwrap();
        assert_eq!(sink.flagged(), 1);
        assert_eq!(
            sink.into_inner(),
            b"{\"a\":1, \"mean\": \"0.01\", \"sd\": \"0.00\"}\n"
        );
    }
}
