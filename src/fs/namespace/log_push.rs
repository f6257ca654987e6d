//! `ctl/log` in the mount: requests (`archive instance=NAME`) and pushes, whose bytes
//! follow the `push ...` line through the same handle (docs/CONTROL.md, "Pushing
//! logs"). The service checks who may do what (`service::log_push`); this file keeps
//! the upload on the handle and lets the instances' log pushers reach `ctl/log`: when
//! an instance names pushers, `.cairn` and `ctl/` become traversable (0711, not
//! listable) and `ctl/log` 0666, and opening it for writing is still refused to every
//! user who is not the owner, root or a pusher.

use std::sync::Mutex;

use super::control_reply::Reply;
use super::Namespace;
use crate::service::{ControlError, LogStep, LogUpload};
use crate::sync::LockExt;

impl Namespace {
    /// The mount's owner or root.
    pub(super) fn is_owner(&self, uid: u32) -> bool {
        uid == self.owner_uid || uid == 0
    }

    /// Whether `uid` (not the owner) may open the control file `file` for writing: a
    /// log pusher, `ctl/log`.
    pub(super) fn may_open_log(&self, file: &str, uid: u32) -> bool {
        file == "log" && self.service.is_log_pusher(uid)
    }

    /// The modes of `.cairn` and `ctl/` for other users, and of `ctl/log`, when an
    /// instance names log pushers: (search, `ctl/log` read-write); else `None`.
    pub(super) fn pusher_modes(&self) -> Option<(u16, u16)> {
        self.service.has_log_pushers().then_some((0o711, 0o666))
    }

    /// A write into `ctl/log`: a request line, or the next bytes of the push the handle
    /// carries. The write that completes a push returns once it is durable.
    pub(super) fn log_write(
        &self,
        reply: &Mutex<Reply>,
        upload: &Mutex<Option<LogUpload>>,
        offset: u64,
        data: &[u8],
        uid: u32,
    ) -> Result<usize, ControlError> {
        let mut up = upload.locked();
        let result = match up.as_mut() {
            Some(u) => match self.service.log_upload(u, offset, data) {
                Ok(None) => return Ok(data.len()),
                Ok(Some(text)) => {
                    *up = None;
                    Ok(text)
                }
                Err(e) => {
                    *up = None;
                    Err(e)
                }
            },
            None => match std::str::from_utf8(data) {
                Ok(text) => {
                    match self
                        .service
                        .log_request(text, offset, uid, self.is_owner(uid))
                    {
                        Ok(LogStep::Reply(text)) => Ok(text),
                        Ok(LogStep::Upload(u)) => {
                            *up = Some(u);
                            Ok("ready: write the bytes through this handle\n".to_string())
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(_) => Err(ControlError::invalid("a request must be UTF-8 text")),
            },
        };
        let mut r = reply.locked();
        r.answer(result, offset, data.len())
    }
}
