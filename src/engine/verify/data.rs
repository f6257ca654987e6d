//! Verify, data: every pack holding referenced data blobs is downloaded and each of those
//! blobs decoded and checked, a few packs at a time. A pack that does not match its id is
//! rebuilt from its parity first when the repository has it; the blobs that fail as read
//! and pass once rebuilt are counted as corrected, not as damage.

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::repo::pack;
use crate::repo::{BlobId, BlobLocation, PackId, RepoError, Repository};
use crate::store::StoreError;

use super::super::{CancelToken, EngineError, Progress, Result};
use super::{blame, Verifier};

/// Packs downloaded at once (memory: this many packs).
const WORKERS: usize = 4;

impl Verifier<'_> {
    /// Downloads every pack holding referenced data blobs and checks those blobs. Returns
    /// whether damage was found.
    pub(super) fn read_data(&mut self, progress: &dyn Progress) -> Result<bool> {
        let packs: Vec<(PackId, Vec<(BlobId, BlobLocation)>)> =
            std::mem::take(&mut self.by_pack).into_iter().collect();
        let total: u64 = packs
            .iter()
            .map(|(id, _)| self.listed.get(id).copied().unwrap_or(0))
            .sum();
        progress.set_total(packs.len() as u64, total);
        let repo = self.repo;
        let results = par_map(&packs, self.cancel, |(id, blobs)| {
            let out = check_pack_data(repo, id, blobs)?;
            progress.file_done(Path::new(&id.key()), out.bytes);
            Ok(out)
        })?;
        let mut found = false;
        for ((id, blobs), out) in packs.iter().zip(results) {
            self.report.bytes_read += out.bytes;
            let damaged = out.bad.len();
            for (blob, loc) in blobs {
                if !out.bad.iter().any(|b| b.blob == *blob) && self.known.is_damaged(blob, id) {
                    // Read intact now (the pack was mended): no longer damaged.
                    self.catalog.clear_damaged(blob, &loc.pack)?;
                }
            }
            for bad in out.bad {
                found = true;
                if bad.copy_damaged {
                    self.catalog.mark_damaged(&bad.blob, id, &bad.why)?;
                }
                self.bad_blobs.insert(
                    bad.blob,
                    Arc::from(format!("data blob {}: {}", bad.blob, bad.why)),
                );
            }
            let text = if !out.matches_id {
                format!(
                    "pack {}: its bytes do not match its id ({damaged} of the {} blobs in use from it are damaged){}",
                    id.to_hex(),
                    blobs.len(),
                    match &out.uncorrected {
                        Some(why) => format!("; parity could not correct it: {why}"),
                        None => String::new(),
                    }
                )
            } else if let Some(why) = out.malformed.filter(|_| !self.bad_headers.contains(id)) {
                format!("pack {}: {why}", id.to_hex())
            } else {
                continue;
            };
            if damaged == 0 {
                self.pack_problem(id, text)?;
            } else {
                self.problem(text);
            }
        }
        Ok(found)
    }
}

/// What reading one pack found.
struct PackData {
    bytes: u64,
    /// Whether the pack is exactly the bytes its id names.
    matches_id: bool,
    /// Why a pack that matches its id is malformed (magic, header), if it is.
    malformed: Option<String>,
    bad: Vec<BadBlob>,
    /// Why parity could not rebuild a pack that does not match its id.
    uncorrected: Option<String>,
}

/// A blob in use that could not be read from a pack.
struct BadBlob {
    blob: BlobId,
    why: String,
    /// Whether this copy of it is damaged (not so when the whole pack is missing).
    copy_damaged: bool,
}

/// Downloads one pack and decodes each of `blobs` from it.
fn check_pack_data(
    repo: &Repository,
    id: &PackId,
    blobs: &[(BlobId, BlobLocation)],
) -> Result<PackData> {
    let bytes = match repo.store().get(&id.key()) {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound(_)) => {
            let why = format!("pack {} is missing", id.to_hex());
            return Ok(PackData {
                bytes: 0,
                matches_id: true,
                malformed: None,
                uncorrected: None,
                bad: blobs
                    .iter()
                    .map(|(b, _)| BadBlob {
                        blob: *b,
                        why: why.clone(),
                        copy_damaged: false,
                    })
                    .collect(),
            });
        }
        Err(e) => return Err(RepoError::from(e).into()),
    };
    // The same checks as `Repository::read_pack`, keeping the bytes when they fail: then
    // each blob in use is checked on its own so that only the corrupt ones are blamed. A
    // pack that fails is first rebuilt from its parity, if the repository has it.
    let mut matches_id = PackId::of(&bytes) == *id;
    let (mut as_read, mut uncorrected) = (None, None);
    let bytes = match (matches_id, repo.config().ecc) {
        (false, Some(_)) => match repo.rebuild_pack(id, &bytes) {
            Ok(rebuilt) => {
                matches_id = true;
                as_read = Some(bytes);
                rebuilt
            }
            Err(why) => {
                uncorrected = Some(why);
                bytes
            }
        },
        _ => bytes,
    };
    let malformed = if matches_id {
        pack::parse_pack(repo.key(), id, &bytes)
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    let mut bad = Vec::new();
    for (blob, loc) in blobs {
        let start = loc.offset as usize;
        let end = start + loc.length as usize;
        let Some(stored) = bytes.get(start..end) else {
            bad.push(BadBlob {
                blob: *blob,
                why: format!(
                    "pack {} is truncated to {} bytes, the blob ends at {end}",
                    id.to_hex(),
                    bytes.len()
                ),
                copy_damaged: true,
            });
            continue;
        };
        match repo.decode_checked(blob, loc, stored) {
            Err(e) => bad.push(BadBlob {
                blob: *blob,
                why: format!("{} (in pack {})", blame(e)?, id.to_hex()),
                copy_damaged: true,
            }),
            Ok(_) => {
                let read = as_read
                    .as_ref()
                    .map(|b| b.get(start..end).unwrap_or_default());
                if read.is_some_and(|read| repo.decode_checked(blob, loc, read).is_err()) {
                    repo.note_corrected(id, blob);
                }
            }
        }
    }
    Ok(PackData {
        bytes: bytes.len() as u64,
        matches_id,
        malformed,
        bad,
        uncorrected,
    })
}

/// Runs `f` on every item on [`WORKERS`] threads of its own, results in the order of the
/// items; stops at the first error or on cancellation.
pub(in crate::engine) fn par_map<T: Sync, R: Send>(
    items: &[T],
    cancel: &CancelToken,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .thread_name(|i| format!("cairn-verify-{i}"))
        .build()
        .map_err(EngineError::Threads)?;
    pool.install(|| {
        items
            .par_iter()
            .map(|item| {
                cancel.check()?;
                f(item)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::InvalidRequest;

    #[test]
    fn par_map_keeps_order_and_stops_on_error_or_cancel() {
        let items: Vec<u32> = (0..50).collect();
        let cancel = CancelToken::new();
        let out = par_map(&items, &cancel, |i| Ok(i * 2)).unwrap();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let err = par_map(&items, &cancel, |i| {
            if *i == 7 {
                Err(EngineError::Invalid(InvalidRequest::Refused(
                    "seven".into(),
                )))
            } else {
                Ok(*i)
            }
        });
        assert!(matches!(err, Err(EngineError::Invalid(_))));
        cancel.cancel();
        assert!(matches!(
            par_map(&items, &cancel, |i| Ok(*i)),
            Err(EngineError::Cancelled)
        ));
        assert!(par_map(&[] as &[u32], &cancel, |i| Ok(*i))
            .unwrap()
            .is_empty());
    }
}
