//! The parity codec: Reed-Solomon parity of one pack (docs/FORMAT.md, section 6.1), made
//! with `reed-solomon-simd`. The pack is cut into data shards of `shard_size` bytes (the
//! last one zero-padded); the parity object holds a truncated BLAKE3 of every data and
//! parity shard, so that damaged shards are located and become erasures, and the parity
//! shards themselves. A pack is rebuilt only when it then matches its id.
//!
//! ```text
//! "CAIRNEC\x01" | pack id [32] | pack_len u64 LE | shard_size u32 LE | data u32 LE |
//! parity u32 LE | shard hashes (data + parity) x [8] | BLAKE3 of all the above [32] |
//! parity shards (parity x shard_size)
//! ```

use std::borrow::Cow;

use super::pack::PackId;

pub const PARITY_MAGIC: &[u8; 8] = b"CAIRNEC\x01";
/// The shard size of packs up to `MAX_SHARDS` x 4 KiB (128 MiB): a zeroed 4 KiB page
/// touches at most two shards.
pub const SHARD_SIZE: usize = 4096;
/// The most data shards (and parity shards) `reed-solomon-simd` takes.
const MAX_SHARDS: usize = 32768;
/// The largest shard a reader accepts (a pack is smaller than 4 GiB: 32768 shards of
/// 128 KiB).
const MAX_SHARD_SIZE: usize = 1 << 20;
/// The fewest parity shards of a pack of at least that many data shards.
const MIN_PARITY: usize = 4;
const HASH_LEN: usize = 8;
const FIXED_LEN: usize = 8 + 32 + 8 + 4 + 4 + 4;
/// The parity percentages a repository may set.
pub const PERCENT_RANGE: std::ops::RangeInclusive<u8> = 1..=50;

/// Why a pack could not be rebuilt from its parity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParityError {
    #[error("the parity object is malformed: {0}")]
    Malformed(&'static str),
    #[error("the parity object's header fails its hash")]
    HeaderDamaged,
    #[error("the parity object belongs to another pack")]
    OtherPack,
    #[error("no shard of the pack is damaged")]
    NothingDamaged,
    #[error("{damaged} shards of {data} are damaged, the parity rebuilds at most {usable}")]
    TooDamaged {
        damaged: usize,
        data: usize,
        usable: usize,
    },
    #[error("Reed-Solomon decoding failed: {0}")]
    Codec(String),
    #[error("the rebuilt pack does not match its id")]
    Mismatch,
}

/// A parsed parity object (borrowing its bytes).
#[derive(Debug)]
pub struct Parity<'a> {
    pub pack: PackId,
    pub pack_len: u64,
    pub shard_size: usize,
    pub data: usize,
    pub parity: usize,
    hashes: &'a [u8],
    shards: &'a [u8],
}

/// A pack rebuilt from its parity.
#[derive(Debug)]
pub struct Rebuilt {
    pub bytes: Vec<u8>,
    /// The data shards that were damaged, now rebuilt.
    pub shards: Vec<usize>,
}

fn shard_hash(shard: &[u8]) -> [u8; HASH_LEN] {
    padded_hash(shard, shard.len())
}

/// The hash of `piece` padded with zeros to `size` bytes, without making the padding.
fn padded_hash(piece: &[u8], size: usize) -> [u8; HASH_LEN] {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut hasher = blake3::Hasher::new();
    hasher.update(piece);
    let mut left = size.saturating_sub(piece.len());
    while left > 0 {
        let n = left.min(ZEROS.len());
        hasher.update(&ZEROS[..n]);
        left -= n;
    }
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..HASH_LEN]);
    out
}

/// The shard size and the data and parity shard counts for a pack of `len` bytes.
pub fn shape(len: usize, percent: u8) -> (usize, usize, usize) {
    let per = len.div_ceil(MAX_SHARDS).div_ceil(64) * 64;
    let shard_size = per.max(SHARD_SIZE);
    let data = len.div_ceil(shard_size).max(1);
    let parity = (data * percent as usize)
        .div_ceil(100)
        .max(MIN_PARITY.min(data));
    (shard_size, data, parity)
}

/// Data shard `i` of `pack` (zero-padded when `pack` ends in it or before it).
fn data_shard(pack: &[u8], shard_size: usize, i: usize) -> Cow<'_, [u8]> {
    let from = (i * shard_size).min(pack.len());
    let to = ((i + 1) * shard_size).min(pack.len());
    let piece = &pack[from..to];
    if piece.len() == shard_size {
        Cow::Borrowed(piece)
    } else {
        let mut padded = piece.to_vec();
        padded.resize(shard_size, 0);
        Cow::Owned(padded)
    }
}

/// The data shards of `pack`, in order.
fn data_shards(pack: &[u8], shard_size: usize, data: usize) -> impl Iterator<Item = Cow<'_, [u8]>> {
    (0..data).map(move |i| data_shard(pack, shard_size, i))
}

/// The parity object of `pack` (whose id is `id`) at `percent` % parity.
pub fn encode(pack: &[u8], id: &PackId, percent: u8) -> Vec<u8> {
    let (shard_size, data, parity) = shape(pack.len(), percent);
    let recovery = reed_solomon_simd::encode(data, parity, data_shards(pack, shard_size, data))
        .expect("shard counts and size are within the codec's limits");
    let mut out =
        Vec::with_capacity(FIXED_LEN + (data + parity) * HASH_LEN + 32 + parity * shard_size);
    out.extend_from_slice(PARITY_MAGIC);
    out.extend_from_slice(&id.0);
    out.extend_from_slice(&(pack.len() as u64).to_le_bytes());
    for n in [shard_size, data, parity] {
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    for shard in data_shards(pack, shard_size, data) {
        out.extend_from_slice(&shard_hash(&shard));
    }
    for shard in &recovery {
        out.extend_from_slice(&shard_hash(shard));
    }
    let header_hash = blake3::hash(&out);
    out.extend_from_slice(header_hash.as_bytes());
    for shard in &recovery {
        out.extend_from_slice(shard);
    }
    out
}

impl<'a> Parity<'a> {
    /// Parses a parity object and checks its header (not yet its parity shards).
    pub fn parse(bytes: &'a [u8], id: &PackId) -> Result<Parity<'a>, ParityError> {
        if bytes.len() < FIXED_LEN || !bytes.starts_with(PARITY_MAGIC) {
            return Err(ParityError::Malformed("magic missing or too short"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4")) as usize;
        let pack_len = u64::from_le_bytes(bytes[40..48].try_into().expect("8"));
        let (shard_size, data, parity) = (u32_at(48), u32_at(52), u32_at(56));
        let hashes_end = FIXED_LEN + (data + parity) * HASH_LEN;
        if shard_size == 0
            || !shard_size.is_multiple_of(2)
            || !(1..=MAX_SHARDS).contains(&data)
            || !(1..=MAX_SHARDS).contains(&parity)
            || shard_size > MAX_SHARD_SIZE
            || pack_len > u32::MAX as u64
            || pack_len.div_ceil(shard_size as u64).max(1) != data as u64
            || bytes.len() != hashes_end + 32 + parity * shard_size
        {
            return Err(ParityError::Malformed("sizes do not add up"));
        }
        if blake3::hash(&bytes[..hashes_end]).as_bytes() != &bytes[hashes_end..hashes_end + 32] {
            return Err(ParityError::HeaderDamaged);
        }
        let pack = PackId(bytes[8..40].try_into().expect("32"));
        if pack != *id {
            return Err(ParityError::OtherPack);
        }
        Ok(Parity {
            pack,
            pack_len,
            shard_size,
            data,
            parity,
            hashes: &bytes[FIXED_LEN..hashes_end],
            shards: &bytes[hashes_end + 32..],
        })
    }

    fn hash_of(&self, shard: usize) -> &[u8] {
        &self.hashes[shard * HASH_LEN..(shard + 1) * HASH_LEN]
    }

    /// The data shards of `pack` (the bytes as read: damaged, truncated or too long) that
    /// fail their hash.
    pub fn damaged_shards(&self, pack: &[u8]) -> Vec<usize> {
        let (size, pack_len) = (self.shard_size, self.pack_len as usize);
        (0..self.data)
            .filter(|&i| {
                let end = ((i + 1) * size).min(pack_len);
                // Bytes missing (a truncated pack) are damage without a look.
                match pack.get((i * size).min(end)..end) {
                    Some(piece) => padded_hash(piece, size) != self.hash_of(i),
                    None => true,
                }
            })
            .collect()
    }

    /// Rebuilds the pack from `pack` as read, or says why it cannot be.
    pub fn rebuild(&self, pack: &[u8]) -> Result<Rebuilt, ParityError> {
        let damaged = self.damaged_shards(pack);
        if damaged.is_empty() {
            return Err(ParityError::NothingDamaged);
        }
        let recovery: Vec<(usize, &[u8])> = self
            .shards
            .chunks_exact(self.shard_size)
            .enumerate()
            .filter(|(i, s)| shard_hash(s) == self.hash_of(self.data + i))
            .collect();
        if damaged.len() > recovery.len() {
            return Err(ParityError::TooDamaged {
                damaged: damaged.len(),
                data: self.data,
                usable: recovery.len(),
            });
        }
        let len = (self.pack_len as usize).min(pack.len());
        let original: Vec<(usize, Cow<'_, [u8]>)> = (0..self.data)
            .filter(|i| damaged.binary_search(i).is_err())
            .map(|i| (i, data_shard(&pack[..len], self.shard_size, i)))
            .collect();
        let restored = reed_solomon_simd::decode(self.data, self.parity, original, recovery)
            .map_err(|e| ParityError::Codec(e.to_string()))?;
        let mut bytes = pack[..len].to_vec();
        bytes.resize(self.pack_len as usize, 0);
        for (i, shard) in restored {
            let from = i * self.shard_size;
            let to = (from + self.shard_size).min(bytes.len());
            if from < to {
                bytes[from..to].copy_from_slice(&shard[..to - from]);
            }
        }
        if PackId::of(&bytes) != self.pack {
            return Err(ParityError::Mismatch);
        }
        Ok(Rebuilt {
            bytes,
            shards: damaged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(len: usize) -> (Vec<u8>, PackId) {
        let bytes: Vec<u8> = (0..len as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let id = PackId::of(&bytes);
        (bytes, id)
    }

    #[test]
    fn shapes_follow_the_percentage_with_a_floor() {
        assert_eq!(shape(16 << 20, 5), (4096, 4096, 205));
        assert_eq!(shape(16 << 20, 10), (4096, 4096, 410));
        assert_eq!(shape(100, 5), (4096, 1, 1));
        assert_eq!(shape(3 * 4096, 5), (4096, 3, 3));
        assert_eq!(shape(10 * 4096 + 1, 5), (4096, 11, 4));
        // Past 128 MiB shards grow so that their count stays within the codec's limit.
        let (size, data, _) = shape(200 << 20, 5);
        assert!(size > 4096 && data <= MAX_SHARDS && size % 64 == 0);
    }

    #[test]
    fn round_trip_of_flipped_bytes_zeroed_pages_and_truncation() {
        let (bytes, id) = pack(1_000_003);
        let object = encode(&bytes, &id, 5);
        let parity = Parity::parse(&object, &id).unwrap();
        assert_eq!(
            parity.rebuild(&bytes).unwrap_err(),
            ParityError::NothingDamaged
        );

        let mut flipped = bytes.clone();
        flipped[12_345] ^= 1;
        flipped[999_999] ^= 0x80;
        let rebuilt = parity.rebuild(&flipped).unwrap();
        assert_eq!(rebuilt.shards, vec![3, 244]);
        assert!(rebuilt.bytes == bytes);

        let mut zeroed = bytes.clone();
        zeroed[5000..5000 + 4096].fill(0); // unaligned: two shards
        assert_eq!(parity.damaged_shards(&zeroed), vec![1, 2]);
        assert!(parity.rebuild(&zeroed).unwrap().bytes == bytes);

        let truncated = &bytes[..bytes.len() - 6000];
        assert!(parity.rebuild(truncated).unwrap().bytes == bytes);
        let mut longer = bytes.clone();
        longer[0] ^= 1;
        longer.extend_from_slice(b"junk");
        assert!(parity.rebuild(&longer).unwrap().bytes == bytes);
    }

    #[test]
    fn too_many_erasures_are_refused() {
        let (bytes, id) = pack(400_000); // 98 data shards, 5 parity shards at 5%
        let object = encode(&bytes, &id, 5);
        let parity = Parity::parse(&object, &id).unwrap();
        assert_eq!((parity.data, parity.parity), (98, 5));
        let mut bad = bytes.clone();
        for shard in 0..6 {
            bad[shard * 10 * 4096] ^= 1;
        }
        assert_eq!(
            parity.rebuild(&bad).unwrap_err(),
            ParityError::TooDamaged {
                damaged: 6,
                data: 98,
                usable: 5
            }
        );
    }

    #[test]
    fn damaged_parity_is_never_used() {
        let (bytes, id) = pack(400_000);
        let mut object = encode(&bytes, &id, 5);
        // A damaged parity shard is an erasure too: four of five are left.
        let last = object.len() - 1;
        object[last] ^= 1;
        let parity = Parity::parse(&object, &id).unwrap();
        let mut bad = bytes.clone();
        for shard in 0..5 {
            bad[shard * 10 * 4096] ^= 1;
        }
        assert!(matches!(
            parity.rebuild(&bad),
            Err(ParityError::TooDamaged { usable: 4, .. })
        ));
        bad[0] ^= 1;
        assert!(parity.rebuild(&bad).unwrap().bytes == bytes);
        // A damaged header is refused whole, and so is another pack's parity.
        let mut header = encode(&bytes, &id, 5);
        header[60] ^= 1;
        assert_eq!(
            Parity::parse(&header, &id).unwrap_err(),
            ParityError::HeaderDamaged
        );
        let other = PackId([7; 32]);
        assert_eq!(
            Parity::parse(&encode(&bytes, &id, 5), &other).unwrap_err(),
            ParityError::OtherPack
        );
        assert!(Parity::parse(b"CAIRNEC\x01short", &id).is_err());
        // Sizes that do not add up (a claimed length past the shards) are refused.
        let mut long = encode(&bytes, &id, 5);
        long[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            Parity::parse(&long, &id),
            Err(ParityError::Malformed(_))
        ));
    }
}
