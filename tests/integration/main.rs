//! The integration suite: one test binary, one module per area.

#[path = "../support/mod.rs"]
mod support;

mod backup;
