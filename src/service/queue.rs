//! The job queue and its views: queuing a job (its row first, then the live job the
//! runners pick), storing a live job's status, and what `jobs/` shows of live and
//! finished jobs (each view, and its size, reads one job: listing `jobs/` reads ids).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::engine::CancelToken;

use super::daemon::Service;
use super::grammar::ControlError;
use super::job_progress::JobProgress;
use super::jobs::{JobKind, JobState, JobStatus, LiveJob};
use super::requests::Subject;

impl Service {
    /// Queues a job `uid` asked for with `request`; returns the reply `job=ID` and the
    /// subject with the job in it.
    pub(super) fn enqueue_as(
        &self,
        uid: u32,
        kind: JobKind,
        mut subject: Subject,
        request: &impl Serialize,
    ) -> Result<(String, Subject), ControlError> {
        let request = serde_json::to_value(request).unwrap_or_default();
        let id = self.enqueue_job(Some(uid), kind, subject.instance.clone(), request)?;
        subject.job = Some(id);
        Ok((format!("job={id}\n"), subject))
    }

    /// Queues a job asked for by `uid` (`None`: the daemon on its own, `uid` null in its
    /// events) and returns its id.
    pub(super) fn enqueue_job(
        &self,
        uid: Option<u32>,
        kind: JobKind,
        instance: Option<String>,
        request: Value,
    ) -> Result<u64, ControlError> {
        let created = self.now_ns();
        let id = self
            .inner
            .jobs
            .insert(
                kind,
                instance.as_deref(),
                JobState::Queued,
                &request,
                created,
                uid,
            )
            .map_err(|e| ControlError {
                errno: if e.is_disk_full() {
                    libc::ENOSPC
                } else {
                    libc::EIO
                },
                message: format!("cannot record the job: {e}"),
            })?;
        let job = LiveJob {
            id,
            kind,
            instance,
            request,
            state: JobState::Queued,
            cancel: CancelToken::new(),
            progress: Arc::new(JobProgress::default()),
            created_ns: created,
            started_ns: None,
            uid,
        };
        self.persist(&job, None, None, None);
        let mut st = self.lock();
        st.live.insert(id, job);
        self.inner.wake.notify_all();
        Ok(id)
    }

    /// Stores a live job's status (and its end, once it has one).
    pub(super) fn persist(
        &self,
        job: &LiveJob,
        finished: Option<i64>,
        error: Option<String>,
        result: Option<Value>,
    ) {
        let status = job.status(self.now_ns(), finished, error, result);
        self.inner.jobs.save(&status, job.progress.log_text());
    }

    /// Job ids, oldest first.
    pub fn job_ids(&self) -> Vec<u64> {
        self.inner.jobs.ids()
    }

    /// `jobs/<id>/status` (pretty JSON with a trailing newline).
    pub fn job_status(&self, id: u64) -> Option<String> {
        let live: Option<JobStatus> = {
            let st = self.lock();
            st.live
                .get(&id)
                .map(|j| j.status(self.now_ns(), None, None, None))
        };
        let value = match live {
            Some(s) => serde_json::to_value(s).ok()?,
            None => self.inner.jobs.status(id)?,
        };
        Some(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ))
    }

    /// `jobs/<id>/log`: a live job's lines, or the stored log.
    pub fn job_log(&self, id: u64) -> Option<String> {
        if let Some(j) = self.lock().live.get(&id) {
            return Some(j.progress.log_text());
        }
        self.inner.jobs.log(id)
    }

    /// The size of `jobs/<id>/log` ([`job_log`](Self::job_log)'s length), without
    /// building or reading the log.
    pub fn job_log_len(&self, id: u64) -> Option<u64> {
        if let Some(j) = self.lock().live.get(&id) {
            return Some(j.progress.log_len());
        }
        self.inner.jobs.log_len(id)
    }

    /// The size of `jobs/<id>/status`. The document is small (a job's own fields), so
    /// it is built: O(1) in the number of jobs.
    pub fn job_status_len(&self, id: u64) -> Option<u64> {
        self.job_status(id).map(|s| s.len() as u64)
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
        let generation = || self.lock().generation += 1;
        self.inner
            .jobs
            .delete(id, uid, how, &self.inner.events, generation)?;
        self.remove_differences(id);
        Ok(())
    }

    /// Whether job `id` is queued or running in this daemon.
    pub fn job_is_live(&self, id: u64) -> bool {
        self.lock().live.contains_key(&id)
    }

    /// Blocks until no job is queued or running.
    pub fn wait_idle(&self) {
        let mut st = self.lock();
        while !st.live.is_empty() {
            st = self
                .inner
                .wake
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}
