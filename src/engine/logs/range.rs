//! The seconds an instance can be restored to: from its oldest point's second to the
//! last second the log archive holds whole (the one that ended before the last pass
//! looked), less the gaps in the archive's chain; and the refusals of a second outside.

use crate::catalog::{Catalog, PointRecord};
use crate::engine::{EngineError, InvalidRequest, Result};
use crate::model::PointKind;

use super::time::{format_pitr_time, NS};
use super::timeline::{LogGap, Timeline};

/// What `points` and the mount show of an instance's point-in-time restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorableRange {
    /// The start (ns) of the oldest point's second.
    pub earliest_ns: i64,
    /// The start (ns) of the newest second whose every write is archived.
    pub latest_second_ns: i64,
    /// Where records are missing: no second whose restore needs them is restorable.
    pub gaps: Vec<LogGap>,
}

/// An instance's restorable range; `None` when it has no point (safety points aside) or
/// no archived logs (no record, and no pass of this process: `last_pass_ns`).
pub fn restorable_range(
    catalog: &Catalog,
    instance: &str,
    last_pass_ns: Option<i64>,
) -> Result<Option<RestorableRange>> {
    let timeline = Timeline::load(catalog, instance)?;
    Ok(range_of(
        &base_points(catalog, instance)?,
        &timeline,
        last_pass_ns,
    ))
}

/// The points a restore may start from, oldest first.
pub(super) fn base_points(catalog: &Catalog, instance: &str) -> Result<Vec<PointRecord>> {
    let mut points = catalog.points(Some(instance))?;
    points.retain(|p| p.manifest.point_kind() != PointKind::Safety);
    Ok(points)
}

pub(super) fn range_of(
    points: &[PointRecord],
    timeline: &Timeline,
    last_pass_ns: Option<i64>,
) -> Option<RestorableRange> {
    let first = points.first()?;
    let newest = timeline.records().last().map(|e| e.record.time_ns);
    let looked = last_pass_ns.max(newest)?;
    Some(RestorableRange {
        earliest_ns: first.manifest.time_ns.div_euclid(NS) * NS,
        latest_second_ns: Timeline::latest_second(looked) * NS,
        gaps: timeline.gaps(),
    })
}

/// Refuses a second before the first point or after the latest archived second.
pub(super) fn check_in_range<'r>(
    instance: &str,
    range: Option<&'r RestorableRange>,
    points: &[PointRecord],
    at_ns: i64,
) -> Result<&'r RestorableRange> {
    let at = format_pitr_time(at_ns);
    let refuse = |r: InvalidRequest| Err(EngineError::Invalid(r));
    let Some(first) = points.first() else {
        return refuse(InvalidRequest::PitrBeforeFirstPoint {
            instance: instance.to_string(),
            at,
            earliest: None,
        });
    };
    if first.manifest.time_ns >= at_ns + NS {
        return refuse(InvalidRequest::PitrBeforeFirstPoint {
            instance: instance.to_string(),
            at,
            earliest: Some(format_pitr_time(first.manifest.time_ns)),
        });
    }
    let Some(range) = range else {
        return refuse(InvalidRequest::PitrNoLogs(instance.to_string()));
    };
    if at_ns > range.latest_second_ns {
        return refuse(InvalidRequest::PitrAfterLatest {
            instance: instance.to_string(),
            at,
            latest: format_pitr_time(range.latest_second_ns),
        });
    }
    Ok(range)
}

/// Refuses when records a restore reads are missing: a gap between the base point's
/// time and the newest record the restore reads (`upto_ns`).
pub(super) fn check_gaps(
    instance: &str,
    range: &RestorableRange,
    at_ns: i64,
    base_ns: i64,
    upto_ns: Option<i64>,
) -> Result<()> {
    let Some(upto_ns) = upto_ns else {
        return Ok(());
    };
    let needed = range.gaps.iter().find(|g| {
        g.before_ns.is_none_or(|b| b > base_ns) && g.after_ns.is_none_or(|a| a < upto_ns)
    });
    let Some(g) = needed else {
        return Ok(());
    };
    let when = |ns: Option<i64>, none: &str| ns.map_or(none.to_string(), format_pitr_time);
    Err(EngineError::LogGap {
        instance: instance.to_string(),
        message: format!(
            "records {}..{} (archived between {} and {}) are missing, and the restore to {} \
             needs them: restore to a second before the gap, or from a point after it",
            g.missing.start,
            g.missing.end - 1,
            when(g.after_ns, "the start"),
            when(g.before_ns, "now"),
            format_pitr_time(at_ns)
        ),
    })
}
