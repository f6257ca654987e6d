//! The cache's figures for `.cairn/stats`: counts and sums computed by SQL, no row
//! loaded into memory.

use crate::catalog::{Catalog, Result};

/// How much the cache knows of the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogCounts {
    pub points: u64,
    /// Packs the last listing of `packs/` showed, and their bytes.
    pub packs: u64,
    pub stored_bytes: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    pub forgotten_points: u64,
    pub prune_plans: u64,
}

impl Catalog {
    /// The figures, in one read of the database.
    pub fn counts(&self) -> Result<CatalogCounts> {
        let conn = self.conn();
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM points),
                    (SELECT COUNT(*) FROM packs WHERE present = 1),
                    (SELECT COALESCE(SUM(length), 0) FROM packs WHERE present = 1),
                    (SELECT COALESCE(SUM(kind = 0), 0) FROM blobs),
                    (SELECT COALESCE(SUM(kind = 1), 0) FROM blobs),
                    (SELECT COUNT(*) FROM forgotten),
                    (SELECT COUNT(*) FROM prune_plans)",
            [],
            |r| {
                let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(CatalogCounts {
                    points: n(0)?,
                    packs: n(1)?,
                    stored_bytes: n(2)?,
                    data_blobs: n(3)?,
                    tree_blobs: n(4)?,
                    forgotten_points: n(5)?,
                    prune_plans: n(6)?,
                })
            },
        )
        .map_err(|e| self.sql_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::testing::test_pack as pack;
    use crate::repo::BlobId;

    #[test]
    fn counts_agree_with_the_listings() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        assert_eq!(c.counts().unwrap(), CatalogCounts::default());
        for n in 1..=3u8 {
            c.insert_pack(&pack(n, BlobId([n; 32]))).unwrap();
        }
        c.packs_deleted(&[pack(2, BlobId([2; 32])).id]).unwrap();
        let counts = c.counts().unwrap();
        let packs = c.packs().unwrap();
        let present: Vec<_> = packs.iter().filter(|p| p.2).collect();
        assert_eq!(counts.packs, present.len() as u64);
        assert_eq!(
            counts.stored_bytes,
            present.iter().map(|p| p.1).sum::<u64>()
        );
        assert_eq!((counts.packs, counts.stored_bytes), (2, 200));
        assert_eq!(
            (counts.data_blobs, counts.tree_blobs),
            c.blob_counts().unwrap()
        );
        assert_eq!(counts.points, c.points(None).unwrap().len() as u64);
        assert_eq!(
            counts.forgotten_points,
            c.forgotten(None).unwrap().len() as u64
        );
        assert_eq!(counts.prune_plans, c.plans().unwrap().len() as u64);
    }
}
