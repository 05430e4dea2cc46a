//! Stage 3, query: a buyer's network walked to degree `D`, and the latest `T` purchases of
//! its members as a baseline.

pub mod baseline;
pub mod network;
