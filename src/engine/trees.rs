//! Reading trees and file data through the catalog's index, with a small cache of
//! decoded trees (directories are read many times while walking).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::catalog::Catalog;
use crate::model::Tree;
use crate::repo::{BlobId, BlobKind, RepoError, Repository};

use super::disk_cache::DiskCache;
use super::Result;

const CACHE_TREES: usize = 1024;

/// Reads blobs of one repository; cheap to clone.
#[derive(Clone)]
pub struct TreeReader {
    repo: Repository,
    catalog: Arc<Catalog>,
    cache: Arc<Mutex<HashMap<BlobId, Arc<Tree>>>>,
    disk: Option<Arc<DiskCache>>,
}

impl TreeReader {
    pub fn new(repo: Repository, catalog: Arc<Catalog>) -> TreeReader {
        TreeReader {
            repo,
            catalog,
            cache: Arc::new(Mutex::new(HashMap::new())),
            disk: None,
        }
    }

    /// Keeps blobs read from the repository in a bounded on-disk cache too.
    pub fn with_disk_cache(mut self, disk: DiskCache) -> TreeReader {
        self.disk = Some(Arc::new(disk));
        self
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Reads and checks one blob of the given kind.
    pub fn read_blob(&self, id: &BlobId, kind: BlobKind) -> Result<Vec<u8>> {
        let loc = self
            .catalog
            .lookup_blob(id)?
            .ok_or(RepoError::MissingBlob(*id))?;
        if loc.kind != kind {
            return Err(RepoError::Format(format!("blob {id} is not a {kind:?} blob")).into());
        }
        let Some(disk) = &self.disk else {
            return Ok(self.repo.read_blob(id, &loc)?);
        };
        if let Some(stored) = disk.get(id) {
            match self.repo.decode_blob(id, &loc, &stored) {
                Ok(plain) => return Ok(plain),
                Err(e) => {
                    tracing::warn!("dropping damaged cache entry for {id}: {e}");
                    disk.remove(id);
                }
            }
        }
        let start = loc.offset as u64;
        let stored = self
            .repo
            .store()
            .get_range(&loc.pack.key(), start..start + loc.length as u64)
            .map_err(RepoError::from)?;
        let plain = self.repo.decode_blob(id, &loc, &stored)?;
        disk.put(id, &stored);
        Ok(plain)
    }

    /// Reads, checks and decodes a tree.
    pub fn tree(&self, id: &BlobId) -> Result<Arc<Tree>> {
        if let Some(t) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(t.clone());
        }
        let tree = Arc::new(Tree::decode(&self.read_blob(id, BlobKind::Tree)?)?);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_TREES {
            cache.clear();
        }
        cache.insert(*id, tree.clone());
        Ok(tree)
    }
}
