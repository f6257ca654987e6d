//! A service on a manual clock, with one instance `db`, for scheduler tests: move the
//! clock, let the scheduler start what is due, wait for the jobs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn::service::{Clock, ManualClock, Service};

use super::repos::TestRepo;

/// ns since the epoch of an RFC 3339 time.
pub fn ns(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_nanos_opt()
        .unwrap()
}

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub service: Service,
    pub src: PathBuf,
}

impl Rig {
    /// A fresh local repository, its service on a clock at `start`, instance `db`.
    pub fn new(start: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("data.txt"), b"scheduled data\n").unwrap();
        let clock = Arc::new(ManualClock::new(ns(start)));
        let t = TestRepo::local(dir.path());
        let service = Service::start_with_clock(t.repo, t.catalog, 1, clock.clone()).unwrap();
        let rig = Rig {
            dir,
            clock,
            service,
            src,
        };
        rig.ok(
            "instance",
            &format!("add name=db path={}", rig.src.display()),
        );
        rig
    }

    /// The same repository and catalog in a new service (a daemon restart), clock kept.
    /// Call it when no job is running.
    pub fn restart(&mut self) {
        self.service.shutdown();
        let t = TestRepo::reopen_local(self.dir.path());
        self.service = Service::start_with_clock(t.repo, t.catalog, 1, self.clock.clone()).unwrap();
    }

    /// Submits a request that must be accepted; returns the reply.
    pub fn ok(&self, file: &str, text: &str) -> String {
        self.service
            .submit(file, text, 0)
            .unwrap_or_else(|e| panic!("{text}: {}", e.message))
    }

    /// Moves the clock to `until` in steps of `step`; at each step the scheduler starts
    /// what is due and every job ends before the clock moves on.
    pub fn run_until(&self, until: &str, step: Duration) {
        let until = ns(until);
        while self.clock.now_ns() < until {
            let next = (self.clock.now_ns() + step.as_nanos() as i64).min(until);
            self.clock.set(next);
            self.service.tick_scheduler();
            self.service.wait_idle();
        }
    }

    pub fn points(&self, instance: &str) -> Vec<String> {
        self.service
            .points(instance)
            .into_iter()
            .map(|p| p.manifest.name)
            .collect()
    }

    /// Stored status documents of every job, oldest first.
    pub fn jobs(&self) -> Vec<serde_json::Value> {
        self.service
            .job_ids()
            .into_iter()
            .map(|id| serde_json::from_str(&self.service.job_status(id).unwrap()).unwrap())
            .collect()
    }

    /// Event lines (parsed) whose kind is `kind`.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.service
            .events_text()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["kind"] == kind)
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.service.shutdown();
    }
}
