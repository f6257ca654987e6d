//! Index segments: `index/<blake3 of the object>` lists packs and the blobs inside them,
//! so a reader learns where every blob is without opening packs.
//!
//! ```text
//! "CAIRNIX\x01" | seal(zstd(records))
//! record: pack id [32] | pack length u64 LE | entry count u32 LE | entries (see pack.rs)
//! ```

use super::crypto::MasterKey;
use super::layout;
use super::pack::{decode_entries, encode_entries, PackEntry, PackId, ENTRY_LEN};
use super::RepoError;

pub const INDEX_MAGIC: &[u8; 8] = b"CAIRNIX\x01";

/// One pack's part of an index segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    pub id: PackId,
    pub length: u64,
    pub entries: Vec<PackEntry>,
}

pub fn index_key(stored: &[u8]) -> String {
    layout::object_key(layout::INDEX, &blake3::hash(stored).to_hex())
}

pub fn encode_segment(key: &MasterKey, packs: &[IndexedPack]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in packs {
        body.extend_from_slice(&p.id.0);
        body.extend_from_slice(&p.length.to_le_bytes());
        body.extend_from_slice(&(p.entries.len() as u32).to_le_bytes());
        encode_entries(&p.entries, &mut body);
    }
    let compressed = zstd::bulk::compress(&body, 3).expect("zstd of an in-memory buffer");
    let mut out = INDEX_MAGIC.to_vec();
    out.extend_from_slice(&key.seal(compressed));
    out
}

/// A genuine body cannot be much larger than its compressed form: every entry carries a
/// 32-byte hash, which does not compress. Anything past this bound is a decompression
/// bomb, refused before it is held in memory.
const MAX_EXPANSION: u64 = 16;

fn decompress_body(compressed: &[u8]) -> Result<Vec<u8>, &'static str> {
    use std::io::Read;
    let limit = (compressed.len() as u64).saturating_mul(MAX_EXPANSION) + (1 << 20);
    let decoder = zstd::stream::Decoder::new(compressed).map_err(|_| "bad zstd frame")?;
    let mut body = Vec::new();
    decoder
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|_| "bad zstd frame")?;
    if body.len() as u64 > limit {
        return Err("decompresses to far more than a segment holds");
    }
    Ok(body)
}

pub fn decode_segment(
    key: &MasterKey,
    name: &str,
    stored: &[u8],
) -> Result<Vec<IndexedPack>, RepoError> {
    let bad = |d: &str| RepoError::Format(format!("index segment {name}: {d}"));
    if index_key(stored) != name {
        return Err(bad("content does not match its name"));
    }
    let sealed = stored
        .strip_prefix(INDEX_MAGIC)
        .ok_or_else(|| bad("unknown magic or version"))?;
    let compressed = key.open(sealed).map_err(|_| bad("fails authentication"))?;
    let body = decompress_body(&compressed).map_err(bad)?;
    let mut packs = Vec::new();
    let mut rest = &body[..];
    while !rest.is_empty() {
        if rest.len() < 44 {
            return Err(bad("truncated record"));
        }
        let id = PackId(rest[..32].try_into().expect("32 bytes"));
        let length = u64::from_le_bytes(rest[32..40].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(rest[40..44].try_into().expect("4 bytes")) as usize;
        let end = 44 + count * ENTRY_LEN;
        if rest.len() < end {
            return Err(bad("truncated entries"));
        }
        let entries = decode_entries(&rest[44..end])?;
        packs.push(IndexedPack {
            id,
            length,
            entries,
        });
        rest = &rest[end..];
    }
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::blob::{BlobId, BlobKind};

    #[test]
    fn roundtrip_and_name_check() {
        let key = MasterKey::generate(true);
        let packs = vec![IndexedPack {
            id: PackId([7; 32]),
            length: 100,
            entries: vec![PackEntry {
                kind: BlobKind::Data,
                id: BlobId([3; 32]),
                offset: 8,
                length: 20,
                raw_len: 30,
            }],
        }];
        let stored = encode_segment(&key, &packs);
        let name = index_key(&stored);
        assert_eq!(decode_segment(&key, &name, &stored).unwrap(), packs);
        assert!(decode_segment(&key, "index/00", &stored).is_err());
    }
}
