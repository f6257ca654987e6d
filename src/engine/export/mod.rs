//! Export: a point as a tar stream (`cairn export`, and the mount's `<point>.tar`).
//!
//! The archive holds every entry of the point in a depth-first walk of its trees
//! (`walk`), as GNU tar and bsdtar extract it back: modes, owners, nanosecond times,
//! symlinks, hard links (later names as links to the first), sparse files, xattrs,
//! devices and FIFOs (`writer`, `sparse`). Sockets are left out, as tar leaves them out.
//! The content is read ahead in batches on a pool of threads (`fetch`), so the stream
//! goes at the store's speed with memory bounded and no temporary file. A chunk that is
//! damaged or missing fails the export with the file's path (the output is cut there,
//! without the archive's end: a reader sees a truncated archive, never wrong bytes).
//!
//! The size of an archive is known from the trees alone (`size`), and `stream` reads an
//! archive at any offset by generating it (the mount's virtual file).
//!
//! Files: `request` (what to export, its errors), `walk`, `fetch`, `writer`, `sparse`,
//! `size`, `stream`; this file writes the archive.

mod fetch;
mod request;
mod size;
mod sparse;
mod stream;
mod walk;
mod writer;

use std::io::{self, Write};
use std::sync::Arc;

use globset::GlobSet;

use crate::catalog::Catalog;
use crate::model::{Extent, Manifest};
use crate::repo::Repository;

use super::content::extent_mismatch;
use super::{CancelToken, EngineError, InvalidRequest, TreeReader};
use fetch::{Item, Items};
pub use request::{ExportError, ExportFormat, ExportOutcome, ExportRequest};
pub use size::archive_size;
pub use stream::ArchiveReader;
use walk::{Entry, Walker};
use writer::Prepared;

/// Exports a point to `out` as `req` asks (see the module documentation); `cancel` stops
/// it between entries (the archive is then cut short, as on an error).
pub fn export(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    req: &ExportRequest,
    out: &mut dyn Write,
    cancel: &CancelToken,
) -> Result<ExportOutcome, ExportError> {
    let scope = req.scope()?;
    catalog.refresh(repo).map_err(EngineError::from)?;
    let point = catalog
        .find_point(&req.instance, &req.point)
        .map_err(EngineError::from)?
        .ok_or_else(|| EngineError::NoSuchPoint {
            instance: req.instance.clone(),
            point: req.point.clone(),
        })?;
    let trees = TreeReader::new(repo.clone(), catalog.clone()).with_repo_cache();
    let (entries, bytes) = match req.format {
        ExportFormat::Tar => write_archive(&trees, &point.manifest, scope, out, cancel)?,
        ExportFormat::TarZst => {
            let mut z = zstd::Encoder::new(out, 3).map_err(ExportError::Write)?;
            let done = write_archive(&trees, &point.manifest, scope, &mut z, cancel)?;
            z.finish().map_err(ExportError::Write)?;
            done
        }
    };
    Ok(ExportOutcome {
        point: point.manifest.name,
        entries,
        bytes,
    })
}

/// Writes the archive of `manifest`'s point (the entries `scope` selects) to `out`;
/// returns the entries and the bytes written. On error the archive's end is not written.
pub fn write_archive(
    trees: &TreeReader,
    manifest: &Manifest,
    scope: Option<GlobSet>,
    out: &mut dyn Write,
    cancel: &CancelToken,
) -> Result<(u64, u64), ExportError> {
    let selecting = scope.is_some();
    let walker = Walker::new(trees.clone(), manifest, scope)?;
    let mut items = Items::start(trees.clone(), walker)?;
    let mut builder = tar::Builder::new(Gate {
        out,
        open: true,
        written: 0,
    });
    let result = write_entries(&mut items, &mut builder, cancel);
    if result.is_err() {
        // The builder ends the archive when dropped: a failed export must not look whole.
        builder.get_mut().open = false;
    }
    let entries = result?;
    if selecting && entries == 0 {
        builder.get_mut().open = false;
        return Err(
            EngineError::Invalid(InvalidRequest::NothingSelected(format!(
                "nothing in point {} matches the includes",
                manifest.name
            )))
            .into(),
        );
    }
    builder.finish().map_err(ExportError::Write)?;
    let gate = builder.get_mut();
    gate.out.flush().map_err(ExportError::Write)?;
    Ok((entries, gate.written))
}

/// Writes every entry with its content; returns how many.
fn write_entries(
    items: &mut Items,
    builder: &mut tar::Builder<Gate<'_>>,
    cancel: &CancelToken,
) -> Result<u64, ExportError> {
    let mut entries = 0;
    while let Some(item) = items.next_item()? {
        cancel.check()?;
        let Item::Entry(entry) = item else {
            return Err(EngineError::Invalid(InvalidRequest::Incomplete(
                "export: a chunk came without its file",
            ))
            .into());
        };
        entries += 1;
        let prepared = Prepared::new(&entry);
        let mut data = FileData::new(items, &entry);
        let written = prepared.write(builder, &mut data);
        if let Some(e) = data.failed.take() {
            return Err(ExportError::File {
                path: String::from_utf8_lossy(&entry.path).into_owned(),
                source: Box::new(e),
            });
        }
        written.map_err(ExportError::Write)?;
    }
    Ok(entries)
}

/// The content of one file entry, chunk by chunk from the read-ahead (holes of a sparse
/// file are not in the archive's data). An error is kept in `failed`.
struct FileData<'a> {
    items: &'a mut Items,
    extents: std::vec::IntoIter<Extent>,
    chunk: Option<(Arc<Vec<u8>>, usize)>,
    failed: Option<EngineError>,
}

impl<'a> FileData<'a> {
    fn new(items: &'a mut Items, entry: &Entry) -> FileData<'a> {
        let extents = match entry.has_content() {
            true => entry.node.content.clone(),
            false => Vec::new(),
        };
        FileData {
            items,
            extents: extents.into_iter(),
            chunk: None,
            failed: None,
        }
    }

    /// The next chunk of the file, checked against its extent; `None` at its end.
    fn next_chunk(&mut self) -> Result<Option<Arc<Vec<u8>>>, EngineError> {
        for extent in self.extents.by_ref() {
            let Extent::Data { id, len } = extent else {
                continue;
            };
            let chunk = match self.items.next_item() {
                Ok(Some(Item::Chunk(c))) => c?,
                Ok(_) => {
                    return Err(EngineError::Invalid(InvalidRequest::Incomplete(
                        "export: a file's chunk is missing from the read-ahead",
                    )))
                }
                Err(e) => return Err(e),
            };
            if chunk.len() as u64 != u64::from(len) {
                return Err(extent_mismatch(&id, chunk.len(), len));
            }
            return Ok(Some(chunk));
        }
        Ok(None)
    }
}

impl io::Read for FileData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((chunk, at)) = &mut self.chunk {
                if *at < chunk.len() {
                    let n = buf.len().min(chunk.len() - *at);
                    buf[..n].copy_from_slice(&chunk[*at..*at + n]);
                    *at += n;
                    return Ok(n);
                }
            }
            match self.next_chunk() {
                Ok(Some(c)) => self.chunk = Some((c, 0)),
                Ok(None) => return Ok(0),
                Err(e) => {
                    let text = e.to_string();
                    self.failed = Some(e);
                    return Err(io::Error::other(text));
                }
            }
        }
    }
}

/// The output, counted, and closed once the export failed.
struct Gate<'a> {
    out: &'a mut dyn Write,
    open: bool,
    written: u64,
}

impl Write for Gate<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.open {
            return Err(io::Error::other("the export failed"));
        }
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
