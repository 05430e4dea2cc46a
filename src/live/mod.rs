//! Live mode that survives restarts (`--state DIR`): the state directory, its lock and its
//! checkpoints. Built on the stages below it: stream positions (`ingest::position`) and
//! resumed outputs (`output::resume`).

pub mod checkpoint;
pub mod run;
