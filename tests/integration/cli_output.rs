//! A closed stdout (issue 10, item 18): `cairn jobs | head -1` and friends panicked with
//! "Broken pipe" (exit 101), since Rust ignores SIGPIPE and `println!` panics on EPIPE.
//! Each command here runs with a stdout whose reader is gone before it starts, so every
//! write fails with EPIPE; it must end quietly with its usual exit code.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use crate::support::cli_env::{drain, wait_status, Env, COMMAND_LIMIT};
use crate::support::cli_run::exit_code;
use crate::support::mount::fuse_available;

/// A pipe's write end whose read end is already closed.
fn widowed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors this function then owns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    write
}

/// Runs cairn with a widowed stdout; returns (exit code or 128+signal, stderr).
fn run_closed(env: &Env, args: &[&str]) -> (i32, String) {
    let mut child = env
        .command(args)
        .stdout(Stdio::from(widowed_pipe()))
        .spawn()
        .expect("run cairn");
    let reader = drain(child.stderr.take().unwrap());
    let status = wait_status(&format!("cairn {args:?}"), &mut child, COMMAND_LIMIT);
    (exit_code(status), reader.join().unwrap())
}

fn assert_quiet(env: &Env, args: &[&str], code: i32) {
    let (got, stderr) = run_closed(env, args);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "cairn {args:?} with a closed stdout: {stderr}"
    );
    assert_eq!(got, code, "cairn {args:?}: {stderr}");
}

#[test]
fn commands_end_quietly_when_stdout_is_closed() {
    let env = Env::new();
    let repo = env.path("repo");
    let repo = repo.to_str().unwrap();
    assert_quiet(&env, &["init", "--no-encryption", repo], 0);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let src = src.to_str().unwrap();
    let snapshot = ["snapshot", "www", "--repo", repo, "--path", src];
    assert_quiet(&env, &snapshot, 0);
    assert_quiet(&env, &["points", "--repo", repo], 0);
    assert_quiet(&env, &["points", "--repo", repo, "--json"], 0);
    assert_quiet(&env, &["events", "--repo", repo], 0);
    assert_quiet(&env, &["verify", "--repo", repo], 0);
    assert_quiet(&env, &["--help"], 0);
    // A refused request keeps its exit code.
    assert_quiet(&env, &["restore", "www", "latest", "--repo", repo], 2);

    if !fuse_available() {
        return;
    }
    std::fs::create_dir_all(env.mnt()).unwrap();
    let _daemon = env.mount_background();
    env.run(&["instance", "add", "www", "--path", src]).ok();
    env.run(&["snapshot", "www"]).ok();
    for args in [
        &["jobs"][..],
        &["jobs", "--json"],
        &["events"],
        &["points"],
        &["instance", "list"],
        &["snapshot", "www"],
    ] {
        assert_quiet(&env, args, 0);
    }
}
