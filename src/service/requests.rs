//! The typed requests: what a control line becomes once parsed (and what a job's request
//! JSON holds), the `schedule` part of a scheduled snapshot, and the [`Subject`] an
//! accepted request's event names. Plain data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::RestoreMode;
use crate::model::instance::{CommandSource, Hooks, LogSources};

/// `ctl/instance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum InstanceRequest {
    Add {
        name: String,
        paths: Vec<PathBuf>,
        excludes: Vec<String>,
        /// `before=`, `after=`, `restore-before=`, `restore-after=`, `hook-timeout=`.
        #[serde(default, skip_serializing_if = "Hooks::is_empty")]
        hooks: Hooks,
        /// `command=CMD as=NAME` pairs, in the order given.
        commands: Vec<CommandSource>,
        /// `log=GLOB`.., `log-every=`, `log-pushers=`.
        #[serde(default, skip_serializing_if = "LogSources::is_empty")]
        logs: Box<LogSources>,
    },
    Remove {
        name: String,
    },
}

/// `ctl/snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    pub instance: String,
    pub label: Option<String>,
    /// Set when a policy takes the point (never by a request written into ctl/snapshot):
    /// the job takes a scheduled (`-auto`) point, and a failure is kept as a failed
    /// scheduled job. Stored as the `"schedule"` object of the job's request JSON, absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduledRun>,
    /// `stdin=NAME`: the point also holds the stream written into `jobs/<id>/input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

/// `ctl/restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreControl {
    pub instance: String,
    /// The point; empty with `at_ns`.
    #[serde(default)]
    pub point: String,
    /// `at=TIME`: the start (ns) of the second to restore the instance to, from its
    /// newest point at or before it and its logs (`point` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ns: Option<i64>,
    pub target: Option<PathBuf>,
    pub includes: Vec<String>,
    pub in_place: bool,
    /// `delete-excluded=true`: an in-place restore also deletes what the backup excluded.
    #[serde(default)]
    pub delete_excluded: bool,
    /// `skip-damaged=true`: restore every intact file, skip (and name) damaged ones.
    #[serde(default)]
    pub skip_damaged: bool,
}

impl RestoreControl {
    pub fn mode(&self) -> RestoreMode {
        if self.in_place {
            RestoreMode::InPlace
        } else {
            RestoreMode::New
        }
    }
}

/// `ctl/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyControl {
    pub instance: Option<String>,
    pub point: Option<String>,
    pub read_data: bool,
}

/// `ctl/copy`: the mounted repository's points into the repository `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyControl {
    /// The target repository's location, as `cairn copy --to` takes it.
    pub to: String,
    pub instance: Option<String>,
    pub points: Vec<String>,
    /// A file holding the target's password (read by the daemon), for an encrypted target.
    pub to_password_file: Option<PathBuf>,
    pub verify: bool,
    pub read_data: bool,
}

/// `ctl/forget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetControl {
    pub instance: String,
    pub points: Vec<String>,
    /// Manual points are forgotten only with `manual=true`.
    pub manual: bool,
}

/// `ctl/prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneControl {
    pub dry_run: bool,
    /// Hours between condemning data and deleting it (default 24).
    pub grace_hours: Option<u32>,
    /// Take over a live prune lease of another host (docs/FORMAT.md 12.4).
    #[serde(default)]
    pub break_lease: bool,
}

/// `ctl/repair`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairControl {
    pub dry_run: bool,
}

/// Why a scheduled snapshot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Slot,
    Retry,
    CatchUp,
    RunNow,
}

/// The `schedule` part of a scheduled snapshot's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRun {
    pub policy: String,
    /// The slot, RFC 3339 UTC (for people), and in ns.
    pub slot: String,
    pub slot_ns: i64,
    /// The time the point carries (the slot, or the run's start for catch-up and run-now).
    pub time_ns: i64,
    pub trigger: Trigger,
}

/// What an accepted request is about, for its event: the instance, the point as the
/// request named it, the job it started or cancelled, and its verb.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub verb: Option<&'static str>,
    pub instance: Option<String>,
    pub point: Option<String>,
    pub job: Option<u64>,
}

impl Subject {
    /// About `instance` and `point` (as the request named them).
    pub fn of(instance: Option<&str>, point: Option<&str>) -> Subject {
        Subject {
            instance: instance.map(str::to_string),
            point: point.map(str::to_string),
            ..Subject::default()
        }
    }
}

impl InstanceRequest {
    /// The verb that asked for it.
    pub fn verb(&self) -> &'static str {
        match self {
            InstanceRequest::Add { .. } => "add",
            InstanceRequest::Remove { .. } => "remove",
        }
    }

    /// The instance it is about.
    pub fn name(&self) -> &str {
        match self {
            InstanceRequest::Add { name, .. } | InstanceRequest::Remove { name } => name,
        }
    }
}

/// `ctl/check`: a point against the live data, or (`other=`) against another point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckControl {
    pub instance: String,
    /// A point name or `latest` (the default).
    pub point: String,
    /// `other=POINT`: compare `point` with this point instead of the live data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    /// `against=/abs`: the directory compared (default: the point's source paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<PathBuf>,
    /// `threads=1..16` (default: one per core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// `ignore=GLOB`, repeatable.
    #[serde(default)]
    pub ignores: Vec<String>,
    /// `checksum=false`: size and mtime only.
    pub checksum: bool,
    /// `bandwidth=MB`: MB/s read from the live side at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
}
