//! Coalesced pack reads: many wanted blobs become few range requests, one per run of
//! nearby blobs of a pack. Restores and mount prefetches go through this, so their request
//! count follows the bytes read, not the number of chunks (S3 bills and limits requests).

use bytes::Bytes;

use crate::repo::{BlobId, BlobLocation, PackId, RepoError, Repository};

use super::Result;

/// Blobs closer than this in a pack are read by one request (the gap is read and dropped).
pub const MAX_GAP: u64 = 256 * 1024;
/// A range request reads at most this much (one blob larger than it is read alone).
pub const MAX_RANGE: u64 = 4 << 20;
/// The same for ranges read with [`RangeRead::fetch_each`], whose bytes never sit whole
/// in memory: a whole pack (16 MiB by default, plus the chunk that crossed the limit).
pub const MAX_STREAMED_RANGE: u64 = 64 << 20;

/// A blob someone wants, with what the caller needs to deliver it.
#[derive(Debug, Clone)]
pub struct Wanted<T> {
    pub id: BlobId,
    pub loc: BlobLocation,
    pub tag: T,
}

/// One range request and the blobs it delivers, in pack order.
#[derive(Debug)]
pub struct RangeRead<T> {
    pub pack: PackId,
    pub start: u64,
    pub end: u64,
    pub items: Vec<Wanted<T>>,
}

impl<T> RangeRead<T> {
    /// Downloads the range.
    pub fn fetch(&self, repo: &Repository) -> Result<Bytes> {
        let bytes = repo
            .store()
            .get_range(&self.pack.key(), self.start..self.end);
        Ok(bytes.map_err(RepoError::from)?)
    }

    /// Downloads the range piece by piece and hands each of its blobs' stored bytes to
    /// `each` (in pack order) as soon as they are in: about one blob is held at a time,
    /// however long the range. The first error `each` returns ends the read.
    pub fn fetch_each(
        &self,
        repo: &Repository,
        mut each: impl FnMut(&Wanted<T>, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let (mut buf, mut buf_start, mut next) = (Vec::new(), self.start, 0);
        let mut failed = None;
        let mut sink = |piece: &[u8]| {
            buf.extend_from_slice(piece);
            while let Some(item) = self.items.get(next) {
                let from = (item.loc.offset as u64 - buf_start) as usize;
                let Some(stored) = buf.get(from..from + item.loc.length as usize) else {
                    break; // not all in yet
                };
                if let Err(e) = each(item, stored) {
                    failed = Some(e);
                    return false;
                }
                next += 1;
            }
            // Drop what no later blob needs (once a piece: pieces are small).
            let keep = self
                .items
                .get(next)
                .map_or(u64::MAX, |i| i.loc.offset as u64);
            let done = (keep.saturating_sub(buf_start) as usize).min(buf.len());
            buf.drain(..done);
            buf_start += done as u64;
            true
        };
        let read = repo
            .store()
            .get_range_pieces(&self.pack.key(), self.start..self.end, &mut sink);
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(RepoError::from)?;
        match self.items.get(next) {
            None => Ok(()),
            Some(item) => Err(RepoError::CorruptBlob {
                id: item.id,
                detail: format!("pack {} ended before the blob", self.pack.to_hex()),
            }
            .into()),
        }
    }

    /// One of this range's blobs' stored bytes out of the fetched bytes (short or empty
    /// when the range came back short: its check then fails).
    pub fn stored<'b>(&self, bytes: &'b [u8], item: &Wanted<T>) -> &'b [u8] {
        let from = (item.loc.offset as u64 - self.start) as usize;
        let to = (from + item.loc.length as usize).min(bytes.len());
        bytes.get(from..to).unwrap_or_default()
    }
}

/// Groups wanted blobs into range requests: sorted by pack and offset, neighbours merged
/// while the gap stays under `max_gap` and the range under `max_len`. Duplicates (one blob
/// wanted twice) land in the same range.
pub fn coalesce<T>(mut wanted: Vec<Wanted<T>>, max_gap: u64, max_len: u64) -> Vec<RangeRead<T>> {
    wanted.sort_by_key(|w| (w.loc.pack.0, w.loc.offset));
    let mut out: Vec<RangeRead<T>> = Vec::new();
    for w in wanted {
        let start = w.loc.offset as u64;
        let end = start + w.loc.length as u64;
        if let Some(last) = out.last_mut() {
            if last.pack == w.loc.pack && start <= last.end + max_gap && end - last.start <= max_len
            {
                last.end = last.end.max(end);
                last.items.push(w);
                continue;
            }
        }
        out.push(RangeRead {
            pack: w.loc.pack,
            start,
            end,
            items: vec![w],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::BlobKind;

    fn want(pack: u8, offset: u32, length: u32, tag: u32) -> Wanted<u32> {
        Wanted {
            id: BlobId([tag as u8; 32]),
            loc: BlobLocation {
                kind: BlobKind::Data,
                pack: PackId([pack; 32]),
                offset,
                length,
                raw_len: length,
            },
            tag,
        }
    }

    #[test]
    fn merges_neighbours_of_one_pack_only() {
        let ranges = coalesce(
            vec![
                want(1, 1000, 100, 2),
                want(2, 0, 10, 3),
                want(1, 0, 100, 1),
                want(1, 1000, 100, 4), // the same blob twice
                want(1, 10_000_000, 100, 5),
            ],
            MAX_GAP,
            MAX_RANGE,
        );
        let shape: Vec<(u8, u64, u64, Vec<u32>)> = ranges
            .iter()
            .map(|r| {
                (
                    r.pack.0[0],
                    r.start,
                    r.end,
                    r.items.iter().map(|i| i.tag).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (1, 0, 1100, vec![1, 2, 4]),
                (1, 10_000_000, 10_000_100, vec![5]),
                (2, 0, 10, vec![3]),
            ]
        );
    }

    #[test]
    fn ranges_stay_under_the_limit() {
        let wanted = (0..100).map(|i| want(1, i * 1000, 1000, i)).collect();
        let ranges = coalesce(wanted, 0, 10_000);
        assert_eq!(ranges.len(), 10);
        assert!(ranges.iter().all(|r| r.end - r.start <= 10_000));
    }

    #[test]
    fn fetch_each_hands_over_every_blob_of_a_long_range_once_and_stops_at_an_error() {
        // A local store reads 1 MiB pieces: blobs span pieces, pieces hold several blobs.
        let dir = tempfile::tempdir().unwrap();
        let local = crate::store::Location::Local(dir.path().to_path_buf());
        let store = crate::store::Store::open(&local).unwrap();
        let repo = Repository::init(store, &crate::repo::InitOptions::unencrypted()).unwrap();
        let pack = PackId([1; 32]);
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        repo.store()
            .put(&pack.key(), Bytes::from(bytes.clone()))
            .unwrap();
        let wanted = vec![
            want(1, 10, 1_500_000, 1),
            want(1, 10, 1_500_000, 2), // the same blob twice
            want(1, 1_600_000, 5, 3),
            want(1, 1_700_000, 1_000_000, 4),
        ];
        let ranges = coalesce(wanted, MAX_GAP, MAX_STREAMED_RANGE);
        assert_eq!(ranges.len(), 1);
        let mut got = Vec::new();
        ranges[0]
            .fetch_each(&repo, |item, stored| {
                let from = item.loc.offset as usize;
                assert!(stored == &bytes[from..from + item.loc.length as usize]);
                got.push(item.tag);
                Ok(())
            })
            .unwrap();
        assert_eq!(got, vec![1, 2, 3, 4]);
        let mut seen = 0;
        let err = ranges[0].fetch_each(&repo, |item, _| {
            seen += 1;
            match item.tag {
                2 => Err(crate::engine::EngineError::Repo(RepoError::MissingBlob(
                    item.id,
                ))),
                _ => Ok(()),
            }
        });
        assert!(err.is_err());
        assert_eq!(seen, 2, "nothing after the error");
    }
}
