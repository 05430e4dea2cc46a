//! anomaly-detect: replays a shop's social-network event logs and flags purchases far above
//! what the buyer's network has spent lately. Modules in the order data flows through them.

pub mod baseline;
pub mod cli;
pub mod clock;
pub mod error;
pub mod event;
pub mod graph;
pub mod history;
pub mod input;
pub mod network;
pub mod outputs;
pub mod parse;
pub mod pipeline;
pub mod progress;
pub mod recent;
pub mod report;
pub mod signals;
pub mod sink;
pub mod social;
pub mod users;
pub mod window;

pub use baseline::Baseline;
pub use error::{Fatal, SkipReason};
pub use input::LogFile;
pub use pipeline::{Config, replay};
pub use sink::{Checked, FlaggedLines, Sink};
