//! A mount daemon killed while a command source streams into a snapshot (issue 12): the
//! mount does not stay behind dead, the job shows interrupted after a restart, no point
//! refers to the partial data, neither a command nor a hook outlives the daemon (its
//! process group is killed with the daemon, sleeping or writing), and the next snapshot
//! works.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cli_env::{job_id, wait_job, Env, COMMAND_LIMIT};
use crate::support::daemon::{kill, wait_dead, wait_unmounted, Daemon, DEAD_MOUNT_LIMIT};
use crate::support::mount::fuse_available;

/// Processes whose command line contains `needle`.
fn running_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_daemon_killed_mid_command_leaves_no_mount_no_point_and_the_next_snapshot_works() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    // A dump that writes until it is done, as a dump tool does; this one never is (its
    // argument names its process).
    let marker = format!("cairn-crash-marker-{}", std::process::id());
    let endless = format!("exec yes {marker}");
    let daemon = env.mount_background();
    let mnt = env.mnt();
    env.run(&[
        "instance",
        "add",
        "dump",
        "--command",
        &endless,
        "--as",
        "dump.sql",
    ])
    .ok();
    let id = job_id(&env.run(&["snapshot", "dump", "--no-wait"]).ok());
    wait_job(&mnt, id, COMMAND_LIMIT, "running", |v| {
        v["state"] == "running"
    });
    let start = Instant::now();
    while running_with(&marker).is_empty() {
        assert!(start.elapsed() < COMMAND_LIMIT, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let it stream a few MiB into the backup (a stream's bytes count at its end).
    std::thread::sleep(Duration::from_secs(1));
    kill_daemon(daemon, &mnt);
    wait_gone("the command", || running_with(&marker));
    let _again = restart_and_snapshot(&env, id, "echo hello", "hello\n");
}

/// SIGKILLs the daemon; nothing may stay mounted.
fn kill_daemon(daemon: Daemon, mnt: &Path) {
    kill(daemon.pid(), libc::SIGKILL);
    wait_unmounted(mnt, DEAD_MOUNT_LIMIT, "SIGKILL of the daemon mid-command");
    wait_dead(daemon.pid(), Duration::from_secs(10), "the killed daemon");
}

/// Waits (at most 10 s) until `running` finds no process of `what`.
fn wait_gone(what: &str, running: impl Fn() -> Vec<i32>) {
    let start = Instant::now();
    while !running().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} outlived its daemon: {:?}",
            running()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Mounts again: job `id` shows interrupted, instance `dump` has no point, and a snapshot
/// of it with `command` stores `expected`.
fn restart_and_snapshot(env: &Env, id: u64, command: &str, expected: &str) -> Daemon {
    let again = env.mount_background();
    let status = env.run(&["jobs", &id.to_string(), "--json"]).ok().json();
    assert_eq!(status["state"], "interrupted", "{status}");
    assert!(
        env.run(&["points", "dump"]).ok().stdout.trim().is_empty(),
        "no point refers to the partial data"
    );
    let add = [
        "instance",
        "add",
        "dump",
        "--command",
        command,
        "--as",
        "dump.sql",
    ];
    env.run(&add).ok();
    let snap = env.run(&["snapshot", "dump", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    assert_eq!(
        std::fs::read_to_string(env.mnt().join("dump/latest/dump.sql")).unwrap(),
        expected
    );
    again
}

/// The process group of `pid` (field 5 of its `stat`).
fn group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(2)?.parse().ok()
}

/// The live (not zombie) processes of group `pgid`.
fn in_group(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, s)| s.starts_with('Z'));
        if !zombie && group_of(pid) == Some(pgid) {
            found.push(pid);
        }
    }
    found
}

/// Starts a snapshot of `args` (an `instance add dump ...` whose command or hook writes
/// its shell's pid to `pidfile` and sleeps), SIGKILLs the daemon while it sleeps, and
/// checks that the shell and all of its group (the `sleep` it runs) are gone soon after,
/// with nothing left mounted; then that a normal command that outlasts its first read
/// still works after a restart.
fn a_killed_daemon_takes_its_sleeping_child_along(env: &Env, add: &[&str], pidfile: &Path) {
    let daemon = env.mount_background();
    let mnt = env.mnt();
    env.run(add).ok();
    let id = job_id(&env.run(&["snapshot", "dump", "--no-wait"]).ok());
    let start = Instant::now();
    let shell = loop {
        let text = std::fs::read_to_string(pidfile).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<i32>() {
            break pid;
        }
        assert!(
            start.elapsed() < COMMAND_LIMIT,
            "job {id}: it never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let group = group_of(shell).expect("the shell runs");
    // The shell's `sleep` has started too.
    let sleeping = || {
        in_group(group).into_iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
    };
    while !sleeping() {
        assert!(start.elapsed() < COMMAND_LIMIT, "no sleep in group {group}");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_daemon(daemon, &mnt);
    wait_gone(&format!("group {group}"), || in_group(group));
    // A command that runs on after its first read (PDEATHSIG would kill it when the
    // thread that started it ends) still works.
    let _again = restart_and_snapshot(env, id, "echo hello; sleep 2; echo bye", "hello\nbye\n");
}

#[test]
fn a_daemon_killed_while_its_command_sleeps_takes_the_command_along() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let pidfile = env.path("command.pid");
    let command = format!("echo $$ > {}; sleep 300", pidfile.display());
    let add = [
        "instance",
        "add",
        "dump",
        "--command",
        &command,
        "--as",
        "dump.sql",
    ];
    a_killed_daemon_takes_its_sleeping_child_along(&env, &add, &pidfile);
}

#[test]
fn a_daemon_killed_while_a_hook_sleeps_takes_the_hook_along() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let pidfile = env.path("hook.pid");
    let before = format!("echo $$ > {}; sleep 300", pidfile.display());
    let add = [
        "instance",
        "add",
        "dump",
        "--path",
        src.to_str().unwrap(),
        "--before",
        &before,
    ];
    a_killed_daemon_takes_its_sleeping_child_along(&env, &add, &pidfile);
}
