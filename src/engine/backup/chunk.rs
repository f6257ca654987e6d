//! A file's content as chunks: read (sparse ranges as holes, without touching access
//! times), cut with FastCDC, and handed to the packer; one read per hard-link group.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::engine::fsmeta::{data_ranges, open_source};
use crate::engine::{CancelToken, EngineError, Result};
use crate::model::{Extent, Node};
use crate::repo::{BlobKind, ChunkerParams, Packer};
use crate::sync::LockExt;

use super::run::Ctx;

/// Reads and chunks a file: once per hard-link group, whose other members wait for the
/// first reader's extents.
pub(super) fn read_content(ctx: &Ctx<'_>, path: &Path, node: &Node) -> Result<Vec<Extent>> {
    if !node.is_hardlinked() {
        let content = read_file(ctx, path, node)?;
        ctx.files_read.fetch_add(1, Ordering::Relaxed);
        return Ok(content);
    }
    // One reader per hard-link group: the others wait for its extents.
    let slot = ctx
        .links
        .locked()
        .entry((node.dev, node.inode))
        .or_default()
        .clone();
    let mut slot = slot.locked();
    if let Some(content) = &*slot {
        return Ok(content.clone());
    }
    let content = read_file(ctx, path, node)?;
    ctx.files_read.fetch_add(1, Ordering::Relaxed);
    *slot = Some(content.clone());
    Ok(content)
}

/// Ranges up to this size are read whole into a reused buffer and chunked in memory; a
/// streaming chunker per file would allocate (and zero) a max-chunk buffer every time.
const SMALL_RANGE: u64 = 1 << 20;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn chunk_small(
    ctx: &Ctx<'_>,
    mut source: impl Read,
    extents: &mut Vec<Extent>,
    io: impl Fn(std::io::Error) -> EngineError,
) -> Result<u64> {
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        source.read_to_end(&mut buf).map_err(io)?;
        let c = ctx.repo.config().chunker;
        let chunks: Vec<(usize, usize)> = if buf.len() <= c.min_size as usize {
            vec![(0, buf.len())]
        } else {
            fastcdc::v2020::FastCDC::new(&buf, c.min_size, c.avg_size, c.max_size)
                .map(|ch| (ch.offset, ch.length))
                .collect()
        };
        for (offset, length) in chunks {
            if length == 0 {
                continue;
            }
            let (id, _) = ctx
                .packer
                .add(BlobKind::Data, &buf[offset..offset + length])?;
            extents.push(Extent::Data {
                id,
                len: length as u32,
            });
        }
        Ok(buf.len() as u64)
    })
}

/// Cuts `source` with the chunker parameters `c` and stores each chunk through `packer`,
/// appending its extents; the bytes read. A copy that re-chunks another repository's
/// files uses this too.
pub(crate) fn chunk_stream(
    packer: &Packer,
    c: ChunkerParams,
    cancel: &CancelToken,
    source: impl Read,
    extents: &mut Vec<Extent>,
    io: impl Fn(std::io::Error) -> EngineError,
) -> Result<u64> {
    let mut read = 0u64;
    for chunk in fastcdc::v2020::StreamCDC::new(source, c.min_size, c.avg_size, c.max_size) {
        cancel.check()?;
        let chunk = chunk.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(e) => io(e),
            other => io(std::io::Error::other(other.to_string())),
        })?;
        let (id, _) = packer.add(BlobKind::Data, &chunk.data)?;
        read += chunk.length as u64;
        extents.push(Extent::Data {
            id,
            len: chunk.length as u32,
        });
    }
    Ok(read)
}

fn read_file(ctx: &Ctx<'_>, path: &Path, node: &Node) -> Result<Vec<Extent>> {
    let io = |e| EngineError::io("reading", path, e);
    let mut file = open_source(path).map_err(io)?;
    let size = node.size;
    let sparse = file
        .metadata()
        .map(|m| m.blocks() * 512 < size)
        .unwrap_or(false);
    let ranges = if sparse {
        data_ranges(&file, size)
    } else {
        vec![(0, size)]
    };
    let mut extents = Vec::new();
    let mut pos = 0u64;
    for (start, end) in ranges {
        if start > pos {
            extents.push(Extent::Hole { len: start - pos });
        }
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let limited = (&mut file).take(end - start);
        let read = if end - start <= SMALL_RANGE {
            chunk_small(ctx, limited, &mut extents, io)?
        } else {
            chunk_stream(
                &ctx.packer,
                ctx.repo.config().chunker,
                ctx.cancel,
                limited,
                &mut extents,
                io,
            )?
        };
        pos = start + read;
        if read < end - start {
            ctx.warn(format!("{} shrank while it was read", path.display()));
            break;
        }
    }
    if pos < size && sparse {
        extents.push(Extent::Hole { len: size - pos });
    }
    Ok(extents)
}
