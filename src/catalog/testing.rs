//! What the catalog's unit tests share.

use crate::repo::{self, BlobId, IndexedPack};

/// A pack of one data blob, `n` in its id and length, for the catalog's unit tests.
pub(super) fn test_pack(n: u8, blob: BlobId) -> IndexedPack {
    IndexedPack {
        id: repo::PackId([n; 32]),
        length: 100,
        entries: vec![repo::PackEntry {
            kind: repo::BlobKind::Data,
            id: blob,
            offset: 8,
            length: 10 + n as u32,
            raw_len: 5,
        }],
    }
}
