//! A snapshot's stream from outside the daemon (`stdin=NAME` in `ctl/snapshot`): the
//! job's input pipe. A writer streams bytes into `jobs/<id>/input` (the mount calls
//! [`JobInputs::write`], through [`Service::job_inputs`](super::Service::job_inputs)); they flow through a bounded channel of chunks into the
//! backup's reader, so memory stays bounded and writes wait while the backup is behind.
//! The stream is complete only when the input was closed (its last writing handle
//! released) *and* the end marker `end job=ID [bytes=N]` came into `ctl/stdin` with the
//! number of bytes written: a writer that dies closes its handle too, and without the
//! marker the job fails. The pipe lives from the request until the job ends.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::engine::{CancelToken, StreamSource};
use crate::sync::LockExt;

use super::grammar::ControlError;

/// Chunks in flight (each one write, at most the mount's 1 MiB `max_write`).
const CHUNKS: usize = 4;
/// How long a job waits for a writer to open its input, from the request.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long after the input is closed the end marker may come.
pub const END_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiting reader looks at the cancel token.
const TICK: Duration = Duration::from_millis(200);

/// What the writers and the end marker did so far.
#[derive(Default)]
struct PipeState {
    /// Bytes accepted (the offset the next write must have).
    written: u64,
    writers: usize,
    opened: bool,
    closed: bool,
    /// The end marker, with its byte count if it gave one.
    end: Option<Option<u64>>,
}

/// One job's input.
struct Pipe {
    tx: Mutex<Option<SyncSender<Vec<u8>>>>,
    rx: Mutex<Option<Receiver<Vec<u8>>>>,
    /// Serialises writes (offset check, send, count).
    order: Mutex<()>,
    state: Mutex<PipeState>,
    created: Instant,
}

/// The inputs of the jobs that have one, by job id.
#[derive(Default)]
pub struct JobInputs {
    pipes: Mutex<HashMap<u64, Arc<Pipe>>>,
    added: Condvar,
}

impl JobInputs {
    pub(super) fn add(&self, job: u64) {
        let (tx, rx) = sync_channel(CHUNKS);
        let pipe = Pipe {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            order: Mutex::new(()),
            state: Mutex::new(PipeState::default()),
            created: Instant::now(),
        };
        self.pipes.locked().insert(job, Arc::new(pipe));
        self.added.notify_all();
    }

    /// Drops a job's pipe: writes still waiting fail.
    pub(super) fn remove(&self, job: u64) {
        self.pipes.locked().remove(&job);
    }

    fn get(&self, job: u64) -> Option<Arc<Pipe>> {
        self.pipes.locked().get(&job).cloned()
    }

    /// The stream NAME of job `job`, reading its input. The job was queued before its
    /// pipe was added: wait a moment for it.
    pub(super) fn stream(
        &self,
        job: u64,
        name: &str,
        cancel: &CancelToken,
    ) -> Result<StreamSource, String> {
        let mut pipes = self.pipes.locked();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pipes.contains_key(&job) && Instant::now() < deadline {
            pipes = self
                .added
                .wait_timeout(pipes, TICK)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let pipe = pipes.get(&job).cloned();
        drop(pipes);
        let pipe = pipe.ok_or("the job's input is gone")?;
        let rx = pipe.rx.locked().take();
        let rx = rx.ok_or("the job's input was already read")?;
        let reader = InputReader {
            pipe,
            rx,
            chunk: Vec::new(),
            pos: 0,
            read: 0,
            cancel: cancel.clone(),
        };
        Ok(StreamSource::new(
            name,
            Box::new(reader),
            Box::new(|| Ok(())),
        ))
    }

    /// Whether job `job` has an input that is still open for writers (`jobs/<id>/input`).
    pub fn is_open(&self, job: u64) -> bool {
        self.get(job).is_some_and(|p| !p.state.locked().closed)
    }

    /// A writer opens job `job`'s input; `ENOENT` when it has none or it was closed.
    pub fn attach(&self, job: u64) -> Result<(), i32> {
        let pipe = self.get(job).ok_or(libc::ENOENT)?;
        let mut st = pipe.state.locked();
        if st.closed {
            return Err(libc::ENOENT);
        }
        st.writers += 1;
        st.opened = true;
        Ok(())
    }

    /// A writing handle is released; the last one closes the input (the stream's end,
    /// complete once the end marker is there too).
    pub fn detach(&self, job: u64) {
        let Some(pipe) = self.get(job) else {
            return;
        };
        let mut st = pipe.state.locked();
        st.writers = st.writers.saturating_sub(1);
        if st.writers == 0 {
            st.closed = true;
            pipe.tx.locked().take();
        }
    }

    /// Writes `data` at `offset` into job `job`'s input; waits while the backup is
    /// behind. `EINVAL` for a write not at the end of what was written, `EIO` when the
    /// job no longer reads (it ended, failed or was cancelled).
    pub fn write(&self, job: u64, offset: u64, data: &[u8]) -> Result<usize, i32> {
        let pipe = self.get(job).ok_or(libc::EIO)?;
        let _order = pipe.order.locked();
        if pipe.state.locked().written != offset {
            return Err(libc::EINVAL);
        }
        let tx = pipe.tx.locked().clone().ok_or(libc::EIO)?;
        tx.send(data.to_vec()).map_err(|_| libc::EIO)?;
        pipe.state.locked().written += data.len() as u64;
        Ok(data.len())
    }

    /// `end job=ID [bytes=N]` in `ctl/stdin`: the writer finished its input.
    pub(super) fn end(&self, job: u64, bytes: Option<u64>) -> Result<String, ControlError> {
        let pipe = self.get(job).ok_or_else(|| {
            ControlError::not_found(format!("job {job} has no input (or it has ended)"))
        })?;
        let mut st = pipe.state.locked();
        if st.end.is_some() {
            return Err(ControlError::invalid(format!(
                "job {job}'s input was already ended"
            )));
        }
        st.end = Some(bytes);
        Ok(format!("ok end job={job} bytes={}\n", st.written))
    }
}

/// The backup's side of a pipe.
struct InputReader {
    pipe: Arc<Pipe>,
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    read: u64,
    cancel: CancelToken,
}

impl InputReader {
    /// The input was closed and drained: complete if the end marker says so in time.
    fn end(&self) -> io::Result<usize> {
        let closed = Instant::now();
        loop {
            let end = self.pipe.state.locked().end;
            match end {
                Some(Some(n)) if n != self.read => {
                    return Err(io::Error::other(format!(
                        "the input has {} bytes but its end marker says bytes={n}",
                        self.read
                    )))
                }
                Some(_) => return Ok(0),
                None if closed.elapsed() >= END_TIMEOUT => {
                    return Err(io::Error::other(format!(
                        "input ended without end marker (writer interrupted?): closed after {} \
                         bytes, and no `end job=ID` came into ctl/stdin within {} s",
                        self.read,
                        END_TIMEOUT.as_secs()
                    )))
                }
                None => self.wait()?,
            }
        }
    }

    fn wait(&self) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        std::thread::sleep(TICK);
        Ok(())
    }
}

impl Read for InputReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv_timeout(TICK) {
                Ok(chunk) => (self.chunk, self.pos) = (chunk, 0),
                Err(RecvTimeoutError::Disconnected) => return self.end(),
                Err(RecvTimeoutError::Timeout) => {
                    if self.cancel.is_cancelled() {
                        return Err(io::Error::other("cancelled"));
                    }
                    let opened = self.pipe.state.locked().opened;
                    if !opened && self.pipe.created.elapsed() >= OPEN_TIMEOUT {
                        return Err(io::Error::other(format!(
                            "no writer opened the job's input within {} s",
                            OPEN_TIMEOUT.as_secs()
                        )));
                    }
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        self.read += n as u64;
        Ok(n)
    }
}
