//! The records a point-in-time view reads, for a second: the last record taken before
//! the second's end (what every pass had seen by then) and the first taken at or after
//! it (it holds every byte written during the second), with the versions of the log
//! files after each, and after the newest record.

use std::collections::BTreeMap;

use crate::engine::Result;
use crate::repo::Repository;

use super::time::NS;
use super::timeline::{FileVersion, Timeline};

/// A log file's versions, by name.
pub(super) type Versions = BTreeMap<String, FileVersion>;

pub(super) struct Cutoff<'t> {
    pub timeline: &'t Timeline,
    /// The second's start and end (ns): writes before `end_ns` are in.
    pub at_ns: i64,
    pub end_ns: i64,
    /// The files after the last record taken before `end_ns`.
    pub before: Versions,
    /// The files after the first record taken at or after `end_ns` (the newest record
    /// when there is none: the last pass saw nothing newer).
    pub after: Versions,
}

impl<'t> Cutoff<'t> {
    pub fn new(timeline: &'t Timeline, at_ns: i64) -> Result<Cutoff<'t>> {
        let end_ns = at_ns + NS;
        let last = timeline.records().len().checked_sub(1);
        let after_index = timeline.first_from(end_ns).or(last);
        let versions = |index| versions(timeline, index);
        Ok(Cutoff {
            timeline,
            at_ns,
            end_ns,
            before: versions(timeline.last_before(end_ns))?,
            after: versions(after_index)?,
        })
    }

    /// The files after the newest record, if they can be told (a gap after the second
    /// may hide a version: then only the files after the second's record).
    pub fn newest(&self) -> Versions {
        versions(self.timeline, self.timeline.records().len().checked_sub(1))
            .unwrap_or_else(|_| self.after.clone())
    }

    /// The first `n` bytes of a version (fewer when it is shorter).
    pub fn head(&self, repo: &Repository, version: &FileVersion, n: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.timeline
            .write_version(repo, version, Some(n), &mut out)?;
        Ok(out)
    }
}

fn versions(timeline: &Timeline, index: Option<usize>) -> Result<Versions> {
    Ok(match index {
        Some(i) => timeline
            .files_after(i)?
            .into_iter()
            .map(|v| (v.name.clone(), v))
            .collect(),
        None => Versions::new(),
    })
}
