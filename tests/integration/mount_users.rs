//! Other users and ordinary users (issue 10, items 5 and 21, and the suite's
//! permissions test), checked as a real unprivileged user, `nobody`, through `setpriv`:
//! - with `--allow-other` another user cannot read 0600 files, list 0700 directories,
//!   read `.cairn` (events, stats, job files) or write anything, unless the owner shares
//!   the control plane (`--share-control`), which still lets them write nothing;
//! - without `--allow-other` an ordinary user mounts (no `allow_other`/`allow_root`, so
//!   no `user_allow_other` in /etc/fuse.conf is needed), unmounts with `cairn umount`
//!   (`fusermount3 -u`), and a killed daemon leaves no dead mount.
//!
//! /dev/fuse is mode 0600 on the test machine, so the ordinary-user test makes it 0666
//! for its duration and puts the mode back afterwards (also when it fails).

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::mount_writes::mounted_point;
use crate::support::cli_run::cairn_bin;
use crate::support::daemon::Daemon;
use crate::support::mount::{fuse_available, job_of, request};

const NOBODY: u32 = 65534;

/// Runs `args` as `nobody` (uid and gid 65534, no supplementary groups) with `env`;
/// returns (success, stdout, stderr).
fn as_nobody(args: &[&str], env: &[(&str, &Path)]) -> (bool, String, String) {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "120", "setpriv"])
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg("--")
        .args(args)
        .current_dir("/")
        .env_remove("CAIRN_PASSWORD")
        .env_remove("CAIRN_REPO")
        .env_remove("CAIRN_MOUNT")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run setpriv");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lets other users into `p`, a test's temporary directory. Its ancestors must already
/// let them pass (scripts/test.sh makes its run directory 0711 for this).
fn open_up(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in p.ancestors().skip(1) {
        assert!(
            mode(dir) & 0o001 != 0,
            "{} is not traversable by other users: the tests as `nobody` need o+x on every \
             parent of TMPDIR (chmod o+x {})",
            dir.display(),
            dir.display()
        );
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// What `nobody` tries in a mount: (what, command), each of which must fail.
fn forbidden(mnt: &Path, point: &Path, control_shared: bool) -> Vec<(String, Vec<String>)> {
    let p = |rel: &str| point.join(rel).display().to_string();
    let m = |rel: &str| mnt.join(rel).display().to_string();
    let sh = |script: String| vec!["sh".to_string(), "-c".to_string(), script];
    let mut out = vec![
        ("read a 0600 file", vec!["cat".into(), p("secret.txt")]),
        ("list a 0700 directory", vec!["ls".into(), p("private")]),
        (
            "read in a 0700 directory",
            vec!["cat".into(), p("private/x")],
        ),
        ("create in a point", vec!["touch".into(), p("new")]),
        ("mkdir in a point", vec!["mkdir".into(), p("newdir")]),
        (
            "remove from a point",
            vec!["rm".into(), "-f".into(), p("open.txt")],
        ),
        (
            "rename in a point",
            vec!["mv".into(), p("open.txt"), p("moved")],
        ),
        (
            "overwrite a point file",
            sh(format!("echo x > '{}'", p("open.txt"))),
        ),
        ("create at the root", vec!["mkdir".into(), m("newinstance")]),
        (
            "write a request",
            sh(format!(
                "echo 'instance=db' > '{}'",
                m(".cairn/ctl/snapshot")
            )),
        ),
        ("list ctl/", vec!["ls".into(), m(".cairn/ctl")]),
        (
            "delete a job",
            vec!["rm".into(), "-rf".into(), m(".cairn/jobs/1")],
        ),
    ];
    if !control_shared {
        for (what, rel) in [
            ("list .cairn", ".cairn"),
            ("list .cairn/jobs", ".cairn/jobs"),
            ("list .cairn/policies", ".cairn/policies"),
        ] {
            out.push((what, vec!["ls".into(), m(rel)]));
        }
        for (what, rel) in [
            ("read events", ".cairn/events"),
            ("read stats", ".cairn/stats"),
            ("read a job status", ".cairn/jobs/1/status"),
            ("read a job log", ".cairn/jobs/2/log"),
            ("read README", ".cairn/README"),
        ] {
            out.push((what, vec!["cat".into(), m(rel)]));
        }
    }
    out.into_iter().map(|(w, c)| (w.to_string(), c)).collect()
}

/// Runs [`forbidden`] as nobody; returns what wrongly succeeded.
fn allowed_wrongly(mnt: &Path, point: &Path, shared: bool) -> (usize, Vec<String>) {
    let tries = forbidden(mnt, point, shared);
    let wrong = tries
        .iter()
        .filter_map(|(what, cmd)| {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let (ok, out, _) = as_nobody(&args, &[]);
            ok.then(|| format!("{what}: `{}` succeeded: {out}", cmd.join(" ")))
        })
        .collect();
    (tries.len(), wrong)
}

/// A mount with allow_other whose path `nobody` can reach, and a second job (a log).
fn shared_mount(work: &Path, share_control: bool) -> (crate::support::mount::MountGuard, PathBuf) {
    open_up(work);
    let opts = cairn::fs::MountOptions {
        allow_other: true,
        ..Default::default()
    };
    let (guard, point) = mounted_point(work, &opts, share_control);
    let verify = job_of(&request(&guard.dir.join(".cairn/ctl/verify"), "\n").unwrap());
    crate::support::mount::wait_job_file(&guard.dir, verify, Duration::from_secs(120));
    (guard, point)
}

#[test]
fn other_users_cannot_read_private_files_the_control_plane_or_write_anything() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (guard, point) = shared_mount(dir.path(), false);
    let meta = guard.dir.join(".cairn");
    // The modes say so.
    for rel in ["", "jobs", "jobs/1", "policies"] {
        assert_eq!(mode(&meta.join(rel)), 0o700, ".cairn/{rel}");
    }
    for rel in ["events", "stats", "jobs/1/status", "jobs/1/log"] {
        assert_eq!(mode(&meta.join(rel)), 0o600, ".cairn/{rel}");
    }
    // The owner still reads everything.
    let events = std::fs::read_to_string(meta.join("events")).unwrap();
    assert!(events.contains("snapshot"), "{events}");
    // Another user reads what the stored modes allow, and nothing else.
    let (ok, out, err) = as_nobody(&["cat", &point.join("open.txt").display().to_string()], &[]);
    assert!(ok && out == "anyone may read this\n", "{out}{err}");
    let (tried, wrong) = allowed_wrongly(&guard.dir, &point, false);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(tried, 20);
    assert_eq!(
        std::fs::read(point.join("open.txt")).unwrap(),
        b"anyone may read this\n"
    );
}

#[test]
fn share_control_lets_other_users_read_the_control_plane_and_still_write_nothing() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (guard, point) = shared_mount(dir.path(), true);
    let meta = guard.dir.join(".cairn");
    assert_eq!(mode(&meta), 0o755);
    assert_eq!(mode(&meta.join("events")), 0o444);
    assert_eq!(mode(&meta.join("ctl")), 0o700);
    assert_eq!(mode(&meta.join("ctl/snapshot")), 0o600);
    let (ok, out, err) = as_nobody(
        &["cat", &meta.join("jobs/1/status").display().to_string()],
        &[],
    );
    assert!(ok && out.contains("succeeded"), "{out}{err}");
    let (tried, wrong) = allowed_wrongly(&guard.dir, &point, true);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(tried, 12);
}

/// Serializes the tests that change /dev/fuse's mode.
static DEV_FUSE: Mutex<()> = Mutex::new(());

/// /dev/fuse made usable by every user while it lives; the old mode comes back on drop.
struct DevFuseOpen {
    old: u32,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl DevFuseOpen {
    fn new() -> DevFuseOpen {
        let lock = DEV_FUSE.lock().unwrap_or_else(|p| p.into_inner());
        let old = mode(Path::new("/dev/fuse"));
        std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o666)).unwrap();
        DevFuseOpen { old, _lock: lock }
    }
}

impl Drop for DevFuseOpen {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(self.old));
    }
}

/// The mountinfo line of the mount at `dir`, if any.
fn mount_line(dir: &Path) -> Option<String> {
    let dir = dir.to_str()?;
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dir))
        .map(str::to_string)
}

fn wait_unmounted(dir: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if mount_line(dir).is_none() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn an_ordinary_user_mounts_unmounts_and_a_killed_daemon_leaves_no_mount() {
    if !fuse_available() {
        return;
    }
    let _fuse = DevFuseOpen::new();
    let dir = tempfile::tempdir().unwrap();
    open_up(dir.path());
    let home = dir.path().join("home");
    let (repo, mnt, cache) = (home.join("repo"), home.join("mnt"), home.join("cache"));
    std::fs::create_dir_all(&mnt).unwrap();
    for d in [&home, &mnt] {
        chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let env = [
        ("HOME", home.as_path()),
        ("CAIRN_CACHE_DIR", cache.as_path()),
    ];
    let bin = cairn_bin().display().to_string();
    let (r, m) = (repo.display().to_string(), mnt.display().to_string());
    let cairn = |args: &[&str]| {
        let mut all = vec![bin.as_str()];
        all.extend_from_slice(args);
        as_nobody(&all, &env)
    };
    let (ok, out, err) = cairn(&["init", "--no-encryption", &r]);
    assert!(ok, "init as nobody: {out}{err}");

    let mount = || {
        let (ok, out, err) = cairn(&["mount", "--background", "--json", &r, &m]);
        let pid = serde_json::from_str::<Value>(out.trim())
            .ok()
            .and_then(|v| v["pid"].as_i64())
            .map(|p| p as i32);
        let daemon = Daemon::new(mnt.clone(), pid, None);
        assert!(ok, "mount as nobody: {out}{err}");
        (daemon, pid.expect("the daemon's pid"))
    };
    let (daemon, _) = mount();
    // The daemon's log and catalog (it holds decrypted manifests) are nobody's only.
    let catalogs: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|e| {
            std::fs::read_dir(e.path())
                .unwrap()
                .flatten()
                .map(|f| f.path())
        })
        .filter(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("catalog.sqlite") || name.starts_with("mount-")
        })
        .collect();
    assert!(catalogs.len() >= 2, "{catalogs:?}");
    for f in &catalogs {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let line = mount_line(&mnt).expect("mounted");
    assert!(
        !line.contains("allow_other") && !line.contains("allow_root"),
        "{line}"
    );
    assert!(line.contains(&format!("user_id={NOBODY}")), "{line}");
    let (ok, out, err) = as_nobody(
        &["ls", "-a", &mnt.join(".cairn").display().to_string()],
        &[],
    );
    assert!(ok && out.contains("events"), "{out}{err}");
    let (ok, out, err) = cairn(&["umount", &m]);
    assert!(ok, "umount as nobody: {out}{err}");
    assert!(mount_line(&mnt).is_none(), "still mounted after umount");
    drop(daemon);

    // Killed: the watcher detaches the mount (as nobody, through fusermount3).
    let (daemon, pid) = mount();
    // SAFETY: kill(2) of the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(
        wait_unmounted(&mnt, Duration::from_secs(20)),
        "a killed daemon left its mount: {:?}",
        mount_line(&mnt)
    );
    assert!(std::fs::read_dir(&mnt).is_ok(), "no dead mount");
    drop(daemon);
}

#[test]
fn share_control_needs_allow_other() {
    let dir = tempfile::tempdir().unwrap();
    let (r, m) = (dir.path().join("repo"), dir.path().join("mnt"));
    std::fs::create_dir_all(&m).unwrap();
    let out = Command::new(cairn_bin())
        .args(["mount", "--share-control"])
        .arg(&r)
        .arg(&m)
        .env("CAIRN_CACHE_DIR", dir.path().join("cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--allow-other"),
        "{out:?}"
    );
    assert!(!r.exists() && mount_line(&m).is_none());
}
