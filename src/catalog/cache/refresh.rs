//! Bringing the catalog up to date with the objects: new index segments, packs no segment
//! covers yet (a crashed or still-running writer's; their headers are read), packs that
//! disappeared (their blobs are forgotten so they are uploaded again), and points; the
//! often-empty directories (plans, forget and log records) only when they hold objects.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::points::insert_point_conn;
use super::top_level::TopLevel;
use crate::catalog::{schema, Catalog, CatalogError, Result};
use crate::model::{ForgetRecord, Manifest};
use crate::repo::{layout, IndexedPack, PackId, Repository};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshStats {
    pub new_segments: u64,
    pub bad_segments: u64,
    pub recovered_packs: u64,
    pub vanished_packs: u64,
    pub new_points: u64,
    pub removed_points: u64,
    pub bad_points: u64,
    pub forgotten_points: u64,
    pub new_plans: u64,
}

impl Catalog {
    /// Empties every cache table (`schema::CACHE_TABLES`) and reloads them from the
    /// repository. The history tables (`schema::HISTORY_TABLES`: jobs, events, known
    /// damaged copies, what was seen of the repository) are never touched: the
    /// repository does not hold them, so nothing could bring them back.
    pub fn rebuild(&self, repo: &Repository) -> Result<RefreshStats> {
        let deletes: String = schema::CACHE_TABLES
            .iter()
            .map(|t| format!("DELETE FROM {t}; "))
            .collect();
        self.conn()
            .execute_batch(&format!("BEGIN; {deletes}COMMIT;"))
            .map_err(|e| self.sql_err(e))?;
        self.refresh(repo)
    }

    /// Loads what other writers added and drops what was deleted.
    pub fn refresh(&self, repo: &Repository) -> Result<RefreshStats> {
        self.check_encryption(repo)?;
        let mut stats = RefreshStats::default();
        let top = TopLevel::of(repo)?;
        // Plans are listed before packs: a prune deletes a plan only after its packs, so
        // a plan missing from this listing has no packs left in the packs listing below,
        // and its packs are never taken for present and uncondemned. (When the top-level
        // listing, made before, showed no plans, there were none then: the same holds.)
        let plans = top.list(repo, layout::PRUNE_PLANS)?;
        self.refresh_segments(repo, &mut stats)?;
        self.refresh_packs(repo, &mut stats)?;
        self.refresh_plans(repo, plans, &mut stats)?;
        self.refresh_forgotten(repo, &top, &mut stats)?;
        self.refresh_points(repo, &mut stats)?;
        self.refresh_logs(repo, &top)?;
        if stats != RefreshStats::default() {
            tracing::debug!(?stats, "catalog refreshed");
        }
        Ok(stats)
    }

    fn refresh_segments(&self, repo: &Repository, stats: &mut RefreshStats) -> Result<()> {
        let known = self.strings::<HashSet<String>>("SELECT name FROM index_segments")?;
        for obj in repo.store().list(layout::INDEX)? {
            if known.contains(&obj.key) {
                continue;
            }
            match repo.read_index(&obj.key) {
                Ok(packs) => {
                    self.store_packs(&packs, Some(&obj.key))?;
                    stats.new_segments += 1;
                }
                Err(e) if !e.is_transient() => {
                    // The packs it lists are still found through their headers below.
                    tracing::warn!(segment = %obj.key, "skipping unreadable index segment: {e}");
                    stats.bad_segments += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn refresh_packs(&self, repo: &Repository, stats: &mut RefreshStats) -> Result<()> {
        let listed: HashMap<PackId, u64> = repo
            .store()
            .list(layout::PACKS)?
            .into_iter()
            .filter_map(|o| PackId::from_key(&o.key).map(|id| (id, o.size)))
            .collect();
        let packs = self.packs()?;
        // A pack shorter than the index records lost the blobs past its end.
        for (id, length, _) in &packs {
            if let Some(size) = listed.get(id).filter(|size| **size < *length) {
                self.mark_truncated(id, *size)?;
            }
        }
        let known: HashMap<PackId, bool> = packs
            .into_iter()
            .map(|(id, _, present)| (id, present))
            .collect();
        // Packs that vanished: forget their blobs so that dedup never trusts them.
        let vanished: Vec<PackId> = known
            .iter()
            .filter(|(id, present)| **present && !listed.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        self.packs_deleted(&vanished)?;
        stats.vanished_packs += vanished.len() as u64;
        // Packs no index segment covers: read their headers.
        for (id, length) in listed {
            if known.get(&id) == Some(&true) {
                continue;
            }
            match repo.read_pack_header(&id, length) {
                Ok(entries) => {
                    self.store_packs(
                        &[IndexedPack {
                            id,
                            length,
                            entries,
                        }],
                        None,
                    )?;
                    stats.recovered_packs += 1;
                }
                Err(e) if !e.is_transient() => {
                    tracing::warn!(pack = %id.to_hex(), "pack header unreadable: {e}");
                    let conn = self.conn();
                    conn.execute(
                        "INSERT OR IGNORE INTO packs (id, length, present) VALUES (?1, ?2, 1)",
                        params![&id.0[..], length as i64],
                    )
                    .map_err(|e| self.sql_err(e))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Learns forget records: their points are dropped below, wherever the manifest is.
    fn refresh_forgotten(
        &self,
        repo: &Repository,
        top: &TopLevel,
        stats: &mut RefreshStats,
    ) -> Result<()> {
        let known = self.strings::<HashSet<String>>("SELECT id FROM forgotten")?;
        for obj in top.list(repo, layout::FORGOTTEN)? {
            let Some((instance, id)) = ForgetRecord::parse_key(&obj.key) else {
                tracing::warn!(key = %obj.key, "ignoring object with a malformed forget key");
                continue;
            };
            if known.contains(&id.to_hex()) {
                continue;
            }
            let record = repo
                .get_sealed(&obj.key)
                .map_err(CatalogError::from)
                .and_then(|json| Ok(ForgetRecord::decode(repo.key(), &id, &instance, &json)?));
            match record {
                Ok(f) => {
                    self.insert_forgotten(&f)?;
                    stats.forgotten_points += 1;
                }
                Err(e) => tracing::warn!(key = %obj.key, "skipping unreadable forget record: {e}"),
            }
        }
        Ok(())
    }

    fn refresh_points(&self, repo: &Repository, stats: &mut RefreshStats) -> Result<()> {
        let known = self.strings::<HashSet<String>>("SELECT id FROM points")?;
        let forgotten = self.strings::<HashSet<String>>("SELECT id FROM forgotten")?;
        let mut listed = HashSet::new();
        for obj in repo.store().list(layout::POINTS)? {
            let Some((instance, id)) = Manifest::parse_key(&obj.key) else {
                tracing::warn!(key = %obj.key, "ignoring object with a malformed point key");
                continue;
            };
            if forgotten.contains(&id.to_hex()) {
                continue;
            }
            listed.insert(id.to_hex());
            if known.contains(&id.to_hex()) {
                continue;
            }
            let manifest = repo
                .get_sealed(&obj.key)
                .map_err(CatalogError::from)
                .and_then(|json| Ok(Manifest::decode(repo.key(), &id, &instance, &json)?));
            match manifest {
                Ok(m) => {
                    let conn = self.conn();
                    insert_point_conn(&conn, &id, &m).map_err(|e| self.sql_err(e))?;
                    stats.new_points += 1;
                }
                Err(e) => {
                    tracing::warn!(key = %obj.key, "skipping unreadable point manifest: {e}");
                    stats.bad_points += 1;
                }
            }
        }
        let conn = self.conn();
        for id in known.difference(&listed) {
            conn.execute("DELETE FROM points WHERE id = ?1", [id])
                .map_err(|e| self.sql_err(e))?;
            stats.removed_points += 1;
        }
        Ok(())
    }
}
