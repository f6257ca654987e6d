//! The exact size of an export's tar stream, from the point's trees alone: each entry's
//! headers as the writer makes them, and its data's length rounded to whole blocks.

use globset::GlobSet;

use super::walk::Walker;
use super::writer::{Prepared, BLOCK};
use super::ExportError;
use crate::engine::TreeReader;
use crate::model::Manifest;

/// The bytes [`write_archive`](super::write_archive) writes for the same point and scope.
pub fn archive_size(
    trees: &TreeReader,
    manifest: &Manifest,
    scope: Option<GlobSet>,
) -> Result<u64, ExportError> {
    let mut walker = Walker::new(trees.clone(), manifest, scope)?;
    // The archive ends with two empty blocks.
    let mut total = 2 * BLOCK;
    while let Some(entry) = walker.next_entry()? {
        total += Prepared::new(&entry).archived_len();
    }
    Ok(total)
}
