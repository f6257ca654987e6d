//! What an export is asked (a point, includes, a format), what it did, and its errors.

use std::str::FromStr;

use globset::GlobSet;

use crate::engine::restore::include_globs;
use crate::engine::{EngineError, InvalidRequest};
use crate::model::names::check_instance_name;

/// The archive's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// A plain tar stream.
    #[default]
    Tar,
    /// The tar stream compressed with zstd.
    TarZst,
}

impl FromStr for ExportFormat {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<ExportFormat, EngineError> {
        match s {
            "tar" => Ok(ExportFormat::Tar),
            "tar.zst" => Ok(ExportFormat::TarZst),
            other => Err(EngineError::Invalid(InvalidRequest::BadPattern(format!(
                "export format `{other}`: tar or tar.zst"
            )))),
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub instance: String,
    /// A point name or `latest`.
    pub point: String,
    /// Globs on paths relative to the point root, as a restore's `includes`; empty
    /// exports everything.
    pub includes: Vec<String>,
    pub format: ExportFormat,
}

impl ExportRequest {
    /// Checks the request; the globs it selects with.
    pub(super) fn scope(&self) -> Result<Option<GlobSet>, EngineError> {
        check_instance_name(&self.instance)?;
        include_globs(&self.includes)
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    /// The exported point's name (`latest` resolved).
    pub point: String,
    /// Archive entries written.
    pub entries: u64,
    /// Bytes of the tar stream (before compression).
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Refused, or failed before or between entries (a tree, the store).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The content of the file at `path` (its archive path) could not be read.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: Box<EngineError>,
    },
    /// The output could not be written.
    #[error("writing the archive: {0}")]
    Write(#[source] std::io::Error),
}
