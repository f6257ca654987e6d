//! Prune: removes data that no point references, in two phases, safe while other
//! machines back up without a lock (the argument is in docs/FORMAT.md, section 12.4).
//!
//! Each run holds the exclusive prune lease and:
//! 1. refreshes the catalog and marks every blob the points reference (on disk, see
//!    [`Catalog::begin_marks`]);
//! 2. sweeps plans whose grace period has passed ([`sweep`]): deletes their packs,
//!    except any that holds the only copy of a blob referenced now;
//! 3. plans: packs with no referenced blob, and packs more than `repack_dead_ratio`
//!    dead, are condemned by a new `prune/<id>` plan; the live blobs of the latter are
//!    copied into new packs right away ([`repack`]). With a zero grace period the new
//!    plan is swept in the same run, after marking again.
//!
//! Besides, the log records no kept point needs any more are deleted ([`logs`]).
//!
//! Memory stays bounded: the marks and the per-pack sums live in SQLite; a repack holds
//! one pack. A dry run takes no lease and writes nothing.
//!
//! Files: `request` (request, outcome, the context steps share), `mark`, `sweep`, `repack`,
//! `logs`.

mod logs;
mod mark;
mod repack;
mod request;
mod sweep;

pub(crate) use sweep::rewrite_segments;

use std::collections::HashSet;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::model::{ForgetRecord, Manifest};
use crate::repo::{
    layout, Lease, LeaseHolder, PackId, PrunePlan, RepoError, Repository, TakenOver,
};

use super::{CancelToken, EngineError, InvalidRequest, Progress, Result, TreeReader};
use request::Ctx;
pub use request::{PruneOutcome, PruneRequest};

/// Prunes the repository; see the module documentation.
pub fn prune(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &PruneRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<PruneOutcome> {
    if !(req.repack_dead_ratio > 0.0 && req.repack_dead_ratio <= 1.0) {
        return Err(EngineError::Invalid(InvalidRequest::BadSetting(
            "the repack threshold must be a dead fraction in (0, 1]",
        )));
    }
    if req.grace_ns < 0 || req.lease_ttl_ns <= 0 {
        return Err(EngineError::Invalid(InvalidRequest::BadSetting(
            "the grace period must not be negative, the lease must last",
        )));
    }
    let now = req.now_ns.unwrap_or_else(crate::model::now_ns);
    let lease = match req.dry_run {
        true => None,
        false => {
            let holder = LeaseHolder::this_process(crate::model::hostname());
            let lease = Lease::acquire(repo, &holder, now, req.lease_ttl_ns, req.break_lease)?;
            if let Some(t) = lease.taken_over.as_ref().filter(|t| t.previous.is_some()) {
                progress.warn(&takeover_note(t));
            }
            Some(lease)
        }
    };
    let ctx = Ctx {
        repo,
        catalog,
        now,
        lease: lease.as_ref(),
        progress,
        cancel,
    };
    let result = run(&ctx, req).map(|mut out| {
        out.lease_taken_over = lease.as_ref().and_then(|l| l.taken_over.clone());
        out
    });
    if let Some(lease) = lease {
        match (&result, lease.release(repo)) {
            (Ok(_), Err(e)) => return Err(e.into()),
            (Err(_), Err(e)) => tracing::warn!("prune lease left to expire: {e}"),
            _ => {}
        }
    }
    result
}

/// The job log's line for a lease taken over from another holder.
fn takeover_note(t: &TakenOver) -> String {
    let holder = t.previous.as_ref().map_or_else(String::new, |r| {
        let pid = r.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
        format!(" (host `{}`{pid})", r.host)
    });
    match t.reason {
        crate::repo::Takeover::Broken => format!("broke the prune lease of another prune{holder}"),
        crate::repo::Takeover::HolderGone => {
            format!("took over the prune lease of a prune that is gone{holder}")
        }
        _ => format!("took over the expired prune lease of another prune{holder}"),
    }
}

fn run(ctx: &Ctx<'_>, req: &PruneRequest) -> Result<PruneOutcome> {
    let Ctx {
        repo,
        catalog,
        now,
        lease,
        progress,
        cancel,
    } = *ctx;
    let reader = TreeReader::new(repo.clone(), catalog.clone());
    let mut out = PruneOutcome {
        dry_run: req.dry_run,
        ..Default::default()
    };
    refresh(repo, catalog, progress)?;
    if lease.is_some() {
        delete_forgotten_manifests(repo, catalog)?;
    }
    logs::expire_logs(ctx, &mut out)?;
    let mut planned = None;
    {
        progress.phase("marking");
        let marks = catalog.begin_marks()?;
        out.blobs_referenced = mark::mark_all(&reader, catalog, &marks, progress, cancel)?;
        sweep::sweep_due(ctx, &marks, &mut out)?;
        progress.phase("planning");
        let (dead, sparse) = candidates(catalog, &marks, req.repack_dead_ratio)?;
        out.packs_condemned = (dead.len() + sparse.len()) as u64;
        out.packs_repacked = sparse.len() as u64;
        if !dead.is_empty() || !sparse.is_empty() {
            if let Some(lease) = lease {
                let plan = PrunePlan {
                    version: crate::repo::prune_plan::PLAN_VERSION,
                    created_ns: now,
                    not_before_ns: now.saturating_add(req.grace_ns),
                    host: crate::model::hostname(),
                    packs: dead.iter().chain(&sparse).map(PackId::to_hex).collect(),
                };
                let (name, json) = plan.encode(repo.key());
                lease.check(repo)?;
                repo.put_sealed(&name, json)?;
                let ids: Vec<PackId> = dead.iter().chain(&sparse).copied().collect();
                catalog.insert_plan(&name, &plan, &ids)?;
                progress.phase("repacking");
                out.bytes_repacked =
                    repack::repack(repo, catalog, &marks, &sparse, progress, cancel)?;
                planned = Some(plan.not_before_ns);
            }
        }
    }
    if planned.is_some_and(|due| due <= now) {
        // No grace: sweep the new plan now, against fresh marks.
        refresh(repo, catalog, progress)?;
        let marks = catalog.begin_marks()?;
        mark::mark_all(&reader, catalog, &marks, progress, cancel)?;
        sweep::sweep_due(ctx, &marks, &mut out)?;
    }
    let pending = catalog.plans()?;
    out.plans_pending = pending.len() as u64;
    out.next_sweep_ns = pending.iter().map(|p| p.not_before_ns).min();
    Ok(out)
}

/// Refreshes the catalog, refusing to go on while a point manifest cannot be read: its
/// blobs would go unmarked.
fn refresh(repo: &Repository, catalog: &Catalog, progress: &dyn Progress) -> Result<()> {
    progress.phase("refreshing catalog");
    let stats = catalog.refresh(repo)?;
    if stats.bad_points > 0 {
        return Err(EngineError::UnreadablePoints(stats.bad_points));
    }
    Ok(())
}

/// Present packs that a new plan condemns: (no live blob, mostly dead). Packs a pending
/// plan already condemns are left to it.
fn candidates(
    catalog: &Catalog,
    marks: &crate::catalog::Marks<'_>,
    ratio: f64,
) -> Result<(Vec<PackId>, Vec<PackId>)> {
    let mut condemned = HashSet::new();
    for plan in catalog.plans()? {
        condemned.extend(catalog.plan_packs(&plan.name)?);
    }
    // A pack holding a damaged copy is repacked however little of it is dead: its
    // intact blobs move out, and it goes once every blob it held has an intact copy.
    let damaged: HashSet<PackId> = catalog
        .damaged_copies()?
        .into_values()
        .flatten()
        .map(|c| c.pack)
        .collect();
    let (mut dead, mut sparse) = (Vec::new(), Vec::new());
    for u in marks.pack_usage()? {
        if condemned.contains(&u.id) {
            continue;
        }
        let dead_bytes = u.length.saturating_sub(u.live_bytes);
        if u.live_blobs == 0 {
            dead.push(u.id);
        } else if damaged.contains(&u.id) || dead_bytes as f64 > ratio * u.length as f64 {
            sparse.push(u.id);
        }
    }
    Ok((dead, sparse))
}

/// Manifests whose forget record exists (a forget interrupted between its two writes).
fn delete_forgotten_manifests(repo: &Repository, catalog: &Catalog) -> Result<()> {
    let forgotten: HashSet<String> = catalog
        .forgotten(None)?
        .into_iter()
        .map(|(instance, id, _)| ForgetRecord::object_key(&instance, &id))
        .collect();
    for obj in repo.store().list(layout::POINTS).map_err(RepoError::from)? {
        let Some((instance, id)) = Manifest::parse_key(&obj.key) else {
            continue;
        };
        if forgotten.contains(&ForgetRecord::object_key(&instance, &id)) {
            repo.store().delete(&obj.key).map_err(RepoError::from)?;
        }
    }
    Ok(())
}
