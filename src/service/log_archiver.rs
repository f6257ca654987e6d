//! The daemon's log archiving: one [`LogArchiver`] per instance with log globs (or
//! pushes), loaded once from the catalog; a pass of each every `log-every` seconds by
//! the service's clock, on a thread of its own (off the job queue, so a long backup does
//! not delay it), and on request (`archive instance=NAME` in `ctl/log`). One lock per
//! instance: never two passes (or a pass and a push) of one instance at once.
//!
//! Passes are not jobs. A periodic pass that stored something is a `log-archived`
//! event, one that failed a `log-archive-failed` event (once per new error); an idle
//! pass records nothing. The time of each instance's last pass stays in memory
//! ([`Service::log_last_pass_ns`]), for restores at a time.

use std::sync::MutexGuard;
use std::time::Duration;

use serde_json::json;

use crate::engine::logs::{LogArchiver, PassOutcome};
use crate::sync::LockExt;

use super::daemon::Service;
use super::events::Event;
use super::grammar::ControlError;
use super::jobs::rfc3339;
use super::log_slots::LogSlot;

/// The longest the archiver thread sleeps between looks at the clock.
const LOG_TICK: Duration = Duration::from_secs(1);

/// Why a pass or a push failed, as a control reply.
pub(super) fn engine_refusal(e: crate::engine::EngineError) -> ControlError {
    use crate::engine::EngineError;
    match e {
        EngineError::Invalid(i) => ControlError {
            errno: libc::EEXIST,
            message: i.to_string(),
        },
        other => {
            tracing::error!("log archive: {other}");
            ControlError {
                errno: libc::EIO,
                message: other.to_string(),
            }
        }
    }
}

/// What a pass stored, as the reply and event outcome say it.
pub(super) fn outcome_json(o: &PassOutcome) -> serde_json::Value {
    json!({
        "ok": true,
        "records": o.records.len(),
        "files": o.files,
        "bytes": o.bytes,
        "time": rfc3339(o.time_ns),
        "warnings": o.warnings,
    })
}

impl Service {
    /// Runs `f` on the loaded archive of `instance`, under its lock.
    pub(super) fn with_log_archiver<T>(
        &self,
        instance: &str,
        f: impl FnOnce(&mut LogArchiver) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let slot = self.inner.logs.slot(instance);
        let mut guard = slot.locked();
        self.use_slot(instance, &mut guard, f)
    }

    fn use_slot<T>(
        &self,
        instance: &str,
        slot: &mut MutexGuard<'_, LogSlot>,
        f: impl FnOnce(&mut LogArchiver) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut archiver = match slot.archiver.take() {
            Some(a) => a,
            None => LogArchiver::load(&self.inner.catalog, instance).map_err(engine_refusal)?,
        };
        let out = f(&mut archiver);
        slot.archiver = Some(archiver);
        out
    }

    /// When the last pass (or push) of `instance` looked, as far as this daemon knows:
    /// its own last pass, or the newest record.
    pub fn log_last_pass_ns(&self, instance: &str) -> Option<i64> {
        let slot = self.inner.logs.slot(instance);
        let guard = slot.locked();
        match &guard.archiver {
            Some(a) => a.last_pass_ns(),
            None => LogArchiver::load(&self.inner.catalog, instance)
                .ok()
                .and_then(|a| a.last_pass_ns()),
        }
    }

    /// One pass over `instance`'s log globs now (`archive instance=NAME`): the reply
    /// says what it stored.
    pub(super) fn archive_logs_now(&self, instance: &str) -> Result<String, ControlError> {
        let Some(config) = self.instance(instance) else {
            return Err(ControlError::not_found(format!("no instance `{instance}`")));
        };
        if config.logs.globs.is_empty() {
            return Err(ControlError::invalid(format!(
                "instance `{instance}` has no log files (add it again with log=GLOB)"
            )));
        }
        let (repo, catalog) = (&self.inner.repo, &self.inner.catalog);
        let o = self.with_log_archiver(instance, |a| {
            a.pass(repo, catalog, &config.logs.globs)
                .map_err(engine_refusal)
        })?;
        Ok(pass_reply(instance, &o))
    }

    pub(super) fn run_log_archiver(&self) {
        loop {
            let wait = self.tick_logs();
            let st = self.lock();
            if st.shutdown {
                return;
            }
            let (st, _) = self
                .inner
                .wake
                .wait_timeout(st, wait)
                .unwrap_or_else(|p| p.into_inner());
            if st.shutdown {
                return;
            }
        }
    }

    /// Runs the passes due at the clock's now; returns how long until the next is due
    /// (at most a second). The daemon calls it in a loop; tests may call it directly.
    pub fn tick_logs(&self) -> Duration {
        let now = self.now_ns();
        let with_logs: Vec<(String, Vec<String>, u64)> = self
            .lock()
            .instances
            .values()
            .filter(|c| !c.logs.globs.is_empty())
            .map(|c| (c.name.clone(), c.logs.globs.clone(), c.logs.every_secs()))
            .collect();
        let mut next = now + LOG_TICK.as_nanos() as i64;
        for (instance, globs, every) in with_logs {
            let slot = self.inner.logs.slot(&instance);
            // A pass on request (or a push) holds it: this instance waits for the next tick.
            let Ok(mut guard) = slot.try_lock() else {
                continue;
            };
            if guard.next_due_ns > now {
                next = next.min(guard.next_due_ns);
                continue;
            }
            guard.next_due_ns = now + (every as i64) * 1_000_000_000;
            next = next.min(guard.next_due_ns);
            let (repo, catalog) = (&self.inner.repo, &self.inner.catalog);
            let done = self.use_slot(&instance, &mut guard, |a| {
                a.pass(repo, catalog, &globs).map_err(engine_refusal)
            });
            match done {
                Ok(o) => {
                    guard.last_error = None;
                    for w in &o.warnings {
                        tracing::warn!(%instance, "log pass: {w}");
                    }
                    if !o.records.is_empty() {
                        self.inner.events.record(
                            Event::new("log-archived")
                                .instance(instance.clone())
                                .outcome(outcome_json(&o)),
                        );
                        self.lock().generation += 1;
                    }
                }
                Err(e) if guard.last_error.as_deref() != Some(e.message.as_str()) => {
                    tracing::error!(%instance, "log pass failed: {}", e.message);
                    self.inner.events.record(
                        Event::new("log-archive-failed")
                            .instance(instance.clone())
                            .outcome(json!({"ok": false, "error": e.message})),
                    );
                    guard.last_error = Some(e.message);
                }
                Err(_) => {}
            }
        }
        let ns = (next - self.now_ns()).clamp(1_000_000, LOG_TICK.as_nanos() as i64);
        Duration::from_nanos(ns as u64)
    }
}

/// `ok instance=X records=N files=F bytes=B time=T`, then a `warning:` line for each.
fn pass_reply(instance: &str, o: &PassOutcome) -> String {
    let mut s = format!(
        "ok instance={instance} records={} files={} bytes={} time={}\n",
        o.records.len(),
        o.files,
        o.bytes,
        rfc3339(o.time_ns)
    );
    for w in &o.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}
