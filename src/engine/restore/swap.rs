//! Swapping stages into place, rolling back a failed swap, and removing what is left.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::engine::{EngineError, Result};

use super::plan::Unit;
use super::stage::fsync_dir;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn rename2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Renames `from` to `to` unless `to` exists.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match rename2(from, to, libc::RENAME_NOREPLACE) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // A filesystem without RENAME_NOREPLACE: check, then rename.
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            fs::rename(from, to)
        }
        other => other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Swap {
    /// Stage and destination trade places atomically (`RENAME_EXCHANGE`).
    Exchange,
    /// The destination does not exist: the stage is renamed to it.
    Place,
    /// A new target that is an empty directory: rename(2) replaces it.
    ReplaceEmpty,
    /// The point lacks the destination: it is renamed to the stage's name and deleted.
    Remove,
}

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
            return Err(EngineError::Invalid(format!(
                "{err}; then swapping {} back failed ({e}): its previous content is in {}",
                u.dest.display(),
                u.stage.display()
            )));
        }
    }
    Err(err)
}
