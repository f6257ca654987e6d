//! Backup: walk the sources, read only what changed since the parent point, chunk, hash
//! and compress on every core, upload through the packer, then write the manifest.
//!
//! Memory is bounded whatever the data size: each worker holds one chunk at a time, the
//! packer holds a bounded number of packs, and the index lives in the catalog.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use crate::catalog::Catalog;
use crate::model::instance::check_source_paths;
use crate::model::manifest::{point_name, point_name_candidate, RootMeta, MANIFEST_VERSION};
use crate::model::names::{is_valid_instance_name, is_valid_label};
use crate::model::{
    Extent, Layout, Manifest, ManifestId, Node, NodeKind, PointKind, PointStats, Tree,
};
use crate::repo::{BlobId, BlobIndex, BlobKind, Packer, RepoError, Repository};
use crate::store::StoreError;

use super::fsmeta::{data_ranges, node_from_metadata, read_xattrs};
use super::{CancelToken, EngineError, Progress, Result, TreeReader};
use crate::sync::LockExt;

/// What to back up.
#[derive(Debug, Clone)]
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
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub id: ManifestId,
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

/// The content of a hard-link group, filled by the first member read.
type LinkSlot = Arc<Mutex<Option<Vec<Extent>>>>;

struct Ctx<'a> {
    repo: &'a Repository,
    catalog: &'a Catalog,
    packer: Packer,
    reader: TreeReader,
    excludes: GlobSet,
    progress: &'a dyn Progress,
    cancel: &'a CancelToken,
    warnings: Mutex<Vec<String>>,
    /// Content of hard-linked files already read in this backup, by (dev, inode).
    links: Mutex<HashMap<(u64, u64), LinkSlot>>,
    files: AtomicU64,
    dirs: AtomicU64,
    bytes: AtomicU64,
    files_read: AtomicU64,
}

impl Ctx<'_> {
    fn warn(&self, message: String) {
        tracing::debug!("{message}");
        self.progress.warn(&message);
        self.warnings.locked().push(message);
    }
}

pub(super) fn build_excludes(globs: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = GlobBuilder::new(g)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| EngineError::Invalid(format!("exclude glob `{g}`: {e}")))?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| EngineError::Invalid(format!("exclude globs: {e}")))
}

/// Validates a request; returns the layout and each source's root-entry name.
fn check_request(req: &BackupRequest) -> Result<(Layout, Vec<Vec<u8>>)> {
    if !is_valid_instance_name(&req.instance) {
        return Err(EngineError::Invalid(format!(
            "instance name `{}` must be 1-255 of A-Z a-z 0-9 _ -",
            req.instance
        )));
    }
    if let Some(l) = &req.label {
        if !is_valid_label(l) {
            return Err(EngineError::Invalid(format!(
                "point label `{l}` must be 1-64 of A-Z a-z 0-9 _ -, not `auto` or \
                 `before-restore` (reserved, also with a `-N` suffix)"
            )));
        }
    }
    check_source_paths(&req.paths).map_err(EngineError::Invalid)?;
    let mut names = Vec::new();
    for p in &req.paths {
        let md = fs::symlink_metadata(p).map_err(|e| EngineError::io("reading source", p, e))?;
        let name = p
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_else(|| b"root".to_vec());
        names.push(name);
        if req.paths.len() == 1 && md.is_dir() {
            return Ok((Layout::Single, names));
        }
    }
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
    let index: Arc<dyn BlobIndex> = catalog.clone();
    let ctx = Ctx {
        repo,
        catalog,
        packer: Packer::new(repo.clone(), index),
        reader: TreeReader::new(repo.clone(), catalog.clone()),
        excludes,
        progress,
        cancel,
        warnings: Mutex::new(Vec::new()),
        links: Mutex::new(HashMap::new()),
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        files_read: AtomicU64::new(0),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        // Reading small files is latency-bound (cold metadata and data): more readers than
        // cores keep the disk busy while the CPU-bound part stays bounded by the cores.
        .num_threads((std::thread::available_parallelism().map_or(2, |n| n.get()) * 3).clamp(4, 24))
        .stack_size(16 << 20)
        .thread_name(|i| format!("cairn-backup-{i}"))
        .build()
        .map_err(|e| EngineError::Invalid(format!("cannot start worker threads: {e}")))?;

    let scan_paths = req.paths.clone();
    std::thread::scope(|s| {
        match estimate {
            Some((files, bytes)) => progress.set_total(files, bytes),
            None => {
                s.spawn(|| scan_totals(&scan_paths, progress, cancel));
            }
        }
        progress.phase("backing up");
        let root = pool.install(|| -> Result<_> {
            let parent_tree = parent_root
                .map(|id| ctx.reader.tree(&id))
                .transpose()
                .ok()
                .flatten();
            match layout {
                Layout::Single => {
                    backup_dir(&ctx, &req.paths[0], Path::new(""), parent_tree.as_deref())
                }
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
                    store_tree(&ctx, nodes.into_iter().flatten().collect())
                }
            }
        })?;
        cancel.check()?;
        progress.phase("finishing uploads");
        let packer_stats = ctx.packer.flush().map(|_| ctx.packer.stats())?;
        let time_ns = req.time_ns.unwrap_or_else(crate::model::now_ns);
        let stats = PointStats {
            files: ctx.files.load(Ordering::Relaxed),
            dirs: ctx.dirs.load(Ordering::Relaxed),
            bytes: ctx.bytes.load(Ordering::Relaxed),
            new_bytes: packer_stats.new_bytes,
            stored_bytes: packer_stats.stored_bytes,
            files_read: ctx.files_read.load(Ordering::Relaxed),
            warnings: ctx.warnings.lock().map(|w| w.len() as u64).unwrap_or(0),
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
        };
        let base = point_name(time_ns, req.kind, req.label.as_deref());
        write_manifest(&ctx, manifest, &base)
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

/// Most names a point tries before giving up (`NAME`, `NAME-2`, ... `NAME-1000`).
const MAX_NAME_CANDIDATES: u32 = 1000;

/// Names the point and writes its manifest. The name is the point's time and label; one
/// that another point of the instance already has, here or on another machine, gets the
/// first free suffix `-2`, `-3`, ...: each candidate is claimed with a conditional create
/// of its claim object (FORMAT.md, section 9) before the manifest that bears it is written.
fn write_manifest(ctx: &Ctx<'_>, mut manifest: Manifest, base: &str) -> Result<BackupOutcome> {
    let instance = manifest.instance.clone();
    let known: HashSet<String> = ctx
        .catalog
        .points(Some(&instance))?
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    let mut claimed = None;
    for n in 1..=MAX_NAME_CANDIDATES {
        manifest.name = point_name_candidate(base, n);
        if known.contains(&manifest.name) {
            continue;
        }
        let (id, json) = manifest.encode(ctx.repo.key());
        if claim_name(ctx.repo, &instance, &manifest.name, &id)? {
            claimed = Some((id, json));
            break;
        }
    }
    let Some((id, json)) = claimed else {
        return Err(EngineError::Invalid(format!(
            "no free point name: {base} and {MAX_NAME_CANDIDATES} suffixed variants are taken"
        )));
    };
    ctx.repo
        .put_sealed(&Manifest::object_key(&instance, &id), json)?;
    ctx.catalog.insert_point(&id, &manifest)?;
    let warnings = std::mem::take(&mut *ctx.warnings.locked());
    Ok(BackupOutcome {
        id,
        manifest,
        warnings,
    })
}

/// Claims `name` in `instance` for the manifest `id`; `false` when another point has it. A
/// claim already holding `id` is this writer's own (a create whose reply was lost).
fn claim_name(repo: &Repository, instance: &str, name: &str, id: &ManifestId) -> Result<bool> {
    let key = Manifest::name_claim_key(repo.key(), instance, name);
    let ours = id.to_hex();
    match repo.store().put_new(&key, ours.clone().into_bytes().into()) {
        Ok(()) => Ok(true),
        Err(StoreError::AlreadyExists(_)) => {
            let holder = repo.store().get(&key).map_err(RepoError::from)?;
            Ok(holder.as_ref() == ours.as_bytes())
        }
        Err(e) => Err(RepoError::from(e).into()),
    }
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

fn store_tree(ctx: &Ctx<'_>, nodes: Vec<Node>) -> Result<BlobId> {
    let mut tree = Tree { nodes };
    tree.sort();
    let (id, _) = ctx.packer.add(BlobKind::Tree, &tree.encode())?;
    Ok(id)
}

fn backup_dir(ctx: &Ctx<'_>, path: &Path, rel: &Path, parent: Option<&Tree>) -> Result<BlobId> {
    ctx.cancel.check()?;
    if let Some(p) = parent {
        ctx.reader.prefetch_subtrees(p);
    }
    let entries = match fs::read_dir(path) {
        Ok(rd) => rd
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| EngineError::io("listing", path, e))?,
        Err(e) if rel != Path::new("") => {
            ctx.warn(format!(
                "skipped unreadable directory {}: {e}",
                path.display()
            ));
            Vec::new()
        }
        Err(e) => return Err(EngineError::io("listing", path, e)),
    };
    // Metadata first (relative to the open directory), then one catalog query for the
    // chunks of every file that looks unchanged, then the entries themselves.
    let stated: Vec<(PathBuf, PathBuf, Node, Option<&Node>)> = entries
        .par_iter()
        .filter_map(|entry| {
            let child_rel = rel.join(entry.file_name());
            if ctx.excludes.is_match(&child_rel) {
                return None;
            }
            let child = entry.path();
            match entry.metadata() {
                Ok(md) => {
                    let node = node_from_metadata(entry.file_name().as_bytes().to_vec(), &md);
                    let parent_node = parent.and_then(|t| t.find(&node.name));
                    Some((child, child_rel, node, parent_node))
                }
                Err(e) => {
                    ctx.warn(format!("skipped {}: {e}", child.display()));
                    None
                }
            }
        })
        .collect();
    let present = present_chunks(ctx, stated.iter().map(|(_, _, n, p)| (n, *p)))?;
    let nodes = stated
        .into_par_iter()
        .map(|(child, child_rel, node, parent_node)| {
            backup_entry(ctx, &child, &child_rel, node, parent_node, &present)
        })
        .collect::<Result<Vec<Option<Node>>>>()?;
    store_tree(ctx, nodes.into_iter().flatten().collect())
}

fn backup_entry(
    ctx: &Ctx<'_>,
    path: &Path,
    rel: &Path,
    mut node: Node,
    parent: Option<&Node>,
    present: &HashSet<BlobId>,
) -> Result<Option<Node>> {
    match parent.filter(|p| same_inode_state(&node, p)) {
        // Setting or removing an extended attribute changes the ctime: these are the
        // parent's.
        Some(p) => node.xattrs = p.xattrs.clone(),
        None => match read_xattrs(path) {
            Ok(x) => node.xattrs = x,
            Err(e) => ctx.warn(format!(
                "extended attributes of {} not saved: {e}",
                path.display()
            )),
        },
    }
    match node.kind {
        NodeKind::Dir => {
            let parent_tree = match parent.and_then(|p| p.subtree) {
                Some(id) => ctx.reader.tree(&id).ok(),
                None => None,
            };
            node.subtree = Some(backup_dir(ctx, path, rel, parent_tree.as_deref())?);
            ctx.dirs.fetch_add(1, Ordering::Relaxed);
        }
        NodeKind::Symlink => {
            node.target = fs::read_link(path)
                .map_err(|e| EngineError::io("reading link", path, e))?
                .as_os_str()
                .as_bytes()
                .to_vec();
        }
        NodeKind::File => {
            match file_content(ctx, path, &node, parent, present) {
                Ok(content) => {
                    node.size = content.iter().map(Extent::len).sum();
                    node.content = content;
                }
                Err(EngineError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    ctx.warn(format!(
                        "skipped {}: it vanished during the backup",
                        path.display()
                    ));
                    return Ok(None);
                }
                Err(e @ EngineError::Io { .. }) => {
                    ctx.warn(format!("skipped {}: {e}", path.display()));
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
            ctx.files.fetch_add(1, Ordering::Relaxed);
            ctx.bytes.fetch_add(node.size, Ordering::Relaxed);
        }
        NodeKind::Socket => {
            ctx.warn(format!(
                "{} is a socket: recorded, but it is not restored",
                path.display()
            ));
        }
        NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {}
    }
    ctx.progress.file_done(path, node.size);
    Ok(Some(node))
}

/// Whether an entry is the same inode, untouched (no content, metadata or extended
/// attribute change moves the ctime back), as the parent point's.
fn same_inode_state(node: &Node, p: &Node) -> bool {
    p.kind == node.kind && p.inode == node.inode && p.ctime_ns == node.ctime_ns
}

/// The parent point's copy of this file, if it can be reused without reading the file.
fn reusable<'p>(node: &Node, parent: Option<&'p Node>) -> Option<&'p Node> {
    parent.filter(|p| {
        node.kind == NodeKind::File
            && same_inode_state(node, p)
            && p.size == node.size
            && p.mtime_ns == node.mtime_ns
    })
}

/// Which chunks of the reusable files among `entries` (node, parent's node) the
/// repository still holds where a writer may use them, in one catalog query.
fn present_chunks<'n>(
    ctx: &Ctx<'_>,
    entries: impl Iterator<Item = (&'n Node, Option<&'n Node>)>,
) -> Result<HashSet<BlobId>> {
    let ids: Vec<BlobId> = entries
        .filter_map(|(node, parent)| reusable(node, parent))
        .flat_map(|p| p.content.iter())
        .filter_map(|e| match e {
            Extent::Data { id, .. } => Some(*id),
            Extent::Hole { .. } => None,
        })
        .collect();
    Ok(ctx.catalog.present_for_dedup(&ids)?)
}

/// The parent point's content for this file when it is unchanged and every chunk of it
/// is `present` (else, say when a prune condemned its pack, the file is read again).
fn unchanged(node: &Node, parent: Option<&Node>, present: &HashSet<BlobId>) -> Option<Vec<Extent>> {
    let p = reusable(node, parent)?;
    p.content
        .iter()
        .all(|e| match e {
            Extent::Data { id, .. } => present.contains(id),
            Extent::Hole { .. } => true,
        })
        .then(|| p.content.clone())
}

fn file_content(
    ctx: &Ctx<'_>,
    path: &Path,
    node: &Node,
    parent: Option<&Node>,
    present: &HashSet<BlobId>,
) -> Result<Vec<Extent>> {
    if let Some(content) = unchanged(node, parent, present) {
        return Ok(content);
    }
    if !node.is_hardlinked() {
        let content = read_file(ctx, path, node)?;
        ctx.files_read.fetch_add(1, Ordering::Relaxed);
        return Ok(content);
    }
    // One reader per hard-link group: the others wait for its extents.
    let slot = ctx
        .links
        .locked()
        .entry((node.dev, node.inode))
        .or_default()
        .clone();
    let mut slot = slot.locked();
    if let Some(content) = &*slot {
        return Ok(content.clone());
    }
    let content = read_file(ctx, path, node)?;
    ctx.files_read.fetch_add(1, Ordering::Relaxed);
    *slot = Some(content.clone());
    Ok(content)
}

/// Ranges up to this size are read whole into a reused buffer and chunked in memory; a
/// streaming chunker per file would allocate (and zero) a max-chunk buffer every time.
const SMALL_RANGE: u64 = 1 << 20;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn chunk_small(
    ctx: &Ctx<'_>,
    mut source: impl Read,
    extents: &mut Vec<Extent>,
    io: impl Fn(std::io::Error) -> EngineError,
) -> Result<u64> {
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        source.read_to_end(&mut buf).map_err(io)?;
        let c = ctx.repo.config().chunker;
        let chunks: Vec<(usize, usize)> = if buf.len() <= c.min_size as usize {
            vec![(0, buf.len())]
        } else {
            fastcdc::v2020::FastCDC::new(&buf, c.min_size, c.avg_size, c.max_size)
                .map(|ch| (ch.offset, ch.length))
                .collect()
        };
        for (offset, length) in chunks {
            if length == 0 {
                continue;
            }
            let (id, _) = ctx
                .packer
                .add(BlobKind::Data, &buf[offset..offset + length])?;
            extents.push(Extent::Data {
                id,
                len: length as u32,
            });
        }
        Ok(buf.len() as u64)
    })
}

fn chunk_stream(
    ctx: &Ctx<'_>,
    source: impl Read,
    extents: &mut Vec<Extent>,
    io: impl Fn(std::io::Error) -> EngineError,
) -> Result<u64> {
    let c = ctx.repo.config().chunker;
    let mut read = 0u64;
    for chunk in fastcdc::v2020::StreamCDC::new(source, c.min_size, c.avg_size, c.max_size) {
        ctx.cancel.check()?;
        let chunk = chunk.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(e) => io(e),
            other => io(std::io::Error::other(other.to_string())),
        })?;
        let (id, _) = ctx.packer.add(BlobKind::Data, &chunk.data)?;
        read += chunk.length as u64;
        extents.push(Extent::Data {
            id,
            len: chunk.length as u32,
        });
    }
    Ok(read)
}

fn read_file(ctx: &Ctx<'_>, path: &Path, node: &Node) -> Result<Vec<Extent>> {
    let io = |e| EngineError::io("reading", path, e);
    let open = |flags| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
    };
    // O_NOATIME keeps the source's access times; it needs ownership (or root).
    let mut file = match open(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(libc::O_NOFOLLOW | libc::O_NOCTTY),
        other => other,
    }
    .map_err(io)?;
    let size = node.size;
    let sparse = file
        .metadata()
        .map(|m| m.blocks() * 512 < size)
        .unwrap_or(false);
    let ranges = if sparse {
        data_ranges(&file, size)
    } else {
        vec![(0, size)]
    };
    let mut extents = Vec::new();
    let mut pos = 0u64;
    for (start, end) in ranges {
        if start > pos {
            extents.push(Extent::Hole { len: start - pos });
        }
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let limited = (&mut file).take(end - start);
        let read = if end - start <= SMALL_RANGE {
            chunk_small(ctx, limited, &mut extents, io)?
        } else {
            chunk_stream(ctx, limited, &mut extents, io)?
        };
        pos = start + read;
        if read < end - start {
            ctx.warn(format!("{} shrank while it was read", path.display()));
            break;
        }
    }
    if pos < size && sparse {
        extents.push(Extent::Hole { len: size - pos });
    }
    Ok(extents)
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
