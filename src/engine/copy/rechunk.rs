//! Copying by content, between repositories that store blobs differently (other keys or
//! chunker parameters): every tree of a point is rebuilt in the target with the same
//! entries and metadata, and every file's content is read from the source and cut again
//! with the target's chunker through the backup's chunking code (holes stay holes).
//! A source tree already rebuilt in this copy is not rebuilt again.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::engine::backup::chunk_stream;
use crate::engine::{BlobReader, CancelToken, EngineError, Result, TreeReader};
use crate::model::{Extent, Node, Tree};
use crate::repo::{BlobId, BlobKind, ChunkerParams, Packer};
use crate::sync::LockExt;

/// One re-chunking copy's state.
pub(super) struct Rechunk<'a> {
    pub trees: TreeReader,
    pub packer: &'a Packer,
    pub chunker: ChunkerParams,
    pub cancel: &'a CancelToken,
    /// Source tree id -> the target tree rebuilt from it.
    pub done: Mutex<HashMap<BlobId, BlobId>>,
}

impl Rechunk<'_> {
    /// Rebuilds the tree `id` of the source (and everything under it) in the target;
    /// the target tree's id.
    pub fn tree(&self, id: BlobId) -> Result<BlobId> {
        if let Some(done) = self.done.locked().get(&id) {
            return Ok(*done);
        }
        self.cancel.check()?;
        let tree = self.trees.tree(&id)?;
        self.trees.prefetch_subtrees(&tree);
        let nodes = tree
            .nodes
            .par_iter()
            .map(|node| self.node(node))
            .collect::<Result<Vec<_>>>()?;
        let (new, _) = self.packer.add(BlobKind::Tree, &Tree { nodes }.encode())?;
        self.done.locked().insert(id, new);
        Ok(new)
    }

    fn node(&self, node: &Node) -> Result<Node> {
        let mut out = node.clone();
        if let Some(subtree) = node.subtree {
            out.subtree = Some(self.tree(subtree)?);
        }
        if !node.content.is_empty() {
            out.content = self.content(&node.content)?;
        }
        Ok(out)
    }

    /// A file's extents in the target: each run of data extents read and chunked again.
    fn content(&self, extents: &[Extent]) -> Result<Vec<Extent>> {
        let mut out = Vec::new();
        let mut run = Vec::new();
        for extent in extents
            .iter()
            .chain(std::iter::once(&Extent::Hole { len: 0 }))
        {
            match extent {
                Extent::Data { id, .. } => run.push(*id),
                Extent::Hole { len } => {
                    if !run.is_empty() {
                        self.chunk_run(std::mem::take(&mut run), &mut out)?;
                    }
                    if *len > 0 {
                        out.push(*extent);
                    }
                }
            }
        }
        Ok(out)
    }

    fn chunk_run(&self, ids: Vec<BlobId>, out: &mut Vec<Extent>) -> Result<()> {
        let mut reader = Blobs {
            blobs: self.trees.blobs(),
            ids: ids.into_iter(),
            current: Vec::new(),
            at: 0,
            failed: None,
        };
        let chunked = chunk_stream(
            self.packer,
            self.chunker,
            self.cancel,
            &mut reader,
            out,
            |e| EngineError::io("reading", "copied file", e),
        );
        match (chunked, reader.failed) {
            (Err(_), Some(e)) => Err(e),
            (other, _) => other.map(|_| ()),
        }
    }
}

/// The content of a run of data blobs of the source as one byte stream; a blob that
/// cannot be read ends it with an error, kept in `failed` as it was.
struct Blobs<'a> {
    blobs: &'a BlobReader,
    ids: std::vec::IntoIter<BlobId>,
    current: Vec<u8>,
    at: usize,
    failed: Option<EngineError>,
}

impl Read for Blobs<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            let Some(id) = self.ids.next() else {
                return Ok(0);
            };
            match self.blobs.read_blob(&id, BlobKind::Data) {
                Ok(plain) => (self.current, self.at) = (plain, 0),
                Err(e) => {
                    let text = e.to_string();
                    self.failed = Some(e);
                    return Err(std::io::Error::other(text));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
