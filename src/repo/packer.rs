//! The packer: deduplicates blobs against the index, fills data and tree packs, uploads
//! them concurrently (bounded, so memory is bounded) and writes index segments. A copy
//! from a repository with the same master key hands it blobs in their stored form, or
//! whole packs.
//!
//! Memory: at most `MAX_UPLOADS` packs in flight plus one open pack per blob kind.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use super::index::IndexedPack;
use super::pack::{PackBuilder, PackEntry, PackId};
use super::{BlobId, BlobIndex, BlobKind, RepoError, Repository, Result};
use crate::sync::LockExt;

const MAX_UPLOADS: usize = 2;
/// Packs covered by one index segment while a backup runs.
const PACKS_PER_SEGMENT: usize = 32;

/// What a packer stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackerStats {
    pub new_blobs: u64,
    /// Plaintext bytes of new blobs.
    pub new_bytes: u64,
    /// Bytes of packs uploaded.
    pub stored_bytes: u64,
    pub packs: u64,
    pub index_segments: u64,
}

#[derive(Default)]
struct State {
    /// Blobs accepted by this packer and not yet recorded in the index.
    pending: HashSet<BlobId>,
    builders: [Option<PackBuilder>; 2],
    uploads_in_flight: usize,
    unindexed: Vec<IndexedPack>,
    error: Option<RepoError>,
    stats: PackerStats,
}

/// What a packer hands each new tree blob's stored form to (a local cache of trees).
pub type TreeSink = Arc<dyn Fn(&BlobId, &[u8]) + Send + Sync>;

struct Shared {
    repo: Repository,
    index: Arc<dyn BlobIndex>,
    tree_sink: Option<TreeSink>,
    state: Mutex<State>,
    changed: Condvar,
}

/// Shared by all workers of one backup; `finish` must be called to flush.
pub struct Packer {
    shared: Arc<Shared>,
}

impl Packer {
    pub fn new(repo: Repository, index: Arc<dyn BlobIndex>) -> Packer {
        Packer::with_tree_sink(repo, index, None)
    }

    /// A packer that also hands the stored form of every new tree blob to `tree_sink`.
    pub fn with_tree_sink(
        repo: Repository,
        index: Arc<dyn BlobIndex>,
        tree_sink: Option<TreeSink>,
    ) -> Packer {
        Packer {
            shared: Arc::new(Shared {
                repo,
                index,
                tree_sink,
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.locked()
    }

    /// Stores a blob unless the repository has it. Returns its id and whether it was new.
    pub fn add(&self, kind: BlobKind, plaintext: &[u8]) -> Result<(BlobId, bool)> {
        let repo = &self.shared.repo;
        let id = repo.blob_id(plaintext);
        {
            let mut st = self.lock();
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            if st.pending.contains(&id) {
                return Ok((id, false));
            }
            if self.shared.index.lookup(&id)?.is_some() {
                return Ok((id, false));
            }
            st.pending.insert(id);
        }
        // Compress and seal outside the lock: this is where the CPU goes.
        let stored = super::blob::encode(repo.key(), plaintext, repo.config().zstd_level);
        self.put(kind, id, &stored, plaintext.len() as u32)?;
        Ok((id, true))
    }

    /// Stores a blob in its stored form as another repository with the same master key
    /// holds it (no decompression, no compression), unless this repository has it;
    /// whether it was new. The caller checked it against `id`.
    pub fn add_stored(
        &self,
        kind: BlobKind,
        id: BlobId,
        stored: &[u8],
        raw_len: u32,
    ) -> Result<bool> {
        {
            let mut st = self.lock();
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            if st.pending.contains(&id) || self.shared.index.lookup(&id)?.is_some() {
                return Ok(false);
            }
            st.pending.insert(id);
        }
        self.put(kind, id, stored, raw_len)?;
        Ok(true)
    }

    /// Puts a new blob's stored form into the open pack of its kind, uploading it once full.
    fn put(&self, kind: BlobKind, id: BlobId, stored: &[u8], raw_len: u32) -> Result<()> {
        let repo = &self.shared.repo;
        if let (BlobKind::Tree, Some(sink)) = (kind, &self.shared.tree_sink) {
            sink(&id, stored);
        }
        let full = {
            let mut st = self.lock();
            st.stats.new_blobs += 1;
            st.stats.new_bytes += raw_len as u64;
            let slot = &mut st.builders[kind as usize];
            // Room for a full pack, the largest chunk that may cross the limit, and the header.
            let capacity = repo.config().pack_size as usize
                + repo.config().chunker.max_size as usize
                + (1 << 20);
            let builder = slot.get_or_insert_with(|| PackBuilder::with_capacity(capacity));
            builder.add(kind, id, stored, raw_len);
            if builder.len() >= repo.config().pack_size as usize {
                slot.take()
            } else {
                None
            }
        };
        if let Some(builder) = full {
            self.upload(builder)?;
        }
        Ok(())
    }

    /// Seals a pack and uploads it in the background, waiting while too many are in flight.
    fn upload(&self, builder: PackBuilder) -> Result<()> {
        self.wait_for_slot()?;
        let (bytes, id, entries) = builder.finish(self.shared.repo.key());
        self.spawn_upload(bytes.into(), id, entries)
    }

    /// Uploads a whole pack as another repository with the same master key holds it
    /// (its bytes checked against `id` by the caller): none of its blobs may be in this
    /// repository yet.
    pub fn add_pack(&self, bytes: Bytes, id: PackId, entries: Vec<PackEntry>) -> Result<()> {
        {
            let mut st = self.lock();
            st.stats.new_blobs += entries.len() as u64;
            st.stats.new_bytes += entries.iter().map(|e| e.raw_len as u64).sum::<u64>();
            st.pending.extend(entries.iter().map(|e| e.id));
        }
        self.wait_for_slot()?;
        self.spawn_upload(bytes, id, entries)
    }

    /// Waits while too many uploads are in flight, then takes a slot.
    fn wait_for_slot(&self) -> Result<()> {
        {
            let mut st = self.lock();
            while st.uploads_in_flight >= MAX_UPLOADS && st.error.is_none() {
                st = self
                    .shared
                    .changed
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            st.uploads_in_flight += 1;
        }
        Ok(())
    }

    /// Uploads a sealed pack in the background (its slot taken), then records it.
    fn spawn_upload(&self, bytes: Bytes, id: PackId, entries: Vec<PackEntry>) -> Result<()> {
        // Parity is computed here, on the caller's worker, not on the upload runtime.
        let parity = (self.shared.repo.config().ecc)
            .map(|ecc| super::parity::encode(&bytes, &id, ecc.percent));
        let shared = self.shared.clone();
        let len = bytes.len() as u64;
        self.shared.repo.runtime().spawn(async move {
            let result = async {
                match shared.repo.store().put_new_async(&id.key(), bytes).await {
                    Ok(()) | Err(crate::store::StoreError::AlreadyExists(_)) => {}
                    Err(e) => return Err(RepoError::from(e)),
                }
                if let Some(parity) = parity {
                    super::ecc::put_parity(shared.repo.store(), &id, parity).await?;
                }
                let pack = IndexedPack {
                    id,
                    length: len,
                    entries,
                };
                shared.index.record_pack(&pack)?;
                Ok(pack)
            }
            .await;
            let mut st = shared.state.locked();
            st.uploads_in_flight -= 1;
            match result {
                Ok(pack) => {
                    for e in &pack.entries {
                        st.pending.remove(&e.id);
                    }
                    st.stats.packs += 1;
                    st.stats.stored_bytes += len;
                    st.unindexed.push(pack);
                }
                Err(e) => {
                    tracing::error!("pack upload failed: {e}");
                    st.error.get_or_insert(e);
                }
            }
            shared.changed.notify_all();
        });
        self.write_index_if_due(false)
    }

    fn write_index_if_due(&self, all: bool) -> Result<()> {
        let batch = {
            let mut st = self.lock();
            if st.unindexed.is_empty() || (!all && st.unindexed.len() < PACKS_PER_SEGMENT) {
                return Ok(());
            }
            std::mem::take(&mut st.unindexed)
        };
        let name = self.shared.repo.write_index(&batch)?;
        self.shared.index.record_segment(&name, &batch)?;
        self.lock().stats.index_segments += 1;
        Ok(())
    }

    /// Uploads the partial packs, waits for every upload, writes the last index segment.
    pub fn finish(self) -> Result<PackerStats> {
        self.flush()?;
        let st = self.lock();
        Ok(st.stats)
    }

    /// Like `finish` but keeps the packer usable.
    pub fn flush(&self) -> Result<()> {
        let builders: Vec<PackBuilder> = {
            let mut st = self.lock();
            st.builders.iter_mut().filter_map(Option::take).collect()
        };
        for b in builders {
            if !b.is_empty() {
                self.upload(b)?;
            }
        }
        {
            let mut st = self.lock();
            while st.uploads_in_flight > 0 {
                st = self
                    .shared
                    .changed
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if let Some(e) = st.error.take() {
                return Err(e);
            }
        }
        self.write_index_if_due(true)
    }

    pub fn stats(&self) -> PackerStats {
        self.lock().stats
    }
}
