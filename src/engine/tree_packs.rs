//! Whole tree packs into the on-disk cache: a tree missing from the cache brings every
//! tree of its pack with one range request (the trees of a point sit together in tree
//! packs), so a machine with an empty cache reads a point's trees in a few large requests
//! instead of one per directory. Readers racing for the same pack wait for one download.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::disk_cache::DiskCache;
use crate::catalog::Catalog;
use crate::repo::{BlobKind, PackId, RepoError, Repository};
use crate::sync::LockExt;

/// Tree packs larger than this, or than a quarter of the cache, are read blob by blob
/// instead (a pack is 16 MiB by default).
const MAX_WHOLE: u64 = 64 << 20;

/// The packs being downloaded whole, each behind its own lock.
#[derive(Default)]
pub(super) struct PackFills {
    busy: Mutex<HashMap<PackId, Arc<Mutex<()>>>>,
}

impl PackFills {
    /// Puts every tree the index locates in `pack` into `disk`, with one range request
    /// from its first missing tree to its last. Nothing happens for a pack that holds data
    /// blobs or whose range is larger than `MAX_WHOLE` or a quarter of the cache, or when
    /// another reader just filled it;
    /// failures are logged (the caller then reads its blob alone).
    pub(super) fn fill(
        &self,
        repo: &Repository,
        catalog: &Catalog,
        disk: &DiskCache,
        pack: &PackId,
    ) {
        let slot = self.busy.locked().entry(*pack).or_default().clone();
        let _guard = slot.locked();
        if let Err(e) = fill_locked(repo, catalog, disk, pack) {
            tracing::debug!("reading tree pack {} whole: {e}", pack.to_hex());
        }
        self.busy.locked().remove(pack);
    }
}

fn fill_locked(
    repo: &Repository,
    catalog: &Catalog,
    disk: &DiskCache,
    pack: &PackId,
) -> super::Result<()> {
    let blobs = catalog.blobs_in_pack(pack)?;
    if blobs.iter().any(|(_, loc)| loc.kind != BlobKind::Tree) {
        return Ok(());
    }
    let missing: Vec<_> = blobs
        .iter()
        .filter(|(id, loc)| disk.keeps(loc.length as u64) && !disk.contains(id))
        .collect();
    let (Some((_, first)), Some((_, last))) = (missing.first(), missing.last()) else {
        return Ok(()); // another reader filled it meanwhile
    };
    let start = first.offset as u64;
    let end = last.offset as u64 + last.length as u64;
    // More than the cache keeps would only push out what it brought.
    if end - start > MAX_WHOLE || !disk.keeps(end - start) {
        return Ok(());
    }
    let bytes = repo
        .store()
        .get_range(&pack.key(), start..end)
        .map_err(RepoError::from)?;
    for (id, loc) in missing {
        let from = (loc.offset as u64 - start) as usize;
        if let Some(stored) = bytes.get(from..from + loc.length as usize) {
            // Checked when read, like every cache entry.
            disk.put(id, stored);
        }
    }
    Ok(())
}
