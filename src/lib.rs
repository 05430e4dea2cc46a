//! anomaly-detect: replays a shop's social-network event logs and flags purchases far above
//! what the buyer's network has spent lately.
//!
//! The stages, in the order data flows through them; a stage imports only the stages before it
//! and the shared leaves (`error`, `clock`, `stderr`):
//! [`ingest`] (logs to events), [`state`] (what events change), [`query`] (a buyer's network
//! and baseline), [`output`] (where results go). On top: [`live`] keeps a live run's
//! checkpoints (`--state`), [`pipeline`] runs the replay,
//! [`cli`] and [`signals`] serve the command, [`sweep`] its `sweep` subcommand.

pub mod ingest;
pub mod output;
pub mod query;
pub mod state;

pub mod live;
pub mod pipeline;

pub mod cli;
pub mod clock;
pub mod error;
pub mod signals;
pub mod stderr;
pub mod sweep;

pub use error::{Fatal, SkipReason};
pub use ingest::input::LogFile;
pub use output::sink::{Checked, FlaggedLines, Sink};
pub use pipeline::{Config, replay};
pub use query::baseline::Baseline;
