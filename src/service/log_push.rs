//! Pushes through the mount (`push instance=NAME name=FILE bytes=N` in `ctl/log`,
//! PostgreSQL's `archive_command`): the bytes come from the writer, never from a path
//! the daemon would open on its behalf. The request line opens a [`LogUpload`] on the
//! writer's handle; the next N bytes written through that handle fill it, and the write
//! that brings the last of them stores the file whole and returns once it is durable
//! (or fails: the same name archived with other bytes is `EEXIST`). Every push that
//! reached its end is a `log-pushed` event with the writer's uid.
//!
//! Who may push: the mount's owner (and root), and the users an instance names in
//! `log-pushers=`, for that instance only; those users may do nothing else.

use serde_json::json;

use crate::model::InstanceConfig;

use super::daemon::Service;
use super::events::Event;
use super::grammar::ControlError;
use super::log_archiver::{engine_refusal, outcome_json};
use super::log_control::{parse_log, resolve_user, LogRequest};

/// A push under way on one handle: the file's bytes as they arrive.
#[derive(Debug)]
pub struct LogUpload {
    instance: String,
    name: String,
    bytes: u64,
    uid: u32,
    /// The handle offset the next write must have.
    next_offset: u64,
    data: Vec<u8>,
}

/// What a write into `ctl/log` became.
#[derive(Debug)]
pub enum LogStep {
    /// A finished request: its reply.
    Reply(String),
    /// A push whose bytes are to follow on the same handle.
    Upload(LogUpload),
}

fn denied(message: String) -> ControlError {
    ControlError {
        errno: libc::EACCES,
        message,
    }
}

/// Whether `config` lets `uid` push its logs.
fn lets_push(config: &InstanceConfig, uid: u32) -> bool {
    config
        .logs
        .pushers
        .iter()
        .any(|u| resolve_user(u) == Ok(uid))
}

impl Service {
    /// Whether some instance names `uid` among its log pushers (so it may open `ctl/log`).
    pub fn is_log_pusher(&self, uid: u32) -> bool {
        self.lock().instances.values().any(|c| lets_push(c, uid))
    }

    /// Whether an instance names log pushers (the mount then lets other users reach `ctl/log`).
    pub fn has_log_pushers(&self) -> bool {
        self.lock()
            .instances
            .values()
            .any(|c| !c.logs.pushers.is_empty())
    }

    /// A request written into `ctl/log` at `offset` by `uid`; `owner` says whether the
    /// writer is the mount's owner (or root). A pusher may only push its instances' logs.
    pub fn log_request(
        &self,
        text: &str,
        offset: u64,
        uid: u32,
        owner: bool,
    ) -> Result<LogStep, ControlError> {
        let req = parse_log(text)?;
        let instance = req.instance().to_string();
        let config = self
            .instance(&instance)
            .ok_or_else(|| ControlError::not_found(format!("no instance `{instance}`")))?;
        let allowed = owner || (matches!(req, LogRequest::Push { .. }) && lets_push(&config, uid));
        if !allowed {
            return Err(denied(format!(
                "uid {uid} may not {} the logs of instance `{instance}` (only the mount's owner, \
                 and for pushes the users in its log-pushers=)",
                req.verb()
            )));
        }
        match req {
            LogRequest::Archive { .. } | LogRequest::Range { .. } => {
                self.submit("log", text, uid).map(LogStep::Reply)
            }
            LogRequest::Push { name, bytes, .. } => {
                let mut upload = LogUpload {
                    instance,
                    name,
                    bytes,
                    uid,
                    next_offset: offset + text.len() as u64,
                    data: Vec::with_capacity(bytes.min(64 << 20) as usize),
                };
                if bytes == 0 {
                    return self.finish_push(&mut upload).map(LogStep::Reply);
                }
                Ok(LogStep::Upload(upload))
            }
        }
    }

    /// Bytes written at `offset` into the handle of `upload`. Returns the reply once the
    /// last byte arrived and the file is durable; `None` while more is to come.
    pub fn log_upload(
        &self,
        upload: &mut LogUpload,
        offset: u64,
        data: &[u8],
    ) -> Result<Option<String>, ControlError> {
        if offset != upload.next_offset {
            return Err(ControlError::invalid(format!(
                "push of {}: a write at offset {offset}, expected {} (write the bytes in order)",
                upload.name, upload.next_offset
            )));
        }
        let left = upload.bytes - upload.data.len() as u64;
        if data.len() as u64 > left {
            return Err(ControlError::invalid(format!(
                "push of {}: more than the {} bytes announced",
                upload.name, upload.bytes
            )));
        }
        upload.data.extend_from_slice(data);
        upload.next_offset += data.len() as u64;
        if (upload.data.len() as u64) < upload.bytes {
            return Ok(None);
        }
        self.finish_push(upload).map(Some)
    }

    /// Stores the whole file of `upload`; records the push's event either way.
    fn finish_push(&self, upload: &mut LogUpload) -> Result<String, ControlError> {
        let data = std::mem::take(&mut upload.data);
        let (repo, catalog) = (&self.inner.repo, &self.inner.catalog);
        let (instance, name) = (upload.instance.clone(), upload.name.clone());
        let done = self.with_log_archiver(&instance, |a| {
            a.push(repo, catalog, &name, &data[..])
                .map_err(engine_refusal)
        });
        let request =
            json!({"op": "push", "instance": instance, "name": name, "bytes": upload.bytes});
        let event = Event::new("log-pushed")
            .uid(Some(upload.uid))
            .instance(instance.clone())
            .request(request);
        match done {
            Ok(o) => {
                let mut outcome = outcome_json(&o);
                outcome["name"] = json!(name);
                outcome["already_archived"] = json!(o.records.is_empty());
                self.inner.events.record(event.outcome(outcome));
                self.lock().generation += 1;
                let state = if o.records.is_empty() {
                    "already archived with these bytes"
                } else {
                    "stored"
                };
                Ok(format!(
                    "ok instance={instance} name={name} bytes={} ({state}, durable)\n",
                    upload.bytes
                ))
            }
            Err(e) => {
                self.inner
                    .events
                    .record(event.outcome(json!({"ok": false, "name": name, "error": e.message})));
                Err(e)
            }
        }
    }
}
