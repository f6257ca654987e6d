//! Moving stored blobs as they are, between repositories that store them alike: every
//! tree and data blob a point references that the target lacks is read from the
//! source's packs (coalesced range reads, several at a time), checked against its id,
//! and handed in its stored form to the target's packer.

use std::collections::HashSet;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::Catalog;
use crate::engine::pack_reads::{coalesce, Wanted, MAX_GAP, MAX_STREAMED_RANGE};
use crate::engine::{CancelToken, Result, TreeReader};
use crate::repo::{BlobId, Packer, RepoError};
use crate::sync::LockExt;

/// Blobs looked up and read together.
const BATCH: usize = 8192;

/// One raw copy's state: what it has handed to the target already (shared points'
/// subtrees are walked once).
pub(super) struct RawCopy<'a> {
    pub trees: TreeReader,
    pub to_catalog: &'a Catalog,
    pub packer: &'a Packer,
    pub cancel: &'a CancelToken,
    pub seen: Mutex<HashSet<BlobId>>,
}

impl RawCopy<'_> {
    /// Copies every blob under `root` that the target lacks.
    pub fn point(&self, root: BlobId) -> Result<()> {
        let mut pending = vec![root];
        let mut wanted = Vec::new();
        while let Some(id) = pending.pop() {
            self.cancel.check()?;
            if !self.seen.locked().insert(id) {
                continue;
            }
            wanted.push(id);
            let tree = self.trees.tree(&id)?;
            self.trees.prefetch_subtrees(&tree);
            for node in &tree.nodes {
                pending.extend(node.subtree);
                let mut seen = self.seen.locked();
                for extent in &node.content {
                    if let crate::model::Extent::Data { id, .. } = extent {
                        if seen.insert(*id) {
                            wanted.push(*id);
                        }
                    }
                }
            }
            if wanted.len() >= BATCH {
                self.blobs(std::mem::take(&mut wanted))?;
            }
        }
        self.blobs(wanted)
    }

    /// Copies those of `ids` that the target lacks.
    fn blobs(&self, ids: Vec<BlobId>) -> Result<()> {
        let present = self.to_catalog.present_for_dedup(&ids)?;
        let missing: Vec<BlobId> = ids.into_iter().filter(|id| !present.contains(id)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let source = self.trees.blobs();
        let locations = source.catalog().lookup_blobs(&missing)?;
        let mut wanted = Vec::with_capacity(missing.len());
        for id in missing {
            let loc = *locations.get(&id).ok_or(RepoError::MissingBlob(id))?;
            wanted.push(Wanted { id, loc, tag: () });
        }
        let repo = source.repo();
        coalesce(wanted, MAX_GAP, MAX_STREAMED_RANGE)
            .par_iter()
            .try_for_each(|range| {
                self.cancel.check()?;
                range.fetch_each(repo, |item, stored| {
                    repo.decode_blob(&item.id, &item.loc, stored)
                        .inspect_err(|e| source.note_damage(&item.id, &item.loc.pack, e))?;
                    self.packer
                        .add_stored(item.loc.kind, item.id, stored, item.loc.raw_len)?;
                    Ok(())
                })
            })
    }
}
