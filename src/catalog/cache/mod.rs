//! The catalog's cache half: tables rebuilt from the repository's objects (see
//! `schema::CACHE_TABLES`). Losing them loses nothing: `refresh` and
//! `rebuild` reload them.

mod counts;
mod index;
mod logs;
mod points;
mod prune;
mod refresh;
mod top_level;

pub use counts::CatalogCounts;
pub use logs::LogRecordEntry;
pub use points::{latest_of, PointQuery, PointRecord};
pub use prune::{Marks, PackUsage, PlanRecord};
pub use refresh::RefreshStats;
