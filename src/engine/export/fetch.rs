//! Read-ahead for an export: a thread walks the point and gathers the entries with the
//! chunks of their files in archive order into batches (about [`BATCH_BYTES`] of
//! content each). A batch's chunks are read in coalesced range requests
//! ([`pack_reads`](crate::engine::pack_reads)), fetched and decompressed on a pool of
//! threads; up to [`AHEAD`] batches are read at once, and the writer takes them in order:
//! memory stays at a few batches whatever the point's size. A chunk the batch could not read is read again alone
//! through the [`BlobReader`](crate::engine::BlobReader), whose error (a damaged or
//! missing chunk, recorded as such) is what the writer then fails with.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use rayon::prelude::*;

use super::walk::{Entry, Walker};
use crate::engine::pack_reads::{coalesce, Wanted, MAX_GAP, MAX_RANGE};
use crate::engine::{EngineError, Result, TreeReader};
use crate::model::Extent;
use crate::repo::{BlobId, BlobKind};

/// Content bytes a batch gathers before it is read.
const BATCH_BYTES: u64 = 16 << 20;
/// Entries a batch holds at most (small files: their headers are the work).
const BATCH_ENTRIES: usize = 4096;
/// Batches read ahead of the writer (besides the one it writes and the one gathered).
const AHEAD: usize = 4;
/// Threads reading a batch's ranges (they mostly wait on the store).
const READERS: usize = 8;

/// What the writer gets, in archive order: an entry, then one chunk per data extent of
/// its content.
pub(super) enum Item {
    Entry(Entry),
    Chunk(Result<Arc<Vec<u8>>>),
}

/// A batch being read: it comes through its own channel once read.
type Pending = Receiver<Result<Vec<Item>>>;

/// The items of an export as they come from the read-ahead thread.
pub(super) struct Items {
    rx: Receiver<Pending>,
    batch: VecDeque<Item>,
}

impl Items {
    /// Starts the read-ahead thread over `walker`'s entries.
    pub fn start(trees: TreeReader, walker: Walker) -> Result<Items> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(READERS)
            .thread_name(|i| format!("cairn-export-{i}"))
            .build()
            .map_err(EngineError::Threads)?;
        let (tx, rx) = sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("cairn-export".into())
            .spawn(move || read_ahead(&trees, walker, &pool, &tx))
            .map_err(|e| EngineError::io("starting", "the export's read-ahead thread", e))?;
        Ok(Items {
            rx,
            batch: VecDeque::new(),
        })
    }

    /// The next item; `None` at the end of the walk.
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        loop {
            if let Some(item) = self.batch.pop_front() {
                return Ok(Some(item));
            }
            let Ok(pending) = self.rx.recv() else {
                return Ok(None);
            };
            match pending.recv() {
                Ok(batch) => self.batch = batch?.into(),
                // Its reader died: the walk cannot go on without it.
                Err(_) => return Err(EngineError::Cancelled),
            }
        }
    }
}

/// Walks, batches and reads until the walk ends, it fails, or the writer is gone.
fn read_ahead(
    trees: &TreeReader,
    mut walker: Walker,
    pool: &rayon::ThreadPool,
    tx: &SyncSender<Pending>,
) {
    let fail = |e: EngineError| {
        let (one, pending) = sync_channel(1);
        let _ = one.send(Err(e));
        let _ = tx.send(pending);
    };
    // The chunks of the current file not batched yet: a large file spans batches.
    let mut rest = Vec::new().into_iter();
    loop {
        let mut items = Vec::new();
        let mut wanted: Vec<(usize, BlobId)> = Vec::new();
        let (mut bytes, mut entries) = (0u64, 0usize);
        let mut ended = false;
        loop {
            while bytes < BATCH_BYTES {
                match rest.next() {
                    Some(Extent::Data { id, len }) => {
                        wanted.push((items.len(), id));
                        items.push(Item::Chunk(Err(EngineError::Cancelled)));
                        bytes += u64::from(len);
                    }
                    Some(Extent::Hole { .. }) => {}
                    None => break,
                }
            }
            if bytes >= BATCH_BYTES || entries >= BATCH_ENTRIES {
                break;
            }
            let entry = match walker.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => {
                    ended = true;
                    break;
                }
                Err(e) => return fail(e),
            };
            entries += 1;
            if entry.has_content() {
                rest = entry.node.content.clone().into_iter();
            }
            items.push(Item::Entry(entry));
        }
        let (one, pending) = sync_channel(1);
        let trees = trees.clone();
        pool.spawn(move || {
            read_batch(&trees, &mut items, wanted);
            let _ = one.send(Ok(items));
        });
        if tx.send(pending).is_err() || ended {
            return;
        }
    }
}

/// Fills the chunk items at the `wanted` positions of `items` (on the pool it runs on).
fn read_batch(trees: &TreeReader, items: &mut [Item], wanted: Vec<(usize, BlobId)>) {
    let blobs = trees.blobs();
    let ids: Vec<BlobId> = wanted.iter().map(|(_, id)| *id).collect();
    let locations = blobs.catalog().lookup_blobs(&ids).unwrap_or_default();
    let located = wanted
        .iter()
        .filter_map(|(at, id)| {
            let loc = locations.get(id).filter(|l| l.kind == BlobKind::Data)?;
            Some(Wanted {
                id: *id,
                loc: *loc,
                tag: *at,
            })
        })
        .collect();
    let ranges = coalesce(located, MAX_GAP, MAX_RANGE);
    let read: Vec<(usize, Vec<u8>)> = ranges
        .par_iter()
        .flat_map_iter(|range| {
            let bytes = range.fetch(blobs.repo()).ok();
            range
                .items
                .iter()
                .filter_map(|item| {
                    let stored = range.stored(bytes.as_ref()?, item);
                    let plain = blobs.repo().decode_blob(&item.id, &item.loc, stored).ok()?;
                    Some((item.tag, plain))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (at, plain) in read {
        items[at] = Item::Chunk(Ok(Arc::new(plain)));
    }
    // What the batch could not read: alone, for its own error (or a passing failure).
    for (at, id) in wanted {
        if let Item::Chunk(Err(_)) = &items[at] {
            items[at] = Item::Chunk(blobs.read_blob(&id, BlobKind::Data).map(Arc::new));
        }
    }
}
