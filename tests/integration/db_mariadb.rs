//! Backups of a running MariaDB 10.11 (issue 12), against the real server, through a real
//! mount, with a writer committing transfers throughout the backup: a logical point
//! (`mariadb-dump --all-databases --single-transaction`) loaded into a fresh server, and a
//! physical point (`mariadb-backup --backup --stream=mbstream`) extracted, prepared and
//! started. Both are checked with CHECKSUM TABLE and a transfer invariant.
//!
//! How "what the backup saw" is known with a writer running: the database has two parts.
//! `shop.frozen` (200k rows) is written before the backup and never after, so the live
//! server's CHECKSUM TABLE of it is what any backup saw, and the restored one must equal
//! it. `shop.accounts` and `shop.transfers` are written throughout by transactions that
//! move an amount between two accounts and log it; a consistent backup is one moment of
//! them, so in the restored server every balance equals 1000 plus what its log says came in
//! minus what went out, the sum of balances is unchanged, and the log holds at least the
//! transfers committed before the backup began and at most those committed when it ended.
//! A torn copy (a balance without its log row, or half a transfer) breaks the invariant.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::cli_env::{drain, wait_status, Env, COMMAND_LIMIT};
use crate::support::db_servers::{available, MariaDb};
use crate::support::mount::fuse_available;

const ACCOUNTS: u64 = 1_000;
const FROZEN_ROWS: u64 = 200_000;

/// The schema, the 200k frozen rows (from the SEQUENCE engine), and the writer procedure:
/// one transfer per transaction until `ctl.stop` is set.
const SCHEMA: &str = "
CREATE DATABASE shop;
USE shop;
CREATE TABLE frozen (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL,
  note VARCHAR(64) NOT NULL) ENGINE=InnoDB;
INSERT INTO frozen SELECT seq, CONCAT('item-', seq), seq % 97,
  REPEAT(CHAR(65 + seq % 26), 1 + seq % 50) FROM seq_1_to_200000;
CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
INSERT INTO accounts SELECT seq, 1000 FROM seq_1_to_1000;
CREATE TABLE transfers (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT NOT NULL,
  dst INT NOT NULL, amount INT NOT NULL, KEY (src), KEY (dst)) ENGINE=InnoDB;
CREATE TABLE ctl (stop INT NOT NULL) ENGINE=InnoDB;
INSERT INTO ctl VALUES (0);
DELIMITER //
CREATE PROCEDURE writer()
BEGIN
  DECLARE a INT; DECLARE b INT; DECLARE n INT;
  WHILE (SELECT stop FROM ctl) = 0 DO
    SET a = 1 + FLOOR(RAND() * 1000), b = 1 + FLOOR(RAND() * 1000),
        n = 1 + FLOOR(RAND() * 100);
    START TRANSACTION;
    UPDATE accounts SET balance = balance - n WHERE id = a;
    UPDATE accounts SET balance = balance + n WHERE id = b;
    INSERT INTO transfers (src, dst, amount) VALUES (a, b, n);
    COMMIT;
    DO SLEEP(0.002);
  END WHILE;
END//
DELIMITER ;
";

/// The accounts whose balance disagrees with the transfer log (0 when consistent).
const TORN: &str = "SELECT COUNT(*) FROM shop.accounts a WHERE a.balance <> 1000
  + COALESCE((SELECT SUM(amount) FROM shop.transfers WHERE dst = a.id), 0)
  - COALESCE((SELECT SUM(amount) FROM shop.transfers WHERE src = a.id), 0)";

/// The writer's session (`CALL writer()`): stopped by [`Writer::stop`], killed on drop.
struct Writer {
    child: Child,
}

impl Writer {
    fn start(db: &MariaDb) -> Writer {
        let child = db
            .client()
            .args(["shop", "-e", "CALL writer()"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        let writer = Writer { child };
        // It has committed some transfers before any backup starts.
        let start = std::time::Instant::now();
        while transfers(db) < 20 {
            assert!(start.elapsed().as_secs() < 30, "the writer does not write");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        writer
    }

    fn stop(mut self, db: &MariaDb) {
        db.sql("UPDATE shop.ctl SET stop = 1");
        let status = wait_status("the writer", &mut self.child, COMMAND_LIMIT);
        assert!(status.success(), "the writer's session: {status}");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn transfers(db: &MariaDb) -> u64 {
    let n = db.sql("SELECT COUNT(*) FROM shop.transfers");
    n.parse().unwrap_or_else(|_| panic!("count: {n}"))
}

/// What the backup saw: the live CHECKSUM TABLE of `shop.frozen`, and the transfers
/// committed before the point began and when it ended.
struct Seen {
    frozen_sum: String,
    before: u64,
    after: u64,
}

/// Starts a live server with the schema and the writer, adds `instance` storing the
/// output of `command(socket)` as `name`, takes a point of it through the mount while the
/// writer runs, then stops the writer and the server.
fn point_while_writing(
    env: &Env,
    instance: &str,
    command: impl Fn(&Path) -> String,
    name: &str,
) -> Seen {
    let live = MariaDb::init(&env.path("maria"));
    live.source(SCHEMA);
    assert_eq!(
        live.sql("SELECT COUNT(*) FROM shop.frozen"),
        FROZEN_ROWS.to_string()
    );
    let frozen_sum = live.sql("CHECKSUM TABLE shop.frozen EXTENDED");
    let cmd = command(&live.socket());
    env.run(&["instance", "add", instance, "--command", &cmd, "--as", name])
        .ok();
    let writer = Writer::start(&live);
    let before = transfers(&live);
    let snap = env.run(&["snapshot", instance, "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    let after = transfers(&live);
    assert!(after > before, "the writer wrote during the backup");
    writer.stop(&live);
    Seen {
        frozen_sum,
        before,
        after,
    }
}

/// `cairn restore INSTANCE latest --stdout NAME` through the mount, into the file `out`.
fn restore_stdout(env: &Env, instance: &str, name: &str, out: &Path) {
    let args = ["restore", instance, "latest", "--stdout", name];
    let mut child = env
        .command(&args)
        .stdout(File::create(out).expect("the restored file"))
        .spawn()
        .expect("run cairn restore");
    let err = drain(child.stderr.take().expect("stderr"));
    let status = wait_status(&args.join(" "), &mut child, COMMAND_LIMIT);
    let err = err.join().unwrap_or_default();
    assert!(
        status.success(),
        "cairn {}: {status}\n{err}",
        args.join(" ")
    );
}

/// The restored server holds what the backup saw (see the module comment).
fn assert_consistent(restored: &MariaDb, seen: &Seen) {
    assert_eq!(
        restored.sql("CHECKSUM TABLE shop.frozen EXTENDED"),
        seen.frozen_sum
    );
    assert_eq!(
        restored.sql("SELECT COUNT(*) FROM shop.frozen"),
        FROZEN_ROWS.to_string()
    );
    assert_eq!(
        restored.sql("SELECT COUNT(*), SUM(balance) FROM shop.accounts"),
        format!("{ACCOUNTS}\t{}", ACCOUNTS * 1000)
    );
    assert_eq!(restored.sql(TORN), "0", "balances agree with the log");
    let got = transfers(restored);
    assert!(
        (seen.before..=seen.after).contains(&got),
        "{got} transfers, not within the {}..={} of the backup",
        seen.before,
        seen.after
    );
}

#[test]
fn a_logical_dump_taken_while_writing_loads_in_a_fresh_server() {
    if !fuse_available() || !available("mariadbd") || !available("mariadb-dump") {
        return;
    }
    let env = Env::new();
    env.init();
    let _daemon = env.mount_background();
    let dump = |socket: &Path| {
        format!(
            "mariadb-dump --socket={} -uroot --all-databases --single-transaction",
            socket.display()
        )
    };
    let seen = point_while_writing(&env, "maria", dump, "all.sql");

    let sql = env.path("all.sql");
    restore_stdout(&env, "maria", "all.sql", &sql);
    let fresh = MariaDb::init(&env.path("fresh"));
    fresh.load(&sql);
    assert_consistent(&fresh, &seen);
}

#[test]
fn a_physical_mbstream_taken_while_writing_prepares_and_starts() {
    if !fuse_available() || !available("mariadbd") || !available("mariadb-backup") {
        return;
    }
    let env = Env::new();
    env.init();
    let _daemon = env.mount_background();
    let tmp = env.path("backup-tmp");
    let backup = |socket: &Path| {
        format!(
            "mariadb-backup --no-defaults --backup --stream=mbstream --socket={} -uroot \
             --target-dir={}",
            socket.display(),
            tmp.display()
        )
    };
    let seen = point_while_writing(&env, "maria-physical", backup, "backup.mbstream");

    let stream = env.path("backup.mbstream");
    restore_stdout(&env, "maria-physical", "backup.mbstream", &stream);
    let data = env.path("physical/data");
    std::fs::create_dir_all(&data).unwrap();
    let extract = Command::new("mbstream")
        .arg("-x")
        .arg("-C")
        .arg(&data)
        .stdin(File::open(&stream).unwrap())
        .status()
        .expect("run mbstream");
    assert!(extract.success(), "mbstream -x: {extract}");
    let prepare = Command::new("mariadb-backup")
        .args(["--no-defaults", "--prepare"])
        .arg(format!("--target-dir={}", data.display()))
        .output()
        .expect("run mariadb-backup --prepare");
    assert!(
        prepare.status.success(),
        "mariadb-backup --prepare: {}",
        String::from_utf8_lossy(&prepare.stderr)
    );
    let restored = MariaDb::start(&env.path("physical"));
    assert_consistent(&restored, &seen);
}
