//! Stage 1, ingest: log files and pipes cut into lines and chunks, parsed into compact
//! events.

pub mod chunks;
pub mod event;
pub mod input;
pub mod parse;
pub mod position;
pub mod shrink;
