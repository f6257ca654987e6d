//! Whole operations on a repository: backup, restore, verify, check (a point against the
//! live data, or two points), forget, prune, repair, a point as a tar stream (`export`),
//! copy of points into another repository (`copy`), and one file of a point to a writer
//! (`dump`). A library: the daemon and the tests call it directly; progress goes through
//! [`Progress`].
//!
//! Blobs are read through a [`BlobReader`], trees through a [`TreeReader`] (decoded, cached,
//! prefetched) on top of it, file content through a [`ContentReader`]; a remote
//! repository's trees also through the on-disk blob cache (`disk_cache`, filled a whole
//! tree pack at a time by `tree_packs`). A request refused before anything is done is an
//! [`InvalidRequest`].

pub mod backup;
mod blobs;
pub mod check;
pub mod content;
pub mod copy;
pub mod disk_cache;
mod dump;
pub mod export;
pub mod forget;
mod fsmeta;
mod history;
mod invalid;
pub mod logs;
pub mod pack_reads;
mod progress;
pub mod prune;
pub mod repair;
pub mod restore;
mod tree_packs;
mod trees;
pub mod verify;

pub use backup::{backup, BackupOutcome, BackupRequest, BeforeCommit, StreamFinish, StreamSource};
pub use blobs::BlobReader;
pub use check::{check, diff, CheckReport, CheckRequest, DiffRequest};
pub use content::{ContentReader, FileLayout};
pub use copy::{copy, CopiedPoint, CopyOutcome, CopyRequest};
pub use dump::dump_file;
pub use export::{export, ExportError, ExportFormat, ExportOutcome, ExportRequest};
pub use forget::{forget, ForgetOutcome, ForgetRequest};
pub use invalid::InvalidRequest;
pub use progress::{CancelToken, NoProgress, Progress};
pub use prune::{prune, PruneOutcome, PruneRequest};
pub use repair::{repair, RepairOutcome, RepairRequest};
pub use restore::{
    remove_stale_stages, restore, stage_dirs, RestoreMode, RestoreOutcome, RestoreRequest,
};
pub use trees::TreeReader;
pub use verify::{verify, Damage, LogDamage, VerifyReport, VerifyRequest};

use std::path::PathBuf;

use crate::catalog::CatalogError;
use crate::model::names::BadInstanceName;
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
    /// A request refused before anything is done; [`InvalidRequest`] says why.
    #[error("invalid request: {0}")]
    Invalid(InvalidRequest),
    // The variants below are failures, not refused requests; their texts keep the prefix
    // they have always had.
    /// Every candidate name for a new point or stage is taken.
    #[error("invalid request: {0}")]
    NoFreeName(String),
    #[error(
        "invalid request: {0} point manifest(s) could not be read, so what they reference is \
         unknown: prune does nothing until `verify` explains them"
    )]
    UnreadablePoints(u64),
    #[error("invalid request: cannot start worker threads: {0}")]
    Threads(rayon::ThreadPoolBuildError),
    /// A swap failed, and so did putting the original back: it is in `stage`.
    #[error(
        "invalid request: {error}; then swapping {} back failed ({back}): its previous content \
         is in {}",
        .dest.display(),
        .stage.display()
    )]
    SwapBack {
        error: Box<EngineError>,
        back: std::io::Error,
        dest: PathBuf,
        stage: PathBuf,
    },
    /// A verify found damage (the names of the damaged points' paths and the problems).
    #[error("invalid request: damage found: {0}")]
    Damage(String),
    /// Damage in a point that `repair` marked damaged: what it lacks, and the error met.
    #[error(
        "point {point} is marked damaged by `cairn repair`: {paths} lack data ({source}); \
         --skip-damaged restores the rest"
    )]
    MarkedDamaged {
        point: String,
        paths: String,
        source: Box<EngineError>,
    },
    #[error("no point `{point}` in instance `{instance}`")]
    NoSuchPoint { instance: String, point: String },
    /// A stream of a backup failed (its reader, or its producer at the end): no point.
    #[error("stream `{name}`: {message} (no point was made)")]
    StreamFailed { name: String, message: String },
    /// The log archive cannot give what was asked: a record is missing or unreadable.
    #[error("the log archive of `{instance}` has a gap: {message}")]
    LogGap { instance: String, message: String },
    #[error("cancelled")]
    Cancelled,
}

impl From<BadInstanceName> for EngineError {
    fn from(e: BadInstanceName) -> EngineError {
        EngineError::Invalid(InvalidRequest::BadInstanceName(e))
    }
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
    /// index, corrupt, or not what its tree says; a tree that does not decode; damage a
    /// verify found), as opposed
    /// to storage, I/O or request errors. A restore with `skip_damaged` skips such files.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            EngineError::Model(_)
                | EngineError::Damage(_)
                | EngineError::MarkedDamaged { .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_request_errors_read_as_before() {
        let cases = [
            (
                EngineError::Invalid(InvalidRequest::BadLabel("auto".into())),
                "invalid request: point label `auto` must be 1-64 of A-Z a-z 0-9 _ -, not `auto` or `before-restore` (reserved, also with a `-N` suffix)",
            ),
            (
                EngineError::from(BadInstanceName("a b".into())),
                "invalid request: instance name `a b` must be 1-255 of A-Z a-z 0-9 _ -",
            ),
            (
                EngineError::Invalid(InvalidRequest::TargetNotEmpty("/t".into())),
                "invalid request: target /t is not empty: restore into a new or empty directory, or in place",
            ),
            (
                EngineError::Invalid(InvalidRequest::SeveralSources("p".into())),
                "invalid request: point p holds several sources: it can only be restored in place over them, or into a new location",
            ),
            (
                EngineError::Invalid(InvalidRequest::ManualPoint { instance: "i".into(), point: "p".into() }),
                "invalid request: point i/p is a manual point: forgetting it needs manual=true (--manual)",
            ),
            (
                EngineError::Invalid(InvalidRequest::PitrAfterLatest {
                    instance: "pg".into(),
                    at: "2026-12-01T10:30:15Z".into(),
                    latest: "2026-12-01T10:30:09Z".into(),
                }),
                "invalid request: 2026-12-01T10:30:15Z is after the latest restorable second of instance `pg`, 2026-12-01T10:30:09Z (the archive holds every write up to its end)",
            ),
            (
                EngineError::Invalid(InvalidRequest::PitrBeforeFirstPoint {
                    instance: "pg".into(),
                    at: "2026-12-01T10:30:15Z".into(),
                    earliest: Some("2026-12-02T00:00:00Z".into()),
                }),
                "invalid request: instance `pg` has no point before 2026-12-01T10:30:15Z: the earliest restorable second is 2026-12-02T00:00:00Z",
            ),
            (
                EngineError::UnreadablePoints(2),
                "invalid request: 2 point manifest(s) could not be read, so what they reference is unknown: prune does nothing until `verify` explains them",
            ),
            (
                EngineError::SwapBack {
                    error: Box::new(EngineError::Cancelled),
                    back: std::io::Error::from_raw_os_error(libc::ENOENT),
                    dest: "/d".into(),
                    stage: "/s".into(),
                },
                "invalid request: cancelled; then swapping /d back failed (No such file or directory (os error 2)): its previous content is in /s",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        assert!(EngineError::Damage("i/p/f".into()).is_damage());
    }
}
