//! The mount's namespace as a plain model: instances, points, trees, the `.cairn` control
//! plane, jobs; stable inode numbers; open handles. No FUSE types here: the adapter in
//! `adapter.rs` translates kernel requests into calls on [`Namespace`], and tests drive
//! it directly without a kernel.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use crate::catalog::PointRecord;
use crate::engine::disk_cache::DiskCache;
use crate::engine::{ContentReader, FileLayout};
use crate::model::{Node, NodeKind, Tree};
use crate::repo::BlobId;
use crate::service::{Service, CONTROL_FILES};
use crate::sync::RwLockExt;

mod control_reply;
mod handles;
mod job_input;
mod log_push;
mod readme;
mod removal;
mod state;

pub type Errno = i32;
pub type FsResult<T> = std::result::Result<T, Errno>;

/// A directory's entries as (name, inode), in listing order.
type Listing = Vec<(Vec<u8>, u64)>;

pub const ROOT: u64 = 1;
const META: u64 = 2;
const CTL_DIR: u64 = 3;
const JOBS_DIR: u64 = 4;
const README: u64 = 5;
const EVENTS: u64 = 6;
const STATS: u64 = 7;
const POLICIES_DIR: u64 = 8;
const CTL_BASE: u64 = 10;
const FIRST_DYNAMIC: u64 = 100;
/// How many following files' first chunks an open prefetches.
const SIBLING_PREFETCH: usize = 64;

pub const META_NAME: &str = ".cairn";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// Attributes of an inode, in kernel terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: EntryKind,
    pub size: u64,
    pub blocks: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// Part of a point: may be cached by the kernel for a long time.
    pub immutable: bool,
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub attr: Attr,
}

#[derive(Debug, Clone)]
enum Inode {
    Root,
    Meta,
    CtlDir,
    JobsDir,
    Readme,
    Events,
    Stats,
    PoliciesDir,
    Policy(String),
    Ctl(&'static str),
    Instance(String),
    Latest(String),
    Point(Arc<PointRecord>),
    Node {
        point: u64,
        /// The directory it was first seen in (prefetching reads its siblings).
        parent: u64,
        node: Arc<Node>,
        layout: Option<Arc<FileLayout>>,
    },
    JobDir(u64),
    JobStatus(u64),
    JobLog(u64),
    JobInput(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Instance(String),
    Latest(String),
    Point(String),
    Child(u64, Vec<u8>),
    Link(u64, u64, u64),
    JobDir(u64),
    JobStatus(u64),
    JobLog(u64),
    JobInput(u64),
    Policy(String),
}

#[derive(Default)]
struct Table {
    entries: HashMap<u64, Inode>,
    by_key: HashMap<Key, u64>,
    next: u64,
}

/// The mounted view of one repository.
pub struct Namespace {
    service: Service,
    content: ContentReader,
    table: RwLock<Table>,
    /// Listings of point directories already read (they never change).
    dirs: RwLock<HashMap<u64, Arc<Listing>>>,
    handles: RwLock<HashMap<u64, Arc<state::Handle>>>,
    /// Files opened before: the kernel keeps their pages (keep-cache), so re-opening one
    /// prefetches nothing, and prefetching skips them.
    opened: Mutex<HashSet<u64>>,
    /// Per directory, how far into its listing sibling prefetch has gone: each file's
    /// first chunk is prefetched once, not once per open of each of its predecessors.
    prefetched: Mutex<HashMap<u64, usize>>,
    next_handle: AtomicU64,
    owner_uid: u32,
    owner_gid: u32,
    started_ns: i64,
    /// Whether other users may read the control plane's jobs, events, stats and
    /// policies (`--share-control`); otherwise `.cairn` is the mount owner's only.
    share_control: bool,
    /// Job files unlinked (`rm -r jobs/<id>` in progress).
    removed: Mutex<state::RemovedJobFiles>,
}

fn node_kind(k: NodeKind) -> EntryKind {
    match k {
        NodeKind::File => EntryKind::File,
        NodeKind::Dir => EntryKind::Dir,
        NodeKind::Symlink => EntryKind::Symlink,
        NodeKind::Fifo => EntryKind::Fifo,
        NodeKind::Socket => EntryKind::Socket,
        NodeKind::CharDevice => EntryKind::CharDevice,
        NodeKind::BlockDevice => EntryKind::BlockDevice,
    }
}

impl Namespace {
    /// A namespace with `cache_bytes` of decoded chunks in memory.
    pub fn new(service: Service, cache_bytes: usize) -> Namespace {
        Namespace::with_disk_cache(service, cache_bytes, None)
    }

    /// Like [`new`](Self::new), plus a bounded on-disk cache of stored blobs.
    pub fn with_disk_cache(
        service: Service,
        cache_bytes: usize,
        disk: Option<DiskCache>,
    ) -> Namespace {
        let mut trees =
            crate::engine::TreeReader::new(service.repo().clone(), service.catalog().clone());
        if let Some(disk) = disk {
            trees = trees.with_disk_cache(disk);
        }
        let content = ContentReader::new(trees, cache_bytes);
        Namespace {
            content,
            service,
            table: RwLock::new(Table {
                next: FIRST_DYNAMIC,
                ..Table::default()
            }),
            dirs: RwLock::new(HashMap::new()),
            handles: RwLock::new(HashMap::new()),
            opened: Mutex::new(HashSet::new()),
            prefetched: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            // SAFETY: geteuid/getegid cannot fail.
            owner_uid: unsafe { libc::geteuid() },
            owner_gid: unsafe { libc::getegid() },
            started_ns: crate::service::now_ns(),
            share_control: false,
            removed: Mutex::default(),
        }
    }

    /// Lets other users (of an `allow_other` mount) read `.cairn`: its directories
    /// become 0755 and its read-only files 0444. Control files stay the owner's (0600).
    pub fn sharing_control(self, share: bool) -> Namespace {
        Namespace {
            share_control: share,
            ..self
        }
    }

    /// Whether `ino` is a control file (`.cairn/ctl/*`) or a job's input: the only writable files.
    pub fn is_control_file(&self, ino: u64) -> bool {
        matches!(self.inode(ino), Ok(Inode::Ctl(_) | Inode::JobInput(_)))
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    fn inode(&self, ino: u64) -> FsResult<Inode> {
        match ino {
            ROOT => Ok(Inode::Root),
            META => Ok(Inode::Meta),
            CTL_DIR => Ok(Inode::CtlDir),
            JOBS_DIR => Ok(Inode::JobsDir),
            README => Ok(Inode::Readme),
            EVENTS => Ok(Inode::Events),
            STATS => Ok(Inode::Stats),
            POLICIES_DIR => Ok(Inode::PoliciesDir),
            i if (CTL_BASE..CTL_BASE + CONTROL_FILES.len() as u64).contains(&i) => {
                Ok(Inode::Ctl(CONTROL_FILES[(i - CTL_BASE) as usize]))
            }
            _ => self
                .table
                .read_locked()
                .entries
                .get(&ino)
                .cloned()
                .ok_or(libc::ENOENT),
        }
    }

    /// The inode for `key`, allocating it (with `make`) on first sight.
    fn intern(&self, key: Key, make: impl FnOnce() -> Inode) -> u64 {
        if let Some(ino) = self.table.read_locked().by_key.get(&key) {
            return *ino;
        }
        let mut t = self.table.write_locked();
        if let Some(ino) = t.by_key.get(&key) {
            return *ino;
        }
        let ino = t.next;
        t.next += 1;
        t.entries.insert(ino, make());
        t.by_key.insert(key, ino);
        ino
    }

    fn dir_attr(&self, ino: u64, perm: u16, mtime_ns: i64, immutable: bool) -> Attr {
        Attr {
            ino,
            kind: EntryKind::Dir,
            size: 0,
            blocks: 0,
            perm,
            nlink: 2,
            uid: self.owner_uid,
            gid: self.owner_gid,
            rdev: 0,
            mtime_ns,
            ctime_ns: mtime_ns,
            immutable,
        }
    }

    fn file_attr(&self, ino: u64, perm: u16, size: u64) -> Attr {
        Attr {
            kind: EntryKind::File,
            size,
            blocks: size.div_ceil(512),
            nlink: 1,
            ..self.dir_attr(ino, perm, self.started_ns, false)
        }
    }

    fn point_time(&self, instance: &str) -> i64 {
        self.service
            .points(instance)
            .last()
            .map(|p| p.manifest.time_ns)
            .unwrap_or(self.started_ns)
    }

    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let inode = self.inode(ino)?;
        // The control plane holds the owner's requests (targets, paths, patterns): the
        // owner's only unless shared.
        let (meta_dir, meta_file) = if self.share_control {
            (0o755, 0o444)
        } else {
            (0o700, 0o600)
        };
        Ok(match inode {
            Inode::Root => self.dir_attr(ino, 0o755, self.started_ns, false),
            Inode::Meta => {
                let perm = self
                    .pusher_modes()
                    .map_or(meta_dir, |(dir, _)| meta_dir | dir);
                self.dir_attr(ino, perm, self.started_ns, false)
            }
            Inode::JobsDir | Inode::JobDir(_) | Inode::PoliciesDir => {
                self.dir_attr(ino, meta_dir, self.started_ns, false)
            }
            Inode::CtlDir => {
                let perm = self.pusher_modes().map_or(0o700, |(dir, _)| dir);
                self.dir_attr(ino, perm, self.started_ns, false)
            }
            Inode::Readme => self.file_attr(ino, 0o444, readme::README_TEXT.len() as u64),
            Inode::Events
            | Inode::Stats
            | Inode::JobStatus(_)
            | Inode::JobLog(_)
            | Inode::Policy(_) => {
                let len = self.dynamic_content(&inode).map(|c| c.len()).unwrap_or(0);
                self.file_attr(ino, meta_file, len as u64)
            }
            Inode::Ctl("log") => {
                let perm = self.pusher_modes().map_or(0o600, |(_, log)| log);
                self.file_attr(ino, perm, 0)
            }
            Inode::Ctl(_) => self.file_attr(ino, 0o600, 0),
            Inode::JobInput(_) => self.file_attr(ino, 0o200, 0),
            Inode::Instance(name) => self.dir_attr(ino, 0o755, self.point_time(&name), false),
            Inode::Latest(name) => {
                let target = self.latest_name(&name).ok_or(libc::ENOENT)?;
                Attr {
                    kind: EntryKind::Symlink,
                    size: target.len() as u64,
                    perm: 0o777,
                    nlink: 1,
                    ..self.dir_attr(ino, 0o777, self.point_time(&name), false)
                }
            }
            // A single-directory point's root is that directory as it was, but for its
            // ctime (which no copy keeps): the point's time, as on every point directory.
            Inode::Point(p) => match &p.manifest.root_meta {
                Some(meta) => Attr {
                    ctime_ns: p.manifest.time_ns,
                    ..self.node_attr(ino, &meta.to_node())
                },
                None => self.dir_attr(ino, 0o755, p.manifest.time_ns, true),
            },
            Inode::Node { node, .. } => self.node_attr(ino, &node),
        })
    }

    fn node_attr(&self, ino: u64, n: &Node) -> Attr {
        let kind = node_kind(n.kind);
        let allocated: u64 = n
            .content
            .iter()
            .filter(|e| matches!(e, crate::model::Extent::Data { .. }))
            .map(|e| e.len())
            .sum();
        Attr {
            ino,
            kind,
            size: match kind {
                EntryKind::File => n.size,
                EntryKind::Symlink => n.target.len() as u64,
                _ => 0,
            },
            blocks: allocated.div_ceil(512),
            perm: (n.mode & 0o7777) as u16,
            nlink: if kind == EntryKind::Dir {
                2
            } else {
                n.nlink.clamp(1, u32::MAX as u64) as u32
            },
            uid: n.uid,
            gid: n.gid,
            rdev: n.rdev as u32,
            mtime_ns: n.mtime_ns,
            ctime_ns: n.ctime_ns,
            immutable: true,
        }
    }

    /// The newest point that is not a safety point.
    fn latest_name(&self, instance: &str) -> Option<String> {
        crate::catalog::latest_of(self.service.points(instance)).map(|p| p.manifest.name)
    }

    /// Children of a directory as (name, inode). Point directories' listings are shared,
    /// not copied: lookups and opens on a large directory stay cheap.
    fn children(&self, ino: u64) -> FsResult<Arc<Listing>> {
        let inode = self.inode(ino)?;
        let mut out = Vec::new();
        match inode {
            Inode::Root => {
                out.push((META_NAME.as_bytes().to_vec(), META));
                for name in self.service.instance_names() {
                    let n = name.clone();
                    let i = self.intern(Key::Instance(name.clone()), || Inode::Instance(n));
                    out.push((name.into_bytes(), i));
                }
            }
            Inode::Meta => {
                out.push((b"README".to_vec(), README));
                out.push((b"ctl".to_vec(), CTL_DIR));
                out.push((b"jobs".to_vec(), JOBS_DIR));
                out.push((b"policies".to_vec(), POLICIES_DIR));
                out.push((b"events".to_vec(), EVENTS));
                out.push((b"stats".to_vec(), STATS));
            }
            Inode::CtlDir => {
                for (i, f) in CONTROL_FILES.iter().enumerate() {
                    out.push((f.as_bytes().to_vec(), CTL_BASE + i as u64));
                }
            }
            Inode::JobsDir => {
                for id in self.service.job_ids() {
                    let i = self.intern(Key::JobDir(id), || Inode::JobDir(id));
                    out.push((id.to_string().into_bytes(), i));
                }
            }
            Inode::PoliciesDir => {
                for name in self.service.policy_names() {
                    let n = name.clone();
                    let i = self.intern(Key::Policy(name.clone()), || Inode::Policy(n));
                    out.push((name.into_bytes(), i));
                }
            }
            Inode::JobDir(id) => return Ok(Arc::new(self.job_dir_listing(id))),
            Inode::Instance(name) => {
                let points = self.service.points(&name);
                if crate::catalog::latest_of(points.iter().cloned()).is_some() {
                    let n = name.clone();
                    out.push((
                        b"latest".to_vec(),
                        self.intern(Key::Latest(name.clone()), || Inode::Latest(n)),
                    ));
                }
                for p in points {
                    let point_name = p.manifest.name.clone();
                    let p = Arc::new(p);
                    let i = self.intern(Key::Point(p.id.to_hex()), || Inode::Point(p));
                    out.push((point_name.into_bytes(), i));
                }
            }
            Inode::Point(p) => {
                return self.point_dir(ino, || {
                    let tree = self.tree(&p.manifest.root)?;
                    Ok(self.tree_children(ino, ino, &tree))
                })
            }
            Inode::Node { point, node, .. } => {
                let id = node.subtree.ok_or(libc::ENOTDIR)?;
                return self.point_dir(ino, || {
                    let tree = self.tree(&id)?;
                    Ok(self.tree_children(point, ino, &tree))
                });
            }
            _ => return Err(libc::ENOTDIR),
        }
        Ok(Arc::new(out))
    }

    /// A directory of a point: immutable, so its listing is computed once.
    fn point_dir(
        &self,
        ino: u64,
        list: impl FnOnce() -> FsResult<Listing>,
    ) -> FsResult<Arc<Listing>> {
        if let Some(d) = self.dirs.read_locked().get(&ino) {
            return Ok(d.clone());
        }
        let listing = Arc::new(list()?);
        self.dirs.write_locked().insert(ino, listing.clone());
        Ok(listing)
    }

    /// A directory's tree; its subdirectories' trees are then read in the background
    /// (`find`, `ls -R` and `tar` go there next).
    fn tree(&self, id: &BlobId) -> FsResult<Arc<Tree>> {
        let trees = self.content.trees();
        let tree = trees.tree(id).map_err(|e| {
            tracing::error!("reading tree {id}: {e}");
            libc::EIO
        })?;
        let (reader, t) = (trees.clone(), tree.clone());
        self.service
            .runtime()
            .spawn_blocking(move || reader.prefetch_subtrees(&t));
        Ok(tree)
    }

    fn tree_children(&self, point: u64, parent: u64, tree: &Tree) -> Vec<(Vec<u8>, u64)> {
        tree.nodes
            .iter()
            .map(|n| {
                // Hard-linked files of one point share an inode, so `cp -a` and
                // `rsync -H` see the links.
                let key = if n.is_hardlinked() {
                    Key::Link(point, n.dev, n.inode)
                } else {
                    Key::Child(parent, n.name.clone())
                };
                let ino = self.intern(key, || {
                    let layout = (n.kind == NodeKind::File)
                        .then(|| Arc::new(FileLayout::new(n.content.clone())));
                    Inode::Node {
                        point,
                        parent,
                        node: Arc::new(n.clone()),
                        layout,
                    }
                });
                (n.name.clone(), ino)
            })
            .collect()
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> FsResult<Attr> {
        if parent == ROOT {
            // New points and instances from other machines appear without remounting.
            self.service
                .refresh_if_older(std::time::Duration::from_secs(2));
        }
        let children = self.children(parent)?;
        let ino = children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| *i)
            .ok_or(libc::ENOENT)?;
        self.getattr(ino)
    }

    /// Entries of a directory with their attributes (readdirplus), without `.`/`..`.
    pub fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        if ino == ROOT {
            self.service
                .refresh_if_older(std::time::Duration::from_secs(2));
        }
        self.children(ino)?
            .iter()
            .map(|(name, i)| {
                Ok(DirEntry {
                    name: name.clone(),
                    attr: self.getattr(*i)?,
                })
            })
            .collect()
    }

    /// The parent of a directory, for `..`.
    pub fn parent_of(&self, ino: u64) -> u64 {
        match self.inode(ino) {
            Ok(Inode::CtlDir | Inode::JobsDir | Inode::PoliciesDir) => META,
            Ok(Inode::JobDir(_)) => JOBS_DIR,
            _ => ROOT,
        }
    }

    pub fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        match self.inode(ino)? {
            Inode::Latest(name) => self
                .latest_name(&name)
                .map(String::into_bytes)
                .ok_or(libc::ENOENT),
            Inode::Node { node, .. } if node.kind == NodeKind::Symlink => Ok(node.target.clone()),
            _ => Err(libc::EINVAL),
        }
    }

    /// The extended attributes of an inode: a node's, or a single-directory point root's.
    fn xattrs_of(&self, ino: u64) -> FsResult<Vec<crate::model::Xattr>> {
        Ok(match self.inode(ino)? {
            Inode::Node { node, .. } => node.xattrs.clone(),
            Inode::Point(p) => p
                .manifest
                .root_meta
                .as_ref()
                .map(|m| m.xattrs.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    pub fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        Ok(self
            .xattrs_of(ino)?
            .iter()
            .flat_map(|x| x.name.iter().copied().chain([0]))
            .collect())
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> FsResult<Vec<u8>> {
        self.xattrs_of(ino)?
            .into_iter()
            .find(|x| x.name == name)
            .map(|x| x.value)
            .ok_or(libc::ENODATA)
    }
}
