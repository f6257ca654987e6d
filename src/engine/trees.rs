//! Reading trees: decoded and kept in a small cache (directories are read many times
//! while walking), with the subtrees of a directory prefetched together. The blobs
//! themselves come through a [`BlobReader`], which file data is read with too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::catalog::Catalog;
use crate::model::Tree;
use crate::repo::{BlobId, BlobKind, Repository};

use super::blobs::BlobReader;
use super::disk_cache::DiskCache;
use super::Result;
use crate::sync::LockExt;

const CACHE_TREES: usize = 1024;
/// Subtrees one prefetch reads at most (well under the cache, so they survive until used).
const PREFETCH_TREES: usize = 256;

/// Reads trees of one repository; cheap to clone (clones share the cache).
#[derive(Clone)]
pub struct TreeReader {
    blobs: BlobReader,
    cache: Arc<Mutex<HashMap<BlobId, Arc<Tree>>>>,
}

impl TreeReader {
    pub fn new(repo: Repository, catalog: Arc<Catalog>) -> TreeReader {
        TreeReader {
            blobs: BlobReader::new(repo, catalog),
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Keeps blobs read from the repository in a bounded on-disk cache too.
    pub fn with_disk_cache(mut self, disk: DiskCache) -> TreeReader {
        self.blobs = self.blobs.with_disk_cache(disk);
        self
    }

    /// Keeps trees in the repository's on-disk cache ([`DiskCache::for_repo`]): what a
    /// backup or a restore reads is found there the next time, and a tree missing from
    /// it brings its whole tree pack.
    pub fn with_repo_cache(self) -> TreeReader {
        match DiskCache::for_repo(self.repo(), self.blobs.catalog()) {
            Some(disk) => self.with_disk_cache(disk),
            None => self,
        }
    }

    /// The reader of the blobs under the trees (file data too).
    pub fn blobs(&self) -> &BlobReader {
        &self.blobs
    }

    pub fn repo(&self) -> &Repository {
        self.blobs.repo()
    }

    /// Reads the subtrees of `tree`'s directories that are not cached, in coalesced range
    /// requests (trees of one point sit together in tree packs): a walk then finds them
    /// in the cache instead of asking the store once per directory.
    pub fn prefetch_subtrees(&self, tree: &Tree) {
        let ids: Vec<BlobId> = {
            let cache = self.cache.locked();
            tree.nodes
                .iter()
                .filter_map(|n| n.subtree)
                .filter(|id| !cache.contains_key(id))
                .take(PREFETCH_TREES)
                .collect()
        };
        if ids.len() < 2 {
            return; // one tree is read on demand just as cheaply
        }
        self.blobs.read_blobs(&ids, BlobKind::Tree, |id, plain| {
            match Tree::decode(&plain) {
                Ok(t) => self.cache_tree(id, Arc::new(t)),
                Err(e) => tracing::warn!("prefetched tree {id}: {e}"),
            }
        });
    }

    fn cache_tree(&self, id: BlobId, tree: Arc<Tree>) {
        let mut cache = self.cache.locked();
        if cache.len() >= CACHE_TREES {
            cache.clear();
        }
        cache.insert(id, tree);
    }

    /// Reads, checks and decodes a tree.
    pub fn tree(&self, id: &BlobId) -> Result<Arc<Tree>> {
        if let Some(t) = self.cache.locked().get(id) {
            return Ok(t.clone());
        }
        let tree = Arc::new(Tree::decode(&self.blobs.read_blob(id, BlobKind::Tree)?)?);
        self.cache_tree(*id, tree.clone());
        Ok(tree)
    }
}
