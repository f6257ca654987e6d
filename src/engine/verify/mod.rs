//! Verify: checks that points can be restored in full, and names exactly what cannot.
//!
//! - **Manifests**: every selected point's manifest is read again and checked against its
//!   id, and its `parent` must name an existing manifest of its instance, or a forgotten
//!   one whose forget record continues the chain (the hash chain, see `history`).
//! - **Structure** (always): every tree of every selected point is read and checked against
//!   its id; every data blob a file references must be in the index, in a pack that exists
//!   and is long enough to hold it, and as long as the file's extent says (the check a
//!   restore and a mount read apply). Every index segment and every pack's header is read
//!   (the catalog is only a cache of them). No file data is read.
//! - **Data** (`read_data`): every pack holding referenced data blobs is downloaded, pack by
//!   pack, and each referenced blob is decoded and checked against its id, so a damaged
//!   pack blames only the blobs that are actually corrupt.
//! - **Logs**: every log record of the selected instances is read and checked, and its
//!   chain followed; a gap or an unreadable record is [`LogDamage`] (see `logs`).
//!
//! Each tree and blob is checked once, however many points share it; damage is still
//! attributed to every point and every path that references it. A file is damaged iff one
//! of its blobs is missing or corrupt, a directory iff its tree is (what is below it cannot
//! be known). Repository-level faults that damage no point go to
//! [`VerifyReport::problems`].
//!
//! A copy found corrupt is recorded in the catalog as damaged, so that no backup
//! deduplicates against it again; once a later backup stored the data anew, the points
//! read the intact copy and the damage is reported as healed ([`VerifyReport::healed`]).
//!
//! Storage errors that may be transient fail the verify instead of blaming the data.
//!
//! Files: `objects` (manifests, index segments, pack headers), `data` (the data read),
//! `healing` (known damage, and whether it still matters), `hits` (damage below a tree
//! and a point's [`Damage`] from it), `lacking` (the walk `repair`
//! asks for), `logs` (log archives), `log_damage`; this file: the `Verifier` and its walk.

mod data;
mod healing;
mod hits;
mod lacking;
mod log_damage;
mod logs;
mod objects;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::catalog::{Catalog, PointRecord};
use crate::model::{Extent, Tree};
use crate::repo::{
    layout, BlobId, BlobKind, BlobLocation, CorrectedPack, PackId, RepoError, Repository,
};
use crate::store::StoreError;

use super::restore::MAX_DEPTH;
use super::{CancelToken, EngineError, InvalidRequest, Progress, Result};
pub(super) use data::par_map;
use healing::Known;
pub use hits::Damage;
use hits::{damage_of, prefix_hits, Hit};
pub use lacking::points_lacking;
pub use log_damage::LogDamage;

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    /// Only this instance's points (all instances when `None`).
    pub instance: Option<String>,
    /// Only this point: a name or `latest`; needs `instance`.
    pub point: Option<String>,
    /// Also download the data and check every referenced blob.
    pub read_data: bool,
}

/// The outcome of a verify.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub points_checked: u64,
    pub trees_checked: u64,
    pub blobs_checked: u64,
    pub packs_checked: u64,
    pub bytes_read: u64,
    pub damaged: Vec<Damage>,
    /// Log records read, and the damage in their chains (a gap, an unreadable record).
    pub log_records_checked: u64,
    pub log_damage: Vec<LogDamage>,
    /// Repository-level faults: broken manifest chain, unreadable manifests or index
    /// segments, packs whose header is unreadable or whose bytes do not match their id.
    pub problems: Vec<String>,
    /// Damage that no longer matters: a blob whose damaged copy was stored again intact
    /// (the points read the new copy), a damaged pack whose damaged blobs all have
    /// intact copies. Sorted. Not a fault: [`VerifyReport::is_ok`] ignores it.
    pub healed: Vec<String>,
    /// Packs rebuilt from their parity (repositories with `ecc`), with the blobs in use
    /// read corrected out of them. Not a fault: [`VerifyReport::is_ok`] ignores it.
    pub corrected: Vec<CorrectedPack>,
}

impl VerifyReport {
    /// Whether nothing at all is wrong.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty() && self.problems.is_empty() && self.log_damage.is_empty()
    }
}

/// Verifies the points `req` selects; see the module documentation.
pub fn verify(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &VerifyRequest,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<VerifyReport> {
    if req.point.is_some() && req.instance.is_none() {
        return Err(EngineError::Invalid(InvalidRequest::Incomplete(
            "verifying one point needs its instance",
        )));
    }
    // Counts what this verify's reads correct from parity, and only those.
    let repo = &repo.with_own_corrections();
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    cancel.check()?;
    let points = select_points(catalog, req)?;
    let listed = listed_packs(repo)?;

    progress.phase("structure");
    progress.set_total(points.len() as u64 + listed.len() as u64, 0);
    let mut v = Verifier::new(repo, catalog, cancel, listed, HashSet::new())?;
    v.read_data = req.read_data;
    v.check_manifests(&points, req.instance.as_deref())?;
    v.check_index_segments()?;
    v.check_packs(progress)?;
    let mut hits = Vec::with_capacity(points.len());
    for p in &points {
        hits.push(v.walk(&p.manifest.root)?);
        v.report.points_checked += 1;
        progress.file_done(
            Path::new(&format!("{}/{}", p.manifest.instance, p.manifest.name)),
            0,
        );
    }

    if req.read_data {
        progress.phase("reading data");
        if v.read_data(progress)? {
            // New damage: attribute it with a second walk (trees only, no data).
            v.counting = false;
            v.clean.clear();
            v.dirty.clear();
            hits.clear();
            for p in &points {
                hits.push(v.walk(&p.manifest.root)?);
            }
        }
    }

    progress.phase("logs");
    v.check_logs(req.instance.as_deref())?;
    let mut report = v.report;
    for d in &report.log_damage {
        progress.warn(&d.message);
    }
    report.healed.sort();
    report.healed.dedup();
    report.corrected = repo.corrections();
    for (p, hits) in points.iter().zip(hits) {
        if let Some(d) = damage_of(p, &hits) {
            report.damaged.push(d);
        }
    }
    for problem in &report.problems {
        progress.warn(problem);
    }
    for d in &report.damaged {
        const SHOWN: usize = 10;
        let more = d.paths.len().saturating_sub(SHOWN);
        progress.warn(&format!(
            "point {}/{}: {} damaged: {}{}",
            d.instance,
            d.point,
            d.paths.len(),
            d.paths[..d.paths.len().min(SHOWN)].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    Ok(report)
}

/// The packs in the store, with their sizes.
pub(super) fn listed_packs(repo: &Repository) -> Result<BTreeMap<PackId, u64>> {
    Ok(repo
        .store()
        .list(layout::PACKS)
        .map_err(RepoError::from)?
        .into_iter()
        .filter_map(|o| PackId::from_key(&o.key).map(|id| (id, o.size)))
        .collect())
}

fn select_points(catalog: &Catalog, req: &VerifyRequest) -> Result<Vec<PointRecord>> {
    match (&req.instance, &req.point) {
        (None, _) => Ok(catalog.points(None)?),
        (Some(instance), None) => {
            let points = catalog.points(Some(instance))?;
            if points.is_empty() {
                return Err(EngineError::Invalid(InvalidRequest::NothingSelected(
                    format!("instance `{instance}` has no points"),
                )));
            }
            Ok(points)
        }
        (Some(instance), Some(point)) => match catalog.find_point(instance, point)? {
            Some(p) => Ok(vec![p]),
            None => Err(EngineError::NoSuchPoint {
                instance: instance.clone(),
                point: point.clone(),
            }),
        },
    }
}

/// Whether a repository error blames the data (`Ok(message)`) or the storage (`Err`): a
/// verify must not call data damaged because the network failed.
fn blame(e: RepoError) -> Result<String> {
    match e {
        RepoError::Store(StoreError::NotFound(key)) => Ok(format!("object {key} is missing")),
        RepoError::Store(e) => Err(RepoError::Store(e).into()),
        RepoError::CorruptBlob { detail, .. } => Ok(detail),
        other => Ok(other.to_string()),
    }
}

/// Why a file's extent of `len` bytes cannot be read from a blob of `raw_len` bytes.
fn extent_mismatch(id: &BlobId, len: u32, raw_len: Option<&u32>) -> Option<Arc<str>> {
    let raw = *raw_len?;
    (raw != len).then(|| {
        Arc::from(format!(
            "data blob {id}: holds {raw} bytes, its file says {len}"
        ))
    })
}

/// A tree in the middle of a walk.
struct Frame {
    id: BlobId,
    tree: Tree,
    next: usize,
    hits: Vec<Hit>,
}

struct Verifier<'a> {
    repo: &'a Repository,
    catalog: &'a Catalog,
    cancel: &'a CancelToken,
    read_data: bool,
    /// Packs in the store, with their sizes.
    listed: BTreeMap<PackId, u64>,
    report: VerifyReport,
    /// First walk: count what is checked (a second walk only attributes damage).
    counting: bool,
    bad_trees: HashMap<BlobId, Arc<str>>,
    bad_blobs: HashMap<BlobId, Arc<str>>,
    /// Data blobs already checked (structure).
    seen_blobs: HashSet<BlobId>,
    /// Structurally sound referenced data blobs, by pack, for `read_data`.
    by_pack: BTreeMap<PackId, Vec<(BlobId, BlobLocation)>>,
    /// Packs whose header was found unreadable (already a problem).
    bad_headers: HashSet<PackId>,
    /// Plaintext lengths of the located data blobs, as the index records them.
    raw_lens: HashMap<BlobId, u32>,
    /// Copies the catalog knew to be damaged when the verify started.
    known: Known,
    /// Walk memo: trees with nothing damaged below, and the damage below the others.
    clean: HashSet<BlobId>,
    dirty: HashMap<BlobId, Arc<Vec<Hit>>>,
    no_hits: Arc<Vec<Hit>>,
    /// Blobs taken for missing wherever the index finds them (see [`points_lacking`]).
    lost: HashSet<BlobId>,
}

impl<'a> Verifier<'a> {
    fn new(
        repo: &'a Repository,
        catalog: &'a Catalog,
        cancel: &'a CancelToken,
        listed: BTreeMap<PackId, u64>,
        lost: HashSet<BlobId>,
    ) -> Result<Verifier<'a>> {
        Ok(Verifier {
            repo,
            catalog,
            cancel,
            read_data: false,
            listed,
            report: VerifyReport::default(),
            counting: true,
            bad_trees: HashMap::new(),
            bad_blobs: HashMap::new(),
            seen_blobs: HashSet::new(),
            by_pack: BTreeMap::new(),
            bad_headers: HashSet::new(),
            raw_lens: HashMap::new(),
            known: Known::load(catalog)?,
            clean: HashSet::new(),
            dirty: HashMap::new(),
            no_hits: Arc::new(Vec::new()),
            lost,
        })
    }

    fn problem(&mut self, text: String) {
        tracing::warn!("verify: {text}");
        self.report.problems.push(text);
    }

    /// Reports a referenced blob that readers find intact at `loc` although a copy of it
    /// is known to be damaged.
    fn note_healed(&mut self, id: &BlobId, loc: &BlobLocation) {
        let notes = self.known.healed_notes(id, loc);
        self.report.healed.extend(notes);
    }

    /// Reports a fault of one pack: healed if every blob known to be damaged in it is read
    /// from an intact copy elsewhere, else a problem.
    fn pack_problem(&mut self, pack: &PackId, text: String) -> Result<()> {
        if self.known.pack_healed(self.catalog, pack)? {
            self.report.healed.push(format!(
                "{text}; every damaged blob in it was stored again intact (a prune reclaims the pack)"
            ));
        } else {
            self.problem(text);
        }
        Ok(())
    }

    /// Checks a data blob's place in the index and the store; `Some(cause)` if damaged.
    fn check_blob(&mut self, id: &BlobId) -> Result<Option<Arc<str>>> {
        if let Some(cause) = self.bad_blobs.get(id) {
            return Ok(Some(cause.clone()));
        }
        if !self.counting || !self.seen_blobs.insert(*id) {
            return Ok(None);
        }
        self.report.blobs_checked += 1;
        let cause = match self.locate(id, BlobKind::Data)? {
            Ok(loc) => {
                self.raw_lens.insert(*id, loc.raw_len);
                self.note_healed(id, &loc);
                if self.read_data {
                    self.by_pack.entry(loc.pack).or_default().push((*id, loc));
                }
                return Ok(None);
            }
            Err(cause) => cause,
        };
        let cause: Arc<str> = Arc::from(format!("data blob {id}: {cause}"));
        self.bad_blobs.insert(*id, cause.clone());
        Ok(Some(cause))
    }

    /// Where a blob is, if the index has it and its pack can hold it.
    fn locate(
        &self,
        id: &BlobId,
        kind: BlobKind,
    ) -> Result<std::result::Result<BlobLocation, String>> {
        if self.lost.contains(id) {
            return Ok(Err(
                "lost: its only copies are in damaged or missing packs".into()
            ));
        }
        let Some(loc) = self.catalog.lookup_blob(id)? else {
            return Ok(Err(
                "not in the index (its pack is missing or was never indexed)".into(),
            ));
        };
        if loc.kind != kind {
            return Ok(Err(format!(
                "the index says it is a {:?} blob, not a {kind:?} blob",
                loc.kind
            )));
        }
        let end = loc.offset as u64 + loc.length as u64;
        Ok(match self.listed.get(&loc.pack) {
            None => Err(format!("pack {} is missing", loc.pack.to_hex())),
            Some(size) if *size < end => Err(format!(
                "pack {} is truncated to {size} bytes, the blob ends at {end}",
                loc.pack.to_hex()
            )),
            Some(_) => Ok(loc),
        })
    }

    /// Reads, checks and decodes a tree; `Err(cause)` if it cannot be.
    fn read_tree(&mut self, id: &BlobId) -> Result<std::result::Result<Tree, String>> {
        self.cancel.check()?;
        if self.counting {
            self.report.trees_checked += 1;
        }
        let loc = match self.locate(id, BlobKind::Tree)? {
            Ok(loc) => loc,
            Err(cause) => return Ok(Err(cause)),
        };
        if self.counting {
            self.note_healed(id, &loc);
        }
        let plain = match self.repo.read_blob(id, &loc) {
            Ok(plain) => plain,
            Err(e) => {
                if let RepoError::CorruptBlob { detail, .. } = &e {
                    self.catalog.mark_damaged(id, &loc.pack, detail)?;
                }
                return Ok(Err(format!(
                    "{} (in pack {})",
                    blame(e)?,
                    loc.pack.to_hex()
                )));
            }
        };
        self.report.bytes_read += loc.length as u64;
        Ok(Tree::decode(&plain).map_err(|e| e.to_string()))
    }

    /// Opens a tree for walking, or returns the damage it amounts to.
    fn open_tree(&mut self, id: &BlobId) -> Result<std::result::Result<Tree, Arc<Vec<Hit>>>> {
        let cause = match self.bad_trees.get(id) {
            Some(cause) => cause.clone(),
            None => match self.read_tree(id)? {
                Ok(tree) => return Ok(Ok(tree)),
                Err(cause) => {
                    let cause: Arc<str> = Arc::from(format!("tree {id}: {cause}"));
                    self.bad_trees.insert(*id, cause.clone());
                    cause
                }
            },
        };
        let hits = Arc::new(vec![Hit {
            path: Vec::new(),
            causes: vec![cause],
        }]);
        self.dirty.insert(*id, hits.clone());
        Ok(Err(hits))
    }

    fn memo(&self, id: &BlobId) -> Option<Arc<Vec<Hit>>> {
        if self.clean.contains(id) {
            return Some(self.no_hits.clone());
        }
        self.dirty.get(id).cloned()
    }

    /// Walks a tree (depth first, without recursion) and returns the damage below it.
    fn walk(&mut self, root: &BlobId) -> Result<Arc<Vec<Hit>>> {
        if let Some(hits) = self.memo(root) {
            return Ok(hits);
        }
        let mut stack = match self.open_tree(root)? {
            Ok(tree) => vec![Frame {
                id: *root,
                tree,
                next: 0,
                hits: Vec::new(),
            }],
            Err(hits) => return Ok(hits),
        };
        loop {
            let depth = stack.len();
            let top = stack
                .last_mut()
                .expect("the walk ends when the stack empties");
            if top.next == top.tree.nodes.len() {
                let done = stack.pop().expect("checked above");
                let hits = if done.hits.is_empty() {
                    self.clean.insert(done.id);
                    self.no_hits.clone()
                } else {
                    let hits = Arc::new(done.hits);
                    self.dirty.insert(done.id, hits.clone());
                    hits
                };
                match stack.last_mut() {
                    None => return Ok(hits),
                    Some(parent) => {
                        let name = &parent.tree.nodes[parent.next - 1].name;
                        prefix_hits(&mut parent.hits, name, &hits);
                    }
                }
                continue;
            }
            let node = &top.tree.nodes[top.next];
            top.next += 1;
            let mut causes: Vec<Arc<str>> = Vec::new();
            for e in &node.content {
                if let Extent::Data { id, len } = e {
                    let cause = match self.check_blob(id)? {
                        Some(cause) => Some(cause),
                        None => extent_mismatch(id, *len, self.raw_lens.get(id)),
                    };
                    if let Some(cause) = cause {
                        if !causes.contains(&cause) {
                            causes.push(cause);
                        }
                    }
                }
            }
            if !causes.is_empty() {
                top.hits.push(Hit {
                    path: node.name.clone(),
                    causes,
                });
            }
            let Some(sub) = node.subtree else { continue };
            if depth > MAX_DEPTH {
                // What a restore refuses (no path that deep could be opened anyway).
                top.hits.push(Hit {
                    path: node.name.clone(),
                    causes: vec![Arc::from(format!(
                        "directories nested deeper than {MAX_DEPTH}"
                    ))],
                });
                continue;
            }
            if let Some(hits) = self.memo(&sub) {
                prefix_hits(&mut top.hits, &node.name, &hits);
                continue;
            }
            match self.open_tree(&sub)? {
                Ok(tree) => stack.push(Frame {
                    id: sub,
                    tree,
                    next: 0,
                    hits: Vec::new(),
                }),
                Err(hits) => {
                    let top = stack.last_mut().expect("not empty");
                    let name = &top.tree.nodes[top.next - 1].name;
                    prefix_hits(&mut top.hits, name, &hits);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
