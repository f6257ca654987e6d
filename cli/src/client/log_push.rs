//! Pushing one log file through a mount (`cairn log push INSTANCE FILE`): the request
//! `push instance=.. name=.. bytes=N` and then the file's N bytes go through one handle
//! of `ctl/log`, so the bytes travel from this process (which may run as a log pusher)
//! to the daemon; the write that brings the last byte returns once the file is durable
//! in the repository (docs/CONTROL.md, "Pushing logs").

use std::io::Write;

use anyhow::Result;

use super::control::{refusal, reply_of, Client};
use super::request::Request;
use crate::failure::coded;

/// One write into `ctl/log` (the mount's largest write).
const WRITE: usize = 1 << 20;

impl Client {
    /// Pushes `data` as the log file `name` of `instance`; returns the daemon's reply.
    pub fn push_log(&self, instance: &str, name: &str, data: &[u8]) -> Result<String> {
        let req = Request::verb("push")
            .kv("instance", instance)
            .kv("name", name)
            .kv("bytes", data.len().to_string());
        let (mut f, reply) = self.request_keeping("log", &req)?;
        if data.is_empty() {
            return Ok(reply);
        }
        for chunk in data.chunks(WRITE) {
            if let Err(e) = f.write_all(chunk) {
                let reply = reply_of(&f);
                let hint = (e.raw_os_error() == Some(libc::EEXIST)).then(|| {
                    "a log file of that name is archived with other bytes: it is never replaced"
                        .to_string()
                });
                return Err(coded(
                    1,
                    format!(
                        "push of {name} into instance `{instance}` failed: {}",
                        refusal(&reply, &e)
                    ),
                    hint,
                ));
            }
        }
        Ok(reply_of(&f))
    }
}
