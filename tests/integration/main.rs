//! The integration suite: one test binary, one module per area.

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod cli;
mod cli_completions;
mod cli_locations;
pub(crate) mod cli_mount;
mod cli_output;
mod cli_policy;
mod cli_prune;
mod cloud_backends;
mod crash_loop;
mod damage_heal;
mod disk_full;
mod events;
mod forget;
mod forget_interrupted;
mod format_golden;
mod gcs_emulator;
mod hostile_repo;
mod instance_checks;
mod mount;
mod mount_users;
pub(crate) mod mount_writes;
mod namespace;
mod point_names;
mod point_root;
mod policy;
mod policy_schedule;
mod prune;
mod prune_lease;
mod prune_mount;
mod repo_keys;
mod restore;
mod restore_excludes;
mod restore_skip_damaged;
mod restore_stages;
mod s3_faults;
mod safety_points;
mod store_conformance;
mod store_retry;
mod streams;
mod verify;
