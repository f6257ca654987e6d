//! A bounded on-disk cache of blobs in their stored form (compressed and, in encrypted
//! repositories, still sealed: nothing readable lands on local disk). Every hit is checked
//! against its id when decoded, so a damaged cache file is a miss, never wrong data.
//! It lives in `blob-cache/` beside the catalog (one file per blob, named by its id) and
//! holds the trees this machine wrote or read, and what a mount read; deleting it only
//! costs speed. Its bound is `CAIRN_BLOB_CACHE_MB` (MiB, default 1024; 0 turns it off).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::catalog::Catalog;
use crate::repo::{BlobId, Repository};

/// The variable that bounds the cache, in MiB (`0`: no cache).
pub const SIZE_VAR: &str = "CAIRN_BLOB_CACHE_MB";
const DEFAULT_MIB: u64 = 1024;

/// The bound `CAIRN_BLOB_CACHE_MB` sets, in bytes; `None` when it is not set (or unreadable).
pub fn configured_capacity() -> Option<u64> {
    let text = std::env::var(SIZE_VAR).ok()?;
    match text.trim().parse::<u64>() {
        Ok(mib) => Some(mib.saturating_mul(1 << 20)),
        Err(_) => {
            tracing::warn!("{SIZE_VAR}={text:?} is not a number of MiB: using the default");
            None
        }
    }
}

/// Where the cache of `catalog`'s repository lives: `blob-cache/` beside the catalog.
pub fn dir_of(catalog: &Catalog) -> PathBuf {
    catalog
        .path()
        .parent()
        .map(|d| d.join("blob-cache"))
        .unwrap_or_else(|| std::env::temp_dir().join("cairn-blob-cache"))
}

pub struct DiskCache {
    dir: PathBuf,
    capacity: u64,
    used: AtomicU64,
    evicting: Mutex<()>,
}

impl DiskCache {
    /// Opens (creating) a cache directory bounded to `capacity` bytes.
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<DiskCache> {
        fs::create_dir_all(dir)?;
        let used = fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            capacity,
            used: AtomicU64::new(used),
            evicting: Mutex::new(()),
        })
    }

    /// The cache of a remote repository, for backups and restores: bounded by
    /// `CAIRN_BLOB_CACHE_MB` (default 1 GiB). `None` for a local store (reading it is as
    /// fast as reading a cache), when the bound is 0, or when the directory cannot be made.
    pub fn for_repo(repo: &Repository, catalog: &Catalog) -> Option<DiskCache> {
        let capacity = configured_capacity().unwrap_or(DEFAULT_MIB << 20);
        if repo.store().is_local() || capacity == 0 {
            return None;
        }
        let dir = dir_of(catalog);
        DiskCache::open(&dir, capacity)
            .inspect_err(|e| tracing::warn!("no on-disk blob cache at {}: {e}", dir.display()))
            .ok()
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(id.to_hex())
    }

    pub fn get(&self, id: &BlobId) -> Option<Vec<u8>> {
        fs::read(self.path(id)).ok()
    }

    /// Whether the cache has a copy of `id` (unchecked: reading it checks it).
    pub fn contains(&self, id: &BlobId) -> bool {
        self.path(id).exists()
    }

    /// Forgets a blob whose cached copy turned out to be damaged.
    pub fn remove(&self, id: &BlobId) {
        if let Ok(m) = fs::metadata(self.path(id)) {
            if fs::remove_file(self.path(id)).is_ok() {
                self.used.fetch_sub(
                    m.len().min(self.used.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Whether [`put`](Self::put) keeps a blob of `len` bytes: one larger than a quarter
    /// of the bound is not kept (it would push out too much).
    pub fn keeps(&self, len: u64) -> bool {
        len <= self.capacity / 4
    }

    /// Stores a blob (write to a temporary name, then rename) and evicts the oldest
    /// entries when over capacity. Failures only cost a future miss.
    pub fn put(&self, id: &BlobId, stored: &[u8]) {
        if !self.keeps(stored.len() as u64) {
            return;
        }
        let tmp = self
            .dir
            .join(format!(".{}.tmp{}", id.to_hex(), std::process::id()));
        if fs::write(&tmp, stored)
            .and_then(|_| fs::rename(&tmp, self.path(id)))
            .is_err()
        {
            let _ = fs::remove_file(&tmp);
            return;
        }
        if self.used.fetch_add(stored.len() as u64, Ordering::Relaxed) + stored.len() as u64
            > self.capacity
        {
            self.evict();
        }
    }

    fn evict(&self) {
        let Ok(_guard) = self.evicting.try_lock() else {
            return;
        };
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((
                    m.accessed().or_else(|_| m.modified()).ok()?,
                    m.len(),
                    e.path(),
                ))
            })
            .collect();
        files.sort();
        let mut used: u64 = files.iter().map(|f| f.1).sum();
        let target = self.capacity * 3 / 4;
        for (_, len, path) in files {
            if used <= target {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                used -= len;
            }
        }
        self.used.store(used, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_in(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn stays_within_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 10_000).unwrap();
        for i in 0..40u8 {
            cache.put(&BlobId([i; 32]), &[i; 1000]);
        }
        let total = bytes_in(dir.path());
        assert!(total <= 10_000, "{total}");
        assert_eq!(cache.get(&BlobId([39; 32])), Some(vec![39; 1000]));
        cache.remove(&BlobId([39; 32]));
        assert_eq!(cache.get(&BlobId([39; 32])), None);
    }

    #[test]
    fn entries_persist_across_opens_and_the_bound_counts_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 10_000).unwrap();
        cache.put(&BlobId([1; 32]), &[1; 2000]);
        assert!(cache.contains(&BlobId([1; 32])));
        assert!(!cache.contains(&BlobId([2; 32])));
        drop(cache);
        let cache = DiskCache::open(dir.path(), 10_000).unwrap();
        assert_eq!(cache.get(&BlobId([1; 32])), Some(vec![1; 2000]));
        // The 2000 bytes already there count: five more entries overflow the bound.
        for i in 2..7u8 {
            cache.put(&BlobId([i; 32]), &[i; 2000]);
        }
        let total = bytes_in(dir.path());
        assert!(total <= 10_000, "{total}");
    }

    #[test]
    fn a_blob_over_a_quarter_of_the_bound_is_not_kept_and_a_missing_one_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(&dir.path().join("new"), 4_000).unwrap();
        cache.put(&BlobId([7; 32]), &[7; 1001]);
        assert!(!cache.contains(&BlobId([7; 32])));
        assert_eq!(cache.get(&BlobId([7; 32])), None);
        cache.remove(&BlobId([7; 32])); // nothing to remove: no effect
        cache.put(&BlobId([8; 32]), &[8; 1000]);
        assert_eq!(cache.get(&BlobId([8; 32])), Some(vec![8; 1000]));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path().join("new")).unwrap().count(), 1);
    }
}
