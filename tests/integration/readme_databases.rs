//! README.md's "Databases" section, run as written (issue 12): the test reads README.md,
//! takes the `sh` blocks of that section and runs each with `/bin/bash -e` against real
//! servers (tests/support/db_servers.rs) and a real mount, so that the recipes and this
//! test cannot drift apart. The convention (stated in the README): a block's first lines
//! set what is local to a machine as `VAR=${VAR:-default}`; the test gives each of those
//! variables a value of its own (private ports, sockets, directories) and nothing else
//! but CAIRN_MOUNT (its mount) and PATH (the cairn under test first), and refuses a block
//! whose variables it would leave at their defaults.
//! The data is small (thousands of rows and keys) so that the file stays fast; the db_
//! tests run the same recipes at full size with writers running.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::cli_env::{wait_limited, Env, COMMAND_LIMIT};
use crate::support::cli_run::cairn_bin;
use crate::support::db_servers::{available, postgres_available, MariaDb, Postgres, Redis};
use crate::support::mount::fuse_available;

/// The README's Databases section: from its heading to the next `## ` heading.
fn section() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let start = readme
        .find("\n## Databases\n")
        .expect("README.md has a Databases section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

/// The `sh` blocks of the section, in order.
fn blocks() -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in section().lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(
        current.is_none(),
        "an unclosed block in the Databases section"
    );
    out
}

/// The instance a block adds (`cairn instance add NAME ...`): how a test finds its block.
fn instance_of(block: &str) -> Option<&str> {
    block
        .split("cairn instance add ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
}

/// The block that adds instance `name`.
fn block(name: &str) -> String {
    blocks()
        .into_iter()
        .find(|b| instance_of(b) == Some(name))
        .unwrap_or_else(|| panic!("no block of the Databases section adds instance {name}"))
}

/// The variables a block declares at its top (`VAR=${VAR:-default}`, several to a line).
fn declared(block: &str) -> Vec<String> {
    let mut vars = Vec::new();
    for line in block.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let decls: Vec<&str> = words
            .iter()
            .filter_map(|w| {
                let (name, value) = w.split_once('=')?;
                value.starts_with(&format!("${{{name}:-")).then_some(name)
            })
            .collect();
        if words.is_empty() || decls.len() != words.len() {
            break;
        }
        vars.extend(decls.iter().map(|s| s.to_string()));
    }
    vars
}

/// Runs `block` with `bash -e` in `env`'s environment (the cairn under test first on PATH,
/// CAIRN_MOUNT at its mount), its declared variables set to `vars`: exactly those.
fn run_block(env: &Env, name: &str, vars: &[(&str, &Path)]) {
    let text = block(name);
    let mut want = declared(&text);
    let mut given: Vec<String> = vars.iter().map(|(k, _)| k.to_string()).collect();
    want.sort();
    given.sort();
    assert_eq!(
        want, given,
        "the variables block {name} declares and the ones the test sets"
    );
    let cairn = env.command(&[]);
    let mut bash = Command::new("/bin/bash");
    bash.args(["-e", "-c", &text]);
    for (key, value) in cairn.get_envs() {
        match value {
            Some(v) => bash.env(key, v),
            None => bash.env_remove(key),
        };
    }
    let bin_dir = cairn_bin().parent().expect("the binary's directory");
    let path = std::env::var("PATH").unwrap_or_default();
    bash.env("PATH", format!("{}:{path}", bin_dir.display()))
        .envs(vars.iter().map(|(k, v)| (k, v.as_os_str())))
        .current_dir(env.path(""))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = bash.spawn().expect("run /bin/bash");
    let run = wait_limited(&format!("README block {name}"), child, COMMAND_LIMIT);
    assert_eq!(
        run.code,
        0,
        "README block {name}:\n{text}\n{}",
        run.describe()
    );
}

/// A port as a variable's value.
fn port(p: u16) -> std::path::PathBuf {
    p.to_string().into()
}

#[test]
fn the_databases_section_has_one_block_per_recipe() {
    let names: Vec<String> = blocks()
        .iter()
        .map(|b| instance_of(b).unwrap_or("(none)").to_string())
        .collect();
    assert_eq!(
        names,
        [
            "redis",
            "redis-rdb",
            "pg",
            "pg-base",
            "maria",
            "maria-physical"
        ],
        "every block is run by a test here"
    );
    for b in blocks() {
        assert!(!declared(&b).is_empty(), "block without variables:\n{b}");
    }
}

const KEYS: usize = 10_000;

fn assert_keys(redis: &Redis, seed: u64) {
    assert_eq!(redis.dbsize(), KEYS as u64);
    for i in [0, 1, 4_242, KEYS - 1] {
        assert_eq!(
            redis.cli(&["GET", &format!("key:{i}")]).trim(),
            format!("value-{i}-{seed}"),
            "key:{i}"
        );
    }
}

#[test]
fn the_redis_bgsave_recipe_restores_a_loadable_directory() {
    if !fuse_available() || !available("redis-server") || !available("redis-check-rdb") {
        return;
    }
    let env = Env::new();
    env.init();
    let live = Redis::start(&env.path("redis-data"), &["--dbfilename", "dump.rdb"]);
    live.fill(KEYS, 3);
    let _daemon = env.mount_background();
    let restored = env.path("restored");
    run_block(
        &env,
        "redis",
        &[
            ("REDIS_PORT", &port(live.port)),
            ("REDIS_DIR", &live.dir),
            ("RESTORE_DIR", &restored),
        ],
    );
    let fresh = Redis::start(&restored, &["--dbfilename", "dump.rdb"]);
    assert_keys(&fresh, 3);
}

#[test]
fn the_redis_cli_rdb_recipe_restores_a_loadable_file() {
    if !fuse_available() || !available("redis-server") || !available("redis-check-rdb") {
        return;
    }
    let env = Env::new();
    env.init();
    let live = Redis::start(&env.path("redis-data"), &[]);
    live.fill(KEYS, 4);
    let _daemon = env.mount_background();
    let restored = env.path("rdb-restored");
    run_block(
        &env,
        "redis-rdb",
        &[("REDIS_PORT", &port(live.port)), ("RESTORE_DIR", &restored)],
    );
    let fresh = Redis::start(&restored, &["--dbfilename", "dump.rdb"]);
    assert_keys(&fresh, 4);
}

/// `count sum` of pgbench_accounts in database `app`.
const PG_TOTALS: &str = "SELECT count(*) || ' ' || sum(abalance) FROM pgbench_accounts";

/// A cluster in `dir` with pgbench's tables (scale 1) in database `app`, balances set.
fn pg_with_data(dir: &Path) -> Postgres {
    let pg = Postgres::init(dir);
    pg.pgbench_init("app", 1);
    pg.psql("app", "UPDATE pgbench_accounts SET abalance = aid % 997");
    pg
}

#[test]
fn the_pg_dumpall_recipe_restores_into_a_fresh_cluster() {
    if !fuse_available() || !postgres_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let live = pg_with_data(&env.path("pg/live"));
    let fresh = Postgres::init(&env.path("pg/fresh"));
    let _daemon = env.mount_background();
    run_block(
        &env,
        "pg",
        &[
            ("PGHOST", Path::new("127.0.0.1")),
            ("PGPORT", &port(live.port)),
            ("NEW_PGPORT", &port(fresh.port)),
        ],
    );
    assert_eq!(fresh.psql("app", PG_TOTALS), live.psql("app", PG_TOTALS));
}

#[test]
fn the_pg_basebackup_recipe_restores_a_cluster_that_starts_and_passes_amcheck() {
    if !fuse_available() || !postgres_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let live = pg_with_data(&env.path("pg/live"));
    let _daemon = env.mount_background();
    let newdata = env.path("pg/restored");
    run_block(
        &env,
        "pg-base",
        &[
            ("PGHOST", Path::new("127.0.0.1")),
            ("PGPORT", &port(live.port)),
            ("NEWDATA", &newdata),
        ],
    );
    let restored = Postgres::start(&newdata);
    restored.amcheck(&["--all"]);
    assert_eq!(restored.psql("app", PG_TOTALS), live.psql("app", PG_TOTALS));
}

/// `CHECKSUM TABLE` and the row count of the table the MariaDB recipes carry.
const MARIA_CHECK: &str = "CHECKSUM TABLE shop.items";

/// A server in `dir` with a table `shop.items` of 2 000 rows.
fn maria_with_data(dir: &Path) -> MariaDb {
    let db = MariaDb::init(dir);
    db.sql("CREATE DATABASE shop");
    db.sql(
        "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40), price INT) \
         ENGINE=InnoDB",
    );
    db.sql(
        "INSERT INTO shop.items SELECT seq, CONCAT('item-', seq), seq * 7 % 1000 \
         FROM shop.seq_1_to_2000",
    );
    db
}

#[test]
fn the_mariadb_dump_recipe_loads_in_a_fresh_server() {
    if !fuse_available() || !available("mariadbd") || !available("mariadb-dump") {
        return;
    }
    let env = Env::new();
    env.init();
    let live = maria_with_data(&env.path("maria/live"));
    let fresh = MariaDb::init(&env.path("maria/fresh"));
    let _daemon = env.mount_background();
    run_block(
        &env,
        "maria",
        &[
            ("MARIADB_SOCKET", &live.socket()),
            ("NEW_SOCKET", &fresh.socket()),
        ],
    );
    assert_eq!(fresh.sql(MARIA_CHECK), live.sql(MARIA_CHECK));
}

#[test]
fn the_mariadb_backup_recipe_prepares_a_directory_that_starts() {
    if !fuse_available()
        || !available("mariadbd")
        || !available("mariadb-backup")
        || !available("mbstream")
    {
        return;
    }
    let env = Env::new();
    env.init();
    let live = maria_with_data(&env.path("maria/live"));
    let _daemon = env.mount_background();
    let server_dir = env.path("maria/restored");
    std::fs::create_dir_all(&server_dir).unwrap();
    run_block(
        &env,
        "maria-physical",
        &[
            ("MARIADB_SOCKET", &live.socket()),
            ("NEWDATA", &server_dir.join("data")),
            ("BACKUP_TMP", &env.path("backup-tmp")),
        ],
    );
    let restored = MariaDb::start(&server_dir);
    assert_eq!(restored.sql(MARIA_CHECK), live.sql(MARIA_CHECK));
}
