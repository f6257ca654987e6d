//! What the scheduler remembers per (policy, instance): the last slot it handled, the
//! job it started for it, and the retries of the day. Kept in memory; the scheduler
//! rebuilds a track from the catalog's scheduled jobs the first time it looks at one.

use std::collections::HashMap;

use chrono::NaiveDate;

#[derive(Debug, Clone)]
pub struct Track {
    pub last_slot_ns: i64,
    pub last_job: Option<u64>,
    pub day: NaiveDate,
    pub retries: u32,
}

#[derive(Debug)]
pub struct SchedState {
    pub tracks: HashMap<(String, String), Track>,
    /// When this service started: slots up to then were missed while it was down.
    pub started_ns: i64,
}

impl SchedState {
    pub fn new(started_ns: i64) -> SchedState {
        SchedState {
            tracks: HashMap::new(),
            started_ns,
        }
    }
}
