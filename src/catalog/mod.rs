//! The catalog: a local SQLite cache of the repository's index and points. Object storage
//! stays the source of truth: [`Catalog::refresh`] brings in what other writers added
//! (and drops what was deleted), [`Catalog::rebuild`] regenerates everything. The index
//! lives on disk, so memory does not grow with the repository.

mod damage;
mod events;
mod jobs;
mod points;
mod private_files;
mod prune;
mod refresh;
mod schema;

use points::insert_point_conn;
pub use points::{latest_of, PointQuery, PointRecord};

pub use damage::DamagedCopy;
pub use events::EventQuery;
pub use jobs::{
    JobRow, FAILED_SCHEDULED_DAYS, FAILED_SCHEDULED_KEEP, FINISHED_JOB_DAYS, FINISHED_JOB_KEEP,
};
pub use prune::{Marks, PackUsage, PlanRecord};
pub use refresh::RefreshStats;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::repo::{
    self, BlobId, BlobIndex, BlobKind, BlobLocation, IndexedPack, PackId, Repository,
};
use crate::sync::LockExt;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite could not write for lack of space (SQLITE_FULL, or ENOSPC under it).
    #[error(
        "no space left on the catalog's disk ({path}): free some space there and run it again"
    )]
    DiskFull { path: PathBuf },
    /// The repository was encrypted when this catalog last saw it, and its `config` now
    /// says it is not: a downgrade (keys deleted, config replaced), never obeyed.
    #[error(
        "the repository {repo} was encrypted when this machine last opened it, and its \
         config now says it is not (its key files are gone): refusing to read or write it \
         as plaintext; put back its original config and keys/ from a copy"
    )]
    Downgraded { repo: String },
    #[error("catalog at {path} has schema version {found}, newer than this cairn knows")]
    TooNew { path: PathBuf, found: i64 },
    #[error("cannot create catalog directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Repo(#[from] repo::RepoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

impl CatalogError {
    /// A SQLite error of the database at `path`; a full disk gets its own variant.
    fn sqlite(path: &Path, source: rusqlite::Error) -> CatalogError {
        if is_disk_full(&source) {
            return CatalogError::DiskFull {
                path: path.to_path_buf(),
            };
        }
        CatalogError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the catalog's disk is full (the job fails; the daemon goes on).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, CatalogError::DiskFull { .. })
    }
}

/// SQLITE_FULL: SQLite's unix layer reports a write that failed with ENOSPC so.
fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

pub type Result<T> = std::result::Result<T, CatalogError>;

/// Where a repository's catalog lives by default: `$CAIRN_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/cairn`, else `~/.cache/cairn`, then `<repo id>/catalog.sqlite`.
pub fn default_path(repo_id: &str) -> PathBuf {
    let base = std::env::var_os("CAIRN_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("cairn")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cairn")))
        .unwrap_or_else(|| PathBuf::from("/var/cache/cairn"));
    base.join(repo_id).join("catalog.sqlite")
}

pub struct Catalog {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Catalog({})", self.path.display())
    }
}

impl Catalog {
    /// Opens (creating and migrating) the catalog database at `path`.
    /// The database and its directory are the owner's only (0600, 0700): they hold
    /// decrypted manifests.
    pub fn open(path: &Path) -> Result<Catalog> {
        if let Some(dir) = path.parent() {
            private_files::create_dir(dir).map_err(|source| CatalogError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        private_files::restrict(path).map_err(|source| CatalogError::Dir {
            path: path.to_path_buf(),
            source,
        })?;
        let sql = |source| CatalogError::sqlite(path, source);
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let version = schema::migrate(&mut conn).map_err(sql)?;
        if version > schema::SCHEMA_VERSION {
            return Err(CatalogError::TooNew {
                path: path.to_path_buf(),
                found: version,
            });
        }
        Ok(Catalog {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Opens the catalog of `repo` at its default place and refreshes it.
    pub fn open_default(repo: &Repository) -> Result<Catalog> {
        let catalog = Catalog::open(&default_path(&repo.config().id))?;
        catalog.refresh(repo)?;
        Ok(catalog)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.locked()
    }

    fn sql_err(&self, source: rusqlite::Error) -> CatalogError {
        CatalogError::sqlite(&self.path, source)
    }

    /// Drops every cached row and reloads from the repository. Known damaged copies
    /// stay: the repository does not record them (see [`DamagedCopy`]).
    pub fn rebuild(&self, repo: &Repository) -> Result<RefreshStats> {
        self.conn()
            .execute_batch(
                "BEGIN; DELETE FROM blobs; DELETE FROM blob_copies; DELETE FROM segment_packs;
                 DELETE FROM packs; DELETE FROM index_segments; DELETE FROM points;
                 DELETE FROM forgotten; DELETE FROM condemned; DELETE FROM prune_plans;
                 COMMIT;",
            )
            .map_err(|e| self.sql_err(e))?;
        self.refresh(repo)
    }

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

    /// Runs the query `sql(marks)` makes for every batch of up to 500 of `ids` (`marks`
    /// is that many `?N`, numbered so a query may use them twice) and hands each row,
    /// with the id in its first column, to `row`.
    pub(crate) fn for_id_batches(
        &self,
        ids: &[BlobId],
        sql: impl Fn(&str) -> String,
        mut row: impl FnMut(BlobId, &rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        const BATCH: usize = 500;
        let conn = self.conn();
        for batch in ids.chunks(BATCH) {
            let marks: Vec<String> = (1..=batch.len()).map(|i| format!("?{i}")).collect();
            let mut stmt = conn
                .prepare_cached(&sql(&marks.join(",")))
                .map_err(|e| self.sql_err(e))?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(batch.iter().map(|id| &id.0[..])))
                .map_err(|e| self.sql_err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.sql_err(e))? {
                let id: Vec<u8> = r.get(0).map_err(|e| self.sql_err(e))?;
                if let Ok(id) = <[u8; 32]>::try_from(id) {
                    row(BlobId(id), r).map_err(|e| self.sql_err(e))?;
                }
            }
        }
        Ok(())
    }

    /// Records a pack and its blobs (first location of a blob wins).
    pub fn insert_pack(&self, pack: &IndexedPack) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        insert_pack_tx(&tx, pack).map_err(|e| self.sql_err(e))?;
        damage::promote_intact_copies(&tx).map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }

    /// The first column of a query without parameters, as strings, in any collection.
    fn strings<C: FromIterator<String>>(&self, sql: &str) -> Result<C> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<C>>()
            .map_err(|e| self.sql_err(e))
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
        damage::promote_intact_copies(&tx).map_err(|e| self.sql_err(e))?;
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
fn location(
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

/// Records a pack and its blobs; returns the pack's row id.
fn insert_pack_tx(tx: &rusqlite::Transaction<'_>, pack: &IndexedPack) -> rusqlite::Result<i64> {
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
}

/// A pack of one data blob, `n` in its id and length, for the catalog's unit tests.
#[cfg(test)]
fn test_pack(n: u8, blob: BlobId) -> IndexedPack {
    IndexedPack {
        id: repo::PackId([n; 32]),
        length: 100,
        entries: vec![repo::PackEntry {
            kind: repo::BlobKind::Data,
            id: blob,
            offset: 8,
            length: 10 + n as u32,
            raw_len: 5,
        }],
    }
}
