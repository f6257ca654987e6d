//! The catalog: a local SQLite database of one repository, in two halves.
//!
//! - The **cache** (`cache/`: the index, points, forget records, prune plans) is rebuilt
//!   from the repository: object storage stays the source of truth, [`Catalog::refresh`]
//!   brings in what other writers added (and drops what was deleted), and
//!   [`Catalog::rebuild`] empties it and reloads it. The index lives on disk, so memory
//!   does not grow with the repository.
//! - The **history** (`history/`: the daemon's jobs and audit events, the blob copies
//!   found damaged, what was seen of the repository) is kept: the repository does not
//!   hold it, so it is never rebuilt and `rebuild` never drops it.
//!
//! [`CACHE_TABLES`] and [`HISTORY_TABLES`] (in `schema`) say which table belongs to which
//! half.

mod cache;
mod database;
mod error;
mod history;
mod private_files;
mod schema;
#[cfg(test)]
mod testing;

pub use cache::{
    latest_of, CatalogCounts, LogRecordEntry, Marks, PackUsage, PlanRecord, PointQuery,
    PointRecord, RefreshStats,
};
pub use database::{default_path, Catalog};
pub use error::{CatalogError, Result};
pub use history::{
    DamagedCopy, EventQuery, JobRow, FAILED_SCHEDULED_DAYS, FAILED_SCHEDULED_KEEP,
    FINISHED_JOB_DAYS, FINISHED_JOB_KEEP,
};
pub use schema::{CACHE_TABLES, HISTORY_TABLES};
