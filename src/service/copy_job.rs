//! A copy job (`ctl/copy`): the mounted repository's points into the repository `to`,
//! opened by the daemon with the password in `to-password-file` (an unencrypted target
//! needs none), its catalog at its default place; the S3 settings are the daemon's
//! (`AWS_*`). The result is the engine's [`CopyOutcome`](crate::engine::CopyOutcome); a
//! verify that finds damage in the target fails the job.

use std::sync::Arc;

use serde_json::Value;

use crate::catalog::{default_path, Catalog};
use crate::engine::{self, CancelToken, CopyRequest, EngineError, InvalidRequest};
use crate::repo::Repository;
use crate::store::{Location, Store};
use crate::sync::LockExt;

use super::daemon::Service;
use super::job_hooks::JobError;
use super::job_progress::JobProgress;
use super::requests::CopyControl;

fn refused(message: String) -> JobError {
    EngineError::Invalid(InvalidRequest::Refused(message)).into()
}

impl Service {
    pub(super) fn run_copy(
        &self,
        req: &CopyControl,
        progress: &Arc<JobProgress>,
        cancel: &CancelToken,
    ) -> Result<Value, JobError> {
        let location = Location::parse(&req.to).map_err(|e| refused(e.to_string()))?;
        let store = Store::open(&location).map_err(|e| EngineError::Repo(e.into()))?;
        let password = match &req.to_password_file {
            None => self.inner.password.locked().clone(),
            Some(path) => {
                let mut bytes = std::fs::read(path)
                    .map_err(|e| EngineError::io("reading the password file", path, e))?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                Some(bytes)
            }
        };
        let target = Repository::open(store, password.as_deref())
            .map_err(|e| refused(format!("cannot open the repository at {}: {e}", req.to)))?;
        let source = &self.inner.repo;
        if target.config().id == source.config().id {
            return Err(refused(format!(
                "{} is the mounted repository: nothing to copy",
                req.to
            )));
        }
        let target_catalog =
            Arc::new(Catalog::open(&default_path(&target.config().id)).map_err(EngineError::from)?);
        let c = CopyRequest {
            instance: req.instance.clone(),
            points: req.points.clone(),
            verify: req.verify,
            read_data: req.read_data,
        };
        let outcome = engine::copy(
            source,
            &self.inner.catalog,
            &target,
            &target_catalog,
            &c,
            progress.as_ref(),
            cancel,
        )?;
        if let Some(report) = outcome.verify.as_ref().filter(|r| !r.is_ok()) {
            let damaged: Vec<String> = report
                .damaged
                .iter()
                .map(|d| format!("{}/{}", d.instance, d.point))
                .chain(report.problems.iter().cloned())
                .collect();
            return Err(
                EngineError::Damage(format!("in {}: {}", req.to, damaged.join(", "))).into(),
            );
        }
        Ok(serde_json::to_value(&outcome).unwrap_or_default())
    }
}
