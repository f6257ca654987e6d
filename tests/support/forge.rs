//! Hand-made repository content for hostile and damage tests: unvalidated trees, forged
//! manifests, and byte-level damage to stored packs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn::engine::TreeReader;
use cairn::model::manifest::{point_name, MANIFEST_VERSION};
use cairn::model::{Extent, Layout, Manifest, Node, NodeKind, PointKind, PointStats, Tree};
use cairn::repo::{BlobId, BlobIndex, BlobKind, BlobLocation, Packer};

use super::repos::TestRepo;

/// Writes hand-made trees (unvalidated) and a point whose root is the last of them.
pub struct Forger {
    packer: Packer,
}

impl Forger {
    pub fn new(t: &TestRepo) -> Forger {
        let index: Arc<dyn BlobIndex> = t.catalog.clone();
        Forger {
            packer: Packer::new(t.repo.clone(), index),
        }
    }

    /// A file node (no name yet) holding `bytes` in one chunk.
    pub fn data(&self, bytes: &[u8]) -> Node {
        let (id, _) = self.packer.add(BlobKind::Data, bytes).unwrap();
        let mut n = Node::new(Vec::new(), NodeKind::File);
        n.mode = 0o644;
        n.size = bytes.len() as u64;
        n.content = vec![Extent::Data {
            id,
            len: bytes.len() as u32,
        }];
        n
    }

    pub fn tree(&self, nodes: Vec<Node>) -> BlobId {
        self.raw_tree(&Tree { nodes }.encode())
    }

    /// Stores any bytes as a tree blob.
    pub fn raw_tree(&self, bytes: &[u8]) -> BlobId {
        self.packer.add(BlobKind::Tree, bytes).unwrap().0
    }

    /// Writes the point (manifest) and returns its name.
    pub fn point(self, t: &TestRepo, instance: &str, root: BlobId) -> String {
        self.packer.flush().unwrap();
        let m = Manifest {
            version: MANIFEST_VERSION,
            instance: instance.into(),
            name: point_name(1_700_000_000_000_000_000, PointKind::Manual, None),
            kind: PointKind::Manual,
            time_ns: 1_700_000_000_000_000_000,
            parent: None,
            root,
            layout: Layout::Single,
            paths: vec!["/nonexistent/source".into()],
            host: "forger".into(),
            stats: PointStats::default(),
            excludes: Vec::new(),
            root_meta: None,
            streams: Vec::new(),
            warnings: Vec::new(),
            copied_from: None,
        };
        let (id, json) = m.encode(t.repo.key());
        t.repo
            .put_sealed(&Manifest::object_key(instance, &id), json)
            .unwrap();
        t.catalog.refresh(&t.repo).unwrap();
        m.name
    }
}

pub fn named(mut n: Node, name: &[u8]) -> Node {
    n.name = name.to_vec();
    n
}

pub fn dir_node(name: &[u8], subtree: BlobId) -> Node {
    let mut n = Node::new(name.to_vec(), NodeKind::Dir);
    n.mode = 0o755;
    n.subtree = Some(subtree);
    n
}

pub fn symlink_node(name: &[u8], target: &[u8]) -> Node {
    let mut n = Node::new(name.to_vec(), NodeKind::Symlink);
    n.target = target.to_vec();
    n
}

/// The file of a pack in a local repository at `work/repo`.
pub fn pack_file(work: &Path, loc: &BlobLocation) -> PathBuf {
    work.join("repo").join(loc.pack.key())
}

/// Flips one byte in the middle of a stored blob.
pub fn flip_blob(work: &Path, loc: &BlobLocation) {
    let path = pack_file(work, loc);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.offset as usize + loc.length as usize / 2] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
}

/// Where the point's file at `rel` (`a/b`) keeps its first chunk, and the tree of the
/// directory holding it.
pub fn locate_file(t: &TestRepo, root: &BlobId, rel: &str) -> (BlobId, BlobId) {
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone());
    let mut tree_id = *root;
    let parts: Vec<&str> = rel.split('/').collect();
    for dir in &parts[..parts.len() - 1] {
        let tree = reader.tree(&tree_id).unwrap();
        tree_id = tree.find(dir.as_bytes()).unwrap().subtree.unwrap();
    }
    let tree = reader.tree(&tree_id).unwrap();
    let node = tree.find(parts[parts.len() - 1].as_bytes()).unwrap();
    match node.content.first() {
        Some(Extent::Data { id, .. }) => (*id, tree_id),
        other => panic!("{rel} has no data: {other:?}"),
    }
}
