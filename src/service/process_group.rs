//! The process group a hook or a command source runs in, and its guard: a tiny
//! `/bin/sh` that leads the group and reads a pipe only the daemon holds. When the daemon
//! dies (even by SIGKILL) the pipe closes and the guard kills the whole group, so no
//! command outlives its daemon, sleeping or not. `PR_SET_PDEATHSIG` would not do: it
//! reaches only the direct child, and fires when the *thread* that spawned it ends.
//! The guard ignores SIGTERM, SIGINT and SIGHUP (a stop of the group's commands is not a
//! stop of the guard); as the group's leader, unreaped until the group is dropped, it
//! keeps the group's id from being reused while the daemon signals it.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

/// The guard: a line on stdin releases it; the end of stdin without one (the daemon
/// died, or dropped the group unreleased) kills the group, itself included.
const GUARD: &str = "trap '' TERM INT HUP; read -r _ || kill -s KILL 0";

/// A process group led by its guard.
pub(super) struct ProcessGroup {
    guard: Child,
    /// The daemon's end of the guard's stdin.
    lifeline: Option<ChildStdin>,
}

impl ProcessGroup {
    /// Starts the guard, leader of a new group.
    pub(super) fn new() -> io::Result<ProcessGroup> {
        let mut guard = Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARD)
            // It needs nothing of the daemon's environment (nor its password).
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let lifeline = guard.stdin.take();
        Ok(ProcessGroup { guard, lifeline })
    }

    /// Starts `cmd` in the group.
    pub(super) fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        cmd.process_group(self.id()).spawn()
    }

    /// The group's id (its guard's pid).
    pub(super) fn id(&self) -> libc::pid_t {
        self.guard.id() as libc::pid_t
    }

    /// Sends `sig` to every process of the group (the guard holds SIGTERM, SIGINT and
    /// SIGHUP off; SIGKILL ends it too).
    pub(super) fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) of the group the unreaped guard leads: its id is still ours.
        unsafe { libc::kill(-self.id(), sig) };
    }

    /// Ends the guard without touching the rest of the group: what a hook started in
    /// the background on purpose goes on running.
    pub(super) fn release(mut self) {
        if let Some(mut lifeline) = self.lifeline.take() {
            // A guard already killed with its group cannot read it: no matter.
            let _ = lifeline.write_all(b"done\n");
        }
    }
}

impl Drop for ProcessGroup {
    /// Unreleased, the group is killed (by the guard, on the end of its stdin); the
    /// guard is reaped either way.
    fn drop(&mut self) {
        self.lifeline = None;
        let _ = self.guard.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn alive(pid: libc::pid_t) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    fn wait_gone(pid: libc::pid_t) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            // A zombie of ours counts as gone.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if !alive(pid) || stat.contains(") Z") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn dropping_an_unreleased_group_kills_what_runs_in_it() {
        let group = ProcessGroup::new().unwrap();
        let mut child = group
            .spawn(Command::new("/bin/sh").args(["-c", "sleep 300 & wait"]))
            .unwrap();
        let pid = child.id() as libc::pid_t;
        drop(group);
        assert!(wait_gone(pid), "the command outlived its group");
        let _ = child.wait();
    }

    #[test]
    fn a_released_group_leaves_its_commands_running_and_a_quick_command_still_joins() {
        let group = ProcessGroup::new().unwrap();
        let mut quick = group.spawn(&mut Command::new("true")).unwrap();
        assert!(quick.wait().unwrap().success());
        let mut slow = group.spawn(Command::new("sleep").arg("300")).unwrap();
        let (pid, pgid) = (slow.id() as libc::pid_t, group.id());
        group.release();
        std::thread::sleep(Duration::from_millis(200));
        assert!(alive(pid), "a released group killed its command");
        // SAFETY: kill(2) of the group of our own child (still unreaped).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = slow.wait();
    }
}
