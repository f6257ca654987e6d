//! The mount at scale, for real: a directory of 100,000 entries lists every name once and
//! in order, `seekdir` to a saved offset continues where it was, and once the kernel lets
//! go of its inodes (`drop_caches`) the daemon's inode table shrinks, as `.cairn/stats`
//! reports it, with the same inode numbers given again afterwards.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn::service::Service;

use crate::mount::snapshot_through_mount;
use crate::support::mount::{fuse_available, run, MountGuard};
use crate::support::repos::TestRepo;

const LIMIT: Duration = Duration::from_secs(600);
const ENTRIES: usize = 100_000;

fn entry_name(i: usize) -> String {
    format!("f{i:06}")
}

/// The names `readdir` gives, with the `telldir` offset after `save_after` of them; then
/// the names after a `seekdir` back to that offset.
fn list_with_seekdir(dir: &Path, save_after: usize) -> (Vec<String>, Vec<String>) {
    let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid path; the stream is closed below and its entries are copied out
    // before the next readdir.
    unsafe {
        let d = libc::opendir(c.as_ptr());
        assert!(!d.is_null(), "opendir {}", dir.display());
        let mut names = Vec::new();
        let mut saved = None;
        loop {
            let e = libc::readdir(d);
            if e.is_null() {
                break;
            }
            let name = CStr::from_ptr((*e).d_name.as_ptr()).to_string_lossy();
            if name == "." || name == ".." {
                continue;
            }
            names.push(name.into_owned());
            if names.len() == save_after {
                saved = Some(libc::telldir(d));
            }
        }
        let mut again = Vec::new();
        libc::seekdir(d, saved.expect("the directory has that many entries"));
        loop {
            let e = libc::readdir(d);
            if e.is_null() {
                break;
            }
            let name = CStr::from_ptr((*e).d_name.as_ptr()).to_string_lossy();
            again.push(name.into_owned());
        }
        libc::closedir(d);
        (names, again)
    }
}

fn fuse_stats(mnt: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(mnt.join(".cairn/stats")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["fuse"].clone()
}

fn drop_caches() {
    // SAFETY: sync cannot fail.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").expect("drop_caches (needs root)");
}

#[test]
fn a_directory_of_100k_entries_lists_in_order_and_drop_caches_shrinks_the_inode_table() {
    if !fuse_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let t = TestRepo::local(work);
    let src = work.join("src");
    let big = src.join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..ENTRIES {
        std::fs::File::create(big.join(entry_name(i))).unwrap();
    }
    std::fs::write(src.join("small"), b"hello\n").unwrap();
    let mnt = work.join("mnt");
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let guard = MountGuard::new(service, &mnt, LIMIT);
    let point = snapshot_through_mount(&mnt, &src);
    let point_dir = mnt.join("db").join(&point);

    // Every name once, in order (trees are sorted by name), and seekdir continues.
    let save_after = ENTRIES / 3 + 7;
    let (names, again) = list_with_seekdir(&point_dir.join("big"), save_after);
    let expected: Vec<String> = (0..ENTRIES).map(entry_name).collect();
    assert_eq!(names.len(), ENTRIES);
    assert!(names == expected, "names out of order or repeated");
    assert_eq!(
        again[..],
        expected[save_after..],
        "seekdir to a saved offset"
    );

    // A find that stats every entry makes the kernel hold every inode; the table holds
    // them too.
    let (ok, out, err) = run(
        300,
        "find",
        &[point_dir.to_str().unwrap(), "-printf", "%s %m\n"],
    );
    assert!(ok, "find: {err}");
    assert_eq!(
        out.lines().count(),
        ENTRIES + 3,
        "the point, big/, small, entries"
    );
    let small_ino = std::fs::metadata(point_dir.join("small")).unwrap().ino();
    let one = point_dir.join("big").join(entry_name(4242));
    let one_ino = std::fs::metadata(&one).unwrap().ino();
    let held = fuse_stats(&mnt)["inodes"].as_u64().unwrap();
    assert!(
        held >= ENTRIES as u64,
        "the table holds what find looked up: {held}"
    );

    // The kernel lets go: forgets come, and the table shrinks to almost nothing.
    drop_caches();
    let start = Instant::now();
    let shrunk = loop {
        let now = fuse_stats(&mnt)["inodes"].as_u64().unwrap();
        if now < 1000 {
            break now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the table still holds {now} inodes 30 s after drop_caches (it held {held})"
        );
        drop_caches();
        std::thread::sleep(Duration::from_millis(200));
    };
    let stats = fuse_stats(&mnt);
    assert!(stats["requests"]["forget"].as_u64().unwrap() > 0, "{stats}");
    eprintln!("inodes: {held} after find, {shrunk} after drop_caches");

    // What comes back gets the number it had, and reads as before.
    assert_eq!(std::fs::metadata(&one).unwrap().ino(), one_ino);
    assert_eq!(
        std::fs::metadata(point_dir.join("small")).unwrap().ino(),
        small_ino
    );
    assert_eq!(std::fs::read(point_dir.join("small")).unwrap(), b"hello\n");
    drop(guard);
}
