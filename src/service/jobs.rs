//! Jobs: what a request becomes. Live progress is kept in memory and written to the
//! catalog on every state change (and every few seconds while running), so `jobs/` shows
//! history across restarts and a job cut off by a crash shows `interrupted`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::engine::{CancelToken, Progress};
use crate::sync::LockExt;

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

    pub fn is_finished(&self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// Counters the engine updates through [`Progress`].
#[derive(Debug, Default)]
pub struct JobProgress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub total_files: AtomicU64,
    pub total_bytes: AtomicU64,
    pub phase: Mutex<String>,
    pub log: Mutex<Vec<String>>,
}

impl JobProgress {
    pub fn log_line(&self, line: String) {
        let mut log = self.log.locked();
        if log.len() < 10_000 {
            log.push(line);
        }
    }

    pub fn log_text(&self) -> String {
        let log = self.log.locked();
        let mut s = log.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// The `progress` object of a status document.
    pub fn to_json(&self, elapsed_s: f64) -> Value {
        let files = self.files.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let total_files = self.total_files.load(Ordering::Relaxed);
        let total_bytes = self.total_bytes.load(Ordering::Relaxed);
        let percent = if total_bytes > 0 {
            Some((bytes as f64 * 100.0 / total_bytes as f64).min(100.0))
        } else if total_files > 0 {
            Some((files as f64 * 100.0 / total_files as f64).min(100.0))
        } else {
            None
        };
        let eta = percent
            .filter(|p| *p > 0.5 && elapsed_s > 0.0)
            .map(|p| (elapsed_s * (100.0 - p) / p).round());
        json!({
            "phase": self.phase.lock().map(|p| p.clone()).unwrap_or_default(),
            "files": files,
            "bytes": bytes,
            "total_files": (total_files > 0).then_some(total_files),
            "total_bytes": (total_bytes > 0).then_some(total_bytes),
            "percent": percent.map(|p| (p * 10.0).round() / 10.0),
            "eta_seconds": eta,
        })
    }
}

impl Progress for JobProgress {
    fn set_total(&self, files: u64, bytes: u64) {
        self.total_files.store(files, Ordering::Relaxed);
        self.total_bytes.store(bytes, Ordering::Relaxed);
    }

    fn file_done(&self, _path: &Path, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn warn(&self, message: &str) {
        self.log_line(format!("warning: {message}"));
    }

    fn phase(&self, name: &str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = name.to_string();
        }
        self.log_line(format!("phase: {name}"));
    }
}

/// A queued or running job.
#[derive(Debug)]
pub struct LiveJob {
    pub id: u64,
    pub kind: &'static str,
    pub instance: Option<String>,
    pub request: Value,
    pub state: JobState,
    pub cancel: CancelToken,
    pub progress: std::sync::Arc<JobProgress>,
    pub created_ns: i64,
    pub started_ns: Option<i64>,
    /// Who asked for it; `None` for a job the daemon started on its own.
    pub uid: Option<u32>,
}

pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The status document of a job.
#[allow(clippy::too_many_arguments)]
pub fn status_json(
    id: u64,
    kind: &str,
    instance: Option<&str>,
    state: JobState,
    request: &Value,
    progress: Value,
    created_ns: i64,
    started_ns: Option<i64>,
    finished_ns: Option<i64>,
    error: Option<&str>,
    result: Option<Value>,
) -> Value {
    json!({
        "id": id,
        "kind": kind,
        "instance": instance,
        "state": state.as_str(),
        "request": request,
        "progress": progress,
        "created": rfc3339(created_ns),
        "started": started_ns.map(rfc3339),
        "finished": finished_ns.map(rfc3339),
        "error": error,
        "result": result,
    })
}
