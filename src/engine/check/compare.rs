//! The pure comparison: which aspects of two nodes differ (type, size, mode, owner,
//! mtime, xattrs, link target; content by stored extents where both sides are stored),
//! and the merge of two name-sorted listings into pairs. No I/O.

use crate::model::{Node, NodeKind};

use super::report::Aspect;

/// The metadata aspects in which `a` and `b` differ, in [`Aspect`] order. A different
/// type is the only aspect reported (the rest cannot be compared meaningfully).
/// Directories compare mode, owner, mtime and xattrs; files also size; symlinks also
/// their target. Access and change times, inode numbers and link counts are never
/// compared. Content is not compared here (see [`stored_content_differs`] and the live
/// walk).
pub fn metadata_aspects(a: &Node, b: &Node) -> Vec<Aspect> {
    if a.kind != b.kind {
        return vec![Aspect::Type];
    }
    let mut out = Vec::new();
    if a.kind == NodeKind::File && a.size != b.size {
        out.push(Aspect::Size);
    }
    if a.mode != b.mode {
        out.push(Aspect::Mode);
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        out.push(Aspect::Owner);
    }
    if a.mtime_ns != b.mtime_ns && a.kind != NodeKind::Symlink {
        out.push(Aspect::Mtime);
    }
    if a.xattrs != b.xattrs {
        out.push(Aspect::Xattrs);
    }
    if a.kind == NodeKind::Symlink && a.target != b.target {
        out.push(Aspect::LinkTarget);
    }
    out
}

/// Whether two stored files' contents differ: their extents (blob ids and lengths, holes)
/// differ. Both come from one repository's chunker, so equal content has equal extents.
pub fn stored_content_differs(a: &Node, b: &Node) -> bool {
    a.kind == NodeKind::File && b.kind == NodeKind::File && a.content != b.content
}

/// Adds `aspect` in its place (the list stays sorted, without duplicates).
pub fn add_aspect(aspects: &mut Vec<Aspect>, aspect: Aspect) {
    if let Err(at) = aspects.binary_search(&aspect) {
        aspects.insert(at, aspect);
    }
}

/// Pairs two lists sorted by name: `(Some, Some)` for a name in both, `(Some, None)`
/// for one only in `a`, `(None, Some)` for one only in `b`, in name order.
pub fn merge_by_name<'a, A, B>(
    a: &'a [A],
    b: &'a [B],
    name_a: impl Fn(&A) -> &[u8],
    name_b: impl Fn(&B) -> &[u8],
) -> Vec<(Option<&'a A>, Option<&'a B>)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => name_a(x).cmp(name_b(y)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.push((a.get(i), None));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push((None, b.get(j)));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a.get(i), b.get(j)));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Extent, Xattr};
    use crate::repo::BlobId;

    fn file() -> Node {
        let mut n = Node::new(b"f".to_vec(), NodeKind::File);
        n.mode = 0o644;
        n.size = 3;
        n.mtime_ns = 1_000_000_123;
        n.content = vec![Extent::Data {
            id: BlobId([1; 32]),
            len: 3,
        }];
        n
    }

    type Case = (fn(&mut Node), Vec<Aspect>);

    #[test]
    fn each_aspect_is_found_alone() {
        let a = file();
        assert!(metadata_aspects(&a, &a.clone()).is_empty());
        let cases: Vec<Case> = vec![
            (|n| n.mode = 0o600, vec![Aspect::Mode]),
            (|n| n.uid = 7, vec![Aspect::Owner]),
            (|n| n.gid = 7, vec![Aspect::Owner]),
            (|n| n.mtime_ns += 1, vec![Aspect::Mtime]),
            (|n| n.size = 4, vec![Aspect::Size]),
            (
                |n| {
                    n.xattrs = vec![Xattr {
                        name: b"user.a".to_vec(),
                        value: b"1".to_vec(),
                    }]
                },
                vec![Aspect::Xattrs],
            ),
            (|n| n.kind = NodeKind::Symlink, vec![Aspect::Type]),
            // Never compared: times other than mtime, inode, links.
            (|n| n.ctime_ns = 5, vec![]),
            (|n| n.inode = 5, vec![]),
            (|n| n.nlink = 5, vec![]),
        ];
        for (change, want) in cases {
            let mut b = a.clone();
            change(&mut b);
            assert_eq!(metadata_aspects(&a, &b), want);
        }
    }

    #[test]
    fn symlinks_compare_targets_and_directories_no_size() {
        let mut a = Node::new(b"l".to_vec(), NodeKind::Symlink);
        a.target = b"x".to_vec();
        let mut b = a.clone();
        b.target = b"y".to_vec();
        b.mtime_ns = 9; // a symlink's mtime is not restorable everywhere: not compared
        assert_eq!(metadata_aspects(&a, &b), vec![Aspect::LinkTarget]);
        let mut d = Node::new(b"d".to_vec(), NodeKind::Dir);
        let mut e = d.clone();
        e.size = 4096;
        assert!(metadata_aspects(&d, &e).is_empty());
        d.mtime_ns = 1;
        assert_eq!(metadata_aspects(&d, &e), vec![Aspect::Mtime]);
    }

    #[test]
    fn stored_content_compares_extents() {
        let a = file();
        let mut b = a.clone();
        assert!(!stored_content_differs(&a, &b));
        b.content = vec![Extent::Data {
            id: BlobId([2; 32]),
            len: 3,
        }];
        assert!(stored_content_differs(&a, &b));
    }

    #[test]
    fn aspects_stay_sorted_and_unique() {
        let mut v = vec![Aspect::Mode];
        add_aspect(&mut v, Aspect::Content);
        add_aspect(&mut v, Aspect::Content);
        add_aspect(&mut v, Aspect::Size);
        assert_eq!(v, vec![Aspect::Size, Aspect::Content, Aspect::Mode]);
    }

    #[test]
    fn merge_pairs_names_in_order() {
        let a = [b"a".to_vec(), b"c".to_vec(), b"d".to_vec()];
        let b = [b"b".to_vec(), b"c".to_vec(), b"e".to_vec()];
        let pairs = merge_by_name(&a, &b, |x| x, |y| y);
        let shape: Vec<(bool, bool)> = pairs
            .iter()
            .map(|(x, y)| (x.is_some(), y.is_some()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (true, false),
                (false, true),
                (true, true),
                (true, false),
                (false, true)
            ]
        );
    }
}
