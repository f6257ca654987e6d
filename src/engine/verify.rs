//! Verify: checks that points can be restored in full, and names exactly what cannot.
//!
//! - **Manifests**: every selected point's manifest is read again and checked against its
//!   id, and its `parent` must name an existing manifest of its instance, or a forgotten
//!   one whose forget record continues the chain (the hash chain, see `history`).
//! - **Structure** (always): every tree of every selected point is read and checked against
//!   its id; every data blob a file references must be in the index, in a pack that exists
//!   and is long enough to hold it. Every index segment and every pack's header is read
//!   (the catalog is only a cache of them). No file data is read.
//! - **Data** (`read_data`): every pack holding referenced data blobs is downloaded, pack by
//!   pack, and each referenced blob is decoded and checked against its id, so a damaged
//!   pack blames only the blobs that are actually corrupt.
//!
//! Each tree and blob is checked once, however many points share it; damage is still
//! attributed to every point and every path that references it. A file is damaged iff one
//! of its blobs is missing or corrupt, a directory iff its tree is (what is below it cannot
//! be known). Repository-level faults that damage no point go to
//! [`VerifyReport::problems`].
//!
//! Storage errors that may be transient fail the verify instead of blaming the data.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::catalog::{Catalog, PointRecord};
use crate::model::{Extent, ForgetRecord, Manifest, Tree};
use crate::repo::pack::{self, PACK_MAGIC};
use crate::repo::{BlobId, BlobKind, BlobLocation, PackId, RepoError, Repository};
use crate::store::StoreError;

use super::history::Chain;
use super::{CancelToken, EngineError, Progress, Result};

/// Packs downloaded at once (memory: this many packs).
const WORKERS: usize = 4;

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

/// One damaged point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    pub instance: String,
    pub point: String,
    /// Damaged files and directories, relative to the point root (`.` for the root
    /// itself), lossy UTF-8, sorted.
    pub paths: Vec<String>,
    /// Why: the missing or corrupt objects, sorted.
    pub causes: Vec<String>,
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
    /// Repository-level faults: broken manifest chain, unreadable manifests or index
    /// segments, packs whose header is unreadable or whose bytes do not match their id.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing at all is wrong.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty() && self.problems.is_empty()
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
        return Err(EngineError::Invalid(
            "verifying one point needs its instance".into(),
        ));
    }
    progress.phase("refreshing catalog");
    catalog.refresh(repo)?;
    cancel.check()?;
    let points = select_points(catalog, req)?;
    let listed: BTreeMap<PackId, u64> = repo
        .store()
        .list("packs/")
        .map_err(RepoError::from)?
        .into_iter()
        .filter_map(|o| PackId::from_key(&o.key).map(|id| (id, o.size)))
        .collect();

    progress.phase("structure");
    progress.set_total(points.len() as u64 + listed.len() as u64, 0);
    let mut v = Verifier {
        repo,
        catalog,
        cancel,
        read_data: req.read_data,
        listed,
        report: VerifyReport::default(),
        counting: true,
        bad_trees: HashMap::new(),
        bad_blobs: HashMap::new(),
        seen_blobs: HashSet::new(),
        by_pack: BTreeMap::new(),
        bad_headers: HashSet::new(),
        clean: HashSet::new(),
        dirty: HashMap::new(),
        no_hits: Arc::new(Vec::new()),
    };
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

    let mut report = v.report;
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

fn select_points(catalog: &Catalog, req: &VerifyRequest) -> Result<Vec<PointRecord>> {
    match (&req.instance, &req.point) {
        (None, _) => Ok(catalog.points(None)?),
        (Some(instance), None) => {
            let points = catalog.points(Some(instance))?;
            if points.is_empty() {
                return Err(EngineError::Invalid(format!(
                    "instance `{instance}` has no points"
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

/// Damage found below a tree: `path` is relative to that tree (empty: the tree itself).
#[derive(Debug, Clone)]
struct Hit {
    path: Vec<u8>,
    causes: Vec<Arc<str>>,
}

/// Hits of a subtree named `name`, as seen from its parent.
fn prefix_hits(out: &mut Vec<Hit>, name: &[u8], sub: &[Hit]) {
    for h in sub {
        let mut path = name.to_vec();
        if !h.path.is_empty() {
            path.push(b'/');
            path.extend_from_slice(&h.path);
        }
        out.push(Hit {
            path,
            causes: h.causes.clone(),
        });
    }
}

fn damage_of(p: &PointRecord, hits: &[Hit]) -> Option<Damage> {
    if hits.is_empty() {
        return None;
    }
    let mut paths: Vec<String> = hits
        .iter()
        .map(|h| {
            if h.path.is_empty() {
                ".".to_string()
            } else {
                String::from_utf8_lossy(&h.path).into_owned()
            }
        })
        .collect();
    paths.sort();
    paths.dedup();
    let mut causes: Vec<String> = hits
        .iter()
        .flat_map(|h| h.causes.iter().map(|c| c.to_string()))
        .collect();
    causes.sort();
    causes.dedup();
    Some(Damage {
        instance: p.manifest.instance.clone(),
        point: p.manifest.name.clone(),
        paths,
        causes,
    })
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
    /// Walk memo: trees with nothing damaged below, and the damage below the others.
    clean: HashSet<BlobId>,
    dirty: HashMap<BlobId, Arc<Vec<Hit>>>,
    no_hits: Arc<Vec<Hit>>,
}

impl Verifier<'_> {
    fn problem(&mut self, text: String) {
        tracing::warn!("verify: {text}");
        self.report.problems.push(text);
    }

    /// Re-reads the selected points' manifests, finds unreadable ones, checks the chain.
    fn check_manifests(&mut self, points: &[PointRecord], instance: Option<&str>) -> Result<()> {
        let cached = self.catalog.points(instance)?;
        let known: HashSet<String> = cached.iter().map(|p| p.id.to_hex()).collect();
        let prefix = match instance {
            Some(i) => format!("points/{i}/"),
            None => "points/".to_string(),
        };
        let mut listed = self.repo.store().list(&prefix).map_err(RepoError::from)?;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        for obj in listed {
            match Manifest::parse_key(&obj.key) {
                None => self.problem(format!("{} is not a valid point manifest key", obj.key)),
                Some((i, _)) if instance.is_some_and(|want| want != i) => {}
                Some((_, id)) if !known.contains(&id.to_hex()) => self.problem(format!(
                    "point manifest {} is unreadable or does not match its id",
                    obj.key
                )),
                Some(_) => {}
            }
        }
        self.check_forget_records(instance)?;
        let mut by_instance: HashMap<&str, Vec<&PointRecord>> = HashMap::new();
        let mut chains: HashMap<String, Chain> = HashMap::new();
        for p in &cached {
            by_instance
                .entry(p.manifest.instance.as_str())
                .or_default()
                .push(p);
            chains
                .entry(p.manifest.instance.clone())
                .or_default()
                .existing
                .insert(p.id.to_hex());
        }
        for (i, id, parent) in self.catalog.forgotten(instance)? {
            chains
                .entry(i)
                .or_default()
                .forgotten
                .insert(id.to_hex(), parent);
        }
        for p in points {
            self.cancel.check()?;
            let m = &p.manifest;
            let key = Manifest::object_key(&m.instance, &p.id);
            let fresh = self
                .repo
                .get_sealed(&key)
                .map_err(|e| blame(e).map(|why| format!("point {}/{}: {why}", m.instance, m.name)))
                .and_then(|json| {
                    Manifest::decode(self.repo.key(), &p.id, &m.instance, &json).map_err(|e| {
                        Ok(format!(
                            "point {}/{}: manifest {key}: {e}",
                            m.instance, m.name
                        ))
                    })
                });
            match fresh {
                Ok(stored) if stored == *m => {}
                Ok(_) => self.problem(format!(
                    "point {}/{}: manifest {key} differs from the cached copy",
                    m.instance, m.name
                )),
                Err(Ok(why)) => self.problem(why),
                Err(Err(e)) => return Err(e),
            }
            let siblings = by_instance
                .get(m.instance.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let chain = chains
                .get(&m.instance)
                .map(|c| c.check(m.parent.as_deref()));
            match &m.parent {
                Some(parent) if matches!(&chain, Some(Err(gap)) if gap == parent) => {
                    self.problem(format!(
                        "point {}/{}: its parent manifest {parent} is missing: the history chain is broken",
                        m.instance, m.name
                    ))
                }
                Some(parent) if matches!(chain, Some(Err(_))) => {
                    let gap = chain.and_then(|c| c.err()).unwrap_or_default();
                    self.problem(format!(
                        "point {}/{}: its parent {parent} was forgotten, but manifest {gap} further back is missing without a forget record: the history chain is broken",
                        m.instance, m.name
                    ))
                }
                None if siblings.first().is_some_and(|first| first.id != p.id) => {
                    self.problem(format!(
                        "point {}/{} names no parent but is not the first point of its instance: the history chain is broken",
                        m.instance, m.name
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reports forget records that the catalog refused (unreadable or forged).
    fn check_forget_records(&mut self, instance: Option<&str>) -> Result<()> {
        let known: HashSet<String> = self
            .catalog
            .forgotten(instance)?
            .into_iter()
            .map(|(_, id, _)| id.to_hex())
            .collect();
        let prefix = match instance {
            Some(i) => format!("forgotten/{i}/"),
            None => "forgotten/".to_string(),
        };
        let mut listed = self.repo.store().list(&prefix).map_err(RepoError::from)?;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        for obj in listed {
            match ForgetRecord::parse_key(&obj.key) {
                Some((_, id)) if known.contains(&id.to_hex()) => {}
                _ => self.problem(format!(
                    "forget record {} is unreadable or does not match the point it names",
                    obj.key
                )),
            }
        }
        Ok(())
    }

    /// Reads every index segment and reports those that do not decode.
    fn check_index_segments(&mut self) -> Result<()> {
        let mut segments = self.repo.store().list("index/").map_err(RepoError::from)?;
        segments.sort_by(|a, b| a.key.cmp(&b.key));
        let repo = self.repo;
        let results = par_map(&segments, self.cancel, |obj| {
            Ok(match repo.read_index(&obj.key) {
                Ok(_) => (obj.size, None),
                Err(e) => (0, Some(blame(e)?)),
            })
        })?;
        for (obj, (bytes, bad)) in segments.iter().zip(results) {
            self.report.bytes_read += bytes;
            if let Some(why) = bad {
                self.problem(format!("index segment {} is unreadable: {why}", obj.key));
            }
        }
        Ok(())
    }

    /// Checks every listed pack's size against the index and reads its header.
    fn check_packs(&mut self, progress: &dyn Progress) -> Result<()> {
        let indexed: HashMap<PackId, u64> = self
            .catalog
            .packs()?
            .into_iter()
            .map(|(id, len, _)| (id, len))
            .collect();
        let packs: Vec<(PackId, u64)> = self.listed.iter().map(|(id, s)| (*id, *s)).collect();
        for (id, size) in &packs {
            if let Some(len) = indexed.get(id).filter(|len| **len != *size) {
                self.problem(format!(
                    "pack {} is {size} bytes but the index records {len}",
                    id.to_hex()
                ));
            }
        }
        let repo = self.repo;
        let results = par_map(&packs, self.cancel, |(id, size)| {
            let result = if *size < (PACK_MAGIC.len() + 4) as u64 {
                Some(format!("only {size} bytes"))
            } else {
                match repo.read_pack_header(id, *size) {
                    Ok(_) => None,
                    Err(e) => Some(blame(e)?),
                }
            };
            progress.file_done(Path::new(&id.key()), 0);
            Ok(result)
        })?;
        self.report.packs_checked += packs.len() as u64;
        for ((id, _), bad) in packs.iter().zip(results) {
            if let Some(why) = bad {
                self.bad_headers.insert(*id);
                self.problem(format!("pack {}: header unreadable: {why}", id.to_hex()));
            }
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
        let Some(loc) = self.catalog.lookup_blob(id)? else {
            return Ok(Err(
                "not in the index (its pack is missing or was never indexed)".into(),
            ));
        };
        if loc.kind != kind {
            return Ok(Err(format!("the index says it is a {:?} blob", loc.kind)));
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
        let plain = match self.repo.read_blob(id, &loc) {
            Ok(plain) => plain,
            Err(e) => {
                return Ok(Err(format!(
                    "{} (in pack {})",
                    blame(e)?,
                    loc.pack.to_hex()
                )))
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
                if let Extent::Data { id, .. } = e {
                    if let Some(cause) = self.check_blob(id)? {
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

    /// Downloads every pack holding referenced data blobs and checks those blobs. Returns
    /// whether damage was found.
    fn read_data(&mut self, progress: &dyn Progress) -> Result<bool> {
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
            for (blob, why) in out.bad {
                found = true;
                self.bad_blobs
                    .insert(blob, Arc::from(format!("data blob {blob}: {why}")));
            }
            if !out.matches_id {
                self.problem(format!(
                    "pack {}: its bytes do not match its id ({damaged} of the {} blobs in use from it are damaged)",
                    id.to_hex(),
                    blobs.len()
                ));
            } else if let Some(why) = out.malformed.filter(|_| !self.bad_headers.contains(id)) {
                self.problem(format!("pack {}: {why}", id.to_hex()));
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
    bad: Vec<(BlobId, String)>,
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
                bad: blobs.iter().map(|(b, _)| (*b, why.clone())).collect(),
            });
        }
        Err(e) => return Err(RepoError::from(e).into()),
    };
    // The same checks as `Repository::read_pack`, keeping the bytes when they fail: then
    // each blob in use is checked on its own so that only the corrupt ones are blamed.
    let matches_id = PackId::of(&bytes) == *id;
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
            bad.push((
                *blob,
                format!(
                    "pack {} is truncated to {} bytes, the blob ends at {end}",
                    id.to_hex(),
                    bytes.len()
                ),
            ));
            continue;
        };
        if let Err(e) = repo.decode_blob(blob, loc, stored) {
            bad.push((*blob, format!("{} (in pack {})", blame(e)?, id.to_hex())));
        }
    }
    Ok(PackData {
        bytes: bytes.len() as u64,
        matches_id,
        malformed,
        bad,
    })
}

/// Runs `f` on every item with a few worker threads, in order of the results; stops at
/// the first error or on cancellation.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    cancel: &CancelToken,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let error: Mutex<Option<EngineError>> = Mutex::new(None);
    let fail = |e: EngineError| {
        stop.store(true, Ordering::SeqCst);
        error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    };
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(items.len()) {
            s.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Err(e) = cancel.check() {
                    fail(e);
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                match f(item) {
                    Ok(r) => results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r),
                    Err(e) => {
                        fail(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item is done when no worker failed"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &[u8], cause: &str) -> Hit {
        Hit {
            path: path.to_vec(),
            causes: vec![Arc::from(cause)],
        }
    }

    #[test]
    fn hits_are_prefixed_with_the_directory_name() {
        let mut out = Vec::new();
        prefix_hits(&mut out, b"dir", &[hit(b"", "t"), hit(b"a/b", "x")]);
        let paths: Vec<_> = out.iter().map(|h| h.path.clone()).collect();
        assert_eq!(paths, vec![b"dir".to_vec(), b"dir/a/b".to_vec()]);
        assert_eq!(&*out[1].causes[0], "x");
    }

    #[test]
    fn damage_is_sorted_deduplicated_and_names_the_root_as_dot() {
        let p = PointRecord {
            id: crate::model::ManifestId([0; 32]),
            manifest: Manifest {
                version: 1,
                instance: "db".into(),
                name: "2026-01-01T000000Z".into(),
                kind: crate::model::PointKind::Manual,
                time_ns: 0,
                parent: None,
                root: BlobId([0; 32]),
                layout: crate::model::Layout::Single,
                paths: vec![],
                host: String::new(),
                stats: Default::default(),
                excludes: Vec::new(),
                root_meta: None,
            },
        };
        assert_eq!(damage_of(&p, &[]), None);
        let d = damage_of(
            &p,
            &[
                hit(b"z", "b"),
                hit(b"a\xff", "a"),
                hit(b"", "b"),
                hit(b"z", "b"),
            ],
        )
        .unwrap();
        assert_eq!(d.paths, vec![".", "a\u{fffd}", "z"]);
        assert_eq!(d.causes, vec!["a", "b"]);
    }

    #[test]
    fn transient_storage_errors_fail_instead_of_blaming_data() {
        assert!(blame(RepoError::Store(StoreError::NotFound("packs/x".into()))).is_ok());
        assert!(blame(RepoError::Store(StoreError::Injected("x".into()))).is_err());
        assert_eq!(
            blame(RepoError::CorruptBlob {
                id: BlobId([1; 32]),
                detail: "authentication failed".into()
            })
            .unwrap(),
            "authentication failed"
        );
    }

    #[test]
    fn par_map_keeps_order_and_stops_on_error_or_cancel() {
        let items: Vec<u32> = (0..50).collect();
        let cancel = CancelToken::new();
        let out = par_map(&items, &cancel, |i| Ok(i * 2)).unwrap();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let err = par_map(&items, &cancel, |i| {
            if *i == 7 {
                Err(EngineError::Invalid("seven".into()))
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
