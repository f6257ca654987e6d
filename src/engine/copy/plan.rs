//! What a copy does: the points selected in the source, oldest first per instance, and
//! which of them the target already holds a copy of (by the `copied_from` record of its
//! manifests); and whether the two repositories store blobs alike.

use std::collections::HashSet;

use crate::catalog::{Catalog, PointRecord};
use crate::model::names::check_instance_name;
use crate::repo::Repository;

use super::CopyRequest;
use crate::engine::{EngineError, InvalidRequest, Result};

/// The points to copy and those already copied, both oldest first per instance.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub todo: Vec<PointRecord>,
    pub skipped: Vec<PointRecord>,
    /// The instances the selected points belong to, sorted.
    pub instances: Vec<String>,
}

/// Selects the source's points and splits them by whether the target has them.
pub(super) fn plan(
    from: &Repository,
    from_catalog: &Catalog,
    to_catalog: &Catalog,
    req: &CopyRequest,
) -> Result<Plan> {
    let selected = select(from_catalog, req)?;
    let copied: HashSet<String> = to_catalog
        .points(None)?
        .into_iter()
        .filter_map(|p| p.manifest.copied_from)
        .filter(|c| c.repository == from.config().id)
        .map(|c| c.manifest)
        .collect();
    let mut plan = Plan::default();
    for point in selected {
        if !plan.instances.contains(&point.manifest.instance) {
            plan.instances.push(point.manifest.instance.clone());
        }
        if copied.contains(&point.id.to_hex()) {
            plan.skipped.push(point);
        } else {
            plan.todo.push(point);
        }
    }
    plan.instances.sort();
    Ok(plan)
}

fn select(catalog: &Catalog, req: &CopyRequest) -> Result<Vec<PointRecord>> {
    let Some(instance) = &req.instance else {
        if !req.points.is_empty() {
            return Err(EngineError::Invalid(InvalidRequest::Incomplete(
                "copying named points needs their instance",
            )));
        }
        return Ok(catalog.points(None)?);
    };
    check_instance_name(instance)?;
    let points = catalog.points(Some(instance))?;
    if req.points.is_empty() {
        if points.is_empty() {
            return Err(EngineError::NoSuchPoint {
                instance: instance.clone(),
                point: "latest".into(),
            });
        }
        return Ok(points);
    }
    let mut wanted = HashSet::new();
    for name in &req.points {
        let found =
            catalog
                .find_point(instance, name)?
                .ok_or_else(|| EngineError::NoSuchPoint {
                    instance: instance.clone(),
                    point: name.clone(),
                })?;
        wanted.insert(found.id);
    }
    Ok(points
        .into_iter()
        .filter(|p| wanted.contains(&p.id))
        .collect())
}

/// Whether the target stores the source's blobs alike: the same master key (so blob
/// ids and sealed blobs are equal) and the same chunker parameters.
pub(super) fn stores_alike(from: &Repository, to: &Repository) -> bool {
    from.key() == to.key() && from.config().chunker == to.config().chunker
}
