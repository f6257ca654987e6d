//! The definitions the daemon reads from the repository: instances (`instances/<name>`),
//! policies (`policies/<name>`) and the policy settings (`settings/policies`). One that
//! does not decode is skipped with a warning.

use std::collections::BTreeMap;

use crate::model::policy::{PolicySettings, SETTINGS_KEY};
use crate::model::{InstanceConfig, Policy};
use crate::repo::{layout, Repository};

/// The instances defined in `repo`, by name.
pub fn load_instances(repo: &Repository) -> crate::repo::Result<BTreeMap<String, InstanceConfig>> {
    Ok(
        definitions(repo, layout::INSTANCES, InstanceConfig::decode)?
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect(),
    )
}

/// Policies and settings read from the repository; unreadable policies are skipped with
/// a warning.
pub fn load_policies(
    repo: &Repository,
) -> crate::repo::Result<(BTreeMap<String, Policy>, PolicySettings)> {
    let policies = definitions(repo, layout::POLICIES, Policy::decode)?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let settings = match repo.get_sealed(SETTINGS_KEY) {
        Ok(json) => PolicySettings::decode(&json).unwrap_or_else(|e| {
            tracing::warn!("ignoring {SETTINGS_KEY}: {e}");
            PolicySettings::default()
        }),
        Err(crate::repo::RepoError::Store(crate::store::StoreError::NotFound(_))) => {
            PolicySettings::default()
        }
        Err(e) => return Err(e),
    };
    Ok((policies, settings))
}

/// The sealed definition objects under `prefix` (instances, policies), decoded by
/// `decode(name, json)`; one that does not decode is skipped with a warning.
fn definitions<T, E: std::fmt::Display>(
    repo: &Repository,
    prefix: &str,
    decode: impl Fn(&str, &[u8]) -> Result<T, E>,
) -> crate::repo::Result<Vec<T>> {
    let mut out = Vec::new();
    for obj in repo.store().list(prefix)? {
        let Some(name) = obj.key.strip_prefix(prefix) else {
            continue;
        };
        match repo
            .get_sealed(&obj.key)
            .map_err(|e| e.to_string())
            .and_then(|json| decode(name, &json).map_err(|e| e.to_string()))
        {
            Ok(v) => out.push(v),
            Err(e) => tracing::warn!(key = %obj.key, "ignoring {prefix} object: {e}"),
        }
    }
    Ok(out)
}
