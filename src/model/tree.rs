//! Trees: one directory listing per blob. Encoded as a version byte followed by the
//! postcard encoding of [`Tree`]; nodes are sorted by name with no duplicates, which the
//! decoder enforces (a hostile tree with two entries of one name is rejected).

use serde::{Deserialize, Serialize};

use crate::repo::BlobId;

use super::names::is_safe_component;
use super::ModelError;

pub const TREE_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// A piece of a file's content: a chunk, or a hole that reads as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extent {
    Data { id: BlobId, len: u32 },
    Hole { len: u64 },
}

impl Extent {
    pub fn len(&self) -> u64 {
        match self {
            Extent::Data { len, .. } => *len as u64,
            Extent::Hole { len } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One directory entry with everything needed to restore it faithfully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Modification time. Access times are not kept: reading changes them, and a tree
    /// that changed on every backup would make unchanged directories cost something.
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// Source inode and device: change detection, and hard-link groups within a point.
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
    /// Device number of character and block devices.
    pub rdev: u64,
    #[serde(with = "serde_bytes")]
    pub target: Vec<u8>,
    pub content: Vec<Extent>,
    pub subtree: Option<BlobId>,
    pub xattrs: Vec<Xattr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

impl Node {
    /// A node with empty content and zeroed metadata.
    pub fn new(name: Vec<u8>, kind: NodeKind) -> Node {
        Node {
            name,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            dev: 0,
            nlink: 1,
            rdev: 0,
            target: Vec::new(),
            content: Vec::new(),
            subtree: None,
            xattrs: Vec::new(),
        }
    }

    /// Whether this file belongs to a hard-link group.
    pub fn is_hardlinked(&self) -> bool {
        self.kind == NodeKind::File && self.nlink > 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Sorts nodes by name; call before encoding a tree built in any order.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TREE_VERSION];
        postcard::to_io(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Decodes and validates a tree: known version, safe unique names, sane nodes.
    pub fn decode(bytes: &[u8]) -> Result<Tree, ModelError> {
        let (version, body) = bytes
            .split_first()
            .ok_or_else(|| ModelError::Tree("empty tree blob".into()))?;
        if *version != TREE_VERSION {
            return Err(ModelError::Tree(format!("unknown tree version {version}")));
        }
        let tree: Tree = postcard::from_bytes(body)
            .map_err(|e| ModelError::Tree(format!("undecodable tree: {e}")))?;
        for (i, node) in tree.nodes.iter().enumerate() {
            if !is_safe_component(&node.name) {
                return Err(ModelError::UnsafeName(node.name.clone()));
            }
            if i > 0 && tree.nodes[i - 1].name >= node.name {
                return Err(ModelError::Tree(
                    "tree entries not sorted or duplicated".into(),
                ));
            }
            match node.kind {
                NodeKind::Dir if node.subtree.is_none() => {
                    return Err(ModelError::Tree("directory without subtree".into()))
                }
                NodeKind::File => {
                    // Checked: extents of 2^64 bytes must not wrap around to the size.
                    let total = node
                        .content
                        .iter()
                        .try_fold(0u64, |sum, e| sum.checked_add(e.len()));
                    if total != Some(node.size) {
                        return Err(ModelError::Tree(
                            "file extents do not add up to its size".into(),
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(tree)
    }

    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &[u8]) -> Node {
        let mut n = Node::new(name.to_vec(), NodeKind::File);
        n.size = 5;
        n.content = vec![
            Extent::Data {
                id: BlobId([9; 32]),
                len: 2,
            },
            Extent::Hole { len: 3 },
        ];
        n
    }

    #[test]
    fn roundtrip() {
        let mut t = Tree {
            nodes: vec![file(b"b"), file(b"a\xff")],
        };
        t.sort();
        let back = Tree::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.find(b"b").unwrap().size, 5);
    }

    #[test]
    fn rejects_hostile_trees() {
        for name in [&b".."[..], b"a/b", b"", b"x\0"] {
            let t = Tree {
                nodes: vec![file(name)],
            };
            assert!(Tree::decode(&t.encode()).is_err(), "{name:?}");
        }
        let dup = Tree {
            nodes: vec![file(b"a"), file(b"a")],
        };
        assert!(Tree::decode(&dup.encode()).is_err());
        let mut bad_version = file_tree().encode();
        bad_version[0] = 9;
        assert!(Tree::decode(&bad_version).is_err());
    }

    fn file_tree() -> Tree {
        Tree {
            nodes: vec![file(b"f")],
        }
    }
}
