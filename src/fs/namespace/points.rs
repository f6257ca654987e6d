//! The instances' directories and the points' trees: an instance lists its points (and
//! `latest`), a point or a directory of one lists its tree's nodes. Trees come from the
//! namespace's bounded cache, else from the repository (and then the subdirectories'
//! trees are read ahead).

use std::sync::Arc;

use super::inode::Inode;
use super::{Child, FsResult, Key, Listing, Namespace};
use crate::model::Tree;
use crate::repo::BlobId;
use crate::sync::LockExt;

impl Namespace {
    pub(super) fn latest_name(&self, instance: &str) -> Option<String> {
        crate::catalog::latest_of(self.service.points(instance)).map(|p| p.manifest.name)
    }

    /// An instance's directory: `latest`, `logs` and `restorable` (when it has archived
    /// logs), then its points.
    pub(super) fn instance_listing(&self, name: &str) -> Vec<Child> {
        let mut out = Vec::new();
        let points = self.service.points(name);
        if crate::catalog::latest_of(points.iter().cloned()).is_some() {
            let (key, inode) = (Key::Latest(name.to_string()), Inode::Latest(name.into()));
            out.push(Child::new("latest", key, inode));
        }
        out.extend(self.logs_entries(name));
        for p in points {
            let point_name = p.manifest.name.clone();
            let key = Key::Point(p.id);
            out.push(Child::new(point_name, key, Inode::Point(Arc::new(p))));
        }
        out
    }

    /// A point's directory, or one of its directories: its tree.
    pub(super) fn point_listing(&self, ino: u64, inode: &Inode) -> FsResult<Listing> {
        let point = match inode {
            Inode::Point(_) => ino,
            Inode::Dir(r, _) => r.point,
            _ => return Err(libc::ENOTDIR),
        };
        Ok(Listing::Tree {
            dir: ino,
            point,
            tree: self.tree(&self.tree_id(ino)?)?,
        })
    }

    /// A directory's tree: from memory, else read (and then its subdirectories' trees are
    /// read in the background: `find`, `ls -R` and `tar` go there next).
    pub(super) fn tree(&self, id: &BlobId) -> FsResult<Arc<Tree>> {
        if let Some(tree) = self.trees.locked().get(id) {
            return Ok(tree);
        }
        let trees = self.content.trees();
        let tree = trees.tree(id).map_err(|e| {
            tracing::error!("reading tree {id}: {e}");
            libc::EIO
        })?;
        self.trees.locked().put(*id, tree.clone());
        let (reader, t) = (trees.clone(), tree.clone());
        self.service
            .runtime()
            .spawn_blocking(move || reader.prefetch_subtrees(&t));
        Ok(tree)
    }
}
