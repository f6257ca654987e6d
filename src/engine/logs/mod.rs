//! Log archiving and point-in-time restore: an instance's log files archived pass after
//! pass (or pushed one by one) as log records (docs/FORMAT.md, 9.3), the archive read back
//! in time, which records retention lets go (`expiry`), and the state of an instance at
//! one second (docs/FORMAT.md, 9.4): planned (`pitr`: the base point and each log cut by
//! its kind, `redis_aof`, `postgres`, `mariadb`, any other file), within the restorable
//! range (`range`), and restored (`restore_at`). Times: `time`. The mount reads a log
//! file version by ranges (`version_reader`).

mod archive;
mod base;
mod cutoff;
mod expiry;
mod listing;
mod mariadb;
mod pitr;
mod plan;
mod postgres;
mod range;
mod read_ahead;
mod redis_aof;
mod restore_at;
mod time;
mod timeline;
mod version_reader;

pub use archive::{LogArchiver, PassOutcome};
pub use base::LOGS_DIR;
pub use expiry::expirable;
pub use mariadb::{BINLOGS_DIR, POSITION_FILES, REPLAY_SCRIPT};
pub use pitr::plan_at;
pub use plan::{PitrPlan, PlannedExtra, PlannedLog};
pub use postgres::{recovery_settings, WAL_ARCHIVE_DIR};
pub use range::{restorable_range, RestorableRange};
pub use restore_at::{restore_at, PitrOutcome, PitrRequest};
pub use time::{compact_pitr_time, format_pitr_time, parse_pitr_time};
pub use timeline::{record_id_hex, FileVersion, LogGap, PieceRef, Timeline};
pub use version_reader::VersionReader;
