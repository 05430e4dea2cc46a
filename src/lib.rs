//! anomaly-detect: replays a shop's social-network event logs and flags purchases far above
//! what the buyer's network has spent lately. Modules in the order data flows through them.

pub mod input;
pub mod parse;
pub mod event;
pub mod users;
pub mod graph;
pub mod history;
pub mod network;
pub mod window;
pub mod baseline;
pub mod pipeline;
pub mod sink;
pub mod report;
pub mod error;
pub mod cli;

pub use baseline::Baseline;
pub use error::{Fatal, SkipReason};
pub use input::LogFile;
pub use pipeline::{Config, replay};
pub use sink::{Checked, FlaggedLines, Sink};
