//! Backups of a running Redis 7 (issue 12), against the real redis-server with 100k
//! keys, through a real mount: a point of its data directory taken by a before-hook that
//! runs BGSAVE and waits for it (DCS's physical backup), restored into a new directory and
//! loaded by a fresh redis-server on another port.

use crate::support::cli_env::Env;
use crate::support::db_servers::{available, Redis};
use crate::support::mount::fuse_available;

const KEYS: usize = 100_000;

/// The README's before-hook: BGSAVE, then wait while the save runs (the server reports
/// it in progress from the fork, before BGSAVE returns), and fail unless it succeeded.
fn bgsave_hook(port: u16) -> String {
    format!(
        "redis-cli -p {port} BGSAVE && \
         while redis-cli -p {port} INFO persistence | grep -q 'rdb_bgsave_in_progress:1'; \
         do sleep 0.1; done && \
         redis-cli -p {port} INFO persistence | grep -q 'rdb_last_bgsave_status:ok'"
    )
}

fn assert_same_keys(redis: &Redis, seed: u64) {
    assert_eq!(redis.dbsize(), KEYS as u64);
    for i in [0, 1, 4_242, 77_777, KEYS - 1] {
        assert_eq!(
            redis.cli(&["GET", &format!("key:{i}")]).trim(),
            format!("value-{i}-{seed}"),
            "key:{i}"
        );
    }
}

#[test]
fn a_point_taken_by_a_bgsave_hook_loads_in_a_fresh_server() {
    if !fuse_available() || !available("redis-server") {
        return;
    }
    let env = Env::new();
    env.init();
    let live = Redis::start(&env.path("redis-data"), &[]);
    live.fill(KEYS, 7);
    assert_eq!(live.dbsize(), KEYS as u64);
    let _daemon = env.mount_background();
    let data = live.dir.to_str().unwrap().to_string();
    env.run(&[
        "instance",
        "add",
        "redis",
        "--path",
        &data,
        "--before",
        &bgsave_hook(live.port),
        "--hook-timeout",
        "120",
    ])
    .ok();
    let snap = env.run(&["snapshot", "redis", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    // Writes after the point are not in it.
    live.cli(&["SET", "key:after", "late"]);

    // The RDB reads back through the mount as it was saved.
    let through_mount = env.mnt().join("redis/latest/dump.rdb");
    let stored = std::fs::read(&through_mount).expect("dump.rdb through the mount");
    assert!(stored.starts_with(b"REDIS"), "an RDB file");

    let target = env.path("restored");
    env.run(&[
        "restore",
        "redis",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(target.join("dump.rdb")).unwrap(), stored);
    let fresh = Redis::start(&target, &["--dbfilename", "dump.rdb"]);
    assert_same_keys(&fresh, 7);
    assert_eq!(fresh.cli(&["EXISTS", "key:after"]).trim(), "0");
}
