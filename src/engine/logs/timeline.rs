//! An instance's log archive in time: its records in seq order, the gaps in their chain,
//! which version of each log file existed after a given record, and that version's bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;

use crate::catalog::{Catalog, LogRecordEntry};
use crate::engine::{EngineError, Result};
use crate::repo::Repository;

use super::read_ahead::for_each_record;

const NS: i64 = 1_000_000_000;

/// Records missing from an instance's chain: between the record `after_seq` (taken at
/// `after_ns`) and the next one the catalog has (`before_ns`; `None` at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGap {
    pub after_seq: u64,
    pub after_ns: Option<i64>,
    pub before_ns: Option<i64>,
    pub missing: Range<u64>,
}

/// Where a run of a file version's bytes is: a record's data range, at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRef {
    pub key: String,
    pub data: Range<usize>,
    pub offset: u64,
}

/// One version of a log file as it stood after some record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    pub name: String,
    pub generation: u32,
    /// Bytes archived of it (what the pieces cover, from 0).
    pub size: u64,
    pub mtime_ns: i64,
    /// When the newest of its pieces was archived.
    pub time_ns: i64,
    pub pieces: Vec<PieceRef>,
}

/// An instance's log records, oldest first.
#[derive(Debug, Clone)]
pub struct Timeline {
    instance: String,
    records: Vec<LogRecordEntry>,
}

impl Timeline {
    pub fn load(catalog: &Catalog, instance: &str) -> Result<Timeline> {
        Ok(Timeline {
            instance: instance.to_string(),
            records: catalog.log_records(instance)?,
        })
    }

    pub fn records(&self) -> &[LogRecordEntry] {
        &self.records
    }

    /// The newest second whose every write is archived, when the last pass looked at
    /// `last_pass_ns`: the second that ended at or before it.
    pub fn latest_second(last_pass_ns: i64) -> i64 {
        last_pass_ns.div_euclid(NS) - 1
    }

    /// Records missing from the chain (a deleted or unreadable record): every seq from
    /// the oldest record to the newest must be there, each naming its predecessor. The
    /// chain may start after seq 1: the records before it expired (retention deletes the
    /// oldest records, FORMAT.md 9.3), which is no gap.
    pub fn gaps(&self) -> Vec<LogGap> {
        let mut gaps = Vec::new();
        let mut prev: Option<&LogRecordEntry> = None;
        for e in &self.records {
            let expected = prev.map_or(e.record.seq, |p| p.record.seq + 1);
            let linked = match prev {
                None => true,
                Some(p) => {
                    e.record.seq == expected
                        && e.record.parent.as_deref() == Some(record_id_hex(&p.key))
                }
            };
            if !linked {
                gaps.push(LogGap {
                    after_seq: prev.map_or(0, |p| p.record.seq),
                    after_ns: prev.map(|p| p.record.time_ns),
                    before_ns: Some(e.record.time_ns),
                    missing: expected..e.record.seq.max(expected + 1),
                });
            }
            prev = Some(e);
        }
        gaps
    }

    /// The index of the newest record taken before `cutoff_ns`, if any.
    pub fn last_before(&self, cutoff_ns: i64) -> Option<usize> {
        self.records
            .iter()
            .rposition(|e| e.record.time_ns < cutoff_ns)
    }

    /// The index of the first record taken at or after `cutoff_ns`, if any.
    pub fn first_from(&self, cutoff_ns: i64) -> Option<usize> {
        self.records
            .iter()
            .position(|e| e.record.time_ns >= cutoff_ns)
    }

    /// Every log file's newest version among the records `..=upto` (an index), with its
    /// pieces; a version whose pieces do not cover it from byte 0 is an error (a gap).
    pub fn files_after(&self, upto: usize) -> Result<Vec<FileVersion>> {
        let (files, holes) = self.versions_after(upto);
        match holes.into_iter().next() {
            Some(hole) => Err(self.gap(hole)),
            None => Ok(files),
        }
    }

    /// Like [`files_after`](Self::files_after), but a version whose pieces do not cover
    /// it from byte 0 (its first records expired or lost) is left out, and named in the
    /// second list: what can still be read whole.
    pub fn whole_files_after(&self, upto: usize) -> (Vec<FileVersion>, Vec<String>) {
        self.versions_after(upto)
    }

    fn versions_after(&self, upto: usize) -> (Vec<FileVersion>, Vec<String>) {
        let mut files: BTreeMap<String, FileVersion> = BTreeMap::new();
        // Versions with a hole, by file: their generation.
        let mut holed: BTreeMap<String, u32> = BTreeMap::new();
        let mut holes = Vec::new();
        for e in self.records.iter().take(upto + 1) {
            for (i, p) in e.record.pieces.iter().enumerate() {
                let v = files.entry(p.file.clone()).or_insert_with(|| FileVersion {
                    name: p.file.clone(),
                    generation: p.generation,
                    size: 0,
                    mtime_ns: p.mtime_ns,
                    time_ns: e.record.time_ns,
                    pieces: Vec::new(),
                });
                if p.generation > v.generation {
                    (v.generation, v.size) = (p.generation, 0);
                    v.pieces.clear();
                    holed.remove(&p.file);
                } else if p.generation < v.generation || holed.get(&p.file) == Some(&p.generation) {
                    continue;
                }
                if p.offset != v.size {
                    holes.push(format!(
                        "log file {} (version {}) has bytes from {} archived but not {}..{}",
                        p.file, p.generation, p.offset, v.size, p.offset
                    ));
                    holed.insert(p.file.clone(), p.generation);
                    continue;
                }
                v.size = p.end();
                v.mtime_ns = p.mtime_ns;
                v.time_ns = e.record.time_ns;
                v.pieces.push(PieceRef {
                    key: e.key.clone(),
                    data: e.record.piece_range(i),
                    offset: p.offset,
                });
            }
        }
        let whole = files
            .into_values()
            .filter(|v| holed.get(&v.name) != Some(&v.generation))
            .collect();
        (whole, holes)
    }

    /// Writes the first `limit` bytes (all when `None`) of a file version to `out`.
    pub fn write_version(
        &self,
        repo: &Repository,
        version: &FileVersion,
        limit: Option<u64>,
        out: &mut impl Write,
    ) -> Result<u64> {
        let limit = limit.unwrap_or(version.size).min(version.size);
        // The records that hold the first `limit` bytes, each once, in order, with the
        // pieces it holds.
        let mut groups: Vec<(String, Vec<&PieceRef>)> = Vec::new();
        for piece in version.pieces.iter().take_while(|p| p.offset < limit) {
            match groups.last_mut() {
                Some((key, pieces)) if *key == piece.key => pieces.push(piece),
                _ => groups.push((piece.key.clone(), vec![piece])),
            }
        }
        let keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
        let mut written = 0u64;
        for_each_record(
            repo,
            &keys,
            |i, data| {
                for piece in &groups[i].1 {
                    let bytes = data.get(piece.data.clone()).ok_or_else(|| {
                        self.gap(format!("{} is shorter than its pieces", piece.key))
                    })?;
                    let take = ((limit - written) as usize).min(bytes.len());
                    out.write_all(&bytes[..take]).map_err(|e| {
                        EngineError::io("writing", std::path::Path::new(&version.name), e)
                    })?;
                    written += take as u64;
                }
                Ok(written < limit)
            },
            |e| self.gap(e.to_string()),
        )?;
        Ok(written)
    }

    /// The whole newest version of `name` (after record `upto`, or the newest record).
    pub fn read_file(&self, repo: &Repository, name: &str, upto: Option<usize>) -> Result<Vec<u8>> {
        let Some(upto) = upto.or_else(|| self.records.len().checked_sub(1)) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if let Some(v) = self.files_after(upto)?.into_iter().find(|v| v.name == name) {
            self.write_version(repo, &v, None, &mut out)?;
        }
        Ok(out)
    }

    fn gap(&self, message: String) -> EngineError {
        EngineError::LogGap {
            instance: self.instance.clone(),
            message,
        }
    }
}

/// The hex id at the end of a record's object key.
pub fn record_id_hex(key: &str) -> &str {
    key.rsplit('-').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::expiry::tests::entry;
    use super::*;

    fn timeline(seqs: &[u64]) -> Timeline {
        let mut records: Vec<LogRecordEntry> =
            seqs.iter().map(|&s| entry(s, &[("f", 1, 0, 1)])).collect();
        // Each names the one before it by the id at the end of its key.
        for (i, s) in seqs.iter().enumerate() {
            records[i].key = format!("logs/pg/{s:012}-{s:064x}");
            records[i].record.parent = (*s > 1).then(|| format!("{:064x}", s - 1));
        }
        Timeline {
            instance: "pg".into(),
            records,
        }
    }

    #[test]
    fn a_chain_may_start_after_expired_records_but_not_skip_one() {
        assert_eq!(timeline(&[1, 2, 3]).gaps(), vec![]);
        assert_eq!(timeline(&[4, 5, 6]).gaps(), vec![]);
        let gaps = timeline(&[4, 5, 8]).gaps();
        assert_eq!(gaps.len(), 1);
        assert_eq!((gaps[0].after_seq, gaps[0].missing.clone()), (5, 6..8));
        assert_eq!(
            (gaps[0].after_ns, gaps[0].before_ns),
            (Some(5 * NS), Some(8 * NS))
        );
    }
}
