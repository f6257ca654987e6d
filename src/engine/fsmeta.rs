//! File metadata between the local filesystem and tree nodes: capture (backup, check) and
//! apply (restore); opening a source file to read it; and the calls std lacks that a
//! restore makes durable and atomic with (`renameat2`, a directory's fsync). Never
//! follows symlinks.

use std::ffi::CString;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::engine::{EngineError, Result};
use crate::model::{Node, NodeKind, Xattr};

fn ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

pub fn kind_of(md: &Metadata) -> NodeKind {
    let ft = md.file_type();
    if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_socket() {
        NodeKind::Socket
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else {
        NodeKind::File
    }
}

/// A node carrying `md`'s metadata (content, target and subtree are filled by the caller).
pub fn node_from_metadata(name: Vec<u8>, md: &Metadata) -> Node {
    let mut n = Node::new(name, kind_of(md));
    n.mode = md.mode() & 0o7777;
    n.uid = md.uid();
    n.gid = md.gid();
    n.size = if n.kind == NodeKind::File {
        md.size()
    } else {
        0
    };
    n.mtime_ns = ns(md.mtime(), md.mtime_nsec());
    n.ctime_ns = ns(md.ctime(), md.ctime_nsec());
    n.inode = md.ino();
    n.dev = md.dev();
    n.nlink = md.nlink();
    if matches!(n.kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        n.rdev = md.rdev();
    }
    n
}

/// Opens a file to read its content, not following a symlink and without touching its
/// access time (`O_NOATIME`, which needs ownership or root: else without it).
pub fn open_source(path: &Path) -> io::Result<File> {
    let open = |flags| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
    };
    match open(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(libc::O_NOFOLLOW | libc::O_NOCTTY),
        other => other,
    }
}

/// Extended attributes of a path (not following symlinks), sorted by name.
pub fn read_xattrs(path: &Path) -> io::Result<Vec<Xattr>> {
    let mut out = Vec::new();
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names {
        if let Some(value) = xattr::get(path, &name)? {
            out.push(Xattr {
                name: name.as_bytes().to_vec(),
                value,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Byte ranges of a file that hold data; holes between them read as zeros. Falls back to
/// one range when the filesystem cannot tell.
pub fn data_ranges(file: &File, size: u64) -> Vec<(u64, u64)> {
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: i64 = 0;
    while (pos as u64) < size {
        // SAFETY: lseek on a file descriptor we own; no memory is touched.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole remains
            }
            return vec![(0, size)];
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let end = if hole < 0 {
            size as i64
        } else {
            hole.min(size as i64)
        };
        if end > data {
            out.push((data as u64, end as u64));
        }
        pos = end;
    }
    out
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn timespec(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: ns.rem_euclid(1_000_000_000) as libc::c_long,
    }
}

/// An ownership change's result: without root it is skipped, as `cp -a` does.
fn chown_result(rc: libc::c_int) -> io::Result<()> {
    match check(rc) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        other => other,
    }
}

/// Setting an extended attribute: namespaces the target refuses (e.g. security.*
/// without privilege, or none at all) are skipped; the data is what matters.
fn xattr_result(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP)) => Ok(()),
        other => other,
    }
}

/// Applies owner, mode, xattrs and times of `node` to `path` (in that order: chown clears
/// set-id bits, and every change but utimensat moves ctime). Ownership changes need
/// root; without it they are skipped silently, as `cp -a` does for a normal user.
pub fn apply_metadata(path: &Path, node: &Node) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid NUL-terminated path; lchown/fchmodat/utimensat do not retain pointers.
    chown_result(unsafe { libc::lchown(c.as_ptr(), node.uid, node.gid) })?;
    if node.kind != NodeKind::Symlink {
        // SAFETY: as above.
        check(unsafe { libc::chmod(c.as_ptr(), node.mode as libc::mode_t) })?;
    }
    for x in &node.xattrs {
        xattr_result(xattr::set(
            path,
            std::ffi::OsStr::from_bytes(&x.name),
            &x.value,
        ))?;
    }
    // atime is not stored; it is restored equal to mtime.
    let times = [timespec(node.mtime_ns), timespec(node.mtime_ns)];
    // SAFETY: `times` outlives the call.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// [`apply_metadata`] for a regular file through a descriptor open on it: no path walks.
/// The owner is left alone when it already is this process's (what a new file gets).
pub fn apply_file_metadata(file: &File, node: &Node) -> io::Result<()> {
    use xattr::FileExt;
    let fd = file.as_raw_fd();
    static OWNER: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    // SAFETY: geteuid and getegid cannot fail.
    let owner = *OWNER.get_or_init(|| unsafe { (libc::geteuid(), libc::getegid()) });
    if (node.uid, node.gid) != owner {
        // SAFETY: a plain syscall on a descriptor we own.
        chown_result(unsafe { libc::fchown(fd, node.uid, node.gid) })?;
    }
    // SAFETY: as above.
    check(unsafe { libc::fchmod(fd, node.mode as libc::mode_t) })?;
    for x in &node.xattrs {
        xattr_result(file.set_xattr(std::ffi::OsStr::from_bytes(&x.name), &x.value))?;
    }
    let times = [timespec(node.mtime_ns), timespec(node.mtime_ns)];
    // SAFETY: as above; `times` outlives the call.
    check(unsafe { libc::futimens(fd, times.as_ptr()) })
}

/// Creates a FIFO or device node.
pub fn make_special(path: &Path, node: &Node) -> io::Result<()> {
    let c = cpath(path)?;
    let kind = match node.kind {
        NodeKind::Fifo => libc::S_IFIFO,
        NodeKind::CharDevice => libc::S_IFCHR,
        NodeKind::BlockDevice => libc::S_IFBLK,
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    // SAFETY: valid path; mknod does not retain it.
    check(unsafe {
        libc::mknod(
            c.as_ptr(),
            kind | (node.mode & 0o777) as libc::mode_t,
            node.rdev as libc::dev_t,
        )
    })
}

/// `renameat2(2)` with `flags` (`RENAME_EXCHANGE`, `RENAME_NOREPLACE`).
pub(crate) fn rename2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Renames `from` to `to` unless `to` exists.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match rename2(from, to, libc::RENAME_NOREPLACE) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // A filesystem without RENAME_NOREPLACE: check, then rename.
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            fs::rename(from, to)
        }
        other => other,
    }
}

/// Syncs a directory (its entries), without following a symlink.
pub(crate) fn fsync_dir(path: &Path) -> Result<()> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io("syncing", path, e))
}
