//! The catalog's error and result types.

use std::path::{Path, PathBuf};

use crate::repo;

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
    pub(in crate::catalog) fn sqlite(path: &Path, source: rusqlite::Error) -> CatalogError {
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
