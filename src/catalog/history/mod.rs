//! The catalog's history half: tables the repository does not hold, so that nothing
//! could rebuild them (see `schema::HISTORY_TABLES`). `rebuild` never
//! touches them.

mod damage;
mod events;
mod jobs;
mod seen;

pub(in crate::catalog) use damage::promote_intact_copies;
pub use damage::DamagedCopy;
pub use events::EventQuery;
pub use jobs::{
    JobRow, FAILED_SCHEDULED_DAYS, FAILED_SCHEDULED_KEEP, FINISHED_JOB_DAYS, FINISHED_JOB_KEEP,
};
