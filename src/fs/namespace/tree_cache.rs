//! The trees of the directories the mount serves, kept by how recently they were used and
//! bounded by how many nodes they hold: lookups, listings and attributes of a point come
//! from here without asking the repository, and a long `find` cannot make it grow.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::Tree;
use crate::repo::BlobId;

pub(super) struct TreeCache {
    trees: HashMap<BlobId, (Arc<Tree>, u64)>,
    nodes: usize,
    limit: usize,
    tick: u64,
}

impl TreeCache {
    /// A cache of at most `limit` nodes (but always the last tree put, however large).
    pub fn new(limit: usize) -> TreeCache {
        TreeCache {
            trees: HashMap::new(),
            nodes: 0,
            limit,
            tick: 0,
        }
    }

    pub fn get(&mut self, id: &BlobId) -> Option<Arc<Tree>> {
        self.tick += 1;
        let tick = self.tick;
        self.trees.get_mut(id).map(|(t, used)| {
            *used = tick;
            t.clone()
        })
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.trees.contains_key(id)
    }

    pub fn put(&mut self, id: BlobId, tree: Arc<Tree>) {
        self.tick += 1;
        self.nodes += tree.nodes.len().max(1);
        if let Some((old, _)) = self.trees.insert(id, (tree, self.tick)) {
            self.nodes -= old.nodes.len().max(1);
        }
        if self.nodes > self.limit {
            self.evict(id);
        }
    }

    /// Drops the least recently used trees (never `keep`) until a quarter is free.
    fn evict(&mut self, keep: BlobId) {
        let mut by_age: Vec<(u64, BlobId, usize)> = self
            .trees
            .iter()
            .filter(|(id, _)| **id != keep)
            .map(|(id, (t, used))| (*used, *id, t.nodes.len().max(1)))
            .collect();
        by_age.sort_unstable_by_key(|(used, _, _)| *used);
        let target = self.limit - self.limit / 4;
        for (_, id, n) in by_age {
            if self.nodes <= target {
                break;
            }
            self.trees.remove(&id);
            self.nodes -= n;
        }
        self.trees.shrink_to_fit();
    }

    /// Trees and nodes held.
    pub fn size(&self) -> (usize, usize) {
        (self.trees.len(), self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Node, NodeKind};

    fn tree(n: usize) -> Arc<Tree> {
        Arc::new(Tree {
            nodes: (0..n)
                .map(|i| Node::new(format!("{i:06}").into_bytes(), NodeKind::File))
                .collect(),
        })
    }

    fn id(b: u8) -> BlobId {
        BlobId([b; 32])
    }

    #[test]
    fn stays_within_its_nodes_and_keeps_what_was_used_last() {
        let mut c = TreeCache::new(100);
        for b in 1..=5 {
            c.put(id(b), tree(20));
        }
        assert!(c.get(&id(1)).is_some()); // 1 is now the newest but for what comes
        c.put(id(6), tree(20));
        // Over the limit: the least recently used go until a quarter is free.
        assert!(c.size().1 <= 75, "{:?}", c.size());
        for b in [1, 5, 6] {
            assert!(c.contains(&id(b)), "{b} was used last");
        }
        for b in [2, 3, 4] {
            assert!(!c.contains(&id(b)), "{b} was used first");
        }
        // A tree larger than the whole cache is still kept (alone).
        c.put(id(4), tree(500));
        assert!(c.contains(&id(4)));
        assert_eq!(c.size(), (1, 500));
        c.put(id(4), tree(10));
        assert_eq!(c.size(), (1, 10), "a tree put again is counted once");
    }
}
