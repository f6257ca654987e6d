//! The mount's namespace as a plain model: instances, points, trees, the `.cairn` control
//! plane, jobs; stable inode numbers; open handles. No FUSE types here: the adapter in
//! `adapter.rs` translates kernel requests into calls on [`Namespace`], and tests drive
//! it directly without a kernel. This file holds the inode model and the top of the tree
//! (root, `.cairn`); `attrs.rs` gives attributes, `points.rs` the instances' and points'
//! directories, `log_files.rs` an instance's `logs/`, `time_travel.rs` (with the types of
//! `time_view.rs`) its `@TIME/` views.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use crate::catalog::PointRecord;
use crate::engine::disk_cache::DiskCache;
use crate::engine::{ContentReader, FileLayout};
use crate::model::{Node, NodeKind};
use crate::service::{Service, CONTROL_FILES};
use crate::sync::RwLockExt;

mod attrs;
mod control_reply;
mod handles;
mod job_input;
mod log_files;
mod log_push;
mod points;
mod readme;
mod removal;
mod state;
mod time_travel;
mod time_view;

pub use time_view::Planner;

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
    /// `<instance>/logs/`: the instance's archived log files.
    LogsDir(String),
    /// `<instance>/restorable`: the instance's restorable range, as JSON.
    Restorable(String),
    /// `<instance>/logs/<name>`: a log file's newest version.
    LogFile {
        instance: String,
        name: String,
    },
    /// A directory of a time-travel view (`<instance>/@TIME/`).
    View(Arc<time_view::ViewDir>),
    /// A file of a view from the logs or the extras.
    ViewFile(Arc<time_view::ViewFile>),
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
    LogsDir(String),
    Restorable(String),
    LogFile(String, String),
    /// A view's root: its instance and the name it was looked up by.
    View(String, Vec<u8>),
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
    /// Per instance, its archived log files' newest versions and when they were read.
    log_files: Mutex<HashMap<String, state::LogFiles>>,
    /// Makes the plan of a time-travel view.
    planner: Planner,
    /// The plans of the views made last.
    plans: Mutex<time_view::PlanCache>,
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
            log_files: Mutex::default(),
            planner: Arc::new(time_view::plan_from_logs),
            plans: Mutex::default(),
        }
    }

    /// Makes time-travel views with `planner` instead of the plans of the logs.
    pub fn with_planner(self, planner: Planner) -> Namespace {
        Namespace { planner, ..self }
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

    /// The inode for `key`, if it has one.
    fn table_lookup(&self, key: &Key) -> Option<u64> {
        self.table.read_locked().by_key.get(key).copied()
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
            Inode::Instance(name) => return Ok(Arc::new(self.instance_listing(&name))),
            Inode::LogsDir(name) => return Ok(Arc::new(self.logs_listing(&name))),
            Inode::View(view) => return self.view_listing(ino, &view),
            Inode::Point(_) | Inode::Node { .. } => return self.point_listing(ino, inode),
            _ => return Err(libc::ENOTDIR),
        }
        Ok(Arc::new(out))
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> FsResult<Attr> {
        if parent == ROOT {
            // New points and instances from other machines appear without remounting.
            self.service
                .refresh_if_older(std::time::Duration::from_secs(2));
        }
        match self.inode(parent)? {
            Inode::Instance(instance) if name.starts_with(b"@") => {
                return self.getattr(self.time_view(&instance, name)?);
            }
            Inode::LogsDir(instance) => return self.getattr(self.log_file(&instance, name)?),
            _ => {}
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
}
