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

use super::namespace::{Attr, EntryKind, FsResult, Namespace, Op};

mod mounting;
pub use mounting::{mount, unmount, Mount};

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

/// Serves the namespace from inode `root` (ROOT, or META for the control plane's own
/// connection), which the kernel knows as 1.
struct Adapter {
    ns: Arc<Namespace>,
    runtime: tokio::runtime::Handle,
    root: u64,
}

impl Adapter {
    /// The namespace's inode for the kernel's `ino`.
    fn ino(&self, ino: INodeNo) -> u64 {
        if ino.0 == 1 {
            self.root
        } else {
            ino.0
        }
    }
}

/// The kernel's number for the namespace's inode `ino` on a connection rooted at `root`.
fn kernel_ino(ino: u64, root: u64) -> INodeNo {
    INodeNo(if ino == root { 1 } else { ino })
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

fn to_fuse(a: &Attr, root: u64) -> (Duration, FileAttr) {
    let ttl = if a.immutable {
        IMMUTABLE_TTL
    } else {
        Duration::ZERO
    };
    (
        ttl,
        FileAttr {
            ino: kernel_ino(a.ino, root),
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
        let _ = config.add_capabilities(
            InitFlags::FUSE_DO_READDIRPLUS
                | InitFlags::FUSE_READDIRPLUS_AUTO
                | InitFlags::FUSE_PARALLEL_DIROPS,
        );
        let _ = config.set_max_readahead(4 << 20);
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let parent = INodeNo(self.ino(parent));
        self.ns.count(Op::Lookup);
        let name = name.as_bytes();
        if !self.ns.lookup_may_wait(parent.0, name) {
            return entry_reply(self.ns.lookup(parent.0, name), self.root, reply);
        }
        let (ns, name, root) = (self.ns.clone(), name.to_vec(), self.root);
        self.runtime
            .spawn_blocking(move || entry_reply(ns.lookup(parent.0, &name), root, reply));
    }

    // fuser's `batch_forget` (its `ForgetOne` is private) calls this once per inode.
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Forget);
        self.ns.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Getattr);
        if !self.ns.attr_may_wait(ino.0) {
            return attr_reply(self.ns.getattr(ino.0), self.root, reply);
        }
        let (ns, root) = (self.ns.clone(), self.root);
        self.runtime
            .spawn_blocking(move || attr_reply(ns.getattr(ino.0), root, reply));
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
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Other);
        // Only truncating a control file (what `echo > ctl/x` does) is allowed.
        match self.ns.getattr(ino.0) {
            Ok(a)
                if self.ns.is_control_file(ino.0)
                    && size == Some(0)
                    && mode.is_none()
                    && uid.is_none()
                    && gid.is_none() =>
            {
                let (ttl, attr) = to_fuse(&a, self.root);
                reply.attr(&ttl, &attr);
            }
            Ok(_) => reply.error(errno(libc::EROFS)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let parent = INodeNo(self.ino(parent));
        match self.ns.unlink(parent.0, name.as_bytes(), req.uid()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let parent = INodeNo(self.ino(parent));
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
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Readlink);
        match self.ns.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Open);
        let (write, uid) = ((flags.0 & libc::O_ACCMODE) != libc::O_RDONLY, req.uid());
        let open = move |ns: &Namespace| match ns.open(ino.0, write, uid) {
            Ok((fh, dynamic)) => {
                let f = if dynamic {
                    FopenFlags::FOPEN_DIRECT_IO
                } else {
                    FopenFlags::FOPEN_KEEP_CACHE
                };
                reply.opened(FileHandle(fh), f);
            }
            Err(e) => reply.error(errno(e)),
        };
        if !self.ns.attr_may_wait(ino.0) {
            return open(&self.ns);
        }
        let ns = self.ns.clone();
        self.runtime.spawn_blocking(move || open(&ns));
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
        self.ns.count(Op::Read);
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
        self.ns.count(Op::Other);
        if self.ns.write_may_wait(fh.0) {
            // A job's input waits while its backup is behind, a request may write to the
            // repository: not on a session thread.
            let (ns, data, uid) = (self.ns.clone(), data.to_vec(), req.uid());
            self.runtime
                .spawn_blocking(move || written(ns.write(fh.0, offset, &data, uid), reply));
            return;
        }
        written(self.ns.write(fh.0, offset, data, req.uid()), reply);
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
        self.ns.count(Op::Release);
        self.ns.release(fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Opendir);
        let open = move |ns: &Namespace| {
            let immutable = match ns.getattr(ino.0) {
                Ok(a) if a.kind == EntryKind::Dir => a.immutable,
                Ok(_) => return reply.error(errno(libc::ENOTDIR)),
                Err(e) => return reply.error(errno(e)),
            };
            match ns.opendir(ino.0) {
                Ok(fh) => {
                    let f = if immutable {
                        FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
                    } else {
                        FopenFlags::empty()
                    };
                    reply.opened(FileHandle(fh), f)
                }
                Err(e) => reply.error(errno(e)),
            }
        };
        if !self.ns.list_may_wait(ino.0) {
            return open(&self.ns);
        }
        let ns = self.ns.clone();
        self.runtime.spawn_blocking(move || open(&ns));
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.ns.count(Op::Readdir);
        let listed = self.ns.readdir_at(fh.0, offset, |ino, next, kind, name| {
            let ino = kernel_ino(ino, self.root);
            reply.add(ino, next, file_type(kind), OsStr::from_bytes(name))
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.ns.count(Op::Readdirplus);
        let listed = self.ns.readdirplus_at(fh.0, offset, |e, next| {
            let (ttl, attr) = to_fuse(&e.attr, self.root);
            reply.add(
                attr.ino,
                next,
                OsStr::from_bytes(&e.name),
                &ttl,
                &attr,
                Generation(e.attr.generation),
            )
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.ns.count(Op::Releasedir);
        self.ns.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.ns.count(Op::Statfs);
        reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Getxattr);
        xattr_reply(self.ns.getxattr(ino.0, name.as_bytes()), size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let ino = INodeNo(self.ino(ino));
        self.ns.count(Op::Listxattr);
        xattr_reply(self.ns.listxattr(ino.0), size, reply);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok(); // default_permissions: the kernel checks
    }
}

fn written(result: Result<usize, crate::service::ControlError>, reply: ReplyWrite) {
    match result {
        Ok(n) => reply.written(n as u32),
        Err(e) => {
            tracing::info!("control request refused: {}", e.message);
            reply.error(errno(e.errno))
        }
    }
}

fn entry_reply(result: FsResult<Attr>, root: u64, reply: ReplyEntry) {
    match result {
        Ok(a) => {
            let (ttl, attr) = to_fuse(&a, root);
            reply.entry(&ttl, &attr, Generation(a.generation));
        }
        Err(e) => reply.error(errno(e)),
    }
}

fn attr_reply(result: FsResult<Attr>, root: u64, reply: ReplyAttr) {
    match result {
        Ok(a) => {
            let (ttl, attr) = to_fuse(&a, root);
            reply.attr(&ttl, &attr);
        }
        Err(e) => reply.error(errno(e)),
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
