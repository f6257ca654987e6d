//! What a point-in-time view is made of: the base point, and every log file as it stood
//! at the second asked for (cut by its kind's rule), plus the files that make the view
//! replay to that second by itself (PostgreSQL's recovery settings, MariaDB's
//! `replay.sh`). A restore writes a plan into a target; the mount shows one as `@TIME/`.

use std::path::PathBuf;

use crate::catalog::PointRecord;

use super::timeline::FileVersion;

/// One log file of a view: a version's first `cut` bytes, at `path` in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLog {
    /// Relative to the view's root (the base point's root), e.g. `appendonlydir/x.aof`.
    pub path: PathBuf,
    pub version: FileVersion,
    /// Bytes of the version the view holds (at most `version.size`).
    pub cut: u64,
}

/// A file the view adds (not from the point nor the logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedExtra {
    /// Relative to the view's root.
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// The state of an instance at one second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PitrPlan {
    pub instance: String,
    /// The second asked for (ns at its start): writes before `at_ns + 1 s` are in.
    pub at_ns: i64,
    /// The newest point taken before `at_ns + 1 s`.
    pub base: PointRecord,
    /// The log files, in path order; each replaces the point's file at its path.
    pub logs: Vec<PlannedLog>,
    pub extras: Vec<PlannedExtra>,
}
