//! Repair: makes a damaged repository whole again as far as its data allows, and marks
//! the points that still lack data (docs/FORMAT.md, 12.5).
//!
//! A run, holding the prune lease (so no prune runs at the same time):
//! 1. surveys ([`survey`]): reads every index segment, downloads every pack and checks
//!    it against its id; a pack that fails is damaged, and each blob known in it (from
//!    the segments or its header) is checked against its id;
//! 2. writes an index segment for the intact packs no segment lists, from their headers;
//! 3. copies the readable blobs of the damaged packs into new packs ([`salvage`]);
//! 4. once all that is durable, replaces the index segments that list damaged or missing
//!    packs by ones without them (as prune's sweep does), then deletes the damaged packs;
//! 5. walks every point (verify's structure walk) and marks those that still lack data
//!    damaged (`damaged/<instance>/<id>`, [`marks`]); marks whose points read whole again
//!    are deleted.
//!
//! Every step writes before it deletes, so a run interrupted anywhere leaves a
//! repository that a second run completes. A running backup is not stopped: repair only
//! adds segments and packs, and deletes only damaged packs whose readable blobs have a
//! durable copy, which a backup referring to them then reads. A dry run takes no lease
//! and writes nothing to the repository (it records the corrupt copies it finds in the
//! catalog, as verify does).
//!
//! Files: `request` (request and outcome), `survey`, `salvage`, `marks`.

mod marks;
mod request;
mod salvage;
mod survey;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::repo::{BlobId, Lease, LeaseHolder, PackId, Repository};

use super::prune::rewrite_segments;
use super::verify::points_lacking;
use super::{CancelToken, Progress, Result};
pub(crate) use marks::holding_mark;
pub use marks::{damaged_points, MarkedPoint};
pub use request::{DamagedPackReport, DamagedPoint, RepairOutcome, RepairRequest};
use survey::Survey;

/// How long the lease of a repair lasts if it dies holding it.
const LEASE_TTL_NS: i64 = 6 * 3600 * 1_000_000_000;

/// Repairs the repository; see the module documentation.
pub fn repair(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &RepairRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<RepairOutcome> {
    let lease = match req.dry_run {
        true => None,
        false => {
            let holder = LeaseHolder::this_process(crate::model::hostname());
            let now = crate::model::now_ns();
            Some(Lease::acquire(repo, &holder, now, LEASE_TTL_NS, false)?)
        }
    };
    let result = run(repo, catalog, lease.as_ref(), progress, cancel);
    if let Some(lease) = lease {
        match (&result, lease.release(repo)) {
            (Ok(_), Err(e)) => return Err(e.into()),
            (Err(_), Err(e)) => tracing::warn!("repair left the prune lease to expire: {e}"),
            _ => {}
        }
    }
    result
}

fn run(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    lease: Option<&Lease>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<RepairOutcome> {
    let mut out = RepairOutcome {
        dry_run: lease.is_none(),
        ..Default::default()
    };
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    progress.phase("checking packs");
    let s = survey::survey(repo, catalog, progress, cancel)?;
    out.packs_checked = s.listed.len() as u64;
    out.packs_reindexed = s.unindexed.len() as u64;
    out.segments_rebuilt = s.unindexed.len().div_ceil(salvage::PACKS_PER_SEGMENT) as u64;
    out.packs_missing = s.missing.len() as u64;
    for p in &s.damaged {
        out.damaged_packs.push(DamagedPackReport {
            pack: p.id.key(),
            why: p.why.clone(),
            blobs_readable: p.readable.len() as u64,
            blobs_unreadable: p.unreadable.len() as u64,
        });
        progress.warn(&format!(
            "pack {} is damaged ({}): {} blob(s) readable, {} not",
            p.id.key(),
            p.why,
            p.readable.len(),
            p.unreadable.len()
        ));
    }
    out.packs_salvaged = s.damaged.iter().filter(|p| !p.readable.is_empty()).count() as u64;
    out.packs_removed = s.damaged.len() as u64;
    let gone: BTreeSet<PackId> = s
        .damaged
        .iter()
        .map(|p| p.id)
        .chain(s.missing.keys().copied())
        .collect();
    let stale_segments = s.segments_listing(&gone);
    out.segments_rewritten = stale_segments.len() as u64;
    let lost = lost_blobs(catalog, &s, &gone)?;
    out.blobs_lost = lost.len() as u64;

    if let Some(lease) = lease {
        progress.phase("rebuilding index");
        out.segments_rebuilt = salvage::rebuild_segments(repo, catalog, &s.unindexed)?;
        progress.phase("salvaging");
        let moved = salvage::salvage(repo, catalog, &s.damaged, progress, cancel)?;
        (out.blobs_moved, out.bytes_moved) = (moved.blobs, moved.bytes);
        progress.phase("removing damaged packs");
        out.segments_rewritten =
            rewrite_segments(repo, catalog, lease, &stale_segments, &gone, cancel)?;
        lease.check(repo)?;
        let damaged: Vec<PackId> = s.damaged.iter().map(|p| p.id).collect();
        for id in &damaged {
            cancel.check()?;
            repo.delete_pack(id)?;
        }
        catalog.packs_deleted(&damaged)?;
        catalog.refresh(repo)?;
    } else {
        let moved = salvage::would_move(catalog, &s.damaged)?;
        (out.blobs_moved, out.bytes_moved) = (moved.blobs, moved.bytes);
    }

    progress.phase("finding damaged points");
    let lacking = points_lacking(repo, catalog, lost, cancel)?;
    marks::apply(repo, lease, &lacking, &mut out)?;
    for d in &out.damaged_points {
        progress.warn(&format!(
            "point {}/{} lacks data: {}",
            d.instance,
            d.point,
            d.paths.join(", ")
        ));
    }
    Ok(out)
}

/// Blobs of damaged or missing packs that no readable copy is left of: not readable in
/// a damaged pack (those are moved), and not in an intact pack.
fn lost_blobs(catalog: &Catalog, s: &Survey, gone: &BTreeSet<PackId>) -> Result<HashSet<BlobId>> {
    let saved: HashSet<BlobId> = s
        .damaged
        .iter()
        .flat_map(|p| p.readable.iter().map(|e| e.id))
        .collect();
    let candidates: Vec<BlobId> = s
        .damaged
        .iter()
        .flat_map(|p| p.unreadable.iter().map(|(e, _)| e.id))
        .chain(s.missing.values().flatten().map(|e| e.id))
        .filter(|id| !saved.contains(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found = catalog.lookup_blobs(&candidates)?;
    let only_damaged = catalog.only_damaged(&candidates)?;
    Ok(candidates
        .into_iter()
        .filter(|id| {
            !found
                .get(id)
                .is_some_and(|loc| !gone.contains(&loc.pack) && !only_damaged.contains_key(id))
        })
        .collect())
}
