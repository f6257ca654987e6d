//! Planning a restore: what each staged name becomes, from the point's trees and (in
//! place) the original, before anything is written.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::fsmeta::{node_from_metadata, read_xattrs};
use crate::engine::{CancelToken, EngineError, InvalidRequest, Result, TreeReader};
use crate::model::names::is_safe_component;
use crate::model::{Manifest, ModelError, Node, NodeKind, Tree};

use super::request::{Dest, Protected, RestoreMode, RestoreRequest, Scope, MAX_DEPTH};
use super::stale::stage_path;
use super::unit::{join, DirMeta, Entry, Leaf, NodeRef, PlanDir, Swap, Unit};
use crate::sync::LockExt;

/// An entry found in the original.
#[derive(Clone)]
struct Existing {
    path: PathBuf,
    is_dir: bool,
    is_file: bool,
}

impl Existing {
    fn of(path: &Path) -> Option<Existing> {
        let md = fs::symlink_metadata(path).ok()?;
        Some(Existing {
            path: path.to_path_buf(),
            is_dir: md.is_dir(),
            is_file: md.is_file(),
        })
    }
}

struct Planned {
    entry: Option<Entry>,
    /// Whether anything under it comes from the point or goes away.
    touched: bool,
}

pub(super) struct Planner<'a> {
    pub(super) reader: &'a TreeReader,
    pub(super) scope: &'a Scope,
    pub(super) protected: &'a Protected,
    pub(super) cancel: &'a CancelToken,
    pub(super) removed: AtomicU64,
    /// Skip directories whose tree is damaged instead of failing: `skipped` collects
    /// their paths relative to the unit being planned, with the cause; `plan_units` moves
    /// them into `skipped_paths` as destination paths.
    pub(super) skip_damaged: bool,
    pub(super) skipped: std::sync::Mutex<Vec<(PathBuf, String)>>,
    pub(super) skipped_paths: std::sync::Mutex<Vec<PathBuf>>,
}

pub(super) fn plan_units(
    planner: &Planner<'_>,
    req: &RestoreRequest,
    m: &Manifest,
    dests: &[Dest],
) -> Result<Vec<Unit>> {
    let root = planner.reader.tree(&m.root)?;
    let in_place = req.mode == RestoreMode::InPlace;
    let mut units = Vec::new();
    for d in dests {
        let existing = if in_place {
            Existing::of(&d.path)
        } else {
            None
        };
        let planned = match &d.root_entry {
            None => {
                let whole = planner.scope.0.is_none();
                let ex_dir = existing.as_ref().filter(|e| e.is_dir);
                if existing.as_ref().is_some_and(|e| !e.is_dir) && whole {
                    planner.removed.fetch_add(1, Ordering::Relaxed);
                }
                let (entries, touched) = planner.dir_entries(
                    Some(&root),
                    ex_dir.map(|e| e.path.as_path()),
                    Path::new(""),
                    Path::new(""),
                    whole,
                    0,
                )?;
                let meta = match ex_dir {
                    Some(e) => DirMeta::Existing(capture(&e.path)?),
                    None => DirMeta::Fresh,
                };
                let entry = Entry::Dir(PlanDir {
                    rel: PathBuf::new(),
                    meta,
                    entries,
                });
                Planned {
                    entry: Some(entry),
                    touched: touched || whole,
                }
            }
            Some(name) => {
                let node = root
                    .nodes
                    .binary_search_by(|n| n.name.as_slice().cmp(name))
                    .ok()
                    .map(|idx| NodeRef {
                        tree: root.clone(),
                        idx,
                    });
                planner.plan_name(
                    node,
                    existing,
                    Path::new(OsStr::from_bytes(name)),
                    Path::new(""),
                    false,
                    0,
                )?
            }
        };
        let skipped = std::mem::take(&mut *planner.skipped.locked());
        for (urel, why) in skipped {
            let path = join(&d.path, &urel);
            tracing::warn!("skipping damaged directory {}: {why}", path.display());
            planner.skipped_paths.locked().push(path);
        }
        if !planned.touched {
            continue; // nothing of this destination is in scope
        }
        let stage = stage_path(&d.path)?;
        let swap = match (&planned.entry, fs::symlink_metadata(&d.path).is_ok()) {
            (None, _) => Swap::Remove,
            (Some(_), false) => Swap::Place,
            (Some(_), true) if in_place => Swap::Exchange,
            (Some(_), true) => Swap::ReplaceEmpty,
        };
        units.push(Unit {
            dest: d.path.clone(),
            swap,
            stage,
            entry: planned.entry,
        });
    }
    if units.is_empty() || (!in_place && planner.scope.0.is_some() && !has_point_entries(&units)) {
        return Err(EngineError::Invalid(InvalidRequest::NothingSelected(
            if req.includes.is_empty() {
                format!("point {} has nothing to restore at {:?}", m.name, m.paths)
            } else {
                format!(
                    "nothing in point {} matches the includes {:?}",
                    m.name, req.includes
                )
            },
        )));
    }
    Ok(units)
}

fn has_point_entries(units: &[Unit]) -> bool {
    pub(super) fn any(e: &Entry) -> bool {
        match e {
            Entry::Dir(d) => d.entries.iter().any(any),
            Entry::Leaf(_) => true,
            Entry::Keep { .. } => false,
        }
    }
    units.iter().filter_map(|u| u.entry.as_ref()).any(any)
}

/// Lists a directory of the original, by name, without following symlinks.
fn list_dir(dir: &Path) -> Result<HashMap<Vec<u8>, Existing>> {
    let io = |e| EngineError::io("listing", dir, e);
    let mut out = HashMap::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let ft = entry.file_type().map_err(io)?;
        out.insert(
            entry.file_name().as_bytes().to_vec(),
            Existing {
                path: entry.path(),
                is_dir: ft.is_dir(),
                is_file: ft.is_file(),
            },
        );
    }
    Ok(out)
}

/// Metadata of an existing directory, to give its replacement.
pub(super) fn capture(path: &Path) -> Result<Box<Node>> {
    let md = fs::symlink_metadata(path).map_err(|e| EngineError::io("inspecting", path, e))?;
    let mut node = node_from_metadata(Vec::new(), &md);
    node.xattrs = read_xattrs(path).map_err(|e| EngineError::io("reading xattrs of", path, e))?;
    Ok(Box::new(node))
}

/// Non-directory entries at and under an existing entry.
fn count_entries(e: &Existing) -> Result<u64> {
    if !e.is_dir {
        return Ok(1);
    }
    let mut count = 0;
    let mut stack = vec![e.path.clone()];
    while let Some(dir) = stack.pop() {
        for child in list_dir(&dir)?.into_values() {
            if child.is_dir {
                stack.push(child.path);
            } else {
                count += 1;
            }
        }
    }
    Ok(count)
}

impl Planner<'_> {
    /// Plans a directory's children from the point's `tree` and the `existing` original
    /// directory. `prel` is relative to the point root (for includes), `urel` to the stage.
    fn dir_entries(
        &self,
        tree: Option<&Arc<Tree>>,
        existing: Option<&Path>,
        prel: &Path,
        urel: &Path,
        whole: bool,
        depth: usize,
    ) -> Result<(Vec<Entry>, bool)> {
        self.cancel.check()?;
        if depth > MAX_DEPTH {
            return Err(ModelError::Tree(format!(
                "{}: directories nested deeper than {MAX_DEPTH}",
                prel.display()
            ))
            .into());
        }
        let mut originals = match existing {
            Some(dir) => list_dir(dir)?,
            None => HashMap::new(),
        };
        let nodes = tree.map_or(0, |t| t.nodes.len());
        let from_point = (0..nodes)
            .into_par_iter()
            .map(|idx| {
                let tree = tree.expect("nodes come from a tree");
                let name = &tree.nodes[idx].name;
                if !is_safe_component(name) {
                    return Err(ModelError::UnsafeName(name.clone()).into());
                }
                let os = OsStr::from_bytes(name);
                let node = NodeRef {
                    tree: tree.clone(),
                    idx,
                };
                let ex = originals.get(name).cloned();
                self.plan_name(Some(node), ex, &prel.join(os), &urel.join(os), whole, depth)
            })
            .collect::<Result<Vec<Planned>>>()?;
        if let Some(t) = tree {
            for n in &t.nodes {
                originals.remove(&n.name);
            }
        }
        let from_original = originals
            .into_par_iter()
            .map(|(name, ex)| {
                let os = OsStr::from_bytes(&name);
                self.plan_name(None, Some(ex), &prel.join(os), &urel.join(os), whole, depth)
            })
            .collect::<Result<Vec<Planned>>>()?;
        let mut touched = false;
        let mut entries = Vec::new();
        for p in from_point.into_iter().chain(from_original) {
            touched |= p.touched;
            entries.extend(p.entry);
        }
        Ok((entries, touched))
    }

    /// Plans one name given what the point (`node`) and the original (`ex`) have there.
    fn plan_name(
        &self,
        node: Option<NodeRef>,
        ex: Option<Existing>,
        prel: &Path,
        urel: &Path,
        whole: bool,
        depth: usize,
    ) -> Result<Planned> {
        let selected = whole || self.scope.matches(prel);
        let Some(nr) = node else {
            // What the backup excluded is not the point's to delete.
            let dropped = selected && !self.protected.protects(prel);
            return self.keep_or_drop(ex, prel, urel, dropped, depth);
        };
        let n = nr.node();
        if n.kind == NodeKind::Dir {
            let id = n
                .subtree
                .ok_or_else(|| ModelError::Tree("directory without subtree".into()))?;
            let sub = match self.reader.tree(&id) {
                Err(e) if self.skip_damaged && e.is_damage() => {
                    let mut skipped = self.skipped.locked();
                    skipped.push((urel.to_path_buf(), e.to_string()));
                    return self.keep_or_drop(ex, prel, urel, false, depth);
                }
                other => other?,
            };
            self.reader.prefetch_subtrees(&sub);
            let ex_dir = ex.as_ref().filter(|e| e.is_dir).map(|e| e.path.clone());
            let (entries, touched) = self.dir_entries(
                Some(&sub),
                ex_dir.as_deref(),
                prel,
                urel,
                selected,
                depth + 1,
            )?;
            let dir = |meta| PlanDir {
                rel: urel.to_path_buf(),
                meta,
                entries,
            };
            return Ok(match ex_dir {
                _ if selected => Planned {
                    entry: Some(Entry::Dir(dir(DirMeta::Point(nr)))),
                    touched: true,
                },
                // Only some of it is restored: the original directory stays what it was.
                Some(path) => Planned {
                    entry: Some(Entry::Dir(dir(DirMeta::Existing(capture(&path)?)))),
                    touched,
                },
                // A parent of restored entries.
                None if touched => Planned {
                    entry: Some(Entry::Dir(dir(DirMeta::Point(nr)))),
                    touched,
                },
                None => self.keep_or_drop(ex, prel, urel, false, depth)?,
            });
        }
        if !selected {
            return self.keep_or_drop(ex, prel, urel, false, depth);
        }
        if let Some(e) = ex.as_ref().filter(|e| e.is_dir) {
            self.removed.fetch_add(count_entries(e)?, Ordering::Relaxed);
        }
        let existing = ex
            .filter(|e| e.is_file && n.kind == NodeKind::File)
            .map(|e| e.path);
        Ok(Planned {
            entry: Some(Entry::Leaf(Leaf {
                rel: urel.to_path_buf(),
                node: nr,
                existing,
                link_to: None,
            })),
            touched: true,
        })
    }

    /// An original entry the point does not restore: dropped when in scope, else kept.
    fn keep_or_drop(
        &self,
        ex: Option<Existing>,
        prel: &Path,
        urel: &Path,
        in_scope: bool,
        depth: usize,
    ) -> Result<Planned> {
        let Some(e) = ex else {
            return Ok(Planned {
                entry: None,
                touched: false,
            });
        };
        if in_scope {
            self.removed
                .fetch_add(count_entries(&e)?, Ordering::Relaxed);
            return Ok(Planned {
                entry: None,
                touched: true,
            });
        }
        if e.is_dir {
            // Descend: some of it may be in scope (`**/*.log`).
            let (entries, touched) =
                self.dir_entries(None, Some(&e.path), prel, urel, false, depth + 1)?;
            let meta = DirMeta::Existing(capture(&e.path)?);
            return Ok(Planned {
                entry: Some(Entry::Dir(PlanDir {
                    rel: urel.to_path_buf(),
                    meta,
                    entries,
                })),
                touched,
            });
        }
        Ok(Planned {
            entry: Some(Entry::Keep {
                rel: urel.to_path_buf(),
                original: e.path,
            }),
            touched: false,
        })
    }
}

/// Makes every later member of a hard-link group a link to the first (in walk order), and
/// counts what will be restored: (entries, bytes).
pub(super) fn assign_links(units: &mut [Unit]) -> (u64, u64) {
    pub(super) fn walk(
        e: &mut Entry,
        stage: &Path,
        leaders: &mut HashMap<(u64, u64), PathBuf>,
        totals: &mut (u64, u64),
    ) {
        match e {
            Entry::Dir(d) => {
                for c in &mut d.entries {
                    walk(c, stage, leaders, totals);
                }
            }
            Entry::Leaf(l) => {
                let n = l.node.node();
                if n.kind == NodeKind::Socket {
                    return;
                }
                totals.0 += 1;
                totals.1 += n.size;
                if n.is_hardlinked() {
                    let here = join(stage, &l.rel);
                    match leaders.get(&(n.dev, n.inode)) {
                        Some(first) => l.link_to = Some(first.clone()),
                        None => {
                            leaders.insert((n.dev, n.inode), here);
                        }
                    }
                }
            }
            Entry::Keep { .. } => {}
        }
    }
    let mut leaders = HashMap::new();
    let mut totals = (0, 0);
    for u in units {
        if let Some(e) = &mut u.entry {
            walk(e, &u.stage, &mut leaders, &mut totals);
        }
    }
    totals
}
