//! Log records that expired with the points (docs/FORMAT.md, 12.4): for each instance,
//! the oldest records that no kept point needs for a point-in-time restore
//! ([`expirable`]) are deleted, oldest first, so that a crash leaves a chain that starts
//! later, never one with a hole. Without a lease (a dry run) they are only counted.

use crate::engine::logs::expirable;
use crate::model::PointKind;
use crate::repo::RepoError;

use super::super::Result;
use super::request::{Ctx, PruneOutcome};

/// Deletes (or counts) every instance's expired log records.
pub(super) fn expire_logs(ctx: &Ctx<'_>, out: &mut PruneOutcome) -> Result<()> {
    let (repo, catalog) = (ctx.repo, ctx.catalog);
    for instance in catalog.log_instances()? {
        ctx.cancel.check()?;
        let oldest_point_ns = catalog
            .points(Some(&instance))?
            .iter()
            .filter(|p| p.manifest.point_kind() != PointKind::Safety)
            .map(|p| p.manifest.time_ns)
            .min();
        let records = catalog.log_records(&instance)?;
        let expired = &records[..expirable(&records, oldest_point_ns)];
        if expired.is_empty() {
            continue;
        }
        if let Some(lease) = ctx.lease {
            ctx.progress.phase("expiring logs");
            lease.check(repo)?;
        }
        for e in expired {
            if ctx.lease.is_some() {
                repo.store().delete(&e.key).map_err(RepoError::from)?;
                catalog.remove_log_record(&e.key)?;
            }
            out.log_records_deleted += 1;
            out.log_bytes_deleted += e.record.pieces.iter().map(|p| p.len).sum::<u64>();
        }
        tracing::info!(
            instance = %instance,
            records = expired.len(),
            dry_run = ctx.lease.is_none(),
            "log records expired"
        );
    }
    Ok(())
}
