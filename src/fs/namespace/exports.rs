//! Exports in the mount: `<instance>/<point>.tar` (also `latest.tar`) is a read-only
//! file holding exactly the bytes of `cairn export INSTANCE POINT`. It is looked up by
//! name and never listed (like the `@TIME` views). Its size is the archive's, worked out
//! from the point's trees when it is looked up; each open handle generates the archive
//! as it is read ([`ArchiveReader`]), so nothing is staged. It is the mount owner's only
//! (mode 0400): it holds every file of the point, whatever their own modes.

use std::sync::Arc;

use super::inode::ExportFile;
use super::{Attr, FsResult, Inode, Key, Namespace};
use crate::engine::export::{archive_size, ArchiveReader};
use crate::sync::RwLockExt;

/// The suffix that names a point's archive.
const SUFFIX: &[u8] = b".tar";

/// Whether looking `name` up in an instance's directory means an archive.
pub(super) fn is_export_name(name: &[u8]) -> bool {
    name.len() > SUFFIX.len() && name.ends_with(SUFFIX)
}

impl Namespace {
    /// The archive file `name` (`<point>.tar`) of an instance; its size is computed on
    /// first lookup (and kept while the kernel holds it).
    pub(super) fn export_file(&self, instance: &str, name: &[u8]) -> FsResult<(Key, Inode)> {
        let stem =
            std::str::from_utf8(&name[..name.len() - SUFFIX.len()]).map_err(|_| libc::ENOENT)?;
        let points = self.service.points(instance);
        let latest = stem == "latest";
        let point = match latest {
            true => crate::catalog::latest_of(points),
            false => points.into_iter().find(|p| p.manifest.name == stem),
        }
        .ok_or(libc::ENOENT)?;
        let key = Key::Export(point.id, latest);
        if let Some(ino) = self.table.read_locked().find(&key) {
            return Ok((key, self.inode(ino)?));
        }
        let size = archive_size(self.content.trees(), &point.manifest, None).map_err(|e| {
            tracing::error!("sizing the archive of {instance}/{stem}: {e}");
            libc::EIO
        })?;
        let file = ExportFile {
            point,
            size,
            latest,
        };
        Ok((key, Inode::Export(Arc::new(file))))
    }

    /// An archive file's attributes: the owner's, read-only, at the point's time; cached
    /// by the kernel like the point, but for `latest.tar` (looked up again each time).
    pub(super) fn export_attr(&self, ino: u64, file: &ExportFile) -> Attr {
        let time = file.point.manifest.time_ns;
        Attr {
            mtime_ns: time,
            ctime_ns: time,
            immutable: !file.latest,
            ..self.file_attr(ino, 0o400, file.size)
        }
    }

    /// A reader of an archive file for a new handle.
    pub(super) fn export_reader(&self, file: &ExportFile) -> ArchiveReader {
        ArchiveReader::new(self.content.trees().clone(), file.point.manifest.clone())
    }
}
