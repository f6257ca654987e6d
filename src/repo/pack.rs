//! Pack objects: many blobs in one object, with a sealed header at the end so a pack can
//! be indexed on its own (index recovery after a crash reads only the tail).
//!
//! ```text
//! "CAIRNPK\x01" | blob 0 | blob 1 | ... | seal(entries) | u32 LE length of seal(entries)
//! entry (45 bytes): kind u8 | id [32] | offset u32 LE | length u32 LE | raw_len u32 LE
//! ```

use super::blob::{BlobId, BlobKind};
use super::crypto::MasterKey;
use super::layout;
use super::RepoError;

pub const PACK_MAGIC: &[u8; 8] = b"CAIRNPK\x01";
pub const ENTRY_LEN: usize = 45;

/// Where one blob sits in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: BlobKind,
    pub id: BlobId,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
}

/// Identifies a pack: unkeyed BLAKE3 of its bytes, so anyone can check a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackId(pub [u8; 32]);

impl PackId {
    pub fn of(bytes: &[u8]) -> PackId {
        PackId(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The object key: `packs/<first two hex digits>/<hex>`.
    pub fn key(&self) -> String {
        layout::pack_key(&self.to_hex())
    }

    /// Parses a key made by [`key`](Self::key), and only such a key (not upper-case hex,
    /// nor a pack under another directory: reads would look for it elsewhere).
    pub fn from_key(key: &str) -> Option<PackId> {
        let name = layout::pack_hex(key)?;
        let mut id = [0u8; 32];
        hex::decode_to_slice(name, &mut id).ok()?;
        Some(PackId(id)).filter(|id| id.key() == key)
    }
}

pub fn encode_entries(entries: &[PackEntry], out: &mut Vec<u8>) {
    for e in entries {
        out.push(e.kind as u8);
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.raw_len.to_le_bytes());
    }
}

pub fn decode_entries(bytes: &[u8]) -> Result<Vec<PackEntry>, RepoError> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return Err(RepoError::Format(
            "pack header length is not a whole number of entries".into(),
        ));
    }
    bytes
        .chunks_exact(ENTRY_LEN)
        .map(|c| {
            let u32_at = |i: usize| u32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            Ok(PackEntry {
                kind: BlobKind::from_u8(c[0])
                    .ok_or_else(|| RepoError::Format(format!("unknown blob kind {}", c[0])))?,
                id: BlobId::from_slice(&c[1..33]).expect("slice of 32 bytes"),
                offset: u32_at(33),
                length: u32_at(37),
                raw_len: u32_at(41),
            })
        })
        .collect()
}

/// Accumulates stored blobs into one pack.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        PackBuilder::new()
    }
}

impl PackBuilder {
    pub fn new() -> PackBuilder {
        PackBuilder::with_capacity(0)
    }

    /// A builder whose buffer never reallocates below `capacity` bytes (a doubling
    /// buffer would hold up to twice the pack size).
    pub fn with_capacity(capacity: usize) -> PackBuilder {
        let mut buf = Vec::with_capacity(capacity.max(PACK_MAGIC.len()));
        buf.extend_from_slice(PACK_MAGIC);
        PackBuilder {
            buf,
            entries: Vec::new(),
        }
    }

    pub fn add(&mut self, kind: BlobKind, id: BlobId, stored: &[u8], raw_len: u32) {
        let offset = self.buf.len() as u32;
        self.buf.extend_from_slice(stored);
        self.entries.push(PackEntry {
            kind,
            id,
            offset,
            length: stored.len() as u32,
            raw_len,
        });
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals the header onto the pack and returns its bytes, id and entries.
    pub fn finish(mut self, key: &MasterKey) -> (Vec<u8>, PackId, Vec<PackEntry>) {
        let mut header = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        encode_entries(&self.entries, &mut header);
        let sealed = key.seal(header);
        self.buf.extend_from_slice(&sealed);
        self.buf
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        let id = PackId::of(&self.buf);
        (self.buf, id, self.entries)
    }
}

/// Reads the header from the tail of a pack (`tail` is the last bytes of the object,
/// `pack_len` the object's size). Returns `Ok(None)` when `tail` is too short, with the
/// number of tail bytes needed.
pub fn parse_tail(
    key: &MasterKey,
    tail: &[u8],
    pack_len: u64,
) -> Result<Result<Vec<PackEntry>, usize>, RepoError> {
    if tail.len() < 4 {
        return Err(RepoError::Format("pack too short for a header".into()));
    }
    let n = tail.len();
    let header_len =
        u32::from_le_bytes([tail[n - 4], tail[n - 3], tail[n - 2], tail[n - 1]]) as usize;
    if (header_len + 4 + PACK_MAGIC.len()) as u64 > pack_len {
        return Err(RepoError::Format(
            "pack header length exceeds the pack".into(),
        ));
    }
    if header_len + 4 > n {
        return Ok(Err(header_len + 4));
    }
    let sealed = &tail[n - 4 - header_len..n - 4];
    let header = key
        .open(sealed)
        .map_err(|_| RepoError::Format("pack header fails authentication".into()))?;
    let entries = decode_entries(&header)?;
    let data_end = pack_len - 4 - header_len as u64;
    for e in &entries {
        if (e.offset as u64) < PACK_MAGIC.len() as u64
            || e.offset as u64 + e.length as u64 > data_end
        {
            return Err(RepoError::Format(
                "pack entry points outside the pack".into(),
            ));
        }
    }
    Ok(Ok(entries))
}

/// Parses and checks a whole downloaded pack against its id.
pub fn parse_pack(key: &MasterKey, id: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>, RepoError> {
    if PackId::of(bytes) != *id {
        return Err(RepoError::Format(format!(
            "pack {} does not match its id",
            id.to_hex()
        )));
    }
    if !bytes.starts_with(PACK_MAGIC) {
        return Err(RepoError::Format("pack magic missing".into()));
    }
    match parse_tail(key, bytes, bytes.len() as u64)? {
        Ok(entries) => Ok(entries),
        Err(_) => Err(RepoError::Format("pack header truncated".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse() {
        for key in [MasterKey::generate(false), MasterKey::generate(true)] {
            let mut b = PackBuilder::new();
            b.add(BlobKind::Data, BlobId([1; 32]), b"aaaa", 4);
            b.add(BlobKind::Tree, BlobId([2; 32]), b"bb", 9);
            let (bytes, id, entries) = b.finish(&key);
            assert_eq!(parse_pack(&key, &id, &bytes).unwrap(), entries);
            assert_eq!(entries[1].offset, 12);
            // The tail alone is enough; a too-short tail asks for more.
            let need = parse_tail(&key, &bytes[bytes.len() - 8..], bytes.len() as u64).unwrap();
            let need = need.unwrap_err();
            let tail = &bytes[bytes.len() - need..];
            assert_eq!(
                parse_tail(&key, tail, bytes.len() as u64).unwrap().unwrap(),
                entries
            );
            let mut bad = bytes.clone();
            bad[9] ^= 1;
            assert!(parse_pack(&key, &id, &bad).is_err());
        }
    }

    #[test]
    fn key_roundtrip() {
        let id = PackId([0xab; 32]);
        assert!(id.key().starts_with("packs/ab/abab"));
        assert_eq!(PackId::from_key(&id.key()), Some(id));
        assert_eq!(PackId::from_key("packs/zz/nothex"), None);
        let upper = id.key().to_uppercase().replace("PACKS/", "packs/");
        assert_eq!(PackId::from_key(&upper), None);
        assert_eq!(PackId::from_key(&id.key().replace("/ab/", "/cd/")), None);
    }
}
