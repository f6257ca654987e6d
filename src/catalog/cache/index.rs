//! The blob index cache: where each blob is stored (every copy of it), which packs exist,
//! and the blob index a writer's packer consults (deduplicating only against blobs no
//! pending prune plan condemns). Rebuilt from index segments and pack headers.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use crate::catalog::history::promote_intact_copies;
use crate::catalog::{Catalog, CatalogError, Result};
use crate::repo::{self, BlobId, BlobIndex, BlobKind, BlobLocation, IndexedPack, PackId};

impl Catalog {
    pub fn lookup_blob(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT b.kind, p.id, b.offset, b.length, b.raw_len
                 FROM blobs b JOIN packs p ON p.rowid = b.pack WHERE b.id = ?1",
            )
            .map_err(|e| self.sql_err(e))?;
        stmt.query_row([&id.0[..]], |r| {
            let kind: u8 = r.get(0)?;
            let pack: Vec<u8> = r.get(1)?;
            Ok((kind, pack, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()
        .map_err(|e| self.sql_err(e))?
        .map(|(kind, pack, offset, length, raw_len)| location(kind, pack, offset, length, raw_len))
        .transpose()
        .map_err(CatalogError::from)
    }

    /// Where each of `ids` is stored (the ones the catalog knows), a few hundred ids per
    /// query.
    pub fn lookup_blobs(&self, ids: &[BlobId]) -> Result<HashMap<BlobId, BlobLocation>> {
        let mut out = HashMap::with_capacity(ids.len());
        self.for_id_batches(
            ids,
            |marks| {
                format!(
                    "SELECT b.id, b.kind, p.id, b.offset, b.length, b.raw_len
                     FROM blobs b JOIN packs p ON p.rowid = b.pack WHERE b.id IN ({marks})"
                )
            },
            |id, r| {
                let loc = location(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
                out.insert(id, loc);
                Ok(())
            },
        )?;
        out.into_iter().map(|(id, loc)| Ok((id, loc?))).collect()
    }

    /// The blobs the index locates in `pack` (not the other copies it holds), in pack
    /// order.
    pub fn blobs_in_pack(&self, pack: &PackId) -> Result<Vec<(BlobId, BlobLocation)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT b.id, b.kind, p.id, b.offset, b.length, b.raw_len
                 FROM blobs b JOIN packs p ON p.rowid = b.pack WHERE p.id = ?1
                 ORDER BY b.offset",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([&pack.0[..]], |r| {
                let id: Vec<u8> = r.get(0)?;
                let loc = location(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
                Ok((id, loc))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, loc) = row.map_err(|e| self.sql_err(e))?;
            if let Ok(id) = <[u8; 32]>::try_from(id) {
                out.push((BlobId(id), loc?));
            }
        }
        Ok(out)
    }

    /// Records a pack and its blobs (first location of a blob wins).
    pub fn insert_pack(&self, pack: &IndexedPack) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        insert_pack_tx(&tx, pack).map_err(|e| self.sql_err(e))?;
        promote_intact_copies(&tx).map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }

    /// Records packs and their blobs, and the index segment that lists them if any.
    pub(super) fn store_packs(&self, packs: &[IndexedPack], segment: Option<&str>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        for p in packs {
            let rowid = insert_pack_tx(&tx, p).map_err(|e| self.sql_err(e))?;
            if let Some(name) = segment {
                tx.execute(
                    "INSERT OR IGNORE INTO segment_packs (segment, pack) VALUES (?1, ?2)",
                    params![name, rowid],
                )
                .map_err(|e| self.sql_err(e))?;
            }
        }
        if let Some(name) = segment {
            tx.execute(
                "INSERT OR IGNORE INTO index_segments (name) VALUES (?1)",
                [name],
            )
            .map_err(|e| self.sql_err(e))?;
        }
        promote_intact_copies(&tx).map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }

    /// Records an index segment a writer wrote: a pack it recorded already (a present
    /// pack with its blobs) is only linked to the segment, any other is recorded whole
    /// first. A writer's packs are all recorded when uploaded, so this costs a statement
    /// a pack, not two a blob.
    pub fn record_written_segment(&self, name: &str, packs: &[IndexedPack]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        link_segment_tx(&tx, name, packs).map_err(|e| self.sql_err(e))?;
        promote_intact_copies(&tx).map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }

    /// Whether the last listing showed the pack.
    pub fn pack_present(&self, id: &PackId) -> Result<bool> {
        let conn = self.conn();
        conn.query_row(
            "SELECT present FROM packs WHERE id = ?1",
            [&id.0[..]],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map(|p| p == Some(1))
        .map_err(|e| self.sql_err(e))
    }

    /// Every pack the catalog knows, with its length and presence.
    pub fn packs(&self) -> Result<Vec<(PackId, u64, bool)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, length, present FROM packs ORDER BY id")
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let id: Vec<u8> = r.get(0)?;
                Ok((id, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, len, present) = row.map_err(|e| self.sql_err(e))?;
            if let Ok(id) = <[u8; 32]>::try_from(id) {
                out.push((PackId(id), len as u64, present == 1));
            }
        }
        Ok(out)
    }

    /// Forgets packs that are gone from the store: each blob they held moves to another
    /// copy in a present pack, or leaves the index (so dedup never trusts it again).
    pub fn packs_deleted(&self, ids: &[PackId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        for id in ids {
            tx.execute("UPDATE packs SET present = 0 WHERE id = ?1", [&id.0[..]])
                .map_err(|e| self.sql_err(e))?;
        }
        for id in ids {
            tx.execute_batch("DROP TABLE IF EXISTS temp.gone")
                .map_err(|e| self.sql_err(e))?;
            tx.execute(
                "CREATE TEMP TABLE gone AS SELECT rowid AS pack FROM packs WHERE id = ?1",
                [&id.0[..]],
            )
            .map_err(|e| self.sql_err(e))?;
            tx.execute_batch(
                "UPDATE blobs SET (pack, kind, offset, length, raw_len) =
                     (SELECT c.pack, c.kind, c.offset, c.length, c.raw_len
                      FROM blob_copies c JOIN packs p ON p.rowid = c.pack
                      WHERE c.id = blobs.id AND p.present = 1 LIMIT 1)
                 WHERE pack IN (SELECT pack FROM temp.gone) AND EXISTS
                     (SELECT 1 FROM blob_copies c JOIN packs p ON p.rowid = c.pack
                      WHERE c.id = blobs.id AND p.present = 1);
                 DELETE FROM blob_copies WHERE EXISTS
                     (SELECT 1 FROM blobs b WHERE b.id = blob_copies.id
                      AND b.pack = blob_copies.pack);
                 DELETE FROM blobs WHERE pack IN (SELECT pack FROM temp.gone);
                 DELETE FROM blob_copies WHERE pack IN (SELECT pack FROM temp.gone);
                 DELETE FROM segment_packs WHERE pack IN (SELECT pack FROM temp.gone);
                 DROP TABLE temp.gone;",
            )
            .map_err(|e| self.sql_err(e))?;
            tx.execute("DELETE FROM damaged WHERE pack = ?1", [&id.0[..]])
                .map_err(|e| self.sql_err(e))?;
        }
        promote_intact_copies(&tx).map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }

    /// Number of blobs of each kind in the index: (data, tree).
    pub fn blob_counts(&self) -> Result<(u64, u64)> {
        let conn = self.conn();
        conn.query_row(
            "SELECT COALESCE(SUM(kind = 0), 0), COALESCE(SUM(kind = 1), 0) FROM blobs",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .map_err(|e| self.sql_err(e))
    }
}

/// A blob location from its catalog columns.
pub(super) fn location(
    kind: u8,
    pack: Vec<u8>,
    offset: u32,
    length: u32,
    raw_len: u32,
) -> repo::Result<BlobLocation> {
    Ok(BlobLocation {
        kind: BlobKind::from_u8(kind)
            .ok_or_else(|| repo::RepoError::Index(format!("bad kind {kind}")))?,
        pack: PackId(
            pack.try_into()
                .map_err(|_| repo::RepoError::Index("bad pack id".into()))?,
        ),
        offset,
        length,
        raw_len,
    })
}

fn link_segment_tx(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    packs: &[IndexedPack],
) -> rusqlite::Result<()> {
    let mut recorded = tx.prepare_cached(
        "SELECT p.rowid FROM packs p WHERE p.id = ?1 AND p.present = 1
           AND (EXISTS (SELECT 1 FROM blobs WHERE pack = p.rowid)
                OR EXISTS (SELECT 1 FROM blob_copies WHERE pack = p.rowid))",
    )?;
    let mut link =
        tx.prepare_cached("INSERT OR IGNORE INTO segment_packs (segment, pack) VALUES (?1, ?2)")?;
    for p in packs {
        let rowid = match recorded
            .query_row([&p.id.0[..]], |r| r.get::<_, i64>(0))
            .optional()?
        {
            Some(rowid) => rowid,
            None => insert_pack_tx(tx, p)?,
        };
        link.execute(params![name, rowid])?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO index_segments (name) VALUES (?1)",
        [name],
    )?;
    Ok(())
}

/// Records a pack and its blobs; returns the pack's row id.
pub(super) fn insert_pack_tx(
    tx: &rusqlite::Transaction<'_>,
    pack: &IndexedPack,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO packs (id, length, present) VALUES (?1, ?2, 1)
         ON CONFLICT(id) DO UPDATE SET present = 1",
        params![&pack.id.0[..], pack.length as i64],
    )?;
    let rowid: i64 = tx.query_row(
        "SELECT rowid FROM packs WHERE id = ?1",
        [&pack.id.0[..]],
        |r| r.get(0),
    )?;
    let mut first = tx.prepare_cached(
        "INSERT OR IGNORE INTO blobs (id, pack, kind, offset, length, raw_len)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    // A blob already located elsewhere: remember this copy too, so that it takes over
    // when the first pack is pruned (and prune can count every byte of every pack).
    let mut copy = tx.prepare_cached(
        "INSERT OR IGNORE INTO blob_copies (id, pack, kind, offset, length, raw_len)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS
             (SELECT 1 FROM blobs WHERE id = ?1 AND pack = ?2)",
    )?;
    for e in &pack.entries {
        let row = params![
            &e.id.0[..],
            rowid,
            e.kind as u8,
            e.offset,
            e.length,
            e.raw_len
        ];
        if first.execute(row)? == 0 {
            copy.execute(row)?;
        }
    }
    Ok(rowid)
}

impl BlobIndex for Catalog {
    /// Writers deduplicate only against blobs that no pending prune plan condemns.
    fn lookup(&self, id: &BlobId) -> repo::Result<Option<BlobLocation>> {
        self.lookup_for_dedup(id).map_err(|e| match e {
            CatalogError::Repo(r) => r,
            other => repo::RepoError::Index(other.to_string()),
        })
    }

    fn record_pack(&self, pack: &IndexedPack) -> repo::Result<()> {
        self.insert_pack(pack)
            .map_err(|e| repo::RepoError::Index(e.to_string()))
    }

    /// The segment is known from now on: the next refresh does not download it again.
    fn record_segment(&self, name: &str, packs: &[IndexedPack]) -> repo::Result<()> {
        self.record_written_segment(name, packs)
            .map_err(|e| repo::RepoError::Index(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::testing::test_pack;

    #[test]
    fn a_written_segment_links_recorded_packs_and_records_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let (one, two) = (test_pack(1, BlobId([1; 32])), test_pack(2, BlobId([2; 32])));
        c.insert_pack(&one).unwrap();
        c.record_written_segment("index/aa", &[one.clone(), two.clone()])
            .unwrap();
        // Both packs are listed by the segment, both blobs found where they are.
        let conn = c.conn();
        let linked: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM segment_packs s JOIN index_segments i ON i.name = s.segment
                 WHERE s.segment = 'index/aa'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        assert_eq!(linked, 2);
        for (p, b) in [(1u8, 1u8), (2, 2)] {
            let loc = c.lookup_blob(&BlobId([b; 32])).unwrap().expect("located");
            assert_eq!(loc.pack, PackId([p; 32]));
        }
        // Nothing was recorded twice.
        let conn = c.conn();
        let copies: i64 = conn
            .query_row("SELECT COUNT(*) FROM blob_copies", [], |r| r.get(0))
            .unwrap();
        assert_eq!(copies, 0);
    }

    #[test]
    fn blobs_in_pack_are_the_blobs_located_there_in_offset_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let mut pack = test_pack(1, BlobId([1; 32]));
        pack.entries.push(repo::PackEntry {
            kind: BlobKind::Tree,
            id: BlobId([2; 32]),
            offset: 2,
            length: 6,
            raw_len: 6,
        });
        c.insert_pack(&pack).unwrap();
        // A second copy of blob 1 elsewhere: not located in pack 2.
        c.insert_pack(&test_pack(2, BlobId([1; 32]))).unwrap();
        let ids = |p: u8| -> Vec<BlobId> {
            c.blobs_in_pack(&PackId([p; 32]))
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        };
        assert_eq!(ids(1), vec![BlobId([2; 32]), BlobId([1; 32])]);
        assert_eq!(ids(2), Vec::<BlobId>::new());
        assert_eq!(ids(3), Vec::<BlobId>::new());
    }
}
