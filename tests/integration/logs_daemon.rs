//! The control plane of logs (issue 13) with a real daemon and mount: the log keys of
//! `cairn instance add` (round trip and refusals), the daemon's passes every
//! `--log-every` seconds (a growing file is archived, an idle daemon writes no object),
//! `cairn log archive` (mount and `--repo`), and `cairn log push` through the mount and
//! with `--repo` (same bytes again: 0; other bytes: refused; durable when it returns),
//! also as a log pusher (a system user that may push and do nothing else). Every mount
//! is guarded by [`Daemon`](crate::support::daemon::Daemon), every command's wait limited.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn::model::InstanceConfig;
use cairn::repo::Repository;
use cairn::store::{Location, Store};

use crate::logs_restore_at::append;
use crate::support::cli_env::{wait_limited, Env, COMMAND_LIMIT};
use crate::support::cli_run::{cairn_bin, Run};
use crate::support::daemon::Daemon;
use crate::support::mount::fuse_available;

const PUSHER: &str = "cairn-test-pusher";

/// The log record objects of `instance` in the environment's local repository.
fn log_objects(env: &Env, instance: &str) -> usize {
    fs::read_dir(env.path("repo").join("logs").join(instance))
        .map(|d| d.filter_map(|e| e.ok()).count())
        .unwrap_or(0)
}

/// Waits until `instance` has more than `n` log objects; returns how many.
fn wait_objects_above(env: &Env, instance: &str, n: usize, limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let now = log_objects(env, instance);
        if now > n {
            return now;
        }
        assert!(
            start.elapsed() < limit,
            "instance {instance} still has {now} log objects after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The definition of `name` as the repository stores it.
fn definition(env: &Env, name: &str) -> InstanceConfig {
    let store = Store::open(&Location::Local(env.path("repo"))).unwrap();
    let repo = Repository::open(store, None).unwrap();
    let json = repo.get_sealed(&InstanceConfig::object_key(name)).unwrap();
    InstanceConfig::decode(name, &json).unwrap()
}

#[test]
fn log_keys_daemon_passes_log_archive_and_an_idle_daemon() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let aof = env.path("redis/appendonlydir");
    fs::create_dir_all(&aof).unwrap();
    append(
        &aof.join("appendonly.aof.1.incr.aof"),
        "*1\r\n$4\r\nPING\r\n",
    );
    let glob = format!("{}/*", aof.display());
    let slow = env.path("slow");
    fs::create_dir_all(&slow).unwrap();
    append(&slow.join("app.log"), "one\n");
    let slow_glob = format!("{}/*.log", slow.display());
    let _daemon = env.mount_background();

    // Refusals: nothing is defined.
    for (args, needle) in [
        (vec!["--log", "relative/*"], "absolute"),
        (vec!["--log", "/x/[", "--log-every", "1"], "log=/x/["),
        (vec!["--log-every", "5"], "log=GLOB"),
        (
            vec!["--log", "/x/*", "--log-pushers", "no-such-user-cairn"],
            "no user",
        ),
        (vec!["--log", "/x/*", "--log-every", "0"], "--log-every"),
    ] {
        let mut all = vec!["instance", "add", "bad"];
        all.extend(args);
        env.run(&all).code(2).stderr_has(needle);
    }
    assert!(!env.mnt().join("bad").exists());

    // Round trip: the definition holds the keys (version 2).
    env.run(&[
        "instance",
        "add",
        "r",
        "--log",
        &glob,
        "--log-every",
        "1",
        "--log-pushers",
        "root,0",
    ])
    .ok()
    .stdout_has("log-every 1");
    let d = definition(&env, "r");
    assert_eq!(d.version, 2);
    assert_eq!(d.logs.globs, vec![glob.clone()]);
    assert_eq!(d.logs.every_secs, Some(1));
    assert_eq!(d.logs.pushers, vec!["root".to_string(), "0".to_string()]);
    assert!(d.paths.is_empty() && d.commands.is_empty());
    env.run(&[
        "instance",
        "add",
        "m",
        "--log",
        &slow_glob,
        "--log-every",
        "86400",
    ])
    .ok();

    // The daemon's first pass comes at once, the next ones every second.
    let first = wait_objects_above(&env, "r", 0, Duration::from_secs(10));
    append(
        &aof.join("appendonly.aof.1.incr.aof"),
        "*1\r\n$4\r\nPING\r\n",
    );
    let grown = wait_objects_above(&env, "r", first, Duration::from_secs(5));
    assert_eq!(grown, first + 1, "one record for one grown file");
    let events = fs::read_to_string(env.mnt().join(".cairn/events")).unwrap();
    assert!(events.contains("\"log-archived\""), "{events}");

    // Idle: several passes, no object written, no event.
    wait_objects_above(&env, "m", 0, Duration::from_secs(10));
    // The event follows the object: let it be recorded.
    std::thread::sleep(Duration::from_millis(300));
    let (r, m) = (log_objects(&env, "r"), log_objects(&env, "m"));
    let events = fs::read_to_string(env.mnt().join(".cairn/events")).unwrap();
    let archived = events.matches("\"log-archived\"").count();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!((log_objects(&env, "r"), log_objects(&env, "m")), (r, m));
    let events = fs::read_to_string(env.mnt().join(".cairn/events")).unwrap();
    assert_eq!(
        events.matches("\"log-archived\"").count(),
        archived,
        "{events}"
    );

    // On request: `m` passes every day, so what is new waits for `cairn log archive`.
    env.run(&["log", "archive", "m"])
        .ok()
        .stdout_has("records=0");
    append(&slow.join("app.log"), "two\n");
    env.run(&["log", "archive", "m"])
        .ok()
        .stdout_has("records=1 files=1 bytes=4");
    assert_eq!(log_objects(&env, "m"), m + 1);
    env.run(&["log", "archive", "nope"])
        .code(2)
        .stderr_has("no instance");
    env.run(&["log", "archive", "bad"]).code(2);
    let ev = fs::read_to_string(env.mnt().join(".cairn/events")).unwrap();
    assert!(ev.contains("\"log-archive\""), "{ev}");

    // With --repo, after the daemon is gone: the same pass in this process.
    env.run(&["umount", &env.mnt_str()]).ok();
    append(&slow.join("app.log"), "three\n");
    let repo = env.repo();
    let run = env
        .run(&["log", "archive", "m", "--repo", &repo, "--json"])
        .ok();
    let v = run.json();
    assert_eq!(
        (v["records"].as_u64(), v["bytes"].as_u64()),
        (Some(1), Some(6)),
        "{v}"
    );
    env.run(&["log", "archive", "m", "--repo", &repo])
        .ok()
        .stdout_has("0 B new");
}

/// A system user for the pusher tests (made once, kept: `useradd -r`).
fn pusher_uid() -> u32 {
    let id = |_: ()| {
        Command::new("id")
            .args(["-u", PUSHER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
    };
    if let Some(uid) = id(()) {
        return uid;
    }
    let status = Command::new("useradd")
        .args(["-r", "-M", "-s", "/usr/sbin/nologin", PUSHER])
        .status()
        .expect("useradd");
    // Another test may have made it meanwhile.
    id(()).unwrap_or_else(|| panic!("useradd {PUSHER} failed: {status}"))
}

/// `cairn ARGS` as the pusher, in `dir`, through the mount at `mnt`.
fn as_pusher(env: &Env, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", PUSHER, "--"])
        .arg(cairn_bin())
        .args(args)
        .arg("--mount")
        .arg(env.mnt())
        .current_dir(dir)
        .env_remove("CAIRN_PASSWORD")
        .env_remove("CAIRN_REPO")
        .env_remove("CAIRN_MOUNT")
        .env("CAIRN_CACHE_DIR", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wait_limited(
        &format!("(as {PUSHER}) cairn {}", args.join(" ")),
        cmd.spawn().expect("runuser"),
        COMMAND_LIMIT,
    )
}

/// A 0755 work directory whose parents the pusher can pass.
fn open_up(p: &Path) {
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    for dir in p.ancestors().skip(1) {
        let mode = fs::metadata(dir).unwrap().permissions().mode();
        assert!(mode & 0o001 != 0, "{} is not o+x", dir.display());
    }
}

#[test]
fn log_push_through_the_mount_as_owner_and_pusher_and_with_repo() {
    if !fuse_available() {
        return;
    }
    let uid = pusher_uid();
    let env = Env::new();
    env.init();
    open_up(&env.path(""));
    let data: PathBuf = env.path("pgdata");
    let wal = data.join("pg_wal");
    fs::create_dir_all(&wal).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&wal, fs::Permissions::from_mode(0o755)).unwrap();
    let segment: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(wal.join("000000010000000000000001"), &segment).unwrap();
    fs::write(wal.join("000000010000000000000002"), b"second segment").unwrap();
    let (repo, mnt) = (env.repo(), env.mnt_str());
    let run = env.run(&[
        "mount",
        "--background",
        "--json",
        "--allow-other",
        &repo,
        &mnt,
    ]);
    let pid = serde_json::from_str::<serde_json::Value>(run.stdout.trim())
        .ok()
        .and_then(|v| v["pid"].as_u64());
    let _daemon = Daemon::new(env.mnt(), pid.map(|p| p as i32), None);
    run.ok();
    let meta = env.mnt().join(".cairn");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&meta), 0o700, "no pushers yet");
    env.run(&["instance", "add", "pg", "--log-pushers", PUSHER])
        .ok();
    env.run(&["instance", "add", "other"]).ok();
    assert_eq!((mode(&meta), mode(&meta.join("ctl"))), (0o711, 0o711));
    assert_eq!(mode(&meta.join("ctl/log")), 0o666);
    assert_eq!(mode(&meta.join("ctl/snapshot")), 0o600);

    // The owner pushes a 16 MiB segment, relative to the data directory (%p).
    let push = |args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.current_dir(&data);
        wait_limited(
            &format!("cairn {}", args.join(" ")),
            cmd.spawn().unwrap(),
            COMMAND_LIMIT,
        )
    };
    let start = Instant::now();
    push(&["log", "push", "pg", "pg_wal/000000010000000000000001"])
        .ok()
        .stdout_has("stored, durable");
    let took = start.elapsed();
    eprintln!("push of a 16 MiB segment through the mount: {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let stored = log_objects(&env, "pg");
    assert!(stored >= 1);
    push(&["log", "push", "pg", "pg_wal/000000010000000000000001"])
        .ok()
        .stdout_has("already archived with these bytes");
    assert_eq!(
        log_objects(&env, "pg"),
        stored,
        "the same bytes again store nothing"
    );
    fs::write(data.join("000000010000000000000001"), b"other bytes").unwrap();
    push(&["log", "push", "pg", "000000010000000000000001"])
        .code(1)
        .stderr_has("already archived with other content");

    // The pusher pushes pg's logs, and does nothing else.
    as_pusher(
        &env,
        &data,
        &["log", "push", "pg", "pg_wal/000000010000000000000002"],
    )
    .ok()
    .stdout_has("stored, durable");
    as_pusher(
        &env,
        &data,
        &["log", "push", "pg", "pg_wal/000000010000000000000002"],
    )
    .ok();
    for args in [
        &["log", "push", "other", "pg_wal/000000010000000000000002"][..],
        &["log", "archive", "pg"],
        &["snapshot", "pg", "--no-wait"],
        &["prune", "--dry-run"],
    ] {
        as_pusher(&env, &data, args).failed();
    }
    let events = fs::read_to_string(meta.join("events")).unwrap();
    let pushed: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "log-pushed")
        .collect();
    assert_eq!(pushed.len(), 5, "{events}");
    assert_eq!(
        pushed.iter().filter(|e| e["uid"] == uid).count(),
        2,
        "{events}"
    );
    assert_eq!(
        pushed
            .iter()
            .filter(|e| e["outcome"]["ok"] == false)
            .count(),
        1
    );

    // With --repo, after the daemon is gone.
    env.run(&["umount", &mnt]).ok();
    fs::write(wal.join("000000010000000000000003"), b"third").unwrap();
    let before = log_objects(&env, "pg");
    let seg3 = "pg_wal/000000010000000000000003";
    let with_repo = || push(&["log", "push", "pg", seg3, "--repo", &repo]);
    with_repo().ok().stdout_has("stored, durable");
    assert_eq!(log_objects(&env, "pg"), before + 1);
    with_repo().ok().stdout_has("already archived");
    fs::write(wal.join("000000010000000000000003"), b"3rd").unwrap();
    with_repo().code(1).stderr_has("other content");
}
