//! Copy: points of one repository into another, with their history (`cairn copy`). Each
//! copied manifest keeps the point's name, kind, time, label, stats and warnings, is
//! re-chained in the target (its parent is the target's previous point of the instance)
//! and records where it came from ([`CopiedFrom`](crate::model::manifest::CopiedFrom)).
//! Only blobs the target lacks are uploaded, packed by the target's packer.
//!
//! - When both repositories share the master key and the chunker parameters (`init
//!   --like`), stored blobs move as they are (`raw`): checked, never decompressed into a
//!   new form nor re-chunked. Otherwise every file is read and chunked again with the
//!   target's parameters (`rechunk`), like a backup would.
//! - A copy is resumable: points the target already holds a copy of are skipped (`plan`),
//!   and blobs it holds, in packs an interrupted copy uploaded too (the catalog finds
//!   those through their headers), are not sent again.
//!
//! - The instances' log records follow (`logs`), between repositories that share the
//!   keys only.
//!
//! Files: `plan` (what to copy, what is there), `raw`, `rechunk`, `manifests` (the
//! re-chained manifests and the instance definitions), `logs`, `run` (the order of a
//! copy).

mod logs;
mod manifests;
mod plan;
mod raw;
mod rechunk;
mod run;

pub use run::copy;

use super::VerifyReport;

/// What to copy.
#[derive(Debug, Clone, Default)]
pub struct CopyRequest {
    /// Only this instance (every instance of the source when `None`).
    pub instance: Option<String>,
    /// Only these points (names or `latest`) of `instance`; all of its points when empty.
    pub points: Vec<String>,
    /// Verify the target's copied instances at the end (the structure; `read_data`
    /// downloads the data too).
    pub verify: bool,
    pub read_data: bool,
}

/// One point copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopiedPoint {
    pub instance: String,
    /// Its name in the source.
    pub point: String,
    /// Its name in the target (the same unless the target had another point of that name).
    pub name: String,
}

/// What a copy did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyOutcome {
    pub points_copied: u64,
    /// Points the target already held a copy of.
    pub points_skipped: u64,
    /// Blobs new to the target, and the bytes of the packs uploaded for them.
    pub blobs_copied: u64,
    pub bytes_uploaded: u64,
    /// Whether the files were chunked again (the repositories have other keys or chunker
    /// parameters) rather than their stored blobs moved as they are.
    pub rechunked: bool,
    /// Instance definitions the target lacked and got.
    pub instances_defined: u64,
    /// Log records the target lacked and got (only between repositories that share the
    /// keys).
    pub log_records_copied: u64,
    pub copied: Vec<CopiedPoint>,
    /// The verify of the target at the end, when asked for.
    pub verify: Option<VerifyReport>,
}
