//! The walk of a backup: each directory's entries stated in parallel, compared with the
//! parent point's, and a file reused from the parent (same inode, ctime, size and mtime,
//! every chunk still present) without reading it.

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use crate::engine::fsmeta::{node_from_metadata, read_xattrs};
use crate::engine::{EngineError, Result};
use crate::model::{Extent, Node, NodeKind, Tree};
use crate::repo::{BlobId, BlobKind};

use super::chunk::read_content;
use super::run::Ctx;

pub(super) fn store_tree(ctx: &Ctx<'_>, nodes: Vec<Node>) -> Result<BlobId> {
    let mut tree = Tree { nodes };
    tree.sort();
    let (id, _) = ctx.packer.add(BlobKind::Tree, &tree.encode())?;
    Ok(id)
}

pub(super) fn backup_dir(
    ctx: &Ctx<'_>,
    path: &Path,
    rel: &Path,
    parent: Option<&Tree>,
) -> Result<BlobId> {
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

pub(super) fn backup_entry(
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
            let content = match unchanged(&node, parent, present) {
                Some(content) => Ok(content),
                None => read_content(ctx, path, &node),
            };
            match content {
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
pub(super) fn present_chunks<'n>(
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
