//! A new point's name: its time and label, with the first free suffix when another point
//! of the instance has it, claimed before the manifest that bears it is written.

use std::collections::HashSet;

use crate::catalog::Catalog;
use crate::engine::{EngineError, Result};
use crate::model::manifest::point_name_candidate;
use crate::model::{Manifest, ManifestId};
use crate::repo::{RepoError, Repository};
use crate::store::StoreError;

/// Most names a point tries before giving up (`NAME`, `NAME-2`, ... `NAME-1000`).
const MAX_NAME_CANDIDATES: u32 = 1000;

/// Names the point and writes its manifest. The name is the point's time and label; one
/// that another point of the instance already has, here or on another machine, gets the
/// first free suffix `-2`, `-3`, ...: each candidate is claimed with a conditional create
/// of its claim object (FORMAT.md, section 9) before the manifest that bears it is written.
pub(crate) fn write_manifest(
    repo: &Repository,
    catalog: &Catalog,
    mut manifest: Manifest,
    base: &str,
) -> Result<(ManifestId, Manifest)> {
    let instance = manifest.instance.clone();
    let known: HashSet<String> = catalog
        .points(Some(&instance))?
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    let mut claimed = None;
    for n in 1..=MAX_NAME_CANDIDATES {
        manifest.name = point_name_candidate(base, n);
        if known.contains(&manifest.name) {
            continue;
        }
        let (id, json) = manifest.encode(repo.key());
        if claim_name(repo, &instance, &manifest.name, &id)? {
            claimed = Some((id, json));
            break;
        }
    }
    let Some((id, json)) = claimed else {
        return Err(EngineError::NoFreeName(format!(
            "no free point name: {base} and {MAX_NAME_CANDIDATES} suffixed variants are taken"
        )));
    };
    repo.put_sealed(&Manifest::object_key(&instance, &id), json)?;
    catalog.insert_point(&id, &manifest)?;
    Ok((id, manifest))
}

/// Claims `name` in `instance` for the manifest `id`; `false` when another point has it. A
/// claim already holding `id` is this writer's own (a create whose reply was lost).
fn claim_name(repo: &Repository, instance: &str, name: &str, id: &ManifestId) -> Result<bool> {
    let key = Manifest::name_claim_key(repo.key(), instance, name);
    let ours = id.to_hex();
    match repo.store().put_new(&key, ours.clone().into_bytes().into()) {
        Ok(()) => Ok(true),
        Err(StoreError::AlreadyExists(_)) => {
            let holder = repo.store().get(&key).map_err(RepoError::from)?;
            Ok(holder.as_ref() == ours.as_bytes())
        }
        Err(e) => Err(RepoError::from(e).into()),
    }
}
