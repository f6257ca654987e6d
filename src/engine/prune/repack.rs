//! Repacking: the referenced blobs of mostly dead packs are copied into new packs
//! through the packer (which writes their index segment), so that the old packs can be
//! deleted later. The old packs are condemned first, so the packer does not take their
//! copies for existing ones.

use std::sync::Arc;

use crate::catalog::{Catalog, Marks};
use crate::repo::{BlobIndex, PackId, Packer, RepoError, Repository};

use super::super::{CancelToken, Progress, Result};

/// Copies the live blobs of `packs`; returns the plaintext bytes copied.
pub(super) fn repack(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    marks: &Marks<'_>,
    packs: &[PackId],
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<u64> {
    let index: Arc<dyn BlobIndex> = catalog.clone();
    let packer = Packer::new(repo.clone(), index);
    let mut copied = 0u64;
    progress.set_total(packs.len() as u64, 0);
    for pack in packs {
        cancel.check()?;
        let live = marks.live_blobs_in(pack)?;
        // One pack in memory at a time. Each blob is checked against its id, not the
        // pack as a whole: the intact blobs of a damaged pack are copied out too.
        let bytes = repo.store().get(&pack.key()).map_err(RepoError::from)?;
        for (id, loc) in &live {
            let start = loc.offset as usize;
            let stored = bytes.get(start..start + loc.length as usize).unwrap_or(&[]);
            match repo.decode_blob(id, loc, stored) {
                Ok(plain) => {
                    packer.add(loc.kind, &plain)?;
                    copied += plain.len() as u64;
                }
                // Its pack stays: the sweep keeps condemned packs that hold the only
                // copy of a referenced blob.
                Err(e) => {
                    progress.warn(&format!(
                        "cannot copy blob {id} out of pack {}: {e}",
                        pack.to_hex()
                    ));
                    if let RepoError::CorruptBlob { detail, .. } = &e {
                        catalog.mark_damaged(id, pack, detail)?;
                    }
                }
            }
        }
        progress.file_done(std::path::Path::new(&pack.key()), bytes.len() as u64);
    }
    packer.finish()?;
    Ok(copied)
}
