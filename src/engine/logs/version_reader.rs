//! Ranged reads of one log file version (the mount's `logs/` and `@TIME/` files): a read
//! fetches only the records that hold the range asked for, and keeps the last record's
//! data, so a file read front to back fetches each of its records once.

use std::sync::{Arc, Mutex};

use crate::engine::{EngineError, Result};
use crate::model::LogRecord;
use crate::repo::Repository;
use crate::sync::LockExt;

use super::timeline::FileVersion;

/// The first `limit` bytes of a log file version, read by ranges.
#[derive(Debug)]
pub struct VersionReader {
    instance: String,
    version: Arc<FileVersion>,
    limit: u64,
    /// The last record read: its object key and data.
    last: Mutex<Option<(String, Arc<Vec<u8>>)>>,
}

impl VersionReader {
    /// A reader of `version`'s first `limit` bytes (all of it when `limit` is larger).
    pub fn new(instance: &str, version: Arc<FileVersion>, limit: u64) -> VersionReader {
        VersionReader {
            instance: instance.to_string(),
            limit: limit.min(version.size),
            version,
            last: Mutex::new(None),
        }
    }

    /// Bytes `[offset, offset + size)`, cut at the limit.
    pub fn read(&self, repo: &Repository, offset: u64, size: usize) -> Result<Vec<u8>> {
        let end = offset.saturating_add(size as u64).min(self.limit);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        // Pieces cover the version from 0 in order: the first that ends after `offset`.
        let first = self
            .version
            .pieces
            .partition_point(|p| p.offset + (p.data.end - p.data.start) as u64 <= offset);
        for piece in &self.version.pieces[first..] {
            if piece.offset >= end {
                break;
            }
            let data = self.record(repo, &piece.key)?;
            let bytes = data
                .get(piece.data.clone())
                .ok_or_else(|| self.gap(format!("{} is shorter than its pieces", piece.key)))?;
            let from = offset.saturating_sub(piece.offset) as usize;
            let to = ((end - piece.offset) as usize).min(bytes.len());
            out.extend_from_slice(&bytes[from.min(to)..to]);
        }
        Ok(out)
    }

    /// A record's data, from the last one read or from the repository.
    fn record(&self, repo: &Repository, key: &str) -> Result<Arc<Vec<u8>>> {
        if let Some((k, data)) = self.last.locked().as_ref() {
            if k == key {
                return Ok(data.clone());
            }
        }
        let (_, data) = LogRecord::read(repo, key).map_err(|e| self.gap(e.to_string()))?;
        let data = Arc::new(data);
        *self.last.locked() = Some((key.to_string(), data.clone()));
        Ok(data)
    }

    fn gap(&self, message: String) -> EngineError {
        EngineError::LogGap {
            instance: self.instance.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::catalog::Catalog;
    use crate::engine::logs::{LogArchiver, Timeline};
    use crate::repo::InitOptions;
    use crate::store::Store;

    #[test]
    fn ranges_across_records_are_cut_at_the_limit_and_reuse_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::from_object_store(
            Arc::new(object_store::memory::InMemory::new()),
            "memory".into(),
        )
        .unwrap();
        let repo = Repository::init(store, &InitOptions::unencrypted()).unwrap();
        let catalog = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let log = dir.path().join("app.log");
        let globs = [format!("{}/*.log", dir.path().display())];
        let mut archiver = LogArchiver::load(&catalog, "db").unwrap();
        let mut file = std::fs::File::create(&log).unwrap();
        file.write_all(b"0123456789").unwrap();
        archiver.pass(&repo, &catalog, &globs).unwrap();
        file.write_all(b"abcdefghij").unwrap();
        archiver.pass(&repo, &catalog, &globs).unwrap();

        let timeline = Timeline::load(&catalog, "db").unwrap();
        assert_eq!(timeline.records().len(), 2);
        let version = timeline.files_after(1).unwrap().remove(0);
        assert_eq!(version.pieces.len(), 2);
        let reader = VersionReader::new("db", Arc::new(version.clone()), 15);
        assert_eq!(reader.read(&repo, 0, 4).unwrap(), b"0123");
        assert_eq!(reader.read(&repo, 8, 4).unwrap(), b"89ab");
        assert_eq!(reader.read(&repo, 12, 100).unwrap(), b"cde");
        assert_eq!(reader.read(&repo, 15, 10).unwrap(), b"");
        assert_eq!(reader.read(&repo, 40, 10).unwrap(), b"");
        let whole = VersionReader::new("db", Arc::new(version), u64::MAX);
        assert_eq!(whole.read(&repo, 0, 64).unwrap(), b"0123456789abcdefghij");
    }
}
