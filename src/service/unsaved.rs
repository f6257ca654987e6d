//! Job states the catalog could not store (its disk full): kept in memory and shown as if
//! stored, so that a job that failed for lack of space says so instead of looking
//! `running` forever; stored as soon as the catalog takes writes again.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::catalog::Catalog;
use crate::sync::LockExt;

/// One job's row as it should be in the catalog.
#[derive(Debug)]
pub(super) struct UnsavedJob {
    pub state: String,
    pub status: String,
    pub log: String,
}

#[derive(Debug, Default)]
pub(super) struct Unsaved(Mutex<BTreeMap<u64, UnsavedJob>>);

impl Unsaved {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, UnsavedJob>> {
        self.0.locked()
    }

    /// Keeps the newest row of a job the catalog refused.
    pub fn keep(&self, id: u64, job: UnsavedJob) {
        self.lock().insert(id, job);
    }

    /// The job's row was stored: nothing left to keep.
    pub fn stored(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub fn status(&self, id: u64) -> Option<String> {
        self.lock().get(&id).map(|j| j.status.clone())
    }

    pub fn log(&self, id: u64) -> Option<String> {
        self.lock().get(&id).map(|j| j.log.clone())
    }

    /// Stores what the catalog takes now; keeps the rest.
    pub fn flush(&self, catalog: &Catalog) {
        let mut rows = self.lock();
        rows.retain(|id, j| {
            catalog
                .update_job(*id, &j.state, &j.status, &j.log)
                .is_err()
        });
    }
}
