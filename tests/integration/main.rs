//! The integration suite: one test binary, one module per area.

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod cli;
pub(crate) mod cli_mount;
mod cli_policy;
mod cli_prune;
mod crash_loop;
mod disk_full;
mod events;
mod forget;
mod format_golden;
mod mount;
mod namespace;
mod policy;
mod policy_schedule;
mod prune;
mod prune_lease;
mod prune_mount;
mod restore;
mod restore_stages;
mod s3_faults;
mod store_conformance;
mod store_retry;
mod verify;
