//! Marking: every tree of every point, and every data blob those trees list, goes into
//! the catalog's on-disk marks. A tree already marked is not walked again, so unchanged
//! directories shared by many points cost one visit; memory holds one path of trees.

use crate::catalog::{Catalog, Marks};
use crate::model::Extent;
use crate::repo::BlobId;

use super::super::{CancelToken, Progress, Result, TreeReader};

/// Marks what the catalog's points reference; returns the number of blobs marked.
pub(super) fn mark_all(
    reader: &TreeReader,
    catalog: &Catalog,
    marks: &Marks<'_>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<u64> {
    let points = catalog.points(None)?;
    progress.set_total(points.len() as u64, 0);
    for p in points.iter() {
        mark_tree(reader, marks, &p.manifest.root, cancel)?;
        progress.file_done(
            std::path::Path::new(&format!("{}/{}", p.manifest.instance, p.manifest.name)),
            0,
        );
    }
    Ok(marks.count()?)
}

/// Depth first, without recursion: a stack of (tree's subtrees not yet visited).
fn mark_tree(
    reader: &TreeReader,
    marks: &Marks<'_>,
    root: &BlobId,
    cancel: &CancelToken,
) -> Result<()> {
    let mut stack: Vec<Vec<BlobId>> = Vec::new();
    let mut next = Some(*root);
    loop {
        if let Some(id) = next.take() {
            if marks.contains(&id)? {
                next = None;
            } else {
                cancel.check()?;
                // A tree is read before it is marked: one that cannot be read fails the
                // prune instead of leaving what it references unmarked.
                let tree = reader.tree(&id)?;
                let mut data = Vec::new();
                let mut subtrees = Vec::new();
                for node in &tree.nodes {
                    for e in &node.content {
                        if let Extent::Data { id, .. } = e {
                            data.push(*id);
                        }
                    }
                    subtrees.extend(node.subtree);
                }
                marks.mark_tree(&id, &data)?;
                subtrees.reverse();
                stack.push(subtrees);
            }
        }
        match stack.last_mut() {
            None => return Ok(()),
            Some(top) => match top.pop() {
                Some(sub) => next = Some(sub),
                None => {
                    stack.pop();
                }
            },
        }
    }
}
