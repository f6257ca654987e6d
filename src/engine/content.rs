//! Random-access reads of file content from a point: maps an offset to extents, keeps a
//! bounded cache of decoded chunks, and prefetches the next chunks of sequential readers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::model::Extent;
use crate::repo::{BlobId, BlobKind, RepoError};

use super::{EngineError, Result, TreeReader};
use crate::sync::LockExt;

/// Extents of one file with their start offsets.
#[derive(Debug, Clone)]
pub struct FileLayout {
    pub extents: Vec<Extent>,
    /// `starts[i]` is the file offset of `extents[i]`; one more entry holds the size.
    pub starts: Vec<u64>,
}

impl FileLayout {
    pub fn new(extents: Vec<Extent>) -> FileLayout {
        let mut starts = Vec::with_capacity(extents.len() + 1);
        let mut pos = 0;
        for e in &extents {
            starts.push(pos);
            pos += e.len();
        }
        starts.push(pos);
        FileLayout { extents, starts }
    }

    pub fn size(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// Index of the extent holding `offset`.
    fn extent_at(&self, offset: u64) -> Option<usize> {
        if offset >= self.size() {
            return None;
        }
        Some(self.starts.partition_point(|s| *s <= offset) - 1)
    }
}

#[derive(Default)]
struct Cache {
    blobs: HashMap<BlobId, Arc<Vec<u8>>>,
    order: VecDeque<BlobId>,
    bytes: usize,
    loading: HashMap<BlobId, ()>,
}

/// Shared reader with a byte-bounded chunk cache.
#[derive(Clone)]
pub struct ContentReader {
    trees: TreeReader,
    cache: Arc<(Mutex<Cache>, Condvar)>,
    capacity: usize,
    prefetching: Arc<AtomicUsize>,
}

/// Where a read takes its chunks from: `None` for a chunk it does not have.
type ChunkSource<'a> = dyn FnMut(&BlobId) -> Result<Option<Arc<Vec<u8>>>> + 'a;

/// How many chunks ahead a sequential reader prefetches.
const PREFETCH: usize = 2;
/// Background downloads in flight at most, whoever asked for them.
const MAX_PREFETCHES: usize = 8;

impl ContentReader {
    pub fn new(trees: TreeReader, capacity_bytes: usize) -> ContentReader {
        ContentReader {
            trees,
            cache: Arc::new((Mutex::new(Cache::default()), Condvar::new())),
            capacity: capacity_bytes,
            prefetching: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn trees(&self) -> &TreeReader {
        &self.trees
    }

    /// A chunk, from the cache or the repository; concurrent callers for one chunk wait
    /// for a single download.
    pub fn chunk(&self, id: &BlobId) -> Result<Arc<Vec<u8>>> {
        let (lock, cv) = &*self.cache;
        {
            let mut c = lock.locked();
            loop {
                if let Some(b) = c.blobs.get(id) {
                    return Ok(b.clone());
                }
                if !c.loading.contains_key(id) {
                    c.loading.insert(*id, ());
                    break;
                }
                c = cv.wait(c).unwrap_or_else(|p| p.into_inner());
            }
        }
        let result = self
            .trees
            .blobs()
            .read_blob(id, BlobKind::Data)
            .map(Arc::new);
        let mut c = lock.locked();
        c.loading.remove(id);
        if let Ok(data) = &result {
            self.insert(&mut c, *id, data.clone());
        }
        cv.notify_all();
        result
    }

    fn insert(&self, c: &mut Cache, id: BlobId, data: Arc<Vec<u8>>) {
        if c.blobs.contains_key(&id) {
            return;
        }
        c.bytes += data.len();
        c.blobs.insert(id, data);
        c.order.push_back(id);
        while c.bytes > self.capacity && c.order.len() > 1 {
            if let Some(old) = c.order.pop_front() {
                if let Some(b) = c.blobs.remove(&old) {
                    c.bytes -= b.len();
                }
            }
        }
    }

    /// Reads up to `size` bytes at `offset`. With `sequential`, starts downloading the
    /// next chunks in the background.
    pub fn read(
        &self,
        layout: &FileLayout,
        offset: u64,
        size: usize,
        sequential: bool,
    ) -> Result<Vec<u8>> {
        let Some((out, next)) =
            self.read_with(layout, offset, size, &mut |id| self.chunk(id).map(Some))?
        else {
            return Ok(Vec::new());
        };
        if sequential {
            self.prefetch(layout, next);
        }
        Ok(out)
    }

    /// Like [`read`](Self::read), but only from chunks already in memory: `None` when
    /// one is missing (the caller then reads from a task). Never blocks on the store, so
    /// a sequential reader served from memory still keeps its prefetch ahead.
    pub fn read_cached(
        &self,
        layout: &FileLayout,
        offset: u64,
        size: usize,
        sequential: bool,
    ) -> Option<Vec<u8>> {
        let cached = |id: &BlobId| {
            let c = self.cache.0.locked();
            Ok(c.blobs.get(id).cloned())
        };
        let (out, next) = self
            .read_with(layout, offset, size, &mut { cached })
            .ok()
            .flatten()?;
        if sequential {
            self.prefetch(layout, next);
        }
        Some(out)
    }

    /// Assembles a read from chunks `get` provides, with the index of the extent after it;
    /// `None` as soon as a chunk is missing.
    fn read_with(
        &self,
        layout: &FileLayout,
        offset: u64,
        size: usize,
        get: &mut ChunkSource<'_>,
    ) -> Result<Option<(Vec<u8>, usize)>> {
        let end = (offset + size as u64).min(layout.size());
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let Some(mut i) = layout.extent_at(offset) else {
            return Ok(Some((out, layout.extents.len())));
        };
        let mut pos = offset;
        while pos < end {
            let start = layout.starts[i];
            let stop = layout.starts[i + 1].min(end);
            match &layout.extents[i] {
                Extent::Hole { .. } => out.resize(out.len() + (stop - pos) as usize, 0),
                Extent::Data { id, len } => {
                    let Some(data) = get(id)? else {
                        return Ok(None);
                    };
                    // The same check as a restore's: a chunk that is not as long as the
                    // file says is damage (an error), never a short read.
                    if data.len() as u64 != u64::from(*len) {
                        return Err(extent_mismatch(id, data.len(), *len));
                    }
                    let from = (pos - start) as usize;
                    let to = (stop - start) as usize;
                    out.extend_from_slice(&data[from..to]);
                }
            }
            pos = stop;
            i += 1;
        }
        Ok(Some((out, i)))
    }

    fn prefetch(&self, layout: &FileLayout, from: usize) {
        let ids: Vec<BlobId> = layout.extents[from.min(layout.extents.len())..]
            .iter()
            .filter_map(|e| match e {
                Extent::Data { id, .. } => Some(*id),
                Extent::Hole { .. } => None,
            })
            .take(PREFETCH)
            .collect();
        self.prefetch_blobs(ids);
    }

    /// Fetches chunks into the cache in the background (those not cached or loading),
    /// nearby ones of a pack in one range request, with at most [`MAX_PREFETCHES`]
    /// batches in flight so memory stays bounded.
    pub fn prefetch_blobs(&self, ids: Vec<BlobId>) {
        let claimed: Vec<BlobId> = {
            let mut c = self.cache.0.locked();
            ids.into_iter()
                .filter(|id| !c.blobs.contains_key(id) && c.loading.insert(*id, ()).is_none())
                .collect()
        };
        if claimed.is_empty() {
            return;
        }
        if self.prefetching.fetch_add(1, Ordering::SeqCst) >= MAX_PREFETCHES {
            self.prefetching.fetch_sub(1, Ordering::SeqCst);
            self.unclaim(&claimed);
            return;
        }
        let me = self.clone();
        self.trees.repo().runtime().spawn_blocking(move || {
            me.trees
                .blobs()
                .read_blobs(&claimed, BlobKind::Data, |id, data| {
                    let (lock, cv) = &*me.cache;
                    let mut c = lock.locked();
                    c.loading.remove(&id);
                    me.insert(&mut c, id, Arc::new(data));
                    cv.notify_all();
                });
            me.unclaim(&claimed);
            me.prefetching.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Gives up claims on chunks that were not delivered (waiters then read them).
    fn unclaim(&self, ids: &[BlobId]) {
        let (lock, cv) = &*self.cache;
        let mut c = lock.locked();
        for id in ids {
            c.loading.remove(id);
        }
        cv.notify_all();
    }
}

/// The error of a file extent whose length differs from its chunk's.
pub(crate) fn extent_mismatch(id: &BlobId, holds: usize, len: u32) -> EngineError {
    EngineError::Repo(RepoError::CorruptBlob {
        id: *id,
        detail: format!("holds {holds} bytes, its file says {len}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_finds_extents() {
        let l = FileLayout::new(vec![
            Extent::Hole { len: 10 },
            Extent::Data {
                id: BlobId([0; 32]),
                len: 5,
            },
            Extent::Hole { len: 1 },
        ]);
        assert_eq!(l.size(), 16);
        assert_eq!(l.extent_at(0), Some(0));
        assert_eq!(l.extent_at(9), Some(0));
        assert_eq!(l.extent_at(10), Some(1));
        assert_eq!(l.extent_at(15), Some(2));
        assert_eq!(l.extent_at(16), None);
    }

    #[test]
    fn a_chunk_shorter_or_longer_than_its_extent_is_an_error_not_a_short_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&crate::store::Location::Memory).unwrap();
        let repo =
            crate::repo::Repository::init(store, &crate::repo::InitOptions::unencrypted()).unwrap();
        let catalog = std::sync::Arc::new(
            crate::catalog::Catalog::open(&dir.path().join("c.sqlite")).unwrap(),
        );
        let reader = ContentReader::new(TreeReader::new(repo, catalog), 1 << 20);
        let id = BlobId([3; 32]);
        let chunk = Arc::new(b"thirteen byte".to_vec());
        for len in [4u32, 13, 20] {
            let layout = FileLayout::new(vec![Extent::Data { id, len }]);
            let read = reader.read_with(&layout, 0, 64, &mut |_| Ok(Some(chunk.clone())));
            match read {
                Ok(Some((data, _))) => assert_eq!((len, data.as_slice()), (13, &chunk[..])),
                Err(EngineError::Repo(RepoError::CorruptBlob { detail, .. })) => {
                    assert_ne!(len, 13);
                    assert!(detail.contains(&format!("its file says {len}")), "{detail}");
                }
                other => panic!("extent of {len}: {:?}", other.map(|_| ())),
            }
        }
    }
}
