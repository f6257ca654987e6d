//! The plan of a restore as data: units (a destination, its stage and how they swap) and
//! the tree of entries each stage is built from. Planning makes them, staging and the swap
//! read them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::{Node, Tree};

/// A node of a point: a tree and an index in it (trees stay shared, nodes are not copied).
#[derive(Clone)]
pub(super) struct NodeRef {
    pub(super) tree: Arc<Tree>,
    pub(super) idx: usize,
}

impl NodeRef {
    pub(super) fn node(&self) -> &Node {
        &self.tree.nodes[self.idx]
    }
}

/// The metadata a staged directory ends with.
pub(super) enum DirMeta {
    Point(NodeRef),
    /// Given whole: captured from the directory being replaced (kept as it was), or the
    /// root metadata the point recorded.
    Existing(Box<Node>),
    /// A new target's root when the point recorded no root metadata (several sources, or
    /// a point from before it was recorded).
    Fresh,
}

pub(super) struct PlanDir {
    /// Relative to the stage root; empty for the root itself.
    pub(super) rel: PathBuf,
    pub(super) meta: DirMeta,
    pub(super) entries: Vec<Entry>,
}

pub(super) enum Entry {
    Dir(PlanDir),
    Leaf(Leaf),
    /// An entry of the original outside the restore's scope: hard-linked into the stage.
    Keep {
        rel: PathBuf,
        original: PathBuf,
    },
}

/// A non-directory from the point.
pub(super) struct Leaf {
    pub(super) rel: PathBuf,
    pub(super) node: NodeRef,
    /// The regular file at the same place in the original: linked if it already matches.
    pub(super) existing: Option<PathBuf>,
    /// For later members of a hard-link group: the staged path of the first member.
    pub(super) link_to: Option<PathBuf>,
}

/// A destination and the stage that replaces it.
pub(super) struct Unit {
    pub(super) dest: PathBuf,
    /// How the stage takes the destination's place.
    pub(super) swap: Swap,
    /// Hidden sibling of `dest`: the new content, and after the swap the old one.
    pub(super) stage: PathBuf,
    /// `None`: the destination is removed (the point lacks it).
    pub(super) entry: Option<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// How a stage takes its destination's place.
pub(super) enum Swap {
    /// Stage and destination trade places atomically (`RENAME_EXCHANGE`).
    Exchange,
    /// The destination does not exist: the stage is renamed to it.
    Place,
    /// A new target that is an empty directory: rename(2) replaces it.
    ReplaceEmpty,
    /// The point lacks the destination: it is renamed to the stage's name and deleted.
    Remove,
}

pub(super) fn join(base: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}
