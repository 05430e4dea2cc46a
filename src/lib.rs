//! anomaly-detect replays a shop's social-network event logs (purchases, befriend, unfriend) and
//! flags purchases far above what the buyer's network has spent lately: more than 3 standard
//! deviations above the mean of the latest `T` purchases of the users within `D` hops.
//!
//! The library is a [`Detector`]: build it from a batch log or from [`Params`], then hand it
//! stream lines one at a time ([`Detector::apply`], which returns the [`Decision`]) or a whole
//! stream log ([`Detector::replay_stream`], which hands every [`Checked`] purchase to a
//! [`Sink`]). Its state can be saved and restored ([`Detector::save`], [`Detector::restore`]).
//! Decisions are exact (integer cents) and the same at every thread count.
//!
//! ```
//! use anomaly_detect::{Applied, Detector, Params};
//!
//! let mut detector = Detector::new(Params { degree: 2, tracked: 50 })?;
//! let line = br#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "16.83"}"#;
//! let Applied::Purchase(decision) = detector.apply(line)? else { unreachable!() };
//! assert!(!decision.is_flagged()); // a network with no purchases flags nothing
//! # Ok::<(), anomaly_detect::Fatal>(())
//! ```
//!
//! The `anomaly-detect` command is [`command::main`]; `src/main.rs` only picks the allocator.
//!
//! Inside, a folder per stage, in the order data flows through them; a stage imports only the
//! stages before it and the shared leaves (`error`, `clock`, `stderr`, `config`), and each file
//! holds one job: `ingest` (logs to numbered, parsed chunks: `ingest::chunks` is the one chunk
//! source over mapped files, pipes, live streams and lines in memory), `state` (what events
//! change, and applying them: `state::apply`), `query` (a buyer's network and baseline),
//! `output` (the one [`Sink`] trait and the files results go to), `check` (the stream window,
//! whose checks run in parallel and go to one `check::window::Checks`; the single check with the
//! run's `D` and `T`). On top: `live` keeps a live run's checkpoints (`--state`), `replay` wires
//! the phases over a chunk source and a state, `detector` is the library's front door, `sweep`
//! runs the `sweep` subcommand with its grid of checks, `cli`, `signals` and `command` serve the
//! command. The allocator is the program's: the library calls only the `release_memory` hook it
//! is given. These modules are public only for the project's own tests, benchmarks and tools,
//! hidden from the documentation, with no promise of stability: the API is what this page lists.

#![warn(missing_docs)]

#[doc(hidden)]
pub mod ingest;
#[doc(hidden)]
pub mod output;
#[doc(hidden)]
pub mod query;
#[doc(hidden)]
pub mod state;

#[doc(hidden)]
pub mod check;
#[doc(hidden)]
pub mod live;
#[doc(hidden)]
pub mod replay;

#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod clock;
pub mod command;
#[doc(hidden)]
pub mod config;
mod detector;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod signals;
#[doc(hidden)]
pub mod stderr;
#[doc(hidden)]
pub mod sweep;

pub use detector::{Applied, Builder, Decision, Detector};
pub use error::{Fatal, SkipReason, SnapshotError};
pub use ingest::parse::Params;
pub use output::sink::{Checked, Kind, Single, Sink, SinkError};
pub use query::baseline::Baseline;
