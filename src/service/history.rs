//! The job history: jobs live in the catalog, so `jobs/` shows them across daemon
//! restarts (a job a stopped daemon left queued or running shows `interrupted`); a
//! finished job can be deleted by hand; a retention rule keeps the history bounded
//! (`Catalog::expire_job_history`). Every job's end is an event.

use serde_json::{json, Value};

use super::events::{job_end_kind, Event};
use super::jobs::{self, JobState};
use super::{now_ns, requests, ControlError, Service, ServiceError};

/// What a job that a previous daemon left unfinished says.
pub const INTERRUPTED: &str = "the daemon stopped before this job finished; run it again";

/// How a job ended, for its event.
pub(super) struct JobEnd<'a> {
    pub id: u64,
    pub kind: &'a str,
    pub instance: Option<&'a str>,
    pub uid: Option<u32>,
    pub request: Value,
    pub state: JobState,
    pub error: Option<&'a str>,
    pub result: Option<Value>,
}

impl Service {
    /// Marks the jobs a previous daemon left queued or running as interrupted (each one an
    /// event), then applies the retention rule.
    pub(super) fn recover_history(&self) -> Result<(), ServiceError> {
        let catalog = &self.inner.catalog;
        for row in catalog.jobs()? {
            if row.state != "queued" && row.state != "running" {
                continue;
            }
            let request: Value = serde_json::from_str(&row.request).unwrap_or(Value::Null);
            let mut status: Value = serde_json::from_str(&row.status).unwrap_or_else(|_| json!({}));
            if status.get("id").is_none() {
                // Cut off before its first status was stored: build one from the row.
                status = jobs::status_json(
                    row.id,
                    &row.kind,
                    row.instance.as_deref(),
                    JobState::Interrupted,
                    &request,
                    json!({}),
                    row.created_ns,
                    None,
                    None,
                    None,
                    None,
                );
            }
            status["state"] = json!("interrupted");
            status["error"] = json!(INTERRUPTED);
            status["finished"] = json!(jobs::rfc3339(now_ns()));
            let mut log = row.log.clone();
            if row.kind == "restore" {
                for line in self.remove_stages_of(&request) {
                    tracing::warn!(job = row.id, "{line}");
                    if !log.is_empty() && !log.ends_with('\n') {
                        log.push('\n');
                    }
                    log.push_str(&format!("warning: {line}\n"));
                }
            }
            catalog.update_job(row.id, "interrupted", &status.to_string(), &log)?;
            self.record_job_end(JobEnd {
                id: row.id,
                kind: &row.kind,
                instance: row.instance.as_deref(),
                uid: row.uid,
                request,
                state: JobState::Interrupted,
                error: Some(INTERRUPTED),
                result: None,
            });
        }
        self.expire_history();
        Ok(())
    }

    /// Removes the stages an interrupted restore left (its process is gone); returns the
    /// lines for its log.
    fn remove_stages_of(&self, request: &Value) -> Vec<String> {
        let Ok(req) = serde_json::from_value::<requests::RestoreControl>(request.clone()) else {
            return Vec::new();
        };
        let dirs = crate::engine::stage_dirs(
            &self.inner.catalog,
            &req.instance,
            &req.point,
            req.target.as_deref(),
        );
        dirs.iter()
            .flat_map(|dir| crate::engine::remove_stale_stages(dir))
            .collect()
    }

    /// Records the event of a job's end: `point-created` / `point-restored` /
    /// `prune-completed` for a snapshot / restore / prune that succeeded, else
    /// `job-<state>`; after it, a `point-deleted` for every point the job forgot (a
    /// forget job, or the retention that follows a scheduled snapshot).
    pub(super) fn record_job_end(&self, end: JobEnd<'_>) {
        let _order = self.event_order();
        let mut event = Event::new(job_end_kind(end.kind, end.state))
            .uid(end.uid)
            .job(end.id)
            .outcome(json!({
                "ok": end.state == JobState::Succeeded,
                "job_kind": end.kind,
                "state": end.state.as_str(),
                "error": end.error,
                "result": end.result,
            }));
        event.point = end
            .result
            .as_ref()
            .and_then(|r| r["point"].as_str())
            .or_else(|| end.request["point"].as_str())
            .map(str::to_string);
        event.instance = end.instance.map(str::to_string);
        // The points a forget job, or a snapshot's retention, forgot: one event each.
        let (deleted, by) = match end.kind {
            "forget" => ("removed", "forget"),
            _ => ("expired", "retention"),
        };
        let deleted: Vec<String> = end
            .result
            .as_ref()
            .and_then(|r| r[deleted].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let event = event.request(end.request);
        let (instance, request) = (event.instance.clone(), event.request.clone());
        self.record_event(event);
        for point in deleted {
            let mut gone = Event::new("point-deleted")
                .uid(end.uid)
                .job(end.id)
                .point(point)
                .request(request.clone())
                .outcome(json!({"ok": true, "by": by}));
            gone.instance = instance.clone();
            self.record_event(gone);
        }
    }

    /// Applies the retention rule of the job history; failures are logged.
    pub(super) fn expire_history(&self) {
        match self.inner.catalog.expire_job_history(self.now_ns()) {
            Ok(0) => {}
            Ok(n) => tracing::info!("job history: {n} old finished jobs forgotten"),
            Err(e) => tracing::warn!("cannot apply the job history's retention: {e}"),
        }
    }

    /// Deletes a finished job from the history (`rm -r jobs/<id>`, `cairn jobs delete`),
    /// as `uid`; `how` is the request as the event records it. Refused with `EBUSY` for a
    /// queued or running job, `ENOENT` for an unknown one.
    pub fn delete_job(&self, id: u64, uid: u32, how: &str) -> Result<(), ControlError> {
        if let Some(job) = self.lock().live.get(&id) {
            return Err(ControlError {
                errno: libc::EBUSY,
                message: format!(
                    "job {id} is {}: cancel it first (`job={id}` into ctl/cancel)",
                    job.state.as_str()
                ),
            });
        }
        let io = |e: crate::catalog::CatalogError| ControlError {
            errno: libc::EIO,
            message: format!("catalog: {e}"),
        };
        let row = self
            .inner
            .catalog
            .job(id)
            .map_err(io)?
            .ok_or_else(|| ControlError::not_found(format!("no job {id}")))?;
        if row.state == "queued" || row.state == "running" {
            return Err(ControlError {
                errno: libc::EBUSY,
                message: format!("job {id} is {}: cancel it first", row.state),
            });
        }
        self.inner.catalog.delete_job(id).map_err(io)?;
        self.lock().generation += 1;
        let mut event = Event::new("job-deleted")
            .uid(Some(uid))
            .job(id)
            .request(how)
            .outcome(json!({"ok": true, "job_kind": row.kind, "state": row.state}));
        event.instance = row.instance;
        self.record_event(event);
        Ok(())
    }

    /// Whether job `id` is queued or running in this daemon.
    pub fn job_is_live(&self, id: u64) -> bool {
        self.lock().live.contains_key(&id)
    }
}
