//! Verify, healing: what the catalog knows to be damaged, and whether it still matters.
//! A damaged copy of a blob stays damaged (packs are never rewritten), but once a backup
//! stored the blob again readers use the intact copy: verify names that as healed, not
//! as damage. A pack problem (its bytes, its size, its header) whose damaged blobs all
//! have intact copies is healed too: nothing reads from the damaged part any more.

use std::collections::HashMap;

use crate::catalog::{Catalog, DamagedCopy};
use crate::repo::{BlobId, BlobLocation, PackId};

use super::super::Result;

/// The damaged copies the catalog knew when the verify started.
pub(super) struct Known {
    by_blob: HashMap<BlobId, Vec<DamagedCopy>>,
    by_pack: HashMap<PackId, Vec<BlobId>>,
}

impl Known {
    pub(super) fn load(catalog: &Catalog) -> Result<Known> {
        let by_blob = catalog.damaged_copies()?;
        let mut by_pack: HashMap<PackId, Vec<BlobId>> = HashMap::new();
        for copy in by_blob.values().flatten() {
            by_pack.entry(copy.pack).or_default().push(copy.blob);
        }
        Ok(Known { by_blob, by_pack })
    }

    pub(super) fn is_damaged(&self, blob: &BlobId, pack: &PackId) -> bool {
        self.by_blob
            .get(blob)
            .is_some_and(|copies| copies.iter().any(|c| c.pack == *pack))
    }

    /// Notes for a referenced blob that readers find intact at `loc` although a copy of it
    /// is known to be damaged: one per damaged copy.
    pub(super) fn healed_notes(&self, id: &BlobId, loc: &BlobLocation) -> Vec<String> {
        let Some(copies) = self.by_blob.get(id) else {
            return Vec::new();
        };
        if copies.iter().any(|c| c.pack == loc.pack) {
            return Vec::new();
        }
        copies
            .iter()
            .map(|c| {
                format!(
                    "blob {id}: its copy in pack {} is damaged ({}); it was stored again, and points read the intact copy in pack {}",
                    c.pack.to_hex(),
                    c.cause,
                    loc.pack.to_hex()
                )
            })
            .collect()
    }

    /// Whether every blob known to be damaged in `pack` is read from an intact copy
    /// elsewhere.
    pub(super) fn pack_healed(&self, catalog: &Catalog, pack: &PackId) -> Result<bool> {
        let Some(blobs) = self.by_pack.get(pack) else {
            return Ok(false);
        };
        for blob in blobs {
            match catalog.lookup_blob(blob)? {
                Some(loc) if loc.pack != *pack && !self.is_damaged(blob, &loc.pack) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}
