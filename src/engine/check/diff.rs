//! Point against point: the two root trees walked together, and a directory whose tree
//! id is the same on both sides (and whose own metadata is) costs nothing, so a diff
//! reads only the trees on the way to what changed. Content compares the stored extents.

use crate::engine::{CancelToken, Result, TreeReader};
use crate::model::NodeKind;
use crate::repo::BlobId;

use super::compare::{add_aspect, merge_by_name, metadata_aspects, stored_content_differs};
use super::report::{Aspect, DiffKind};
use super::tally::{join, Tally};

pub(super) struct PointDiff<'a> {
    pub(super) reader: &'a TreeReader,
    pub(super) cancel: &'a CancelToken,
    pub(super) tally: Tally,
}

impl PointDiff<'_> {
    /// The trees `a` and `b` at `rel` (equal ids are not read).
    pub(super) fn trees(&self, a: &BlobId, b: &BlobId, rel: &str) -> Result<()> {
        if a == b {
            return Ok(());
        }
        self.cancel.check()?;
        let read = |id| match self.tally.tree(self.reader, id) {
            Ok(t) => Ok(Some(t)),
            Err(e) => self.tally.engine_error(rel, e).map(|()| None),
        };
        let (Some(ta), Some(tb)) = (read(a)?, read(b)?) else {
            return Ok(());
        };
        let none = |_: &str| false;
        for (x, y) in merge_by_name(&ta.nodes, &tb.nodes, |n| &n.name, |n| &n.name) {
            match (x, y) {
                (Some(x), None) => {
                    let r = join(rel, &x.name);
                    self.tally
                        .only_in_tree(self.reader, x, &r, DiffKind::Removed, &none)?
                }
                (None, Some(y)) => {
                    let r = join(rel, &y.name);
                    self.tally
                        .only_in_tree(self.reader, y, &r, DiffKind::Added, &none)?
                }
                (Some(x), Some(y)) => {
                    let r = join(rel, &x.name);
                    let mut aspects = metadata_aspects(x, y);
                    if stored_content_differs(x, y) {
                        add_aspect(&mut aspects, Aspect::Content);
                    }
                    self.tally.compared(&r, aspects);
                    if let (NodeKind::Dir, NodeKind::Dir, Some(sa), Some(sb)) =
                        (x.kind, y.kind, &x.subtree, &y.subtree)
                    {
                        self.trees(sa, sb, &r)?;
                    }
                }
                (None, None) => {}
            }
        }
        Ok(())
    }
}
