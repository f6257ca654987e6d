//! Unit tests of one hook: exit codes, signals, the stderr tail, the environment,
//! timeouts and cancels that kill the whole process group.

use std::sync::Mutex;

use super::*;

/// Runs `command` with `timeout` and a short grace; returns the outcome and the log.
fn run_sh(
    command: &str,
    timeout: Duration,
    cancel: Option<&CancelToken>,
) -> (Result<(), HookError>, Vec<String>) {
    let env = [("CAIRN_INSTANCE", "db".to_string())];
    let hook = Hook {
        name: "before",
        command,
        env: &env,
        timeout,
        grace: Duration::from_millis(300),
    };
    let lines = Mutex::new(Vec::new());
    let out = run(
        &hook,
        &|l| lines.lock().unwrap().push(l.to_string()),
        cancel,
    );
    (out, lines.into_inner().unwrap())
}

const LONG: Duration = Duration::from_secs(30);

/// Whether `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn pid_in(path: &std::path::Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn success_logs_stdout_and_stderr_with_the_environment() {
    let (out, log) = run_sh(
        "echo out $CAIRN_INSTANCE; echo err >&2; printf last",
        LONG,
        None,
    );
    out.unwrap();
    assert_eq!(log, ["out db", "err", "last"]);
}

#[test]
fn an_exit_code_fails_with_the_tail_of_stderr() {
    let (out, _) = run_sh(
        "for i in $(seq 1 30); do echo line$i >&2; done; echo not-stderr; exit 3",
        LONG,
        None,
    );
    let e = out.unwrap_err();
    assert!(matches!(e, HookError::Exit { code: 3, .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with("hook `before` exited with status 3: "),
        "{text}"
    );
    assert!(
        text.contains("line11\n") && text.ends_with("line30"),
        "{text}"
    );
    assert!(
        !text.contains("line10\n") && !text.contains("not-stderr"),
        "{text}"
    );
}

#[test]
fn the_tail_is_bounded_in_bytes() {
    let (out, _) = run_sh(
        "for i in 1 2 3; do printf '%01000d\\n' $i >&2; done; exit 1",
        LONG,
        None,
    );
    let HookError::Exit { tail, .. } = out.unwrap_err() else {
        panic!("not an exit");
    };
    assert_eq!(tail.len(), TAIL_BYTES);
    assert!(tail.ends_with("0003"), "{tail}");
}

#[test]
fn a_signal_is_named() {
    let (out, _) = run_sh("echo dying >&2; kill -9 $$", LONG, None);
    let e = out.unwrap_err();
    assert!(matches!(e, HookError::Signal { signal: 9, .. }), "{e:?}");
    assert_eq!(e.to_string(), "hook `before` was killed by signal 9: dying");
}

#[test]
fn a_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let start = Instant::now();
    let (out, _) = run_sh(
        &format!(
            "sleep 31 & echo $! > {}; echo waiting >&2; wait",
            pidfile.display()
        ),
        Duration::from_millis(300),
        None,
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let e = out.unwrap_err();
    assert!(matches!(e, HookError::TimedOut { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "hook `before` timed out after 0.3 s (its process group was killed): waiting"
    );
    let pid = pid_in(&pidfile);
    let gone = Instant::now();
    while alive(pid) {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "sleep {pid} survived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_group_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let start = Instant::now();
    let (out, _) = run_sh("trap '' TERM; sleep 32", Duration::from_millis(200), None);
    assert!(matches!(out, Err(HookError::TimedOut { .. })), "{out:?}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn a_cancel_kills_the_hook() {
    let cancel = CancelToken::new();
    let c = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c.cancel();
    });
    let start = Instant::now();
    let (out, _) = run_sh("sleep 33", LONG, Some(&cancel));
    t.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(out, Err(HookError::Cancelled { hook: "before" })),
        "{out:?}"
    );
}

#[test]
fn a_process_left_behind_holding_the_pipes_does_not_hold_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let start = Instant::now();
    let (out, log) = run_sh(
        &format!("sleep 34 & echo $! > {}; echo done", pidfile.display()),
        LONG,
        None,
    );
    let pid = pid_in(&pidfile);
    // SAFETY: kill(2) of the sleep this test's hook started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    out.unwrap();
    assert_eq!(log, ["done"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_missing_shell_command_is_an_exit_status() {
    let (out, _) = run_sh("no-such-command-cairn", LONG, None);
    let e = out.unwrap_err();
    assert!(matches!(e, HookError::Exit { code: 127, .. }), "{e:?}");
    assert!(e.to_string().contains("not found"), "{e}");
}

#[test]
fn a_process_left_behind_writing_on_does_not_hold_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let command = format!("yes & echo $! > {}", pidfile.display());
    let hook = Hook {
        name: "after",
        command: &command,
        env: &[],
        timeout: LONG,
        grace: KILL_GRACE,
    };
    let lines = std::sync::atomic::AtomicU64::new(0);
    let start = Instant::now();
    let out = run(
        &hook,
        &|l| {
            assert_eq!(l, "y");
            lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        },
        None,
    );
    // SAFETY: kill(2) of the `yes` this test's hook started.
    unsafe { libc::kill(pid_in(&pidfile), libc::SIGKILL) };
    out.unwrap();
    assert!(
        start.elapsed() < DRAIN + Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(lines.into_inner() > 0);
}
