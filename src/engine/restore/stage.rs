//! Staging: writing the plan into the hidden stage directories, in three passes:
//! contents (on every core), hard links, then directory metadata in post-order.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::engine::content::extent_mismatch;
use crate::engine::fsmeta::{apply_file_metadata, apply_metadata, make_special, read_xattrs};
use crate::engine::pack_reads::{coalesce, Wanted, MAX_GAP, MAX_STREAMED_RANGE};
use crate::engine::{CancelToken, EngineError, Progress, Result, TreeReader};
use crate::model::{Extent, ModelError, Node, NodeKind};
use crate::repo::{BlobId, BlobKind, RepoError};

use super::unit::{join, DirMeta, Entry, Leaf, PlanDir, Unit};
use crate::sync::LockExt;

mod skip;

/// Writes units' plans into their stages; counts what it restored.
pub(super) struct Stager<'a> {
    reader: &'a TreeReader,
    progress: &'a dyn Progress,
    cancel: &'a CancelToken,
    pub(super) files: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) written: AtomicU64,
    /// Original inodes already linked into a stage (each may stand for one file only).
    claimed: Mutex<HashSet<(u64, u64)>>,
    pub(super) warnings: Mutex<Vec<String>>,
    /// Skip damaged files (see [`Stager::skip`]) instead of failing.
    skip_damaged: bool,
    /// Destination paths of the files skipped as damaged.
    pub(super) skipped: Mutex<Vec<PathBuf>>,
    /// Their stage paths (later members of their hard-link groups are skipped too).
    skipped_stage: Mutex<HashSet<PathBuf>>,
}

fn meta_err(path: &Path) -> impl FnOnce(io::Error) -> EngineError + '_ {
    move |e| EngineError::io("setting metadata of", path, e)
}

impl<'a> Stager<'a> {
    pub(super) fn new(
        reader: &'a TreeReader,
        progress: &'a dyn Progress,
        cancel: &'a CancelToken,
        skip_damaged: bool,
    ) -> Stager<'a> {
        Stager {
            skip_damaged,
            skipped: Mutex::new(Vec::new()),
            skipped_stage: Mutex::new(HashSet::new()),
            reader,
            progress,
            cancel,
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            written: AtomicU64::new(0),
            claimed: Mutex::new(HashSet::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.progress.warn(&message);
        self.warnings.locked().push(message);
    }

    fn done(&self, unit: &Unit, rel: &Path, node: &Node) {
        self.files.fetch_add(1, Ordering::Relaxed);
        if node.kind == NodeKind::File {
            self.bytes.fetch_add(node.size, Ordering::Relaxed);
        }
        self.progress.file_done(&join(&unit.dest, rel), node.size);
    }

    pub(super) fn stage_all(&self, units: &[Unit]) -> Result<()> {
        let staged = || {
            units
                .iter()
                .filter_map(|u| u.entry.as_ref().map(|e| (u, e)))
        };
        let jobs = Mutex::new(Vec::new());
        for (u, e) in staged() {
            self.create(u, e, &jobs)?;
        }
        self.cancel.check()?;
        self.write_contents(&jobs.into_inner().unwrap_or_else(|p| p.into_inner()))?;
        self.cancel.check()?;
        for (u, e) in staged() {
            self.link(u, e)?;
        }
        self.cancel.check()?;
        for (u, e) in staged() {
            if let Entry::Dir(d) = e {
                self.finish_dir(&u.stage, d)?;
            }
        }
        // One syncfs per filesystem instead of an fsync per file and directory: the
        // stage is durable before any swap, at a fraction of the cost.
        for (u, _) in staged() {
            syncfs(u.stage.parent().unwrap_or(Path::new("/")))?;
        }
        Ok(())
    }

    /// Phase 1: directories, file contents, symlinks, specials, kept entries.
    fn create<'u>(&self, unit: &'u Unit, entry: &'u Entry, jobs: &Jobs<'u>) -> Result<()> {
        self.cancel.check()?;
        match entry {
            Entry::Dir(d) => {
                let path = join(&unit.stage, &d.rel);
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&path)
                    .map_err(|e| EngineError::io("creating directory", &path, e))?;
                d.entries
                    .par_iter()
                    .try_for_each(|e| self.create(unit, e, jobs))
            }
            Entry::Keep { rel, original } => {
                let path = join(&unit.stage, rel);
                match fs::hard_link(original, &path) {
                    // It vanished from the original meanwhile: so it is gone from both.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    other => other.map_err(|e| EngineError::io("linking", &path, e)),
                }
            }
            Entry::Leaf(l) if l.link_to.is_some() => Ok(()),
            Entry::Leaf(l) => self.leaf(unit, l, jobs),
        }
    }

    fn leaf<'u>(&self, unit: &'u Unit, leaf: &'u Leaf, jobs: &Jobs<'u>) -> Result<()> {
        let node = leaf.node.node();
        let path = join(&unit.stage, &leaf.rel);
        match node.kind {
            NodeKind::File => {
                let reused = match &leaf.existing {
                    Some(ex) => self.reuse(ex, &path, node)?,
                    None => false,
                };
                if !reused {
                    // Created now, in tree order (files created in pack order scatter
                    // ext4's directory and inode-table updates: slower); content comes
                    // later, pack by pack, and the job finishes the file.
                    create_empty(&path, node)?;
                    jobs.locked().push(FileJob { unit, leaf, path });
                    return Ok(());
                }
            }
            NodeKind::Symlink => {
                std::os::unix::fs::symlink(OsStr::from_bytes(&node.target), &path)
                    .map_err(|e| EngineError::io("creating symlink", &path, e))?;
                apply_metadata(&path, node).map_err(meta_err(&path))?;
            }
            NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                make_special(&path, node).map_err(|e| EngineError::io("creating", &path, e))?;
                apply_metadata(&path, node).map_err(meta_err(&path))?;
            }
            NodeKind::Socket => {
                self.warn(format!(
                    "{} is a socket: not restored (a program creates it when it listens)",
                    join(&unit.dest, &leaf.rel).display()
                ));
                return Ok(());
            }
            NodeKind::Dir => {
                return Err(ModelError::Tree("directory planned as a file".into()).into())
            }
        }
        self.done(unit, &leaf.rel, node);
        Ok(())
    }

    /// Writes the content of staged files from the repository in pack order: their
    /// chunks are looked up, grouped into coalesced range reads (one request for many
    /// small files), and each range is fetched once, checked blob by blob and written
    /// where it belongs, on every core. A file is finished (metadata, progress) when its
    /// last chunk is written. Files are taken in batches so memory stays bounded.
    fn write_contents(&self, jobs: &[FileJob<'_>]) -> Result<()> {
        for batch in jobs.chunks(CONTENT_BATCH) {
            let remaining: Vec<AtomicUsize> = batch.iter().map(|_| AtomicUsize::new(0)).collect();
            let ids: Vec<BlobId> = batch
                .iter()
                .flat_map(|job| &job.leaf.node.node().content)
                .filter_map(|e| match e {
                    Extent::Data { id, .. } => Some(*id),
                    Extent::Hole { .. } => None,
                })
                .collect();
            let locations = self.reader.blobs().catalog().lookup_blobs(&ids)?;
            // Blobs whose only copy is known to be damaged (say, past the end of a
            // truncated pack): a clear cause now instead of a failed read later.
            let known_damaged = self.reader.blobs().catalog().only_damaged(&ids)?;
            drop(ids);
            let damaged: Vec<AtomicBool> = batch.iter().map(|_| AtomicBool::new(false)).collect();
            let mut wanted = Vec::new();
            for (j, job) in batch.iter().enumerate() {
                let mut offset = 0u64;
                for e in &job.leaf.node.node().content {
                    if let Extent::Data { id, len } = e {
                        let loc = match locations.get(id) {
                            None => Err(RepoError::MissingBlob(*id)),
                            Some(l) if l.kind != BlobKind::Data => {
                                Err(RepoError::Format(format!("blob {id} is not a Data blob")))
                            }
                            Some(_) if known_damaged.contains_key(id) => {
                                Err(RepoError::CorruptBlob {
                                    id: *id,
                                    detail: format!("known to be damaged: {}", known_damaged[id]),
                                })
                            }
                            Some(loc) => Ok(*loc),
                        };
                        match loc {
                            Ok(loc) => {
                                wanted.push(Wanted {
                                    id: *id,
                                    loc,
                                    tag: (j, offset, *len),
                                });
                                remaining[j].fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => self.damage(job, &damaged[j], e.into())?,
                        }
                    }
                    offset += e.len();
                }
            }
            drop(locations);
            batch
                .par_iter()
                .zip(&remaining)
                .zip(&damaged)
                .filter(|((_, r), _)| r.load(Ordering::Relaxed) == 0)
                .try_for_each(|((job, _), damaged)| self.complete(job, damaged, None))?;
            let repo = self.reader.blobs().repo();
            // Whole packs in one request each, streamed (bounded memory).
            coalesce(wanted, MAX_GAP, MAX_STREAMED_RANGE)
                .par_iter()
                .try_for_each(|range| {
                    self.cancel.check()?;
                    // The last blob decoded, or why it could not be (skip_damaged only).
                    let mut last: Option<(BlobId, std::result::Result<Vec<u8>, String>)> = None;
                    range.fetch_each(repo, |item, stored| {
                        self.cancel.check()?;
                        let (j, offset, len) = item.tag;
                        let job = &batch[j];
                        if last.as_ref().is_none_or(|(id, _)| *id != item.id) {
                            let decoded = repo.decode_blob(&item.id, &item.loc, stored);
                            let data = match decoded.map_err(EngineError::from) {
                                Ok(data) => Ok(data),
                                Err(e) => {
                                    if let EngineError::Repo(r) = &e {
                                        self.reader.blobs().note_damage(
                                            &item.id,
                                            &item.loc.pack,
                                            r,
                                        );
                                    }
                                    if !self.skip_damaged || !e.is_damage() {
                                        return Err(e);
                                    }
                                    Err(match e {
                                        EngineError::Repo(RepoError::CorruptBlob {
                                            detail,
                                            ..
                                        }) => detail,
                                        other => other.to_string(),
                                    })
                                }
                            };
                            last = Some((item.id, data));
                        }
                        let fault = match last.as_ref().map(|(_, d)| d) {
                            Some(Ok(data)) if data.len() == len as usize => None,
                            Some(Ok(data)) => Some(extent_mismatch(&item.id, data.len(), len)),
                            Some(Err(detail)) => Some(EngineError::Repo(RepoError::CorruptBlob {
                                id: item.id,
                                detail: detail.clone(),
                            })),
                            None => unreachable!("set above"),
                        };
                        let mut file = None;
                        match fault {
                            Some(e) => self.damage(job, &damaged[j], e)?,
                            None if damaged[j].load(Ordering::Acquire) => {}
                            None => {
                                let data = last.as_ref().and_then(|(_, d)| d.as_ref().ok());
                                let f = open_staged(&job.path)?;
                                f.write_all_at(data.map(Vec::as_slice).unwrap_or_default(), offset)
                                    .map_err(|e| EngineError::io("writing", &job.path, e))?;
                                file = Some(f);
                            }
                        }
                        if remaining[j].fetch_sub(1, Ordering::AcqRel) == 1 {
                            self.complete(job, &damaged[j], file)?;
                        }
                        Ok(())
                    })
                })?;
        }
        Ok(())
    }

    /// A staged file has all its content: its metadata goes on last (times stay as set).
    fn finish_file(&self, job: &FileJob<'_>, file: &fs::File) -> Result<()> {
        let node = job.leaf.node.node();
        if node.size >= WRITEBACK_EARLY {
            start_writeback(file);
        }
        apply_file_metadata(file, node).map_err(meta_err(&job.path))?;
        self.written.fetch_add(1, Ordering::Relaxed);
        self.done(job.unit, &job.leaf.rel, node);
        Ok(())
    }

    /// Links the original file into the stage when it already is what the point holds:
    /// same metadata, same sparseness, and every chunk hashing to the point's ids.
    fn reuse(&self, existing: &Path, path: &Path, node: &Node) -> Result<bool> {
        let Ok(md) = fs::symlink_metadata(existing) else {
            return Ok(false);
        };
        let mtime_ns = md.mtime() * 1_000_000_000 + md.mtime_nsec();
        let holes = node
            .content
            .iter()
            .any(|e| matches!(e, Extent::Hole { .. }));
        if !md.is_file()
            || md.size() != node.size
            || mtime_ns != node.mtime_ns
            || md.mode() & 0o7777 != node.mode
            || (md.uid(), md.gid()) != (node.uid, node.gid)
            || (holes && md.blocks() * 512 >= md.size())
            || read_xattrs(existing).ok().as_ref() != Some(&node.xattrs)
        {
            return Ok(false);
        }
        let key = (md.dev(), md.ino());
        if !self.claimed.locked().insert(key) {
            return Ok(false);
        }
        let unclaim = || {
            self.claimed.locked().remove(&key);
            Ok(false)
        };
        if !self.same_content(existing, node, key)? {
            return unclaim();
        }
        match fs::hard_link(existing, path) {
            Ok(()) => {}
            // Not allowed to link it (protected_hardlinks, another filesystem): write it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EXDEV)) => {
                return unclaim();
            }
            Err(e) => return Err(EngineError::io("linking", path, e)),
        }
        // The original might have been replaced between the check and the link.
        let linked =
            fs::symlink_metadata(path).map_err(|e| EngineError::io("inspecting", path, e))?;
        if (linked.dev(), linked.ino()) != key {
            fs::remove_file(path).map_err(|e| EngineError::io("removing", path, e))?;
            return unclaim();
        }
        Ok(true)
    }

    fn same_content(&self, existing: &Path, node: &Node, key: (u64, u64)) -> Result<bool> {
        let open = |flags| {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(existing)
        };
        let file = match open(libc::O_NOATIME) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
            other => other,
        };
        let Ok(file) = file else { return Ok(false) };
        match file.metadata() {
            Ok(md) if (md.dev(), md.ino()) == key => {}
            _ => return Ok(false),
        }
        let repo = self.reader.blobs().repo();
        let mut buf = Vec::new();
        let mut offset = 0u64;
        for e in &node.content {
            self.cancel.check()?;
            let len = e.len();
            match e {
                Extent::Data { id, .. } => {
                    buf.resize(len as usize, 0);
                    if file.read_exact_at(&mut buf, offset).is_err() || repo.blob_id(&buf) != *id {
                        return Ok(false);
                    }
                }
                Extent::Hole { .. } => {
                    let mut pos = offset;
                    while pos < offset + len {
                        let n = (offset + len - pos).min(1 << 20) as usize;
                        buf.resize(n, 0);
                        if file.read_exact_at(&mut buf, pos).is_err() || buf.iter().any(|b| *b != 0)
                        {
                            return Ok(false);
                        }
                        pos += n as u64;
                    }
                }
            }
            offset += len;
        }
        Ok(true)
    }

    /// Phase 2: later members of hard-link groups.
    fn link(&self, unit: &Unit, entry: &Entry) -> Result<()> {
        match entry {
            Entry::Dir(d) => d.entries.iter().try_for_each(|e| self.link(unit, e)),
            Entry::Leaf(l) => {
                let Some(first) = &l.link_to else {
                    return Ok(());
                };
                self.cancel.check()?;
                let node = l.node.node();
                let path = join(&unit.stage, &l.rel);
                if self.skip_link(unit, l, first)? {
                    return Ok(());
                }
                match fs::hard_link(first, &path) {
                    Ok(()) => {}
                    // The group spans sources on different filesystems: copy it.
                    Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                        create_empty(&path, node)?;
                        return self.write_contents(&[FileJob {
                            unit,
                            leaf: l,
                            path,
                        }]);
                    }
                    Err(e) => return Err(EngineError::io("linking", &path, e)),
                }
                self.done(unit, &l.rel, node);
                Ok(())
            }
            Entry::Keep { .. } => Ok(()),
        }
    }

    /// Phase 3: directory metadata, children first so that times stay as set.
    fn finish_dir(&self, stage: &Path, dir: &PlanDir) -> Result<()> {
        dir.entries.par_iter().try_for_each(|e| match e {
            Entry::Dir(d) => self.finish_dir(stage, d),
            _ => Ok(()),
        })?;
        let path = join(stage, &dir.rel);
        match &dir.meta {
            DirMeta::Point(n) => apply_metadata(&path, n.node()),
            DirMeta::Existing(n) => apply_metadata(&path, n),
            DirMeta::Fresh => fs::set_permissions(&path, fs::Permissions::from_mode(0o755)),
        }
        .map_err(meta_err(&path))
    }
}

/// Files at least this big start their writeback when finished; smaller ones are left
/// to the syncfs, which writes them in far fewer, larger requests (a sync_file_range per
/// small file cost a quarter of the restore time of a source tree).
const WRITEBACK_EARLY: u64 = 1 << 20;

/// Staged files per content batch: enough for long coalesced reads, few enough that the
/// batch's chunk list stays small.
const CONTENT_BATCH: usize = 32 * 1024;

/// A staged regular file waiting for its content.
struct FileJob<'u> {
    unit: &'u Unit,
    leaf: &'u Leaf,
    path: PathBuf,
}

/// Creates a staged file (never over an existing name); a sparse one gets its final size
/// now, holes included (writes extend the others).
fn create_empty(path: &Path, node: &Node) -> Result<()> {
    let sparse = node
        .content
        .iter()
        .any(|e| matches!(e, Extent::Hole { .. }));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .and_then(|f| if sparse { f.set_len(node.size) } else { Ok(()) })
        .map_err(|e| EngineError::io("creating", path, e))
}

/// Opens a staged file for writing its content and metadata.
fn open_staged(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| EngineError::io("writing", path, e))
}

type Jobs<'u> = Mutex<Vec<FileJob<'u>>>;

/// Starts writing a finished file's pages to disk without waiting, so the syncfs before
/// the swap has less left to do. Only a hint: failures are ignored (syncfs reports).
fn start_writeback(file: &fs::File) {
    // SAFETY: a descriptor we own; the range 0..0 means the whole file.
    unsafe {
        libc::sync_file_range(
            std::os::fd::AsRawFd::as_raw_fd(file),
            0,
            0,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

/// Flushes every dirty page and inode of the filesystem holding `path`.
fn syncfs(path: &Path) -> Result<()> {
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| EngineError::io("syncing", path, e))?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
        return Err(EngineError::io(
            "syncing",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
