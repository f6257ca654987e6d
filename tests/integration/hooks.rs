//! Hooks (docs/CONTROL.md, "Hooks"): `before`/`after` around snapshots, manual and
//! scheduled, and `restore-before`/`restore-after` around restores, run for real with
//! /bin/sh by the service (on a manual clock, real repository and catalog), and once
//! through a real mount with the CLI. Hooks write what they saw into files of the
//! test's directory; hung hooks are looked for in /proc.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::service::grammar::Words;
use serde_json::Value;

use crate::support::cli_env::Env;
use crate::support::daemon::{alive, Daemon};
use crate::support::mount::fuse_available;
use crate::support::schedule::Rig;

/// `add name=db path=<src>` with `hooks` (key, command) as one control line.
fn add_db(rig: &Rig, hooks: &[(&str, &str)]) -> Result<String, cairn::service::ControlError> {
    let mut words = Words::with_verb("add")
        .kv("name", "db")
        .kv("path", rig.src.to_str().unwrap());
    for (k, v) in hooks {
        words = words.kv(*k, *v);
    }
    rig.service.submit("instance", &words.line(), 0)
}

/// A file of the rig's directory, as hooks name it.
fn file(rig: &Rig, name: &str) -> PathBuf {
    rig.dir.path().join(name)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Submits `text` to ctl/`ctl`, waits for the job; returns its id and stored status.
fn run_job(rig: &Rig, ctl: &str, text: &str) -> (u64, Value) {
    let reply = rig.ok(ctl, text);
    let id: u64 = reply
        .trim()
        .strip_prefix("job=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}: {reply}"));
    rig.service.wait_idle();
    let status = serde_json::from_str(&rig.service.job_status(id).unwrap()).unwrap();
    (id, status)
}

fn error_of(status: &Value) -> &str {
    status["error"].as_str().unwrap_or_default()
}

/// Live processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| alive(*pid))
        .collect()
}

/// Waits until no process runs `argv`; panics after 10 s.
fn assert_none_left(argv: &[&str]) {
    let start = Instant::now();
    loop {
        let left = processes_running(argv);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{argv:?} still runs: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failing_before_hook_fails_the_job_makes_no_point_and_after_still_runs() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let after = file(&rig, "after-ran");
    let after_cmd = format!("echo \"$CAIRN_RESULT\" > {}", after.display());
    add_db(
        &rig,
        &[
            (
                "before",
                "echo checking; echo 'db is locked by pid 42' >&2; exit 3",
            ),
            ("after", &after_cmd),
        ],
    )
    .unwrap();
    let (id, status) = run_job(&rig, "snapshot", "instance=db");
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(
        error_of(&status),
        "hook `before` exited with status 3: db is locked by pid 42"
    );
    assert!(rig.points("db").is_empty(), "{:?}", rig.points("db"));
    assert_eq!(
        read(&after),
        "failure\n",
        "the after-hook ran, told the outcome"
    );
    let log = rig.service.job_log(id).unwrap();
    assert!(log.contains("before: checking\n"), "{log}");
    assert!(log.contains("before: db is locked by pid 42\n"), "{log}");
    assert!(!log.contains("phase: backing up"), "no backup ran: {log}");
}

#[test]
fn hooks_get_the_instance_the_job_and_the_point_name_and_their_output_is_logged() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let (before_env, after_env) = (file(&rig, "before.env"), file(&rig, "after.env"));
    // The variables cairn sets (the daemon's own environment, which hooks inherit, may
    // hold other CAIRN_ names: the test harness's, say).
    let ours = "env | grep -E '^CAIRN_(INSTANCE|JOB|POINT|RESULT|TARGET)=' | sort";
    let before = format!(
        "{ours} > {}; echo flushed 3 tables; echo note >&2",
        before_env.display()
    );
    let after = format!("{ours} > {}", after_env.display());
    add_db(&rig, &[("before", &before), ("after", &after)]).unwrap();
    let (id, status) = run_job(&rig, "snapshot", "instance=db name=hooked");
    assert_eq!(status["state"], "succeeded", "{status}");
    let point = status["result"]["point"].as_str().unwrap();
    assert!(point.ends_with("-hooked"), "{point}");
    assert_eq!(rig.points("db"), [point]);
    assert_eq!(
        read(&before_env),
        format!("CAIRN_INSTANCE=db\nCAIRN_JOB={id}\nCAIRN_POINT={point}\n")
    );
    assert_eq!(
        read(&after_env),
        format!("CAIRN_INSTANCE=db\nCAIRN_JOB={id}\nCAIRN_POINT={point}\nCAIRN_RESULT=success\n")
    );
    let log = rig.service.job_log(id).unwrap();
    assert!(
        log.contains("before: flushed 3 tables\nbefore: note\nhook before: ok\n"),
        "{log}"
    );
    assert!(log.contains("hook after: ok\n"), "{log}");
    assert_eq!(
        status["result"]["warnings"],
        serde_json::json!([]),
        "{status}"
    );
}

#[test]
fn a_hanging_hook_is_killed_at_its_timeout() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    add_db(
        &rig,
        &[
            ("before", "echo started >&2; sleep 6001"),
            ("hook-timeout", "1"),
        ],
    )
    .unwrap();
    let start = Instant::now();
    let (_, status) = run_job(&rig, "snapshot", "instance=db");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(
        error_of(&status),
        "hook `before` timed out after 1 s (its process group was killed): started"
    );
    assert!(rig.points("db").is_empty());
    assert_none_left(&["sleep", "6001"]);
}

#[test]
fn a_cancel_during_a_hook_kills_it_and_after_still_runs() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let after = file(&rig, "after-ran");
    let after_cmd = format!("echo \"$CAIRN_RESULT\" > {}", after.display());
    add_db(&rig, &[("before", "sleep 6002"), ("after", &after_cmd)]).unwrap();
    let reply = rig.ok("snapshot", "instance=db");
    let id: u64 = reply.trim().strip_prefix("job=").unwrap().parse().unwrap();
    let start = Instant::now();
    while processes_running(&["sleep", "6002"]).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the hook did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rig.ok("cancel", &format!("job={id}"));
    rig.service.wait_idle();
    let status: Value = serde_json::from_str(&rig.service.job_status(id).unwrap()).unwrap();
    assert_eq!(status["state"], "cancelled", "{status}");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_none_left(&["sleep", "6002"]);
    assert_eq!(read(&after), "failure\n");
    assert!(rig.points("db").is_empty());
}

#[test]
fn a_failing_after_hook_is_a_warning_and_the_point_stays() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    add_db(&rig, &[("after", "echo 'unlock failed' >&2; exit 1")]).unwrap();
    let (id, status) = run_job(&rig, "snapshot", "instance=db");
    assert_eq!(status["state"], "succeeded", "{status}");
    let point = status["result"]["point"].as_str().unwrap();
    assert_eq!(rig.points("db"), [point]);
    let warning = "hook `after` exited with status 1: unlock failed";
    assert_eq!(
        status["result"]["warnings"],
        serde_json::json!([warning]),
        "{status}"
    );
    let log = rig.service.job_log(id).unwrap();
    assert!(log.contains(&format!("warning: {warning}\n")), "{log}");
}

#[test]
fn restore_hooks_are_told_the_point_the_target_and_the_outcome() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let (seen, results) = (file(&rig, "restore-before"), file(&rig, "restore-after"));
    let before = format!(
        "echo \"$CAIRN_INSTANCE $CAIRN_POINT $CAIRN_TARGET\" > {}",
        seen.display()
    );
    let after = format!("echo \"$CAIRN_RESULT\" >> {}", results.display());
    add_db(
        &rig,
        &[("restore-before", &before), ("restore-after", &after)],
    )
    .unwrap();
    let (_, snap) = run_job(&rig, "snapshot", "instance=db");
    let point = snap["result"]["point"].as_str().unwrap().to_string();

    let target = file(&rig, "restored");
    let (_, ok) = run_job(
        &rig,
        "restore",
        &format!("instance=db point=latest target={}", target.display()),
    );
    assert_eq!(ok["state"], "succeeded", "{ok}");
    assert_eq!(read(&target.join("data.txt")), "scheduled data\n");
    assert_eq!(read(&seen), format!("db {point} {}\n", target.display()));
    assert_eq!(read(&results), "success\n");

    // A restore that fails (its target's parent is a file): restore-after is told so.
    fs::write(file(&rig, "a-file"), b"x").unwrap();
    let bad = file(&rig, "a-file").join("restored");
    let (_, failed) = run_job(
        &rig,
        "restore",
        &format!("instance=db point={point} target={}", bad.display()),
    );
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(read(&results), "success\nfailure\n");
}

#[test]
fn a_failing_restore_before_hook_leaves_the_target_untouched() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let results = file(&rig, "restore-after");
    let after = format!("echo \"$CAIRN_RESULT\" >> {}", results.display());
    let (_, snap) = run_job(&rig, "snapshot", "instance=db");
    assert_eq!(snap["state"], "succeeded", "{snap}");
    add_db(
        &rig,
        &[
            ("restore-before", "echo 'redis will not stop' >&2; exit 4"),
            ("restore-after", &after),
        ],
    )
    .unwrap();
    // In place: the changed source stays as it is, and no safety point is taken.
    fs::write(rig.src.join("data.txt"), b"changed since\n").unwrap();
    let (_, in_place) = run_job(&rig, "restore", "instance=db point=latest mode=in-place");
    assert_eq!(in_place["state"], "failed", "{in_place}");
    assert_eq!(
        error_of(&in_place),
        "hook `restore-before` exited with status 4: redis will not stop"
    );
    assert_eq!(read(&rig.src.join("data.txt")), "changed since\n");
    assert_eq!(
        rig.points("db").len(),
        1,
        "no safety point: {:?}",
        rig.points("db")
    );
    // Into a new directory: it is not created.
    let target = file(&rig, "restored");
    let (_, new) = run_job(
        &rig,
        "restore",
        &format!("instance=db point=latest target={}", target.display()),
    );
    assert_eq!(new["state"], "failed", "{new}");
    assert!(target.symlink_metadata().is_err(), "the target was created");
    assert_eq!(read(&results), "failure\nfailure\n");
}

#[test]
fn scheduled_points_run_the_hooks() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let (seen, after) = (file(&rig, "before"), file(&rig, "after"));
    let before_cmd = format!("echo \"$CAIRN_POINT\" >> {}", seen.display());
    let after_cmd = format!("echo \"$CAIRN_RESULT\" >> {}", after.display());
    add_db(&rig, &[("before", &before_cmd), ("after", &after_cmd)]).unwrap();
    rig.ok(
        "policy",
        "create name=nightly times=03:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=nightly instance=db");
    rig.run_until("2026-11-24T00:00:00Z", Duration::from_secs(1800));
    let points = rig.points("db");
    assert_eq!(
        points,
        ["2026-11-22T030000Z-auto", "2026-11-23T030000Z-auto"]
    );
    assert_eq!(read(&seen), format!("{}\n{}\n", points[0], points[1]));
    assert_eq!(read(&after), "success\nsuccess\n");
}

#[test]
fn a_scheduled_run_whose_before_hook_fails_is_a_failed_scheduled_job() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    add_db(
        &rig,
        &[("before", "echo 'replica lag too high' >&2; exit 1")],
    )
    .unwrap();
    rig.ok(
        "policy",
        "create name=nightly times=03:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=nightly instance=db");
    rig.run_until("2026-11-22T04:00:00Z", Duration::from_secs(1800));
    assert!(rig.points("db").is_empty());
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["state"], "failed");
    assert!(jobs[0]["request"]["schedule"].is_object());
    assert_eq!(
        error_of(&jobs[0]),
        "hook `before` exited with status 1: replica lag too high"
    );
}

#[test]
fn hook_definitions_are_stored_and_bad_ones_refused_with_nothing_stored() {
    let mut rig = Rig::new("2026-11-22T00:00:00Z");
    for (timeout, says) in [
        (
            "0",
            "hook-timeout must be whole seconds from 1 to 86400, got `0`",
        ),
        (
            "abc",
            "hook-timeout must be whole seconds from 1 to 86400, got `abc`",
        ),
        ("86401", "got `86401`"),
    ] {
        let e = add_db(&rig, &[("before", "true"), ("hook-timeout", timeout)]).unwrap_err();
        assert_eq!(e.errno, libc::EINVAL);
        assert!(e.message.contains(says), "{timeout}: {}", e.message);
    }
    let e = add_db(&rig, &[("after", "")]).unwrap_err();
    assert!(
        e.message.contains("`after=` needs a command"),
        "{}",
        e.message
    );
    let e = add_db(&rig, &[("hook-timeout", "5")]).unwrap_err();
    assert!(e.message.contains("applies to hooks"), "{}", e.message);
    let db = rig.service.instance("db").unwrap();
    assert!(db.hooks.is_empty(), "nothing stored: {db:?}");
    assert_eq!(db.version, 1);
    assert!(
        rig.events("instance-added").len() == 1,
        "refused requests record nothing"
    );

    add_db(
        &rig,
        &[
            ("before", "redis-cli bgsave"),
            ("restore-after", "systemctl start redis"),
            ("hook-timeout", "86400"),
        ],
    )
    .unwrap();
    rig.restart();
    rig.service.refresh().unwrap();
    let db = rig.service.instance("db").unwrap();
    assert_eq!(db.version, 2);
    assert_eq!(db.hooks.before.as_deref(), Some("redis-cli bgsave"));
    assert_eq!(db.hooks.after, None);
    assert_eq!(
        db.hooks.restore_after.as_deref(),
        Some("systemctl start redis")
    );
    assert_eq!(db.hooks.timeout_secs(), 86_400);
}

/// A fresh repository mounted by a daemon, and a source directory holding `dump.rdb`.
fn mounted_with_source() -> (Env, PathBuf, Daemon) {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("dump.rdb"), b"REDIS0011").unwrap();
    let daemon = env.mount_background();
    (env, src, daemon)
}

#[test]
fn cli_instance_add_with_hooks_through_a_mount_logs_into_the_job() {
    if !fuse_available() {
        return;
    }
    let (env, src, _daemon) = mounted_with_source();
    let marker = env.path("after-ran");
    let after = format!("touch {}", marker.display());
    env.run(&[
        "instance",
        "add",
        "redis",
        "--path",
        src.to_str().unwrap(),
        "--before",
        "echo bgsave done; echo from stderr >&2",
        "--after",
        &after,
        "--hook-timeout",
        "30",
    ])
    .ok()
    .stdout_has("  before   echo bgsave done; echo from stderr >&2")
    .stdout_has("  hook-timeout 30");
    let snap = env.run(&["snapshot", "redis", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    let id = snap["id"].as_u64().unwrap();
    let log = read(&env.mnt().join(format!(".cairn/jobs/{id}/log")));
    assert!(
        log.contains("before: bgsave done\nbefore: from stderr\n"),
        "{log}"
    );
    assert!(marker.exists(), "the after-hook ran");

    env.run(&[
        "instance",
        "add",
        "redis",
        "--path",
        src.to_str().unwrap(),
        "--before",
        "echo 'BGSAVE failed: disk full' >&2; exit 3",
    ])
    .ok();
    env.run(&["snapshot", "redis"])
        .code(1)
        .stderr_has("hook `before` exited with status 3: BGSAVE failed: disk full");
    env.run(&[
        "instance",
        "add",
        "x",
        "--path",
        src.to_str().unwrap(),
        "--hook-timeout",
        "0",
    ])
    .code(2);
    let points = env.run(&["points", "redis"]).ok();
    assert_eq!(points.stdout.lines().count(), 1, "{}", points.describe());
}

#[test]
fn after_runs_after_a_failed_backup_and_is_told_so() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let (before, after) = (file(&rig, "before-ran"), file(&rig, "after-ran"));
    let before_cmd = format!("touch {}", before.display());
    let after_cmd = format!("echo \"$CAIRN_RESULT\" > {}", after.display());
    add_db(&rig, &[("before", &before_cmd), ("after", &after_cmd)]).unwrap();
    fs::remove_dir_all(&rig.src).unwrap();
    let (_, status) = run_job(&rig, "snapshot", "instance=db");
    assert_eq!(status["state"], "failed", "{status}");
    assert!(!error_of(&status).contains("hook"), "{status}");
    assert!(before.exists());
    assert_eq!(read(&after), "failure\n");
    assert!(rig.points("db").is_empty());
}

/// An after-hook that appends `CAIRN_RESULT` to `ran` and then fails.
fn failing_after(ran: &Path) -> String {
    format!(
        "echo \"$CAIRN_RESULT\" >> {}; echo 'unlock failed' >&2; exit 1",
        ran.display()
    )
}

#[test]
fn a_failing_after_hook_is_a_warning_on_the_point_and_runs_once() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let ran = file(&rig, "after-ran");
    // It also notes how many manifests the instance has when it runs: none yet.
    let manifests = file(&rig, "repo/points/db");
    let after = format!(
        "ls {} 2>/dev/null | wc -l >> {}; {}",
        manifests.display(),
        ran.display(),
        failing_after(&ran)
    );
    add_db(&rig, &[("after", &after)]).unwrap();
    let (id, status) = run_job(&rig, "snapshot", "instance=db");
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(
        read(&ran),
        "0\nsuccess\n",
        "the after-hook ran once, before the manifest was written"
    );
    assert_eq!(fs::read_dir(&manifests).unwrap().count(), 1);
    let warning = "hook `after` exited with status 1: unlock failed";
    assert_eq!(status["result"]["warnings"], serde_json::json!([warning]));
    assert_eq!(status["result"]["stats"]["warnings"], 1, "{status}");
    let points = rig.service.points("db");
    assert_eq!(points.len(), 1);
    let manifest = &points[0].manifest;
    assert_eq!(manifest.warnings, [warning], "the point knows");
    assert_eq!(manifest.stats.warnings, 1);
    let log = rig.service.job_log(id).unwrap();
    assert_eq!(
        log.matches(&format!("warning: {warning}\n")).count(),
        1,
        "{log}"
    );
    assert!(log.contains("after: unlock failed\n"), "{log}");
}

#[test]
fn after_a_failed_backup_a_failing_after_hook_runs_once_and_is_told_so() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    let ran = file(&rig, "after-ran");
    add_db(&rig, &[("after", &failing_after(&ran))]).unwrap();
    fs::remove_dir_all(&rig.src).unwrap();
    let (id, status) = run_job(&rig, "snapshot", "instance=db");
    assert_eq!(status["state"], "failed", "{status}");
    assert!(!error_of(&status).contains("hook"), "{status}");
    assert_eq!(read(&ran), "failure\n", "the after-hook ran once");
    assert!(rig.points("db").is_empty());
    let log = rig.service.job_log(id).unwrap();
    assert!(
        log.contains("warning: hook `after` exited with status 1: unlock failed\n"),
        "{log}"
    );
}

#[test]
fn a_failing_after_hook_through_a_mount_is_a_warning_cairn_points_shows() {
    if !fuse_available() {
        return;
    }
    let (env, src, daemon) = mounted_with_source();
    let ran = env.path("after-ran");
    env.run(&[
        "instance",
        "add",
        "redis",
        "--path",
        src.to_str().unwrap(),
        "--after",
        &failing_after(&ran),
    ])
    .ok();
    let snap = env.run(&["snapshot", "redis", "--json"]).ok().json();
    assert_eq!(
        snap["state"], "succeeded",
        "a warning, not a failure: {snap}"
    );
    let warning = "hook `after` exited with status 1: unlock failed";
    assert_eq!(snap["result"]["warnings"], serde_json::json!([warning]));
    let id = snap["id"].as_u64().unwrap();
    let log = read(&env.mnt().join(format!(".cairn/jobs/{id}/log")));
    assert!(log.contains(&format!("warning: {warning}\n")), "{log}");
    assert_eq!(read(&ran), "success\n", "the after-hook ran once");
    drop(daemon);

    let repo = env.repo();
    let listed = env
        .run(&["points", "redis", "--repo", &repo, "--json"])
        .ok()
        .json();
    let point = &listed["points"][0];
    assert_eq!(point["name"], snap["result"]["point"], "{listed}");
    assert_eq!(point["warnings"], serde_json::json!([warning]), "{listed}");
    assert_eq!(point["warning_count"], 1, "{listed}");
    let table = env.run(&["points", "redis", "--repo", &repo]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].ends_with("WARNINGS"), "{}", table.describe());
    assert!(lines[1].ends_with(" 1"), "{}", table.describe());
}
