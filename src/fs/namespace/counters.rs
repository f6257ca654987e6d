//! How many requests of each kind the kernel sent the mount, for `.cairn/stats`: what
//! `scripts/bench.sh` divides by the files read to give the requests per file.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of kernel request counted; anything else is `Other`.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Lookup,
    Getattr,
    Open,
    Opendir,
    Read,
    Readdir,
    Readdirplus,
    Release,
    Releasedir,
    Forget,
    Readlink,
    Getxattr,
    Listxattr,
    Statfs,
    Other,
}

const NAMES: [&str; 15] = [
    "lookup",
    "getattr",
    "open",
    "opendir",
    "read",
    "readdir",
    "readdirplus",
    "release",
    "releasedir",
    "forget",
    "readlink",
    "getxattr",
    "listxattr",
    "statfs",
    "other",
];

#[derive(Default)]
pub(super) struct Counters([AtomicU64; NAMES.len()]);

impl Counters {
    pub fn count(&self, op: Op) {
        self.0[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `{"lookup": N, ...}` and the total.
    pub fn json(&self) -> (serde_json::Value, u64) {
        let mut map = serde_json::Map::new();
        let mut total = 0;
        for (name, n) in NAMES.iter().zip(&self.0) {
            let n = n.load(Ordering::Relaxed);
            total += n;
            map.insert((*name).to_string(), n.into());
        }
        (map.into(), total)
    }
}
