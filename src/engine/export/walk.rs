//! The entries of an export in archive order: a depth-first walk of a point's trees,
//! a directory before what it holds, names in tree order. With includes, a directory
//! that matches brings everything under it, and the directories above a selected entry
//! come out (with their metadata) just before it. The second and later names of a
//! hard-link group become links to the first one exported.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use globset::GlobSet;

use crate::engine::restore::MAX_DEPTH;
use crate::engine::{Result, TreeReader};
use crate::model::{Manifest, ModelError, Node, NodeKind, Tree};

/// One archive entry: its path in the archive (a directory's ends with `/`, the root is
/// `./`), its node, and for a later name of a hard-link group the path it links to.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub path: Vec<u8>,
    pub node: Node,
    pub link_to: Option<Vec<u8>>,
}

impl Entry {
    /// Whether the entry carries file content (a link carries none).
    pub fn has_content(&self) -> bool {
        self.node.kind == NodeKind::File && self.link_to.is_none()
    }
}

/// A directory being walked: its tree, the next node, its path relative to the point
/// root (empty for the root), whether all of it is selected, and its entry while no
/// entry under it has been exported yet.
struct Frame {
    tree: Arc<Tree>,
    next: usize,
    rel: Vec<u8>,
    whole: bool,
    pending: Option<Entry>,
}

/// The walk; [`Walker::next_entry`] gives the entries one at a time.
pub(super) struct Walker {
    trees: TreeReader,
    scope: Option<GlobSet>,
    stack: Vec<Frame>,
    ready: VecDeque<Entry>,
    /// The archive path of the first name exported of each hard-link group.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl Walker {
    /// A walk of `manifest`'s point; `scope` selects (`None`: everything).
    pub fn new(trees: TreeReader, manifest: &Manifest, scope: Option<GlobSet>) -> Result<Walker> {
        let root = trees.tree(&manifest.root)?;
        trees.prefetch_subtrees(&root);
        let root_entry = manifest.root_meta.as_ref().map(|meta| Entry {
            path: b"./".to_vec(),
            node: meta.to_node(),
            link_to: None,
        });
        let mut walker = Walker {
            trees,
            stack: Vec::new(),
            ready: VecDeque::new(),
            links: HashMap::new(),
            scope,
        };
        let whole = walker.scope.is_none();
        let pending = match root_entry {
            Some(e) if whole => {
                walker.ready.push_back(e);
                None
            }
            other => other,
        };
        walker.stack.push(Frame {
            tree: root,
            next: 0,
            rel: Vec::new(),
            whole,
            pending,
        });
        Ok(walker)
    }

    /// The next entry, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Ok(Some(e));
            }
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(node) = top.tree.nodes.get(top.next).cloned() else {
                self.stack.pop();
                continue;
            };
            top.next += 1;
            let mut rel = top.rel.clone();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&node.name);
            let selected = top.whole
                || self
                    .scope
                    .as_ref()
                    .is_none_or(|g| g.is_match(Path::new(OsStr::from_bytes(&rel))));
            match node.kind {
                NodeKind::Dir => self.enter(node, rel, selected)?,
                // A socket cannot be archived (tar skips them too).
                NodeKind::Socket => {}
                _ if selected => {
                    let link_to = self.link_target(&node, &rel);
                    self.emit(Entry {
                        path: rel,
                        node,
                        link_to,
                    });
                }
                _ => {}
            }
        }
    }

    /// Starts walking the directory `node` at `rel`.
    fn enter(&mut self, node: Node, rel: Vec<u8>, selected: bool) -> Result<()> {
        if self.stack.len() > MAX_DEPTH {
            return Err(ModelError::Tree(format!(
                "{}: directories nested deeper than {MAX_DEPTH}",
                String::from_utf8_lossy(&rel)
            ))
            .into());
        }
        let id = node
            .subtree
            .ok_or_else(|| ModelError::Tree("directory without subtree".into()))?;
        let tree = self.trees.tree(&id)?;
        self.trees.prefetch_subtrees(&tree);
        let mut path = rel.clone();
        path.push(b'/');
        let entry = Entry {
            path,
            node,
            link_to: None,
        };
        let pending = if selected {
            self.emit(entry);
            None
        } else {
            Some(entry)
        };
        self.stack.push(Frame {
            tree,
            next: 0,
            rel,
            whole: selected,
            pending,
        });
        Ok(())
    }

    /// For a later name of a hard-link group, the first name's archive path.
    fn link_target(&mut self, node: &Node, rel: &[u8]) -> Option<Vec<u8>> {
        if !node.is_hardlinked() {
            return None;
        }
        let key = (node.dev, node.inode);
        if let Some(first) = self.links.get(&key) {
            return Some(first.clone());
        }
        self.links.insert(key, rel.to_vec());
        None
    }

    /// Queues an entry, after the directories above it not given out yet.
    fn emit(&mut self, entry: Entry) {
        for frame in &mut self.stack {
            if let Some(dir) = frame.pending.take() {
                self.ready.push_back(dir);
            }
        }
        self.ready.push_back(entry);
    }
}
