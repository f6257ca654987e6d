//! Forget: removes named points. For each point it first writes a sealed, write-once
//! forget record (`forgotten/<instance>/<id>`, holding the manifest's exact JSON, see
//! docs/FORMAT.md), then deletes the manifest object and the catalog row. The record is
//! the commit point: once it exists the point is gone for every reader (refresh drops
//! it even where the manifest is still listed, e.g. after a crash between the two
//! writes), and `verify` bridges the point's place in the history chain with it. Data is
//! not touched: prune reclaims what no point references any more.

use std::path::Path;
use std::sync::Arc;

use crate::catalog::{Catalog, PointRecord};
use crate::model::forgotten::FORGOTTEN_VERSION;
use crate::model::names::check_instance_name;
use crate::model::{ForgetRecord, Forgotten, Manifest, PointKind};
use crate::repo::{RepoError, Repository};
use crate::store::StoreError;

use super::{CancelToken, EngineError, InvalidRequest, Progress, Result};

/// Which points to forget.
#[derive(Debug, Clone)]
pub struct ForgetRequest {
    pub instance: String,
    /// Point names; `latest` names the newest point.
    pub points: Vec<String>,
    /// Manual points are removed only when this is true.
    pub allow_manual: bool,
}

/// What a forget removed: the point names, in the order they were removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgetOutcome {
    pub removed: Vec<String>,
}

/// Forgets the points `req` names. All names are checked first: an unknown point or a
/// manual point without `allow_manual` fails the whole request and changes nothing.
pub fn forget(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &ForgetRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<ForgetOutcome> {
    check_instance_name(&req.instance)?;
    if req.points.is_empty() {
        return Err(EngineError::Invalid(InvalidRequest::Incomplete(
            "no point to forget",
        )));
    }
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    let selected = select(catalog, req)?;
    cancel.check()?;

    progress.phase("deleting");
    progress.set_total(selected.len() as u64, 0);
    let mut outcome = ForgetOutcome::default();
    for p in &selected {
        cancel.check()?;
        forget_point(repo, catalog, p)?;
        progress.file_done(
            Path::new(&format!("{}/{}", p.manifest.instance, p.manifest.name)),
            0,
        );
        outcome.removed.push(p.manifest.name.clone());
    }
    Ok(outcome)
}

/// Resolves and checks every name before anything is deleted.
fn select(catalog: &Catalog, req: &ForgetRequest) -> Result<Vec<PointRecord>> {
    let points = catalog.points(Some(&req.instance))?;
    let mut selected: Vec<PointRecord> = Vec::new();
    for name in &req.points {
        let latest = crate::catalog::latest_of(points.iter().cloned());
        let found = if name == "latest" {
            latest.as_ref()
        } else {
            points.iter().find(|p| p.manifest.name == *name)
        };
        let Some(p) = found else {
            return Err(EngineError::NoSuchPoint {
                instance: req.instance.clone(),
                point: name.clone(),
            });
        };
        if p.manifest.kind == PointKind::Manual && !req.allow_manual {
            return Err(EngineError::Invalid(InvalidRequest::ManualPoint {
                instance: req.instance.clone(),
                point: p.manifest.name.clone(),
            }));
        }
        if !selected.iter().any(|s| s.id == p.id) {
            selected.push(p.clone());
        }
    }
    Ok(selected)
}

/// Writes the forget record, then deletes the manifest and the catalog row.
fn forget_point(repo: &Repository, catalog: &Catalog, p: &PointRecord) -> Result<()> {
    let instance = &p.manifest.instance;
    let key = Manifest::object_key(instance, &p.id);
    // The exact stored JSON, so that the record proves itself against the id.
    let json = repo.get_sealed(&key)?;
    let manifest = Manifest::decode(repo.key(), &p.id, instance, &json)?;
    let record = ForgetRecord {
        version: FORGOTTEN_VERSION,
        instance: instance.clone(),
        manifest: String::from_utf8(json)
            .map_err(|_| RepoError::Format(format!("manifest {key} is not UTF-8")))?,
        forgotten_ns: crate::model::now_ns(),
        host: crate::model::hostname(),
    };
    match repo.put_sealed(&ForgetRecord::object_key(instance, &p.id), record.encode()) {
        // A previous forget of this point got this far: its record stands.
        Ok(()) | Err(RepoError::Store(StoreError::AlreadyExists(_))) => {}
        Err(e) => return Err(e.into()),
    }
    catalog.insert_forgotten(&Forgotten {
        id: p.id,
        manifest,
        forgotten_ns: record.forgotten_ns,
    })?;
    repo.store().delete(&key).map_err(RepoError::from)?;
    tracing::info!(instance = %instance, point = %p.manifest.name, "point forgotten");
    Ok(())
}
