//! The control plane of point-in-time restores (issue 13): `cairn points INSTANCE` shows
//! the restorable range (text and `--json`), `cairn restore INSTANCE --at TIME --target
//! DIR` restores through the mount (a job) and with `--repo`, a time after the last
//! archived second is refused and writes nothing, and `--at` with a point or without a
//! target is refused. A real daemon and mount, guarded by
//! [`Daemon`](crate::support::daemon::Daemon); passes are asked for (`cairn log archive`)
//! so that the times are known.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::cli_env::Env;
use crate::support::daemon::Daemon;
use crate::support::mount::fuse_available;

pub(crate) fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Sleeps into the next second (100 ms past it).
pub(crate) fn next_second() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos(u64::from(now.subsec_nanos()));
    std::thread::sleep(Duration::from_millis(1100) - into);
}

/// The second of the pass a `cairn log archive` reply names: `time=2026-...T..:..:..`.
fn pass_second(reply: &str) -> String {
    let t = reply
        .split_whitespace()
        .find_map(|w| w.strip_prefix("time="))
        .unwrap_or_else(|| panic!("no time= in {reply:?}"));
    format!("{}Z", &t[..19])
}

/// A repository and mount in `env`, and instance `app`: `src/conf` (`base`) and the log
/// `applogs/app.log` (`line0`), passed by the daemon once a day, with one point.
/// Returns the mount's guard and the log's path.
pub(crate) fn app_with_a_log(env: &Env) -> (Daemon, PathBuf) {
    env.init();
    let (src, logs) = (env.path("src"), env.path("applogs"));
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&logs).unwrap();
    fs::write(src.join("conf"), b"base\n").unwrap();
    let log = logs.join("app.log");
    append(&log, "line0\n");
    let daemon = env.mount_background();
    let (s, glob) = (src.display().to_string(), format!("{}/*", logs.display()));
    env.run(&[
        "instance",
        "add",
        "app",
        "--path",
        &s,
        "--log",
        &glob,
        "--log-every",
        "86400",
    ])
    .ok();
    env.run(&["snapshot", "app"]).ok();
    (daemon, log)
}

#[test]
fn points_show_the_range_and_restore_at_restores_through_the_mount_and_with_repo() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let (_daemon, log) = app_with_a_log(&env);
    next_second();
    append(&log, "line1\n");
    let first = env.run(&["log", "archive", "app"]).ok().stdout;
    let t1 = pass_second(&first);
    next_second();
    append(&log, "line2\n");
    let second = env.run(&["log", "archive", "app"]).ok().stdout;
    let t2 = pass_second(&second);
    assert_ne!(t1, t2);

    // The range: from the point's second to the one before the last pass.
    let points = env.run(&["points", "app"]).ok();
    assert!(
        points.stdout.starts_with("restorable: "),
        "{}",
        points.describe()
    );
    assert!(
        points.stdout.contains("(gaps: none)"),
        "{}",
        points.describe()
    );
    let v = env.run(&["points", "app", "--json"]).ok().json();
    let range = &v["restorable"];
    assert!(range["earliest"].as_str().unwrap() <= t1.as_str(), "{v}");
    assert!(range["latest"].as_str().unwrap() >= t1.as_str(), "{v}");
    assert!(range["latest"].as_str().unwrap() < t2.as_str(), "{v}");

    // Through the mount: the point, and the log cut at the pass of t1's second.
    let target = env.path("at-t1");
    let t = target.display().to_string();
    env.run(&["restore", "app", "--at", &t1, "--target", &t])
        .ok()
        .stdout_has("restored");
    assert_eq!(fs::read(target.join("conf")).unwrap(), b"base\n");
    assert_eq!(
        fs::read_to_string(target.join("logs/app.log")).unwrap(),
        "line0\nline1\n"
    );

    // Refusals: after the last archived second (nothing written), a point with --at,
    // --at without a target, a garbage time.
    let late = env.path("at-t2");
    let l = late.display().to_string();
    env.run(&["restore", "app", "--at", &t2, "--target", &l])
        .code(1)
        .stderr_has(range["latest"].as_str().unwrap());
    assert!(!late.exists());
    env.run(&["restore", "app", "latest", "--at", &t1, "--target", &l])
        .code(2);
    env.run(&["restore", "app", "--at", &t1])
        .code(2)
        .stderr_has("--target");
    env.run(&["restore", "app", "--at", "yesterday", "--target", &l])
        .code(2)
        .stderr_has("is not a time");
    assert!(!late.exists());
    let ctl = env.mnt().join(".cairn/ctl/restore");
    for bad in [
        format!("instance=app point=latest at={t1} target={l}\n"),
        format!("instance=app at={t1}\n"),
        format!("instance=app at={t1} target={l} mode=in-place\n"),
    ] {
        assert!(fs::write(&ctl, bad.as_bytes()).is_err(), "{bad}");
    }

    // With --repo, after the daemon is gone: the same state.
    env.run(&["umount", &env.mnt_str()]).ok();
    let repo = env.repo();
    let direct = env.path("direct-t1");
    let d = direct.display().to_string();
    let v = env
        .run(&[
            "restore", "app", "--at", &t1, "--target", &d, "--repo", &repo, "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["at"].as_str(), Some(t1.as_str()), "{v}");
    assert_eq!(
        fs::read_to_string(direct.join("logs/app.log")).unwrap(),
        "line0\nline1\n"
    );
    let v = env
        .run(&["points", "app", "--repo", &repo, "--json"])
        .ok()
        .json();
    assert!(v["restorable"]["earliest"].is_string(), "{v}");
}
