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

mod plan;
mod stage;
mod stale;
mod swap;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::catalog::Catalog;
use crate::model::names::is_valid_instance_name;
use crate::model::{Layout, Manifest, ModelError, PointKind};
use crate::repo::Repository;

use super::backup::{backup, BackupRequest};
use super::{CancelToken, EngineError, Progress, Result, TreeReader};
use plan::{assign_links, capture, plan_units, DirMeta, Entry, Planner};
use stage::Stager;
pub use stale::remove_stale_stages;
use swap::{swap_all, Cleanup};

/// Deeper trees are refused (no path that deep could be opened anyway: PATH_MAX).
pub(crate) const MAX_DEPTH: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Into `target`, which must not exist or be an empty directory.
    New,
    /// Over the point's source paths (or over `target` for a single-directory point).
    InPlace,
}

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub instance: String,
    /// A point name or `latest`.
    pub point: String,
    /// `New`: required, absolute. `InPlace`: `None` restores over the point's source paths;
    /// `Some(dir)` over that directory instead (single-directory points only).
    pub target: Option<PathBuf>,
    /// Globs on paths relative to the point root; empty restores everything. A directory
    /// that matches brings everything under it. `*` does not cross `/`, `**` does.
    pub includes: Vec<String>,
    pub mode: RestoreMode,
    /// In place: also delete the original's entries that the point's backup excluded
    /// (rsync's `--delete-excluded`). By default they are left alone.
    pub delete_excluded: bool,
    /// Restore every intact file and skip the damaged ones (named in
    /// [`RestoreOutcome::skipped`]) instead of failing the whole restore.
    pub skip_damaged: bool,
}

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
    let scope = check_request(req)?;
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
        .map_err(|e| EngineError::Invalid(format!("cannot start worker threads: {e}")))?;

    progress.phase("reading trees");
    let reader = TreeReader::new(repo.clone(), catalog.clone());
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

// ---------------------------------------------------------------------------------------
// Request checks

/// Which paths are restored: `None` = all of them.
struct Scope(Option<GlobSet>);

impl Scope {
    fn matches(&self, rel: &Path) -> bool {
        self.0.as_ref().is_none_or(|g| g.is_match(rel))
    }
}

/// What the point's backup excluded, which an in-place restore leaves alone in the
/// original unless asked to delete it too. Globs match as in the backup: against paths
/// relative to each source, and an excluded directory keeps everything below it.
struct Protected {
    globs: Option<GlobSet>,
    /// Point paths start with the source's name (several sources): it is not matched.
    per_path: bool,
}

impl Protected {
    fn of(req: &RestoreRequest, m: &Manifest) -> Result<Protected> {
        let wanted =
            req.mode == RestoreMode::InPlace && !req.delete_excluded && !m.excludes.is_empty();
        Ok(Protected {
            globs: wanted
                .then(|| super::backup::build_excludes(&m.excludes))
                .transpose()?,
            per_path: m.layout == Layout::PerPath,
        })
    }

    /// Whether the original's entry at `prel` (relative to the point root) is kept.
    fn protects(&self, prel: &Path) -> bool {
        let Some(globs) = &self.globs else {
            return false;
        };
        let mut components = prel.components();
        if self.per_path {
            components.next();
        }
        components
            .as_path()
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| globs.is_match(a))
    }
}

fn check_request(req: &RestoreRequest) -> Result<Scope> {
    if !is_valid_instance_name(&req.instance) {
        return Err(EngineError::Invalid(format!(
            "instance name `{}` must be 1-255 of A-Z a-z 0-9 _ -",
            req.instance
        )));
    }
    match (&req.target, req.mode) {
        (None, RestoreMode::New) => {
            return Err(EngineError::Invalid(
                "a restore into a new location needs a target directory".into(),
            ))
        }
        (Some(t), _) => check_path(t, "target")?,
        (None, RestoreMode::InPlace) => {}
    }
    if req.includes.is_empty() {
        return Ok(Scope(None));
    }
    let mut set = GlobSetBuilder::new();
    for g in &req.includes {
        let pattern = g.trim_start_matches("./").trim_matches('/');
        if pattern.is_empty() {
            return Err(EngineError::Invalid(format!("include `{g}` is empty")));
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| EngineError::Invalid(format!("include glob `{g}`: {e}")))?;
        set.add(glob);
    }
    let set = set
        .build()
        .map_err(|e| EngineError::Invalid(format!("include globs: {e}")))?;
    Ok(Scope(Some(set)))
}

/// An absolute path with a last component and no `..`.
fn check_path(path: &Path, what: &str) -> Result<()> {
    if !path.is_absolute()
        || path.file_name().is_none()
        || path.components().any(|c| c == Component::ParentDir)
    {
        return Err(EngineError::Invalid(format!(
            "{what} {} must be an absolute path to a directory entry, without `..`",
            path.display()
        )));
    }
    Ok(())
}

/// One place a restore swaps something into.
struct Dest {
    path: PathBuf,
    /// `None`: the point's root tree is this directory. `Some(name)`: the root tree's
    /// entry of that name is this path ([`Layout::PerPath`] in place).
    root_entry: Option<Vec<u8>>,
}

fn destinations(req: &RestoreRequest, m: &Manifest) -> Result<Vec<Dest>> {
    let dests = match (req.mode, m.layout, &req.target) {
        (RestoreMode::New, _, Some(t)) | (RestoreMode::InPlace, Layout::Single, Some(t)) => {
            vec![Dest {
                path: t.clone(),
                root_entry: None,
            }]
        }
        (RestoreMode::InPlace, Layout::PerPath, Some(_)) => {
            return Err(EngineError::Invalid(format!(
                "point {} holds several sources: it can only be restored in place over them, \
                 or into a new location",
                m.name
            )))
        }
        (RestoreMode::InPlace, layout, None) => {
            let mut out = Vec::new();
            for p in &m.paths {
                let path = PathBuf::from(p);
                check_path(&path, "source path")?;
                let name = path.file_name().map(|n| n.as_bytes().to_vec());
                out.push(Dest {
                    path,
                    root_entry: if layout == Layout::Single { None } else { name },
                });
            }
            if out.is_empty() || (layout == Layout::Single && out.len() != 1) {
                return Err(ModelError::Manifest(format!(
                    "point {} lists {} source paths for its layout",
                    m.name,
                    out.len()
                ))
                .into());
            }
            out
        }
        (RestoreMode::New, _, None) => unreachable!("checked by check_request"),
    };
    for d in &dests {
        let parent = d.path.parent().unwrap_or(Path::new("/"));
        if !fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
            return Err(EngineError::Invalid(format!(
                "{} is not an existing directory",
                parent.display()
            )));
        }
    }
    Ok(dests)
}

/// A new target must not exist or be an empty directory; returns whether it exists.
fn check_new_target(target: &Path) -> Result<bool> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(EngineError::io("inspecting", target, e)),
        Ok(md) if md.is_dir() => {
            let mut rd = fs::read_dir(target).map_err(|e| EngineError::io("listing", target, e))?;
            if rd.next().is_none() {
                Ok(true)
            } else {
                Err(EngineError::Invalid(format!(
                    "target {} is not empty: restore into a new or empty directory, or in place",
                    target.display()
                )))
            }
        }
        Ok(_) => Err(EngineError::Invalid(format!(
            "target {} exists and is not a directory",
            target.display()
        ))),
    }
}
