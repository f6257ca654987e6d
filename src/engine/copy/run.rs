//! The order of a copy: both catalogs brought up to date (the target's finds the packs an
//! interrupted copy uploaded), the plan, the instance definitions, then each point
//! oldest first: its blobs (raw or re-chunked), a flush of the packer, its manifest;
//! then the instances' log records (between repositories that share the keys), and the
//! verify of the target.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::catalog::Catalog;
use crate::engine::{verify, CancelToken, Progress, Result, TreeReader, VerifyRequest};
use crate::repo::{BlobIndex, Packer, Repository};

use super::logs::copy_log_records;
use super::manifests::{copy_definition, write_copy};
use super::plan::{plan, stores_alike};
use super::raw::RawCopy;
use super::rechunk::Rechunk;
use super::{CopiedPoint, CopyOutcome, CopyRequest};

/// How the blobs of one copy move.
enum Mover<'a> {
    Raw(RawCopy<'a>),
    Rechunk(Rechunk<'a>),
}

/// Copies the points `req` selects from `from` into `to`; see the module documentation.
pub fn copy(
    from: &Repository,
    from_catalog: &Arc<Catalog>,
    to: &Repository,
    to_catalog: &Arc<Catalog>,
    req: &CopyRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<CopyOutcome> {
    progress.phase("refreshing catalogs");
    from_catalog.refresh(from)?;
    to_catalog.refresh(to)?;
    let plan = plan(from, from_catalog, to_catalog, req)?;
    let mut outcome = CopyOutcome {
        points_skipped: plan.skipped.len() as u64,
        rechunked: !stores_alike(from, to),
        ..CopyOutcome::default()
    };
    if outcome.rechunked {
        progress.warn("re-chunking: the target has other keys or chunker parameters");
    }
    for instance in &plan.instances {
        outcome.instances_defined += u64::from(copy_definition(from, to, instance)?);
    }
    let index: Arc<dyn BlobIndex> = to_catalog.clone();
    let packer = Packer::new(to.clone(), index);
    let trees = TreeReader::new(from.clone(), from_catalog.clone()).with_repo_cache();
    let mover = if outcome.rechunked {
        Mover::Rechunk(Rechunk {
            trees,
            packer: &packer,
            chunker: to.config().chunker,
            cancel,
            done: Mutex::new(HashMap::new()),
        })
    } else {
        Mover::Raw(RawCopy {
            trees,
            to_catalog,
            packer: &packer,
            cancel,
            seen: Mutex::new(HashSet::new()),
        })
    };
    progress.phase("copying");
    progress.set_total(plan.todo.len() as u64, 0);
    for point in &plan.todo {
        cancel.check()?;
        let m = &point.manifest;
        let root = match &mover {
            Mover::Raw(raw) => raw.point(m.root).map(|()| m.root)?,
            Mover::Rechunk(rechunk) => rechunk.tree(m.root)?,
        };
        // The manifest only once everything it references is durable.
        packer.flush()?;
        let name = write_copy(from, to, to_catalog, point, root)?;
        progress.file_done(
            std::path::Path::new(&format!("{}/{}", m.instance, m.name)),
            m.stats.bytes,
        );
        outcome.copied.push(CopiedPoint {
            instance: m.instance.clone(),
            point: m.name.clone(),
            name,
        });
    }
    let stats = packer.finish()?;
    outcome.points_copied = outcome.copied.len() as u64;
    outcome.blobs_copied = stats.new_blobs;
    outcome.bytes_uploaded = stats.stored_bytes;
    if outcome.rechunked {
        if !plan.instances.is_empty() {
            progress.warn("log records not copied: the target has other keys");
        }
    } else {
        for instance in &plan.instances {
            outcome.log_records_copied +=
                copy_log_records((from, from_catalog), (to, to_catalog), instance, progress)?;
        }
    }
    if req.verify {
        // One instance is verified alone; a copy of several verifies the whole target.
        let instance = match plan.instances.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        let vreq = VerifyRequest {
            instance,
            point: None,
            read_data: req.read_data,
        };
        outcome.verify = Some(verify(to, to_catalog, &vreq, progress, cancel)?);
    }
    Ok(outcome)
}
