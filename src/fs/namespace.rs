//! The mount's namespace as a plain model: instances, points, trees, the `.cairn` control
//! plane, jobs; stable inode numbers; open handles. No FUSE types here: the adapter in
//! `adapter.rs` translates kernel requests into calls on [`Namespace`], and tests drive
//! it directly without a kernel. This file holds the inode model and the top of the tree
//! (root, `.cairn`); `attrs.rs` gives attributes, `points.rs` the instances' and points'
//! directories, `log_files.rs` an instance's `logs/`, `time_travel.rs` (with the types of
//! `time_view.rs`) its `@TIME/` views, `exports.rs` its points' archives (`<point>.tar`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use crate::engine::disk_cache::DiskCache;
use crate::engine::ContentReader;
use crate::service::{Service, CONTROL_FILES};
use crate::sync::{LockExt, RwLockExt};

mod attrs;
mod control_reply;
mod counters;
mod dir_handles;
mod exports;
mod handles;
mod inode;
mod inode_table;
mod job_input;
mod listing;
mod log_files;
mod log_push;
mod lookup;
mod points;
mod readme;
mod removal;
mod state;
mod time_travel;
mod time_view;
mod tree_cache;

pub use counters::Op;
pub use inode::{Attr, DirEntry, EntryKind};
pub use time_view::Planner;

use inode::{Inode, Key};
use inode_table::InodeTable;
use listing::{Child, Listing};
use tree_cache::TreeCache;

pub type Errno = i32;
pub type FsResult<T> = std::result::Result<T, Errno>;

pub const ROOT: u64 = 1;
pub(crate) const META: u64 = 2;
const CTL_DIR: u64 = 3;
const JOBS_DIR: u64 = 4;
const README: u64 = 5;
const EVENTS: u64 = 6;
const STATS: u64 = 7;
const POLICIES_DIR: u64 = 8;
const DAMAGED: u64 = 9;
const CTL_BASE: u64 = 10;
const FIRST_DYNAMIC: u64 = 100;
/// How many following files' first chunks an open prefetches.
const SIBLING_PREFETCH: usize = 64;
/// The nodes of the directory trees kept in memory (about 8 MiB of them): listings and
/// lookups walk a directory at a time, so recent ones are what is asked for again.
const TREE_CACHE_NODES: usize = 32 * 1024;

pub const META_NAME: &str = ".cairn";

/// The mounted view of one repository.
pub struct Namespace {
    service: Service,
    content: ContentReader,
    /// The inodes the kernel holds (and those tests looked up).
    table: RwLock<InodeTable<Inode>>,
    /// The trees of point directories read last (bounded).
    trees: Mutex<TreeCache>,
    handles: RwLock<HashMap<u64, Arc<state::Handle>>>,
    /// Files opened before: the kernel keeps their pages (keep-cache) while it holds the
    /// inode, so re-opening one prefetches nothing, and prefetching skips them.
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
    /// Kernel requests by kind.
    counters: counters::Counters,
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
            table: RwLock::new(InodeTable::new(FIRST_DYNAMIC)),
            trees: Mutex::new(TreeCache::new(TREE_CACHE_NODES)),
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
            counters: counters::Counters::default(),
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

    /// Counts a kernel request (`.cairn/stats` shows them).
    pub fn count(&self, op: Op) {
        self.counters.count(op);
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
            DAMAGED => Ok(Inode::Damaged),
            POLICIES_DIR => Ok(Inode::PoliciesDir),
            i if (CTL_BASE..CTL_BASE + CONTROL_FILES.len() as u64).contains(&i) => {
                Ok(Inode::Ctl(CONTROL_FILES[(i - CTL_BASE) as usize]))
            }
            _ => self
                .table
                .read_locked()
                .get(ino)
                .cloned()
                .ok_or(libc::ENOENT),
        }
    }

    /// The generation of `ino` (0 for the fixed inodes).
    fn generation(&self, ino: u64) -> u64 {
        if ino < FIRST_DYNAMIC {
            return 0;
        }
        self.table.read_locked().generation(ino)
    }

    /// Counts one kernel reference to the entry `key`, making it `inode` if new: its
    /// number and generation.
    fn intern(&self, key: &Key, inode: Inode) -> (u64, u64) {
        self.table.write_locked().intern(key, || inode)
    }

    /// The kernel forgot `n` lookups of `ino`; at none, what the mount kept for it goes.
    pub fn forget(&self, ino: u64, n: u64) {
        self.batch_forget(&[(ino, n)]);
    }

    /// [`forget`](Self::forget) of many at once.
    pub fn batch_forget(&self, list: &[(u64, u64)]) {
        let gone: Vec<u64> = {
            let mut t = self.table.write_locked();
            list.iter()
                .filter(|(ino, n)| *ino >= FIRST_DYNAMIC && t.forget(*ino, *n))
                .map(|(ino, _)| *ino)
                .collect()
        };
        if gone.is_empty() {
            return;
        }
        let mut opened = self.opened.locked();
        let mut prefetched = self.prefetched.locked();
        for ino in &gone {
            opened.remove(ino);
            prefetched.remove(ino);
        }
        if opened.capacity() > 1024 && opened.len() < opened.capacity() / 4 {
            opened.shrink_to_fit();
        }
        if prefetched.capacity() > 1024 && prefetched.len() < prefetched.capacity() / 4 {
            prefetched.shrink_to_fit();
        }
    }

    /// What the mount holds, for `.cairn/stats`.
    fn mount_stats(&self) -> serde_json::Value {
        let (requests, total) = self.counters.json();
        let (trees, tree_nodes) = self.trees.locked().size();
        serde_json::json!({
            "inodes": self.table.read_locked().len(),
            "listings": trees,
            "listing_nodes": tree_nodes,
            "open_handles": self.handles.read_locked().len(),
            "requests": requests,
            "requests_total": total,
        })
    }

    /// The entries of a directory, as one snapshot.
    fn listing(&self, ino: u64) -> FsResult<Listing> {
        let inode = self.inode(ino)?;
        let mut out = Vec::new();
        match inode {
            Inode::Root => {
                out.push(Child::new(
                    META_NAME,
                    Key::Named(ROOT, Vec::new()),
                    Inode::Meta,
                ));
                for name in self.service.instance_names() {
                    let (key, inode) = (Key::Instance(name.clone()), Inode::Instance(name.clone()));
                    out.push(Child::new(name, key, inode));
                }
            }
            Inode::Meta => {
                let fixed = [
                    ("README", Inode::Readme),
                    ("ctl", Inode::CtlDir),
                    ("jobs", Inode::JobsDir),
                    ("policies", Inode::PoliciesDir),
                    ("events", Inode::Events),
                    ("stats", Inode::Stats),
                    ("damaged", Inode::Damaged),
                ];
                for (name, inode) in fixed {
                    out.push(Child::new(name, Key::Named(META, Vec::new()), inode));
                }
            }
            Inode::CtlDir => {
                for f in CONTROL_FILES {
                    out.push(Child::new(
                        *f,
                        Key::Named(CTL_DIR, Vec::new()),
                        Inode::Ctl(f),
                    ));
                }
            }
            Inode::JobsDir => {
                for id in self.service.job_ids() {
                    out.push(Child::new(
                        id.to_string(),
                        Key::JobDir(id),
                        Inode::JobDir(id),
                    ));
                }
            }
            Inode::PoliciesDir => {
                for name in self.service.policy_names() {
                    let (key, inode) = (Key::Policy(name.clone()), Inode::Policy(name.clone()));
                    out.push(Child::new(name, key, inode));
                }
            }
            Inode::JobDir(id) => out = self.job_dir_listing(id),
            Inode::Instance(name) => out = self.instance_listing(&name),
            Inode::LogsDir(name) => out = self.logs_listing(&name),
            Inode::View(view, _) => return self.view_listing(ino, &view),
            Inode::Point(_) | Inode::Dir(..) => return self.point_listing(ino, &inode),
            _ => return Err(libc::ENOTDIR),
        }
        Ok(Listing::Entries(out))
    }

    /// The number of a fixed inode, or of the entry `key` (what a plain listing shows).
    fn number_of(&self, key: &Key, inode: &Inode) -> u64 {
        fixed_number(inode).unwrap_or_else(|| self.table.read_locked().number(key))
    }

    /// The entry `i` of `listing` as an inode the kernel holds one more reference to:
    /// its number and generation (fixed inodes are not counted).
    fn hold(&self, listing: &Listing, i: usize) -> (u64, u64, Inode) {
        let (key, inode) = listing.entry(i);
        if let Some(ino) = fixed_number(&inode) {
            return (ino, 0, inode);
        }
        let (ino, generation) = self.intern(&key, inode.clone());
        (ino, generation, inode)
    }

    /// The parent of a directory, for `..`.
    pub fn parent_of(&self, ino: u64) -> u64 {
        match self.inode(ino) {
            Ok(Inode::CtlDir | Inode::JobsDir | Inode::PoliciesDir) => META,
            Ok(Inode::JobDir(_)) => JOBS_DIR,
            Ok(Inode::Dir(r, _)) => r.parent,
            _ => ROOT,
        }
    }

    pub fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        match self.inode(ino)? {
            Inode::Latest(name) => self
                .latest_name(&name)
                .map(String::into_bytes)
                .ok_or(libc::ENOENT),
            inode @ (Inode::Node(_) | Inode::Linked(..)) => {
                let node = self.node_of(&inode)?;
                if node.kind != crate::model::NodeKind::Symlink {
                    return Err(libc::EINVAL);
                }
                Ok(node.target.clone())
            }
            _ => Err(libc::EINVAL),
        }
    }
}

/// The number of an inode that has a fixed one.
fn fixed_number(inode: &Inode) -> Option<u64> {
    Some(match inode {
        Inode::Root => ROOT,
        Inode::Meta => META,
        Inode::CtlDir => CTL_DIR,
        Inode::JobsDir => JOBS_DIR,
        Inode::Readme => README,
        Inode::Events => EVENTS,
        Inode::Stats => STATS,
        Inode::Damaged => DAMAGED,
        Inode::PoliciesDir => POLICIES_DIR,
        Inode::Ctl(f) => CTL_BASE + CONTROL_FILES.iter().position(|c| c == f)? as u64,
        _ => return None,
    })
}
