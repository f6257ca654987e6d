//! The log records (docs/FORMAT.md 9.3) of the copied instances: between repositories
//! that share the master key, each record the target lacks is copied as it is stored
//! (the same key and bytes: its id and its chain hold in the target), as long as the
//! target's own records of the instance are all copies of the source's (a record of its
//! own would fork the chain). Between repositories with other keys no record is copied:
//! a record's id and its successor's `parent` are keyed hashes, so the chain would have
//! to be written anew.

use std::collections::HashSet;

use crate::catalog::Catalog;
use crate::engine::{Progress, Result};
use crate::repo::{RepoError, Repository};
use crate::store::StoreError;

/// Copies the log records of `instance` the target lacks; how many it copied.
pub(super) fn copy_log_records(
    from: (&Repository, &Catalog),
    to: (&Repository, &Catalog),
    instance: &str,
    progress: &dyn Progress,
) -> Result<u64> {
    let source: Vec<String> = from
        .1
        .log_records(instance)?
        .into_iter()
        .map(|r| r.key)
        .collect();
    let theirs: HashSet<String> =
        to.1.log_records(instance)?
            .into_iter()
            .map(|r| r.key)
            .collect();
    let known: HashSet<&String> = source.iter().collect();
    if let Some(own) = theirs.iter().find(|k| !known.contains(k)) {
        progress.warn(&format!(
            "log records of `{instance}` not copied: the target has records of its own ({own})"
        ));
        return Ok(0);
    }
    let mut copied = 0;
    for key in source.iter().filter(|k| !theirs.contains(*k)) {
        let stored = from.0.store().get(key).map_err(RepoError::from)?;
        match to.0.store().put_new(key, stored) {
            Ok(()) => copied += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(RepoError::from(e).into()),
        }
    }
    Ok(copied)
}
