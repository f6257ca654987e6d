//! The only code that names fuser: translates kernel requests into [`Namespace`] calls.
//! Reads that may touch object storage are answered from worker tasks, never on the
//! session loop.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::namespace::{Attr, EntryKind, Namespace};

mod mounting;
pub use mounting::{mount, unmount};

/// Immutable point content may be cached by the kernel this long.
const IMMUTABLE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Let other users in (the kernel still enforces stored modes: default_permissions).
    pub allow_other: bool,
    /// Threads reading `/dev/fuse`.
    pub threads: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            threads: 4,
        }
    }
}

struct Adapter {
    ns: Arc<Namespace>,
    runtime: tokio::runtime::Handle,
}

fn errno(e: i32) -> Errno {
    Errno::from_i32(e)
}

fn time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn file_type(k: EntryKind) -> FileType {
    match k {
        EntryKind::Dir => FileType::Directory,
        EntryKind::File => FileType::RegularFile,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::Fifo => FileType::NamedPipe,
        EntryKind::Socket => FileType::Socket,
        EntryKind::CharDevice => FileType::CharDevice,
        EntryKind::BlockDevice => FileType::BlockDevice,
    }
}

fn to_fuse(a: &Attr) -> (Duration, FileAttr) {
    let ttl = if a.immutable {
        IMMUTABLE_TTL
    } else {
        Duration::ZERO
    };
    (
        ttl,
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.blocks,
            atime: time(a.mtime_ns),
            mtime: time(a.mtime_ns),
            ctime: time(a.ctime_ns),
            crtime: time(a.mtime_ns),
            kind: file_type(a.kind),
            perm: a.perm,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            blksize: 128 * 1024,
            flags: 0,
        },
    )
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config
            .add_capabilities(InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_PARALLEL_DIROPS);
        let _ = config.set_max_readahead(4 << 20);
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.ns.lookup(parent.0, name.as_bytes()) {
            Ok(a) => {
                let (ttl, attr) = to_fuse(&a);
                reply.entry(&ttl, &attr, Generation(0));
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.ns.getattr(ino.0) {
            Ok(a) => {
                let (ttl, attr) = to_fuse(&a);
                reply.attr(&ttl, &attr);
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Only truncating a control file (what `echo > ctl/x` does) is allowed.
        match self.ns.getattr(ino.0) {
            Ok(a)
                if self.ns.is_control_file(ino.0)
                    && size == Some(0)
                    && mode.is_none()
                    && uid.is_none()
                    && gid.is_none() =>
            {
                let (ttl, attr) = to_fuse(&a);
                reply.attr(&ttl, &attr);
            }
            Ok(_) => reply.error(errno(libc::EROFS)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.ns.unlink(parent.0, name.as_bytes(), req.uid()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.ns.rmdir(parent.0, name.as_bytes(), req.uid()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    // Nothing else in the mount can be written: points are immutable and the control
    // plane takes requests only through writes into ctl/ files. Without these, fuser
    // answers ENOSYS ("Function not implemented"); with default_permissions the kernel
    // has already answered EACCES where the mode forbids the call.

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(libc::EROFS));
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(errno(libc::EROFS));
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.ns.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = (flags.0 & libc::O_ACCMODE) != libc::O_RDONLY;
        match self.ns.open(ino.0, write, req.uid()) {
            Ok((fh, dynamic)) => {
                let f = if dynamic {
                    FopenFlags::FOPEN_DIRECT_IO
                } else {
                    FopenFlags::FOPEN_KEEP_CACHE
                };
                reply.opened(FileHandle(fh), f);
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if let Some(now) = self.ns.read_now(fh.0, offset, size as usize) {
            return match now {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno(e)),
            };
        }
        let ns = self.ns.clone();
        self.runtime
            .spawn_blocking(move || match ns.read(fh.0, offset, size as usize) {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno(e)),
            });
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if self.ns.write_may_wait(fh.0) {
            // A job's input waits while its backup is behind: not on a session thread.
            let (ns, data, uid) = (self.ns.clone(), data.to_vec(), req.uid());
            self.runtime
                .spawn_blocking(move || match ns.write(fh.0, offset, &data, uid) {
                    Ok(n) => reply.written(n as u32),
                    Err(e) => reply.error(errno(e.errno)),
                });
            return;
        }
        match self.ns.write(fh.0, offset, data, req.uid()) {
            Ok(n) => reply.written(n as u32),
            Err(e) => {
                tracing::info!("control request refused: {}", e.message);
                reply.error(errno(e.errno))
            }
        }
    }

    // No `flush`: fuser answers ENOSYS, after which the kernel stops sending it, which
    // saves a round trip on every close. Control requests are handled at write time.

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.ns.release(fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.ns.getattr(ino.0) {
            Ok(a) if a.kind == EntryKind::Dir => {
                let f = if a.immutable {
                    FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(0), f)
            }
            Ok(_) => reply.error(errno(libc::ENOTDIR)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.ns.readdir(ino.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(e)),
        };
        let dots = [
            (ino.0, FileType::Directory, b".".as_slice()),
            (self.ns.parent_of(ino.0), FileType::Directory, b".."),
        ];
        let all = dots.into_iter().chain(
            entries
                .iter()
                .map(|e| (e.attr.ino, file_type(e.attr.kind), e.name.as_slice())),
        );
        for (i, (child, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let entries = match self.ns.readdir(ino.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(e)),
        };
        let here = match self.ns.getattr(ino.0) {
            Ok(a) => a,
            Err(e) => return reply.error(errno(e)),
        };
        let parent = self
            .ns
            .getattr(self.ns.parent_of(ino.0))
            .unwrap_or_else(|_| here.clone());
        let all = [(b".".as_slice(), &here), (b"..".as_slice(), &parent)]
            .into_iter()
            .chain(entries.iter().map(|e| (e.name.as_slice(), &e.attr)));
        for (i, (name, a)) in all.enumerate().skip(offset as usize) {
            let (ttl, attr) = to_fuse(a);
            if reply.add(
                INodeNo(a.ino),
                i as u64 + 1,
                OsStr::from_bytes(name),
                &ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        xattr_reply(self.ns.getxattr(ino.0, name.as_bytes()), size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        xattr_reply(self.ns.listxattr(ino.0), size, reply);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok(); // default_permissions: the kernel checks
    }
}

fn xattr_reply(value: Result<Vec<u8>, i32>, size: u32, reply: ReplyXattr) {
    match value {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() <= size as usize => reply.data(&v),
        Ok(_) => reply.error(errno(libc::ERANGE)),
        Err(e) => reply.error(errno(e)),
    }
}
