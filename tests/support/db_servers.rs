//! Real database servers for tests, each on a private port with its data under the test's
//! temporary directory, each with a watchdog: [`Redis`], [`Postgres`], [`MariaDb`]. A
//! server is stopped when its guard drops (a test that fails stops it too) or when the
//! watchdog strikes at [`SERVER_LIMIT`]. In CI (`CI=true`) a missing server binary fails
//! the test; elsewhere the test is skipped with a message.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A test's server must be stopped within this; then the watchdog kills it.
pub const SERVER_LIMIT: Duration = Duration::from_secs(900);

/// Whether `program` can run here. In CI its absence is a failure, not a skip.
pub fn available(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is missing (scripts/test.sh installs it)"
        );
        eprintln!("skipping: {program} is not installed (scripts/test.sh installs it)");
    }
    found
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A server process the test owns (a child, or a daemon known by its pid): Drop, or the
/// watchdog at [`SERVER_LIMIT`], kills it.
struct Watched {
    child: Option<Child>,
    pid: i32,
    done: Arc<AtomicBool>,
}

impl Watched {
    fn new(what: String, child: Child) -> Watched {
        let pid = child.id() as i32;
        Watched::start(what, Some(child), pid)
    }

    /// A server that daemonized itself: known by its pid only.
    fn pid(what: String, pid: i32) -> Watched {
        Watched::start(what, None, pid)
    }

    fn start(what: String, child: Option<Child>, pid: i32) -> Watched {
        let done = watchdog(move || {
            eprintln!("WATCHDOG: {what} outlived {SERVER_LIMIT:?}: killing it");
            // SAFETY: kill(2) of the server this test started; `done` says it still runs.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        Watched { child, pid, done }
    }
}

/// Runs `expire` on a thread after [`SERVER_LIMIT`] unless the flag returned is set
/// first (by the owner's Drop, once the server is stopped).
fn watchdog(expire: impl FnOnce() + Send + 'static) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < SERVER_LIMIT {
            if d.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        expire();
    });
    done
}

impl Drop for Watched {
    fn drop(&mut self) {
        match self.child.take() {
            Some(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            // SAFETY: kill(2) of the daemon this test adopted by its pid file.
            None => unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            },
        }
        self.done.store(true, Ordering::SeqCst);
    }
}

/// A private redis-server (no persistence unless asked): `--port P --dir D`.
pub struct Redis {
    pub port: u16,
    pub dir: PathBuf,
    _server: Watched,
}

impl Redis {
    /// Starts redis-server with its data in `dir` (created), plus `extra` arguments,
    /// and waits until it answers PING.
    pub fn start(dir: &Path, extra: &[&str]) -> Redis {
        std::fs::create_dir_all(dir).expect("redis dir");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        Redis {
            port,
            dir: dir.to_path_buf(),
            _server: Watched::new(format!("redis-server on port {port}"), child),
        }
        .answering()
    }

    /// A redis-server that something else started with `--daemonize yes --pidfile
    /// PIDFILE` on `port` (a hook, say): waits for its pid file and its PING, then owns it.
    pub fn adopt(port: u16, dir: &Path, pidfile: &Path) -> Redis {
        let start = Instant::now();
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                break pid;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no pid file {}",
                pidfile.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Redis {
            port,
            dir: dir.to_path_buf(),
            _server: Watched::pid(format!("redis-server on port {port}"), pid),
        }
        .answering()
    }

    fn answering(self) -> Redis {
        let redis = self;
        let start = Instant::now();
        while redis.cli(&["PING"]).trim() != "PONG" {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "redis-server on port {} did not answer PING",
                redis.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    /// `redis-cli -p PORT ARGS...`; its stdout (a failure to run it fails the test).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `count` keys `key:N` = `value-N-<seed>` in one pipelined batch.
    pub fn fill(&self, count: usize, seed: u64) {
        use std::io::Write;
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("run redis-cli --pipe");
        let mut input = child.stdin.take().expect("stdin");
        let mut batch = Vec::with_capacity(count * 48);
        for i in 0..count {
            let (k, v) = (format!("key:{i}"), format!("value-{i}-{seed}"));
            write!(
                batch,
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .expect("batch");
        }
        input.write_all(&batch).expect("feed redis-cli");
        drop(input);
        assert!(
            child.wait().expect("redis-cli").success(),
            "redis-cli --pipe"
        );
    }

    /// DBSIZE.
    pub fn dbsize(&self) -> u64 {
        let out = self.cli(&["DBSIZE"]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("DBSIZE: {out}"))
    }
}

/// PostgreSQL 15's server binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Whether PostgreSQL 15 can run here (see [`available`] for CI).
pub fn postgres_available() -> bool {
    available(&format!("{PG_BIN}/postgres")) && available("runuser")
}

/// Runs `program args...` as the `postgres` user (the server refuses root).
fn as_postgres(program: &str, args: &[&str]) -> std::process::Output {
    as_postgres_with(program, args, &[])
}

/// [`as_postgres`] with `vars` set (runuser keeps the environment).
fn as_postgres_with(program: &str, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--", program])
        .args(args)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("runuser {program}: {e}"))
}

/// A private PostgreSQL 15 cluster: `initdb` into DIR (owned by `postgres`, 0700), the
/// server on 127.0.0.1:PORT with trust authentication and its socket in the cluster's
/// directory. Drop, or the watchdog at [`SERVER_LIMIT`], stops it (`pg_ctl -m immediate`).
pub struct Postgres {
    pub port: u16,
    pub data: PathBuf,
    done: Arc<AtomicBool>,
}

impl Postgres {
    /// Makes a new cluster in `data` (its parent must let `postgres` pass: this makes
    /// every ancestor under the temporary root 0711) and starts it.
    pub fn init(data: &Path) -> Postgres {
        Postgres::create(data);
        Postgres::start(data)
    }

    /// Makes a new cluster in `data`, as [`Postgres::init`], without starting it.
    pub fn create(data: &Path) {
        std::fs::create_dir_all(data).expect("pg data dir");
        let mut up = data.parent();
        while let Some(dir) = up {
            if dir == Path::new("/") || dir == std::env::temp_dir() {
                break;
            }
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir)
                .expect("ancestor")
                .permissions()
                .mode();
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711));
            up = dir.parent();
        }
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(data)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {}", data.display());
        let d = data.to_str().expect("utf-8 path");
        let out = as_postgres(
            &format!("{PG_BIN}/initdb"),
            &["-D", d, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster in `data` (made by [`Postgres::init`], or restored) on a new port.
    pub fn start(data: &Path) -> Postgres {
        Postgres::start_with(data, &[])
    }

    /// [`Postgres::start`] with `vars` in the server's environment (what its
    /// `archive_command` sees).
    pub fn start_with(data: &Path, vars: &[(&str, &str)]) -> Postgres {
        let port = free_port();
        let d = data.to_str().expect("utf-8 path");
        let opts = format!("-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off");
        let log = format!("{d}/server.log");
        let out = as_postgres_with(
            &format!("{PG_BIN}/pg_ctl"),
            &["-D", d, "-o", &opts, "-l", &log, "-w", "-t", "60", "start"],
            vars,
        );
        let pg = Postgres::watched(port, data);
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        pg
    }

    fn watched(port: u16, data: &Path) -> Postgres {
        let dir = data.to_path_buf();
        let done = watchdog(move || {
            eprintln!(
                "WATCHDOG: postgres in {} outlived {SERVER_LIMIT:?}",
                dir.display()
            );
            pg_stop(&dir);
        });
        Postgres {
            port,
            data: data.to_path_buf(),
            done,
        }
    }

    /// Runs `pg_amcheck` with `args` against this server; fails the test with its output
    /// unless it finds the cluster consistent.
    pub fn amcheck(&self, args: &[&str]) {
        let out = Command::new(format!("{PG_BIN}/pg_amcheck"))
            .args(self.conn_args())
            .arg("--install-missing")
            .args(args)
            .output()
            .expect("run pg_amcheck");
        assert!(
            out.status.success(),
            "pg_amcheck: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `psql` on database `db` running `sql`: its stdout, unaligned and without headers.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `CREATE DATABASE db`, then `pgbench -i -s SCALE -q db` (100 000 accounts a scale).
    pub fn pgbench_init(&self, db: &str, scale: u32) {
        self.psql("postgres", &format!("CREATE DATABASE {db}"));
        let out = Command::new("pgbench")
            .args(self.conn_args())
            .args(["-i", "-s", &scale.to_string(), "-q", db])
            .stdin(Stdio::null())
            .output()
            .expect("run pgbench -i");
        assert!(
            out.status.success(),
            "pgbench -i: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `pgbench -c 2` writing into `db` (TPC-B transactions) until it is stopped.
    pub fn pgbench_writer(&self, db: &str) -> Pgbench {
        let child = Command::new("pgbench")
            .args(self.conn_args())
            .args(["-c", "2", "-T", "600", db])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbench");
        Pgbench {
            port: self.port,
            _client: Watched::new(format!("pgbench on port {}", self.port), child),
        }
    }

    /// The connection options as one string, for a command an instance runs.
    pub fn conn_string(&self) -> String {
        self.conn_args().join(" ")
    }

    /// The arguments that reach this server (for pg_dump, pgbench, psql, pg_basebackup).
    pub fn conn_args(&self) -> Vec<String> {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// A running `pgbench` client: Drop, or the watchdog at [`SERVER_LIMIT`], kills it.
pub struct Pgbench {
    port: u16,
    _client: Watched,
}

impl Pgbench {
    /// Kills the client, then waits until the server has no pgbench session left, so that
    /// nothing commits after this returns.
    pub fn stop(self) {
        let port = self.port.to_string();
        drop(self);
        let start = Instant::now();
        loop {
            let out = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-XAtq", "-c"])
                .arg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")
                .output()
                .expect("run psql");
            if String::from_utf8_lossy(&out.stdout).trim() == "0" {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "pgbench sessions outlived their client"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn pg_stop(data: &Path) {
    if let Some(d) = data.to_str() {
        let _ = as_postgres(
            &format!("{PG_BIN}/pg_ctl"),
            &["-D", d, "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        pg_stop(&self.data);
    }
}

/// DIR/tmp (created): the server's temporary files, so that two servers bootstrapping at
/// once do not share (and clean up) each other's temporary tables in /tmp.
fn private_tmp(dir: &Path) -> PathBuf {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("mariadb tmp dir");
    tmp
}

/// A private MariaDB server (`mariadbd --no-defaults`, as root with `--user=root`): data in
/// DIR/data, the socket DIR/mysqld.sock, temporary files in DIR/tmp, TCP on 127.0.0.1:PORT.
pub struct MariaDb {
    pub port: u16,
    pub dir: PathBuf,
    _server: Watched,
}

impl MariaDb {
    /// `mariadb-install-db` into DIR/data, then [`MariaDb::start`].
    pub fn init(dir: &Path) -> MariaDb {
        MariaDb::init_with(dir, false)
    }

    /// `mariadb-install-db` into DIR/data, then [`MariaDb::start_with`] `binlog`.
    pub fn init_with(dir: &Path, binlog: bool) -> MariaDb {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("mariadb data dir");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", private_tmp(dir).display()))
            .args([
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        MariaDb::start_with(dir, binlog)
    }

    /// Starts mariadbd on DIR/data (made by [`MariaDb::init`], or restored) on a new port.
    pub fn start(dir: &Path) -> MariaDb {
        MariaDb::start_with(dir, false)
    }

    /// [`MariaDb::start`], with binary logs in row format (DIR/data/binlog.NNNNNN and
    /// binlog.index) when `binlog`.
    pub fn start_with(dir: &Path, binlog: bool) -> MariaDb {
        let logs: &[&str] = if binlog {
            &["--log-bin=binlog", "--binlog-format=ROW", "--server-id=1"]
        } else {
            &["--skip-log-bin"]
        };
        let port = free_port();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--tmpdir={}", private_tmp(dir).display()))
            .args([
                &format!("--port={port}"),
                "--bind-address=127.0.0.1",
                "--user=root",
            ])
            .arg("--innodb-flush-log-at-trx-commit=2")
            .args(logs)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let db = MariaDb {
            port,
            dir: dir.to_path_buf(),
            _server: Watched::new(format!("mariadbd on port {port}"), child),
        };
        let start = Instant::now();
        while db.try_sql("SELECT 1").as_deref() != Some("1") {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "mariadbd did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        db
    }

    /// The socket clients reach the server by (as root).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// The `mariadb` client as root on this server's socket; the caller adds the rest.
    pub fn client(&self) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .arg("-uroot");
        cmd
    }

    fn try_sql(&self, sql: &str) -> Option<String> {
        let out = self
            .client()
            .args(["-N", "-B", "-e", sql])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs `sql` as root; its output (tab-separated, no headers). A failure fails the test.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|| panic!("mariadb -e {sql:?} failed"))
    }

    /// Runs the SQL in `file` (a script, or a dump) as root; a failure fails the test.
    pub fn load(&self, file: &Path) {
        let input = std::fs::File::open(file).expect("open the SQL file");
        let out = self.client().stdin(input).output().expect("run mariadb");
        assert!(
            out.status.success(),
            "mariadb < {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `script` (statements and `DELIMITER` lines, as the client reads them) as root.
    pub fn source(&self, script: &str) {
        let file = self.dir.join("script.sql");
        std::fs::write(&file, script).expect("write the script");
        self.load(&file);
    }
}
