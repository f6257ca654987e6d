//! What the daemon keeps of each instance's log archive between passes: its loaded
//! archiver, when its next pass is due and its last failure, each behind a lock of its
//! own (`log_archiver` runs the passes). A leaf, so that the service's state holds it
//! without a cycle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::engine::logs::LogArchiver;
use crate::sync::LockExt;

/// One instance's archive as the daemon keeps it.
#[derive(Default)]
pub(super) struct LogSlot {
    /// Loaded at the first pass or push.
    pub archiver: Option<LogArchiver>,
    /// When the next periodic pass is due (clock ns).
    pub next_due_ns: i64,
    /// The last periodic failure recorded, so a failing pass is not an event every time.
    pub last_error: Option<String>,
}

/// The archives of the instances, each behind its own lock.
#[derive(Default)]
pub(super) struct LogArchives {
    slots: Mutex<BTreeMap<String, Arc<Mutex<LogSlot>>>>,
}

impl LogArchives {
    pub fn slot(&self, instance: &str) -> Arc<Mutex<LogSlot>> {
        self.slots
            .locked()
            .entry(instance.to_string())
            .or_default()
            .clone()
    }
}
