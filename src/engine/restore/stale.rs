//! Stage names that say who owns them, and the removal of stages nobody owns any more.
//!
//! A stage is `.<name>.cairn-stage-<host>.<process>-<random>` next to its destination:
//! `<host>` is 8 hex digits of a hash of the host name, `<process>` the owner's
//! [`ProcessId::tag`] (boot, pid, start time). A restore killed with SIGKILL leaves its
//! stage; the next restore into the same directory, and the daemon's start for the
//! restores it found interrupted, remove every stage in that directory whose owner is a
//! process of this host that is gone. Stages of other hosts (a shared filesystem) and of
//! live processes are left alone; so is a stage whose owner could not be recorded (`x`:
//! no `/proc`). Names without an owner (`.<name>.cairn-stage-<16 hex>`) come from cairn
//! before owners were recorded; such a version is not running any more once this one
//! restores, so they are removed too.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::engine::{EngineError, Result};
use crate::repo::process::{is_gone_by_tag, ProcessId};

use super::swap::remove_tree;

const MARK: &str = ".cairn-stage-";
/// Bytes of the destination's name kept in its stage's name (the rest is at most ~70).
const NAME_BYTES: usize = 160;

fn host_tag() -> String {
    blake3::hash(crate::model::hostname().as_bytes()).to_hex()[..8].to_string()
}

fn owner_tag() -> String {
    let process = ProcessId::current().map_or_else(|| "x".to_string(), |p| p.tag());
    format!("{}.{process}", host_tag())
}

/// A free hidden sibling name for the stage of `dest`, owned by this process. Only paths
/// chosen here are ever deleted by the restore, so it must not name anything that exists.
pub(crate) fn stage_path(dest: &Path) -> Result<PathBuf> {
    let name = dest.file_name().unwrap_or_default().as_bytes();
    let short = &name[..name.len().min(NAME_BYTES)];
    let owner = owner_tag();
    for _ in 0..16 {
        let suffix = format!("{MARK}{owner}-{:016x}", rand::random::<u64>());
        let stage = dest.with_file_name(OsStr::from_bytes(
            &[b".", short, suffix.as_bytes()].concat(),
        ));
        if fs::symlink_metadata(&stage).is_err() {
            return Ok(stage);
        }
    }
    Err(EngineError::NoFreeName(format!(
        "no free stage name next to {}",
        dest.display()
    )))
}

fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a directory entry's name is a stage that no live process owns. The part
/// before the mark is the destination's name (any bytes); the rest is ASCII.
fn is_stale(name: &[u8], host: &str) -> bool {
    let mark = MARK.as_bytes();
    let Some(at) = name.windows(mark.len()).rposition(|w| w == mark) else {
        return false;
    };
    let Ok(tail) = std::str::from_utf8(&name[at + mark.len()..]) else {
        return false;
    };
    if name.first() != Some(&b'.') {
        return false;
    }
    if is_hex(tail, 16) {
        return true; // no owner recorded: an older cairn's
    }
    let Some((owner, random)) = tail.rsplit_once('-') else {
        return false;
    };
    let Some((stage_host, process)) = owner.split_once('.') else {
        return false;
    };
    is_hex(random, 16) && stage_host == host && is_gone_by_tag(process) == Some(true)
}

/// Removes the stages in `dir` that no live process owns; returns one line per stage
/// for the job's log (removed, or why not).
pub fn remove_stale_stages(dir: &Path) -> Vec<String> {
    let host = host_tag();
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !is_stale(name.as_bytes(), &host) {
            continue;
        }
        let path = entry.path();
        lines.push(match remove_tree(&path) {
            Ok(()) => format!(
                "removed {}: the stage of a restore that was killed",
                path.display()
            ),
            Err(e) => format!("could not remove the stale stage {}: {e}", path.display()),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_stages_live_and_dead_owners_stages_are_stale() {
        let host = host_tag();
        let mine = stage_path(Path::new("/srv/data")).unwrap();
        let mine = mine.file_name().unwrap().as_bytes();
        assert!(mine.starts_with(b".data.cairn-stage-"), "{mine:?}");
        assert!(!is_stale(mine, &host), "a live owner's stage stays");

        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = ProcessId {
            pid: child.id(),
            ..ProcessId::current().unwrap()
        };
        let name = format!(".data{MARK}{host}.{}-{:016x}", dead.tag(), 7);
        assert!(is_stale(name.as_bytes(), &host));
        assert!(
            !is_stale(name.as_bytes(), "0badc0de"),
            "another host's stage stays"
        );
        assert!(
            is_stale(b".data.cairn-stage-0123456789abcdef", &host),
            "legacy"
        );
        let odd = [b".\xff\xfe".as_slice(), &name.as_bytes()[5..]].concat();
        assert!(is_stale(&odd, &host), "a non-UTF-8 destination name");
        for not_a_stage in [
            "data",
            ".data",
            ".data.cairn-stage-",
            ".data.cairn-stage-xyz",
            ".data.cairn-stage-0123456789abcde",
            &format!(".data{MARK}{host}.x-{:016x}", 7),
        ] {
            assert!(!is_stale(not_a_stage.as_bytes(), &host), "{not_a_stage}");
        }
    }

    #[test]
    fn removes_only_stale_stages() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".t.cairn-stage-0123456789abcdef");
        fs::create_dir_all(stale.join("sub")).unwrap();
        fs::write(stale.join("sub/f"), b"x").unwrap();
        let live = stage_path(&dir.path().join("t")).unwrap();
        fs::create_dir(&live).unwrap();
        fs::write(dir.path().join("t"), b"keep").unwrap();
        let lines = remove_stale_stages(dir.path());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("removed "), "{lines:?}");
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(dir.path().join("t").exists());
    }
}
