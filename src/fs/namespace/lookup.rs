//! Looking up names and attributes: an entry of a directory by name (a binary search in
//! a point directory's tree; `@TIME` and `<point>.tar` in an instance's directory are
//! made on lookup), the node a point's inode refers to, and whether answering
//! needs a tree that is not in memory (the adapter then answers from a worker, so a slow
//! store never stalls the session threads).

use std::ops::Deref;
use std::sync::Arc;

use super::exports::is_export_name;
use super::inode::Inode;
use super::listing::Listing;
use super::{fixed_number, Attr, DirEntry, FsResult, Key, Namespace, ROOT};
use crate::model::{Node, Tree};
use crate::repo::BlobId;
use crate::sync::LockExt;

/// How old the list of instances and points may be when the root is looked at.
const ROOT_FRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// A node of a point: in its directory's tree, or kept by its (hard-linked) inode.
pub(super) enum NodeAt {
    InTree(Arc<Tree>, usize),
    Own(Arc<Node>),
}

impl Deref for NodeAt {
    type Target = Node;
    fn deref(&self) -> &Node {
        match self {
            NodeAt::InTree(tree, i) => &tree.nodes[*i],
            NodeAt::Own(node) => node,
        }
    }
}

impl Namespace {
    /// Looks `name` up in `parent`: the kernel holds one more reference to what it finds.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> FsResult<Attr> {
        if parent == ROOT {
            // New points and instances from other machines appear without remounting.
            self.service.refresh_if_older(ROOT_FRESH);
        }
        let (key, inode) = self.child_of(parent, name)?;
        if let Some(ino) = fixed_number(&inode) {
            return self.getattr(ino);
        }
        let (ino, generation) = self.intern(&key, inode.clone());
        match self.attr_of(ino, &inode) {
            Ok(a) => Ok(Attr { generation, ..a }),
            Err(e) => {
                self.forget(ino, 1);
                Err(e)
            }
        }
    }

    /// The entry `name` of directory `parent`, not yet held: its key and inode.
    pub(super) fn child_of(&self, parent: u64, name: &[u8]) -> FsResult<(Key, Inode)> {
        match self.inode(parent)? {
            Inode::Instance(instance) if name.starts_with(b"@") => {
                return self.time_view(&instance, name);
            }
            Inode::Instance(instance) if is_export_name(name) => {
                return self.export_file(&instance, name);
            }
            Inode::LogsDir(instance) => return self.log_file(&instance, name),
            Inode::JobsDir => {
                let id = std::str::from_utf8(name)
                    .ok()
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|id| id.to_string().as_bytes() == name)
                    .ok_or(libc::ENOENT)?;
                if !self.service.job_ids().contains(&id) {
                    return Err(libc::ENOENT);
                }
                return Ok((Key::JobDir(id), Inode::JobDir(id)));
            }
            _ => {}
        }
        let listing = self.listing(parent)?;
        let i = listing.find(name).ok_or(libc::ENOENT)?;
        Ok(listing.entry(i))
    }

    /// Entries of a directory with their attributes, as readdirplus gives them (without
    /// `.`/`..`): each is held as a lookup would hold it.
    pub fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        if ino == ROOT {
            self.service.refresh_if_older(ROOT_FRESH);
        }
        let listing = self.listing(ino)?;
        (0..listing.len())
            .map(|i| self.held_entry(&listing, i))
            .collect()
    }

    /// Entry `i` of `listing` with its attributes, held by the kernel from now on.
    pub(super) fn held_entry(&self, listing: &Listing, i: usize) -> FsResult<DirEntry> {
        let (ino, generation, inode) = self.hold(listing, i);
        let attr = match listing.node(i) {
            Some(node) => Ok(self.node_attr(ino, node)),
            None => self.attr_of(ino, &inode),
        };
        match attr {
            Ok(a) => Ok(DirEntry {
                name: listing.name(i).to_vec(),
                attr: Attr { generation, ..a },
            }),
            Err(e) => {
                self.forget(ino, 1);
                Err(e)
            }
        }
    }

    /// The node a point's inode refers to.
    pub(super) fn node_of(&self, inode: &Inode) -> FsResult<NodeAt> {
        match inode {
            Inode::Linked(_, node) => Ok(NodeAt::Own(node.clone())),
            Inode::Node(r) | Inode::Dir(r, _) => {
                let tree = self.tree(&self.tree_id(r.parent)?)?;
                let i = r.index as usize;
                if i >= tree.nodes.len() {
                    return Err(libc::ESTALE);
                }
                Ok(NodeAt::InTree(tree, i))
            }
            _ => Err(libc::EINVAL),
        }
    }

    /// The tree a directory of a point (or a view) lists.
    pub(super) fn tree_id(&self, dir: u64) -> FsResult<BlobId> {
        match self.inode(dir)? {
            Inode::Point(p) => Ok(p.manifest.root),
            Inode::Dir(_, id) => Ok(*id),
            Inode::View(v, _) => match (&v.node, v.root) {
                (Some(node), _) => node.subtree.ok_or(libc::ENOTDIR),
                (None, None) => Ok(v.plan.base.manifest.root),
                // A directory only the overlay has: no tree.
                (None, Some(_)) => Err(libc::ENOENT),
            },
            _ => Err(libc::ENOTDIR),
        }
    }

    /// Whether the tree directory `dir` lists is in memory (or it lists none).
    fn tree_in_memory(&self, dir: u64) -> bool {
        self.tree_id(dir)
            .map_or(true, |id| self.trees.locked().contains(&id))
    }

    /// Whether looking up `name` in `parent` may wait on the repository.
    pub fn lookup_may_wait(&self, parent: u64, name: &[u8]) -> bool {
        match self.inode(parent) {
            Ok(Inode::Instance(_)) => name.starts_with(b"@") || is_export_name(name),
            Ok(_) => !self.tree_in_memory(parent),
            Err(_) => false,
        }
    }

    /// Whether the attributes of `ino` (or opening it) may wait on the repository.
    pub fn attr_may_wait(&self, ino: u64) -> bool {
        match self.inode(ino) {
            Ok(Inode::Node(r) | Inode::Dir(r, _)) => !self.tree_in_memory(r.parent),
            _ => false,
        }
    }

    /// Whether listing `ino` may wait on the repository.
    pub fn list_may_wait(&self, ino: u64) -> bool {
        self.attr_may_wait(ino) || !self.tree_in_memory(ino)
    }
}
