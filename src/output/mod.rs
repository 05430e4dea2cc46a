//! Stage 4, output: where checked purchases go (sinks), the output files, skipped-line
//! reports, the run's summary and the progress bar.

pub mod file;
pub mod outputs;
pub mod progress;
pub mod report;
pub mod resume;
pub mod sink;
pub mod social;
pub mod tail;
