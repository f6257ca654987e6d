//! Blob copies known to be damaged: a copy (blob id, pack) that failed its check when
//! verify, a restore or a mount read read it, or that lies past the end of a truncated
//! pack. A damaged copy is never deduplicated against again, so the next backup that has
//! the data stores it anew; and readers are pointed at an intact copy as soon as one
//! exists (the `blobs` row of a blob is kept on an intact copy when there is one), so
//! every point that references the blob reads correctly from then on.
//!
//! The rows are keyed by pack id (not the packs table's row id) and `rebuild` keeps
//! them: the repository itself does not record damage, and a rebuilt index would trust
//! the damaged copy again. Rows of a pack go when the pack leaves the store.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Transaction};

use crate::catalog::{Catalog, Result};
use crate::repo::{BlobId, PackId};

/// One damaged copy of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedCopy {
    pub blob: BlobId,
    pub pack: PackId,
    pub cause: String,
    pub found_ns: i64,
}

/// Moves the `blobs` row (the location readers use) of every blob whose row names a
/// damaged copy to an intact copy in a present pack, when there is one; the damaged
/// location stays known as a copy (prune counts its bytes).
pub(in crate::catalog) fn promote_intact_copies(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DROP TABLE IF EXISTS temp.promote;
         CREATE TEMP TABLE promote AS
             SELECT b.id AS id,
                    (SELECT c.pack FROM blob_copies c JOIN packs cp ON cp.rowid = c.pack
                     WHERE c.id = b.id AND cp.present = 1 AND NOT EXISTS
                         (SELECT 1 FROM damaged d2 WHERE d2.id = c.id AND d2.pack = cp.id)
                     LIMIT 1) AS good
             FROM damaged d CROSS JOIN blobs b ON b.id = d.id
             JOIN packs p ON p.rowid = b.pack AND p.id = d.pack;
         DELETE FROM temp.promote WHERE good IS NULL;
         INSERT OR IGNORE INTO blob_copies (id, pack, kind, offset, length, raw_len)
             SELECT b.id, b.pack, b.kind, b.offset, b.length, b.raw_len
             FROM temp.promote t CROSS JOIN blobs b ON b.id = t.id;
         UPDATE blobs SET (pack, kind, offset, length, raw_len) =
             (SELECT c.pack, c.kind, c.offset, c.length, c.raw_len
              FROM temp.promote t JOIN blob_copies c ON c.id = t.id AND c.pack = t.good
              WHERE t.id = blobs.id)
             WHERE id IN (SELECT id FROM temp.promote);
         DELETE FROM blob_copies WHERE EXISTS
             (SELECT 1 FROM temp.promote t WHERE t.id = blob_copies.id
              AND t.good = blob_copies.pack);
         DROP TABLE temp.promote;",
    )
}

impl Catalog {
    /// Records that the copy of `blob` in `pack` is damaged, and points readers at an
    /// intact copy if there is one. Returns whether the copy was not known as damaged.
    pub fn mark_damaged(&self, blob: &BlobId, pack: &PackId, cause: &str) -> Result<bool> {
        self.mark_all(&[*blob], pack, cause).map(|new| new == 1)
    }

    /// [`Catalog::mark_damaged`] for several blobs of one pack, in one transaction;
    /// returns how many were not known as damaged.
    fn mark_all(&self, blobs: &[BlobId], pack: &PackId, cause: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        let mut new = 0;
        for blob in blobs {
            let added = tx
                .execute(
                    "INSERT OR IGNORE INTO damaged (id, pack, cause, found_ns) VALUES (?1, ?2, ?3, ?4)",
                    params![&blob.0[..], &pack.0[..], cause, crate::model::now_ns()],
                )
                .map_err(|e| self.sql_err(e))?;
            if added == 1 {
                new += 1;
                tracing::warn!(
                    "blob {blob} in pack {} is damaged ({cause}): it will be stored again",
                    pack.to_hex()
                );
            }
        }
        if new > 0 {
            promote_intact_copies(&tx).map_err(|e| self.sql_err(e))?;
        }
        tx.commit().map_err(|e| self.sql_err(e))?;
        Ok(new)
    }

    /// Forgets that a copy is damaged (verify read it intact: the pack was mended).
    pub fn clear_damaged(&self, blob: &BlobId, pack: &PackId) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM damaged WHERE id = ?1 AND pack = ?2",
            params![&blob.0[..], &pack.0[..]],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Every copy known to be damaged, by blob.
    pub fn damaged_copies(&self) -> Result<HashMap<BlobId, Vec<DamagedCopy>>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, pack, cause, found_ns FROM damaged ORDER BY id, pack")
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out: HashMap<BlobId, Vec<DamagedCopy>> = HashMap::new();
        for row in rows {
            let (blob, pack, cause, found_ns) = row.map_err(|e| self.sql_err(e))?;
            let (Some(blob), Ok(pack)) = (BlobId::from_slice(&blob), <[u8; 32]>::try_from(pack))
            else {
                continue;
            };
            out.entry(blob).or_default().push(DamagedCopy {
                blob,
                pack: PackId(pack),
                cause,
                found_ns,
            });
        }
        Ok(out)
    }

    /// Which of `ids` readers can only find in a damaged copy, with the cause.
    pub fn only_damaged(&self, ids: &[BlobId]) -> Result<HashMap<BlobId, String>> {
        let mut out = HashMap::new();
        self.for_id_batches(
            ids,
            |marks| {
                format!(
                    "SELECT b.id, d.cause FROM blobs b JOIN packs p ON p.rowid = b.pack
                     JOIN damaged d ON d.id = b.id AND d.pack = p.id WHERE b.id IN ({marks})"
                )
            },
            |id, r| {
                out.insert(id, r.get(1)?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Marks the copies a truncated pack no longer holds (they end past `size`).
    pub(in crate::catalog) fn mark_truncated(&self, pack: &PackId, size: u64) -> Result<()> {
        let ids: HashSet<Vec<u8>> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(
                    "WITH loc AS (SELECT id, pack, offset, length FROM blobs
                                  UNION ALL SELECT id, pack, offset, length FROM blob_copies)
                     SELECT loc.id FROM loc JOIN packs p ON p.rowid = loc.pack
                     WHERE p.id = ?1 AND loc.offset + loc.length > ?2",
                )
                .map_err(|e| self.sql_err(e))?;
            let rows = stmt
                .query_map(params![&pack.0[..], size as i64], |r| r.get(0))
                .map_err(|e| self.sql_err(e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.sql_err(e))?
        };
        let blobs: Vec<BlobId> = ids.iter().filter_map(|id| BlobId::from_slice(id)).collect();
        let cause = format!("pack {} is truncated to {size} bytes", pack.to_hex());
        self.mark_all(&blobs, pack, &cause)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::testing::test_pack as pack;
    use crate::repo::PackEntry;

    #[test]
    fn a_damaged_copy_is_never_deduplicated_and_readers_move_to_an_intact_one() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let blob = BlobId([9; 32]);
        c.insert_pack(&pack(1, blob)).unwrap();
        assert!(c.lookup_for_dedup(&blob).unwrap().is_some());
        assert!(c.mark_damaged(&blob, &PackId([1; 32]), "flipped").unwrap());
        assert!(!c.mark_damaged(&blob, &PackId([1; 32]), "flipped").unwrap());
        assert_eq!(c.lookup_for_dedup(&blob).unwrap(), None);
        assert!(c.present_for_dedup(&[blob]).unwrap().is_empty());
        // Readers still find the only copy (and fail on it), and know it is damaged.
        assert_eq!(c.lookup_blob(&blob).unwrap().unwrap().pack, PackId([1; 32]));
        assert_eq!(c.only_damaged(&[blob]).unwrap()[&blob], "flipped");

        // The next backup stores it again: readers and dedup take the new copy.
        c.insert_pack(&pack(2, blob)).unwrap();
        let loc = c.lookup_blob(&blob).unwrap().unwrap();
        assert_eq!((loc.pack, loc.length), (PackId([2; 32]), 12));
        assert_eq!(
            c.lookup_for_dedup(&blob).unwrap().unwrap().pack,
            PackId([2; 32])
        );
        assert!(c.only_damaged(&[blob]).unwrap().is_empty());
        assert_eq!(
            c.lookup_blobs(&[blob]).unwrap()[&blob].pack,
            PackId([2; 32])
        );

        // A rebuild-like reload (damaged copy first again) keeps readers on the good one.
        c.packs_deleted(&[PackId([2; 32])]).unwrap();
        assert_eq!(c.lookup_blob(&blob).unwrap().unwrap().pack, PackId([1; 32]));
        c.insert_pack(&pack(3, blob)).unwrap();
        assert_eq!(c.lookup_blob(&blob).unwrap().unwrap().pack, PackId([3; 32]));
        assert_eq!(c.damaged_copies().unwrap()[&blob].len(), 1);
        c.clear_damaged(&blob, &PackId([1; 32])).unwrap();
        assert!(c.damaged_copies().unwrap().is_empty());
    }

    #[test]
    fn a_truncated_pack_damages_only_the_copies_past_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let (a, b) = (BlobId([1; 32]), BlobId([2; 32]));
        let mut p = pack(1, a);
        p.entries.push(PackEntry {
            id: b,
            offset: 19,
            ..p.entries[0]
        });
        c.insert_pack(&p).unwrap();
        c.mark_truncated(&PackId([1; 32]), 20).unwrap();
        let damaged = c.damaged_copies().unwrap();
        assert_eq!(damaged.keys().collect::<Vec<_>>(), vec![&b]);
        assert!(damaged[&b][0].cause.contains("truncated to 20 bytes"));
    }
}
