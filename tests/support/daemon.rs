//! Mount daemons that tests start: whether a directory is a cairn mount, waiting for a
//! mount or a process to go, and the [`Daemon`] guard whose Drop (and a watchdog thread
//! at [`TEST_LIMIT`]) detaches the mount and kills the daemon, so a hang leaves nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A whole mounting test must be done within this; then the watchdog strikes.
pub const TEST_LIMIT: Duration = Duration::from_secs(900);
/// A mount of a killed daemon must be gone within this.
pub const DEAD_MOUNT_LIMIT: Duration = Duration::from_secs(5);

/// Lines of mountinfo for `dir` whose type is `fuse.cairn`.
/// Whether the cairn mount at `dir` is whole: writable, or read-only with its control
/// plane's connection over `.cairn` (what `cairn mount` waits for).
pub fn is_whole_cairn_mount(dir: &Path) -> bool {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let entry = |d: &Path| {
        let d = d.to_str().unwrap().to_string();
        text.lines()
            .find(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                f.get(4) == Some(&d.as_str()) && l.contains(" - fuse.cairn ")
            })
            .map(|l| {
                l.split(' ')
                    .nth(5)
                    .unwrap_or("")
                    .split(',')
                    .any(|o| o == "ro")
            })
    };
    match entry(dir) {
        Some(true) => entry(&dir.join(".cairn")).is_some(),
        Some(false) => true,
        None => false,
    }
}

pub fn is_cairn_mount(dir: &Path) -> bool {
    let dir = dir.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(4) == Some(&dir) && l.contains(" - fuse.cairn ")
        })
}

/// Waits until `dir` is no longer a cairn mount; panics after `limit`.
pub fn wait_unmounted(dir: &Path, limit: Duration, why: &str) {
    let start = Instant::now();
    while is_cairn_mount(dir) {
        assert!(
            start.elapsed() < limit,
            "{} is still mounted {limit:?} after {why}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (a zombie is not: PID 1 here may not reap).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether `pid` is still a cairn daemon serving `mnt` (not a recycled pid).
pub fn is_our_daemon(pid: i32, mnt: &Path) -> bool {
    alive(pid)
        && fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("mount") && c.contains(mnt.to_str().unwrap())
            })
            .unwrap_or(false)
}

pub fn wait_dead(pid: i32, limit: Duration, what: &str) {
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < limit,
            "{what} (pid {pid}) still runs after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live children of `pid` whose command name is `comm`.
pub fn children_named(pid: i32, comm: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if name == comm && rest.first() != Some(&"Z") && rest.get(1) == Some(&&*pid.to_string()) {
            out.push(child);
        }
    }
    out
}

pub fn kill(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) of a process this test started.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// Detaches a mount and kills its daemon: what the guard and the watchdog do.
pub fn tear_down(mnt: &Path, pid: Option<i32>) {
    if is_cairn_mount(mnt) {
        let _ = Command::new("fusermount3")
            .arg("-uz")
            .arg(mnt)
            .stderr(Stdio::null())
            .status();
    }
    if let Some(pid) = pid {
        if is_our_daemon(pid, mnt) {
            // SAFETY: kill(2) of the daemon this test started (checked by its cmdline).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Guards a mount daemon: Drop (or the watchdog, at [`TEST_LIMIT`]) detaches the mount
/// and kills the daemon.
pub struct Daemon {
    mnt: PathBuf,
    pid: Option<i32>,
    pub child: Option<Child>,
    done: Arc<AtomicBool>,
}

impl Daemon {
    pub fn new(mnt: PathBuf, pid: Option<i32>, child: Option<Child>) -> Daemon {
        let done = Arc::new(AtomicBool::new(false));
        let (d, m) = (done.clone(), mnt.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < TEST_LIMIT {
                if d.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!(
                "WATCHDOG: the mount at {} outlived {TEST_LIMIT:?}: detaching it, killing its daemon",
                m.display()
            );
            tear_down(&m, pid);
        });
        Daemon {
            mnt,
            pid,
            child,
            done,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid.expect("the daemon's pid")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        tear_down(&self.mnt, self.pid);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = self.pid {
            let start = Instant::now();
            while is_our_daemon(pid, &self.mnt) && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
