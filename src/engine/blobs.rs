//! Reading blobs through the catalog's index: one checked blob, or many in coalesced
//! range requests, optionally through a bounded on-disk cache. Copies that fail their
//! check are corrected from their pack's parity when the repository has it (and then not
//! cached), else recorded as damaged.

use std::collections::HashSet;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::repo::{BlobId, BlobKind, BlobLocation, PackId, RepoError, Repository};

use super::disk_cache::DiskCache;
use super::pack_reads::{coalesce, Wanted, MAX_GAP, MAX_RANGE};
use super::tree_packs::PackFills;
use super::Result;

/// Reads blobs of one repository; cheap to clone.
#[derive(Clone)]
pub struct BlobReader {
    repo: Repository,
    catalog: Arc<Catalog>,
    disk: Option<Arc<DiskCache>>,
    fills: Arc<PackFills>,
}

impl BlobReader {
    pub fn new(repo: Repository, catalog: Arc<Catalog>) -> BlobReader {
        BlobReader {
            repo,
            catalog,
            disk: None,
            fills: Arc::default(),
        }
    }

    /// Keeps blobs read from the repository in a bounded on-disk cache too.
    pub fn with_disk_cache(mut self, disk: DiskCache) -> BlobReader {
        self.disk = Some(Arc::new(disk));
        self
    }

    /// The on-disk cache this reader keeps blobs in, if any.
    pub fn disk_cache(&self) -> Option<&Arc<DiskCache>> {
        self.disk.as_ref()
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
            return Ok(self
                .repo
                .read_blob(id, &loc)
                .inspect_err(|e| self.note_damage(id, &loc.pack, e))?);
        };
        if let Some(plain) = self.cached_copy(disk, id, &loc) {
            return Ok(plain);
        }
        if kind == BlobKind::Tree {
            self.fills.fill(&self.repo, &self.catalog, disk, &loc.pack);
            if let Some(plain) = self.cached_copy(disk, id, &loc) {
                return Ok(plain);
            }
        }
        let start = loc.offset as u64;
        let stored = self
            .repo
            .store()
            .get_range(&loc.pack.key(), start..start + loc.length as u64)
            .map_err(RepoError::from)?;
        Ok(self.decode_caching(id, &loc, &stored, disk)?)
    }

    /// Decodes a blob read from its pack and caches its stored form; a damaged one is
    /// corrected from parity when the repository has it (and then not cached), or noted.
    fn decode_caching(
        &self,
        id: &BlobId,
        loc: &BlobLocation,
        stored: &[u8],
        disk: &DiskCache,
    ) -> std::result::Result<Vec<u8>, RepoError> {
        match self.repo.decode_checked(id, loc, stored) {
            Ok(plain) => {
                disk.put(id, stored);
                Ok(plain)
            }
            Err(_) => self
                .repo
                .decode_blob(id, loc, stored)
                .inspect_err(|e| self.note_damage(id, &loc.pack, e)),
        }
    }

    /// The cached copy of a blob, checked; a damaged one is dropped (and read again).
    fn cached_copy(&self, disk: &DiskCache, id: &BlobId, loc: &BlobLocation) -> Option<Vec<u8>> {
        let stored = disk.get(id)?;
        match self.repo.decode_checked(id, loc, &stored) {
            Ok(plain) => Some(plain),
            Err(e) => {
                tracing::warn!("dropping damaged cache entry for {id}: {e}");
                disk.remove(id);
                None
            }
        }
    }

    /// Remembers a copy that failed its check, so that no backup deduplicates against it
    /// again (the next one that has the data stores it anew, see `catalog/history/damage.rs`).
    /// Storage errors say nothing about the copy and are not recorded.
    pub(crate) fn note_damage(&self, id: &BlobId, pack: &PackId, e: &RepoError) {
        if let RepoError::CorruptBlob { detail, .. } = e {
            if let Err(err) = self.catalog.mark_damaged(id, pack, detail) {
                tracing::warn!("recording damaged blob {id}: {err}");
            }
        }
    }

    /// Reads many blobs of one kind with coalesced range requests (see
    /// [`pack_reads`](super::pack_reads)) and hands each one, checked, to `deliver`.
    /// Blobs that are not indexed or fail their check are logged and skipped: this serves
    /// prefetching, whose misses are read again on demand.
    pub fn read_blobs(
        &self,
        ids: &[BlobId],
        kind: BlobKind,
        mut deliver: impl FnMut(BlobId, Vec<u8>),
    ) {
        let locations = match self.catalog.lookup_blobs(ids) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("prefetch lookup of {} blobs: {e}", ids.len());
                return;
            }
        };
        let mut missed = Vec::new();
        for id in ids {
            let loc = match locations.get(id) {
                Some(loc) if loc.kind == kind => *loc,
                _ => continue,
            };
            match self.disk.as_deref().map(|d| self.cached_copy(d, id, &loc)) {
                Some(Some(plain)) => deliver(*id, plain),
                _ => missed.push((*id, loc)),
            }
        }
        if let (Some(disk), BlobKind::Tree) = (self.disk.as_deref(), kind) {
            // Trees come in whole tree packs: fill the cache, then serve from it.
            let packs: HashSet<PackId> = missed.iter().map(|(_, loc)| loc.pack).collect();
            for pack in &packs {
                self.fills.fill(&self.repo, &self.catalog, disk, pack);
            }
            missed.retain(|(id, loc)| match self.cached_copy(disk, id, loc) {
                Some(plain) => {
                    deliver(*id, plain);
                    false
                }
                None => true,
            });
        }
        let wanted = missed
            .into_iter()
            .map(|(id, loc)| Wanted { id, loc, tag: () })
            .collect();
        for range in coalesce(wanted, MAX_GAP, MAX_RANGE) {
            let bytes = match range.fetch(&self.repo) {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!("prefetch of pack {}: {e}", range.pack.to_hex());
                    continue;
                }
            };
            for item in &range.items {
                let stored = range.stored(&bytes, item);
                let decoded = match self.disk.as_deref() {
                    Some(disk) => self.decode_caching(&item.id, &item.loc, stored, disk),
                    None => self
                        .repo
                        .decode_blob(&item.id, &item.loc, stored)
                        .inspect_err(|e| self.note_damage(&item.id, &item.loc.pack, e)),
                };
                match decoded {
                    Ok(plain) => deliver(item.id, plain),
                    Err(e) => tracing::warn!("prefetched blob {}: {e}", item.id),
                }
            }
        }
    }
}
