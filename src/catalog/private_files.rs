//! The catalog's files are the owner's only, wherever `CAIRN_CACHE_DIR` points: the
//! database holds decrypted manifests. SQLite gives its `-wal`, `-shm` and `-journal`
//! files the database file's mode, so creating that file 0600 first covers them all;
//! files left broader by an older cairn are narrowed on open. Directories cairn creates
//! for it are 0700.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The companions SQLite creates next to a database file.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates `dir` and missing parents as 0700; existing directories keep their mode (they
/// may be the user's own: the files below are what is kept private).
pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates the database file 0600 if it is missing and narrows it and its side files.
pub(super) fn restrict(db: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)?;
    narrow(db, 0o600)?;
    for suffix in SIDE_FILES {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        match narrow(Path::new(&side), 0o600) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Removes every permission bit beyond `max` (never adds any).
fn narrow(path: &Path, max: u32) -> std::io::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if mode & !max != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(mode & max))?;
    }
    Ok(())
}
