//! What is mounted where, from `/proc/self/mountinfo`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The filesystem type the kernel shows for a cairn mount (`fuse.` + its subtype).
pub const FSTYPE: &str = "fuse.cairn";

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The kernel's mount id (unique while mounted).
    pub id: u64,
    pub point: PathBuf,
    pub fstype: String,
    /// Mounted read-only (a cairn mount's points when its control plane is its own).
    pub read_only: bool,
}

/// Undoes mountinfo's octal escapes (`\040` for a blank, ...).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let id = fields.first()?.parse().ok()?;
    let point = PathBuf::from(OsString::from_vec(unescape(fields.get(4)?)));
    let dash = fields.iter().position(|f| *f == "-")?;
    let fstype = fields.get(dash + 1)?.to_string();
    let read_only = fields.get(5)?.split(',').any(|o| o == "ro");
    Some(MountEntry {
        id,
        point,
        fstype,
        read_only,
    })
}

/// Every mount of this process's mount namespace, in mount order.
pub fn entries() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(parse_line)
        .collect()
}

/// `dir` as the kernel names its mount point: symlinks resolved, even when `dir` itself
/// is a mount whose daemon died (where stat fails with ENOTCONN).
pub fn kernel_path(dir: &Path) -> PathBuf {
    if let Ok(p) = dir.canonicalize() {
        return p;
    }
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or(abs.clone()),
        _ => abs,
    }
}

/// The topmost mount at `dir`, whatever it is.
pub fn mount_at(dir: &Path) -> Option<MountEntry> {
    let path = kernel_path(dir);
    entries()
        .into_iter()
        .rev()
        .find(|e| e.point.as_os_str().as_bytes() == path.as_os_str().as_bytes())
}

/// The cairn mount at `dir`, if the topmost mount there is one.
pub fn cairn_mount_at(dir: &Path) -> Option<MountEntry> {
    mount_at(dir).filter(|e| e.fstype == FSTYPE)
}

/// The cairn mount of id `id` at `point`, among `entries`. A mount id is unique only
/// while mounted: the kernel gives it to a later mount once this one is gone (another
/// daemon's, somewhere else), so the path must match too.
pub fn watched(entries: Vec<MountEntry>, id: u64, point: &Path) -> Option<MountEntry> {
    entries
        .into_iter()
        .find(|e| e.id == id && e.fstype == FSTYPE && e.point == point)
}

/// Whether the cairn mount at `dir` is whole: writable, or read-only with its control
/// plane's own connection mounted over `.cairn`.
pub fn cairn_mount_ready(dir: &Path) -> bool {
    cairn_mount_at(dir)
        .is_some_and(|m| !m.read_only || cairn_mount_at(&m.point.join(".cairn")).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_mount_is_its_id_at_its_path() {
        let e = |id, point: &str, fstype: &str| MountEntry {
            id,
            point: PathBuf::from(point),
            fstype: fstype.into(),
            read_only: false,
        };
        let mine = e(61, "/mnt/a", FSTYPE);
        let list = vec![
            e(60, "/mnt/a", FSTYPE),
            mine.clone(),
            e(62, "/mnt/b", FSTYPE),
        ];
        assert_eq!(watched(list.clone(), 61, Path::new("/mnt/a")), Some(mine));
        // The id reused by another daemon's mount elsewhere, or by another file system.
        assert_eq!(watched(list, 62, Path::new("/mnt/a")), None);
        let other = vec![e(61, "/mnt/a", "ext4")];
        assert_eq!(watched(other, 61, Path::new("/mnt/a")), None);
    }

    #[test]
    fn mountinfo_lines_and_escapes() {
        let e = parse_line(
            "612 35 0:61 / /tmp/a\\040b rw,nosuid,nodev,relatime shared:340 - fuse.cairn cairn rw,user_id=0",
        )
        .unwrap();
        assert_eq!(e.id, 612);
        assert_eq!(e.point, PathBuf::from("/tmp/a b"));
        assert_eq!(e.fstype, "fuse.cairn");
        assert!(!e.read_only);
        let e =
            parse_line("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw").unwrap();
        assert_eq!(e.point, PathBuf::from("/mnt2"));
        assert_eq!(e.fstype, "ext3");
        assert_eq!(unescape("x\\134y\\011"), b"x\\y\t");
        assert_eq!(unescape("end\\04"), b"end\\04");
    }
}
