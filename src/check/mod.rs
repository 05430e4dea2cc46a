//! Stage 5, check: the stream window, whose purchases are checked in parallel against the
//! friendships each one sees, and the single check with the run's `D` and `T` whose outcomes
//! go to the output sinks. The sweep's grid (`src/sweep/grid.rs`) is the other kind of check.

pub mod single;
pub mod window;
