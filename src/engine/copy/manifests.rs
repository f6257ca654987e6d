//! The target's side of a copied point: its manifest, re-chained (its parent is the
//! target's newest point of the instance) and naming its origin; and the instance
//! definitions the target lacks.

use crate::catalog::{Catalog, PointRecord};
use crate::engine::backup::write_manifest;
use crate::engine::Result;
use crate::model::manifest::CopiedFrom;
use crate::model::InstanceConfig;
use crate::repo::{BlobId, RepoError, Repository};
use crate::store::StoreError;

/// Writes the copy of `point` (whose root tree in the target is `root`) into the target;
/// its name there (the source's, or the first free suffix of it).
pub(super) fn write_copy(
    from: &Repository,
    to: &Repository,
    to_catalog: &Catalog,
    point: &PointRecord,
    root: BlobId,
) -> Result<String> {
    let mut manifest = point.manifest.clone();
    manifest.parent = to_catalog
        .newest_point(&manifest.instance)?
        .map(|p| p.id.to_hex());
    manifest.root = root;
    manifest.copied_from = Some(CopiedFrom {
        repository: from.config().id.clone(),
        manifest: point.id.to_hex(),
    });
    let base = point.manifest.name.clone();
    let (_, written) = write_manifest(to, to_catalog, manifest, &base)?;
    Ok(written.name)
}

/// Copies the definition of `instance` when the source has one and the target none;
/// whether it did.
pub(super) fn copy_definition(from: &Repository, to: &Repository, instance: &str) -> Result<bool> {
    let key = InstanceConfig::object_key(instance);
    let plain = match from.get_sealed(&key) {
        Err(RepoError::Store(StoreError::NotFound(_))) => return Ok(false),
        other => other?,
    };
    match to.put_sealed(&key, plain) {
        Ok(()) => Ok(true),
        Err(RepoError::Store(StoreError::AlreadyExists(_))) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
