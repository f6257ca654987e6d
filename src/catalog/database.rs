//! The catalog database: where it lives, opening (creating, restricting and migrating)
//! it, and the connection and query helpers every table's code shares.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use super::error::{CatalogError, Result};
use super::{private_files, schema};
use crate::repo::{BlobId, Repository};
use crate::sync::LockExt;

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

/// The catalog of one repository: one SQLite connection, shared under a lock.
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

    pub(in crate::catalog) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.locked()
    }

    pub(in crate::catalog) fn sql_err(&self, source: rusqlite::Error) -> CatalogError {
        CatalogError::sqlite(&self.path, source)
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

    /// The first column of a query without parameters, as strings, in any collection.
    pub(in crate::catalog) fn strings<C: FromIterator<String>>(&self, sql: &str) -> Result<C> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<rusqlite::Result<C>>()
            .map_err(|e| self.sql_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn database_and_side_files_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        // A cache dir the user made world-readable, as CAIRN_CACHE_DIR may well be.
        std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o777)).unwrap();
        let dir = tmp.path().join("0123/abcd");
        let db = dir.join("catalog.sqlite");
        let catalog = Catalog::open(&db).unwrap();
        drop(catalog);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(dir.parent().unwrap()), 0o700);
        assert_eq!(mode(&db), 0o600);
        // An older catalog with a broad mode and broad side files is narrowed on open.
        std::fs::set_permissions(&db, Permissions::from_mode(0o644)).unwrap();
        let wal = dir.join("catalog.sqlite-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let catalog = Catalog::open(&db).unwrap();
        catalog.path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        // A directory that exists is the user's choice.
        assert_eq!(mode(&dir), 0o755);
    }
}
