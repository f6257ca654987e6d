//! Command sources: each `command=CMD as=NAME` of an instance is a stream of its
//! snapshots. The command runs with `/bin/sh -c` in a process group of its own (killed
//! if the daemon dies: `process_group`), started
//! when the backup reaches it (after the paths and the commands before it), with
//! `CAIRN_INSTANCE` and `CAIRN_JOB` set and stdin from `/dev/null`. Its stdout is the
//! stream; its stderr goes to the job's log line by line. A non-zero exit or a signal
//! fails the stream (so the job, with no point), naming the command and the tail of its
//! stderr; a cancel kills the process group.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::engine::{CancelToken, StreamSource};
use crate::model::instance::CommandSource;
use crate::sync::LockExt;

use super::job_progress::JobProgress;
use super::process_group::ProcessGroup;

/// How many of its last stderr lines a failed command's error quotes.
const TAIL_LINES: usize = 10;
/// How long one quoted stderr line may be.
const TAIL_LINE_BYTES: usize = 300;

/// The streams of an instance's command sources, in their order.
pub(super) fn command_streams(
    commands: &[CommandSource],
    instance: &str,
    job: u64,
    progress: &Arc<JobProgress>,
    cancel: &CancelToken,
) -> Vec<StreamSource> {
    commands
        .iter()
        .map(|c| {
            let run = Arc::new(Run {
                source: c.clone(),
                instance: instance.to_string(),
                job,
                progress: progress.clone(),
                cancel: cancel.clone(),
                state: Mutex::new(State::default()),
            });
            let output = Output {
                run: run.clone(),
                stdout: None,
            };
            StreamSource::new(&c.name, Box::new(output), Box::new(move || run.finish()))
        })
        .collect()
}

/// One command of one job.
struct Run {
    source: CommandSource,
    instance: String,
    job: u64,
    progress: Arc<JobProgress>,
    cancel: CancelToken,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    child: Option<Child>,
    group: Option<Arc<ProcessGroup>>,
    /// The stderr reader; it returns the last lines.
    stderr: Option<JoinHandle<String>>,
    /// Kills the group on a cancel until `done` is set.
    watcher: Option<JoinHandle<()>>,
    done: Arc<AtomicBool>,
    /// The backup read the output to its end.
    eof: bool,
}

/// The command's stdout; the command starts at the first read.
struct Output {
    run: Arc<Run>,
    stdout: Option<ChildStdout>,
}

impl Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stdout = match &mut self.stdout {
            Some(s) => s,
            None => self.stdout.insert(self.run.start()?),
        };
        let n = stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.run.state.locked().eof = true;
        }
        Ok(n)
    }
}

impl Run {
    fn start(&self) -> io::Result<ChildStdout> {
        let (cmd, name) = (&self.source.command, &self.source.name);
        let failed =
            |e: io::Error| io::Error::new(e.kind(), format!("starting command `{cmd}`: {e}"));
        let group = Arc::new(ProcessGroup::new().map_err(failed)?);
        let mut child = group
            .spawn(
                Command::new("/bin/sh")
                    .arg("-c")
                    .arg(cmd)
                    .env("CAIRN_INSTANCE", &self.instance)
                    .env("CAIRN_JOB", self.job.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )
            .map_err(failed)?;
        let pid = child.id();
        self.progress
            .log_line(format!("{name}: started command `{cmd}` (pid {pid})"));
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            group.signal(libc::SIGKILL);
            let _ = child.wait();
            return Err(io::Error::other("the command's pipes are missing"));
        };
        let mut st = self.state.locked();
        st.stderr = Some(self.log_stderr(stderr));
        let (done, cancel, watched) = (st.done.clone(), self.cancel.clone(), group.clone());
        st.watcher = Some(std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if cancel.is_cancelled() {
                    watched.signal(libc::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
        st.child = Some(child);
        st.group = Some(group);
        Ok(stdout)
    }

    /// Copies stderr into the job's log; returns its last lines.
    fn log_stderr(&self, stderr: impl Read + Send + 'static) -> JoinHandle<String> {
        let (progress, name) = (self.progress.clone(), self.source.name.clone());
        std::thread::spawn(move || {
            let mut tail = VecDeque::new();
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                line.clear();
                progress.log_line(format!("{name}: {text}"));
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text.chars().take(TAIL_LINE_BYTES).collect::<String>());
            }
            Vec::from(tail).join("\n")
        })
    }

    /// Waits for the command (killing its group first if the backup stopped reading
    /// before the end) and says whether it succeeded.
    fn finish(&self) -> Result<(), String> {
        let cmd = &self.source.command;
        let mut st = self.state.locked();
        let Some(mut child) = st.child.take() else {
            return Err(format!("command `{cmd}` did not start"));
        };
        let group = st.group.take();
        let kill = || group.iter().for_each(|g| g.signal(libc::SIGKILL));
        if !st.eof {
            kill();
        }
        let status = child.wait();
        // What the command left running in its group would hold stderr open.
        kill();
        st.done.store(true, Ordering::Relaxed);
        if let Some(w) = st.watcher.take() {
            let _ = w.join();
        }
        drop(group);
        let tail = st
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let status = status.map_err(|e| format!("waiting for command `{cmd}`: {e}"))?;
        self.progress.log_line(format!(
            "{}: command {}",
            self.source.name,
            describe(status)
        ));
        if status.success() && st.eof {
            return Ok(());
        }
        let why = if st.eof {
            describe(status)
        } else {
            "was stopped before the end of its output".to_string()
        };
        Err(match tail.is_empty() {
            true => format!("command `{cmd}` {why}"),
            false => format!("command `{cmd}` {why}; its stderr ends:\n{tail}"),
        })
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    }
}
