//! Streaming into a job's input through a mount (`cairn snapshot I --stdin NAME`):
//! the bytes go into `jobs/<id>/input`, and only once the source reached its end without
//! an error is the end marker written into `ctl/stdin` (docs/CONTROL.md, "Streams
//! through the mount"). A `cairn` that fails or is killed before sends no marker, so the
//! job fails instead of keeping a truncated stream.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};

use anyhow::{Context, Result};

use super::control::Client;
use super::request::Request;

/// One write into the input (the mount's largest write).
const WRITE: usize = 1 << 20;

impl Client {
    /// Copies `source` into job `id`'s input, then sends the end marker. A read error of
    /// `source` sends no marker and is the error. A write that fails means the job
    /// stopped reading (it failed or was cancelled): that is no error here, the job's
    /// status says why.
    pub fn stream_input(&self, id: u64, mut source: impl Read) -> Result<()> {
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
            if input.write_all(&buf[..n]).is_err() {
                return Ok(());
            }
            total += n as u64;
        }
        drop(input);
        let end = Request::verb("end")
            .kv("job", id.to_string())
            .kv("bytes", total.to_string());
        self.request("stdin", &end)?;
        Ok(())
    }
}
