//! Repair, the survey: what the store holds against what the index segments say. Every
//! index segment is read; every pack is downloaded once and checked against its id. A
//! pack that fails (truncated, its header unreadable, a blob corrupt) is damaged: each
//! blob the segments or its header locate in it is decoded and checked against its id,
//! so that the readable ones can be saved. Nothing is written to the repository; the
//! copies found corrupt are recorded in the catalog as damaged, as verify does.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Catalog;
use crate::repo::pack::{parse_pack, parse_tail};
use crate::repo::{layout, BlobLocation, IndexedPack, PackEntry, PackId, RepoError, Repository};
use crate::store::StoreError;

use super::super::verify::par_map;
use super::super::{CancelToken, Progress, Result};

/// A pack that cannot be read whole, and what of it can.
#[derive(Debug, Clone)]
pub(super) struct DamagedPack {
    pub id: PackId,
    pub why: String,
    /// Blobs that decode and match their id.
    pub readable: Vec<PackEntry>,
    /// Blobs that do not, with the reason.
    pub unreadable: Vec<(PackEntry, String)>,
}

/// What the store holds against what the index says.
#[derive(Debug, Default)]
pub(super) struct Survey {
    /// Packs in the store, with their sizes.
    pub listed: BTreeMap<PackId, u64>,
    /// Readable index segments, with the packs each lists.
    pub segments: BTreeMap<String, Vec<PackId>>,
    /// Intact packs no readable segment lists, with their headers.
    pub unindexed: Vec<IndexedPack>,
    /// Packs a segment lists that the store does not hold, with the blobs listed in them.
    pub missing: BTreeMap<PackId, Vec<PackEntry>>,
    pub damaged: Vec<DamagedPack>,
}

impl Survey {
    /// Index segments that list any of `packs`.
    pub fn segments_listing(&self, packs: &BTreeSet<PackId>) -> Vec<String> {
        self.segments
            .iter()
            .filter(|(_, listed)| listed.iter().any(|p| packs.contains(p)))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Surveys the repository; see the module documentation.
pub(super) fn survey(
    repo: &Repository,
    catalog: &Catalog,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Survey> {
    let mut s = Survey {
        listed: super::super::verify::listed_packs(repo)?,
        ..Survey::default()
    };
    // What the segments say about each pack (several segments may list one pack).
    let mut indexed: BTreeMap<PackId, Vec<PackEntry>> = BTreeMap::new();
    for obj in repo.store().list(layout::INDEX).map_err(RepoError::from)? {
        cancel.check()?;
        match repo.read_index(&obj.key) {
            Ok(packs) => {
                let ids = packs.iter().map(|p| p.id).collect();
                for p in packs {
                    indexed.entry(p.id).or_default().extend(p.entries);
                }
                s.segments.insert(obj.key, ids);
            }
            Err(e) if !e.is_transient() => {
                progress.warn(&format!("index segment {} is unreadable: {e}", obj.key));
            }
            Err(e) => return Err(e.into()),
        }
    }
    progress.set_total(s.listed.len() as u64, s.listed.values().sum());
    let listed: Vec<(PackId, u64)> = s.listed.iter().map(|(id, len)| (*id, *len)).collect();
    // A few packs at a time, each downloaded once.
    let checked = par_map(&listed, cancel, |(id, length)| {
        let state = check_pack(repo, catalog, *id, *length, indexed.get(id))?;
        progress.file_done(std::path::Path::new(&id.key()), *length);
        Ok(state)
    })?;
    for ((id, _), state) in listed.into_iter().zip(checked) {
        match state {
            Checked::Gone => {
                s.listed.remove(&id);
            }
            Checked::Intact(None) => {}
            Checked::Intact(Some(pack)) => s.unindexed.push(pack),
            Checked::Damaged(pack) => s.damaged.push(pack),
        }
    }
    for (id, entries) in indexed {
        if !s.listed.contains_key(&id) {
            s.missing.insert(id, entries);
        }
    }
    Ok(s)
}

/// What the check of one listed pack found.
enum Checked {
    /// Gone since the listing: missing, like a pack never there.
    Gone,
    /// Intact; with its header when no segment lists it.
    Intact(Option<IndexedPack>),
    Damaged(DamagedPack),
}

/// Downloads a pack and checks it against its id; `known`: what the segments list in it.
fn check_pack(
    repo: &Repository,
    catalog: &Catalog,
    id: PackId,
    length: u64,
    known: Option<&Vec<PackEntry>>,
) -> Result<Checked> {
    let bytes = match repo.store().get(&id.key()) {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound(_)) => return Ok(Checked::Gone),
        Err(e) => return Err(RepoError::from(e).into()),
    };
    Ok(match parse_pack(repo.key(), &id, &bytes) {
        Ok(entries) if known.is_none() => Checked::Intact(Some(IndexedPack {
            id,
            length,
            entries,
        })),
        Ok(_) => Checked::Intact(None),
        Err(e) => {
            let mut entries = known.cloned().unwrap_or_default();
            if let Ok(Ok(header)) = parse_tail(repo.key(), &bytes, bytes.len() as u64) {
                entries.extend(header);
            }
            Checked::Damaged(check_blobs(
                repo,
                catalog,
                id,
                e.to_string(),
                entries,
                &bytes,
            )?)
        }
    })
}

/// Decodes each blob `entries` locate in a damaged pack and checks it against its id.
fn check_blobs(
    repo: &Repository,
    catalog: &Catalog,
    id: PackId,
    why: String,
    mut entries: Vec<PackEntry>,
    bytes: &[u8],
) -> Result<DamagedPack> {
    entries.sort_by_key(|e| (e.offset, e.id));
    entries.dedup();
    let mut pack = DamagedPack {
        id,
        why,
        readable: Vec::new(),
        unreadable: Vec::new(),
    };
    for e in entries {
        let loc = location(id, &e);
        let start = e.offset as usize;
        let stored = bytes
            .get(start..start.saturating_add(e.length as usize))
            .unwrap_or(&[]);
        match repo.decode_blob(&e.id, &loc, stored) {
            Ok(_) => pack.readable.push(e),
            Err(err) => {
                let cause = err.to_string();
                catalog.mark_damaged(&e.id, &id, &cause)?;
                pack.unreadable.push((e, cause));
            }
        }
    }
    Ok(pack)
}

/// Where `e` sits in `pack`.
pub(super) fn location(pack: PackId, e: &PackEntry) -> BlobLocation {
    BlobLocation {
        pack,
        kind: e.kind,
        offset: e.offset,
        length: e.length,
        raw_len: e.raw_len,
    }
}
