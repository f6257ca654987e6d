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

/// The README's logical recipe: the RDB that `redis-cli --rdb -` streams, stored as
/// `dump.rdb` by a command source, restored with `--stdout` and loaded by a fresh server.
#[test]
fn a_point_of_redis_cli_rdb_loads_in_a_fresh_server() {
    if !fuse_available() || !available("redis-server") {
        return;
    }
    let env = Env::new();
    env.init();
    let live = Redis::start(&env.path("redis-data"), &[]);
    live.fill(KEYS, 11);
    let _daemon = env.mount_background();
    let command = format!("redis-cli -p {} --rdb -", live.port);
    env.run(&[
        "instance",
        "add",
        "redis-rdb",
        "--command",
        &command,
        "--as",
        "dump.rdb",
    ])
    .ok();
    let snap = env.run(&["snapshot", "redis-rdb", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    live.cli(&["SET", "key:after", "late"]);

    let out = env.path("rdb-restored");
    std::fs::create_dir_all(&out).unwrap();
    let dumped = env
        .command(&["restore", "redis-rdb", "latest", "--stdout", "dump.rdb"])
        .output()
        .expect("cairn restore --stdout");
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    assert!(dumped.stdout.starts_with(b"REDIS"), "an RDB on stdout");
    let through_mount = std::fs::read(env.mnt().join("redis-rdb/latest/dump.rdb")).unwrap();
    assert_eq!(through_mount, dumped.stdout, "the mount and --stdout agree");
    std::fs::write(out.join("dump.rdb"), &dumped.stdout).unwrap();
    let fresh = Redis::start(&out, &["--dbfilename", "dump.rdb"]);
    assert_same_keys(&fresh, 11);
    assert_eq!(fresh.cli(&["EXISTS", "key:after"]).trim(), "0");
}

/// The README's in-place restore: restore-before stops the server, the point's files are
/// swapped in, restore-after starts it again on the restored data (DCS's suspend, replace
/// the persistence file, reload).
#[test]
fn an_in_place_restore_stops_redis_swaps_its_files_and_starts_it() {
    if !fuse_available() || !available("redis-server") {
        return;
    }
    let env = Env::new();
    env.init();
    let data_dir = env.path("redis-data");
    let live = Redis::start(&data_dir, &["--dbfilename", "dump.rdb"]);
    let port = live.port;
    live.fill(KEYS, 5);
    let _daemon = env.mount_background();
    let data = data_dir.to_str().unwrap().to_string();
    let pidfile = env.path("redis.pid");
    let restart = format!(
        "redis-server --port {port} --bind 127.0.0.1 --dir {data} --dbfilename dump.rdb \
         --save '' --appendonly no --daemonize yes --pidfile {}",
        pidfile.display()
    );
    env.run(&[
        "instance",
        "add",
        "redis",
        "--path",
        &data,
        "--before",
        &bgsave_hook(port),
        "--restore-before",
        &format!("redis-cli -p {port} SHUTDOWN NOSAVE || true"),
        "--restore-after",
        &restart,
    ])
    .ok();
    env.run(&["snapshot", "redis"]).ok();
    // The data changes after the point, on disk too.
    live.cli(&["FLUSHALL"]);
    live.fill(10, 9);
    bgsave_and_wait(&live);
    assert_eq!(live.dbsize(), 10);

    env.run(&["restore", "redis", "latest", "--mode", "in-place"])
        .ok();
    drop(live); // restore-before shut it down; this reaps the process
    let back = Redis::adopt(port, &data_dir, &pidfile);
    assert_same_keys(&back, 5);
}

/// BGSAVE from the test itself, waited for as the hook does.
fn bgsave_and_wait(redis: &Redis) {
    let script = bgsave_hook(redis.port);
    let ok = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "BGSAVE");
}
