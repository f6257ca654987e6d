//! Backups of a running PostgreSQL 15 (issue 12), against the real server with
//! `pgbench -i -s 10` data (1 000 000 accounts, about 160 MB) and `pgbench -c 2` writing
//! throughout the backup, through a real mount:
//! - a logical point (`pg_dump` in a snapshot the test exported and read), restored into a
//!   fresh cluster with psql from the mount: the totals the test read in that snapshot;
//! - the README's `pg_dumpall` recipe, restored with `--stdout all.sql | psql`; a second
//!   dump of the unchanged database stores under 1% of its size;
//! - a physical point (`pg_basebackup -D - -Ft -X fetch` as a command source), restored with
//!   `--stdout base.tar | tar -x`, started, passing `pg_amcheck`, and keeping pgbench's
//!   invariant (the balances of accounts, tellers and branches each sum to the history's).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli_env::{drain, wait_status, Env, COMMAND_LIMIT};
use crate::support::cli_repo::pack_bytes;
use crate::support::cli_run::exit_code;
use crate::support::db_servers::{postgres_available, Pgbench, Postgres};
use crate::support::mount::fuse_available;

const SCALE: u32 = 10;
const ACCOUNTS: u64 = 100_000 * SCALE as u64;

/// `count sum` of pgbench_accounts: what the restored database must repeat.
const TOTALS: &str = "SELECT count(*) || ' ' || sum(abalance) FROM pgbench_accounts";

/// A fresh environment (repository initialised) and a cluster with pgbench's tables in
/// database `bench`, pgbench writing into it and 50 transactions committed; None (the
/// test skips) without FUSE or PostgreSQL. `-X fetch` copies the WAL at the end of a base
/// backup: `wal_keep_size` keeps it until then.
fn bench_with_writer() -> Option<(Env, Postgres, Pgbench)> {
    if !fuse_available() || !postgres_available() {
        return None;
    }
    let env = Env::new();
    env.init();
    let live = Postgres::init(&env.path("live"));
    live.pgbench_init("bench", SCALE);
    live.psql("postgres", "ALTER SYSTEM SET wal_keep_size = '1GB'");
    live.psql("postgres", "SELECT pg_reload_conf()");
    let writer = live.pgbench_writer("bench");
    wait_for_writes(&live, 50);
    Some((env, live, writer))
}

fn history_rows(pg: &Postgres) -> u64 {
    let rows = pg.psql("bench", "SELECT count(*) FROM pgbench_history");
    rows.parse().unwrap_or_else(|_| panic!("count: {rows}"))
}

/// Waits (60 s at most) until pgbench has committed `rows` transactions.
fn wait_for_writes(pg: &Postgres, rows: u64) {
    let start = Instant::now();
    while history_rows(pg) < rows {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pgbench did not write"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// pgbench's invariant: each transaction adds the same delta to one account, teller and
/// branch and records it in the history, so in any consistent state the four sums agree.
/// Returns the accounts' count.
fn assert_pgbench_invariant(pg: &Postgres) -> u64 {
    let row = pg.psql(
        "bench",
        "SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || \
                (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || \
                (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || \
                (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || \
                (SELECT coalesce(sum(delta), 0) FROM pgbench_history)",
    );
    let v: Vec<i64> = row.split(' ').map(|n| n.parse().unwrap()).collect();
    assert_eq!(
        (v[1], v[2], v[3]),
        (v[4], v[4], v[4]),
        "sums of accounts, tellers, branches, history: {row}"
    );
    v[0] as u64
}

/// Runs `cairn ARGS` with its stdout piped into `consumer`; both must succeed.
fn pipe_into(env: &Env, args: &[&str], consumer: &mut Command) -> Output {
    let what = format!("cairn {}", args.join(" "));
    let mut cairn = env.command(args).spawn().expect("run cairn");
    let err = drain(cairn.stderr.take().expect("stderr"));
    let out = consumer
        .stdin(cairn.stdout.take().expect("stdout"))
        .output()
        .expect("run the consumer");
    let status = wait_status(&what, &mut cairn, COMMAND_LIMIT);
    assert_eq!(exit_code(status), 0, "{what}: {}", err.join().unwrap());
    assert!(
        out.status.success(),
        "{consumer:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// psql into database `db` of `pg`, reading its script from stdin.
fn psql_script(pg: &Postgres, db: &str, stop_on_error: bool) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args(pg.conn_args()).args(["-d", db, "-Xq"]);
    if stop_on_error {
        cmd.args(["-v", "ON_ERROR_STOP=1"]);
    }
    cmd.stdout(Stdio::null());
    cmd
}

/// A psql session kept open, one query a line, one result line each: holds the
/// transaction whose snapshot it exports. Drop ends it.
struct Session {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Session {
    fn open(pg: &Postgres, db: &str) -> Session {
        let mut child = Command::new("psql")
            .args(pg.conn_args())
            .args(["-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start psql");
        let input = child.stdin.take();
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Session {
            child,
            input,
            output,
        }
    }

    /// Sends `sql` (statements whose last one returns one row) and reads its one line.
    fn query(&mut self, sql: &str) -> String {
        let input = self.input.as_mut().expect("open session");
        writeln!(input, "{sql};").expect("write to psql");
        input.flush().expect("flush psql");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("read psql");
        assert!(!line.is_empty(), "psql ended on {sql}");
        line.trim().to_string()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.input.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_logical_dump_in_the_snapshot_the_test_read_restores_its_totals() {
    let Some((env, live, writer)) = bench_with_writer() else {
        return;
    };

    // "The same snapshot", exactly: this session opens a REPEATABLE READ transaction,
    // exports its snapshot (the first statement fixes it) and reads the totals in it;
    // the dump imports that snapshot with `pg_dump --snapshot=` while the session holds
    // the transaction open, so the dump and the read see the same committed state while
    // pgbench keeps committing. (pg_dumpall would take a snapshot per database, at a
    // moment the test cannot read in.)
    let mut session = Session::open(&live, "bench");
    let exported =
        session.query("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT pg_export_snapshot()");
    let seen = session.query(TOTALS);
    let seen_history: u64 = session
        .query("SELECT count(*) FROM pgbench_history")
        .parse()
        .unwrap();

    let _daemon = env.mount_background();
    let dump = format!("pg_dump {} --snapshot={exported} bench", live.conn_string());
    env.run(&[
        "instance",
        "add",
        "pg-bench",
        "--command",
        &dump,
        "--as",
        "bench.sql",
    ])
    .ok();
    let snap = env.run(&["snapshot", "pg-bench", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    drop(session);
    let written = history_rows(&live);
    writer.stop();
    assert!(
        written > seen_history,
        "pgbench wrote during the backup: {written} > {seen_history}"
    );

    // Restored from the mount with psql into a fresh cluster.
    let fresh = Postgres::init(&env.path("fresh"));
    fresh.psql("postgres", "CREATE DATABASE bench");
    let file = env.mnt().join("pg-bench/latest/bench.sql");
    let out = psql_script(&fresh, "bench", true)
        .arg("-f")
        .arg(&file)
        .output()
        .expect("run psql -f");
    assert!(
        out.status.success(),
        "psql -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fresh.psql("bench", TOTALS), seen);
    assert_eq!(history_rows(&fresh), seen_history);
    assert_eq!(assert_pgbench_invariant(&fresh), ACCOUNTS);
}

#[test]
fn the_dumpall_recipe_restores_with_psql_and_an_unchanged_dump_stores_under_1_percent() {
    let Some((env, live, writer)) = bench_with_writer() else {
        return;
    };
    // Stopped: the database does not change from here on.
    writer.stop();
    let totals = live.psql("bench", TOTALS);

    let _daemon = env.mount_background();
    let dumpall = format!("pg_dumpall {}", live.conn_string());
    env.run(&[
        "instance",
        "add",
        "pg",
        "--command",
        &dumpall,
        "--as",
        "all.sql",
    ])
    .ok();
    env.run(&["snapshot", "pg"]).ok();
    let size = std::fs::metadata(env.mnt().join("pg/latest/all.sql"))
        .expect("all.sql through the mount")
        .len();
    assert!(size > 50 << 20, "a dump of 1M accounts: {size} bytes");
    let repo = env.path("repo");
    let before = pack_bytes(&repo);
    env.run(&["snapshot", "pg"]).ok();
    let added = pack_bytes(&repo) - before;
    eprintln!("an unchanged dump of {size} bytes added {added} bytes");
    assert!(
        added < size / 100,
        "an unchanged dump of {size} bytes stored {added} bytes"
    );

    // The README's restore: `cairn restore pg latest --stdout all.sql | psql`. The dump
    // creates the role postgres, which exists: psql reports it and goes on.
    let fresh = Postgres::init(&env.path("fresh"));
    pipe_into(
        &env,
        &["restore", "pg", "latest", "--stdout", "all.sql"],
        &mut psql_script(&fresh, "postgres", false),
    );
    assert_eq!(fresh.psql("bench", TOTALS), totals);
    assert_eq!(assert_pgbench_invariant(&fresh), ACCOUNTS);
}

#[test]
fn a_physical_base_backup_restores_starts_and_passes_amcheck() {
    let Some((env, live, writer)) = bench_with_writer() else {
        return;
    };
    let before_backup = history_rows(&live);

    let _daemon = env.mount_background();
    // `-c fast`: the backup's checkpoint now, not spread over minutes.
    let base = format!(
        "pg_basebackup {} -D - -Ft -X fetch -c fast",
        live.conn_string()
    );
    env.run(&[
        "instance",
        "add",
        "pg-base",
        "--command",
        &base,
        "--as",
        "base.tar",
    ])
    .ok();
    let snap = env.run(&["snapshot", "pg-base", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    let after_backup = history_rows(&live);
    writer.stop();

    // `cairn restore pg-base latest --stdout base.tar | tar -x -C DIR`, owned by postgres.
    let data = env.path("restored");
    std::fs::create_dir_all(&data).unwrap();
    pipe_into(
        &env,
        &["restore", "pg-base", "latest", "--stdout", "base.tar"],
        Command::new("tar").arg("-x").arg("-C").arg(&data),
    );
    assert!(data.join("backup_label").is_file(), "a base backup");
    own_by_postgres(&data);
    let restored = Postgres::start(&data);

    restored.amcheck(&["--heapallindexed", "bench"]);
    assert_eq!(assert_pgbench_invariant(&restored), ACCOUNTS);
    let history = history_rows(&restored);
    assert!(
        history >= before_backup && history <= after_backup,
        "the backup holds pgbench's writes up to its end: {before_backup} <= {history} <= {after_backup}"
    );
    assert!(
        after_backup > before_backup,
        "pgbench wrote during the backup"
    );
}

/// `chown -R postgres:postgres DIR && chmod 0700 DIR`, as a data directory must be.
fn own_by_postgres(dir: &Path) {
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown {}", dir.display());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}
