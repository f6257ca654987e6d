//! Jobs: what a request becomes. Their kinds and states, the status document the daemon
//! writes (`jobs/<id>/status`, the catalog's status column) and the CLI reads, and a job
//! while it is queued or running. The catalog stores kinds and states by the names here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::engine::CancelToken;

use super::job_progress::{JobProgress, ProgressStatus};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Snapshot,
    Restore,
    Verify,
    Forget,
    Prune,
    Repair,
    Check,
    Copy,
}

impl JobKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobKind::Snapshot => "snapshot",
            JobKind::Restore => "restore",
            JobKind::Verify => "verify",
            JobKind::Forget => "forget",
            JobKind::Prune => "prune",
            JobKind::Repair => "repair",
            JobKind::Check => "check",
            JobKind::Copy => "copy",
        }
    }

    /// Whether a job of this kind runs alone (it deletes data: prune, repair): it starts
    /// once nothing runs, and nothing queued after it starts before it is done.
    pub fn runs_alone(&self) -> bool {
        matches!(self, JobKind::Prune | JobKind::Repair)
    }

    /// The kind a catalog row or a status names.
    pub fn from_name(name: &str) -> Option<JobKind> {
        [
            JobKind::Snapshot,
            JobKind::Restore,
            JobKind::Verify,
            JobKind::Forget,
            JobKind::Prune,
            JobKind::Repair,
            JobKind::Check,
            JobKind::Copy,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    /// The state a catalog row names.
    pub fn from_name(name: &str) -> Option<JobState> {
        [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
            JobState::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    pub fn is_finished(&self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status document of a job (docs/CONTROL.md, "Jobs"). Times are RFC 3339 UTC with
/// milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    // Alphabetical: the order serde_json writes a map in, so the text is the same whether
    // it is written from this struct or from a parsed status.
    pub created: String,
    pub error: Option<String>,
    pub finished: Option<String>,
    pub id: u64,
    pub instance: Option<String>,
    pub kind: JobKind,
    /// A [`ProgressStatus`]; `{}` for a job cut off before its first status was stored
    /// (see [`JobStatus::progress`]).
    pub progress: Value,
    /// The job's stored request object.
    pub request: Value,
    pub result: Option<Value>,
    pub started: Option<String>,
    pub state: JobState,
}

impl JobStatus {
    /// A job created at `created_ns` that has not started: no progress, times, error or
    /// result yet.
    pub fn new(
        id: u64,
        kind: JobKind,
        instance: Option<String>,
        state: JobState,
        request: Value,
        created_ns: i64,
    ) -> JobStatus {
        JobStatus {
            created: rfc3339(created_ns),
            error: None,
            finished: None,
            id,
            instance,
            kind,
            progress: json!({}),
            request,
            result: None,
            started: None,
            state,
        }
    }

    /// The progress, read with defaults for what is missing.
    pub fn progress(&self) -> ProgressStatus {
        serde_json::from_value(self.progress.clone()).unwrap_or_default()
    }

    /// The status as one line of JSON, as the catalog stores it.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A queued or running job.
#[derive(Debug)]
pub struct LiveJob {
    pub id: u64,
    pub kind: JobKind,
    pub instance: Option<String>,
    pub request: Value,
    pub state: JobState,
    pub cancel: CancelToken,
    pub progress: Arc<JobProgress>,
    pub created_ns: i64,
    pub started_ns: Option<i64>,
    /// Who asked for it; `None` for a job the daemon started on its own.
    pub uid: Option<u32>,
}

impl LiveJob {
    /// Its status at `now_ns` (the ETA counts from its start), ended at `finished_ns`
    /// with `error` or `result` once it has.
    pub fn status(
        &self,
        now_ns: i64,
        finished_ns: Option<i64>,
        error: Option<String>,
        result: Option<Value>,
    ) -> JobStatus {
        let elapsed = self
            .started_ns
            .map(|s| (now_ns - s) as f64 / 1e9)
            .unwrap_or(0.0);
        JobStatus {
            progress: serde_json::to_value(self.progress.status(elapsed)).unwrap_or_default(),
            started: self.started_ns.map(rfc3339),
            finished: finished_ns.map(rfc3339),
            error,
            result,
            ..JobStatus::new(
                self.id,
                self.kind,
                self.instance.clone(),
                self.state,
                self.request.clone(),
                self.created_ns,
            )
        }
    }
}

pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_writes_the_fields_it_always_wrote() {
        let mut s = JobStatus::new(
            3,
            JobKind::Snapshot,
            Some("db".into()),
            JobState::Running,
            json!({"instance": "db", "label": null}),
            1_795_000_000_123_000_000,
        );
        s.progress = serde_json::to_value(ProgressStatus {
            phase: Some("backing up".into()),
            files: 1,
            ..ProgressStatus::default()
        })
        .unwrap();
        assert_eq!(
            s.to_line(),
            r#"{"created":"2026-11-18T11:06:40.123Z","error":null,"finished":null,"id":3,"instance":"db","kind":"snapshot","progress":{"bytes":0,"eta_seconds":null,"files":1,"percent":null,"phase":"backing up","total_bytes":null,"total_files":null},"request":{"instance":"db","label":null},"result":null,"started":null,"state":"running"}"#
        );
        let back: JobStatus = serde_json::from_str(&s.to_line()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.progress().phase.as_deref(), Some("backing up"));
        for k in [
            "snapshot", "restore", "verify", "forget", "prune", "repair", "check",
        ] {
            assert_eq!(JobKind::from_name(k).map(|k| k.as_str()), Some(k));
        }
        assert_eq!(JobState::from_name("cancelled"), Some(JobState::Cancelled));
    }
}
