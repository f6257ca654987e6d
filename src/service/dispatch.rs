//! Requests into `ctl/<file>`: each is parsed, checked against what exists (instances,
//! points, restore targets, write-once) and handled: a job queued, an instance or a
//! policy changed, a job cancelled. An accepted request is an event, named by the
//! subject its handling found; a refused one changes nothing and records nothing.

use std::time::Duration;

use crate::catalog::PointRecord;
use crate::model::instance::check_stream_names;
use crate::model::InstanceConfig;

use super::check_control;
use super::control;
use super::daemon::Service;
use super::events::request_event;
use super::grammar::ControlError;
use super::jobs::JobKind;
use super::log_control::{self, LogRequest};
use super::policy_control;
use super::requests::{InstanceRequest, Subject};

/// The control files of `.cairn/ctl/`.
pub const CONTROL_FILES: &[&str] = &[
    "instance", "snapshot", "restore", "verify", "cancel", "forget", "prune", "policy", "stdin",
    "log", "repair", "check", "copy",
];

impl Service {
    /// Handles one write into `ctl/<file>` by `uid`; returns the reply text. An accepted
    /// request is an event; a refused one changes nothing and records nothing.
    pub fn submit(&self, file: &str, text: &str, uid: u32) -> Result<String, ControlError> {
        let events = &self.inner.events;
        let _order = events.ordered();
        let (reply, subject) = self.dispatch(file, text, uid)?;
        // A query changes nothing: no event.
        if subject.verb != Some("range") {
            events.record(request_event(file, subject, text, uid, &reply));
        }
        Ok(reply)
    }

    /// Handles a request; returns the reply and what the request is about.
    fn dispatch(
        &self,
        file: &str,
        text: &str,
        uid: u32,
    ) -> Result<(String, Subject), ControlError> {
        match file {
            "instance" => {
                let req = control::parse_instance(text)?;
                let subject = Subject {
                    verb: Some(req.verb()),
                    instance: Some(req.name().to_string()),
                    ..Subject::default()
                };
                Ok((self.instance_request(req)?, subject))
            }
            "policy" => {
                let req = policy_control::parse_policy(text)?;
                let mut subject = Subject {
                    verb: Some(req.verb()),
                    instance: req.instance().map(str::to_string),
                    ..Subject::default()
                };
                let reply = self.policy_request(req)?;
                subject.job = job_of(&reply);
                Ok((reply, subject))
            }
            "snapshot" => {
                let req = control::parse_snapshot(text)?;
                let Some(config) = self.instance(&req.instance) else {
                    return Err(ControlError::not_found(format!(
                        "no instance `{}`: add it first with `add name={} path=/...` in ctl/instance",
                        req.instance, req.instance
                    )));
                };
                if let (None, Some(why)) = (&req.stdin, config.needs_stdin()) {
                    return Err(ControlError::invalid(why));
                }
                if let Some(name) = &req.stdin {
                    let names = config.commands.iter().map(|c| c.name.as_str());
                    let paths: Vec<_> = config.paths.iter().map(Into::into).collect();
                    check_stream_names(names.chain([name.as_str()]), &paths)
                        .map_err(ControlError::invalid)?;
                }
                let subject = Subject::of(Some(&req.instance), None);
                let (reply, subject) = self.enqueue_as(uid, JobKind::Snapshot, subject, &req)?;
                if let (Some(job), Some(_)) = (subject.job, &req.stdin) {
                    self.inner.inputs.add(job);
                }
                Ok((reply, subject))
            }
            "restore" => {
                let req = control::parse_restore(text)?;
                self.refresh_now_if_older(Duration::from_secs(1));
                if req.at_ns.is_some() && self.instance(&req.instance).is_none() {
                    return Err(ControlError::not_found(format!(
                        "no instance `{}`: a restore at a time needs its definition (its log files)",
                        req.instance
                    )));
                }
                if req.at_ns.is_none() && self.find_point(&req.instance, &req.point).is_none() {
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
                let point = Some(req.point.as_str()).filter(|p| !p.is_empty());
                let subject = Subject::of(Some(&req.instance), point);
                self.enqueue_as(uid, JobKind::Restore, subject, &req)
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
                let subject = Subject::of(req.instance.as_deref(), req.point.as_deref());
                self.enqueue_as(uid, JobKind::Verify, subject, &req)
            }
            "check" => {
                let req = check_control::parse_check(text)?;
                self.refresh_now_if_older(Duration::from_secs(1));
                for p in std::iter::once(&req.point).chain(&req.other) {
                    if self.find_point(&req.instance, p).is_none() {
                        return Err(ControlError::not_found(format!(
                            "instance `{}` has no point `{p}`",
                            req.instance
                        )));
                    }
                }
                let subject = Subject::of(Some(&req.instance), Some(&req.point));
                self.enqueue_as(uid, JobKind::Check, subject, &req)
            }
            "copy" => {
                let req = super::copy_control::parse_copy(text)?;
                if let Some(i) = &req.instance {
                    if !self.instance_names().contains(i) {
                        return Err(ControlError::not_found(format!("no instance `{i}`")));
                    }
                }
                let subject = Subject::of(req.instance.as_deref(), None);
                self.enqueue_as(uid, JobKind::Copy, subject, &req)
            }
            "forget" => {
                let req = control::parse_forget(text)?;
                self.refresh_now_if_older(Duration::from_secs(1));
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
                let first = req.points.first().map(String::as_str);
                let subject = Subject::of(Some(&req.instance), first);
                self.enqueue_as(uid, JobKind::Forget, subject, &req)
            }
            "prune" => {
                let req = control::parse_prune(text)?;
                self.enqueue_as(uid, JobKind::Prune, Subject::default(), &req)
            }
            "repair" => {
                let req = control::parse_repair(text)?;
                self.enqueue_as(uid, JobKind::Repair, Subject::default(), &req)
            }
            "log" => match log_control::parse_log(text)? {
                LogRequest::Archive { instance } => {
                    let reply = self.archive_logs_now(&instance)?;
                    let subject = Subject {
                        verb: Some("archive"),
                        instance: Some(instance),
                        ..Subject::default()
                    };
                    Ok((reply, subject))
                }
                LogRequest::Range { instance } => {
                    let reply = self.restorable_json(&instance)?;
                    let subject = Subject {
                        verb: Some("range"),
                        instance: Some(instance),
                        ..Subject::default()
                    };
                    Ok((reply, subject))
                }
                LogRequest::Push { .. } => Err(ControlError::invalid(
                    "a push carries the file's bytes after the request: write both through \
                     one handle of the mount's ctl/log (`cairn log push INSTANCE FILE`)",
                )),
            },
            "stdin" => {
                let (job, bytes) = control::parse_stdin_end(text)?;
                let subject = Subject {
                    verb: Some("end"),
                    job: Some(job),
                    ..Subject::default()
                };
                Ok((self.inner.inputs.end(job, bytes)?, subject))
            }
            "cancel" => {
                let id = control::parse_cancel(text)?;
                let st = self.lock();
                match st.live.get(&id) {
                    Some(job) => {
                        job.cancel.cancel();
                        self.inner.wake.notify_all();
                        let subject = Subject {
                            job: Some(id),
                            ..Subject::default()
                        };
                        Ok((format!("cancelling job={id}\n"), subject))
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

    fn instance_request(&self, req: InstanceRequest) -> Result<String, ControlError> {
        let internal = |e: crate::repo::RepoError| {
            // The writer sees EIO; the mount's log keeps the cause.
            tracing::error!("ctl/instance: repository: {e}");
            ControlError {
                errno: libc::EIO,
                message: format!("repository: {e}"),
            }
        };
        match req {
            InstanceRequest::Add {
                name,
                paths,
                excludes,
                hooks,
                commands,
                logs,
            } => {
                for p in &paths {
                    if p.symlink_metadata().is_err() {
                        return Err(ControlError::not_found(format!(
                            "path {} does not exist",
                            p.display()
                        )));
                    }
                }
                let mut config = InstanceConfig {
                    version: crate::model::instance::INSTANCE_VERSION,
                    name: name.clone(),
                    paths: paths
                        .iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect(),
                    excludes,
                    hooks,
                    commands,
                    logs: *logs,
                };
                config.version = config.version_needed();
                if let (true, Some(p)) = (config.is_stdin_only(), self.bound_policy(&name)) {
                    return Err(ControlError::invalid(format!(
                        "instance `{name}` is bound to policy `{}`, and without a path or a \
                         command its scheduled snapshots would have nothing to read (it would \
                         be fed by --stdin only): unbind it first",
                        p.name
                    )));
                }
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
            InstanceRequest::Remove { name } => {
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
}

/// The job a reply names: `job=ID` (a reply naming several jobs names none).
fn job_of(reply: &str) -> Option<u64> {
    reply.trim().strip_prefix("job=")?.parse().ok()
}

fn is_empty_dir(p: &std::path::Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}
