//! Point-in-time restores of a real PostgreSQL 15 (issue 13), through a real mount: the
//! README's recipe (a before-hook `pg_basebackup -Fp -X fetch` into the instance's path,
//! `archive_command = 'cairn log push pg %p --mount MNT'` run by the server as `postgres`,
//! a pusher of the instance on a mount with `--allow-other`), inserts over about ten
//! seconds with their commit timestamps (`track_commit_timestamp`), `pg_switch_wal()`,
//! then `cairn restore pg --at T` for three seconds T, each started as `postgres` after
//! the mount is gone: exactly the rows committed before T + 1 s, and the server's log
//! says recovery stopped at the target. Also every refusal of `--at` (before the first
//! point, after the last archived second, behind a deleted log record, a garbage time),
//! each writing nothing.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::logs_restore_at::{app_with_a_log, append, next_second};
use crate::support::cli_env::Env;
use crate::support::cli_run::cairn_bin;
use crate::support::db_servers::{postgres_available, Postgres};
use crate::support::mount::fuse_available;

/// Rows inserted after the base point, one every [`SLEEP`] seconds.
const ROWS: u32 = 50;
const SLEEP: &str = "0.2";

/// Rows 1..=ROWS into `t`, one every [`SLEEP`] seconds, from one psql reading the script
/// `file` (each statement its own transaction).
fn insert_slowly(pg: &Postgres, file: &Path) {
    let script: String = (1..=ROWS)
        .map(|i| format!("INSERT INTO t (i) VALUES ({i});\nSELECT pg_sleep({SLEEP});\n"))
        .collect();
    fs::write(file, script).unwrap();
    let out = Command::new("psql")
        .args(pg.conn_args())
        .args(["-d", "app", "-Xq", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rows of `t` committed before the end of the second `at`, as `1,2,3`.
fn committed_before_end_of(pg: &Postgres, at: &str) -> String {
    pg.psql(
        "app",
        &format!(
            "SELECT string_agg(i::text, ',' ORDER BY i) FROM t \
             WHERE pg_xact_commit_timestamp(xmin) < '{at}'::timestamptz + interval '1 second'"
        ),
    )
}

/// The second (RFC 3339, UTC) in which row `i` committed.
fn commit_second(pg: &Postgres, i: u32) -> String {
    pg.psql(
        "app",
        &format!(
            "SELECT to_char(pg_xact_commit_timestamp(xmin) AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM t WHERE i = {i}"
        ),
    )
}

/// `postgres`'s uid.
fn postgres_uid() -> u32 {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn postgres_restored_at_three_seconds_holds_exactly_the_commits_before_each_end() {
    if !fuse_available() || !postgres_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let live_dir = env.path("live");
    Postgres::create(&live_dir);
    let _daemon = env.mount_background_with(&["--allow-other"]);

    // The recipe's server: archiving through cairn, as `postgres`, with cairn on its PATH.
    let settings = format!(
        "archive_mode = on\n\
         archive_command = 'cairn log push pg %p --mount {}'\n\
         wal_level = replica\n\
         wal_keep_size = '256MB'\n\
         track_commit_timestamp = on\n",
        env.mnt_str()
    );
    let mut conf = fs::read_to_string(live_dir.join("postgresql.conf")).unwrap();
    conf.push_str(&settings);
    fs::write(live_dir.join("postgresql.conf"), conf).unwrap();
    let bin_dir = cairn_bin().parent().unwrap().display().to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let live = Postgres::start_with(&live_dir, &[("PATH", &path)]);
    live.psql("postgres", "CREATE DATABASE app");
    live.psql(
        "app",
        "CREATE TABLE t (ts timestamptz NOT NULL DEFAULT clock_timestamp(), i int PRIMARY KEY)",
    );
    live.psql("app", "INSERT INTO t (i) SELECT generate_series(-4, 0)");

    // The base point: a plain-format base backup by the before-hook into the path.
    let holder = env.path("pgbase");
    fs::create_dir_all(holder.join("base")).unwrap();
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&holder)
        .status()
        .unwrap();
    assert!(ok.success());
    let base = holder.join("base").display().to_string();
    let hook = format!(
        "rm -rf {base} && runuser -u postgres -- pg_basebackup {} -D {base} -Fp -X fetch -c fast",
        live.conn_string()
    );
    env.run(&[
        "instance",
        "add",
        "pg",
        "--path",
        &base,
        "--log-pushers",
        "postgres",
        "--before",
        &hook,
    ])
    .ok();
    let snap = env.run(&["snapshot", "pg", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");

    insert_slowly(&live, &env.path("inserts.sql"));
    let last = live.psql("app", "SELECT pg_walfile_name(pg_switch_wal())");
    wait_archived(&live, &last);

    // Three seconds: early, middle, late in the inserts (each with commits after it).
    let chosen: Vec<String> = [ROWS / 4, ROWS / 2, ROWS * 3 / 4]
        .iter()
        .map(|&i| commit_second(&live, i))
        .collect();
    let latest = restorable(&env)["latest"].as_str().unwrap().to_string();
    assert!(latest >= chosen[2], "latest {latest}, chosen {chosen:?}");
    let mut restores = Vec::new();
    for (n, at) in chosen.iter().enumerate() {
        let expected = committed_before_end_of(&live, at);
        let target = env.path(&format!("at-{n}"));
        let t = target.display().to_string();
        env.run(&["restore", "pg", "--at", at, "--target", &t])
            .ok()
            .stdout_has("restored");
        restores.push((at.clone(), target, expected));
    }
    let all = live.psql("app", "SELECT count(*) FROM t");
    drop(live);

    // Self-contained: started with neither the mount nor cairn around.
    env.run(&["umount", &env.mnt_str()]).ok();
    let uid = postgres_uid();
    for (at, data, expected) in restores {
        let md = fs::metadata(&data).unwrap();
        assert_eq!((md.uid(), md.mode() & 0o777), (uid, 0o700), "{at}");
        let restored = Postgres::start(&data);
        wait_promoted(&restored);
        let got = restored.psql("app", "SELECT string_agg(i::text, ',' ORDER BY i) FROM t");
        eprintln!("at {at}: rows {got} (of {all})");
        assert_eq!(got, expected, "at {at}");
        let late = restored.psql(
            "app",
            &format!(
                "SELECT count(*) FROM t WHERE ts >= '{at}'::timestamptz + interval '1 second'"
            ),
        );
        assert_eq!(late, "0", "at {at}: no row written after the second");
        assert!(got.starts_with("-4,-3,-2,-1,0,1,"), "at {at}: {got}");
        assert!(!got.ends_with(&format!(",{ROWS}")), "at {at}: {got}");
        let log = fs::read_to_string(data.join("server.log")).unwrap();
        assert!(
            log.contains("recovery stopping before commit of transaction"),
            "at {at}: {log}"
        );
    }
}

/// Waits (30 s at most) until the server has archived `segment`.
fn wait_archived(pg: &Postgres, segment: &str) {
    let start = Instant::now();
    loop {
        let row = pg.psql(
            "postgres",
            "SELECT coalesce(last_archived_wal, '') || ' ' || failed_count || ' ' || \
             coalesce(last_failed_wal, '') FROM pg_stat_archiver",
        );
        if row.split(' ').next().is_some_and(|w| w >= segment) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{segment} not archived: {row}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (60 s at most) until a restored server has promoted.
fn wait_promoted(pg: &Postgres) {
    let start = Instant::now();
    while pg.psql("postgres", "SELECT pg_is_in_recovery()") != "f" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still in recovery: {}",
            fs::read_to_string(pg.data.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `restorable` object of `cairn points pg --json`.
fn restorable(env: &Env) -> Value {
    env.run(&["points", "pg", "--json"]).ok().json()["restorable"].clone()
}

/// `2026-12-01T10:30:15Z` shifted by `secs`.
fn shifted(at: &str, secs: i64) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(at).unwrap() + chrono::Duration::seconds(secs);
    t.with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[test]
fn refused_times_exit_non_zero_name_why_and_write_nothing() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let (_daemon, log) = app_with_a_log(&env);
    // Four passes, a second apart, each storing one record.
    for n in 1..=4 {
        next_second();
        append(&log, &format!("line{n}\n"));
        env.run(&["log", "archive", "app"])
            .ok()
            .stdout_has("records=1");
    }
    let range = env.run(&["points", "app", "--json"]).ok().json()["restorable"].clone();
    let (earliest, latest) = (
        range["earliest"].as_str().unwrap().to_string(),
        range["latest"].as_str().unwrap().to_string(),
    );
    assert_eq!(range["gaps"], serde_json::json!([]), "{range}");

    // Each refusal: non-zero, a message saying why, no target (or the empty one as it was).
    let empty = env.path("empty-target");
    fs::create_dir_all(&empty).unwrap();
    let refuse = |at: &str, target: &Path, code: i32, needles: &[&str]| {
        let t = target.display().to_string();
        let run = env
            .run(&["restore", "app", "--at", at, "--target", &t])
            .code(code);
        for needle in needles {
            assert!(run.stderr.contains(needle), "{needle}: {}", run.describe());
        }
        if target == empty {
            assert_eq!(fs::read_dir(target).unwrap().count(), 0, "{at}: emptied");
        } else {
            assert!(!target.exists(), "{at}: {} written", target.display());
        }
    };
    let before = shifted(&earliest, -5);
    refuse(
        &before,
        &env.path("before"),
        1,
        &["has no point before", &earliest],
    );
    refuse(
        &shifted(&latest, 5),
        &empty,
        1,
        &["after the latest restorable second", &latest],
    );
    refuse("yesterday", &env.path("garbage"), 2, &["is not a time"]);
    refuse(
        "2026-12-01T10:30:15",
        &env.path("no-offset"),
        2,
        &["has no offset"],
    );

    // A gap: the object of the record before the last two deleted from the repository
    // (the daemon's first pass, at `instance add`, stored one too).
    let dir = env.path("repo/logs/app");
    let mut objects: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    objects.sort();
    assert!(objects.len() >= 4, "{objects:?}");
    fs::remove_file(&objects[objects.len() - 3]).unwrap();
    refuse(&latest, &env.path("gap"), 1, &["are missing", &latest]);
    refuse(&latest, &empty, 1, &["are missing"]);
    let points = env.run(&["points", "app"]).ok();
    assert!(
        !points.stdout.contains("(gaps: none)"),
        "{}",
        points.describe()
    );
}
