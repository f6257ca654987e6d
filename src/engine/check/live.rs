//! The live side of a check: a point's trees walked beside a directory, in name order,
//! each directory's entries compared in parallel (on the check's thread pool), and a
//! file's content compared by reading it once against the stored extents: each data
//! extent's bytes must hash (the repository's keyed BLAKE3) to its blob id, each hole's
//! must be zeros. That is exact and cheaper than chunking again, and it stops at the
//! first extent that differs. Reads go through one reused buffer a thread and the
//! bandwidth cap.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::GlobSet;
use rayon::prelude::*;

use crate::engine::fsmeta::{node_from_metadata, open_source, read_xattrs};
use crate::engine::{CancelToken, Progress, Result, TreeReader};
use crate::model::manifest::RootMeta;
use crate::model::{Extent, Node, NodeKind};
use crate::repo::BlobId;

use super::compare::{add_aspect, merge_by_name, metadata_aspects};
use super::report::{Aspect, DiffKind};
use super::tally::{join, Tally};
use super::throttle::{Throttle, READ_PIECE};

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub(super) struct LiveWalk<'a> {
    pub(super) reader: &'a TreeReader,
    pub(super) ignores: GlobSet,
    /// The point's excludes, matched against the path relative to its source.
    pub(super) excludes: GlobSet,
    /// Whether the root's entries are sources (their names are not part of the path
    /// the excludes see).
    pub(super) per_path: bool,
    pub(super) checksum: bool,
    pub(super) throttle: Option<Throttle>,
    pub(super) cancel: &'a CancelToken,
    pub(super) progress: &'a dyn Progress,
    pub(super) tally: Tally,
}

impl LiveWalk<'_> {
    fn is_ignored(&self, rel: &str) -> bool {
        if self.ignores.is_match(rel) {
            return true;
        }
        let source_rel = if self.per_path {
            match rel.split_once('/') {
                Some((_, r)) => r,
                None => return false,
            }
        } else {
            rel
        };
        self.excludes.is_match(source_rel)
    }

    /// The point's root directory (its stored metadata, when it has it) against `dir`.
    pub(super) fn root(&self, meta: Option<&RootMeta>, tree: &BlobId, dir: &Path) -> Result<()> {
        if let Some(meta) = meta {
            match self.live_node(b"", dir) {
                Ok(live) => self
                    .tally
                    .compared("", metadata_aspects(&meta.to_node(), &live)),
                Err(e) => self.tally.error("", e),
            }
        }
        self.dir(tree, dir, "")
    }

    /// A per-path point's root entries against its sources (`(name, path)`, sorted by
    /// name); entries without a source (streams) are not compared.
    pub(super) fn sources(&self, tree: &BlobId, sources: &[(Vec<u8>, PathBuf)]) -> Result<()> {
        let root = match self.tally.tree(self.reader, tree) {
            Ok(t) => t,
            Err(e) => return self.tally.engine_error("", e),
        };
        let pairs = merge_by_name(&root.nodes, sources, |n| &n.name, |s| &s.0);
        pairs
            .par_iter()
            .try_for_each(|(node, source)| match source {
                Some((name, path)) => self.entry(*node, Some(path), &join("", name)),
                None => Ok(()),
            })
    }

    /// Directory `dir` against the stored tree `id`, at `rel`.
    fn dir(&self, id: &BlobId, dir: &Path, rel: &str) -> Result<()> {
        self.cancel.check()?;
        let tree = match self.tally.tree(self.reader, id) {
            Ok(t) => t,
            Err(e) => return self.tally.engine_error(rel, e),
        };
        self.reader.prefetch_subtrees(&tree);
        let names = match list(dir) {
            Ok(n) => n,
            Err(e) => {
                self.tally
                    .error(rel, format!("listing {}: {e}", dir.display()));
                return Ok(());
            }
        };
        let pairs = merge_by_name(&tree.nodes, &names, |n| &n.name, |o| o.as_bytes());
        pairs.par_iter().try_for_each(|(node, name)| {
            let child_name =
                node.map_or_else(|| name.map_or(&[][..], |n| n.as_bytes()), |n| &n.name);
            let path = name.map(|n| dir.join(n));
            self.entry(*node, path.as_deref(), &join(rel, child_name))
        })
    }

    /// One name: stored, live, or both.
    fn entry(&self, stored: Option<&Node>, live: Option<&Path>, rel: &str) -> Result<()> {
        if self.is_ignored(rel) {
            self.tally.ignored();
            return Ok(());
        }
        match (stored, live) {
            (Some(node), None) => self.removed(node, rel),
            (None, Some(path)) => self.added(path, rel),
            (Some(node), Some(path)) => self.both(node, path, rel),
            (None, None) => Ok(()),
        }
    }

    fn removed(&self, node: &Node, rel: &str) -> Result<()> {
        let ignored = |r: &str| self.is_ignored(r);
        self.tally
            .only_in_tree(self.reader, node, rel, DiffKind::Removed, &ignored)
    }

    /// A live entry the point lacks, and everything below it.
    fn added(&self, path: &Path, rel: &str) -> Result<()> {
        self.cancel.check()?;
        self.tally.only(rel, DiffKind::Added);
        let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        if !is_dir {
            return Ok(());
        }
        let names = match list(path) {
            Ok(n) => n,
            Err(e) => {
                self.tally
                    .error(rel, format!("listing {}: {e}", path.display()));
                return Ok(());
            }
        };
        names.par_iter().try_for_each(|name| {
            let child = join(rel, name.as_bytes());
            if self.is_ignored(&child) {
                self.tally.ignored();
                return Ok(());
            }
            self.added(&path.join(name), &child)
        })
    }

    fn both(&self, node: &Node, path: &Path, rel: &str) -> Result<()> {
        let live = match self.live_node(&node.name, path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.removed(node, rel),
            Err(e) => {
                self.tally.error(rel, e);
                return Ok(());
            }
        };
        let mut aspects = metadata_aspects(node, &live);
        let files = node.kind == NodeKind::File && live.kind == NodeKind::File;
        if files && self.checksum {
            if node.size != live.size {
                add_aspect(&mut aspects, Aspect::Content);
            } else {
                match self.content_differs(path, node) {
                    Ok(true) => add_aspect(&mut aspects, Aspect::Content),
                    Ok(false) => {}
                    Err(e) => {
                        self.tally
                            .error(rel, format!("reading {}: {e}", path.display()));
                        return Ok(());
                    }
                }
            }
        }
        if files {
            self.progress.file_done(path, node.size);
        }
        self.tally.compared(rel, aspects);
        match (node.kind, live.kind, &node.subtree) {
            (NodeKind::Dir, NodeKind::Dir, Some(id)) => self.dir(id, path, rel),
            _ => Ok(()),
        }
    }

    /// A live entry's metadata as a node (its target and xattrs too).
    fn live_node(&self, name: &[u8], path: &Path) -> io::Result<Node> {
        let md = fs::symlink_metadata(path)?;
        let mut node = node_from_metadata(name.to_vec(), &md);
        if node.kind == NodeKind::Symlink {
            node.target = fs::read_link(path)?.as_os_str().as_bytes().to_vec();
        }
        node.xattrs = read_xattrs(path)?;
        Ok(node)
    }

    /// Whether the live file at `path` holds other bytes than `node`'s extents.
    fn content_differs(&self, path: &Path, node: &Node) -> io::Result<bool> {
        let mut file = open_source(path)?;
        BUFFER.with(|buffer| {
            let mut buf = buffer.borrow_mut();
            for extent in &node.content {
                self.cancel.check().map_err(io::Error::other)?;
                let differs = match extent {
                    Extent::Data { id, len } => {
                        let len = *len as usize;
                        if buf.len() < len {
                            buf.resize(len, 0);
                        }
                        !self.read(&mut file, &mut buf[..len])?
                            || self.reader.repo().blob_id(&buf[..len]) != *id
                    }
                    Extent::Hole { len } => self.hole_differs(&mut file, *len, &mut buf)?,
                };
                if differs {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// Whether the next `len` bytes are not all zeros (or not there).
    fn hole_differs(&self, file: &mut fs::File, len: u64, buf: &mut Vec<u8>) -> io::Result<bool> {
        if buf.len() < READ_PIECE {
            buf.resize(READ_PIECE, 0);
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(READ_PIECE as u64) as usize;
            if !self.read(file, &mut buf[..n])? || buf[..n].iter().any(|&b| b != 0) {
                return Ok(true);
            }
            left -= n as u64;
        }
        Ok(false)
    }

    /// Fills `buf` from `file`, under the cap; `false` if the file ended first.
    fn read(&self, file: &mut fs::File, buf: &mut [u8]) -> io::Result<bool> {
        for piece in buf.chunks_mut(READ_PIECE) {
            if let Some(t) = &self.throttle {
                t.take(piece.len());
            }
            match file.read_exact(piece) {
                Ok(()) => self.tally.live_bytes(piece.len()),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// A directory's names, in byte order (the order of a tree).
fn list(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}
