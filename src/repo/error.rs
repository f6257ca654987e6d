//! The repository layer's error and result types, shared by every file of `repo`.

use super::blob_id::BlobId;
use super::layout::FORMAT_VERSION;
use crate::store::StoreError;

/// Errors of the repository layer.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no cairn repository at {0} (run `cairn init` first)")]
    NotARepository(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    #[error("repository format version {0} is not supported by this cairn (it reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    #[error("wrong password: no key of this repository opens with it")]
    WrongPassword,
    #[error(
        "the repository is encrypted: a password is needed (CAIRN_PASSWORD or --password-file)"
    )]
    PasswordRequired,
    #[error("the repository's config was altered: {0}; `init` writes config once and nothing changes it: restore the original config")]
    ConfigAltered(String),
    #[error("the repository's key is missing: {0}")]
    KeyMissing(String),
    #[error("the repository's key file is damaged: {0}")]
    KeyDamaged(String),
    #[error("data failed authentication")]
    Authentication,
    #[error("blob {id} is corrupt: {detail}")]
    CorruptBlob { id: BlobId, detail: String },
    #[error("blob {0} is not in the index")]
    MissingBlob(BlobId),
    #[error("malformed repository data: {0}")]
    Format(String),
    #[error("blob index: {0}")]
    Index(String),
    #[error("repository busy: {0}")]
    Busy(String),
}

impl RepoError {
    pub fn is_transient(&self) -> bool {
        matches!(self, RepoError::Store(e) if e.is_transient())
    }
}

pub type Result<T> = std::result::Result<T, RepoError>;
