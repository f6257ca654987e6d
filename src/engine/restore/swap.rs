//! Swapping stages into place, rolling back a failed swap, and removing what is left.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::engine::{EngineError, Result};

use super::unit::{Swap, Unit};
use crate::engine::fsmeta::{fsync_dir, rename2, rename_noreplace};

/// Paths removed when the restore ends, however it ends: the stages before the swap,
/// the old trees after it.
pub(super) struct Cleanup(pub(super) Vec<PathBuf>);

impl Cleanup {
    pub(super) fn remove_all(&mut self) -> Vec<String> {
        self.0
            .drain(..)
            .filter_map(|p| {
                remove_tree(&p)
                    .err()
                    .map(|e| format!("could not remove {}: {e}", p.display()))
            })
            .collect()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for w in self.remove_all() {
            tracing::warn!("{w}");
        }
    }
}

/// Removes a file or a directory tree, never following symlinks.
pub(super) fn remove_tree(path: &Path) -> io::Result<()> {
    let md = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if !md.is_dir() {
        return fs::remove_file(path);
    }
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            // Restored read-only directories (without root): open them up, try again.
            let mut stack = vec![path.to_path_buf()];
            while let Some(dir) = stack.pop() {
                let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
                for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
            }
            fs::remove_dir_all(path)
        }
        other => other,
    }
}

/// Swaps every staged unit into place; on a failure, swaps back what was done.
pub(super) fn swap_all(units: &[Unit], cleanup: &mut Cleanup) -> Result<()> {
    let mut done: Vec<&Unit> = Vec::new();
    let mut failure = None;
    for u in units {
        let result = match u.swap {
            Swap::Exchange => rename2(&u.stage, &u.dest, libc::RENAME_EXCHANGE),
            Swap::Place => rename_noreplace(&u.stage, &u.dest),
            Swap::ReplaceEmpty => fs::rename(&u.stage, &u.dest),
            Swap::Remove => rename_noreplace(&u.dest, &u.stage),
        };
        match result {
            Ok(()) => done.push(u),
            Err(e) => {
                failure = Some(EngineError::io("swapping in", &u.dest, e));
                break;
            }
        }
    }
    let Some(err) = failure else {
        let parents: HashSet<&Path> = units.iter().filter_map(|u| u.dest.parent()).collect();
        for p in parents {
            fsync_dir(p)?;
        }
        return Ok(());
    };
    for u in done.into_iter().rev() {
        let back = match u.swap {
            Swap::Exchange => rename2(&u.stage, &u.dest, libc::RENAME_EXCHANGE),
            Swap::Place => rename_noreplace(&u.dest, &u.stage),
            Swap::ReplaceEmpty => {
                rename_noreplace(&u.dest, &u.stage).and_then(|()| fs::create_dir(&u.dest))
            }
            Swap::Remove => rename_noreplace(&u.stage, &u.dest),
        };
        if let Err(e) = back {
            // Do not delete what may now be the only copy of the original.
            cleanup.0.clear();
            return Err(EngineError::SwapBack {
                error: Box::new(err),
                back: e,
                dest: u.dest.clone(),
                stage: u.stage.clone(),
            });
        }
    }
    Err(err)
}
