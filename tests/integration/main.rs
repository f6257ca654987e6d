//! The integration suite: one test binary, one module per area.

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod cli;
mod cli_mount;
mod cli_prune;
mod forget;
mod format_golden;
mod mount;
mod namespace;
mod prune;
mod prune_mount;
mod restore;
mod store_conformance;
mod verify;
