//! Stage 3, query: a buyer's network walked to degree `D`, and the latest `T` purchases of
//! its members as a baseline; and for a sweep, the distance of two users.

pub mod baseline;
pub mod distance;
pub mod network;
