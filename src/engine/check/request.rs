//! What a check or a diff is asked to do, and the checks of its settings (threads
//! 1..=16, the ignore globs) before anything is read.

use std::path::PathBuf;

use globset::GlobSet;

use crate::engine::backup::build_globs;
use crate::engine::{EngineError, InvalidRequest, Result};

/// The most threads a check reads the live side with.
pub const MAX_THREADS: usize = 16;

/// A point compared with the live data (or any directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    pub instance: String,
    /// A point name or `latest`.
    pub point: String,
    /// The directory the point's root is compared with; `None`: the point's own source
    /// paths, mapped as an in-place restore maps them.
    pub against: Option<PathBuf>,
    /// Threads reading the live side (1..=16); `None`: one per core.
    pub threads: Option<usize>,
    /// Globs on the path relative to the point's root (`*` crosses `/`): matching
    /// entries are counted as ignored and not descended into.
    pub ignores: Vec<String>,
    /// Compare content (read every live file whose stored one has data); `false`:
    /// compare size and mtime only.
    pub checksum: bool,
    /// A cap on bytes read from the live side, in MB (10^6 bytes) a second.
    pub bandwidth_mb: Option<u64>,
}

impl CheckRequest {
    /// A check of `point` of `instance` against its source paths, with checksums.
    pub fn new(instance: &str, point: &str) -> CheckRequest {
        CheckRequest {
            instance: instance.to_string(),
            point: point.to_string(),
            against: None,
            threads: None,
            ignores: Vec::new(),
            checksum: true,
            bandwidth_mb: None,
        }
    }

    /// The threads to use: as asked (1..=16), or one per core.
    pub(super) fn thread_count(&self) -> Result<usize> {
        match self.threads {
            Some(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
            Some(_) => Err(EngineError::Invalid(InvalidRequest::BadSetting(
                "threads must be 1 to 16",
            ))),
            None => Ok(std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, MAX_THREADS)),
        }
    }

    pub(super) fn ignore_set(&self) -> Result<GlobSet> {
        build_globs("ignore", &self.ignores)
    }
}

/// Two points of one instance compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRequest {
    pub instance: String,
    /// The first point (a name or `latest`): what only it has is `removed`.
    pub point_a: String,
    /// The second point: what only it has is `added`.
    pub point_b: String,
}
