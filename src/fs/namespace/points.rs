//! The instances' directories and the points' trees: an instance lists its points (and
//! `latest`), a point or a directory of one lists its tree's nodes, each listing read once
//! (points never change) and shared.

use std::sync::Arc;

use super::{FsResult, Inode, Key, Listing, Namespace};
use crate::engine::FileLayout;
use crate::model::{Node, NodeKind, Tree};
use crate::repo::BlobId;
use crate::sync::RwLockExt;

impl Namespace {
    pub(super) fn latest_name(&self, instance: &str) -> Option<String> {
        crate::catalog::latest_of(self.service.points(instance)).map(|p| p.manifest.name)
    }

    /// An instance's directory: `latest`, `logs` and `restorable` (when it has archived
    /// logs), then its points.
    pub(super) fn instance_listing(&self, name: &str) -> Listing {
        let mut out = Vec::new();
        let points = self.service.points(name);
        if crate::catalog::latest_of(points.iter().cloned()).is_some() {
            let n = name.to_string();
            out.push((
                b"latest".to_vec(),
                self.intern(Key::Latest(name.to_string()), || Inode::Latest(n)),
            ));
        }
        out.extend(self.logs_entries(name));
        for p in points {
            let point_name = p.manifest.name.clone();
            let p = Arc::new(p);
            let i = self.intern(Key::Point(p.id.to_hex()), || Inode::Point(p));
            out.push((point_name.into_bytes(), i));
        }
        out
    }

    /// A point's directory, or one of its directories.
    pub(super) fn point_listing(&self, ino: u64, inode: Inode) -> FsResult<Arc<Listing>> {
        match inode {
            Inode::Point(p) => self.point_dir(ino, || {
                let tree = self.tree(&p.manifest.root)?;
                Ok(self.tree_children(ino, ino, &tree))
            }),
            Inode::Node { point, node, .. } => {
                let id = node.subtree.ok_or(libc::ENOTDIR)?;
                self.point_dir(ino, || {
                    let tree = self.tree(&id)?;
                    Ok(self.tree_children(point, ino, &tree))
                })
            }
            _ => Err(libc::ENOTDIR),
        }
    }

    /// A directory of a point: immutable, so its listing is computed once.
    pub(super) fn point_dir(
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
    pub(super) fn tree(&self, id: &BlobId) -> FsResult<Arc<Tree>> {
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

    pub(super) fn tree_children(
        &self,
        point: u64,
        parent: u64,
        tree: &Tree,
    ) -> Vec<(Vec<u8>, u64)> {
        tree.nodes
            .iter()
            .map(|n| (n.name.clone(), self.tree_child(point, parent, n)))
            .collect()
    }

    /// The inode of a node of the point (or view) whose root is `point`, in `parent`.
    pub(super) fn tree_child(&self, point: u64, parent: u64, n: &Node) -> u64 {
        // Hard-linked files of one point share an inode, so `cp -a` and `rsync -H` see
        // the links.
        let key = if n.is_hardlinked() {
            Key::Link(point, n.dev, n.inode)
        } else {
            Key::Child(parent, n.name.clone())
        };
        self.intern(key, || {
            let layout =
                (n.kind == NodeKind::File).then(|| Arc::new(FileLayout::new(n.content.clone())));
            Inode::Node {
                point,
                parent,
                node: Arc::new(n.clone()),
                layout,
            }
        })
    }
}
