//! Stand-ins, with the same signatures, for the planner written beside this branch
//! (`plan_at`, `parse_pitr_time` of engine/logs): the mount is built against them. The
//! merge replaces this file by the real ones; until then no time is reachable.

use crate::catalog::Catalog;
use crate::engine::{EngineError, InvalidRequest, Result};
use crate::model::InstanceConfig;
use crate::repo::Repository;

use super::plan::PitrPlan;

/// The state of `config`'s instance at the second `at_ns` (not built yet: refuses).
pub fn plan_at(
    _repo: &Repository,
    _catalog: &Catalog,
    config: &InstanceConfig,
    at_ns: i64,
    _last_pass_ns: Option<i64>,
) -> Result<PitrPlan> {
    Err(EngineError::Invalid(InvalidRequest::Refused(format!(
        "instance `{}` at {at_ns}: point-in-time plans are not built in this version",
        config.name
    ))))
}

/// A second, in the compact UTC form `2026-12-01T103015Z` or RFC 3339: ns at its start.
pub fn parse_pitr_time(text: &str) -> std::result::Result<i64, String> {
    let time = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H%M%SZ")
        .map(|t| t.and_utc())
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()))
        .map_err(|e| format!("{text:?} is not a time (2026-12-01T103015Z or RFC 3339): {e}"))?;
    Ok(time.timestamp() * 1_000_000_000)
}
