//! The second phase: packs condemned by plans whose grace period has passed are deleted,
//! except those that hold the only copy of a blob some point references now. Writes are
//! ordered so that a crash anywhere loses nothing: index segments are rewritten first
//! (the new one written before the old one is deleted), then packs are deleted (each
//! after its parity object, in a repository with `ecc`), then the plans; a rerun finds the plans still there and finishes them.

use crate::catalog::{Catalog, Marks, PlanRecord};
use crate::repo::{Lease, PackId, RepoError, Repository};
use crate::store::StoreError;
use std::collections::BTreeSet;

use super::super::{CancelToken, Result};
use super::request::{Ctx, PruneOutcome};

/// Sweeps the plans that are due at `ctx.now`; without a lease (a dry run) it only
/// counts what it would delete.
pub(super) fn sweep_due(ctx: &Ctx<'_>, marks: &Marks<'_>, out: &mut PruneOutcome) -> Result<()> {
    let (repo, catalog, progress, cancel) = (ctx.repo, ctx.catalog, ctx.progress, ctx.cancel);
    let due: Vec<PlanRecord> = catalog
        .plans()?
        .into_iter()
        .filter(|p| p.not_before_ns <= ctx.now)
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    progress.phase("deleting");
    let lengths: std::collections::HashMap<PackId, (u64, bool)> = catalog
        .packs()?
        .into_iter()
        .map(|(id, len, present)| (id, (len, present)))
        .collect();
    let mut doomed = BTreeSet::new();
    for plan in &due {
        let needed: BTreeSet<PackId> = marks.needed_condemned(&plan.name)?.into_iter().collect();
        for id in catalog.plan_packs(&plan.name)? {
            if needed.contains(&id) {
                out.packs_kept += 1;
            } else if lengths.get(&id).is_some_and(|(_, present)| *present) {
                doomed.insert(id);
            }
        }
    }
    let doomed: Vec<PackId> = doomed.into_iter().collect();
    out.packs_deleted += doomed.len() as u64;
    out.bytes_freed += doomed.iter().map(|id| lengths[id].0).sum::<u64>();
    let Some(lease) = ctx.lease else {
        return Ok(());
    };
    progress.set_total(doomed.len() as u64, 0);

    // 1. Index segments that list doomed packs: successor first, then the old one.
    let gone: BTreeSet<PackId> = doomed.iter().copied().collect();
    let names = catalog.segments_listing(&doomed)?;
    out.segments_rewritten += rewrite_segments(ctx.repo, catalog, lease, &names, &gone, cancel)?;

    // 2. The packs.
    lease.check(repo)?;
    for id in &doomed {
        cancel.check()?;
        repo.delete_pack(id)?;
        progress.file_done(std::path::Path::new(&id.key()), lengths[id].0);
    }
    catalog.packs_deleted(&doomed)?;

    // 3. The plans: done.
    for plan in &due {
        repo.store().delete(&plan.name).map_err(RepoError::from)?;
        catalog.remove_plan(&plan.name)?;
    }
    // Learn the rewritten segments (the index is complete again on this machine).
    catalog.refresh(repo)?;
    Ok(())
}

/// Replaces each of the index segments `names` by one that lists the same packs except
/// `gone` (written first; none when nothing is left), then deletes it; a segment already
/// gone (replaced by an interrupted run) is skipped. Returns how many were replaced.
/// Prune's sweep and repair use it, holding the lease, which it checks before each
/// deletion.
pub(crate) fn rewrite_segments(
    repo: &Repository,
    catalog: &Catalog,
    lease: &Lease,
    names: &[String],
    gone: &BTreeSet<PackId>,
    cancel: &CancelToken,
) -> Result<u64> {
    let mut rewritten = 0;
    for name in names {
        cancel.check()?;
        match repo.read_index(name) {
            Ok(packs) => {
                let keep: Vec<_> = packs
                    .into_iter()
                    .filter(|p| !gone.contains(&p.id))
                    .collect();
                if !keep.is_empty() {
                    repo.write_index(&keep)?;
                }
                lease.check(repo)?;
                repo.store().delete(name).map_err(RepoError::from)?;
                rewritten += 1;
            }
            // Rewritten by an earlier, interrupted run.
            Err(RepoError::Store(StoreError::NotFound(_))) => {}
            Err(e) => return Err(e.into()),
        }
        catalog.segment_deleted(name)?;
    }
    Ok(rewritten)
}
