//! Real FUSE mounts for tests, each with a watchdog: if the test has not released the
//! mount by its deadline, the mount is lazily unmounted so every pending and later
//! operation on it fails, and the test fails in bounded time instead of hanging. A
//! watcher process detaches the mount if the test process dies (the mount has no
//! auto_unmount without allow_other).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::fs::{mount, MountOptions, Namespace};

use cairn::service::Service;

/// Whether this machine can mount FUSE. In CI a missing /dev/fuse is a failure.
pub fn fuse_available() -> bool {
    let ok =
        Path::new("/dev/fuse").exists() && Command::new("fusermount3").arg("-V").output().is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "FUSE is not available (need /dev/fuse and fusermount3) and CI=true"
        );
        eprintln!("WARNING: skipping a FUSE test: /dev/fuse or fusermount3 missing");
    }
    ok
}

pub struct MountGuard {
    pub dir: PathBuf,
    pub service: Service,
    session: Option<cairn::fs::Mount>,
    done: Arc<AtomicBool>,
    watcher: Option<(Child, ChildStdin)>,
}

/// A shell in its own session, deaf to signals, that detaches `dir` when its stdin ends
/// without `stop`: the write end lives (close-on-exec) only in this process.
fn spawn_watcher(dir: &Path) -> Option<(Child, ChildStdin)> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"trap '' INT TERM HUP; read -r line; [ "$line" = stop ] || fusermount3 -uz "$0""#)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().ok()?;
    let stdin = child.stdin.take()?;
    Some((child, stdin))
}

impl MountGuard {
    /// Mounts a namespace of `service` on `dir` with a watchdog of `limit`.
    pub fn new(service: Service, dir: &Path, limit: Duration) -> MountGuard {
        MountGuard::with_options(service, dir, limit, &MountOptions::default(), false)
    }

    /// [`new`](Self::new) with mount options, and the control plane shared or not.
    pub fn with_options(
        service: Service,
        dir: &Path,
        limit: Duration,
        opts: &MountOptions,
        share_control: bool,
    ) -> MountGuard {
        let ns = Namespace::new(service, 64 << 20).sharing_control(share_control);
        MountGuard::with_namespace(ns, dir, limit, opts)
    }

    /// Mounts `ns` (made by the test) on `dir` with a watchdog of `limit`.
    pub fn with_namespace(
        ns: Namespace,
        dir: &Path,
        limit: Duration,
        opts: &MountOptions,
    ) -> MountGuard {
        std::fs::create_dir_all(dir).unwrap();
        let service = ns.service().clone();
        let ns = Arc::new(ns);
        let watcher = spawn_watcher(dir);
        let session = mount(ns, dir, opts).expect("mount");
        let done = Arc::new(AtomicBool::new(false));
        let (d, path) = (done.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if d.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!(
                "WATCHDOG: mount at {} outlived {limit:?}; unmounting lazily",
                path.display()
            );
            let _ = Command::new("fusermount3").arg("-uz").arg(&path).status();
        });
        // Wait until the kernel answers for the mount.
        let start = Instant::now();
        while !is_mounted(dir) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mount did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        MountGuard {
            dir: dir.to_path_buf(),
            service,
            session: Some(session),
            done,
            watcher,
        }
    }
}

pub fn is_mounted(dir: &Path) -> bool {
    let target = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(target.to_str().unwrap_or("")))
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        self.service.shutdown();
        if let Some(s) = self.session.take() {
            // Detach first: fuser's own unmount leaves an AutoUnmount mount to fusermount3.
            let _ = cairn::fs::unmount(&self.dir);
            // The session ends once nothing holds the detached mount; never wait forever.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(s.join());
            });
            if rx.recv_timeout(Duration::from_secs(30)).is_err() && !std::thread::panicking() {
                panic!("the FUSE session did not end within 30 s of unmounting (a handle into the mount is still open?)");
            }
        }
        if let Some((mut child, mut stdin)) = self.watcher.take() {
            let _ = writeln!(stdin, "stop");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Runs a command with a time limit; returns (success, stdout, stderr).
pub fn run(limit_s: u32, cmd: &str, args: &[&str]) -> (bool, String, String) {
    run_with_env(limit_s, cmd, args, &[])
}

/// [`run`] with these environment variables set (an empty value removes one).
pub fn run_with_env(
    limit_s: u32,
    cmd: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut c = Command::new("timeout");
    c.arg("-k")
        .arg("5")
        .arg(limit_s.to_string())
        .arg(cmd)
        .args(args)
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        if v.is_empty() {
            c.env_remove(k);
        } else {
            c.env(k, v);
        }
    }
    let out = c.output().expect("run command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a request into a control file with a shell `echo`, as a user would.
pub fn echo_into(file: &Path, request: &str) -> (bool, String) {
    let script = format!(
        "echo '{}' > '{}'",
        request.replace('\'', "'\\''"),
        file.display()
    );
    let (ok, _, err) = run(30, "sh", &["-c", &script]);
    (ok, err)
}

/// Polls `jobs/<id>/status` through the mount until the job ends.
pub fn wait_job_file(mnt: &Path, id: u64, limit: Duration) -> serde_json::Value {
    let status = mnt.join(format!(".cairn/jobs/{id}/status"));
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let state = v["state"].as_str().unwrap_or("").to_string();
            if !state.is_empty() && state != "queued" && state != "running" {
                return v;
            }
        }
        assert!(
            start.elapsed() < limit,
            "job {id} did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes one request through a read-write handle and reads the reply back from it.
/// `Err` carries the errno and the reply text.
pub fn request(file: &Path, text: &str) -> Result<String, (i32, String)> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .expect("open control file");
    let written = f.write(text.as_bytes());
    let mut buf = vec![0u8; 4096];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    match written {
        Ok(_) => Ok(reply),
        Err(e) => Err((e.raw_os_error().unwrap_or(0), reply)),
    }
}

pub fn job_of(reply: &str) -> u64 {
    reply
        .trim()
        .strip_prefix("job=")
        .unwrap_or_else(|| panic!("not a job reply: {reply}"))
        .parse()
        .unwrap()
}
