//! The integration suite: one test binary, one module per area.

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod cli;
mod format_golden;
mod restore;
mod store_conformance;
mod verify;
