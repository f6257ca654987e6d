//! Sparse files in the archive: a file the point stores with holes (`Extent::Hole`)
//! becomes an old-GNU sparse entry (type `S`): its map of data regions in the header and
//! in extension blocks after it (the `tar` crate's structures), and only the data regions
//! as its content, so GNU tar and bsdtar make the holes again when they extract it.

use tar::{GnuExtSparseHeader, Header};

use crate::model::Extent;

/// Data regions of a file as (offset, length), adjacent chunks merged; `None` when the
/// file has no hole. A file that ends in a hole (or is one) ends with an empty region
/// at its size, as GNU tar writes it.
pub(super) fn sparse_map(extents: &[Extent]) -> Option<Vec<(u64, u64)>> {
    if !extents.iter().any(|e| matches!(e, Extent::Hole { .. })) {
        return None;
    }
    let mut map: Vec<(u64, u64)> = Vec::new();
    let mut pos = 0u64;
    for e in extents {
        if let Extent::Data { len, .. } = e {
            let len = u64::from(*len);
            match map.last_mut() {
                Some((start, n)) if *start + *n == pos => *n += len,
                _ => map.push((pos, len)),
            }
        }
        pos += e.len();
    }
    if map.last().is_none_or(|(start, n)| start + n < pos) {
        map.push((pos, 0));
    }
    Some(map)
}

/// Makes `header` (a GNU header) a sparse entry of `real_size` bytes with `map`; returns
/// the extension blocks that follow the header (before the data) and the data's length.
pub(super) fn make_sparse(
    header: &mut Header,
    map: &[(u64, u64)],
    real_size: u64,
) -> (Vec<u8>, u64) {
    header.set_entry_type(tar::EntryType::GNUSparse);
    let stored: u64 = map.iter().map(|(_, n)| n).sum();
    header.set_size(stored);
    let mut blocks = Vec::new();
    let Some(gnu) = header.as_gnu_mut() else {
        return (blocks, stored);
    };
    gnu.set_real_size(real_size);
    let inline = gnu.sparse.len();
    for (slot, (offset, n)) in gnu.sparse.iter_mut().zip(map) {
        slot.set_offset(*offset);
        slot.set_length(*n);
    }
    gnu.set_is_extended(map.len() > inline);
    let mut rest = map.iter().skip(inline).peekable();
    while rest.peek().is_some() {
        let mut ext = GnuExtSparseHeader::new();
        for slot in ext.sparse.iter_mut() {
            let Some((offset, n)) = rest.next() else {
                break;
            };
            slot.set_offset(*offset);
            slot.set_length(*n);
        }
        ext.set_is_extended(rest.peek().is_some());
        blocks.extend_from_slice(ext.as_bytes());
    }
    (blocks, stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::BlobId;

    fn data(len: u32) -> Extent {
        Extent::Data {
            id: BlobId([1; 32]),
            len,
        }
    }

    #[test]
    fn maps_data_regions_and_marks_a_trailing_hole() {
        assert_eq!(sparse_map(&[data(5), data(5)]), None);
        let map = sparse_map(&[data(5), data(5), Extent::Hole { len: 100 }, data(1)]);
        assert_eq!(map, Some(vec![(0, 10), (110, 1)]));
        let map = sparse_map(&[Extent::Hole { len: 7 }, data(1), Extent::Hole { len: 9 }]);
        assert_eq!(map, Some(vec![(7, 1), (17, 0)]));
        assert_eq!(sparse_map(&[Extent::Hole { len: 9 }]), Some(vec![(9, 0)]));
    }

    #[test]
    fn a_long_map_goes_on_in_extension_blocks() {
        let map: Vec<(u64, u64)> = (0..30).map(|i| (i * 100, 10)).collect();
        let mut h = Header::new_gnu();
        let (blocks, stored) = make_sparse(&mut h, &map, 3000);
        assert_eq!(stored, 300);
        assert_eq!(
            blocks.len(),
            2 * 512,
            "4 in the header, 21 + 5 in two blocks"
        );
        assert!(h.as_gnu().unwrap().is_extended());
        assert_eq!(h.as_gnu().unwrap().real_size().unwrap(), 3000);
    }
}
