//! Verify, repository objects: manifests and the history chain, forget records, index
//! segments, and pack sizes and headers (an unreadable header is corrected from parity
//! when the repository has it).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::catalog::PointRecord;
use crate::model::{ForgetRecord, Manifest};
use crate::repo::pack::{self, PACK_MAGIC};
use crate::repo::{layout, PackId, RepoError, Repository};
use crate::store::ObjectInfo;

use super::super::history::Chain;
use super::super::{Progress, Result};
use super::data::par_map;
use super::{blame, Verifier};

impl Verifier<'_> {
    /// Re-reads the selected points' manifests, finds unreadable ones, checks the chain.
    pub(super) fn check_manifests(
        &mut self,
        points: &[PointRecord],
        instance: Option<&str>,
    ) -> Result<()> {
        let cached = self.catalog.points(instance)?;
        let known: HashSet<String> = cached.iter().map(|p| p.id.to_hex()).collect();
        // A manifest whose forget record exists is forgotten (a forget interrupted between
        // its two writes, FORMAT.md 9.1): a valid state, left for the next forget or prune.
        let forgotten = self.forgotten_ids(instance)?;
        for obj in self.listed(layout::POINTS, instance)? {
            match Manifest::parse_key(&obj.key) {
                None => self.problem(format!("{} is not a valid point manifest key", obj.key)),
                Some((i, _)) if instance.is_some_and(|want| want != i) => {}
                Some((_, id)) if forgotten.contains(&id.to_hex()) => {}
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
    pub(super) fn check_forget_records(&mut self, instance: Option<&str>) -> Result<()> {
        let known = self.forgotten_ids(instance)?;
        for obj in self.listed(layout::FORGOTTEN, instance)? {
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
    /// The manifest ids the catalog has forget records of.
    fn forgotten_ids(&self, instance: Option<&str>) -> Result<HashSet<String>> {
        Ok(self
            .catalog
            .forgotten(instance)?
            .into_iter()
            .map(|(_, id, _)| id.to_hex())
            .collect())
    }

    /// The objects under `kind` (`points/`, `forgotten/`), of one instance or all, by key.
    fn listed(&self, kind: &str, instance: Option<&str>) -> Result<Vec<ObjectInfo>> {
        let prefix = match instance {
            Some(i) => format!("{kind}{i}/"),
            None => kind.to_string(),
        };
        let mut listed = self.repo.store().list(&prefix).map_err(RepoError::from)?;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    pub(super) fn check_index_segments(&mut self) -> Result<()> {
        let mut segments = self
            .repo
            .store()
            .list(layout::INDEX)
            .map_err(RepoError::from)?;
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
    pub(super) fn check_packs(&mut self, progress: &dyn Progress) -> Result<()> {
        let indexed: HashMap<PackId, u64> = self
            .catalog
            .packs()?
            .into_iter()
            .map(|(id, len, _)| (id, len))
            .collect();
        let packs: Vec<(PackId, u64)> = self.listed.iter().map(|(id, s)| (*id, *s)).collect();
        for (id, size) in &packs {
            if let Some(len) = indexed.get(id).filter(|len| **len != *size) {
                let text = format!(
                    "pack {} is {size} bytes but the index records {len}",
                    id.to_hex()
                );
                self.pack_problem(id, text)?;
            }
        }
        let repo = self.repo;
        let results = par_map(&packs, self.cancel, |(id, size)| {
            let result = if *size < (PACK_MAGIC.len() + 4) as u64 {
                Some(format!("only {size} bytes"))
            } else {
                match repo.read_pack_header(id, *size) {
                    Ok(_) => None,
                    Err(e) => {
                        let why = blame(e)?;
                        correct_header(repo, id).err().map(|no| match no {
                            Some(no) => format!("{why}; parity could not correct it: {no}"),
                            None => why,
                        })
                    }
                }
            };
            progress.file_done(Path::new(&id.key()), 0);
            Ok(result)
        })?;
        self.report.packs_checked += packs.len() as u64;
        for ((id, _), bad) in packs.iter().zip(results) {
            if let Some(why) = bad {
                self.bad_headers.insert(*id);
                self.pack_problem(
                    id,
                    format!("pack {}: header unreadable: {why}", id.to_hex()),
                )?;
            }
        }
        Ok(())
    }
}

/// Rebuilds a pack whose header is unreadable from its parity (repositories with `ecc`):
/// `Ok` when the rebuilt pack is whole, `Err(None)` without parity, else why not.
fn correct_header(repo: &Repository, id: &PackId) -> std::result::Result<(), Option<String>> {
    repo.config().ecc.ok_or(None)?;
    let read = repo
        .store()
        .get(&id.key())
        .map_err(|e| Some(e.to_string()))?;
    let rebuilt = repo.rebuild_pack(id, &read).map_err(Some)?;
    pack::parse_pack(repo.key(), id, &rebuilt)
        .map(drop)
        .map_err(|e| Some(e.to_string()))
}
