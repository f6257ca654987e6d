//! Point-in-time restores of a real MariaDB 10.11 (issue 13), through a real mount, as
//! README's recipe does it: binary logs on (`log-bin`, row format), the instance's
//! `--log '<datadir>/binlog.[0-9]*' --log-every 1`, a base point by `mariadb-backup
//! --backup` in a before-hook into the instance's path (it records the binlog position in
//! `xtrabackup_binlog_info`), then inserts over about ten seconds. For three seconds T,
//! `cairn restore maria --at T`, `mariadb-backup --prepare`, a fresh server on it and the
//! restore's `replay.sh`: exactly the rows written before T + 1 s (binlog events carry
//! whole seconds, the rows their statement's start), and CHECKSUM TABLE equal to the live
//! server's of those rows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cli_env::Env;
use crate::support::db_servers::{available, MariaDb};
use crate::support::mount::fuse_available;

/// Rows inserted after the base point, one every [`SLEEP`] seconds.
const ROWS: u32 = 50;
const SLEEP: &str = "0.2";

/// The rows of `shop.t` (every row, or those written before the epoch second `end`).
fn rows(db: &MariaDb, end: Option<i64>) -> String {
    let filter = end.map_or(String::new(), |e| {
        format!(" WHERE UNIX_TIMESTAMP(ts) < {e}")
    });
    db.sql(&format!(
        "SELECT GROUP_CONCAT(i ORDER BY i) FROM shop.t{filter}"
    ))
}

/// The checksum (without the table's name) of `CHECKSUM TABLE table EXTENDED`.
fn checksum(db: &MariaDb, table: &str) -> String {
    let out = db.sql(&format!("CHECKSUM TABLE {table} EXTENDED"));
    out.split('\t').nth(1).unwrap_or(&out).to_string()
}

fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `program args`; must succeed.
fn run(program: &str, args: &[String]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (30 s at most) until the restorable range of `instance` reaches `second`.
fn wait_restorable(env: &Env, instance: &str, second: &str) {
    let start = Instant::now();
    loop {
        let v = env.run(&["points", instance, "--json"]).ok().json();
        let latest = v["restorable"]["latest"].as_str().unwrap_or("");
        if latest >= second {
            assert_eq!(v["restorable"]["gaps"], serde_json::json!([]), "{v}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not restorable to {second}: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn mariadb_restored_at_three_seconds_and_replayed_holds_exactly_the_rows_before_each_end() {
    if !fuse_available()
        || !available("mariadbd")
        || !available("mariadb-backup")
        || !available("mariadb-binlog")
    {
        return;
    }
    let env = Env::new();
    env.init();
    let _daemon = env.mount_background();
    let live = MariaDb::init_with(&env.path("maria"), true);
    live.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (ts TIMESTAMP(6) NOT NULL \
         DEFAULT CURRENT_TIMESTAMP(6), i INT PRIMARY KEY) ENGINE=InnoDB; \
         INSERT INTO shop.t (i) VALUES (-4), (-3), (-2), (-1), (0)",
    );
    let datadir = env.path("maria/data");
    let backup = env.path("backup");
    std::fs::create_dir_all(&backup).unwrap();
    let b = backup.display().to_string();
    let hook = format!(
        "rm -rf {b} && mariadb-backup --no-defaults --backup --socket={} -uroot --target-dir={b}",
        live.socket().display()
    );
    let glob = format!("{}/binlog.[0-9]*", datadir.display());
    env.run(&[
        "instance",
        "add",
        "maria",
        "--path",
        &b,
        "--log",
        &glob,
        "--log-every",
        "1",
        "--before",
        &hook,
    ])
    .ok();
    let snap = env.run(&["snapshot", "maria", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    assert!(backup.join("xtrabackup_binlog_info").is_file());

    // One client, each statement its own transaction.
    let inserts: String = (1..=ROWS)
        .map(|i| format!("INSERT INTO shop.t (i) VALUES ({i}); DO SLEEP({SLEEP});\n"))
        .collect();
    live.source(&inserts);
    let second_of = |i: u32| -> i64 {
        let s = live.sql(&format!(
            "SELECT FLOOR(UNIX_TIMESTAMP(ts)) FROM shop.t WHERE i = {i}"
        ));
        s.parse()
            .unwrap_or_else(|_| panic!("second of row {i}: {s}"))
    };
    wait_restorable(&env, "maria", &rfc3339(second_of(ROWS)));

    // Three seconds: early, middle, late in the inserts. What the live server wrote
    // before each end, and its checksum (a copy of those rows, in a table like t).
    live.sql("CREATE DATABASE expect");
    let mut cases = Vec::new();
    for (n, i) in [ROWS / 4, ROWS / 2, ROWS * 3 / 4].into_iter().enumerate() {
        let second = second_of(i);
        let end = second + 1;
        live.sql(&format!(
            "CREATE TABLE expect.upto{n} LIKE shop.t; \
             INSERT INTO expect.upto{n} SELECT * FROM shop.t WHERE UNIX_TIMESTAMP(ts) < {end}"
        ));
        let sum = checksum(&live, &format!("expect.upto{n}"));
        cases.push((rfc3339(second), rows(&live, Some(end)), sum));
    }
    let all = rows(&live, None);
    drop(live);

    for (n, (at, expected, sum)) in cases.into_iter().enumerate() {
        let dir = env.path(&format!("at-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        let d = data.display().to_string();
        env.run(&["restore", "maria", "--at", &at, "--target", &d])
            .ok()
            .stdout_has("restored");
        assert!(data.join("binlogs").is_dir() && data.join("replay.sh").is_file());
        run(
            "mariadb-backup",
            &[
                "--no-defaults".into(),
                "--prepare".into(),
                format!("--target-dir={d}"),
            ],
        );
        let restored = MariaDb::start(&dir);
        assert_eq!(rows(&restored, None), "-4,-3,-2,-1,0", "the base point");
        replay(&data.join("replay.sh"), &restored);
        let got = rows(&restored, None);
        eprintln!("at {at}: rows {got} (of {all})");
        assert_eq!(got, expected, "at {at}");
        assert!(got.starts_with("-4,-3,-2,-1,0,1,"), "at {at}: {got}");
        assert!(!got.ends_with(&format!(",{ROWS}")), "at {at}: {got}");
        assert_eq!(checksum(&restored, "shop.t"), sum, "at {at}");
    }
}

/// `replay.sh --no-defaults --socket=S -uroot` into `db`; must succeed.
fn replay(script: &Path, db: &MariaDb) {
    run(
        "bash",
        &[
            script.display().to_string(),
            "--no-defaults".into(),
            format!("--socket={}", db.socket().display()),
            "-uroot".into(),
        ],
    );
}
