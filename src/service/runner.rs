//! The job runner: picks queued jobs (one at a time per instance), runs them on the
//! engine, keeps their status current while they run, and records how they ended.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::engine::{self, BackupRequest, CancelToken, RestoreRequest, VerifyRequest};
use crate::model::manifest::point_name;
use crate::model::PointKind;

use crate::sync::LockExt;

use super::command_sources::command_streams;
use super::daemon::Service;
use super::events::{lease_taken_over, JobEnd};
use super::job_history::INTERRUPTED;
use super::job_hooks::{JobError, JobHooks};
use super::job_progress::JobProgress;
use super::jobs::{JobKind, JobState, LiveJob};
use super::requests;

impl Service {
    /// Picks the oldest queued job whose instance has nothing running. A prune or a
    /// repair runs alone: it starts once nothing runs, and nothing queued after it starts before it
    /// is done (it deletes data, and a backup beside it in this daemon is exactly what
    /// its grace period cannot cover when that is zero).
    fn next_job(&self) -> Option<u64> {
        let mut st = self.lock();
        loop {
            if st.shutdown {
                return None;
            }
            let running: Vec<&LiveJob> = st
                .live
                .values()
                .filter(|j| j.state == JobState::Running)
                .collect();
            let busy: BTreeSet<Option<String>> =
                running.iter().map(|j| j.instance.clone()).collect();
            let mut pick = None;
            if !running.iter().any(|j| j.kind.runs_alone()) {
                for j in st.live.values().filter(|j| j.state == JobState::Queued) {
                    if j.kind.runs_alone() {
                        if running.is_empty() {
                            pick = Some(j.id);
                        }
                        break;
                    }
                    if j.instance.is_none() || !busy.contains(&j.instance) {
                        pick = Some(j.id);
                        break;
                    }
                }
            }
            if let Some(id) = pick {
                if let Some(job) = st.live.get_mut(&id) {
                    job.state = JobState::Running;
                    job.started_ns = Some(self.now_ns());
                }
                return Some(id);
            }
            st = self.inner.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub(super) fn run_worker(&self) {
        while let Some(id) = self.next_job() {
            let (kind, request, instance, cancel, progress, uid) = {
                let st = self.lock();
                let Some(job) = st.live.get(&id) else {
                    continue;
                };
                self.persist(job, None, None, None);
                (
                    job.kind,
                    job.request.clone(),
                    job.instance.clone(),
                    job.cancel.clone(),
                    job.progress.clone(),
                    job.uid,
                )
            };
            // Periodic status writes while the job runs.
            let done = Arc::new((Mutex::new(false), Condvar::new()));
            let ticker = {
                let s = self.clone();
                let done = done.clone();
                std::thread::spawn(move || loop {
                    let (lock, cv) = &*done;
                    let g = lock.locked();
                    let (g, _) = cv
                        .wait_timeout(g, Duration::from_secs(2))
                        .unwrap_or_else(|p| p.into_inner());
                    if *g {
                        return;
                    }
                    drop(g);
                    if let Some(job) = s.lock().live.get(&id) {
                        s.persist(job, None, None, None);
                    }
                })
            };
            let outcome = if cancel.is_cancelled() {
                Err(engine::EngineError::Cancelled.into())
            } else {
                self.run_job(id, kind, &request, instance.as_deref(), &cancel, &progress)
            };
            {
                let (lock, cv) = &*done;
                *lock.locked() = true;
                cv.notify_all();
            }
            let _ = ticker.join();
            let finished = self.now_ns();
            let mut st = self.lock();
            self.inner.inputs.remove(id);
            if let Some(mut job) = st.live.remove(&id) {
                let (state, error, result) = match outcome {
                    Ok(result) => (JobState::Succeeded, None, Some(result)),
                    Err(e) if e.is_cancelled() && st.shutdown => {
                        (JobState::Interrupted, Some(INTERRUPTED.to_string()), None)
                    }
                    // A stream that stopped on the cancel fails as the cancel.
                    Err(e) if e.is_cancelled() || cancel.is_cancelled() => (
                        JobState::Cancelled,
                        Some("cancelled on request".to_string()),
                        None,
                    ),
                    Err(e) => (JobState::Failed, Some(e.to_string()), None),
                };
                job.state = state;
                if let Some(e) = &error {
                    job.progress.log_line(format!("error: {e}"));
                }
                self.persist(&job, Some(finished), error.clone(), result.clone());
                st.generation += 1;
                drop(st);
                self.inner.events.job_end(JobEnd {
                    id,
                    kind,
                    instance: instance.as_deref(),
                    uid,
                    request,
                    state,
                    error: error.as_deref(),
                    result,
                });
                self.inner.jobs.expire();
            }
            self.inner.wake.notify_all();
        }
    }

    fn run_job(
        &self,
        id: u64,
        kind: JobKind,
        request: &Value,
        instance: Option<&str>,
        cancel: &CancelToken,
        progress: &Arc<JobProgress>,
    ) -> Result<Value, JobError> {
        let repo = &self.inner.repo;
        let catalog = &self.inner.catalog;
        let bad = |e: serde_json::Error| {
            engine::EngineError::Invalid(engine::InvalidRequest::Refused(format!(
                "stored request: {e}"
            )))
        };
        match kind {
            JobKind::Snapshot => {
                let req: requests::SnapshotRequest =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                let config = self.instance(&req.instance).ok_or_else(|| {
                    engine::EngineError::Invalid(engine::InvalidRequest::Refused(format!(
                        "instance `{}` was removed",
                        req.instance
                    )))
                })?;
                if let (None, Some(why)) = (&req.stdin, config.needs_stdin()) {
                    return Err(
                        engine::EngineError::Invalid(engine::InvalidRequest::Refused(why)).into(),
                    );
                }
                let mut b = BackupRequest::new(
                    &req.instance,
                    config.paths.iter().map(PathBuf::from).collect(),
                );
                b.excludes = config.excludes.clone();
                b.streams = command_streams(&config.commands, &req.instance, id, progress, cancel);
                if let Some(name) = &req.stdin {
                    let stream = self.inner.inputs.stream(id, name, cancel);
                    b.streams.push(stream.map_err(|e| {
                        engine::EngineError::Invalid(engine::InvalidRequest::Refused(e))
                    })?);
                }
                b.label = req.label.clone();
                b.kind = PointKind::Manual;
                if let Some(run) = &req.schedule {
                    if let Some(taken) = self.slot_taken(&req.instance, run)? {
                        return Ok(json!({"point": taken, "already_taken": true}));
                    }
                    b.kind = PointKind::Scheduled;
                    b.time_ns = Some(run.time_ns);
                }
                let mut hooks = JobHooks::snapshot(&config.hooks, &req.instance, id);
                if hooks.any() {
                    // The hooks are told the name the point is to get: its time is now.
                    let time = *b.time_ns.get_or_insert_with(crate::model::now_ns);
                    hooks = hooks.with("CAIRN_POINT", point_name(time, b.kind, b.label.as_deref()));
                }
                let mut result = hooks.around_backup(progress, cancel, |before_commit| {
                    b.before_commit = before_commit;
                    let out = engine::backup(repo, catalog, &b, progress.as_ref(), cancel)?;
                    Ok(json!({"point": out.manifest.name, "stats": out.manifest.stats, "warnings": out.warnings}))
                })?;
                if req.schedule.is_some() {
                    // Retention follows every scheduled point; the point stays if it fails.
                    result["expired"] =
                        match self.expire_points(&req.instance, progress.as_ref(), cancel) {
                            Ok(names) => json!(names),
                            Err(e) => {
                                progress.log_line(format!("warning: retention: {e}"));
                                json!({"error": e.to_string()})
                            }
                        };
                }
                Ok(result)
            }
            JobKind::Restore => {
                let req: requests::RestoreControl =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                if let Some(at_ns) = req.at_ns {
                    return self.run_restore_at(id, &req, at_ns, progress, cancel);
                }
                let r = RestoreRequest {
                    instance: req.instance.clone(),
                    point: req.point.clone(),
                    target: req.target.clone(),
                    includes: req.includes.clone(),
                    mode: req.mode(),
                    delete_excluded: req.delete_excluded,
                    skip_damaged: req.skip_damaged,
                };
                let hooks = self.restore_hooks(&req, id);
                hooks.around(progress, cancel, || {
                    let out = engine::restore(repo, catalog, &r, progress.as_ref(), cancel)?;
                    Ok(json!({
                        "point": out.point, "files": out.files, "bytes": out.bytes, "written": out.written,
                        "removed": out.removed, "safety_point": out.safety_point, "warnings": out.warnings,
                        "skipped": out.skipped, "corrected": out.corrected,
                    }))
                })
            }
            JobKind::Verify => {
                let req: requests::VerifyControl =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                let v = VerifyRequest {
                    instance: req.instance.clone().or(instance.map(str::to_string)),
                    point: req.point.clone(),
                    read_data: req.read_data,
                };
                let report = engine::verify(repo, catalog, &v, progress.as_ref(), cancel)?;
                if report.is_ok() {
                    Ok(serde_json::to_value(&report).unwrap_or_default())
                } else {
                    let names: Vec<String> = report
                        .damaged
                        .iter()
                        .flat_map(|d| {
                            d.paths
                                .iter()
                                .map(move |p| format!("{}/{}/{}", d.instance, d.point, p))
                        })
                        .chain(report.log_damage.iter().map(|d| d.message.clone()))
                        .chain(report.problems.iter().cloned())
                        .collect();
                    Err(engine::EngineError::Damage(names.join(", ")).into())
                }
            }
            JobKind::Check => {
                let req: requests::CheckControl =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                self.run_check(id, &req, progress, cancel)
            }
            JobKind::Copy => {
                let req: requests::CopyControl =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                self.run_copy(&req, progress, cancel)
            }
            JobKind::Forget => {
                let req: requests::ForgetControl =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                let f = engine::ForgetRequest {
                    instance: req.instance.clone(),
                    points: req.points.clone(),
                    allow_manual: req.manual,
                };
                let out = engine::forget(repo, catalog, &f, progress.as_ref(), cancel)?;
                Ok(json!({"instance": req.instance, "removed": out.removed}))
            }
            JobKind::Prune => {
                let req: requests::PruneControl =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                let mut p = engine::PruneRequest {
                    dry_run: req.dry_run,
                    break_lease: req.break_lease,
                    ..Default::default()
                };
                if let Some(h) = req.grace_hours {
                    p.grace_ns = i64::from(h) * 3_600 * 1_000_000_000;
                }
                let out = engine::prune(repo, catalog, &p, progress.as_ref(), cancel)?;
                if let Some(taken) = &out.lease_taken_over {
                    let event = lease_taken_over(taken, request.clone()).job(id);
                    self.inner.events.record(event);
                }
                Ok(serde_json::to_value(&out).unwrap_or_default())
            }
            JobKind::Repair => {
                let req: requests::RepairControl =
                    serde_json::from_value(request.clone()).map_err(bad)?;
                let r = engine::RepairRequest {
                    dry_run: req.dry_run,
                };
                let out = engine::repair(repo, catalog, &r, progress.as_ref(), cancel)?;
                Ok(serde_json::to_value(&out).unwrap_or_default())
            }
        }
    }

    /// The restore hooks of the instance of `req` (none once it is removed), told the
    /// point restored and the target: `target=`, else the point's source paths.
    pub(super) fn restore_hooks(&self, req: &requests::RestoreControl, id: u64) -> JobHooks {
        let Some(config) = self.instance(&req.instance) else {
            return JobHooks::default();
        };
        let hooks = JobHooks::restore(&config.hooks, &req.instance, id);
        if !hooks.any() {
            return hooks;
        }
        let point = self
            .inner
            .catalog
            .find_point(&req.instance, &req.point)
            .ok()
            .flatten();
        let target = match (&req.target, &point) {
            (Some(t), _) => t.to_string_lossy().into_owned(),
            (None, Some(p)) => p.manifest.paths.join(":"),
            (None, None) => String::new(),
        };
        let name = point.map_or_else(|| req.point.clone(), |p| p.manifest.name);
        hooks.with("CAIRN_POINT", name).with("CAIRN_TARGET", target)
    }
}
