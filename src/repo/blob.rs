//! Blobs: the unit of content. A blob is named by the keyed BLAKE3 of its plaintext and
//! stored as `seal(flag || body)` where `flag` 0 means raw and 1 means zstd.

use std::cell::RefCell;

pub use super::blob_id::{BlobId, BlobKind};
use super::crypto::MasterKey;
use super::RepoError;

const FLAG_RAW: u8 = 0;
const FLAG_ZSTD: u8 = 1;

thread_local! {
    /// zstd contexts are costly to make (a workspace allocated and zeroed each time): each
    /// thread keeps one compressor per level and one decompressor.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Compresses `plaintext` into `out` (appended); false when zstd fails or does not pay.
fn compress_into(plaintext: &[u8], level: i32, out: &mut Vec<u8>) -> bool {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            *c = zstd::bulk::Compressor::new(level).ok().map(|z| (level, z));
        }
        let Some((_, z)) = c.as_mut() else {
            return false;
        };
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.reserve(zstd::zstd_safe::compress_bound(plaintext.len()));
            match z.compress_to_buffer(plaintext, &mut *s) {
                Ok(n) if n < plaintext.len() => {
                    out.extend_from_slice(&s[..n]);
                    true
                }
                _ => false,
            }
        })
    })
}

/// Decompresses one zstd body of exactly `raw_len` bytes (more is an error).
fn decompress(body: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = zstd::bulk::Decompressor::new().ok();
        }
        let z = d.as_mut()?;
        let mut out = Vec::with_capacity(raw_len);
        z.decompress_to_buffer(body, &mut out).ok()?;
        Some(out)
    })
}

/// Compresses (when it pays) and seals a plaintext into its stored form.
pub fn encode(key: &MasterKey, plaintext: &[u8], zstd_level: i32) -> Vec<u8> {
    let reserved = key.seal_prefix_len();
    let mut out = Vec::with_capacity(reserved + plaintext.len() / 2 + 64);
    out.resize(reserved, 0);
    out.push(FLAG_ZSTD);
    if !compress_into(plaintext, zstd_level, &mut out) {
        out.truncate(reserved);
        out.push(FLAG_RAW);
        out.extend_from_slice(plaintext);
    }
    key.seal_prefixed(out)
}

/// Opens a stored blob and checks it against its id. `raw_len` bounds decompression.
pub fn decode(
    key: &MasterKey,
    id: &BlobId,
    stored: &[u8],
    raw_len: usize,
) -> Result<Vec<u8>, RepoError> {
    let corrupt = |detail: &str| RepoError::CorruptBlob {
        id: *id,
        detail: detail.to_string(),
    };
    let opened = key
        .open(stored)
        .map_err(|_| corrupt("authentication failed"))?;
    let (flag, body) = opened.split_first().ok_or_else(|| corrupt("empty"))?;
    let plain = match *flag {
        FLAG_RAW => body.to_vec(),
        FLAG_ZSTD => decompress(body, raw_len).ok_or_else(|| corrupt("bad zstd frame"))?,
        _ => return Err(corrupt("unknown encoding flag")),
    };
    if plain.len() != raw_len {
        return Err(corrupt("length differs from the index"));
    }
    if key.blob_hash(&plain) != id.0 {
        return Err(corrupt("content does not match its id"));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_compressible_and_incompressible() {
        for key in [MasterKey::generate(false), MasterKey::generate(true)] {
            let text = b"abc".repeat(1000);
            let random: Vec<u8> = (0..1000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            for plain in [text, random, Vec::new()] {
                let id = BlobId(key.blob_hash(&plain));
                let stored = encode(&key, &plain, 3);
                assert_eq!(decode(&key, &id, &stored, plain.len()).unwrap(), plain);
            }
        }
    }

    #[test]
    fn detects_wrong_content() {
        let key = MasterKey::generate(false);
        let stored = encode(&key, b"hello", 3);
        let wrong = BlobId(key.blob_hash(b"other"));
        assert!(matches!(
            decode(&key, &wrong, &stored, 5),
            Err(RepoError::CorruptBlob { .. })
        ));
    }
}
