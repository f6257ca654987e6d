//! `cairn mount REPO DIR` serves a repository as a filesystem until it is unmounted or
//! the daemon gets SIGTERM/SIGINT; `--background` starts that daemon detached and returns
//! once the mount answers. `cairn umount DIR` detaches a mount.
//!
//! A daemon that dies without unmounting (SIGKILL, a crash) must not leave a dead mount
//! behind. The mount is made with `auto_unmount`, and the daemon also starts a watcher:
//! a tiny child process (cairn itself, in its own session, ignoring signals) that blocks
//! reading a pipe whose write end only the daemon holds. When the read returns end of
//! file without the daemon having said `stop`, the daemon is gone and the watcher
//! detaches the mount (only the very mount the daemon made, by its mount id).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::catalog;
use cairn::engine::disk_cache;
use cairn::fs::{MountOptions, Namespace};
use cairn::service::Service;

use super::{absolute, print_json, Invocation, Status};
use crate::failure::{coded, usage};
use crate::mounts;
use crate::stderr_note::note;
use crate::{password, repo_args};

/// How long `--background` waits for the daemon's mount to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping daemon waits for the kernel to release the detached mount.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a foreground mount looks whether its session ended from outside.
const SESSION_POLL: Duration = Duration::from_secs(1);

#[derive(Args, Debug)]
pub struct MountArgs {
    /// The repository: a path, file:///ABS/PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or
    /// az://CONTAINER/PREFIX.
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// An existing directory to mount it on.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Start the daemon detached and return once the mount answers.
    #[arg(long)]
    pub background: bool,
    /// Let other users in (not root: needs user_allow_other in /etc/fuse.conf). The
    /// kernel still enforces the stored owners and modes.
    #[arg(long)]
    pub allow_other: bool,
    /// With --allow-other: let other users also read .cairn (jobs, events, stats,
    /// policies), which shows the owner's requests. By default .cairn is the owner's only
    /// (directories 0700, files 0600); control files are always the owner's.
    #[arg(long, requires = "allow_other")]
    pub share_control: bool,
    /// MiB of repository data kept in memory for reads (the on-disk cache beside the
    /// catalog holds 4x that, at least 1 GiB, unless CAIRN_BLOB_CACHE_MB sets its size).
    #[arg(long, value_name = "MiB", default_value_t = 32)]
    pub cache_size: u64,
    /// Jobs that may run at once (on different instances).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
    /// With --background: print one JSON object (`dir`, `pid`, `log`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Internal: run as the daemon `--background` starts (the password comes on stdin).
    #[arg(long, hide = true)]
    pub daemon_child: bool,
}

#[derive(Args, Debug)]
pub struct UmountArgs {
    /// Where a repository is mounted.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The word that starts the watcher process: `cairn __mount-watcher DIR` (main.rs reads
/// it apart from the other commands, so that no help or completion offers it).
pub const WATCHER: &str = "__mount-watcher";

#[derive(Args, Debug)]
pub struct WatcherArgs {
    /// The mount point to detach if the daemon dies.
    pub dir: PathBuf,
}

/// Refuses a directory that cannot be mounted on; returns it absolute and resolved.
fn check_mount_point(dir: &Path) -> Result<PathBuf> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(usage(format!("{shown} is not a directory"))),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(usage(format!(
                "{shown} holds a mount whose daemon is gone: `cairn umount {shown}` clears it"
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(usage(format!(
                "{shown} does not exist: create the directory first (mkdir -p {shown})"
            )))
        }
        Err(e) => return Err(usage(format!("cannot use {shown} as a mount point: {e}"))),
    }
    if mounts::cairn_mount_at(dir).is_some() {
        return Err(usage(format!(
            "a repository is already mounted at {shown}: `cairn umount {shown}` first, or use \
             it with --mount {shown}"
        )));
    }
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {shown}"))
}

pub fn run(inv: &Invocation<'_>, args: &MountArgs) -> Result<Status> {
    if args.cache_size == 0 {
        return Err(usage("--cache-size must be at least 1 (MiB)"));
    }
    let dir = check_mount_point(&args.dir)?;
    if args.daemon_child {
        let mut pw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut pw)
            .context("cannot read the password from the parent")?;
        let pw = (!pw.is_empty()).then_some(pw);
        note!(
            "{} cairn mount daemon (pid {}) serving {} at {}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            std::process::id(),
            args.repo,
            dir.display()
        );
        return serve(inv, args, &dir, pw, false);
    }
    let supplied = password::supplied(inv.global.password_file.as_deref())?;
    if args.background {
        return background(inv, args, &dir, supplied);
    }
    serve(inv, args, &dir, supplied, true)
}

/// Runs the daemon in this process until the mount goes away or a signal asks it to.
fn serve(
    inv: &Invocation<'_>,
    args: &MountArgs,
    dir: &Path,
    password: Option<Vec<u8>>,
    may_ask: bool,
) -> Result<Status> {
    let (repo, password) =
        repo_args::open_repository_with(inv.global, &args.repo, password, may_ask)?;
    let location = repo.store().description().to_string();
    // Service::start refreshes it before anything reads it: one refresh, not two.
    let catalog = repo_args::open_catalog_unrefreshed(&repo)?;
    // Blobs of a remote repository are cached on disk next to the catalog (bounded by
    // CAIRN_BLOB_CACHE_MB, else 4x the memory cache and at least 1 GiB); a cache that
    // cannot be opened only costs speed.
    let blob_cache_dir = disk_cache::dir_of(&catalog);
    let disk_bytes = disk_cache::configured_capacity()
        .unwrap_or_else(|| (args.cache_size.saturating_mul(4) << 20).max(1 << 30));
    let disk = match disk_cache::DiskCache::open(&blob_cache_dir, disk_bytes) {
        _ if repo.store().is_local() || disk_bytes == 0 => None,
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!("no on-disk blob cache at {}: {e}", blob_cache_dir.display());
            None
        }
    };
    let service =
        Service::start(repo, catalog, args.jobs).context("cannot start the mount's service")?;
    service.keep_password(password);
    let ns = Arc::new(
        Namespace::with_disk_cache(
            service.clone(),
            (args.cache_size as usize).saturating_mul(1 << 20),
            disk,
        )
        .sharing_control(args.share_control),
    );
    let mut watcher = match Watcher::spawn(dir) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "cannot start the mount watcher ({e}): a killed daemon may leave a dead mount"
            );
            None
        }
    };
    let opts = MountOptions {
        allow_other: args.allow_other,
        ..MountOptions::default()
    };
    // Armed before mounting: an interrupt while the connections are made (the mount is
    // visible after the first) unmounts cleanly once they are.
    let armed = inv
        .interrupts
        .arm_saying("unmounting (interrupt again to stop at once)");
    let session = match cairn::fs::mount(ns, dir, &opts) {
        Ok(s) => s,
        Err(e) => {
            service.shutdown();
            if let Some(w) = watcher.take() {
                w.stop();
            }
            let hint = if args.allow_other && e.kind() == std::io::ErrorKind::PermissionDenied {
                " (--allow-other needs user_allow_other in /etc/fuse.conf)"
            } else {
                ""
            };
            return Err(anyhow::anyhow!(
                "cannot mount on {}: {e}{hint}",
                dir.display()
            ));
        }
    };
    if let (Some(w), Some(m)) = (watcher.as_mut(), mounts::cairn_mount_at(dir)) {
        w.mounted(m.id);
    }
    note!(
        "cairn: mounted {location} at {} (stop with `cairn umount {}`{})",
        dir.display(),
        dir.display(),
        if args.daemon_child { "" } else { " or Ctrl-C" }
    );

    // An interrupt wakes this at once; a session ended from outside (`umount`) is seen
    // within SESSION_POLL (an idle daemon wakes up as little as it can).
    let signalled = loop {
        if inv.interrupts.wait_timeout(SESSION_POLL) {
            break true;
        }
        if session.is_finished() {
            break false;
        }
    };
    drop(armed);
    service.shutdown();
    if signalled {
        if let Err(e) = cairn::fs::unmount(dir) {
            note!("cairn: warning: cannot unmount {}: {e}", dir.display());
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(session.join());
    });
    match rx.recv_timeout(JOIN_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => note!("cairn: warning: the mount's session ended with: {e}"),
        Err(_) => note!(
            "cairn: warning: {} is detached but still in use; exiting anyway",
            dir.display()
        ),
    }
    if let Some(w) = watcher {
        w.stop();
    }
    note!("cairn: unmounted {}", dir.display());
    Ok(Status::Success)
}

/// The daemon's log for a mount point: in the repository's cache directory.
fn log_path(repo_id: &str, dir: &Path) -> PathBuf {
    let base = catalog::default_path(repo_id)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let tag: String = dir
        .to_string_lossy()
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tag = if tag.len() > 80 {
        tag[tag.len() - 80..].to_string()
    } else {
        tag
    };
    base.join(format!("mount-{tag}.log"))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(30);
    lines[start..].join("\n")
}

/// Starts the daemon detached (its own session, stdio to a log file) and waits until the
/// mount answers.
fn background(
    inv: &Invocation<'_>,
    args: &MountArgs,
    dir: &Path,
    supplied: Option<Vec<u8>>,
) -> Result<Status> {
    // Open here first, so that a password is asked for (and a wrong one refused) on this
    // terminal; the daemon gets the password that worked on its stdin.
    let (repo, password) = repo_args::open_repository_with(inv.global, &args.repo, supplied, true)?;
    let log = log_path(&repo.config().id, dir);
    drop(repo);
    // The log names the owner's requests: the owner's only, like the catalog beside it.
    if let Some(parent) = log.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    // A log left by an older cairn may be broader.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let err = out.try_clone()?;

    // The daemon runs in `/`: a repository path and a cache directory given relative to
    // here must be made absolute.
    let repo_text = if args.repo.contains("://") {
        args.repo.clone()
    } else {
        absolute(Path::new(&args.repo))?
            .to_string_lossy()
            .into_owned()
    };
    let exe = std::env::current_exe().context("cannot find the cairn executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("mount")
        .arg(&repo_text)
        .arg(dir)
        .arg("--daemon-child")
        .arg("--cache-size")
        .arg(args.cache_size.to_string())
        .arg("--jobs")
        .arg(args.jobs.to_string());
    if args.allow_other {
        cmd.arg("--allow-other");
    }
    if args.share_control {
        cmd.arg("--share-control");
    }
    cmd.env_remove(password::ENV)
        .env_remove("CAIRN_PASSWORD_FILE")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err);
    for var in ["CAIRN_CACHE_DIR", "XDG_CACHE_HOME"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            cmd.env(var, absolute(Path::new(&v))?);
        }
    }
    let s3 = &inv.global.s3;
    for (var, value) in [
        ("AWS_ENDPOINT_URL", &s3.s3_endpoint),
        ("AWS_REGION", &s3.s3_region),
        ("AWS_ACCESS_KEY_ID", &s3.s3_access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &s3.s3_secret_access_key),
    ] {
        if let Some(v) = value {
            cmd.env(var, v);
        }
    }
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the mount daemon")?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(password.as_deref().unwrap_or_default());
    }
    let pid = child.id();
    let failed = |child_status: String| {
        coded(
            1,
            format!(
                "the mount daemon {child_status} before {} was ready; its log ({}):\n{}",
                dir.display(),
                log.display(),
                tail(&log)
            ),
            None,
        )
    };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(failed(format!("exited ({status})")));
        }
        if mounts::cairn_mount_ready(dir) && answers(dir, Duration::from_secs(5)) {
            break;
        }
        if start.elapsed() > READY_TIMEOUT {
            stop_child(&mut child, dir);
            return Err(failed(format!(
                "did not answer within {} s and was stopped",
                READY_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if args.json {
        print_json(&json!({"dir": dir, "pid": pid, "log": log}))?;
    } else {
        println!(
            "mounted {} at {} (daemon pid {pid})",
            args.repo,
            dir.display()
        );
        println!("log:     {}", log.display());
        println!("stop it: cairn umount {}", dir.display());
    }
    Ok(Status::Success)
}

/// Whether `.cairn/README` in the mount can be read within `limit` (a hung daemon must
/// not hang the caller).
fn answers(dir: &Path, limit: Duration) -> bool {
    let readme = dir.join(".cairn").join("README");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read(&readme).is_ok());
    });
    rx.recv_timeout(limit).unwrap_or(false)
}

/// Stops a daemon that never became ready: SIGTERM, then SIGKILL; detaches its mount.
fn stop_child(child: &mut Child, dir: &Path) {
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    if mounts::cairn_mount_at(dir).is_some() {
        let _ = cairn::fs::unmount(dir);
    }
}

pub fn umount(_inv: &Invocation<'_>, args: &UmountArgs) -> Result<Status> {
    let dir = &args.dir;
    let Some(entry) = mounts::cairn_mount_at(dir) else {
        let what = match mounts::mount_at(dir) {
            Some(m) => format!("a {} mount, not a cairn one", m.fstype),
            None if dir.exists() => "not a mount point".to_string(),
            None => "does not exist".to_string(),
        };
        return Err(usage(format!(
            "{} is {what}: nothing to unmount (`grep fuse.cairn /proc/mounts` lists cairn mounts)",
            dir.display()
        )));
    };
    cairn::fs::unmount(&entry.point).map_err(|e| {
        coded(
            1,
            format!("cannot unmount {}: {e}", entry.point.display()),
            Some("only root and the user who mounted it can unmount it".into()),
        )
    })?;
    println!("unmounted {}", entry.point.display());
    Ok(Status::Success)
}

/// The daemon's side of the watcher.
struct Watcher {
    child: Child,
    pipe: Option<std::io::PipeWriter>,
}

impl Watcher {
    /// Starts `cairn __mount-watcher DIR` with the read end of a pipe as its stdin. The
    /// write end stays in this process only (close-on-exec), so the watcher reads end of
    /// file exactly when the daemon is gone.
    fn spawn(dir: &Path) -> std::io::Result<Watcher> {
        let (reader, writer) = std::io::pipe()?;
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg(WATCHER)
            .arg(dir)
            .current_dir("/")
            .stdin(reader)
            .stdout(Stdio::null());
        // SAFETY: setsid is async-signal-safe: the watcher leaves the terminal's process
        // group, so Ctrl-C for the daemon does not reach it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Watcher {
            child,
            pipe: Some(writer),
        })
    }

    /// Tells the watcher which mount is the daemon's.
    fn mounted(&mut self, id: u64) {
        if let Some(p) = self.pipe.as_mut() {
            let _ = writeln!(p, "mount {id}");
        }
    }

    /// The daemon unmounted cleanly: the watcher exits without doing anything.
    fn stop(mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = writeln!(p, "stop");
        }
        let _ = self.child.wait();
    }
}

/// The watcher process: waits for end of file on stdin; unless the daemon said `stop`
/// first, detaches the daemon's mount.
pub fn watch(args: &WatcherArgs) -> Result<Status> {
    let mut mount_id = None;
    let mut stopped = false;
    for line in BufReader::new(std::io::stdin().lock()).lines() {
        let Ok(line) = line else { break };
        if line == "stop" {
            stopped = true;
        } else if let Some(id) = line.strip_prefix("mount ") {
            mount_id = id.trim().parse::<u64>().ok();
        }
    }
    if stopped {
        return Ok(Status::Success);
    }
    let target = match mount_id {
        Some(id) => mounts::watched(mounts::entries(), id, &mounts::kernel_path(&args.dir)),
        None => mounts::cairn_mount_at(&args.dir),
    };
    if let Some(m) = target {
        match cairn::fs::unmount(&m.point) {
            Ok(()) => note!(
                "cairn: the mount daemon died; detached {}",
                m.point.display()
            ),
            Err(e) => note!(
                "cairn: the mount daemon died and {} could not be detached: {e}",
                m.point.display()
            ),
        }
    }
    Ok(Status::Success)
}
