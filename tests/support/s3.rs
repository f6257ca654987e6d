//! An S3 endpoint for the tests.
//!
//! `scripts/test.sh` starts one SeaweedFS server per run and passes it in the
//! `CAIRN_TEST_S3_*` variables. Without them (a plain `cargo test`), the first
//! call to [`s3_env`] starts a private SeaweedFS server for this test process,
//! which dies with the process. Tests share the bucket: give each its own
//! [`unique_prefix`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    pub secret: String,
}

const BUCKET: &str = "cairn-test";
/// Ports `weed mini` always opens (master, volume, filer, iceberg, lance, admin).
const WEED_FIXED_PORTS: [u16; 10] = [
    9333, 19333, 9340, 19340, 8888, 18888, 8181, 9101, 23646, 33646,
];
const FILER_PORT: u16 = 8888;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

static ENV: OnceLock<Result<S3Env, String>> = OnceLock::new();

/// The S3 server for the tests, or `None` (after a loud warning) if there is
/// none. With `CI=true` a missing server is a panic, never a silent skip.
pub fn s3_env() -> Option<&'static S3Env> {
    let env = ENV.get_or_init(|| {
        let env = from_env_vars().unwrap_or_else(start_seaweedfs);
        if let Err(why) = &env {
            if !in_ci() {
                // Not eprintln!: the test harness would capture it.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!!!!! WARNING: no S3 server, S3 tests are SKIPPED: {why}\n\
                     !!!!!!!! Run scripts/test.sh, or set CAIRN_WEED to a SeaweedFS `weed` binary.\n"
                );
            }
        }
        env
    });
    match env {
        Ok(env) => Some(env),
        Err(why) if in_ci() => panic!("CI=true and no S3 server for the tests: {why}"),
        Err(_) => None,
    }
}

/// A key prefix no other test (in this or another process) uses.
pub fn unique_prefix(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos();
    format!("{tag}-{}-{n}-{nanos}", std::process::id())
}

/// The variables that point the CLI at this server through `endpoint` (the server's
/// own, or a proxy in front of it).
pub fn cli_vars(env: &S3Env, endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", env.key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", env.secret.as_str()),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `Some` iff `CAIRN_TEST_S3_ENDPOINT` is set.
fn from_env_vars() -> Option<Result<S3Env, String>> {
    let endpoint = std::env::var("CAIRN_TEST_S3_ENDPOINT").ok()?;
    let var = |name: &str| {
        std::env::var(name).map_err(|_| format!("CAIRN_TEST_S3_ENDPOINT is set but {name} is not"))
    };
    let (key, secret) = match (var("CAIRN_TEST_S3_KEY"), var("CAIRN_TEST_S3_SECRET")) {
        (Ok(key), Ok(secret)) => (key, secret),
        (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
    };
    let bucket = std::env::var("CAIRN_TEST_S3_BUCKET").unwrap_or_else(|_| BUCKET.to_string());
    Some(Ok(S3Env {
        endpoint,
        bucket,
        key,
        secret,
    }))
}

/// `weed` from `$CAIRN_WEED`, `<repo>/.venv/bin/weed` or `PATH`.
fn find_weed() -> Option<PathBuf> {
    if let Some(w) = std::env::var_os("CAIRN_WEED").filter(|w| !w.is_empty()) {
        return Some(PathBuf::from(w));
    }
    // CARGO_MANIFEST_DIR is the repo root, or cli/ for tests of the CLI crate.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = manifest.ancestors().map(|d| d.join(".venv/bin/weed"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path: Vec<PathBuf> = std::env::split_paths(&path)
        .map(|d| d.join("weed"))
        .collect();
    venv.chain(on_path).find(|p| p.is_file())
}

fn start_seaweedfs() -> Result<S3Env, String> {
    let weed = find_weed().ok_or("no `weed` binary ($CAIRN_WEED, <repo>/.venv/bin/weed, PATH)")?;
    let busy: Vec<u16> = WEED_FIXED_PORTS
        .into_iter()
        .filter(|&p| port_busy(p))
        .collect();
    if !busy.is_empty() {
        return Err(format!(
            "ports `weed mini` needs are in use: {busy:?} (a stale weed? see `pgrep -ax weed`)"
        ));
    }
    let port = free_s3_port().ok_or("found no free port for S3")?;
    let tmp = tempfile::Builder::new()
        .prefix("cairn-test-weed.")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let dir = tmp.path().to_path_buf();
    let env = S3Env {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: BUCKET.to_string(),
        key: "cairn-test".to_string(),
        secret: unique_prefix("secret"),
    };
    let config = format!(
        r#"{{"identities":[{{"name":"cairn","credentials":[{{"accessKey":"{}","secretKey":"{}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#,
        env.key, env.secret
    );
    std::fs::write(dir.join("s3.json"), config)
        .map_err(|e| format!("cannot write s3.json: {e}"))?;
    std::fs::create_dir(dir.join("data")).map_err(|e| format!("cannot create data dir: {e}"))?;
    let log_path = dir.join("weed.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("cannot create weed.log: {e}"))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot dup weed.log: {e}"))?;

    let mut cmd = Command::new(&weed);
    cmd.arg(format!("-logdir={}", dir.display())) // else glog files pile up in $TMPDIR
        .arg("mini")
        .arg(format!("-dir={}", dir.join("data").display()))
        .args([
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-webdav=false",
        ])
        .arg(format!("-s3.port={port}"))
        .arg(format!("-s3.config={}", dir.join("s3.json").display()))
        .arg(format!("-bucket={BUCKET}"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }

    // PDEATHSIG fires when the *thread* that spawned the child exits, so spawn
    // it from a thread that lives as long as the process.
    let (tx, rx) = mpsc::channel();
    let exited: Arc<Mutex<Option<String>>> = Arc::default();
    let exited2 = Arc::clone(&exited);
    std::thread::Builder::new()
        .name("seaweedfs".into())
        .spawn(move || {
            match cmd.spawn() {
                Err(e) => drop(tx.send(Err(e))),
                Ok(mut child) => {
                    drop(tx.send(Ok(child.id())));
                    let status = child
                        .wait()
                        .map_or_else(|e| e.to_string(), |s| s.to_string());
                    *exited2.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                }
            }
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("cannot spawn a thread: {e}"))?;
    let pid = rx
        .recv()
        .map_err(|_| "seaweedfs thread died".to_string())?
        .map_err(|e| format!("cannot run {}: {e}", weed.display()))?;
    register_cleanup(pid, tmp.keep(), port); // from now on removed at exit

    let started = Instant::now();
    let failure = loop {
        if let Some(status) = exited.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            break format!("SeaweedFS exited during startup ({status})");
        }
        // Ready = the S3 port answers HTTP and the filer has the bucket.
        if http_status(port, "/").is_some()
            && http_status(FILER_PORT, &format!("/buckets/{BUCKET}/")) == Some(200)
        {
            eprintln!(
                "support::s3: started SeaweedFS ({}) on {} in {:.1}s, dir {}",
                weed.display(),
                env.endpoint,
                started.elapsed().as_secs_f64(),
                dir.display()
            );
            return Ok(env);
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            break format!("SeaweedFS not ready after {STARTUP_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Err(format!("{failure}; end of {}:\n{tail}", log_path.display()))
}

/// At process exit: kill the server, remove its dir and the sockets it left in /tmp.
fn register_cleanup(pid: u32, dir: PathBuf, port: u16) {
    static SERVER: OnceLock<(u32, PathBuf, u16)> = OnceLock::new();
    extern "C" fn cleanup() {
        if let Some((pid, dir, port)) = SERVER.get() {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
            let _ = std::fs::remove_dir_all(dir);
            let tmp = Path::new("/tmp"); // weed puts its sockets there, whatever $TMPDIR says
            let _ = std::fs::remove_file(tmp.join(format!("seaweedfs-s3-{port}.sock")));
            let _ =
                std::fs::remove_file(tmp.join(format!("seaweedfs-s3-grpc-{}.sock", port + 10000)));
        }
    }
    if SERVER.set((pid, dir, port)).is_ok() {
        // SAFETY: registers a plain extern "C" fn.
        unsafe { libc::atexit(cleanup) };
    }
}

fn port_busy(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A free port whose gRPC companion (port + 10000) is free too.
fn free_s3_port() -> Option<u16> {
    (0..50).find_map(|_| {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let ok = port < 55000
            && !WEED_FIXED_PORTS
                .iter()
                .any(|&f| f == port || f == port + 10000)
            && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok();
        ok.then_some(port)
    })
}

/// Status code of `GET path` on 127.0.0.1:port, if it answers HTTP.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    let head = std::str::from_utf8(&head).ok()?;
    head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}
