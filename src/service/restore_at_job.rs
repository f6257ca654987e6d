//! A restore job at a time (`restore instance=X at=TIME target=/abs`): the engine's
//! point-in-time restore (`engine::logs::restore_at`) of the instance's definition, told
//! when this daemon's last archive pass of it looked, inside the instance's restore hooks.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::engine::logs::{format_pitr_time, restore_at, PitrRequest};
use crate::engine::{CancelToken, EngineError, InvalidRequest};

use super::daemon::Service;
use super::job_hooks::JobError;
use super::job_progress::JobProgress;
use super::requests::RestoreControl;

impl Service {
    pub(super) fn run_restore_at(
        &self,
        id: u64,
        req: &RestoreControl,
        at_ns: i64,
        progress: &Arc<JobProgress>,
        cancel: &CancelToken,
    ) -> Result<Value, JobError> {
        let config = self.instance(&req.instance).ok_or_else(|| {
            EngineError::Invalid(InvalidRequest::Refused(format!(
                "instance `{}` was removed",
                req.instance
            )))
        })?;
        let target = req.target.clone().ok_or_else(|| {
            EngineError::Invalid(InvalidRequest::Refused("at= needs target=".into()))
        })?;
        let pitr = PitrRequest {
            config,
            at_ns,
            target,
            last_pass_ns: self.log_last_pass_ns(&req.instance),
        };
        let (repo, catalog) = (&self.inner.repo, &self.inner.catalog);
        let hooks = self
            .restore_hooks(req, id)
            .with("CAIRN_AT", format_pitr_time(at_ns));
        hooks.around(progress, cancel, || {
            let out = restore_at(repo, catalog, &pitr, progress.as_ref(), cancel)?;
            let r = &out.restore;
            Ok(json!({
                "at": format_pitr_time(out.at_ns), "point": r.point, "files": r.files,
                "bytes": r.bytes, "written": r.written, "logs": out.logs,
                "log_bytes": out.log_bytes, "extras": out.extras, "warnings": r.warnings,
            }))
        })
    }
}
