//! One hook: a command the daemon runs with `/bin/sh -c` around a job (`before`,
//! `after`, `restore-before`, `restore-after`; docs/CONTROL.md, "Hooks"), in a process
//! group of its own (killed if the daemon dies: `process_group`), with the job's facts in its environment. Its stdout and stderr go
//! to the job's log line by line as they come; a timeout or a cancel kills the whole
//! group (SIGTERM, then SIGKILL after a grace); a failure names the hook and carries
//! the tail of its stderr.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::engine::CancelToken;

use super::process_group::ProcessGroup;

/// How long a killed hook's process group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// A failure carries at most this many of the last lines of stderr ...
const TAIL_LINES: usize = 20;
/// ... and at most this many bytes of them.
const TAIL_BYTES: usize = 2048;
/// A line longer than this goes to the log in pieces.
const MAX_LINE: usize = 4096;
/// Not passed on to hooks: a foreground daemon may have the repository password in it.
const PASSWORD_VAR: &str = "CAIRN_PASSWORD";
/// How long the output still in the pipes is read once the hook has exited.
const DRAIN: Duration = Duration::from_secs(1);
/// How long one wait for output lasts before the hook's state is looked at again.
const POLL_MS: libc::c_int = 50;

/// One hook to run.
#[derive(Debug, Clone)]
pub struct Hook<'a> {
    /// Its key: `before`, `after`, `restore-before` or `restore-after`.
    pub name: &'static str,
    pub command: &'a str,
    /// Added to the daemon's environment.
    pub env: &'a [(&'static str, String)],
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL ([`KILL_GRACE`]).
    pub grace: Duration,
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook `{hook}` could not run: {source}")]
    Io {
        hook: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("hook `{hook}` exited with status {code}{}", tail_suffix(.tail))]
    Exit {
        hook: &'static str,
        code: i32,
        tail: String,
    },
    #[error("hook `{hook}` was killed by signal {signal}{}", tail_suffix(.tail))]
    Signal {
        hook: &'static str,
        signal: i32,
        tail: String,
    },
    #[error(
        "hook `{hook}` timed out after {} s (its process group was killed){}",
        seconds(*.after),
        tail_suffix(.tail)
    )]
    TimedOut {
        hook: &'static str,
        after: Duration,
        tail: String,
    },
    #[error("hook `{hook}` was cancelled (its process group was killed)")]
    Cancelled { hook: &'static str },
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

/// `600`, or `0.2` for a timeout that is not whole seconds.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

/// Why the hook's group was sent SIGTERM.
#[derive(Debug, Clone, Copy)]
enum Stop {
    TimedOut,
    Cancelled,
}

/// Runs `hook` to its end. Each line of its output is passed to `log` as it comes;
/// `cancel`, when given, kills it once cancelled. `Ok` only for exit status 0.
pub fn run(
    hook: &Hook<'_>,
    log: &dyn Fn(&str),
    cancel: Option<&CancelToken>,
) -> Result<(), HookError> {
    let io_err = |source| HookError::Io {
        hook: hook.name,
        source,
    };
    let group = ProcessGroup::new().map_err(io_err)?;
    let mut child = group
        .spawn(
            Command::new("/bin/sh")
                .arg("-c")
                .arg(hook.command)
                .env_remove(PASSWORD_VAR)
                .envs(hook.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .map_err(io_err)?;
    let shell = child.id() as libc::pid_t;
    let mut streams = [
        Stream::new(child.stdout.take().map(OwnedFd::from), false),
        Stream::new(child.stderr.take().map(OwnedFd::from), true),
    ];
    let start = Instant::now();
    let mut stopped: Option<(Instant, Stop)> = None;
    let mut killed = false;
    let watched = loop {
        match pump(&mut streams, POLL_MS, log).and_then(|_| has_exited(shell)) {
            Ok(true) => break stopped,
            Ok(false) => {}
            Err(e) => {
                group.signal(libc::SIGKILL);
                let _ = child.wait();
                return Err(io_err(e));
            }
        }
        match stopped {
            None => {
                let stop = if start.elapsed() >= hook.timeout {
                    Some(Stop::TimedOut)
                } else if cancel.is_some_and(CancelToken::is_cancelled) {
                    Some(Stop::Cancelled)
                } else {
                    None
                };
                if let Some(stop) = stop {
                    group.signal(libc::SIGTERM);
                    stopped = Some((Instant::now(), stop));
                }
            }
            Some((at, _)) if !killed && at.elapsed() >= hook.grace => {
                group.signal(libc::SIGKILL);
                killed = true;
            }
            Some(_) => {}
        }
    };
    if watched.is_some() {
        // What the shell left running in its group goes with it.
        group.signal(libc::SIGKILL);
    }
    let status = child.wait().map_err(io_err)?;
    // What the hook started in the background on purpose goes on.
    group.release();
    // What is still buffered in the pipes, without waiting for a process the hook left
    // behind that holds them open (or writes on).
    let drained = Instant::now() + DRAIN;
    while Instant::now() < drained && matches!(pump(&mut streams, 0, log), Ok(true)) {}
    for s in &mut streams {
        s.finish(log);
    }
    let tail = streams[1].tail_text();
    match watched {
        Some((_, Stop::TimedOut)) => Err(HookError::TimedOut {
            hook: hook.name,
            after: hook.timeout,
            tail,
        }),
        Some((_, Stop::Cancelled)) => Err(HookError::Cancelled { hook: hook.name }),
        None => match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(code), _) => Err(HookError::Exit {
                hook: hook.name,
                code,
                tail,
            }),
            (None, signal) => Err(HookError::Signal {
                hook: hook.name,
                signal: signal.unwrap_or(0),
                tail,
            }),
        },
    }
}

/// Whether the child `pid` has exited, without reaping it.
fn has_exited(pid: libc::pid_t) -> io::Result<bool> {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child with a valid siginfo_t; WNOWAIT leaves it unreaped.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        return nothing_if_interrupted();
    }
    // SAFETY: waitid filled `info` (or left it zeroed: no state change yet).
    Ok(unsafe { info.si_pid() } != 0)
}

/// After a failed system call: `Ok(false)` (nothing happened, look again) when a signal
/// interrupted it, else its error.
fn nothing_if_interrupted() -> io::Result<bool> {
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(false)
    } else {
        Err(e)
    }
}

/// One of the hook's output pipes, cut into lines.
struct Stream {
    pipe: Option<File>,
    partial: Vec<u8>,
    /// The last lines, for stderr.
    tail: Option<VecDeque<String>>,
}

impl Stream {
    fn new(fd: Option<OwnedFd>, keep_tail: bool) -> Stream {
        Stream {
            pipe: fd.map(File::from),
            partial: Vec::new(),
            tail: keep_tail.then(VecDeque::new),
        }
    }

    fn feed(&mut self, bytes: &[u8], log: &dyn Fn(&str)) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.emit(&line[..end], log);
        }
        if self.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, log);
        }
    }

    fn emit(&mut self, line: &[u8], log: &dyn Fn(&str)) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        log(text);
        if let Some(tail) = &mut self.tail {
            tail.push_back(text.to_string());
            if tail.len() > TAIL_LINES {
                tail.pop_front();
            }
        }
    }

    /// Logs a last line without its newline.
    fn finish(&mut self, log: &dyn Fn(&str)) {
        self.pipe = None;
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, log);
        }
    }

    /// The last lines kept, at most [`TAIL_BYTES`] of their end.
    fn tail_text(&self) -> String {
        let Some(tail) = &self.tail else {
            return String::new();
        };
        let text = Vec::from(tail.clone()).join("\n");
        let text = text.trim();
        let mut start = text.len().saturating_sub(TAIL_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_string()
    }
}

/// Waits up to `timeout_ms` for output on the open pipes and reads what came; returns
/// whether anything was read (an end of file counts).
fn pump(streams: &mut [Stream], timeout_ms: libc::c_int, log: &dyn Fn(&str)) -> io::Result<bool> {
    let open: Vec<usize> = (0..streams.len())
        .filter(|&i| streams[i].pipe.is_some())
        .collect();
    if open.is_empty() {
        std::thread::sleep(Duration::from_millis(timeout_ms as u64));
        return Ok(false);
    }
    let mut fds: Vec<libc::pollfd> = open
        .iter()
        .filter_map(|&i| streams[i].pipe.as_ref())
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid array of pollfd of the length given.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        return nothing_if_interrupted();
    }
    let mut any = false;
    let mut buf = vec![0u8; 64 * 1024];
    for (fd, &i) in fds.iter().zip(&open) {
        if fd.revents == 0 {
            continue;
        }
        let s = &mut streams[i];
        let n = match s.pipe.as_mut().map(|p| p.read(&mut buf)) {
            Some(Ok(n)) => n,
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Some(Err(e)) => return Err(e),
            None => continue,
        };
        any = true;
        if n == 0 {
            s.finish(log);
        } else {
            s.feed(&buf[..n], log);
        }
    }
    Ok(any)
}

#[cfg(test)]
mod tests;
