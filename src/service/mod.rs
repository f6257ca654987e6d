//! The daemon's brain: turns control requests into jobs, runs them (one at a time per
//! instance, others queue), keeps instances, policies, jobs and events, runs the
//! scheduler, and refreshes the catalog so points written by other machines appear. The
//! FUSE layer only calls this.

pub mod clock;
pub mod control;
pub mod events;
pub mod grammar;
mod history;
pub mod jobs;
pub mod policies;
pub mod policy_control;
pub mod requests;
pub mod retention;
mod runner;
pub mod scheduler;
mod unsaved;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::catalog::{Catalog, PointRecord};
use crate::engine::CancelToken;
use crate::model::{InstanceConfig, Policy, PolicySettings};
use crate::repo::Repository;
use crate::store::StoreError;

use crate::sync::LockExt;
pub use clock::{Clock, ManualClock, SystemClock};
pub use events::{Event, KINDS as EVENT_KINDS};
pub use grammar::ControlError;
pub use jobs::{JobProgress, JobState, LiveJob};

/// The control files of `.cairn/ctl/`.
pub const CONTROL_FILES: &[&str] = &[
    "instance", "snapshot", "restore", "verify", "cancel", "forget", "prune", "policy",
];

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub use crate::model::now_ns;

#[derive(Default)]
struct State {
    live: BTreeMap<u64, LiveJob>,
    instances: BTreeMap<String, InstanceConfig>,
    policies: BTreeMap<String, Policy>,
    settings: PolicySettings,
    shutdown: bool,
    /// Bumped whenever points or instances change, so views can invalidate caches.
    generation: u64,
}

struct Inner {
    repo: Repository,
    catalog: Arc<Catalog>,
    state: Mutex<State>,
    wake: Condvar,
    last_refresh: Mutex<Instant>,
    /// Held while a request is handled and its event recorded, and while a job's end is
    /// recorded: a request's event always comes before the end of the job it started.
    event_order: Mutex<()>,
    clock: Arc<dyn Clock>,
    sched: Mutex<scheduler::SchedState>,
    /// Serialises policy changes (each is a read-modify-write of repository objects).
    policy_writes: Mutex<()>,
    /// Job rows the catalog could not store (a full disk).
    unsaved: unsaved::Unsaved,
}

/// A running service; clones share it. Call [`shutdown`](Service::shutdown) to stop.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

/// How often the catalog is refreshed from the objects (points from other machines).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

impl Service {
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
    /// `workers` job runners, a refresher and the scheduler, which reads `clock`.
    pub fn start_with_clock(
        repo: Repository,
        catalog: Arc<Catalog>,
        workers: usize,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, ServiceError> {
        let service = Service {
            inner: Arc::new(Inner {
                repo,
                catalog,
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                last_refresh: Mutex::new(Instant::now()),
                event_order: Mutex::new(()),
                sched: Mutex::new(scheduler::SchedState::new(clock.now_ns())),
                clock,
                policy_writes: Mutex::new(()),
                unsaved: unsaved::Unsaved::default(),
            }),
        };
        service.recover_history()?;
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
        Ok(service)
    }

    fn event_order(&self) -> MutexGuard<'_, ()> {
        self.inner.event_order.locked()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.locked()
    }

    pub fn repo(&self) -> &Repository {
        &self.inner.repo
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
        let (policies, settings) = policies::load(repo)?;
        let instances = definitions(repo, "instances/", InstanceConfig::decode)?
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect::<BTreeMap<_, _>>();
        let mut st = self.lock();
        if st.instances != instances
            || st.policies != policies
            || stats.new_points > 0
            || stats.removed_points > 0
            || stats.forgotten_points > 0
        {
            st.generation += 1;
        }
        st.instances = instances;
        st.policies = policies;
        st.settings = settings;
        *self.inner.last_refresh.locked() = Instant::now();
        Ok(())
    }

    /// Refreshes if the last refresh is older than `max_age`.
    pub fn refresh_if_older(&self, max_age: Duration) {
        let due = self
            .inner
            .last_refresh
            .lock()
            .map(|t| t.elapsed() >= max_age)
            .unwrap_or(true);
        if due {
            if let Err(e) = self.refresh() {
                tracing::warn!("catalog refresh failed: {e}");
            }
        }
    }

    fn run_refresher(&self) {
        loop {
            {
                let st = self.lock();
                let (st, _) = self
                    .inner
                    .wake
                    .wait_timeout(st, REFRESH_INTERVAL)
                    .unwrap_or_else(|p| p.into_inner());
                if st.shutdown {
                    return;
                }
            }
            self.inner.unsaved.flush(&self.inner.catalog);
            self.refresh_if_older(REFRESH_INTERVAL);
        }
    }

    /// Instance names: defined ones and any that have points.
    pub fn instance_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.lock().instances.keys().cloned().collect();
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

    /// Handles one write into `ctl/<file>` by `uid`; returns the reply text. An accepted
    /// request is an event; a refused one changes nothing and records nothing.
    pub fn submit(&self, file: &str, text: &str, uid: u32) -> Result<String, ControlError> {
        let _order = self.event_order();
        let reply = self.dispatch(file, text, uid)?;
        self.record_event(events::request_event(file, text, uid, &reply));
        Ok(reply)
    }

    fn dispatch(&self, file: &str, text: &str, uid: u32) -> Result<String, ControlError> {
        match file {
            "instance" => self.instance_request(control::parse_instance(text)?),
            "policy" => self.policy_request(policy_control::parse_policy(text)?),
            "snapshot" => {
                let req = control::parse_snapshot(text)?;
                if self.instance(&req.instance).is_none() {
                    return Err(ControlError::not_found(format!(
                        "no instance `{}`: add it first with `add name={} path=/...` in ctl/instance",
                        req.instance, req.instance
                    )));
                }
                let instance = req.instance.clone();
                self.enqueue_as(
                    Some(uid),
                    "snapshot",
                    Some(instance),
                    serde_json::to_value(&req).unwrap_or_default(),
                )
            }
            "restore" => {
                let req = control::parse_restore(text)?;
                self.refresh_if_older(Duration::from_secs(1));
                if self.find_point(&req.instance, &req.point).is_none() {
                    return Err(ControlError::not_found(format!(
                        "instance `{}` has no point `{}`",
                        req.instance, req.point
                    )));
                }
                if let Some(t) = &req.target {
                    if !req.in_place && t.symlink_metadata().is_ok() && !is_empty_dir(t) {
                        return Err(ControlError::exists(format!(
                            "target {} exists and is not empty: pick a new or empty directory, or mode=in-place",
                            t.display()
                        )));
                    }
                }
                let instance = req.instance.clone();
                self.enqueue_as(
                    Some(uid),
                    "restore",
                    Some(instance),
                    serde_json::to_value(&req).unwrap_or_default(),
                )
            }
            "verify" => {
                let req = control::parse_verify(text)?;
                if let Some(i) = &req.instance {
                    if !self.instance_names().contains(i) {
                        return Err(ControlError::not_found(format!("no instance `{i}`")));
                    }
                    if let Some(p) = &req.point {
                        if self.find_point(i, p).is_none() {
                            return Err(ControlError::not_found(format!(
                                "instance `{i}` has no point `{p}`"
                            )));
                        }
                    }
                }
                let instance = req.instance.clone();
                self.enqueue_as(
                    Some(uid),
                    "verify",
                    instance,
                    serde_json::to_value(&req).unwrap_or_default(),
                )
            }
            "forget" => {
                let req = control::parse_forget(text)?;
                self.refresh_if_older(Duration::from_secs(1));
                let mut names = Vec::new();
                for p in &req.points {
                    let Some(found) = self.find_point(&req.instance, p) else {
                        return Err(ControlError::not_found(format!(
                            "instance `{}` has no point `{p}`",
                            req.instance
                        )));
                    };
                    if found.manifest.kind == crate::model::PointKind::Manual && !req.manual {
                        return Err(ControlError {
                            errno: libc::EPERM,
                            message: format!(
                                "point {}/{} is a manual point: add manual=true to forget it",
                                req.instance, found.manifest.name
                            ),
                        });
                    }
                    names.push(found.manifest.name);
                }
                self.check_write_once(&req.instance, &names)?;
                let instance = req.instance.clone();
                self.enqueue_as(
                    Some(uid),
                    "forget",
                    Some(instance),
                    serde_json::to_value(&req).unwrap_or_default(),
                )
            }
            "prune" => {
                let req = control::parse_prune(text)?;
                self.enqueue_as(
                    Some(uid),
                    "prune",
                    None,
                    serde_json::to_value(&req).unwrap_or_default(),
                )
            }
            "cancel" => {
                let id = control::parse_cancel(text)?;
                let st = self.lock();
                match st.live.get(&id) {
                    Some(job) => {
                        job.cancel.cancel();
                        self.inner.wake.notify_all();
                        Ok(format!("cancelling job={id}\n"))
                    }
                    None => Err(ControlError::not_found(format!(
                        "job {id} is not queued or running"
                    ))),
                }
            }
            other => Err(ControlError::not_found(format!(
                "no control file `{other}`"
            ))),
        }
    }

    fn find_point(&self, instance: &str, point: &str) -> Option<PointRecord> {
        self.inner
            .catalog
            .find_point(instance, point)
            .ok()
            .flatten()
    }

    fn instance_request(&self, req: requests::InstanceRequest) -> Result<String, ControlError> {
        let internal = |e: crate::repo::RepoError| {
            // The writer sees EIO; the mount's log keeps the cause.
            tracing::error!("ctl/instance: repository: {e}");
            ControlError {
                errno: libc::EIO,
                message: format!("repository: {e}"),
            }
        };
        match req {
            requests::InstanceRequest::Add {
                name,
                paths,
                excludes,
            } => {
                for p in &paths {
                    if p.symlink_metadata().is_err() {
                        return Err(ControlError::not_found(format!(
                            "path {} does not exist",
                            p.display()
                        )));
                    }
                }
                let config = InstanceConfig {
                    version: crate::model::instance::INSTANCE_VERSION,
                    name: name.clone(),
                    paths: paths
                        .iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect(),
                    excludes,
                };
                let json = serde_json::to_vec(&config).unwrap_or_default();
                self.inner
                    .repo
                    .replace_sealed(&InstanceConfig::object_key(&name), json)
                    .map_err(internal)?;
                let mut st = self.lock();
                st.instances.insert(name.clone(), config);
                st.generation += 1;
                Ok(format!("ok instance={name}\n"))
            }
            requests::InstanceRequest::Remove { name } => {
                if self.instance(&name).is_none() {
                    return Err(ControlError::not_found(format!("no instance `{name}`")));
                }
                self.inner
                    .repo
                    .store()
                    .delete(&InstanceConfig::object_key(&name))
                    .map_err(|e| internal(e.into()))?;
                let mut st = self.lock();
                st.instances.remove(&name);
                st.generation += 1;
                Ok(format!("ok removed instance={name} (its points stay)\n"))
            }
        }
    }

    /// Queues a job asked for by `uid` (`None`: the daemon on its own, `uid` null in its
    /// events); returns the reply `job=ID`.
    fn enqueue_as(
        &self,
        uid: Option<u32>,
        kind: &'static str,
        instance: Option<String>,
        request: Value,
    ) -> Result<String, ControlError> {
        self.enqueue_job(uid, kind, instance, request)
            .map(|id| format!("job={id}\n"))
    }

    /// Queues a job and returns its id.
    fn enqueue_job(
        &self,
        uid: Option<u32>,
        kind: &'static str,
        instance: Option<String>,
        request: Value,
    ) -> Result<u64, ControlError> {
        let created = self.now_ns();
        let id = self
            .inner
            .catalog
            .insert_job(
                kind,
                instance.as_deref(),
                "queued",
                &request.to_string(),
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

    fn persist(
        &self,
        job: &LiveJob,
        finished: Option<i64>,
        error: Option<&str>,
        result: Option<Value>,
    ) {
        let status = self.live_status(job, finished, error, result).to_string();
        let log = job.progress.log_text();
        let unsaved = &self.inner.unsaved;
        unsaved.flush(&self.inner.catalog);
        match self
            .inner
            .catalog
            .update_job(job.id, job.state.as_str(), &status, &log)
        {
            Ok(()) => unsaved.stored(job.id),
            Err(e) => {
                tracing::error!(job = job.id, "cannot store job status: {e}");
                let state = job.state.as_str().to_string();
                unsaved.keep(job.id, unsaved::UnsavedJob { state, status, log });
            }
        }
    }

    fn live_status(
        &self,
        job: &LiveJob,
        finished: Option<i64>,
        error: Option<&str>,
        result: Option<Value>,
    ) -> Value {
        let elapsed = job
            .started_ns
            .map(|s| (now_ns() - s) as f64 / 1e9)
            .unwrap_or(0.0);
        jobs::status_json(
            job.id,
            job.kind,
            job.instance.as_deref(),
            job.state,
            &job.request,
            job.progress.to_json(elapsed),
            job.created_ns,
            job.started_ns,
            finished,
            error,
            result,
        )
    }

    /// Job ids, oldest first.
    pub fn job_ids(&self) -> Vec<u64> {
        self.inner
            .catalog
            .jobs()
            .map(|rows| rows.into_iter().map(|r| r.id).collect())
            .unwrap_or_default()
    }

    /// `jobs/<id>/status` (pretty JSON with a trailing newline).
    pub fn job_status(&self, id: u64) -> Option<String> {
        let live = {
            let st = self.lock();
            st.live
                .get(&id)
                .map(|j| self.live_status(j, None, None, None))
        };
        let value = match live {
            Some(v) => v,
            None => match self.inner.unsaved.status(id) {
                Some(status) => serde_json::from_str(&status).ok()?,
                None => serde_json::from_str(&self.inner.catalog.job(id).ok()??.status).ok()?,
            },
        };
        Some(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ))
    }

    pub fn job_log(&self, id: u64) -> Option<String> {
        if let Some(j) = self.lock().live.get(&id) {
            return Some(j.progress.log_text());
        }
        if let Some(log) = self.inner.unsaved.log(id) {
            return Some(log);
        }
        self.inner.catalog.job(id).ok()?.map(|r| r.log)
    }

    /// Repository figures for `.cairn/stats`.
    pub fn stats_text(&self) -> String {
        let catalog = &self.inner.catalog;
        let packs = catalog.packs().unwrap_or_default();
        let (data_blobs, tree_blobs) = catalog.blob_counts().unwrap_or_default();
        let points = catalog.points(None).unwrap_or_default();
        let st = self.lock();
        let v = json!({
            "repository": self.inner.repo.store().description(),
            "repository_id": self.inner.repo.config().id,
            "format_version": self.inner.repo.config().version,
            "encrypted": self.inner.repo.config().encrypted(),
            "instances": self.instance_names_locked(&st),
            "points": points.len(),
            "packs": packs.iter().filter(|p| p.2).count(),
            "stored_bytes": packs.iter().filter(|p| p.2).map(|p| p.1).sum::<u64>(),
            "data_blobs": data_blobs,
            "tree_blobs": tree_blobs,
            "forgotten_points": catalog.forgotten(None).map(|f| f.len()).unwrap_or(0),
            "prune_plans_pending": catalog.plans().map(|p| p.len()).unwrap_or(0),
            "jobs_queued": st.live.values().filter(|j| j.state == JobState::Queued).count(),
            "jobs_running": st.live.values().filter(|j| j.state == JobState::Running).count(),
        });
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
    }

    fn instance_names_locked(&self, st: &State) -> Vec<String> {
        let mut names: BTreeSet<String> = st.instances.keys().cloned().collect();
        if let Ok(with_points) = self.inner.catalog.instances() {
            names.extend(with_points);
        }
        names.into_iter().collect()
    }
}

/// The sealed definition objects under `prefix` (instances, policies), decoded by
/// `decode(name, json)`; one that does not decode is skipped with a warning.
fn definitions<T, E: std::fmt::Display>(
    repo: &Repository,
    prefix: &str,
    decode: impl Fn(&str, &[u8]) -> Result<T, E>,
) -> crate::repo::Result<Vec<T>> {
    let mut out = Vec::new();
    for obj in repo.store().list(prefix)? {
        let Some(name) = obj.key.strip_prefix(prefix) else {
            continue;
        };
        match repo
            .get_sealed(&obj.key)
            .map_err(|e| e.to_string())
            .and_then(|json| decode(name, &json).map_err(|e| e.to_string()))
        {
            Ok(v) => out.push(v),
            Err(e) => tracing::warn!(key = %obj.key, "ignoring {prefix} object: {e}"),
        }
    }
    Ok(out)
}

fn is_empty_dir(p: &std::path::Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}
