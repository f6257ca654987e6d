//! What every step of one backup shares: the packer and the tree reader of the parent
//! point (both through the local tree cache of a remote repository), the excludes, the
//! counters and warnings, and the hard-link groups already read.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use globset::GlobSet;

use crate::catalog::Catalog;
use crate::engine::{CancelToken, Progress, TreeReader};
use crate::model::Extent;
use crate::repo::{BlobIndex, Packer, Repository, TreeSink};
use crate::sync::LockExt;

/// The content of a hard-link group, filled by the first member read.
pub(super) type LinkSlot = Arc<Mutex<Option<Vec<Extent>>>>;

/// What every step of one backup shares.
pub(super) struct Ctx<'a> {
    pub(super) repo: &'a Repository,
    pub(super) catalog: &'a Catalog,
    pub(super) packer: Packer,
    pub(super) reader: TreeReader,
    pub(super) excludes: GlobSet,
    pub(super) progress: &'a dyn Progress,
    pub(super) cancel: &'a CancelToken,
    pub(super) warnings: Mutex<Vec<String>>,
    /// Content of hard-linked files already read in this backup, by (dev, inode).
    pub(super) links: Mutex<HashMap<(u64, u64), LinkSlot>>,
    pub(super) files: AtomicU64,
    pub(super) dirs: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) files_read: AtomicU64,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        catalog: &'a Arc<Catalog>,
        excludes: GlobSet,
        progress: &'a dyn Progress,
        cancel: &'a CancelToken,
    ) -> Ctx<'a> {
        let index: Arc<dyn BlobIndex> = catalog.clone();
        // The parent's trees are read through the local cache, and the new ones go into it.
        let reader = TreeReader::new(repo.clone(), catalog.clone()).with_repo_cache();
        let sink = reader
            .blobs()
            .disk_cache()
            .cloned()
            .map(|disk| -> TreeSink { Arc::new(move |id, stored| disk.put(id, stored)) });
        Ctx {
            repo,
            catalog,
            packer: Packer::with_tree_sink(repo.clone(), index, sink),
            reader,
            excludes,
            progress,
            cancel,
            warnings: Mutex::new(Vec::new()),
            links: Mutex::new(HashMap::new()),
            files: AtomicU64::new(0),
            dirs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            files_read: AtomicU64::new(0),
        }
    }

    pub(super) fn warn(&self, message: String) {
        tracing::debug!("{message}");
        self.progress.warn(&message);
        self.warnings.locked().push(message);
    }
}
