//! Point-in-time restore of a running Redis 7 (issue 13), against the real redis-server
//! through a real mount: a base point of its data directory, then one key written in each
//! of several seconds with AOF timestamps on and the AOF archived every second; a
//! restore at a chosen second, and a copy of `<mnt>/r/@TIME/`, each loaded by a fresh
//! redis-server, hold exactly the keys written up to that second.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::cli_env::Env;
use crate::support::db_servers::{available, Redis};
use crate::support::mount::fuse_available;

const SECONDS: u64 = 8;

/// Redis persisting every write to its AOF at once, with `#TS:` annotations.
const AOF: &[&str] = &[
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--aof-timestamp-enabled",
    "yes",
];

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// Sleeps until `ms` milliseconds into the next second; returns that second.
fn into_next_second(ms: u64) -> u64 {
    let t = now();
    let next = t.as_secs() + 1;
    std::thread::sleep(Duration::from_secs(next) + Duration::from_millis(ms) - t);
    next
}

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn compact(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .format("%Y-%m-%dT%H%M%SZ")
        .to_string()
}

/// The `k_*` keys a fresh redis-server finds in the data directory `dir`.
fn keys_in(dir: &Path) -> Vec<String> {
    let redis = Redis::start(dir, AOF);
    let mut keys: Vec<String> = redis
        .cli(&["KEYS", "k_*"])
        .lines()
        .map(str::to_string)
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort();
    keys
}

#[test]
fn a_restore_at_a_second_and_its_time_travel_directory_hold_the_writes_up_to_it() {
    if !fuse_available() || !available("redis-server") {
        return;
    }
    let env = Env::new();
    env.init();
    let live = Redis::start(&env.path("redis-data"), AOF);
    live.cli(&["SET", "base", "1"]);
    let _daemon = env.mount_background();
    let data = live.dir.to_str().unwrap().to_string();
    let glob = format!("{data}/appendonlydir/*");
    env.run(&[
        "instance",
        "add",
        "r",
        "--path",
        &data,
        "--log",
        &glob,
        "--log-every",
        "1",
    ])
    .ok();
    let snap = env.run(&["snapshot", "r", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");

    // One key in each second, written well inside it.
    let mut written = Vec::new();
    for i in 0..SECONDS {
        let second = into_next_second(300);
        live.cli(&["SET", &format!("k_{i:02}"), &second.to_string()]);
        written.push((format!("k_{i:02}"), second));
    }
    // Two passes after the last write: everything is archived.
    std::thread::sleep(Duration::from_millis(2500));

    for pick in [1usize, 4, SECONDS as usize - 2] {
        let t = written[pick].1;
        let expected: Vec<String> = written
            .iter()
            .filter(|(_, s)| *s <= t)
            .map(|(k, _)| k.clone())
            .collect();
        let target = env.path(&format!("restored-{pick}"));
        env.run(&[
            "restore",
            "r",
            "--at",
            &rfc3339(t),
            "--target",
            target.to_str().unwrap(),
        ])
        .ok();
        assert_eq!(keys_in(&target), expected, "restore --at {}", rfc3339(t));

        let copy = env.path(&format!("copied-{pick}"));
        let view = env.mnt().join("r").join(format!("@{}", compact(t)));
        let cp = std::process::Command::new("cp")
            .arg("-a")
            .arg(&view)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(cp.success(), "cp -a {}", view.display());
        assert_eq!(keys_in(&copy), expected, "a copy of {}", view.display());
    }
}
