//! Verify, healing: what the catalog knows to be damaged, and whether it still matters.
//! A damaged copy of a blob stays damaged (packs are never rewritten), but once a backup
//! stored the blob again readers use the intact copy: verify names that as healed, not
//! as damage. A pack problem (its bytes, its size, its header) whose damaged blobs all
//! have intact copies is healed too: nothing reads from the damaged part any more.

use std::collections::HashMap;

use crate::catalog::{Catalog, DamagedCopy};
use crate::repo::{BlobId, BlobLocation, PackId};

use super::super::Result;
use super::Verifier;

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
}

impl Verifier<'_> {
    /// Reports a referenced blob that readers find intact at `loc` although a copy of it
    /// is known to be damaged.
    pub(super) fn note_healed(&mut self, id: &BlobId, loc: &BlobLocation) {
        let Some(copies) = self.known.by_blob.get(id) else {
            return;
        };
        if copies.iter().any(|c| c.pack == loc.pack) {
            return;
        }
        for c in copies {
            self.report.healed.push(format!(
                "blob {id}: its copy in pack {} is damaged ({}); it was stored again, and points read the intact copy in pack {}",
                c.pack.to_hex(),
                c.cause,
                loc.pack.to_hex()
            ));
        }
    }

    /// Reports a fault of one pack: healed if every blob known to be damaged in it is read
    /// from an intact copy elsewhere, else a problem.
    pub(super) fn pack_problem(&mut self, pack: &PackId, text: String) -> Result<()> {
        if self.pack_healed(pack)? {
            self.report.healed.push(format!(
                "{text}; every damaged blob in it was stored again intact (a prune reclaims the pack)"
            ));
        } else {
            self.problem(text);
        }
        Ok(())
    }

    fn pack_healed(&self, pack: &PackId) -> Result<bool> {
        let Some(blobs) = self.known.by_pack.get(pack) else {
            return Ok(false);
        };
        for blob in blobs {
            match self.catalog.lookup_blob(blob)? {
                Some(loc) if loc.pack != *pack && !self.known.is_damaged(blob, &loc.pack) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}
