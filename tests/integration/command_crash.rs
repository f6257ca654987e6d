//! A mount daemon killed while a command source streams into a snapshot (issue 12): the
//! mount does not stay behind dead, the job shows interrupted after a restart, no point
//! refers to the partial data, the command does not outlive the daemon for long (its
//! stdout pipe is gone: its next write ends it), and the next snapshot works.

use std::time::{Duration, Instant};

use crate::support::cli_env::{job_id, wait_job, Env, COMMAND_LIMIT};
use crate::support::daemon::{kill, wait_dead, wait_unmounted, DEAD_MOUNT_LIMIT};
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
    kill(daemon.pid(), libc::SIGKILL);
    wait_unmounted(&mnt, DEAD_MOUNT_LIMIT, "SIGKILL of the daemon mid-command");
    wait_dead(daemon.pid(), Duration::from_secs(10), "the killed daemon");
    drop(daemon);
    let start = Instant::now();
    while !running_with(&marker).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the command outlived its daemon: {:?}",
            running_with(&marker)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let _again = env.mount_background();
    let status = env.run(&["jobs", &id.to_string(), "--json"]).ok().json();
    assert_eq!(status["state"], "interrupted", "{status}");
    assert!(
        env.run(&["points", "dump"]).ok().stdout.trim().is_empty(),
        "no point refers to the partial dump"
    );
    env.run(&[
        "instance",
        "add",
        "dump",
        "--command",
        "echo hello",
        "--as",
        "dump.sql",
    ])
    .ok();
    let snap = env.run(&["snapshot", "dump", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    assert_eq!(
        std::fs::read_to_string(mnt.join("dump/latest/dump.sql")).unwrap(),
        "hello\n"
    );
}
