//! Verify, for `repair`: which points lack data once some blobs are gone, with the same
//! structure walk a verify makes.

use std::collections::HashSet;

use crate::catalog::{Catalog, PointRecord};
use crate::repo::{BlobId, Repository};

use super::super::{CancelToken, Result};
use super::{damage_of, listed_packs, Damage, Verifier};

/// The points that lack data if the blobs `lost` are gone (besides what the index and the
/// store already miss), with their damage: the structure walk of a verify (trees read and
/// checked, no file data), of every point. `repair` calls it to know which points to
/// mark damaged, before (a dry run) or after it removed what it could not save.
pub fn points_lacking(
    repo: &Repository,
    catalog: &Catalog,
    lost: HashSet<BlobId>,
    cancel: &CancelToken,
) -> Result<Vec<(PointRecord, Damage)>> {
    let listed = listed_packs(repo)?;
    let mut v = Verifier::new(repo, catalog, cancel, listed, lost)?;
    let mut out = Vec::new();
    for p in catalog.points(None)? {
        let hits = v.walk(&p.manifest.root)?;
        if let Some(d) = damage_of(&p, &hits) {
            out.push((p, d));
        }
    }
    Ok(out)
}
