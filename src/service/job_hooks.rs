//! The hooks around a job (docs/CONTROL.md, "Hooks"): the first hook (`before`,
//! `restore-before`) runs, and its failure is the job's, without the job's work; then
//! the work; then the last hook (`after`, `restore-after`), whenever the first ran or
//! there is none, told the outcome in `CAIRN_RESULT`. The last hook's failure is a
//! warning, in the job's log and in `result.warnings`; a backup's `after` runs before
//! its point is written when the data is in, so that its failure is also a warning on
//! the point. Also [`JobError`], what a job fails with: the engine's error or a hook's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::engine::{BeforeCommit, CancelToken, EngineError, Progress};
use crate::model::instance::Hooks;

use super::hooks::{self, Hook, HookError, KILL_GRACE};
use super::job_progress::JobProgress;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Hook(#[from] HookError),
}

impl JobError {
    /// A cancel (on request, or the daemon stopping) ended it.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            JobError::Engine(EngineError::Cancelled) | JobError::Hook(HookError::Cancelled { .. })
        )
    }
}

/// The hooks of one job, and what their environment says about it.
#[derive(Debug, Clone, Default)]
pub struct JobHooks {
    first: Option<(&'static str, String)>,
    last: Option<(&'static str, String)>,
    env: Vec<(&'static str, String)>,
    timeout: Duration,
}

impl JobHooks {
    /// `before` and `after` of a snapshot job `job` of `instance`.
    pub fn snapshot(hooks: &Hooks, instance: &str, job: u64) -> JobHooks {
        JobHooks::new(
            hooks,
            ("before", &hooks.before),
            ("after", &hooks.after),
            instance,
            job,
        )
    }

    /// `restore-before` and `restore-after` of a restore job `job` of `instance`.
    pub fn restore(hooks: &Hooks, instance: &str, job: u64) -> JobHooks {
        JobHooks::new(
            hooks,
            ("restore-before", &hooks.restore_before),
            ("restore-after", &hooks.restore_after),
            instance,
            job,
        )
    }

    fn new(
        hooks: &Hooks,
        first: (&'static str, &Option<String>),
        last: (&'static str, &Option<String>),
        instance: &str,
        job: u64,
    ) -> JobHooks {
        let named = |(name, cmd): (&'static str, &Option<String>)| cmd.clone().map(|c| (name, c));
        JobHooks {
            first: named(first),
            last: named(last),
            env: vec![
                ("CAIRN_INSTANCE", instance.to_string()),
                ("CAIRN_JOB", job.to_string()),
            ],
            timeout: Duration::from_secs(hooks.timeout_secs()),
        }
    }

    /// Whether there is a hook to run.
    pub fn any(&self) -> bool {
        self.first.is_some() || self.last.is_some()
    }

    /// Adds `key=value` to the hooks' environment.
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> JobHooks {
        self.env.push((key, value.into()));
        self
    }

    /// Runs the first hook, then `work` if it succeeded, then the last hook; returns
    /// what `work` returned, with the last hook's failure in `result.warnings`.
    pub fn around(
        &self,
        progress: &JobProgress,
        cancel: &CancelToken,
        work: impl FnOnce() -> Result<Value, JobError>,
    ) -> Result<Value, JobError> {
        let outcome = self.run_first(progress, cancel).and_then(|()| work());
        self.finish(outcome, progress, cancel)
    }

    /// [`around`](Self::around) for a backup: `work` gets the last hook as the
    /// [`BeforeCommit`] of its request, so that once the data is uploaded it runs (told
    /// `success`) before the point is written, and its failure is a warning on the point
    /// (the engine logs it and returns it in its warnings). When the backup fails before
    /// that, the last hook runs after it as in `around`. It runs once on every path.
    pub fn around_backup(
        &self,
        progress: &Arc<JobProgress>,
        cancel: &CancelToken,
        work: impl FnOnce(Option<BeforeCommit>) -> Result<Value, JobError>,
    ) -> Result<Value, JobError> {
        let ran = Arc::new(AtomicBool::new(false));
        let before_commit = self.last.is_some().then(|| {
            let (hooks, progress, cancel) = (self.clone(), progress.clone(), cancel.clone());
            let ran = ran.clone();
            BeforeCommit::new(move || {
                ran.store(true, Ordering::SeqCst);
                hooks
                    .run_last(true, &progress, &cancel)
                    .into_iter()
                    .collect()
            })
        });
        let outcome = self
            .run_first(progress, cancel)
            .and_then(|()| work(before_commit));
        if ran.load(Ordering::SeqCst) {
            return outcome;
        }
        self.finish(outcome, progress, cancel)
    }

    fn run_first(&self, progress: &JobProgress, cancel: &CancelToken) -> Result<(), JobError> {
        match &self.first {
            Some(first) => Ok(self.run(first, &[], progress, Some(cancel))?),
            None => Ok(()),
        }
    }

    /// Runs the last hook after `outcome`; its failure goes to the log and
    /// `result.warnings`.
    fn finish(
        &self,
        mut outcome: Result<Value, JobError>,
        progress: &JobProgress,
        cancel: &CancelToken,
    ) -> Result<Value, JobError> {
        if let Some(warning) = self.run_last(outcome.is_ok(), progress, cancel) {
            progress.log_line(format!("warning: {warning}"));
            if let Ok(value) = &mut outcome {
                add_warning(value, warning);
            }
        }
        outcome
    }

    /// Runs the last hook, if any, told `CAIRN_RESULT`; its failure, if it failed.
    fn run_last(
        &self,
        success: bool,
        progress: &JobProgress,
        cancel: &CancelToken,
    ) -> Option<String> {
        let last = self.last.as_ref()?;
        let result = if success { "success" } else { "failure" };
        // After a cancel the last hook still runs (to its timeout); a cancel while it
        // runs kills it.
        let watch = (!cancel.is_cancelled()).then_some(cancel);
        self.run(last, &[("CAIRN_RESULT", result.into())], progress, watch)
            .err()
            .map(|e| e.to_string())
    }

    fn run(
        &self,
        (name, command): &(&'static str, String),
        extra: &[(&'static str, String)],
        progress: &JobProgress,
        cancel: Option<&CancelToken>,
    ) -> Result<(), HookError> {
        let env: Vec<(&'static str, String)> = self.env.iter().chain(extra).cloned().collect();
        let hook = Hook {
            name,
            command,
            env: &env,
            timeout: self.timeout,
            grace: KILL_GRACE,
        };
        progress.phase(&format!("hook {name}"));
        let out = hooks::run(
            &hook,
            &|line| progress.log_line(format!("{name}: {line}")),
            cancel,
        );
        if out.is_ok() {
            progress.log_line(format!("hook {name}: ok"));
        }
        out
    }
}

/// Appends `warning` to the `warnings` list of a job's result object.
fn add_warning(result: &mut Value, warning: String) {
    let Some(obj) = result.as_object_mut() else {
        return;
    };
    match obj.get_mut("warnings") {
        Some(Value::Array(list)) => list.push(Value::String(warning)),
        _ => {
            obj.insert(
                "warnings".into(),
                Value::Array(vec![Value::String(warning)]),
            );
        }
    }
}
