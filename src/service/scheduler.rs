//! The scheduler: takes a scheduled point of every instance whose policy has a slot due,
//! by the injected [`Clock`](super::clock::Clock).
//!
//! - One run per due slot. If several slots passed since the last look (the daemon was
//!   stopped, or the clock jumped), one run covers them; when they passed before the
//!   daemon started, that run is a recorded catch-up run (at most one per start).
//! - A slot that finds the instance busy (another job queued or running on it) is a
//!   failed job with that cause. A slot after a failed run is a retry; at most
//!   [`MAX_RETRIES_PER_DAY`] retries a day (in the policy's time zone), later slots of
//!   that day are skipped and recorded.
//! - Failed scheduled jobs are kept as jobs with their cause: the newest
//!   [`FAILED_SCHEDULED_KEEP`](crate::catalog::FAILED_SCHEDULED_KEEP) per instance, for
//!   [`FAILED_SCHEDULED_DAYS`](crate::catalog::FAILED_SCHEDULED_DAYS) days
//!   ([`Catalog::expire_failed_scheduled_jobs`](crate::catalog::Catalog::expire_failed_scheduled_jobs)).
//! - Disabled policies do not run; the slots they skip are not caught up when enabled.
//! - Every daemon that mounts the repository runs its policies. A slot whose scheduled
//!   point another daemon already took (same instance, the slot's time) is not taken
//!   again, nor caught up: the job ends with `already_taken` (checked when it starts,
//!   after a catalog refresh; two daemons starting one slot at the same moment can
//!   still both take it).
//!
//! What the scheduler last did per (policy, instance) is kept in memory and rebuilt at
//! start from the scheduled jobs in the catalog.

use std::time::Duration;

use serde_json::{json, Value};

use crate::model::{schedule, Policy};
use crate::sync::LockExt;

use super::daemon::Service;
use super::events::{Event, JobEnd};
use super::grammar::ControlError;
use super::job_progress::JobProgress;
use super::jobs::{rfc3339, JobKind, JobState, JobStatus};
use super::policies::bindings;
use super::requests::{ScheduledRun, SnapshotRequest, Trigger};
use super::tracks::{SchedState, Track};

pub const MAX_RETRIES_PER_DAY: u32 = 3;
/// How often the scheduler looks at the clock.
pub const SCHEDULER_INTERVAL: Duration = Duration::from_secs(1);

fn schedule_of(request: &str) -> Option<ScheduledRun> {
    let v: Value = serde_json::from_str(request).ok()?;
    serde_json::from_value(v.get("schedule")?.clone()).ok()
}

impl Service {
    fn sched(&self) -> std::sync::MutexGuard<'_, SchedState> {
        self.inner.sched.locked()
    }

    pub(super) fn run_scheduler(&self) {
        loop {
            self.tick_scheduler();
            let st = self.lock();
            let (st, _) = self
                .inner
                .wake
                .wait_timeout(st, SCHEDULER_INTERVAL)
                .unwrap_or_else(|p| p.into_inner());
            if st.shutdown {
                return;
            }
        }
    }

    /// Starts what is due at the clock's now. The daemon calls this every second; tests
    /// call it after moving a manual clock.
    pub fn tick_scheduler(&self) {
        let now = self.now_ns();
        let mut sched = self.sched();
        let started_ns = sched.started_ns;
        let (policies, bound) = {
            let st = self.lock();
            if st.shutdown {
                return;
            }
            (st.policies.clone(), bindings(&st.policies))
        };
        for (instance, name) in bound {
            let Some(p) = policies.get(&name).filter(|p| p.enabled) else {
                continue;
            };
            if self.instance(&instance).is_none() {
                continue;
            }
            let key = (name.clone(), instance.clone());
            if !sched.tracks.contains_key(&key) {
                let track = self.load_track(p, &instance);
                sched.tracks.insert(key.clone(), track);
            }
            let Some(track) = sched.tracks.get_mut(&key) else {
                continue;
            };
            let due = schedule::slots(p, track.last_slot_ns, now);
            let Some(&slot) = due.last() else {
                continue;
            };
            track.last_slot_ns = slot;
            let day = schedule::policy_date(p, slot);
            if track.day != day {
                track.day = day;
                track.retries = 0;
            }
            let failed_before = track.last_job.is_some_and(|id| {
                self.inner.catalog.job(id).ok().flatten().is_some_and(|r| {
                    !matches!(
                        JobState::from_name(&r.state),
                        Some(JobState::Succeeded | JobState::Queued | JobState::Running)
                    )
                })
            });
            let missed_while_down = due[0] <= started_ns;
            let trigger = match (missed_while_down, failed_before) {
                (true, _) => Trigger::CatchUp,
                (false, true) => Trigger::Retry,
                (false, false) => Trigger::Slot,
            };
            if trigger == Trigger::Retry {
                if track.retries >= MAX_RETRIES_PER_DAY {
                    self.inner.events.record(
                        Event::new("policy-slot-skipped")
                            .instance(instance.clone())
                            .outcome(json!({
                                "ok": false,
                                "policy": name,
                                "slot": schedule::utc(slot),
                                "error": format!(
                                    "{MAX_RETRIES_PER_DAY} retries today failed; the next run is on the next day"
                                ),
                            })),
                    );
                    continue;
                }
                track.retries += 1;
            }
            let time_ns = if trigger == Trigger::CatchUp {
                now
            } else {
                slot
            };
            self.inner.jobs.trim_failed(&instance);
            match self.start_scheduled(p, &instance, slot, time_ns, trigger) {
                Ok(id) => {
                    track.last_job = Some(id);
                    if trigger == Trigger::CatchUp {
                        self.inner.events.record(
                            Event::new("policy-catch-up")
                                .instance(instance.clone())
                                .job(id)
                                .outcome(json!({
                                    "ok": true,
                                    "policy": name,
                                    "missed": due.len(),
                                    "last_missed": schedule::utc(slot),
                                })),
                        );
                    }
                }
                Err(e) => tracing::error!(policy = %name, %instance, "scheduled run: {e}"),
            }
        }
    }

    /// What the scheduler did last for (policy, instance), from the catalog's jobs.
    fn load_track(&self, p: &Policy, instance: &str) -> Track {
        let bound_ns = p.binding(instance).map(|b| b.bound_ns).unwrap_or(0);
        let runs: Vec<(u64, ScheduledRun)> = self
            .inner
            .catalog
            .jobs()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                r.kind == JobKind::Snapshot.as_str() && r.instance.as_deref() == Some(instance)
            })
            .filter_map(|r| Some((r.id, schedule_of(&r.request)?)))
            .filter(|(_, s)| s.policy == p.name && s.trigger != Trigger::RunNow)
            .collect();
        let last = runs.last();
        let last_slot_ns = last.map_or(bound_ns, |(_, s)| s.slot_ns.max(bound_ns));
        let day = schedule::policy_date(p, last_slot_ns);
        Track {
            last_slot_ns,
            last_job: last.map(|(id, _)| *id),
            day,
            retries: runs
                .iter()
                .filter(|(_, s)| {
                    s.trigger == Trigger::Retry && schedule::policy_date(p, s.slot_ns) == day
                })
                .count() as u32,
        }
    }

    /// Forgets what the scheduler did for (policy, instance): slots up to `now` are past.
    pub(super) fn restart_track(&self, policy: &str, instance: &str, now: i64) {
        let day = self
            .policy(policy)
            .map(|p| schedule::policy_date(&p, now))
            .unwrap_or_default();
        self.sched().tracks.insert(
            (policy.to_string(), instance.to_string()),
            Track {
                last_slot_ns: now,
                last_job: None,
                day,
                retries: 0,
            },
        );
    }

    /// Queues a scheduled snapshot, or records a failed job if the instance is busy (a
    /// run-now queues behind what is there). Returns the job id.
    pub(super) fn start_scheduled(
        &self,
        p: &Policy,
        instance: &str,
        slot_ns: i64,
        time_ns: i64,
        trigger: Trigger,
    ) -> Result<u64, ControlError> {
        let request = serde_json::to_value(SnapshotRequest {
            instance: instance.to_string(),
            label: None,
            stdin: None,
            schedule: Some(ScheduledRun {
                policy: p.name.clone(),
                slot: schedule::utc(slot_ns),
                slot_ns,
                time_ns,
                trigger,
            }),
        })
        .unwrap_or_default();
        let busy = self
            .lock()
            .live
            .values()
            .find(|j| j.instance.as_deref() == Some(instance))
            .map(|j| (j.id, j.kind));
        match busy {
            Some((id, kind)) if trigger != Trigger::RunNow => {
                let cause = format!(
                    "instance `{instance}` was busy with job {id} ({kind}) at the slot; the next slot retries"
                );
                self.record_failed(instance, &request, &cause)
            }
            _ => self.enqueue_job(None, JobKind::Snapshot, Some(instance.to_string()), request),
        }
    }

    fn record_failed(
        &self,
        instance: &str,
        request: &Value,
        cause: &str,
    ) -> Result<u64, ControlError> {
        let now = self.now_ns();
        let jobs = &self.inner.jobs;
        let stored = |e: crate::catalog::CatalogError| ControlError {
            errno: libc::EIO,
            message: format!("cannot record the job: {e}"),
        };
        let (kind, state) = (JobKind::Snapshot, JobState::Failed);
        let id = jobs
            .insert(kind, Some(instance), state, request, now, None)
            .map_err(stored)?;
        let status = JobStatus {
            progress: serde_json::to_value(JobProgress::default().status(0.0)).unwrap_or_default(),
            finished: Some(rfc3339(now)),
            error: Some(cause.to_string()),
            ..JobStatus::new(
                id,
                kind,
                Some(instance.to_string()),
                state,
                request.clone(),
                now,
            )
        };
        jobs.store(&status, &format!("error: {cause}\n"))
            .map_err(stored)?;
        self.inner.events.job_end(JobEnd {
            id,
            kind,
            instance: Some(instance),
            uid: None,
            request: request.clone(),
            state,
            error: Some(cause),
            result: None,
        });
        self.inner.jobs.trim_failed(instance);
        self.lock().generation += 1;
        Ok(id)
    }

    /// The scheduled point another daemon of this repository already took for this slot.
    pub(super) fn slot_taken(
        &self,
        instance: &str,
        run: &ScheduledRun,
    ) -> Result<Option<String>, crate::engine::EngineError> {
        if run.trigger == Trigger::RunNow {
            return Ok(None);
        }
        self.inner.catalog.refresh(&self.inner.repo)?;
        Ok(self
            .points(instance)
            .into_iter()
            .find(|p| {
                p.manifest.kind == crate::model::PointKind::Scheduled
                    && p.manifest.time_ns == run.slot_ns
            })
            .map(|p| p.manifest.name))
    }
}
