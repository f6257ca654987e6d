//! What prune asks of the catalog, in SQL so that memory does not grow with the
//! repository: pending plans and the packs they condemn, dedup that avoids condemned
//! packs, the set of referenced blobs (marks, in a scratch SQLite file next to the
//! catalog), and per-pack live and dead bytes.

use std::collections::HashSet;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use super::index::location;
use super::refresh::RefreshStats;
use crate::catalog::{Catalog, CatalogError, Result};
use crate::repo::{self, BlobId, BlobLocation, PackId, PrunePlan, Repository};
use crate::store::ObjectInfo;

/// A pending prune plan as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub name: String,
    pub created_ns: i64,
    pub not_before_ns: i64,
}

/// One pack's use, by the current marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackUsage {
    pub id: PackId,
    pub length: u64,
    /// Stored bytes of all blobs in the pack, and of the referenced ones.
    pub blob_bytes: u64,
    pub live_bytes: u64,
    pub live_blobs: u64,
}

const LOCATION: &str = "SELECT b.kind, p.id, b.offset, b.length, b.raw_len";
/// A location `b` in pack `p` that a writer may deduplicate against: the pack is present,
/// no pending plan condemns it, and the copy is not known to be damaged.
const USABLE: &str = "p.present = 1 AND p.id NOT IN (SELECT pack FROM condemned)
     AND NOT EXISTS (SELECT 1 FROM damaged d WHERE d.id = b.id AND d.pack = p.id)";

impl Catalog {
    /// Learns new prune plans and forgets finished ones (their objects are gone), from a
    /// listing of `prune/` taken before the packs were listed.
    pub(super) fn refresh_plans(
        &self,
        repo: &Repository,
        listing: Vec<ObjectInfo>,
        stats: &mut RefreshStats,
    ) -> Result<()> {
        let known = self.strings::<HashSet<String>>("SELECT name FROM prune_plans")?;
        let mut listed = HashSet::new();
        for obj in listing {
            listed.insert(obj.key.clone());
            if known.contains(&obj.key) {
                continue;
            }
            let plan = repo
                .get_sealed(&obj.key)
                .and_then(|json| PrunePlan::decode(repo.key(), &obj.key, &json))
                .and_then(|plan| plan.pack_ids().map(|ids| (plan, ids)));
            match plan {
                Ok((plan, ids)) => {
                    self.insert_plan(&obj.key, &plan, &ids)?;
                    stats.new_plans += 1;
                }
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => tracing::warn!(key = %obj.key, "ignoring unreadable prune plan: {e}"),
            }
        }
        for name in known.difference(&listed) {
            self.remove_plan(name)?;
        }
        Ok(())
    }

    pub fn insert_plan(&self, name: &str, plan: &PrunePlan, packs: &[PackId]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        tx.execute(
            "INSERT OR IGNORE INTO prune_plans (name, created_ns, not_before_ns) VALUES (?1, ?2, ?3)",
            params![name, plan.created_ns, plan.not_before_ns],
        )
        .map_err(|e| self.sql_err(e))?;
        for id in packs {
            tx.execute(
                "INSERT OR IGNORE INTO condemned (pack, plan) VALUES (?1, ?2)",
                params![&id.0[..], name],
            )
            .map_err(|e| self.sql_err(e))?;
        }
        tx.commit().map_err(|e| self.sql_err(e))
    }

    pub fn remove_plan(&self, name: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        tx.execute("DELETE FROM condemned WHERE plan = ?1", [name])
            .map_err(|e| self.sql_err(e))?;
        tx.execute("DELETE FROM prune_plans WHERE name = ?1", [name])
            .map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }

    /// Pending plans, oldest first.
    pub fn plans(&self) -> Result<Vec<PlanRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, created_ns, not_before_ns FROM prune_plans ORDER BY created_ns, name",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PlanRecord {
                    name: r.get(0)?,
                    created_ns: r.get(1)?,
                    not_before_ns: r.get(2)?,
                })
            })
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.sql_err(e))
    }

    /// The packs a plan condemns.
    pub fn plan_packs(&self, plan: &str) -> Result<Vec<PackId>> {
        self.pack_ids(
            "SELECT pack FROM condemned WHERE plan = ?1 ORDER BY pack",
            plan,
        )
    }

    fn pack_ids(&self, sql: &str, arg: &str) -> Result<Vec<PackId>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([arg], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(id) = <[u8; 32]>::try_from(row.map_err(|e| self.sql_err(e))?) {
                out.push(PackId(id));
            }
        }
        Ok(out)
    }

    /// Where a writer may find a blob to deduplicate against: a location in a present
    /// pack that no pending plan condemns and that is not known to be damaged, or none
    /// (the writer stores it again).
    pub fn lookup_for_dedup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "{LOCATION} FROM blobs b JOIN packs p ON p.rowid = b.pack
                 WHERE b.id = ?1 AND {USABLE}
                 UNION ALL
                 {LOCATION} FROM blob_copies b JOIN packs p ON p.rowid = b.pack
                 WHERE b.id = ?1 AND {USABLE}
                 LIMIT 1"
            ))
            .map_err(|e| self.sql_err(e))?;
        let row = stmt
            .query_row([&id.0[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
            .map_err(|e| self.sql_err(e))?;
        Ok(row
            .map(|(k, p, o, l, r)| location(k, p, o, l, r))
            .transpose()?)
    }

    /// Which of `ids` [`Catalog::lookup_for_dedup`] would find, in one query per few
    /// hundred ids rather than one per id.
    pub fn present_for_dedup(&self, ids: &[BlobId]) -> Result<HashSet<BlobId>> {
        let mut out = HashSet::new();
        let usable = format!("JOIN packs p ON p.rowid = b.pack WHERE {USABLE}");
        self.for_id_batches(
            ids,
            |marks| {
                format!(
                    "SELECT b.id FROM blobs b {usable} AND b.id IN ({marks}) \
                     UNION SELECT b.id FROM blob_copies b {usable} AND b.id IN ({marks})"
                )
            },
            |id, _| {
                out.insert(id);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Opens an empty set of marks (referenced blobs) in a scratch file next to the
    /// catalog; it is removed when the returned guard drops.
    pub fn begin_marks(&self) -> Result<Marks<'_>> {
        let path = self.path().with_extension("prune-marks");
        let _ = std::fs::remove_file(&path);
        let conn = self.conn();
        conn.execute("ATTACH DATABASE ?1 AS marks", [path.to_string_lossy()])
            .map_err(|e| self.sql_err(e))?;
        conn.execute_batch(
            "PRAGMA marks.journal_mode = OFF; PRAGMA marks.synchronous = OFF;
             CREATE TABLE marks.live (id BLOB PRIMARY KEY) WITHOUT ROWID;",
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(Marks {
            catalog: self,
            path,
        })
    }
}

/// The referenced blobs of one prune run (see [`Catalog::begin_marks`]).
pub struct Marks<'a> {
    catalog: &'a Catalog,
    path: PathBuf,
}

impl Drop for Marks<'_> {
    fn drop(&mut self) {
        let conn = self.catalog.conn();
        if let Err(e) = conn.execute_batch("DETACH DATABASE marks") {
            tracing::warn!("detaching prune marks: {e}");
        }
        drop(conn);
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Marks<'_> {
    fn err(&self, e: rusqlite::Error) -> CatalogError {
        self.catalog.sql_err(e)
    }

    /// Marks a tree and the data blobs it lists; `false` if the tree was marked already.
    pub fn mark_tree(&self, tree: &BlobId, data: &[BlobId]) -> Result<bool> {
        let mut conn = self.catalog.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let new = tx
            .execute(
                "INSERT OR IGNORE INTO marks.live (id) VALUES (?1)",
                [&tree.0[..]],
            )
            .map_err(|e| self.err(e))?
            == 1;
        if new {
            let mut stmt = tx
                .prepare_cached("INSERT OR IGNORE INTO marks.live (id) VALUES (?1)")
                .map_err(|e| self.err(e))?;
            for id in data {
                stmt.execute([&id.0[..]]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(new)
    }

    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        let conn = self.catalog.conn();
        conn.query_row(
            "SELECT 1 FROM marks.live WHERE id = ?1",
            [&id.0[..]],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
        .map_err(|e| self.err(e))
    }

    pub fn count(&self) -> Result<u64> {
        let conn = self.catalog.conn();
        conn.query_row("SELECT COUNT(*) FROM marks.live", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|e| self.err(e))
    }

    /// Every present pack the index knows blobs of, with its live and dead bytes (each
    /// location of a blob counts in its own pack; a copy known to be damaged is dead).
    /// Packs with no known blob (an unreadable header) are not listed: prune leaves what
    /// it cannot read alone.
    pub fn pack_usage(&self) -> Result<Vec<PackUsage>> {
        let conn = self.catalog.conn();
        let mut stmt = conn
            .prepare(
                "WITH loc AS (SELECT id, pack, length FROM blobs
                              UNION ALL SELECT id, pack, length FROM blob_copies)
                 SELECT p.id, p.length, SUM(loc.length),
                        COALESCE(SUM(CASE WHEN m.id IS NOT NULL THEN loc.length END), 0),
                        COUNT(m.id)
                 FROM packs p JOIN loc ON loc.pack = p.rowid
                 LEFT JOIN marks.live m ON m.id = loc.id AND NOT EXISTS
                     (SELECT 1 FROM damaged d WHERE d.id = loc.id AND d.pack = p.id)
                 WHERE p.present = 1 GROUP BY p.rowid ORDER BY p.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, length, blob_bytes, live_bytes, live_blobs) = row.map_err(|e| self.err(e))?;
            if let Ok(id) = <[u8; 32]>::try_from(id) {
                out.push(PackUsage {
                    id: PackId(id),
                    length: length as u64,
                    blob_bytes: blob_bytes as u64,
                    live_bytes: live_bytes as u64,
                    live_blobs: live_blobs as u64,
                });
            }
        }
        Ok(out)
    }

    /// The referenced blobs stored in one pack, with their places in it (not the copies
    /// known to be damaged: there is nothing to copy from them).
    pub fn live_blobs_in(&self, pack: &PackId) -> Result<Vec<(BlobId, BlobLocation)>> {
        let conn = self.catalog.conn();
        let mut stmt = conn
            .prepare_cached(
                "WITH loc AS (SELECT id, pack, kind, offset, length, raw_len FROM blobs
                              UNION ALL
                              SELECT id, pack, kind, offset, length, raw_len FROM blob_copies)
                 SELECT b.id, b.kind, p.id, b.offset, b.length, b.raw_len
                 FROM loc b JOIN packs p ON p.rowid = b.pack
                 WHERE p.id = ?1 AND b.id IN (SELECT id FROM marks.live) AND NOT EXISTS
                     (SELECT 1 FROM damaged d WHERE d.id = b.id AND d.pack = p.id)
                 ORDER BY b.offset",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([&pack.0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, (k, p, o, l, r)) = row.map_err(|e| self.err(e))?;
            let id = BlobId::from_slice(&id)
                .ok_or_else(|| repo::RepoError::Index("bad blob id".into()))?;
            out.push((id, location(k, p, o, l, r)?));
        }
        Ok(out)
    }

    /// Packs of `plan` that must be kept: they hold a referenced blob that no present,
    /// uncondemned pack also holds.
    pub fn needed_condemned(&self, plan: &str) -> Result<Vec<PackId>> {
        self.catalog.pack_ids(
            "WITH loc AS (SELECT id, pack FROM blobs UNION ALL SELECT id, pack FROM blob_copies),
                  safe AS (SELECT rowid FROM packs WHERE present = 1
                           AND id NOT IN (SELECT pack FROM condemned))
             SELECT DISTINCT c.pack FROM condemned c
             JOIN packs p ON p.id = c.pack
             JOIN loc ON loc.pack = p.rowid
             WHERE c.plan = ?1 AND loc.id IN (SELECT id FROM marks.live)
               AND NOT EXISTS (SELECT 1 FROM loc l2 WHERE l2.id = loc.id
                               AND l2.pack IN (SELECT rowid FROM safe))",
            plan,
        )
    }
}

impl Catalog {
    /// Index segments (as read into the catalog) that list any of `packs`.
    pub fn segments_listing(&self, packs: &[PackId]) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT s.segment FROM segment_packs s JOIN packs p ON p.rowid = s.pack
                 WHERE p.id = ?1",
            )
            .map_err(|e| self.sql_err(e))?;
        let mut out = std::collections::BTreeSet::new();
        for id in packs {
            let rows = stmt
                .query_map([&id.0[..]], |r| r.get::<_, String>(0))
                .map_err(|e| self.sql_err(e))?;
            for row in rows {
                out.insert(row.map_err(|e| self.sql_err(e))?);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Forgets an index segment that was replaced (its successor is read on refresh).
    pub fn segment_deleted(&self, name: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        tx.execute("DELETE FROM segment_packs WHERE segment = ?1", [name])
            .map_err(|e| self.sql_err(e))?;
        tx.execute("DELETE FROM index_segments WHERE name = ?1", [name])
            .map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::testing::test_pack as pack;

    #[test]
    fn condemned_copies_are_not_deduplicated_and_deleted_packs_hand_over_to_copies() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let blob = BlobId([9; 32]);
        c.insert_pack(&pack(1, blob)).unwrap();
        let plan = PrunePlan {
            version: 1,
            created_ns: 0,
            not_before_ns: 0,
            host: String::new(),
            packs: vec![],
        };
        c.insert_plan("prune/x", &plan, &[PackId([1; 32])]).unwrap();
        assert_eq!(c.lookup_blob(&blob).unwrap().unwrap().pack, PackId([1; 32]));
        assert_eq!(c.lookup_for_dedup(&blob).unwrap(), None);

        // A second copy (a writer stored it again): dedup uses it, readers keep the first.
        c.insert_pack(&pack(2, blob)).unwrap();
        assert_eq!(
            c.lookup_for_dedup(&blob).unwrap().unwrap().pack,
            PackId([2; 32])
        );
        assert_eq!(c.lookup_blob(&blob).unwrap().unwrap().pack, PackId([1; 32]));

        // Marks and sums: the blob is live in both packs; the plan's pack has a copy
        // outside the plan, so it is not needed.
        {
            let marks = c.begin_marks().unwrap();
            assert!(marks.mark_tree(&BlobId([7; 32]), &[blob]).unwrap());
            assert!(!marks.mark_tree(&BlobId([7; 32]), &[]).unwrap());
            let usage = marks.pack_usage().unwrap();
            assert_eq!(usage.len(), 2);
            assert!(usage.iter().all(|u| u.live_blobs == 1));
            assert!(marks.needed_condemned("prune/x").unwrap().is_empty());
            assert_eq!(marks.live_blobs_in(&PackId([2; 32])).unwrap().len(), 1);
        }
        assert!(!dir.path().join("c.prune-marks").exists());

        // The first pack goes: the copy takes over; then the last copy goes too.
        c.packs_deleted(&[PackId([1; 32])]).unwrap();
        let loc = c.lookup_blob(&blob).unwrap().unwrap();
        assert_eq!((loc.pack, loc.length), (PackId([2; 32]), 12));
        c.packs_deleted(&[PackId([2; 32])]).unwrap();
        assert_eq!(c.lookup_blob(&blob).unwrap(), None);
        c.remove_plan("prune/x").unwrap();
        assert!(c.plans().unwrap().is_empty());
    }
}
