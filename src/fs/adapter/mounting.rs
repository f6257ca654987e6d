//! Making and removing the mount. fusermount3 mounts for ordinary users (and for
//! auto_unmount); root mounts with mount(2) itself, as fuser would, but with the
//! filesystem type `fuse.cairn` (fuser's own mount(2) says `fuse` and loses the subtype
//! that `grep fuse.cairn /proc/mounts` and `cairn umount` look for).

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};

use super::{Adapter, MountOptions};
use crate::fs::Namespace;

/// Mounts `ns` on `dir` in the background; the mount goes away when the returned session
/// is dropped or unmounted, and (AutoUnmount, with allow_other) when the process dies.
pub fn mount(
    ns: Arc<Namespace>,
    dir: &Path,
    opts: &MountOptions,
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
    let fs = Adapter { ns, runtime };
    // SAFETY: geteuid cannot fail.
    if config.acl == SessionACL::Owner && unsafe { libc::geteuid() } == 0 {
        return mount_as_root(fs, dir, config);
    }
    fuser::spawn_mount(fs, dir, &config)
}

/// mount(2) of `/dev/fuse` on `dir` as `fuse.cairn` (owner-only: no allow_other), then
/// fuser's session on that device.
fn mount_as_root(fs: Adapter, dir: &Path, config: Config) -> std::io::Result<BackgroundSession> {
    let root_mode = std::fs::metadata(dir)?.permissions().mode();
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let fd = OwnedFd::from(dev);
    let data = format!(
        "fd={},rootmode={root_mode:o},user_id=0,group_id=0,default_permissions",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    );
    let invalid = |_| std::io::Error::from_raw_os_error(libc::EINVAL);
    let (target, data) = (
        CString::new(dir.as_os_str().as_bytes()).map_err(invalid)?,
        CString::new(data).map_err(invalid)?,
    );
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME;
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
    match Session::from_fd(fs, fd, SessionACL::Owner, config).and_then(Session::spawn) {
        Ok(session) => Ok(session),
        Err(e) => {
            let _ = unmount(dir);
            Err(e)
        }
    }
}

/// Detaches the mount at `dir` (lazily: open files keep working until closed), so the
/// session's threads see the device close and end. Root uses umount2 directly; others go
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
