//! The integration suite: one test binary, one module per area.

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod cli;
mod cli_mount;
mod events;
mod format_golden;
mod mount;
mod namespace;
mod restore;
mod store_conformance;
mod verify;
