//! Making and removing the mount. fusermount3 mounts for ordinary users (and for
//! auto_unmount); root mounts with mount(2) itself, as fuser would, but with the
//! filesystem type `fuse.cairn` (fuser's own mount(2) says `fuse` and loses the subtype
//! that `grep fuse.cairn /proc/mounts` and `cairn umount` look for).
//!
//! A mount is two FUSE connections over one namespace: the points on a read-only one at
//! the directory, and the control plane on a writable one mounted over its `.cairn`. The
//! kernel keeps the attributes of a file on a read-only superblock valid across reads
//! (else every read invalidates its atime and the next `stat` is one more request), and
//! the user still sees one tree. Where the second connection cannot be made (an ordinary
//! user's fusermount3 refuses a mount point on a read-only file system), the mount is one
//! writable connection, as before.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Arc;

use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};

use super::{Adapter, MountOptions};
use crate::fs::namespace::{META, META_NAME, ROOT};
use crate::fs::Namespace;

/// A mounted namespace: the sessions of its connections (points, then control plane).
pub struct Mount {
    sessions: Vec<BackgroundSession>,
}

impl Mount {
    /// Whether a connection's session ended (the mount was detached, or failed).
    pub fn is_finished(&self) -> bool {
        self.sessions.iter().any(|s| s.guard.is_finished())
    }

    /// Waits for every session to end; the first error, if any.
    pub fn join(self) -> std::io::Result<()> {
        let mut result = Ok(());
        for s in self.sessions {
            if let Err(e) = s.join() {
                result = result.and(Err(e));
            }
        }
        result
    }
}

/// Mounts `ns` on `dir` in the background; the mount goes away when it is unmounted (or
/// the returned mount dropped), and (AutoUnmount, with allow_other) when the process dies.
/// Root's owner-only mounts are two connections (see above); others are one.
pub fn mount(ns: Arc<Namespace>, dir: &Path, opts: &MountOptions) -> std::io::Result<Mount> {
    // SAFETY: geteuid cannot fail.
    if opts.allow_other || unsafe { libc::geteuid() } != 0 {
        let whole = connect(ns, dir, opts, Part::Whole)?;
        return Ok(Mount {
            sessions: vec![whole],
        });
    }
    let points = connect(ns.clone(), dir, opts, Part::Points)?;
    match connect(ns.clone(), &dir.join(META_NAME), opts, Part::Control) {
        Ok(control) => Ok(Mount {
            sessions: vec![points, control],
        }),
        Err(e) => {
            tracing::warn!("no separate control plane connection ({e}): one writable mount");
            let _ = unmount(dir);
            let _ = points.join();
            let whole = connect(ns, dir, opts, Part::Whole)?;
            Ok(Mount {
                sessions: vec![whole],
            })
        }
    }
}

/// What one connection serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Everything, writable.
    Whole,
    /// The root and the points, read-only.
    Points,
    /// `.cairn`, writable.
    Control,
}

fn connect(
    ns: Arc<Namespace>,
    dir: &Path,
    opts: &MountOptions,
    part: Part,
) -> std::io::Result<BackgroundSession> {
    let runtime = ns.service().runtime().handle().clone();
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("cairn".into()),
        MountOption::Subtype("cairn".into()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
    ];
    // Without allow_other the mount carries no allow_other/allow_root option, which
    // fusermount3 refuses to ordinary users unless /etc/fuse.conf has user_allow_other.
    // fuser's AutoUnmount needs one of them, so it is used with allow_other only; the
    // CLI's watcher process detaches the mount of a daemon that died either way.
    if opts.allow_other {
        config.mount_options.push(MountOption::AutoUnmount);
        config.acl = SessionACL::All;
    } else {
        config.acl = SessionACL::Owner;
    }
    config.n_threads = Some(opts.threads.max(1));
    let root = if part == Part::Control { META } else { ROOT };
    let root_mode = match part {
        Part::Control => 0o040000 | u32::from(ns.getattr(META).map_or(0o700, |a| a.perm)),
        _ => std::fs::metadata(dir)?.permissions().mode(),
    };
    let fs = Adapter { ns, runtime, root };
    match part {
        Part::Whole if config.acl == SessionACL::All => fuser::spawn_mount(fs, dir, &config),
        // SAFETY: geteuid cannot fail.
        Part::Whole if unsafe { libc::geteuid() } != 0 => fuser::spawn_mount(fs, dir, &config),
        _ => mount_as_root(fs, dir, config, root_mode, part),
    }
}

/// mount(2) of `/dev/fuse` on `dir` as `fuse.cairn` (owner-only: no allow_other), then
/// fuser's session on that device. The control plane's connection is mounted by a child
/// `mount` process: its mount point is inside the points' connection, which this process
/// serves, and a process killed while waiting for its own FUSE answer can never exit.
fn mount_as_root(
    fs: Adapter,
    dir: &Path,
    config: Config,
    root_mode: u32,
    part: Part,
) -> std::io::Result<BackgroundSession> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let fd = OwnedFd::from(dev);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let data = format!("fd={raw},rootmode={root_mode:o},user_id=0,group_id=0,default_permissions");
    if part == Part::Control {
        mount_by_child(dir, raw, &data)?;
    } else {
        mount_here(dir, &data, part == Part::Points)?;
    }
    match Session::from_fd(fs, fd, SessionACL::Owner, config).and_then(Session::spawn) {
        Ok(session) => Ok(session),
        Err(e) => {
            let _ = unmount(dir);
            Err(e)
        }
    }
}

fn mount_here(dir: &Path, data: &str, read_only: bool) -> std::io::Result<()> {
    let invalid = |_| std::io::Error::from_raw_os_error(libc::EINVAL);
    let (target, data) = (
        CString::new(dir.as_os_str().as_bytes()).map_err(invalid)?,
        CString::new(data).map_err(invalid)?,
    );
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME;
    if read_only {
        flags |= libc::MS_RDONLY;
    }
    // SAFETY: NUL-terminated strings that outlive the call; the kernel copies them.
    let rc = unsafe {
        libc::mount(
            c"cairn".as_ptr(),
            target.as_ptr(),
            c"fuse.cairn".as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// How long the child `mount` may take.
const CHILD_MOUNT_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// `mount -i` (no helper program) of the device `fd` on `dir`, by a child that inherits
/// that one descriptor.
fn mount_by_child(dir: &Path, fd: i32, data: &str) -> std::io::Result<()> {
    let mut cmd = std::process::Command::new("mount");
    cmd.args(["-i", "-n", "-t", "fuse.cairn", "-o"])
        .arg(format!("{data},nosuid,nodev,noatime"))
        .arg("cairn")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: fcntl is async-signal-safe; it only clears close-on-exec on our device.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let deadline = std::time::Instant::now() + CHILD_MOUNT_LIMIT;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(std::io::Error::other(format!(
                "mount: {status}: {}",
                err.trim()
            )));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("mount did not finish"));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Detaches the mount at `dir` and the control plane's below it (lazily: open files keep
/// working until closed), so the sessions' threads see their devices close and end. Root uses umount2 directly; others go
/// through `fusermount3 -uz` (the kernel refuses umount2 to them).
pub fn unmount(dir: &Path) -> std::io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: geteuid cannot fail; umount2 gets a valid NUL-terminated path, not retained.
    if unsafe { libc::geteuid() } == 0
        && unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0
    {
        return Ok(());
    }
    let status = std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(dir)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "fusermount3 -uz {} failed",
            dir.display()
        )))
    }
}
