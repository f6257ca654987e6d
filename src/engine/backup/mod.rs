//! Backup: walk the sources, read only what changed since the parent point, chunk, hash
//! and compress on every core, upload through the packer, then write the manifest.
//!
//! This file holds the request and the run's order; the parent-reuse walk is in `walk`,
//! chunking with hard-link slots in `chunk`, named byte streams in `stream`, the point's
//! name in `names`, the state every step shares in `run`, and the caller's last word
//! before the manifest is written in `before_commit`.
//!
//! Memory is bounded whatever the data size: each worker holds one chunk at a time, the
//! packer holds a bounded number of packs, and the index lives in the catalog.

mod before_commit;
mod chunk;
mod names;
mod pipeline;
mod run;
mod stream;
mod walk;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use crate::catalog::Catalog;
use crate::model::instance::{check_source_paths, check_stream_names};
use crate::model::manifest::{point_name, RootMeta, MANIFEST_VERSION, MANIFEST_WARNINGS};
use crate::model::names::{check_instance_name, is_valid_label};
use crate::model::{Layout, Manifest, ManifestId, PointKind, PointStats};
use crate::repo::Repository;

use super::fsmeta::{node_from_metadata, read_xattrs};
use super::{CancelToken, EngineError, InvalidRequest, Progress, Result};
use crate::sync::LockExt;
pub use before_commit::BeforeCommit;
pub(crate) use chunk::chunk_stream;
pub(crate) use names::write_manifest;
use run::Ctx;
use stream::read_stream;
pub use stream::{StreamFinish, StreamSource};
use walk::{backup_dir, backup_entry, present_chunks, store_tree};

/// What to back up.
#[derive(Debug)]
pub struct BackupRequest {
    pub instance: String,
    /// Absolute source paths, captured together as one point.
    pub paths: Vec<PathBuf>,
    /// Globs matched against each entry's path relative to its source (`*` crosses `/`).
    pub excludes: Vec<String>,
    pub kind: PointKind,
    pub label: Option<String>,
    /// The point's time (ns since the epoch, UTC); `None` for now. Injected by schedulers
    /// and tests.
    pub time_ns: Option<i64>,
    /// Named byte streams, taken after the paths in this order, each stored as a file at
    /// the top of the point (which then has the per-path layout).
    pub streams: Vec<StreamSource>,
    /// Run once all data is uploaded, before the manifest is sealed; its warnings are the
    /// point's.
    pub before_commit: Option<BeforeCommit>,
}

impl BackupRequest {
    pub fn new(instance: &str, paths: Vec<PathBuf>) -> BackupRequest {
        BackupRequest {
            instance: instance.to_string(),
            paths,
            excludes: Vec::new(),
            kind: PointKind::Manual,
            label: None,
            time_ns: None,
            streams: Vec::new(),
            before_commit: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub id: ManifestId,
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

pub(super) fn build_excludes(globs: &[String]) -> Result<GlobSet> {
    build_globs("exclude", globs)
}

/// A set of `what` globs as excludes match them: `*` crosses `/`, `\` escapes.
pub(crate) fn build_globs(what: &str, globs: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = GlobBuilder::new(g)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                EngineError::Invalid(InvalidRequest::BadPattern(format!(
                    "{what} glob `{g}`: {e}"
                )))
            })?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| EngineError::Invalid(InvalidRequest::BadPattern(format!("{what} globs: {e}"))))
}

/// Validates a request; returns the layout and each source's root-entry name.
fn check_request(req: &BackupRequest) -> Result<(Layout, Vec<Vec<u8>>)> {
    check_instance_name(&req.instance)?;
    if let Some(l) = &req.label {
        if !is_valid_label(l) {
            return Err(EngineError::Invalid(InvalidRequest::BadLabel(l.clone())));
        }
    }
    if !req.paths.is_empty() || req.streams.is_empty() {
        check_source_paths(&req.paths)
            .map_err(|e| EngineError::Invalid(InvalidRequest::BadPath(e)))?;
    }
    let mut names = Vec::new();
    for p in &req.paths {
        let md = fs::symlink_metadata(p).map_err(|e| EngineError::io("reading source", p, e))?;
        let name = p
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_else(|| b"root".to_vec());
        names.push(name);
        if req.paths.len() == 1 && md.is_dir() && req.streams.is_empty() {
            return Ok((Layout::Single, names));
        }
    }
    check_stream_names(req.streams.iter().map(|s| s.name.as_str()), &req.paths)
        .map_err(|e| EngineError::Invalid(InvalidRequest::BadStreamName(e)))?;
    Ok((Layout::PerPath, names))
}

/// Backs up `req.paths` as a new point of `req.instance`.
pub fn backup(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &BackupRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<BackupOutcome> {
    let (layout, root_names) = check_request(req)?;
    let excludes = build_excludes(&req.excludes)?;
    let root_meta = match layout {
        Layout::Single => Some(root_meta(&req.paths[0], progress)?),
        Layout::PerPath => None,
    };
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    let parent = catalog.newest_point(&req.instance)?;
    let parent_manifest = parent
        .as_ref()
        .map(|p| &p.manifest)
        .filter(|m| m.layout == layout && m.paths.len() == req.paths.len());
    let parent_root = parent_manifest.map(|m| m.root);
    // The parent's totals are a good estimate for an ETA; without a parent, count.
    let estimate = parent_manifest.map(|m| (m.stats.files + m.stats.dirs, m.stats.bytes));
    let ctx = Ctx::new(repo, catalog, excludes, progress, cancel);
    let pool = rayon::ThreadPoolBuilder::new()
        // Reading small files is latency-bound (cold metadata and data): more readers than
        // cores keep the disk busy while the CPU-bound part stays bounded by the cores.
        .num_threads((std::thread::available_parallelism().map_or(2, |n| n.get()) * 3).clamp(4, 24))
        .stack_size(16 << 20)
        .thread_name(|i| format!("cairn-backup-{i}"))
        .build()
        .map_err(EngineError::Threads)?;

    let scan_paths = req.paths.clone();
    std::thread::scope(|s| {
        match estimate {
            Some((files, bytes)) => progress.set_total(files, bytes),
            None => {
                s.spawn(|| scan_totals(&scan_paths, progress, cancel));
            }
        }
        progress.phase("backing up");
        // A point with streams takes its time before its root tree, whose stream files
        // are modified at that time.
        let (root, stream_time) = pool.install(|| -> Result<_> {
            let parent_tree = parent_root
                .map(|id| ctx.reader.tree(&id))
                .transpose()
                .ok()
                .flatten();
            match layout {
                Layout::Single => Ok((
                    backup_dir(&ctx, &req.paths[0], Path::new(""), parent_tree.as_deref())?,
                    None,
                )),
                Layout::PerPath => {
                    let nodes = req
                        .paths
                        .par_iter()
                        .zip(root_names.par_iter())
                        .map(|(path, name)| {
                            let parent_node = parent_tree.as_ref().and_then(|t| t.find(name));
                            let md = fs::symlink_metadata(path)
                                .map_err(|e| EngineError::io("reading source", path, e))?;
                            let node = node_from_metadata(name.clone(), &md);
                            let present =
                                present_chunks(&ctx, std::iter::once((&node, parent_node)))?;
                            backup_entry(&ctx, path, Path::new(""), node, parent_node, &present)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let mut nodes: Vec<_> = nodes.into_iter().flatten().collect();
                    let streams = req
                        .streams
                        .iter()
                        .map(|s| read_stream(&ctx, s))
                        .collect::<Result<Vec<_>>>()?;
                    let stream_time = (!streams.is_empty())
                        .then(|| req.time_ns.unwrap_or_else(crate::model::now_ns));
                    let time_ns = stream_time.unwrap_or_default();
                    nodes.extend(streams.into_iter().map(|s| s.into_node(time_ns)));
                    Ok((store_tree(&ctx, nodes)?, stream_time))
                }
            }
        })?;
        cancel.check()?;
        progress.phase("finishing uploads");
        let packer_stats = ctx.packer.flush().map(|_| ctx.packer.stats())?;
        if let Some(before_commit) = &req.before_commit {
            for warning in before_commit.run() {
                ctx.warn(warning);
            }
        }
        let warnings = std::mem::take(&mut *ctx.warnings.locked());
        let time_ns =
            stream_time.unwrap_or_else(|| req.time_ns.unwrap_or_else(crate::model::now_ns));
        let stats = PointStats {
            files: ctx.files.load(Ordering::Relaxed),
            dirs: ctx.dirs.load(Ordering::Relaxed),
            bytes: ctx.bytes.load(Ordering::Relaxed),
            new_bytes: packer_stats.new_bytes,
            stored_bytes: packer_stats.stored_bytes,
            files_read: ctx.files_read.load(Ordering::Relaxed),
            warnings: warnings.len() as u64,
        };
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            instance: req.instance.clone(),
            name: String::new(),
            // A safety point is stored as a manual point; its reserved label says what it is.
            kind: match req.kind {
                PointKind::Safety => PointKind::Manual,
                kind => kind,
            },
            time_ns,
            parent: parent.map(|p| p.id.to_hex()),
            root,
            layout,
            paths: req
                .paths
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            host: crate::model::hostname(),
            stats,
            excludes: req.excludes.clone(),
            root_meta,
            streams: req.streams.iter().map(|s| s.name.clone()).collect(),
            warnings: warnings.iter().take(MANIFEST_WARNINGS).cloned().collect(),
            copied_from: None,
        };
        let base = point_name(time_ns, req.kind, req.label.as_deref());
        let (id, manifest) = write_manifest(repo, catalog, manifest, &base)?;
        Ok(BackupOutcome {
            id,
            manifest,
            warnings,
        })
    })
}

/// The source directory's own metadata (a single-directory point's root).
fn root_meta(path: &Path, progress: &dyn Progress) -> Result<RootMeta> {
    let md = fs::symlink_metadata(path).map_err(|e| EngineError::io("reading source", path, e))?;
    let mut node = node_from_metadata(Vec::new(), &md);
    match read_xattrs(path) {
        Ok(x) => node.xattrs = x,
        Err(e) => progress.warn(&format!(
            "extended attributes of {} not saved: {e}",
            path.display()
        )),
    }
    Ok(RootMeta::of(&node))
}

/// Counts files and bytes in a side thread so progress can show a total and an ETA.
fn scan_totals(paths: &[PathBuf], progress: &dyn Progress, cancel: &CancelToken) {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if cancel.is_cancelled() {
            return;
        }
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        files += 1;
        if md.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if md.is_file() {
            bytes += md.size();
        }
    }
    progress.set_total(files, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_match_anywhere() {
        let g = build_excludes(&["*.log".into(), "cache".into()]).unwrap();
        assert!(g.is_match(Path::new("a/b/c.log")));
        assert!(g.is_match(Path::new("cache")));
        assert!(!g.is_match(Path::new("a/cache2")));
        assert!(build_excludes(&["[".into()]).is_err());
    }
}
