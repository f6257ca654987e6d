//! Whole operations on a repository: backup, restore, verify, forget, prune. A library: the daemon and
//! the tests call it directly; progress goes through [`Progress`].

pub mod backup;
pub mod content;
pub mod disk_cache;
pub mod forget;
mod fsmeta;
mod history;
pub mod pack_reads;
mod progress;
pub mod prune;
pub mod restore;
mod trees;
pub mod verify;

pub use backup::{backup, BackupOutcome, BackupRequest};
pub use content::{ContentReader, FileLayout};
pub use forget::{forget, ForgetOutcome, ForgetRequest};
pub use progress::{CancelToken, NoProgress, Progress};
pub use prune::{prune, PruneOutcome, PruneRequest};
pub use restore::{
    remove_stale_stages, restore, stage_dirs, RestoreMode, RestoreOutcome, RestoreRequest,
};
pub use trees::TreeReader;
pub use verify::{verify, Damage, VerifyReport, VerifyRequest};

use std::path::PathBuf;

use crate::catalog::CatalogError;
use crate::model::ModelError;
use crate::repo::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("no point `{point}` in instance `{instance}`")]
    NoSuchPoint { instance: String, point: String },
    #[error("cancelled")]
    Cancelled,
}

impl EngineError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> EngineError {
        EngineError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the error is damage to what the repository holds (a blob missing from the
    /// index, corrupt, or not what its tree says; a tree that does not decode), as opposed
    /// to storage, I/O or request errors. A restore with `skip_damaged` skips such files.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            EngineError::Model(_)
                | EngineError::Repo(
                    RepoError::CorruptBlob { .. }
                        | RepoError::MissingBlob(_)
                        | RepoError::Format(_)
                )
        )
    }

    /// Whether the operation may succeed if simply retried.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Repo(e) => e.is_transient(),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;
