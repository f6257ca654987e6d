//! Which top-level directories of the repository hold objects, from one delimited
//! listing: a refresh lists the often-empty ones only when they are not.

use std::collections::HashSet;

use crate::catalog::Result;
use crate::repo::Repository;
use crate::store::ObjectInfo;

/// Which top-level directories held objects when a refresh began (one delimited listing):
/// the directories that are most often empty (prune plans, forget records, log records)
/// are listed only when they are not, so that a refresh costs few requests. The index,
/// packs and points are always listed.
pub(super) struct TopLevel(HashSet<String>);

impl TopLevel {
    pub(super) fn of(repo: &Repository) -> Result<TopLevel> {
        Ok(TopLevel(repo.store().top_level()?))
    }

    /// The objects under `prefix`, a top-level directory; none when it held none.
    pub(super) fn list(&self, repo: &Repository, prefix: &str) -> Result<Vec<ObjectInfo>> {
        if !self.0.contains(prefix) {
            return Ok(Vec::new());
        }
        Ok(repo.store().list(prefix)?)
    }
}
