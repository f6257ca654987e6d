//! Repair, writing what replaces: index segments for intact packs no segment lists
//! (from their headers), and the readable blobs of damaged packs copied into new packs
//! through the packer (which writes their index segment). Everything written is made
//! durable before repair deletes anything.

use std::sync::{Arc, Mutex};

use crate::catalog::Catalog;
use crate::repo::{
    BlobId, BlobIndex, BlobLocation, IndexedPack, PackId, Packer, RepoError, Repository,
};
use crate::sync::LockExt;

use super::super::{CancelToken, Progress, Result};
use super::survey::{location, DamagedPack};

/// Packs one rebuilt index segment lists at most.
pub(super) const PACKS_PER_SEGMENT: usize = 256;

/// Writes index segments for `packs` (durably) and records them in the catalog; returns
/// how many were written.
pub(super) fn rebuild_segments(
    repo: &Repository,
    catalog: &Catalog,
    packs: &[IndexedPack],
) -> Result<u64> {
    let mut written = 0;
    for batch in packs.chunks(PACKS_PER_SEGMENT) {
        let name = repo.write_index(batch)?;
        repo.store().sync(&name).map_err(RepoError::from)?;
        catalog.record_segment(&name, batch)?;
        written += 1;
    }
    Ok(written)
}

/// What a salvage moved.
#[derive(Debug, Default)]
pub(super) struct Moved {
    /// Blobs copied into new packs.
    pub blobs: u64,
    /// Their plaintext bytes (readable blobs that already had an intact copy elsewhere
    /// are not copied, nor counted).
    pub bytes: u64,
}

/// What [`salvage`] would move (a dry run): the readable blobs of `damaged` that have no
/// intact copy elsewhere, each counted once.
pub(super) fn would_move(catalog: &Arc<Catalog>, damaged: &[DamagedPack]) -> Result<Moved> {
    let index = SalvageIndex::new(catalog, damaged);
    let mut moved = Moved::default();
    let mut seen = std::collections::HashSet::new();
    for e in damaged.iter().flat_map(|p| &p.readable) {
        if !seen.insert(e.id) {
            continue;
        }
        if index.lookup(&e.id)?.is_none() {
            moved.blobs += 1;
            moved.bytes += u64::from(e.raw_len);
        }
    }
    Ok(moved)
}

/// Copies the readable blobs of `damaged` into new packs, and makes those packs and their
/// index segment durable.
pub(super) fn salvage(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    damaged: &[DamagedPack],
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Moved> {
    let index = Arc::new(SalvageIndex::new(catalog, damaged));
    let packer = Packer::new(repo.clone(), index.clone());
    let mut moved = Moved::default();
    for pack in damaged.iter().filter(|p| !p.readable.is_empty()) {
        cancel.check()?;
        // One damaged pack in memory at a time.
        let bytes = repo.store().get(&pack.id.key()).map_err(RepoError::from)?;
        for e in &pack.readable {
            let start = e.offset as usize;
            let stored = bytes
                .get(start..start.saturating_add(e.length as usize))
                .unwrap_or(&[]);
            let plain = repo.decode_blob(&e.id, &location(pack.id, e), stored)?;
            if packer.add(e.kind, &plain)?.1 {
                moved.blobs += 1;
                moved.bytes += plain.len() as u64;
            }
        }
        progress.file_done(std::path::Path::new(&pack.id.key()), bytes.len() as u64);
    }
    packer.finish()?;
    for key in index.written.locked().iter() {
        repo.store().sync(key).map_err(RepoError::from)?;
    }
    Ok(moved)
}

/// The catalog as a packer's index, except that no copy in a damaged pack counts: those
/// are what is being replaced. It remembers the keys of what the packer wrote.
struct SalvageIndex {
    catalog: Arc<Catalog>,
    damaged: std::collections::HashSet<PackId>,
    written: Mutex<Vec<String>>,
}

impl SalvageIndex {
    fn new(catalog: &Arc<Catalog>, damaged: &[DamagedPack]) -> SalvageIndex {
        SalvageIndex {
            catalog: catalog.clone(),
            damaged: damaged.iter().map(|p| p.id).collect(),
            written: Mutex::new(Vec::new()),
        }
    }
}

impl BlobIndex for SalvageIndex {
    fn lookup(&self, id: &BlobId) -> crate::repo::Result<Option<BlobLocation>> {
        Ok(self
            .catalog
            .lookup(id)?
            .filter(|loc| !self.damaged.contains(&loc.pack)))
    }

    fn record_pack(&self, pack: &IndexedPack) -> crate::repo::Result<()> {
        self.written.locked().push(pack.id.key());
        self.catalog.record_pack(pack)
    }

    fn record_segment(&self, name: &str, packs: &[IndexedPack]) -> crate::repo::Result<()> {
        self.written.locked().push(name.to_string());
        self.catalog.record_segment(name, packs)
    }
}
