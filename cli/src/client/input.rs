//! Streaming into a job's input through a mount (`cairn snapshot I --stdin NAME`):
//! the bytes go into `jobs/<id>/input`, and only once the source reached its end without
//! an error is the end marker written into `ctl/stdin` (docs/CONTROL.md, "Streams
//! through the mount"). A `cairn` that fails or is killed before sends no marker, so the
//! job fails instead of keeping a truncated stream; one that is interrupted (Ctrl-C,
//! SIGTERM) stops streaming at once and leaves the job to be cancelled by the follow
//! that comes next.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use cairn::engine::CancelToken;

use super::control::Client;
use super::request::Request;
use crate::interrupt::Interrupts;

/// How often the wait for the stream looks at the interrupts.
const LOOK: Duration = Duration::from_millis(50);

/// One write into the input (the mount's largest write).
const WRITE: usize = 1 << 20;

impl Client {
    /// Streams stdin into job `id`'s input ([`stream_input`](Client::stream_input)) on a
    /// thread of its own, so that an interrupt is acted on at once even while a read of
    /// stdin or a write into the input waits: it returns `Ok` then, with no end marker
    /// sent, for [`finish_job`](super::finish_job) to cancel the job.
    pub fn stream_stdin(&self, interrupts: &Interrupts, id: u64) -> Result<()> {
        let _armed = interrupts.arm_saying("cancelling the job (interrupt again to stop waiting)");
        let token = interrupts.token().clone();
        let (client, stop) = (
            Client {
                dir: self.dir.clone(),
            },
            token.clone(),
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(client.stream_input(id, std::io::stdin(), &stop));
        });
        loop {
            match rx.recv_timeout(LOOK) {
                Ok(result) => return result,
                Err(RecvTimeoutError::Timeout) if token.is_cancelled() => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(anyhow!("streaming stdin stopped (no end marker sent)"))
                }
            }
        }
    }

    /// Copies `source` into job `id`'s input, then sends the end marker. A read error of
    /// `source` sends no marker and is the error. A write that fails means the job
    /// stopped reading (it failed or was cancelled): that is no error here, the job's
    /// status says why. Once `stop` is cancelled it stops, with no marker.
    fn stream_input(&self, id: u64, mut source: impl Read, stop: &CancelToken) -> Result<()> {
        let path = self.job_dir(id).join("input");
        let mut input = OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut buf = vec![0u8; WRITE];
        let mut total = 0u64;
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading stdin failed (no end marker sent)"),
            };
            if stop.is_cancelled() || input.write_all(&buf[..n]).is_err() {
                return Ok(());
            }
            total += n as u64;
        }
        drop(input);
        if stop.is_cancelled() {
            return Ok(());
        }
        let end = Request::verb("end")
            .kv("job", id.to_string())
            .kv("bytes", total.to_string());
        self.request("stdin", &end)?;
        Ok(())
    }
}
