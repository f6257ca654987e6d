//! What a running check or diff has found so far, shared by its threads: the counts, the
//! differences and errors, the bytes and trees read; and the listing of a stored
//! subtree that only one side has (every entry below it added or removed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::engine::{EngineError, Result, TreeReader};
use crate::model::{Node, NodeKind, Tree};
use crate::repo::BlobId;
use crate::sync::LockExt;

use super::report::{Aspect, CheckReport, Counts, DiffKind, Difference};

#[derive(Default)]
pub(super) struct Tally {
    same: AtomicU64,
    differ: AtomicU64,
    only_in_point: AtomicU64,
    only_in_live: AtomicU64,
    errors: AtomicU64,
    ignored: AtomicU64,
    live_bytes: AtomicU64,
    trees_read: AtomicU64,
    differences: Mutex<Vec<Difference>>,
    error_lines: Mutex<Vec<String>>,
}

/// `rel/name` (`name` at the root), lossy UTF-8.
pub(super) fn join(rel: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if rel.is_empty() {
        name.into_owned()
    } else {
        format!("{rel}/{name}")
    }
}

/// How a path is shown: `.` for the root.
fn shown(rel: &str) -> String {
    if rel.is_empty() {
        ".".to_string()
    } else {
        rel.to_string()
    }
}

impl Tally {
    /// An entry on both sides: same when `aspects` is empty.
    pub(super) fn compared(&self, rel: &str, aspects: Vec<Aspect>) {
        if aspects.is_empty() {
            self.same.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.differ.fetch_add(1, Ordering::Relaxed);
        self.push(rel, DiffKind::Changed, aspects);
    }

    /// An entry on one side only.
    pub(super) fn only(&self, rel: &str, kind: DiffKind) {
        let count = match kind {
            DiffKind::Added => &self.only_in_live,
            _ => &self.only_in_point,
        };
        count.fetch_add(1, Ordering::Relaxed);
        self.push(rel, kind, Vec::new());
    }

    fn push(&self, rel: &str, kind: DiffKind, aspects: Vec<Aspect>) {
        self.differences.locked().push(Difference {
            path: shown(rel),
            kind,
            aspects,
        });
    }

    pub(super) fn ignored(&self) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
    }

    /// An entry that could not be read or compared. A cancel is not an error: it
    /// stops the walk.
    pub(super) fn error(&self, rel: &str, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.error_lines
            .locked()
            .push(format!("{}: {e}", shown(rel)));
    }

    /// [`error`](Self::error) for an engine error; a cancel goes on up.
    pub(super) fn engine_error(&self, rel: &str, e: EngineError) -> Result<()> {
        if matches!(e, EngineError::Cancelled) {
            return Err(e);
        }
        self.error(rel, e);
        Ok(())
    }

    pub(super) fn live_bytes(&self, n: usize) {
        self.live_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reads a tree, counted.
    pub(super) fn tree(&self, reader: &TreeReader, id: &BlobId) -> Result<Arc<Tree>> {
        self.trees_read.fetch_add(1, Ordering::Relaxed);
        reader.tree(id)
    }

    /// A stored entry that only one side has: it and everything below it are `kind`;
    /// `ignored` says which relative paths are left out.
    pub(super) fn only_in_tree(
        &self,
        reader: &TreeReader,
        node: &Node,
        rel: &str,
        kind: DiffKind,
        ignored: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<()> {
        if ignored(rel) {
            self.ignored();
            return Ok(());
        }
        self.only(rel, kind);
        let (NodeKind::Dir, Some(id)) = (node.kind, &node.subtree) else {
            return Ok(());
        };
        let tree = match self.tree(reader, id) {
            Ok(t) => t,
            Err(e) => return self.engine_error(rel, e),
        };
        for child in &tree.nodes {
            self.only_in_tree(reader, child, &join(rel, &child.name), kind, ignored)?;
        }
        Ok(())
    }

    /// The report of what was found, sorted by path.
    pub(super) fn into_report(self) -> CheckReport {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counts = Counts {
            same: n(&self.same),
            differ: n(&self.differ),
            only_in_point: n(&self.only_in_point),
            only_in_live: n(&self.only_in_live),
            errors: n(&self.errors),
            ignored: n(&self.ignored),
        };
        let mut differences = self
            .differences
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        differences.sort_by(|a, b| a.path.cmp(&b.path));
        let mut errors = self
            .error_lines
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        errors.sort();
        CheckReport {
            counts,
            differences,
            errors,
            live_bytes_read: n(&self.live_bytes),
            trees_read: n(&self.trees_read),
            ..CheckReport::default()
        }
    }
}
