//! Log archiving and point-in-time restore: an instance's log files archived pass after
//! pass (or pushed one by one) as log records (docs/FORMAT.md, 9.3), and the archive
//! read back in time, and which of them retention lets go (`expiry`).

mod archive;
mod expiry;
mod plan;
mod timeline;

pub use archive::{LogArchiver, PassOutcome};
pub use expiry::expirable;
pub use plan::{PitrPlan, PlannedExtra, PlannedLog};
pub use timeline::{record_id_hex, FileVersion, LogGap, PieceRef, Timeline};
