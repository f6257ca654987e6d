//! Real database servers for tests, each on a private port with its data under the test's
//! temporary directory, each with a watchdog: [`Redis`] today. A server is stopped when
//! its guard drops (a test that fails stops it too) or when the watchdog strikes at
//! [`SERVER_LIMIT`]. In CI (`CI=true`) a missing server binary fails the test; elsewhere
//! the test is skipped with a message.

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

/// A server process the test owns: Drop, or the watchdog at [`SERVER_LIMIT`], kills it.
struct Watched {
    child: Option<Child>,
    done: Arc<AtomicBool>,
}

impl Watched {
    fn new(what: String, child: Child) -> Watched {
        let done = Arc::new(AtomicBool::new(false));
        let (d, pid) = (done.clone(), child.id() as i32);
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < SERVER_LIMIT {
                if d.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("WATCHDOG: {what} outlived {SERVER_LIMIT:?}: killing it");
            // SAFETY: kill(2) of the server this test started; `done` says it still runs.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        Watched {
            child: Some(child),
            done,
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
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
        let redis = Redis {
            port,
            dir: dir.to_path_buf(),
            _server: Watched::new(format!("redis-server on port {port}"), child),
        };
        let start = Instant::now();
        while redis.cli(&["PING"]).trim() != "PONG" {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "redis-server on port {port} did not answer PING"
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
