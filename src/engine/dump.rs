//! One regular file at the top of a point, streamed to a writer (`restore --stdout`):
//! a stream's dump, or any top-level file, read chunk by chunk with memory bounded.

use std::io::Write;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::model::NodeKind;
use crate::repo::Repository;

use super::{ContentReader, EngineError, FileLayout, InvalidRequest, Result, TreeReader};

/// Chunks held in memory while streaming (a few, for the read-ahead).
const CACHE_BYTES: usize = 64 << 20;
/// Bytes per read.
const STEP: usize = 4 << 20;

/// Writes the file `name` at the top of `instance`'s point `point` (a name or `latest`)
/// to `out`; returns its size and the point's name.
pub fn dump_file(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    instance: &str,
    point: &str,
    name: &str,
    out: &mut dyn Write,
) -> Result<(u64, String)> {
    catalog.refresh(repo)?;
    let found = catalog
        .find_point(instance, point)?
        .ok_or_else(|| EngineError::NoSuchPoint {
            instance: instance.to_string(),
            point: point.to_string(),
        })?;
    let m = found.manifest;
    let trees = TreeReader::new(repo.clone(), catalog.clone());
    let root = trees.tree(&m.root)?;
    let node = root
        .find(name.as_bytes())
        .filter(|n| n.kind == NodeKind::File && !name.contains('/'))
        .ok_or_else(|| {
            let files: Vec<String> = root
                .nodes
                .iter()
                .filter(|n| n.kind == NodeKind::File)
                .map(|n| String::from_utf8_lossy(&n.name).into_owned())
                .collect();
            EngineError::Invalid(InvalidRequest::NothingSelected(format!(
                "point {instance}/{} has no regular file `{name}` at its top (its files: {})",
                m.name,
                if files.is_empty() {
                    "none".to_string()
                } else {
                    files.join(", ")
                }
            )))
        })?;
    let layout = FileLayout::new(node.content.clone());
    let reader = ContentReader::new(trees, CACHE_BYTES);
    let mut offset = 0u64;
    while offset < layout.size() {
        let data = reader.read(&layout, offset, STEP, true)?;
        if data.is_empty() {
            break;
        }
        out.write_all(&data)
            .map_err(|e| EngineError::io("writing", "stdout", e))?;
        offset += data.len() as u64;
    }
    out.flush()
        .map_err(|e| EngineError::io("writing", "stdout", e))?;
    Ok((offset, m.name))
}
