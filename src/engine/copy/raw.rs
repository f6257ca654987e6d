//! Moving stored blobs as they are, between repositories that store them alike: every
//! tree and data blob a point references that the target lacks is read from the
//! source's packs and handed in its stored form to the target's packer. A pack whose
//! blobs are all wanted is downloaded whole, checked against its id and uploaded as it
//! is (the same pack id in both); from the other packs each wanted blob is read
//! (coalesced range reads, several at a time) and checked against its id.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::Catalog;
use crate::engine::pack_reads::{coalesce, Wanted, MAX_GAP, MAX_STREAMED_RANGE};
use crate::engine::{CancelToken, EngineError, Result, TreeReader};
use crate::repo::{BlobId, PackId, Packer, RepoError};
use crate::sync::LockExt;

/// Blobs looked up and read together (a whole point of most trees: so that most packs
/// are wanted whole).
const BATCH: usize = 256 * 1024;

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
        let mut by_pack: HashMap<PackId, Vec<Wanted<()>>> = HashMap::new();
        for id in missing {
            let loc = *locations.get(&id).ok_or(RepoError::MissingBlob(id))?;
            by_pack
                .entry(loc.pack)
                .or_default()
                .push(Wanted { id, loc, tag: () });
        }
        // A pack all of whose blobs are wanted moves whole; the others blob by blob.
        let mut whole = Vec::new();
        let mut wanted = Vec::new();
        for (pack, blobs) in by_pack {
            if source.catalog().blobs_in_pack(&pack)?.len() == blobs.len() {
                whole.push(pack);
            } else {
                wanted.extend(blobs);
            }
        }
        whole.par_iter().try_for_each(|pack| {
            self.cancel.check()?;
            let (bytes, entries) = source.repo().read_pack(pack)?;
            Ok::<_, EngineError>(self.packer.add_pack(bytes, *pack, entries)?)
        })?;
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
