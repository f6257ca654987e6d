//! The running service: what it holds (instances, policies, live jobs, the job history,
//! the event log, the scheduler's memory, the clock), its start and stop, and the
//! refresh that makes points written by other machines appear. Requests, jobs, policies
//! and the scheduler are handled in the files beside this one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::catalog::{Catalog, PointRecord, RefreshStats};
use crate::model::{InstanceConfig, Policy, PolicySettings};
use crate::repo::Repository;
use crate::store::StoreError;
use crate::sync::LockExt;

use super::clock::{Clock, SystemClock};
use super::definitions::{load_instances, load_policies};
use super::error::ServiceError;
use super::event_pages::EventsSnapshot;
use super::events::EventLog;
use super::job_history::JobHistory;
use super::job_input::JobInputs;
use super::jobs::{JobState, LiveJob};
use super::log_slots::LogArchives;
use super::stats::StatsCache;
use super::tracks::SchedState;

/// How often the catalog is refreshed from the objects (points from other machines).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// What the service's one lock guards.
#[derive(Default)]
pub(super) struct State {
    pub live: BTreeMap<u64, LiveJob>,
    pub instances: BTreeMap<String, InstanceConfig>,
    pub policies: BTreeMap<String, Policy>,
    pub settings: PolicySettings,
    pub shutdown: bool,
    /// Bumped whenever points or instances change, so views can invalidate caches.
    pub generation: u64,
    /// A view asked the refresher for a refresh ([`Service::refresh_if_older`]).
    pub refresh_wanted: bool,
    /// Bumped by every refresh that found something new (segments, packs, plans...).
    pub refreshed_changes: u64,
}

pub(super) struct Inner {
    pub repo: Repository,
    pub catalog: Arc<Catalog>,
    pub state: Mutex<State>,
    /// Wakes the job runners, the refresher and the scheduler (a job queued or ended, a
    /// cancel, a refresh asked for, the shutdown).
    pub wake: Condvar,
    /// When the last refresh ended (the refresher's failed ones too).
    pub last_refresh: Mutex<Instant>,
    pub clock: Arc<dyn Clock>,
    pub events: EventLog,
    pub jobs: JobHistory,
    pub sched: Mutex<SchedState>,
    /// Serialises policy changes (each is a read-modify-write of repository objects).
    pub policy_writes: Mutex<()>,
    /// The inputs of snapshots with `stdin=` (`job_input`).
    pub inputs: JobInputs,
    /// The instances' log archives (`log_archiver`).
    pub logs: LogArchives,
    /// The catalog's figures for `.cairn/stats`.
    pub stats: StatsCache,
    /// The password the repository was opened with, if the daemon was given it: a copy
    /// job's target is opened with it when the request names no password file.
    pub password: Mutex<Option<Vec<u8>>>,
}

/// A running service; clones share it. Call [`shutdown`](Service::shutdown) to stop.
#[derive(Clone)]
pub struct Service {
    pub(super) inner: Arc<Inner>,
}

impl Service {
    /// Keeps the password the repository was opened with, for the targets of copy jobs
    /// that name no password file (docs/CONTROL.md, "Copy").
    pub fn keep_password(&self, password: Option<Vec<u8>>) {
        *self.inner.password.locked() = password;
    }

    /// Starts the service on the system clock.
    pub fn start(
        repo: Repository,
        catalog: Arc<Catalog>,
        workers: usize,
    ) -> Result<Service, ServiceError> {
        Service::start_with_clock(repo, catalog, workers, Arc::new(SystemClock))
    }

    /// Starts the service: marks jobs a previous daemon left unfinished as interrupted,
    /// applies the job history's retention, loads instances and policies, starts
    /// `workers` job runners, a refresher and the scheduler. Every time it records comes
    /// from `clock`.
    pub fn start_with_clock(
        repo: Repository,
        catalog: Arc<Catalog>,
        workers: usize,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, ServiceError> {
        let service = Service {
            inner: Arc::new(Inner {
                repo,
                events: EventLog::new(catalog.clone(), clock.clone()),
                jobs: JobHistory::new(catalog.clone(), clock.clone()),
                catalog,
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                last_refresh: Mutex::new(Instant::now()),
                sched: Mutex::new(SchedState::new(clock.now_ns())),
                clock,
                policy_writes: Mutex::new(()),
                inputs: Default::default(),
                logs: Default::default(),
                stats: Default::default(),
                password: Mutex::new(None),
            }),
        };
        service.inner.jobs.recover(&service.inner.events)?;
        service.refresh()?;
        for i in 0..workers.max(1) {
            let s = service.clone();
            std::thread::Builder::new()
                .name(format!("cairn-job-{i}"))
                .spawn(move || s.run_worker())
                .map_err(|e| ServiceError::Store(StoreError::Runtime(e)))?;
        }
        let s = service.clone();
        std::thread::Builder::new()
            .name("cairn-refresh".into())
            .spawn(move || s.run_refresher())
            .map_err(|e| ServiceError::Store(StoreError::Runtime(e)))?;
        let s = service.clone();
        std::thread::Builder::new()
            .name("cairn-scheduler".into())
            .spawn(move || s.run_scheduler())
            .map_err(|e| ServiceError::Store(StoreError::Runtime(e)))?;
        let s = service.clone();
        std::thread::Builder::new()
            .name("cairn-logs".into())
            .spawn(move || s.run_log_archiver())
            .map_err(|e| ServiceError::Store(StoreError::Runtime(e)))?;
        Ok(service)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.locked()
    }

    /// Now, by the service's clock.
    pub fn now_ns(&self) -> i64 {
        self.inner.clock.now_ns()
    }

    pub fn repo(&self) -> &Repository {
        &self.inner.repo
    }

    /// The inputs of snapshots with `stdin=` (the mount's `jobs/<id>/input`).
    pub fn job_inputs(&self) -> &JobInputs {
        &self.inner.inputs
    }

    /// The runtime the repository's I/O runs on (the mount serves reads on it).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        self.inner.repo.runtime()
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// Stops runners after their current job; queued jobs stay queued (and show
    /// interrupted on the next start).
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.shutdown = true;
        for job in st.live.values() {
            job.cancel.cancel();
        }
        self.inner.wake.notify_all();
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Reloads instances, policies and points from the repository.
    pub fn refresh(&self) -> Result<(), ServiceError> {
        let repo = &self.inner.repo;
        let stats = self.inner.catalog.refresh(repo)?;
        let (policies, settings) = load_policies(repo)?;
        let instances = load_instances(repo)?;
        let mut st = self.lock();
        if st.instances != instances
            || st.policies != policies
            || stats.new_points > 0
            || stats.removed_points > 0
            || stats.forgotten_points > 0
        {
            st.generation += 1;
        }
        if stats != RefreshStats::default() {
            st.refreshed_changes += 1;
        }
        st.instances = instances;
        st.policies = policies;
        st.settings = settings;
        *self.inner.last_refresh.locked() = Instant::now();
        Ok(())
    }

    /// Whether the last refresh ended `max_age` ago or more.
    fn refresh_due(&self, max_age: Duration) -> bool {
        self.inner
            .last_refresh
            .lock()
            .map(|t| t.elapsed() >= max_age)
            .unwrap_or(true)
    }

    /// Asks the refresher thread for a refresh if the last one is older than `max_age`,
    /// and returns at once: a view (the mount's session threads) never waits on the
    /// repository. What the refresh finds shows on a later call.
    pub fn refresh_if_older(&self, max_age: Duration) {
        if !self.refresh_due(max_age) {
            return;
        }
        let mut st = self.lock();
        if !st.refresh_wanted {
            st.refresh_wanted = true;
            self.inner.wake.notify_all();
        }
    }

    /// Refreshes now, on this thread, if the last refresh is older than `max_age`: for
    /// a request whose answer depends on what other machines wrote.
    pub(super) fn refresh_now_if_older(&self, max_age: Duration) {
        if self.refresh_due(max_age) {
            if let Err(e) = self.refresh() {
                tracing::warn!("catalog refresh failed: {e}");
            }
        }
    }

    /// The refresher thread: refreshes every [`REFRESH_INTERVAL`], and at once when a
    /// view asks ([`Service::refresh_if_older`]). A failed refresh counts as one for the
    /// next interval, so a broken store is not asked again on every view's call.
    /// It first counts the length of the events file.
    fn run_refresher(&self) {
        // The events file's length, counted here once rather than on a first `stat`.
        if let Err(e) = self.inner.events.snapshot() {
            tracing::warn!("cannot read the events: {e}");
        }
        loop {
            let wanted = {
                let mut st = self.lock();
                if !st.refresh_wanted && !st.shutdown {
                    st = self
                        .inner
                        .wake
                        .wait_timeout(st, REFRESH_INTERVAL)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if st.shutdown {
                    return;
                }
                std::mem::take(&mut st.refresh_wanted)
            };
            self.inner.jobs.flush();
            if wanted || self.refresh_due(REFRESH_INTERVAL) {
                if let Err(e) = self.refresh() {
                    tracing::warn!("catalog refresh failed: {e}");
                    *self.inner.last_refresh.locked() = Instant::now();
                }
            }
        }
    }

    /// Instance names: defined ones and any that have points.
    pub fn instance_names(&self) -> Vec<String> {
        let defined: BTreeSet<String> = self.lock().instances.keys().cloned().collect();
        self.with_points(defined)
    }

    /// `names` and the instances that have points.
    fn with_points(&self, mut names: BTreeSet<String>) -> Vec<String> {
        if let Ok(with_points) = self.inner.catalog.instances() {
            names.extend(with_points);
        }
        names.into_iter().collect()
    }

    pub fn instance(&self, name: &str) -> Option<InstanceConfig> {
        self.lock().instances.get(name).cloned()
    }

    pub fn points(&self, instance: &str) -> Vec<PointRecord> {
        self.inner
            .catalog
            .points(Some(instance))
            .unwrap_or_default()
    }

    /// The audit log (`.cairn/events`) as JSON lines, in the order recorded.
    pub fn events_text(&self) -> String {
        self.inner.events.text()
    }

    /// `.cairn/events` as it is now, to read in pages with
    /// [`events_read`](Self::events_read): open takes one, and its length is the size.
    pub fn events_snapshot(&self) -> Result<EventsSnapshot, ServiceError> {
        Ok(self.inner.events.snapshot()?)
    }

    /// The size of `.cairn/events` now (what [`events_text`](Self::events_text) would
    /// build), without building it: O(events recorded since the last call).
    pub fn events_len(&self) -> u64 {
        self.events_snapshot().map_or(0, |s| s.len())
    }

    /// Up to `size` bytes of the events file of `snapshot` from `offset`.
    pub fn events_read(
        &self,
        snapshot: &EventsSnapshot,
        offset: u64,
        size: usize,
    ) -> Result<Vec<u8>, ServiceError> {
        Ok(self.inner.events.read(snapshot, offset, size)?)
    }

    /// Repository figures for `.cairn/stats`: the catalog's counts as of the last change
    /// the service saw (counted once per change), the jobs as they are.
    pub fn stats_text(&self) -> String {
        let key = {
            let st = self.lock();
            (st.generation, st.refreshed_changes)
        };
        let figures = self.inner.stats.figures(&self.inner.catalog, key);
        let c = &figures.counts;
        let st = self.lock();
        let mut instances: BTreeSet<String> = st.instances.keys().cloned().collect();
        instances.extend(figures.with_points.iter().cloned());
        let v = json!({
            "repository": self.inner.repo.store().description(),
            "repository_id": self.inner.repo.config().id,
            "format_version": self.inner.repo.config().version,
            "encrypted": self.inner.repo.config().encrypted(),
            "instances": instances,
            "points": c.points,
            "packs": c.packs,
            "stored_bytes": c.stored_bytes,
            "data_blobs": c.data_blobs,
            "tree_blobs": c.tree_blobs,
            "forgotten_points": c.forgotten_points,
            "prune_plans_pending": c.prune_plans,
            "jobs_queued": st.live.values().filter(|j| j.state == JobState::Queued).count(),
            "jobs_running": st.live.values().filter(|j| j.state == JobState::Running).count(),
        });
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
    }
}
