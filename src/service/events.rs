//! The audit trail: every accepted request and every outcome the daemon reaches is one
//! event, a JSON line in `.cairn/events` and a row of the catalog's events table.
//!
//! Every line has the same fields: `time` (RFC 3339, milliseconds, UTC), `kind` (one of
//! [`KINDS`]), `uid` (who asked; `null` for what the daemon did on its own, such as a
//! scheduled run), `instance`, `job`, `point` (`null` when the event is not about one),
//! `request` (the request line as written, or the job's stored request object for the
//! end of a job) and `outcome` (an object whose `ok` says whether it went well, with the
//! reply, or the job's `state`, `error` and `result`). Refused requests record nothing.
//!
//! [`EventLog`] records them (the service owns one); it also keeps their order: a
//! request's event always comes before the end of the job it started. The file's length
//! and pages come from `event_pages`, without building the whole text.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use crate::catalog::{Catalog, CatalogError};
use crate::sync::LockExt;

use super::clock::Clock;
use super::event_pages::{EventPages, EventsSnapshot};
use super::jobs::{JobKind, JobState};
use super::requests::Subject;

/// The kinds this daemon records. Code that records a new kind adds it here, so that
/// `cairn events --kind` knows it.
pub const KINDS: &[&str] = &[
    // Requests that act at once.
    "instance-added",
    "instance-removed",
    "policy-created",
    "policy-updated",
    "policy-deleted",
    "policy-enabled",
    "policy-disabled",
    "instance-bound",
    "instance-unbound",
    "policy-settings",
    // Requests that start a job (the outcome names the job).
    "snapshot-requested",
    "restore-requested",
    "verify-requested",
    "forget-requested",
    "prune-requested",
    "repair-requested",
    "check-requested",
    "policy-run-requested",
    "cancel-requested",
    // The end marker of a job's input (`ctl/stdin`).
    "stdin-ended",
    // Logs (`ctl/log`): a pass on request; a push (with the pusher's uid); a periodic
    // pass that stored something, or failed.
    "log-archive",
    "log-pushed",
    "log-archived",
    "log-archive-failed",
    // What the scheduler decided on its own.
    "policy-catch-up",
    "policy-slot-skipped",
    // Outcomes.
    "point-created",
    "point-restored",
    "point-deleted",
    "prune-completed",
    "prune-lease-taken-over",
    "repair-completed",
    "job-succeeded",
    "job-failed",
    "job-cancelled",
    "job-interrupted",
    "job-deleted",
];

/// One event to record; build it with the setters, record it with [`EventLog::record`].
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    pub uid: Option<u32>,
    pub instance: Option<String>,
    pub job: Option<u64>,
    pub point: Option<String>,
    pub request: Value,
    pub outcome: Value,
}

impl Event {
    pub fn new(kind: impl Into<String>) -> Event {
        Event {
            kind: kind.into(),
            uid: None,
            instance: None,
            job: None,
            point: None,
            request: Value::Null,
            outcome: json!({"ok": true}),
        }
    }

    pub fn uid(mut self, uid: Option<u32>) -> Event {
        self.uid = uid;
        self
    }

    pub fn instance(mut self, instance: impl Into<String>) -> Event {
        self.instance = Some(instance.into());
        self
    }

    pub fn job(mut self, job: u64) -> Event {
        self.job = Some(job);
        self
    }

    pub fn point(mut self, point: impl Into<String>) -> Event {
        self.point = Some(point.into());
        self
    }

    /// The request as written (a line) or as stored (a job's request object).
    pub fn request(mut self, request: impl Into<Value>) -> Event {
        self.request = request.into();
        self
    }

    /// The outcome: an object with `ok` and whatever else tells what happened.
    pub fn outcome(mut self, outcome: Value) -> Event {
        self.outcome = outcome;
        self
    }

    /// The JSON line of this event at `time_ns`.
    pub fn line(&self, time_ns: i64) -> Value {
        json!({
            "time": super::jobs::rfc3339(time_ns),
            "kind": self.kind,
            "uid": self.uid,
            "instance": self.instance,
            "job": self.job,
            "point": self.point,
            "request": self.request,
            "outcome": self.outcome,
        })
    }
}

/// A prune took the lease over from another holder (broken on request, or its holder
/// was gone or its time up): who held it and why it was taken.
pub fn lease_taken_over(taken: &crate::repo::TakenOver, request: Value) -> Event {
    Event::new("prune-lease-taken-over")
        .request(request)
        .outcome(json!({"ok": true, "reason": taken.reason, "previous": taken.previous}))
}

/// The kind of event an accepted request into `ctl/<file>` with `verb` records.
pub fn request_kind(file: &str, verb: Option<&str>) -> String {
    let kind = match (file, verb) {
        ("instance", Some("add")) => "instance-added",
        ("instance", Some("remove")) => "instance-removed",
        ("policy", Some("create")) => "policy-created",
        ("policy", Some("update")) => "policy-updated",
        ("policy", Some("delete")) => "policy-deleted",
        ("policy", Some("enable")) => "policy-enabled",
        ("policy", Some("disable")) => "policy-disabled",
        ("policy", Some("bind")) => "instance-bound",
        ("policy", Some("unbind")) => "instance-unbound",
        ("policy", Some("run-now")) => "policy-run-requested",
        ("cancel", _) => "cancel-requested",
        ("stdin", Some("end")) => "stdin-ended",
        (file, Some(verb)) => return format!("{file}-{verb}"),
        (file, None) => return format!("{file}-requested"),
    };
    kind.to_string()
}

/// The kind of event the end of a job of `job_kind` in `state` records.
pub fn job_end_kind(job_kind: JobKind, state: JobState) -> &'static str {
    match (job_kind, state) {
        (JobKind::Snapshot, JobState::Succeeded) => "point-created",
        (JobKind::Restore, JobState::Succeeded) => "point-restored",
        (JobKind::Prune, JobState::Succeeded) => "prune-completed",
        (JobKind::Repair, JobState::Succeeded) => "repair-completed",
        (_, JobState::Succeeded) => "job-succeeded",
        (_, JobState::Cancelled) => "job-cancelled",
        (_, JobState::Interrupted) => "job-interrupted",
        _ => "job-failed",
    }
}

/// The event of an accepted request into `ctl/<file>`, written as `text`: what it is
/// about is the `subject` the service found handling it.
pub fn request_event(file: &str, subject: Subject, text: &str, uid: u32, reply: &str) -> Event {
    let mut event = Event::new(request_kind(file, subject.verb))
        .uid(Some(uid))
        .request(text.trim_end())
        .outcome(json!({"ok": true, "reply": reply.trim_end()}));
    event.instance = subject.instance;
    event.point = subject.point;
    event.job = subject.job;
    event
}

/// How a job ended, for its event.
pub struct JobEnd<'a> {
    pub id: u64,
    pub kind: JobKind,
    pub instance: Option<&'a str>,
    pub uid: Option<u32>,
    pub request: Value,
    pub state: JobState,
    pub error: Option<&'a str>,
    pub result: Option<Value>,
}

/// The audit log: events go to the catalog, timed by the service's clock.
pub struct EventLog {
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    /// Held while a request is handled and its event recorded, and while a job's end is
    /// recorded: a request's event always comes before the end of the job it started.
    order: Mutex<()>,
    pages: EventPages,
}

impl EventLog {
    pub fn new(catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> EventLog {
        EventLog {
            pages: EventPages::new(catalog.clone()),
            catalog,
            clock,
            order: Mutex::new(()),
        }
    }

    /// Holds the order of events (see [`EventLog::order`]) while the guard lives.
    pub fn ordered(&self) -> MutexGuard<'_, ()> {
        self.order.locked()
    }

    /// Records an event now. Recording never fails the caller: a catalog that cannot
    /// store it is logged.
    pub fn record(&self, event: Event) {
        // Milliseconds, as the line shows them, so that the row's time and the line's
        // time select the same events.
        let time_ns = self.clock.now_ns() / 1_000_000 * 1_000_000;
        let line = event.line(time_ns).to_string();
        if let Err(e) = self.catalog.append_event(time_ns, &event.kind, &line) {
            tracing::error!(kind = %event.kind, "cannot record event: {e}");
        }
    }

    /// The audit log as JSON lines, in the order recorded.
    pub fn text(&self) -> String {
        let mut s = self.catalog.events().unwrap_or_default().join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// The text as it is now, to read in pages: its length costs only the events
    /// recorded since the last snapshot.
    pub fn snapshot(&self) -> Result<EventsSnapshot, CatalogError> {
        self.pages.snapshot()
    }

    /// Up to `size` bytes of `snapshot`'s text from `offset` (the bytes of
    /// [`text`](Self::text) then).
    pub fn read(
        &self,
        snapshot: &EventsSnapshot,
        offset: u64,
        size: usize,
    ) -> Result<Vec<u8>, CatalogError> {
        self.pages.read(snapshot, offset, size)
    }

    /// Records the event of a job's end: `point-created` / `point-restored` /
    /// `prune-completed` for a snapshot / restore / prune that succeeded, else
    /// `job-<state>`; after it, a `point-deleted` for every point the job forgot (a
    /// forget job, or the retention that follows a scheduled snapshot).
    pub fn job_end(&self, end: JobEnd<'_>) {
        let _order = self.ordered();
        let mut event = Event::new(job_end_kind(end.kind, end.state))
            .uid(end.uid)
            .job(end.id)
            .outcome(json!({
                "ok": end.state == JobState::Succeeded,
                "job_kind": end.kind.as_str(),
                "state": end.state.as_str(),
                "error": end.error,
                "result": end.result,
            }));
        event.point = end
            .result
            .as_ref()
            .and_then(|r| r["point"].as_str())
            .or_else(|| end.request["point"].as_str())
            .map(str::to_string);
        event.instance = end.instance.map(str::to_string);
        // The points a forget job, or a snapshot's retention, forgot: one event each.
        let (deleted, by) = match end.kind {
            JobKind::Forget => ("removed", "forget"),
            _ => ("expired", "retention"),
        };
        let deleted: Vec<String> = end
            .result
            .as_ref()
            .and_then(|r| r[deleted].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let event = event.request(end.request);
        let (instance, request) = (event.instance.clone(), event.request.clone());
        self.record(event);
        for point in deleted {
            let mut gone = Event::new("point-deleted")
                .uid(end.uid)
                .job(end.id)
                .point(point)
                .request(request.clone())
                .outcome(json!({"ok": true, "by": by}));
            gone.instance = instance.clone();
            self.record(gone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_a_request_or_job_records_is_known() {
        for (file, verbs) in [
            ("instance", &["add", "remove"][..]),
            (
                "policy",
                &[
                    "create", "update", "delete", "enable", "disable", "bind", "unbind", "run-now",
                    "settings",
                ],
            ),
            ("snapshot", &[]),
            ("restore", &[]),
            ("verify", &[]),
            ("forget", &[]),
            ("prune", &[]),
            ("repair", &[]),
            ("check", &[]),
            ("cancel", &[]),
        ] {
            let kinds: Vec<String> = if verbs.is_empty() {
                vec![request_kind(file, None)]
            } else {
                verbs.iter().map(|v| request_kind(file, Some(v))).collect()
            };
            for k in kinds {
                assert!(KINDS.contains(&k.as_str()), "{file}: {k}");
            }
        }
        for kind in [
            JobKind::Snapshot,
            JobKind::Restore,
            JobKind::Verify,
            JobKind::Forget,
            JobKind::Prune,
            JobKind::Repair,
            JobKind::Check,
        ] {
            for state in [
                JobState::Succeeded,
                JobState::Failed,
                JobState::Cancelled,
                JobState::Interrupted,
            ] {
                assert!(KINDS.contains(&job_end_kind(kind, state)));
            }
        }
    }

    #[test]
    fn a_request_event_names_what_it_is_about() {
        let about = |instance: Option<&str>, point: Option<&str>, job: Option<u64>| Subject {
            verb: None,
            instance: instance.map(str::to_string),
            point: point.map(str::to_string),
            job,
        };
        let added = Subject {
            verb: Some("add"),
            ..about(Some("db"), None, None)
        };
        let e = request_event(
            "instance",
            added,
            "add name=db path=/srv\n",
            1000,
            "ok instance=db\n",
        );
        assert_eq!(e.kind, "instance-added");
        assert_eq!(e.instance.as_deref(), Some("db"));
        assert_eq!(e.uid, Some(1000));
        assert_eq!(e.request, json!("add name=db path=/srv"));
        assert_eq!(e.outcome, json!({"ok": true, "reply": "ok instance=db"}));
        let e = request_event(
            "restore",
            about(Some("db"), Some("latest"), Some(7)),
            r#"{"instance":"db","point":"latest","target":"/t"}"#,
            0,
            "job=7\n",
        );
        assert_eq!(
            (e.kind.as_str(), e.job, e.point.as_deref()),
            ("restore-requested", Some(7), Some("latest"))
        );
        let e = request_event(
            "cancel",
            about(None, None, Some(3)),
            "job=3",
            0,
            "cancelling job=3\n",
        );
        assert_eq!((e.kind.as_str(), e.job), ("cancel-requested", Some(3)));
        let e = request_event("verify", about(None, None, Some(9)), "", 0, "job=9\n");
        assert_eq!((e.kind.as_str(), e.job), ("verify-requested", Some(9)));
        let line = e.line(1_795_000_000_123_000_000);
        assert_eq!(line["time"], "2026-11-18T11:06:40.123Z");
        for key in [
            "kind", "uid", "instance", "job", "point", "request", "outcome",
        ] {
            assert!(line.get(key).is_some(), "{key}");
        }
    }
}
