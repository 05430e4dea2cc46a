//! The invariants the fuzz targets check. They live in `invariants.rs`, which the main crate's
//! `tests/fuzz_regressions.rs` includes too (with `tests/model` as `crate::model`), so that saved inputs replay through the same code.

#[path = "invariants.rs"]
pub mod invariants;

/// The main crate's naive reference model of the spec (`tests/model`), the oracle of
/// `whole_run`.
#[path = "../../tests/model/mod.rs"]
mod model;
