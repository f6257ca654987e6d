//! What can stop the service itself (start, refresh): the catalog, the repository or
//! the store failing. A refused request is a [`ControlError`](super::ControlError).

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
