//! A check job (`ctl/check`): the engine's check of a point against the live data, or its
//! diff of two points (`other=`); the differences go to a file beside the catalog,
//! `check-differences/<id>.jsonl`, that the mount shows as `jobs/<id>/differences` (JSON
//! lines), and the job's result is the report without them (the counts and figures).
//! Each check also drops the files of jobs the history no longer has.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::engine::{self, CancelToken, CheckRequest, DiffRequest, EngineError};

use super::daemon::Service;
use super::job_hooks::JobError;
use super::job_progress::JobProgress;
use super::jobs::JobKind;
use super::requests::CheckControl;

/// The directory beside the catalog holding the differences of check jobs.
const DIFFERENCES_DIR: &str = "check-differences";

impl Service {
    pub(super) fn run_check(
        &self,
        id: u64,
        req: &CheckControl,
        progress: &Arc<JobProgress>,
        cancel: &CancelToken,
    ) -> Result<Value, JobError> {
        let (repo, catalog) = (&self.inner.repo, &self.inner.catalog);
        let report = match &req.other {
            Some(other) => {
                let d = DiffRequest {
                    instance: req.instance.clone(),
                    point_a: req.point.clone(),
                    point_b: other.clone(),
                };
                engine::diff(repo, catalog, &d, progress.as_ref(), cancel)?
            }
            None => {
                let c = CheckRequest {
                    instance: req.instance.clone(),
                    point: req.point.clone(),
                    against: req.against.clone(),
                    threads: req.threads,
                    ignores: req.ignores.clone(),
                    checksum: req.checksum,
                    bandwidth_mb: req.bandwidth,
                };
                engine::check(repo, catalog, &c, progress.as_ref(), cancel)?
            }
        };
        self.sweep_differences();
        let path = self.differences_path(id);
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(&path);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            std::fs::write(&path, report.differences_jsonl())
        };
        write().map_err(|e| EngineError::io("writing", &path, e))?;
        for e in &report.errors {
            progress.log_line(format!("error: {e}"));
        }
        let mut result = serde_json::to_value(&report).unwrap_or_default();
        if let Some(map) = result.as_object_mut() {
            map.remove("differences");
        }
        Ok(result)
    }

    fn differences_path(&self, id: u64) -> PathBuf {
        let catalog = self.inner.catalog.path();
        catalog
            .parent()
            .unwrap_or(catalog)
            .join(DIFFERENCES_DIR)
            .join(format!("{id}.jsonl"))
    }

    /// `jobs/<id>/differences` of a check job: its JSON lines once it ended, empty while
    /// it is queued or running; `None` for a job of another kind.
    pub fn job_differences(&self, id: u64) -> Option<String> {
        if let Ok(text) = std::fs::read_to_string(self.differences_path(id)) {
            return Some(text);
        }
        let st = self.lock();
        let live = st.live.get(&id)?;
        (live.kind == JobKind::Check).then(String::new)
    }

    /// Drops the differences of a deleted job (there may be none).
    pub(super) fn remove_differences(&self, id: u64) {
        let _ = std::fs::remove_file(self.differences_path(id));
    }

    /// Drops the differences of jobs the history no longer has (its retention forgot
    /// them), so that the files are bounded by the jobs kept.
    fn sweep_differences(&self) {
        let dir = self.differences_path(0);
        let Some(Ok(entries)) = dir.parent().map(std::fs::read_dir) else {
            return;
        };
        let kept: std::collections::HashSet<u64> = self.job_ids().into_iter().collect();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl")?.parse().ok());
            if id.is_some_and(|id| !kept.contains(&id)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
