//! The base point of a point-in-time view as the planner reads it: small files of its
//! tree (PostgreSQL's `postgresql.auto.conf`, a recorded binlog position), the
//! directories a database's data directory may be (the root, or each source's top entry),
//! and where an archived log file goes in the view.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::catalog::{Catalog, PointRecord};
use crate::model::{Layout, Node, NodeKind};
use crate::repo::Repository;

use crate::engine::{ContentReader, EngineError, FileLayout, Result, TreeReader};

/// Where log files with no place in the point go, at the view's top.
pub const LOGS_DIR: &str = "logs";

/// Bytes of a small file the planner reads at most.
const SMALL_FILE_MAX: u64 = 4 << 20;

pub(super) struct BaseView {
    pub record: PointRecord,
    trees: TreeReader,
}

impl BaseView {
    pub fn new(repo: &Repository, catalog: &Arc<Catalog>, record: PointRecord) -> BaseView {
        BaseView {
            record,
            trees: TreeReader::new(repo.clone(), catalog.clone()),
        }
    }

    /// The node at `rel` (relative to the point's root; `""` is no node).
    pub fn node(&self, rel: &Path) -> Result<Option<Node>> {
        let mut tree = self.trees.tree(&self.record.manifest.root)?;
        let mut found: Option<Node> = None;
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Ok(None);
            };
            if let Some(n) = &found {
                match (&n.kind, &n.subtree) {
                    (NodeKind::Dir, Some(id)) => tree = self.trees.tree(id)?,
                    _ => return Ok(None),
                }
            }
            match tree.find(name.as_bytes()) {
                Some(n) => found = Some(n.clone()),
                None => return Ok(None),
            }
        }
        Ok(found)
    }

    /// The content of the regular file at `rel`, if there is one (of at most 4 MiB).
    pub fn read_small(&self, rel: &Path) -> Result<Option<(Vec<u8>, u32)>> {
        let Some(node) = self.node(rel)?.filter(|n| n.kind == NodeKind::File) else {
            return Ok(None);
        };
        if node.size > SMALL_FILE_MAX {
            return Err(EngineError::Invalid(
                crate::engine::InvalidRequest::Refused(format!(
                    "{} in point {} is {} bytes: too large to be a settings file",
                    rel.display(),
                    self.record.manifest.name,
                    node.size
                )),
            ));
        }
        let layout = FileLayout::new(node.content.clone());
        let reader = ContentReader::new(self.trees.clone(), SMALL_FILE_MAX as usize * 2);
        let data = reader.read(&layout, 0, layout.size() as usize, false)?;
        Ok(Some((data, node.mode)))
    }

    /// The names in the directory at `rel` (`""`: the root); none when it is no directory.
    pub fn list(&self, rel: &Path) -> Result<Vec<Vec<u8>>> {
        let id = if rel.as_os_str().is_empty() {
            self.record.manifest.root
        } else {
            match self.node(rel)? {
                Some(Node {
                    kind: NodeKind::Dir,
                    subtree: Some(id),
                    ..
                }) => id,
                _ => return Ok(Vec::new()),
            }
        };
        Ok(self
            .trees
            .tree(&id)?
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .collect())
    }

    /// The directories a data directory may be: the root, then each top directory of a
    /// `per-path` point.
    pub fn top_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut out = vec![PathBuf::new()];
        if self.record.manifest.layout == Layout::PerPath {
            let root = self.trees.tree(&self.record.manifest.root)?;
            out.extend(
                root.nodes
                    .iter()
                    .filter(|n| n.kind == NodeKind::Dir)
                    .map(|n| PathBuf::from(std::ffi::OsStr::from_bytes(&n.name))),
            );
        }
        Ok(out)
    }

    /// The first of [`top_dirs`](Self::top_dirs) holding a file `marker`.
    pub fn dir_with(&self, marker: &str) -> Result<Option<PathBuf>> {
        for dir in self.top_dirs()? {
            if self
                .node(&dir.join(marker))?
                .is_some_and(|n| n.kind == NodeKind::File)
            {
                return Ok(Some(dir));
            }
        }
        Ok(None)
    }

    /// Where the log file `name` goes in the view: when the directory of the log glob it
    /// matches lies inside one of the point's source paths, at that place in the point's
    /// tree; otherwise `logs/<name>`.
    pub fn place(&self, globs: &[String], name: &str) -> PathBuf {
        let m = &self.record.manifest;
        for g in globs {
            let pattern = Path::new(g);
            let Some(dir) = pattern.parent() else {
                continue;
            };
            let literal = !dir.to_string_lossy().contains(['*', '?', '[']);
            let matches = glob::Pattern::new(g).is_ok_and(|p| p.matches_path(&dir.join(name)));
            if !(literal && matches) {
                continue;
            }
            for source in &m.paths {
                let Ok(rel) = dir.strip_prefix(source) else {
                    continue;
                };
                let top = match m.layout {
                    Layout::Single => PathBuf::new(),
                    Layout::PerPath => match Path::new(source).file_name() {
                        Some(n) => PathBuf::from(n),
                        None => continue,
                    },
                };
                return top.join(rel).join(name);
            }
        }
        Path::new(LOGS_DIR).join(name)
    }
}
