//! Check: a point compared with the live data (or any directory), and two points
//! compared with each other (`diff`). Both report the same [`CheckReport`]: every path
//! added, removed or changed, with the aspects that differ (type, size, content, mode,
//! owner, mtime, xattrs, link target), and the counts. Access and change times are never
//! compared; a symlink's mtime neither; directories compare mode, owner, mtime and
//! xattrs.
//!
//! Files: `request` (what is asked, and its checks), `compare` (the pure comparison of
//! two nodes, and the merge of sorted listings), `live` (the walk beside a directory and
//! the content read), `diff` (point against point, by tree ids), `throttle` (the
//! bandwidth cap), `tally` (what the threads found so far) and `report` (the outcome).

mod compare;
mod diff;
mod live;
mod report;
mod request;
mod tally;
mod throttle;

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::catalog::{Catalog, PointRecord};
use crate::engine::backup::build_globs;
use crate::engine::{CancelToken, EngineError, InvalidRequest, Progress, Result, TreeReader};
use crate::model::Layout;
use crate::repo::Repository;

pub use compare::metadata_aspects;
pub use report::{Aspect, CheckReport, Counts, DiffKind, Difference};
pub use request::{CheckRequest, DiffRequest, MAX_THREADS};

fn find(catalog: &Catalog, instance: &str, point: &str) -> Result<PointRecord> {
    catalog
        .find_point(instance, point)?
        .ok_or_else(|| EngineError::NoSuchPoint {
            instance: instance.to_string(),
            point: point.to_string(),
        })
}

/// Compares a point with the live side (docs/CONTROL.md, "Check").
pub fn check(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &CheckRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<CheckReport> {
    let threads = req.thread_count()?;
    let ignores = req.ignore_set()?;
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    let m = find(catalog, &req.instance, &req.point)?.manifest;
    let excludes = build_globs("exclude", &m.excludes)?;
    let against: Vec<PathBuf> = match &req.against {
        Some(p) => vec![p.clone()],
        None if m.paths.is_empty() => {
            return Err(EngineError::Invalid(InvalidRequest::Incomplete(
                "the point has no source paths (it holds streams only): give --against DIR",
            )))
        }
        None => m.paths.iter().map(PathBuf::from).collect(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(64 << 20)
        .thread_name(|i| format!("cairn-check-{i}"))
        .build()
        .map_err(EngineError::Threads)?;
    let walk = live::LiveWalk {
        reader: &TreeReader::new(repo.clone(), catalog.clone()).with_repo_cache(),
        ignores,
        excludes,
        per_path: m.layout == Layout::PerPath,
        checksum: req.checksum,
        throttle: req.bandwidth_mb.and_then(throttle::Throttle::new),
        cancel,
        progress,
        tally: tally::Tally::default(),
    };
    progress.phase("comparing");
    let start = Instant::now();
    pool.install(|| match (m.layout, &req.against) {
        (Layout::Single, _) => walk.root(m.root_meta.as_ref(), &m.root, &against[0]),
        (Layout::PerPath, Some(dir)) => walk.root(None, &m.root, dir),
        (Layout::PerPath, None) => {
            let mut sources: Vec<(Vec<u8>, PathBuf)> = against
                .iter()
                .filter_map(|p| Some((p.file_name()?.as_bytes().to_vec(), p.clone())))
                .collect();
            sources.sort();
            walk.sources(&m.root, &sources)
        }
    })?;
    cancel.check()?;
    let mut report = walk.tally.into_report();
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    report.point = m.name;
    report.against = against
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    Ok(report)
}

/// Compares two points of one instance, reading only the trees that differ.
pub fn diff(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &DiffRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<CheckReport> {
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    let a = find(catalog, &req.instance, &req.point_a)?.manifest;
    let b = find(catalog, &req.instance, &req.point_b)?.manifest;
    let walk = diff::PointDiff {
        reader: &TreeReader::new(repo.clone(), catalog.clone()).with_repo_cache(),
        cancel,
        tally: tally::Tally::default(),
    };
    progress.phase("comparing");
    let start = Instant::now();
    if let (Some(ma), Some(mb)) = (&a.root_meta, &b.root_meta) {
        walk.tally
            .compared("", metadata_aspects(&ma.to_node(), &mb.to_node()));
    }
    walk.trees(&a.root, &b.root, "")?;
    let mut report = walk.tally.into_report();
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    report.point = a.name;
    report.other = Some(b.name);
    Ok(report)
}
