//! Restore: a point's files back onto a filesystem, into a new directory or over the
//! original paths.
//!
//! Nothing is ever written at the destination itself. A restore builds a hidden *stage*
//! next to each destination (same parent, so same filesystem), writes everything there
//! and syncs that filesystem, and only then swaps it in with one rename: `rename(2)` for a new
//! target, `renameat2(RENAME_EXCHANGE)` over an existing one. Any failure before the swap
//! (I/O, full disk, store, cancel) removes the stage and leaves the destination as it was.
//!
//! Phases: plan (walk the point's trees, and for an in-place restore the original, to
//! decide what each staged name becomes), stage (directories, file contents on every
//! core, then hard links, then directory metadata in post-order so directory times
//! survive), swap, clean up. An in-place restore first takes a safety point of the
//! current state, and hard-links unchanged files (same size, times, owner, mode, xattrs
//! and content hashes) from the original instead of downloading them.
//!
//! Names from a repository are untrusted. Trees are validated when decoded and names are
//! checked again here; every entry is made with an exclusive create (`O_EXCL`, `mkdir`,
//! `symlink`, `mknod` and `link` all fail on an existing name) inside directories this
//! restore created itself, and no symlink is ever followed.
//!
//! Files: `request` (the request and its checks), `unit` (the plan as data), `plan`,
//! `stage`, `swap`, `stale` (stages left by restores that died); this file runs the phases.

mod plan;
mod request;
mod stage;
mod stale;
mod swap;
mod unit;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::model::PointKind;
use crate::repo::{CorrectedPack, Repository};

use super::backup::{backup, BackupRequest};
use super::repair::holding_mark;
use super::{CancelToken, EngineError, Progress, Result, TreeReader};
use plan::{assign_links, capture, plan_units, Planner};
pub(crate) use request::{check_new_target, check_path, include_globs, MAX_DEPTH};
use request::{check_request, destinations, Protected};
pub use request::{RestoreMode, RestoreRequest};
use stage::Stager;
pub use stale::remove_stale_stages;
pub(crate) use stale::stage_path;
use swap::{swap_all, Cleanup};
use unit::{DirMeta, Entry};

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreOutcome {
    /// The restored point's name (`latest` resolved).
    pub point: String,
    /// Non-directory entries restored (files, symlinks, FIFOs, devices).
    pub files: u64,
    /// Logical bytes of the regular files restored.
    pub bytes: u64,
    /// Regular files whose content was written (the rest were hard links: to an unchanged
    /// original, or to another member of their hard-link group).
    pub written: u64,
    /// Non-directory entries of the original that the point lacks, now gone.
    pub removed: u64,
    /// The point taken of the current state before an in-place restore.
    pub safety_point: Option<String>,
    /// With `skip_damaged`: the destination paths of the damaged files and directories
    /// that were not restored, sorted (an in-place restore leaves their originals).
    pub skipped: Vec<String>,
    /// Packs this restore found damaged and read corrected from their parity
    /// (repositories with `ecc`), with the blobs it read out of them.
    pub corrected: Vec<CorrectedPack>,
    pub warnings: Vec<String>,
}

/// Restores a point. See the module documentation for the guarantees.
pub fn restore(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &RestoreRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<RestoreOutcome> {
    restore_point(repo, catalog, req, progress, cancel).map_err(|e| {
        if !e.is_damage() {
            return e;
        }
        // A point `repair` marked damaged: the error names what the point lacks.
        let mark = catalog
            .find_point(&req.instance, &req.point)
            .ok()
            .flatten()
            .and_then(|p| {
                holding_mark(repo, catalog, &req.instance, &p.id)
                    .ok()
                    .flatten()
            });
        match mark {
            Some(mark) => EngineError::MarkedDamaged {
                point: format!("{}/{}", mark.instance, mark.point),
                paths: mark.paths.join(", "),
                source: Box::new(e),
            },
            None => e,
        }
    })
}

fn restore_point(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &RestoreRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<RestoreOutcome> {
    let scope = check_request(req)?;
    // Counts what this restore's reads correct from parity, and only those.
    let repo = &repo.with_own_corrections();
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    let point = catalog
        .find_point(&req.instance, &req.point)?
        .ok_or_else(|| EngineError::NoSuchPoint {
            instance: req.instance.clone(),
            point: req.point.clone(),
        })?;
    let manifest = point.manifest;
    let protected = Protected::of(req, &manifest)?;
    let dests = destinations(req, &manifest)?;
    let mut outcome = RestoreOutcome {
        point: manifest.name.clone(),
        ..RestoreOutcome::default()
    };
    // Stages of restores killed before they could clean up: this restore's directories
    // are where they would be.
    for dir in parents(dests.iter().map(|d| d.path.as_path())) {
        for line in remove_stale_stages(&dir) {
            progress.warn(&line);
            outcome.warnings.push(line);
        }
    }
    let new_target_exists = match req.mode {
        RestoreMode::New => check_new_target(&dests[0].path)?,
        RestoreMode::InPlace => false,
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads((threads * 2).clamp(4, 16))
        .stack_size(64 << 20)
        .thread_name(|i| format!("cairn-restore-{i}"))
        .build()
        .map_err(EngineError::Threads)?;

    progress.phase("reading trees");
    let reader = TreeReader::new(repo.clone(), catalog.clone()).with_repo_cache();
    let planner = Planner {
        reader: &reader,
        scope: &scope,
        protected: &protected,
        cancel,
        removed: AtomicU64::new(0),
        skip_damaged: req.skip_damaged,
        skipped: Default::default(),
        skipped_paths: Default::default(),
    };
    let mut units = pool.install(|| plan_units(&planner, req, &manifest, &dests))?;
    if new_target_exists {
        // The empty directory it replaces keeps its owner, mode and xattrs; it takes the
        // source directory's modification time when the point recorded it.
        if let Some(Entry::Dir(d)) = &mut units[0].entry {
            let mut kept = capture(&dests[0].path)?;
            if let Some(meta) = &manifest.root_meta {
                kept.mtime_ns = meta.mtime_ns;
            }
            d.meta = DirMeta::Existing(kept);
        }
    }
    // A single-directory point records its root's metadata: a root this restore creates,
    // or replaces as a whole, gets it.
    if let (Some(meta), Some(Entry::Dir(d))) = (
        &manifest.root_meta,
        units.first_mut().and_then(|u| u.entry.as_mut()),
    ) {
        let whole_in_place = req.mode == RestoreMode::InPlace && scope.0.is_none();
        if whole_in_place || matches!(d.meta, DirMeta::Fresh) {
            d.meta = DirMeta::Existing(Box::new(meta.to_node()));
        }
    }
    // The plan only read the original; the safety point captures it before any change.
    if req.mode == RestoreMode::InPlace {
        let existing: Vec<PathBuf> = dests
            .iter()
            .filter(|d| fs::symlink_metadata(&d.path).is_ok())
            .map(|d| d.path.clone())
            .collect();
        if !existing.is_empty() {
            progress.phase("taking a safety point");
            let safety = BackupRequest {
                instance: req.instance.clone(),
                paths: existing,
                excludes: Vec::new(),
                kind: PointKind::Safety,
                label: None,
                time_ns: None,
                streams: Vec::new(),
                before_commit: None,
            };
            let out = backup(repo, catalog, &safety, &SafetyProgress(progress), cancel)?;
            outcome.safety_point = Some(out.manifest.name);
            outcome.warnings.extend(
                out.warnings
                    .into_iter()
                    .map(|w| format!("safety point: {w}")),
            );
        }
    }

    let (files, bytes) = assign_links(&mut units);
    progress.set_total(files, bytes);

    let stager = Stager::new(&reader, progress, cancel, req.skip_damaged);
    let mut cleanup = Cleanup(units.iter().map(|u| u.stage.clone()).collect());
    progress.phase("staging");
    pool.install(|| stager.stage_all(&units))?;
    cancel.check()?;

    progress.phase("swapping");
    swap_all(&units, &mut cleanup)?;
    progress.phase("cleaning up");
    outcome.warnings.extend(cleanup.remove_all());

    outcome.files = stager.files.load(Ordering::Relaxed);
    outcome.bytes = stager.bytes.load(Ordering::Relaxed);
    outcome.written = stager.written.load(Ordering::Relaxed);
    outcome.removed = planner.removed.load(Ordering::Relaxed);
    let mut skipped = planner
        .skipped_paths
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    skipped.extend(
        stager
            .skipped
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
    );
    outcome.skipped = skipped.iter().map(|p| p.display().to_string()).collect();
    outcome.skipped.sort();
    outcome.corrected = repo.corrections();
    for c in &outcome.corrected {
        progress.warn(&format!("corrected {}", c.describe()));
    }
    outcome.warnings.extend(
        stager
            .warnings
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
    );
    Ok(outcome)
}

/// The directories stages of `dests` live in, each once.
fn parents<'p>(dests: impl Iterator<Item = &'p Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = dests
        .map(|d| d.parent().unwrap_or(Path::new("/")).to_path_buf())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Where the stages of a restore of `instance`/`point` (into `target`, or in place) are:
/// for a daemon that finds the restore interrupted and removes what it left
/// ([`remove_stale_stages`]).
pub fn stage_dirs(
    catalog: &Catalog,
    instance: &str,
    point: &str,
    target: Option<&Path>,
) -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = match target {
        Some(t) => vec![t.to_path_buf()],
        None => catalog
            .find_point(instance, point)
            .ok()
            .flatten()
            .map(|p| p.manifest.paths.iter().map(PathBuf::from).collect())
            .unwrap_or_default(),
    };
    parents(paths.iter().map(PathBuf::as_path))
}

/// Forwards only the safety backup's warnings: its phases and counts are not ours.
struct SafetyProgress<'a>(&'a dyn Progress);

impl Progress for SafetyProgress<'_> {
    fn warn(&self, message: &str) {
        self.0.warn(&format!("safety point: {message}"));
    }
}
