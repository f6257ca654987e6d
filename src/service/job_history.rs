//! The job history: every job's row in the catalog (kind, state, request, status, log),
//! so `jobs/` shows jobs across daemon restarts. A job a stopped daemon left queued or
//! running shows `interrupted`; a finished job can be deleted by hand; a retention rule
//! keeps the history bounded (`Catalog::expire_job_history`). Rows the catalog cannot
//! store (a full disk) are kept in memory until it can ([`Unsaved`]).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::catalog::{Catalog, CatalogError};

use super::clock::Clock;
use super::events::{Event, EventLog, JobEnd};
use super::grammar::ControlError;
use super::jobs::{rfc3339, JobKind, JobState, JobStatus};
use super::requests::RestoreControl;
use super::unsaved::{Unsaved, UnsavedJob};

/// What a job that a previous daemon left unfinished says.
pub const INTERRUPTED: &str = "the daemon stopped before this job finished; run it again";

/// The service's store of jobs.
pub struct JobHistory {
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    unsaved: Unsaved,
}

impl JobHistory {
    pub fn new(catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> JobHistory {
        JobHistory {
            catalog,
            clock,
            unsaved: Unsaved::default(),
        }
    }

    /// Adds a job's row; returns its id.
    pub fn insert(
        &self,
        kind: JobKind,
        instance: Option<&str>,
        state: JobState,
        request: &Value,
        created_ns: i64,
        uid: Option<u32>,
    ) -> Result<u64, CatalogError> {
        self.catalog.insert_job(
            kind.as_str(),
            instance,
            state.as_str(),
            &request.to_string(),
            created_ns,
            uid,
        )
    }

    /// Stores a job's state, status and log; what the catalog refuses is kept in memory
    /// and shown as if stored.
    pub fn save(&self, status: &JobStatus, log: String) {
        let line = status.to_line();
        self.unsaved.flush(&self.catalog);
        match self
            .catalog
            .update_job(status.id, status.state.as_str(), &line, &log)
        {
            Ok(()) => self.unsaved.stored(status.id),
            Err(e) => {
                tracing::error!(job = status.id, "cannot store job status: {e}");
                let state = status.state.as_str().to_string();
                self.unsaved.keep(
                    status.id,
                    UnsavedJob {
                        state,
                        status: line,
                        log,
                    },
                );
            }
        }
    }

    /// Stores a job's row now, or fails.
    pub fn store(&self, status: &JobStatus, log: &str) -> Result<(), CatalogError> {
        self.catalog
            .update_job(status.id, status.state.as_str(), &status.to_line(), log)
    }

    /// Stores what the catalog takes again.
    pub fn flush(&self) {
        self.unsaved.flush(&self.catalog);
    }

    /// Job ids, oldest first (only the ids are read).
    pub fn ids(&self) -> Vec<u64> {
        self.catalog.job_ids().unwrap_or_default()
    }

    /// The stored status of a job (as stored: a status of an older daemon reads as it
    /// was written). Reads that job's status only.
    pub fn status(&self, id: u64) -> Option<Value> {
        match self.unsaved.status(id) {
            Some(status) => serde_json::from_str(&status).ok(),
            None => serde_json::from_str(&self.catalog.job_status(id).ok()??).ok(),
        }
    }

    pub fn log(&self, id: u64) -> Option<String> {
        if let Some(log) = self.unsaved.log(id) {
            return Some(log);
        }
        self.catalog.job_log(id).ok()?
    }

    /// The byte length of [`log`](Self::log), without reading the log.
    pub fn log_len(&self, id: u64) -> Option<u64> {
        if let Some(log) = self.unsaved.log(id) {
            return Some(log.len() as u64);
        }
        self.catalog.job_log_len(id).ok()?
    }

    /// Marks the jobs a previous daemon left queued or running as interrupted (each one an
    /// event), then applies the retention rule.
    pub fn recover(&self, events: &EventLog) -> Result<(), CatalogError> {
        for row in self.catalog.jobs()? {
            if !matches!(
                JobState::from_name(&row.state),
                Some(JobState::Queued | JobState::Running)
            ) {
                continue;
            }
            let kind = JobKind::from_name(&row.kind);
            let request: Value = serde_json::from_str(&row.request).unwrap_or(Value::Null);
            let mut status: Value = serde_json::from_str(&row.status).unwrap_or_else(|_| json!({}));
            if status.get("id").is_none() {
                // Cut off before its first status was stored: build one from the row.
                status = match kind {
                    Some(kind) => serde_json::to_value(JobStatus::new(
                        row.id,
                        kind,
                        row.instance.clone(),
                        JobState::Interrupted,
                        request.clone(),
                        row.created_ns,
                    ))
                    .unwrap_or_default(),
                    None => json!({ "id": row.id, "kind": row.kind, "instance": row.instance }),
                };
            }
            status["state"] = json!("interrupted");
            status["error"] = json!(INTERRUPTED);
            status["finished"] = json!(rfc3339(self.clock.now_ns()));
            let mut log = row.log.clone();
            if kind == Some(JobKind::Restore) {
                for line in self.remove_stages_of(&request) {
                    tracing::warn!(job = row.id, "{line}");
                    if !log.is_empty() && !log.ends_with('\n') {
                        log.push('\n');
                    }
                    log.push_str(&format!("warning: {line}\n"));
                }
            }
            self.catalog
                .update_job(row.id, "interrupted", &status.to_string(), &log)?;
            let Some(kind) = kind else {
                // A kind this daemon does not know (a newer one wrote it): marked
                // interrupted like any other, but there is no event kind to record.
                tracing::warn!(job = row.id, "unknown job kind `{}`", row.kind);
                continue;
            };
            events.job_end(JobEnd {
                id: row.id,
                kind,
                instance: row.instance.as_deref(),
                uid: row.uid,
                request,
                state: JobState::Interrupted,
                error: Some(INTERRUPTED),
                result: None,
            });
        }
        self.expire();
        Ok(())
    }

    /// Removes the stages an interrupted restore left (its process is gone); returns the
    /// lines for its log.
    fn remove_stages_of(&self, request: &Value) -> Vec<String> {
        let Ok(req) = serde_json::from_value::<RestoreControl>(request.clone()) else {
            return Vec::new();
        };
        let dirs = crate::engine::stage_dirs(
            &self.catalog,
            &req.instance,
            &req.point,
            req.target.as_deref(),
        );
        dirs.iter()
            .flat_map(|dir| crate::engine::remove_stale_stages(dir))
            .collect()
    }

    /// Applies the retention rule of the job history; failures are logged.
    pub fn expire(&self) {
        match self.catalog.expire_job_history(self.clock.now_ns()) {
            Ok(0) => {}
            Ok(n) => tracing::info!("job history: {n} old finished jobs forgotten"),
            Err(e) => tracing::warn!("cannot apply the job history's retention: {e}"),
        }
    }

    /// Applies the failed-scheduled-job rule to an instance (the newest ones, none older
    /// than the limit).
    pub fn trim_failed(&self, instance: &str) {
        if let Err(e) = self
            .catalog
            .expire_failed_scheduled_jobs(instance, self.clock.now_ns())
        {
            tracing::warn!(%instance, "cannot trim failed jobs: {e}");
        }
    }

    /// Deletes a finished job that is not live in this daemon, as `uid`, and calls
    /// `deleted` before its event is recorded; `how` is the request as the event records
    /// it. Refused with `EBUSY` for a job its row says is queued or running, `ENOENT` for
    /// an unknown one.
    pub fn delete(
        &self,
        id: u64,
        uid: u32,
        how: &str,
        events: &EventLog,
        deleted: impl FnOnce(),
    ) -> Result<(), ControlError> {
        let io = |e: CatalogError| ControlError {
            errno: libc::EIO,
            message: format!("catalog: {e}"),
        };
        let row = self
            .catalog
            .job(id)
            .map_err(io)?
            .ok_or_else(|| ControlError::not_found(format!("no job {id}")))?;
        if matches!(
            JobState::from_name(&row.state),
            Some(JobState::Queued | JobState::Running)
        ) {
            return Err(ControlError {
                errno: libc::EBUSY,
                message: format!("job {id} is {}: cancel it first", row.state),
            });
        }
        self.catalog.delete_job(id).map_err(io)?;
        deleted();
        let mut event = Event::new("job-deleted")
            .uid(Some(uid))
            .job(id)
            .request(how)
            .outcome(json!({"ok": true, "job_kind": row.kind, "state": row.state}));
        event.instance = row.instance;
        events.record(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ManualClock;

    #[test]
    fn a_left_running_job_of_an_unknown_kind_is_still_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.db")).unwrap());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_000_000_000));
        let known = catalog
            .insert_job("verify", None, "running", "{}", 1, None)
            .unwrap();
        let unknown = catalog
            .insert_job("from-a-newer-daemon", Some("db"), "queued", "{}", 1, None)
            .unwrap();
        let history = JobHistory::new(catalog.clone(), clock.clone());
        history
            .recover(&EventLog::new(catalog.clone(), clock))
            .unwrap();
        for id in [known, unknown] {
            let row = catalog.job(id).unwrap().unwrap();
            assert_eq!(row.state, "interrupted", "job {id}");
            let status: Value = serde_json::from_str(&row.status).unwrap();
            assert_eq!(status["state"], "interrupted");
            assert_eq!(status["id"], id);
        }
    }
}
