//! `<instance>/logs/`: each archived log file of an instance, as its newest version in
//! the catalog's log records (and `<instance>/restorable`, the range of seconds its
//! `@TIME/` views and restores reach), so that PostgreSQL's `restore_command = 'cp
//! <mnt>/pg/logs/%f %p'` needs no cairn command. Listing it reads the records again
//! (a pass or a push shows up at once); a file's attributes are at most
//! [`FRESH`] old. Reads fetch only the records that hold the range asked for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Attr, Child, EntryKind, FsResult, Inode, Key, Namespace};
use crate::engine::logs::{FileVersion, Timeline};
use crate::service::log_range::restorable;
use crate::sync::LockExt;

/// The name of the log directory in an instance's directory (no point name starts with
/// anything but a digit, so it never clashes with one).
pub(super) const LOGS_NAME: &str = "logs";

/// The name of the restorable range's file in an instance's directory.
const RESTORABLE_NAME: &str = "restorable";

/// How old the log files a `getattr` or an `open` sees may be.
const FRESH: Duration = Duration::from_secs(1);

type Versions = Arc<BTreeMap<String, Arc<FileVersion>>>;

impl Namespace {
    /// An instance's archived log files, read from the catalog when older than `max_age`.
    /// An unreadable archive (a gap) shows what it had before, and is logged.
    pub(super) fn log_versions(&self, instance: &str, max_age: Duration) -> Versions {
        if let Some((at, v)) = self.log_files.locked().get(instance) {
            if at.elapsed() <= max_age {
                return v.clone();
            }
        }
        // A version whose first records expired (or were lost) cannot be read whole: it
        // is left out, and logged.
        let read = Timeline::load(self.service.catalog(), instance).map(|t| {
            let (files, holes) = match t.records().len().checked_sub(1) {
                Some(last) => t.whole_files_after(last),
                None => (Vec::new(), Vec::new()),
            };
            for hole in holes {
                tracing::warn!("logs/ of instance `{instance}` leaves out a file: {hole}");
            }
            files
        });
        let mut cache = self.log_files.locked();
        let versions = match read {
            Ok(files) => Arc::new(
                files
                    .into_iter()
                    .map(|v| (v.name.clone(), Arc::new(v)))
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!("reading the log archive of instance `{instance}`: {e}");
                cache
                    .get(instance)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            }
        };
        cache.insert(instance.to_string(), (Instant::now(), versions.clone()));
        versions
    }

    /// `logs` and `restorable` in an instance's listing when it has archived log files.
    pub(super) fn logs_entries(&self, instance: &str) -> Vec<Child> {
        if self.log_versions(instance, Duration::ZERO).is_empty() {
            return Vec::new();
        }
        let n = instance.to_string();
        vec![
            Child::new(
                LOGS_NAME,
                Key::LogsDir(n.clone()),
                Inode::LogsDir(n.clone()),
            ),
            Child::new(
                RESTORABLE_NAME,
                Key::Restorable(n.clone()),
                Inode::Restorable(n),
            ),
        ]
    }

    /// The restorable range as `range instance=NAME` in `ctl/log` gives it (earliest and
    /// latest second, gaps), one JSON line; `null` when there is none.
    pub(super) fn restorable_text(&self, instance: &str) -> String {
        let last_pass_ns = self.service.log_last_pass_ns(instance);
        match restorable(self.service.catalog(), instance, last_pass_ns) {
            Ok(range) => format!("{range}\n"),
            Err(e) => {
                tracing::warn!("the restorable range of instance `{instance}`: {e}");
                format!("{}\n", serde_json::json!({ "error": e.to_string() }))
            }
        }
    }

    /// The files of `<instance>/logs/`, by name.
    pub(super) fn logs_listing(&self, instance: &str) -> Vec<Child> {
        self.log_versions(instance, Duration::ZERO)
            .keys()
            .map(|name| {
                let (key, inode) = log_file_entry(instance, name);
                Child::new(name.as_bytes(), key, inode)
            })
            .collect()
    }

    /// The entry `logs/<name>`: from what was read less than [`FRESH`] ago, else from
    /// the catalog (`restore_command` looks up one segment after another).
    pub(super) fn log_file(&self, instance: &str, name: &[u8]) -> FsResult<(Key, Inode)> {
        let name = std::str::from_utf8(name).map_err(|_| libc::ENOENT)?;
        let known = |max_age| self.log_versions(instance, max_age).contains_key(name);
        if !known(FRESH) && !known(Duration::ZERO) {
            return Err(libc::ENOENT);
        }
        Ok(log_file_entry(instance, name))
    }

    /// A log file's newest version (at most [`FRESH`] old).
    pub(super) fn log_version(&self, instance: &str, name: &str) -> FsResult<Arc<FileVersion>> {
        self.log_versions(instance, FRESH)
            .get(name)
            .cloned()
            .ok_or(libc::ENOENT)
    }

    /// `logs/` changes with every pass: its time is its newest file's.
    pub(super) fn logs_dir_attr(&self, ino: u64, instance: &str) -> Attr {
        let newest = self
            .log_versions(instance, FRESH)
            .values()
            .map(|v| v.time_ns)
            .max();
        self.dir_attr(ino, 0o555, newest.unwrap_or(self.started_ns), false)
    }

    /// A log file: read-only, sized and timed as archived; its ctime is when its newest
    /// bytes were archived.
    pub(super) fn log_file_attr(&self, ino: u64, v: &FileVersion) -> Attr {
        Attr {
            kind: EntryKind::File,
            size: v.size,
            blocks: v.size.div_ceil(512),
            nlink: 1,
            mtime_ns: v.mtime_ns,
            ctime_ns: v.time_ns,
            ..self.dir_attr(ino, 0o444, v.mtime_ns, false)
        }
    }
}

fn log_file_entry(instance: &str, name: &str) -> (Key, Inode) {
    (
        Key::LogFile(instance.to_string(), name.to_string()),
        Inode::LogFile(Box::new((instance.to_string(), name.to_string()))),
    )
}
