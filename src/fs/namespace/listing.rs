//! A directory's entries as one snapshot: what `opendir` takes and `readdir` continues
//! from at any offset, and what `lookup` searches by name. A point directory's snapshot
//! is its tree, shared and never copied: each entry becomes a key and an inode only when
//! it is asked for, so listing a directory of a million entries holds it once. Other
//! directories (the root, an instance, `.cairn`, a view) are small and made whole.

use std::sync::Arc;

use super::inode::{Inode, Key, NodeRef};
use crate::model::{Node, NodeKind, Tree};

/// An entry of a listing before it is an inode: its name, key and what it would be.
#[derive(Debug, Clone)]
pub(super) struct Child {
    pub name: Vec<u8>,
    pub key: Key,
    pub inode: Inode,
}

impl Child {
    pub fn new(name: impl Into<Vec<u8>>, key: Key, inode: Inode) -> Child {
        Child {
            name: name.into(),
            key,
            inode,
        }
    }
}

pub(super) enum Listing {
    /// A directory of a point (or of a view's base point, untouched by its overlay):
    /// the directory's inode, the root it belongs to, and its tree.
    Tree {
        dir: u64,
        point: u64,
        tree: Arc<Tree>,
    },
    /// Anything else, in listing order.
    Entries(Vec<Child>),
}

impl Listing {
    pub fn len(&self) -> usize {
        match self {
            Listing::Tree { tree, .. } => tree.nodes.len(),
            Listing::Entries(e) => e.len(),
        }
    }

    pub fn name(&self, i: usize) -> &[u8] {
        match self {
            Listing::Tree { tree, .. } => &tree.nodes[i].name,
            Listing::Entries(e) => &e[i].name,
        }
    }

    /// The position of `name`: a binary search in a tree (sorted by name, which decoding
    /// enforces), a scan of the small listings.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        match self {
            Listing::Tree { tree, .. } => tree
                .nodes
                .binary_search_by(|n| n.name.as_slice().cmp(name))
                .ok(),
            Listing::Entries(e) => e.iter().position(|c| c.name == name),
        }
    }

    /// The node at `i`, when this is a tree.
    pub fn node(&self, i: usize) -> Option<&Node> {
        match self {
            Listing::Tree { tree, .. } => tree.nodes.get(i),
            Listing::Entries(_) => None,
        }
    }

    /// The key and the inode of the entry at `i`.
    pub fn entry(&self, i: usize) -> (Key, Inode) {
        match self {
            Listing::Tree { dir, point, tree } => tree_entry(*point, *dir, &tree.nodes, i),
            Listing::Entries(e) => (e[i].key.clone(), e[i].inode.clone()),
        }
    }

    /// Just the key of the entry at `i` (what a plain listing numbers it by).
    pub fn key(&self, i: usize) -> Key {
        match self {
            Listing::Tree { dir, point, tree } => tree_key(*point, *dir, &tree.nodes[i], i),
            Listing::Entries(e) => e[i].key.clone(),
        }
    }
}

fn tree_key(point: u64, dir: u64, n: &Node, i: usize) -> Key {
    // Hard-linked files of one point share an inode, so `cp -a` and `rsync -H` see the
    // links.
    if n.is_hardlinked() {
        Key::Link(point, n.dev, n.inode)
    } else {
        Key::Child(dir, i as u32)
    }
}

/// The key and inode of the `i`th node of the tree of directory `dir` (of root `point`).
pub(super) fn tree_entry(point: u64, dir: u64, nodes: &[Node], i: usize) -> (Key, Inode) {
    let n = &nodes[i];
    let at = NodeRef {
        point,
        parent: dir,
        index: i as u32,
    };
    let inode = match (n.kind, n.subtree) {
        _ if n.is_hardlinked() => Inode::Linked(at, Arc::new(n.clone())),
        (NodeKind::Dir, Some(tree)) => Inode::Dir(at, Box::new(tree)),
        _ => Inode::Node(at),
    };
    (tree_key(point, dir, n, i), inode)
}
