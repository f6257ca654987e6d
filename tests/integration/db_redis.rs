//! Backups of a running Redis 7 (issue 12), against the real redis-server: 100k keys, a
//! point of its data directory taken after a BGSAVE has finished, restored into a new
//! directory and loaded by a fresh redis-server on another port.

use std::time::{Duration, Instant};

use crate::support::cli_repo::Cli;
use crate::support::db_servers::{available, Redis};

const KEYS: usize = 100_000;

/// Asks for a BGSAVE and waits until it has finished (LASTSAVE moves past `before`).
fn bgsave_and_wait(redis: &Redis) {
    let before = redis.cli(&["LASTSAVE"]).trim().to_string();
    assert!(redis.cli(&["BGSAVE"]).contains("Background saving started"));
    let start = Instant::now();
    while redis.cli(&["LASTSAVE"]).trim() == before
        || redis
            .cli(&["INFO", "persistence"])
            .contains("rdb_bgsave_in_progress:1")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "BGSAVE did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_point_of_a_saved_data_directory_loads_in_a_fresh_server() {
    if !available("redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let live = Redis::start(&dir.path().join("redis-data"), &[]);
    live.fill(KEYS, 7);
    assert_eq!(live.dbsize(), KEYS as u64);
    // LASTSAVE has a resolution of a second: let it move.
    std::thread::sleep(Duration::from_millis(1100));
    bgsave_and_wait(&live);
    let data = live.dir.to_str().unwrap().to_string();
    cli.run(&["snapshot", "redis", "--repo", &repo, "--path", &data])
        .ok();
    // Writes after the point are not in it.
    live.cli(&["SET", "key:after", "late"]);

    let target = dir.path().join("restored");
    let target_str = target.to_str().unwrap().to_string();
    cli.run(&[
        "restore",
        "redis",
        "latest",
        "--repo",
        &repo,
        "--target",
        &target_str,
    ])
    .ok();
    assert!(
        target.join("dump.rdb").is_file(),
        "the RDB file is restored"
    );
    let fresh = Redis::start(&target, &["--dbfilename", "dump.rdb"]);
    assert_eq!(fresh.dbsize(), KEYS as u64);
    for i in [0, 1, 4_242, 77_777, KEYS - 1] {
        assert_eq!(
            fresh.cli(&["GET", &format!("key:{i}")]).trim(),
            format!("value-{i}-7"),
            "key:{i}"
        );
    }
    assert_eq!(fresh.cli(&["EXISTS", "key:after"]).trim(), "0");
}
