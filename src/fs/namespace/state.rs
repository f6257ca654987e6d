//! The types of what a namespace keeps between calls besides its inodes: open handles,
//! the job files unlinked in this mount, and the instances' archived log files. A leaf,
//! so that the namespace and the files that implement handles and removal share them
//! without a cycle.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use std::time::Instant;

use super::control_reply::Reply;
use super::listing::Listing;
use crate::engine::logs::{FileVersion, VersionReader};
use crate::engine::FileLayout;
use crate::service::LogUpload;

/// What an open handle holds.
pub(super) enum Handle {
    /// A point file: its layout and where the last read ended (sequential detection).
    Content {
        layout: Arc<FileLayout>,
        next: Mutex<u64>,
    },
    /// A dynamic file's content, captured at open so reads never tear.
    Snapshot(Vec<u8>),
    /// `.cairn/events` as it was at open, read in pages.
    Events(crate::service::EventsSnapshot),
    /// A control file: the reply to the last request written through this handle, and
    /// (`ctl/log`) the push whose bytes are coming through it.
    Control {
        file: &'static str,
        reply: Mutex<Reply>,
        upload: Mutex<Option<LogUpload>>,
    },
    /// A job's input (`jobs/<id>/input`), open for writing.
    Input(u64),
    /// A log file version (`logs/<name>`, or a view's log file cut at its second).
    Log(VersionReader),
    /// A point's archive file, generated as it is read.
    Export(Box<crate::engine::export::ArchiveReader>),
    /// An open directory: its inode and the snapshot of its entries.
    Dir { dir: u64, listing: Listing },
}

/// An instance's archived log files (newest versions by name), and when they were read
/// from the catalog.
pub(super) type LogFiles = (Instant, Arc<BTreeMap<String, Arc<FileVersion>>>);

/// The files of a job directory.
pub(super) const JOB_FILES: [&str; 2] = ["status", "log"];
/// The file a check job has beside its `JOB_FILES`.
pub(super) const DIFFERENCES: &str = "differences";

/// Job files unlinked in this mount, by job.
pub(super) type RemovedJobFiles = HashMap<u64, BTreeSet<&'static str>>;
