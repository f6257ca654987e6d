//! What an inode of the mount is ([`Inode`]), the key its number derives from ([`Key`]),
//! and the attributes given to the kernel. A leaf of types, shared by the namespace and
//! the files that list, look up and read it without a cycle.
//!
//! A node of a point is not copied into its inode: the inode names the directory it is
//! in and its place in that directory's tree, and the tree is read (from a bounded cache)
//! when the node is needed. What the kernel holds then costs a few dozen bytes an inode.

use std::sync::Arc;

use super::inode_table::Identity;
use super::time_view::{ViewDir, ViewFile};
use crate::catalog::PointRecord;
use crate::model::{ManifestId, Node};
use crate::repo::BlobId;

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
    /// Which inode of that number this is (numbers come back after the kernel forgot them).
    pub generation: u64,
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

/// A node of a point (or of a time-travel view's base point): the directory inode it is
/// in, its index in that directory's tree, and the root it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NodeRef {
    pub point: u64,
    pub parent: u64,
    pub index: u32,
}

/// A point's archive file (`<instance>/<point>.tar`): the point, the archive's size, and
/// whether it was named `latest.tar` (which names another point once a newer one exists).
#[derive(Debug)]
pub(super) struct ExportFile {
    pub point: PointRecord,
    pub size: u64,
    pub latest: bool,
}

#[derive(Debug, Clone)]
pub(super) enum Inode {
    Root,
    Meta,
    CtlDir,
    JobsDir,
    Readme,
    Events,
    Stats,
    /// `.cairn/damaged`: the points marked damaged whose damage still holds, JSON lines.
    Damaged,
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
    LogFile(Box<(String, String)>),
    /// A directory of a time-travel view (`<instance>/@TIME/`), and its key.
    View(Arc<ViewDir>, Arc<Key>),
    /// A file of a view from the logs or the extras, and its key.
    ViewFile(Arc<ViewFile>, Arc<Key>),
    /// A file, symlink or special file of a point.
    Node(NodeRef),
    /// A directory of a point, with its tree (boxed: most inodes are files, and an
    /// inode's size is its largest kind's).
    Dir(NodeRef, Box<BlobId>),
    /// A hard-linked file of a point: one inode for every name it has, so it keeps its
    /// node (the directory it was first seen in may be forgotten first).
    Linked(NodeRef, Arc<Node>),
    JobDir(u64),
    JobStatus(u64),
    JobLog(u64),
    JobInput(u64),
    /// `<instance>/<point>.tar`: a point's archive (looked up by name, never listed).
    Export(Arc<ExportFile>),
    /// A check job's `differences`.
    JobDifferences(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Instance(String),
    Latest(String),
    Point(ManifestId),
    LogsDir(String),
    Restorable(String),
    LogFile(String, String),
    /// A view's root: its instance and the name it was looked up by.
    View(String, Vec<u8>),
    /// An entry of a directory by name (a view's entries).
    Named(u64, Vec<u8>),
    /// The `index`th node of a point directory's tree.
    Child(u64, u32),
    /// A hard-linked file: its point and source (device, inode).
    Link(u64, u64, u64),
    JobDir(u64),
    JobStatus(u64),
    JobLog(u64),
    JobInput(u64),
    JobDifferences(u64),
    Policy(String),
    /// A point's archive file, and whether by the name `latest.tar`.
    Export(ManifestId, bool),
}

impl Inode {
    /// The node a point's inode refers to, if it is one.
    pub fn node_ref(&self) -> Option<NodeRef> {
        match self {
            Inode::Node(r) | Inode::Dir(r, _) | Inode::Linked(r, _) => Some(*r),
            _ => None,
        }
    }
}

impl Identity for Inode {
    type Key = Key;

    fn is(&self, key: &Key) -> bool {
        match (self, key) {
            (Inode::Instance(a), Key::Instance(b))
            | (Inode::Latest(a), Key::Latest(b))
            | (Inode::LogsDir(a), Key::LogsDir(b))
            | (Inode::Restorable(a), Key::Restorable(b))
            | (Inode::Policy(a), Key::Policy(b)) => a == b,
            (Inode::Point(p), Key::Point(id)) => p.id == *id,
            (Inode::Export(f), Key::Export(id, latest)) => f.point.id == *id && f.latest == *latest,
            (Inode::LogFile(f), Key::LogFile(i, n)) => f.0 == *i && f.1 == *n,
            (Inode::View(_, k) | Inode::ViewFile(_, k), key) => **k == *key,
            (Inode::Node(r) | Inode::Dir(r, _), Key::Child(parent, index)) => {
                r.parent == *parent && r.index == *index
            }
            (Inode::Linked(r, n), Key::Link(point, dev, inode)) => {
                r.point == *point && n.dev == *dev && n.inode == *inode
            }
            (Inode::JobDir(a), Key::JobDir(b))
            | (Inode::JobStatus(a), Key::JobStatus(b))
            | (Inode::JobLog(a), Key::JobLog(b))
            | (Inode::JobInput(a), Key::JobInput(b))
            | (Inode::JobDifferences(a), Key::JobDifferences(b)) => a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_inode_stays_small() {
        // What the kernel holds costs this much a name in the daemon (plus the table's
        // own few words): keep the largest kind boxed.
        assert!(std::mem::size_of::<super::Inode>() <= 40);
    }
}
