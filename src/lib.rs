//! anomaly-detect: replays a shop's social-network event logs and flags purchases far above
//! what the buyer's network has spent lately.
//!
//! The stages, in the order data flows through them; a stage imports only the stages before it
//! and the shared leaves (`error`, `clock`, `stderr`, [`config`]), and each file holds one job:
//! [`ingest`] (logs to numbered, parsed chunks: `ingest::chunks` is the one chunk source over
//! mapped files, pipes and live streams), [`state`] (what events change, and applying them:
//! `state::apply`), [`query`] (a buyer's network and baseline), [`output`] (the one
//! `output::sink::Sink` trait and the files results go to), [`check`] (the stream window, whose
//! checks run in parallel and go to one `check::window::Checks`; the single check with the
//! run's `D` and `T`). On top: [`live`] keeps a live run's checkpoints (`--state`), [`mod@replay`] wires the phases (`Replay::batch`, `Replay::stream`)
//! over a chunk source and a `State`, [`sweep`] runs the `sweep` subcommand with its grid of
//! checks (`sweep::grid`), [`cli`] and [`signals`] serve the command. The allocator is the
//! program's: the library calls only [`Config::release_memory`].

pub mod ingest;
pub mod output;
pub mod query;
pub mod state;

pub mod check;
pub mod live;
pub mod replay;

pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod error;
pub mod signals;
pub mod stderr;
pub mod sweep;

pub use config::Config;
pub use error::{Fatal, SkipReason};
pub use ingest::input::LogFile;
pub use output::sink::{Checked, FlaggedLines, Sink};
pub use query::baseline::Baseline;
pub use replay::replay;
