//! Repair, damage marks (`damaged/<instance>/<manifest id>`, docs/FORMAT.md 9.5): a
//! point that still lacks data gets a mark naming its damaged paths and the blobs they
//! miss; a mark whose point reads whole again (a later backup stored the data anew) or
//! is gone is deleted. [`damaged_points`] lists the marks that still hold, for
//! `points --kind damaged`.

use std::collections::HashSet;

use crate::catalog::{Catalog, PointRecord};
use crate::model::{DamageMark, ManifestId};
use crate::repo::{layout, BlobId, Lease, RepoError, Repository};

use super::super::{Damage, Result};
use super::request::{DamagedPoint, RepairOutcome};

/// A point marked damaged whose damage still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedPoint {
    pub point: PointRecord,
    pub mark: DamageMark,
}

/// Every mark in the repository, with its key and manifest id (unreadable ones skipped
/// with a warning).
fn read_marks(repo: &Repository) -> Result<Vec<(String, ManifestId, DamageMark)>> {
    let mut out = Vec::new();
    for obj in repo
        .store()
        .list(layout::DAMAGED)
        .map_err(RepoError::from)?
    {
        let Some((instance, id)) = DamageMark::parse_key(&obj.key) else {
            tracing::warn!(key = %obj.key, "ignoring object with a malformed damage mark key");
            continue;
        };
        let mark = repo
            .get_sealed(&obj.key)
            .map_err(super::super::EngineError::from)
            .and_then(|json| Ok(DamageMark::decode(&instance, &json)?));
        match mark {
            Ok(mark) => out.push((obj.key, id, mark)),
            Err(e) => tracing::warn!(key = %obj.key, "skipping unreadable damage mark: {e}"),
        }
    }
    Ok(out)
}

/// Whether readers find an intact copy of every blob the mark names.
fn healed(catalog: &Catalog, mark: &DamageMark) -> Result<bool> {
    let ids = mark.blob_ids();
    if ids.is_empty() {
        return Ok(false);
    }
    let found = catalog.lookup_blobs(&ids)?;
    let only_damaged = catalog.only_damaged(&ids)?;
    Ok(ids
        .iter()
        .all(|id| found.contains_key(id) && !only_damaged.contains_key(id)))
}

/// The points marked damaged whose damage still holds (of `instance`, or all): the point
/// exists and some blob its mark names is still missing. Oldest first, as `points` lists.
pub fn damaged_points(
    repo: &Repository,
    catalog: &Catalog,
    instance: Option<&str>,
) -> Result<Vec<MarkedPoint>> {
    let marks = read_marks(repo)?;
    let mut out = Vec::new();
    for point in catalog.points(instance)? {
        let Some((_, _, mark)) = marks.iter().find(|(_, id, _)| *id == point.id) else {
            continue;
        };
        if !healed(catalog, mark)? {
            out.push(MarkedPoint {
                point,
                mark: mark.clone(),
            });
        }
    }
    Ok(out)
}

/// The mark of point `id` of `instance` if its damage still holds (`None`: no mark, or
/// a healed one).
pub(crate) fn holding_mark(
    repo: &Repository,
    catalog: &Catalog,
    instance: &str,
    id: &ManifestId,
) -> Result<Option<DamageMark>> {
    let json = match repo.get_sealed(&DamageMark::object_key(instance, id)) {
        Ok(json) => json,
        Err(RepoError::Store(crate::store::StoreError::NotFound(_))) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mark = DamageMark::decode(instance, &json)?;
    Ok((!healed(catalog, &mark)?).then_some(mark))
}

/// The blob a damage cause names: verify's causes begin `data blob <hex>:` or
/// `tree <hex>:`.
fn cause_blob(cause: &str) -> Option<BlobId> {
    let rest = cause
        .strip_prefix("data blob ")
        .or_else(|| cause.strip_prefix("tree "))?;
    BlobId::from_hex(rest.get(..64)?)
}

/// Marks `lacking` points damaged and clears the marks of the others; without a lease
/// (a dry run) it only counts. Fills `out.damaged_points`, `points_marked`,
/// `marks_cleared`.
pub(super) fn apply(
    repo: &Repository,
    lease: Option<&Lease>,
    lacking: &[(PointRecord, Damage)],
    out: &mut RepairOutcome,
) -> Result<()> {
    let existing = read_marks(repo)?;
    let host = crate::model::hostname();
    let mut kept = HashSet::new();
    for (point, damage) in lacking {
        let key = DamageMark::object_key(&point.manifest.instance, &point.id);
        let mut blobs: Vec<String> = damage
            .causes
            .iter()
            .filter_map(|c| cause_blob(c))
            .map(|id| id.to_hex())
            .collect();
        blobs.sort();
        blobs.dedup();
        let mark = DamageMark {
            version: crate::model::damage_mark::DAMAGE_MARK_VERSION,
            instance: damage.instance.clone(),
            point: damage.point.clone(),
            paths: damage.paths.clone(),
            blobs,
            marked_ns: crate::model::now_ns(),
            host: host.clone(),
        };
        let same = existing
            .iter()
            .any(|(k, _, m)| *k == key && m.same_damage(&mark));
        if !same {
            out.points_marked += 1;
            if let Some(lease) = lease {
                lease.check(repo)?;
                repo.replace_sealed(&key, mark.encode())?;
                repo.store().sync(&key).map_err(RepoError::from)?;
            }
        }
        kept.insert(key);
        out.damaged_points.push(DamagedPoint {
            instance: damage.instance.clone(),
            point: damage.point.clone(),
            id: point.id.to_hex(),
            paths: damage.paths.clone(),
            newly_marked: !same,
        });
    }
    for (key, _, _) in existing.iter().filter(|(k, _, _)| !kept.contains(k)) {
        out.marks_cleared += 1;
        if let Some(lease) = lease {
            lease.check(repo)?;
            repo.store().delete(key).map_err(RepoError::from)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_their_blobs() {
        let id = BlobId([3; 32]);
        assert_eq!(cause_blob(&format!("data blob {id}: lost")), Some(id));
        assert_eq!(
            cause_blob(&format!("tree {id}: not in the index")),
            Some(id)
        );
        assert_eq!(cause_blob("directories nested deeper than 4096"), None);
        assert_eq!(cause_blob("tree 12: short"), None);
    }
}
