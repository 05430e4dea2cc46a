//! Stage 2, state: what events change, over interned dense user ids: friendships, purchase
//! histories, the recent purchases of the whole log, and the versioned friendships of a stream
//! window; and snapshots of it all.

pub mod apply;
pub mod graph;
pub mod history;
pub mod prefetch;
pub mod recent;
pub mod snapshot;
pub mod users;
pub mod window;
