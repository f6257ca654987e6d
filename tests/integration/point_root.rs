//! A single-directory point's root is the source directory (issue 10, item 19): its mode,
//! owner, times and xattrs, in the mount and in restores — not the point's time, which
//! `rsync -a <point>/ dest/` then copied onto dest.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use cairn::engine::{
    backup, restore, BackupRequest, CancelToken, NoProgress, RestoreMode, RestoreRequest,
};
use cairn::fs::namespace::ROOT;
use cairn::fs::Namespace;
use cairn::service::Service;

use crate::support::repos::TestRepo;

/// 2001-09-09T01:46:40Z: far from any point's time.
const MTIME: i64 = 1_000_000_000;

fn prepare_source(src: &Path) {
    fs::create_dir_all(src).unwrap();
    fs::write(src.join("f"), "content").unwrap();
    fs::set_permissions(src, fs::Permissions::from_mode(0o750)).unwrap();
    xattr::set(src, "user.cairn.root", b"kept").unwrap();
    let ok = Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg(format!("@{MTIME}"))
        .arg(src)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert_eq!(fs::metadata(src).unwrap().mtime(), MTIME);
}

fn assert_root_like_source(dir: &Path) {
    let md = fs::metadata(dir).unwrap();
    assert_eq!(md.mtime(), MTIME, "mtime of {}", dir.display());
    assert_eq!(md.mode() & 0o7777, 0o750, "mode of {}", dir.display());
    assert_eq!(
        xattr::get(dir, "user.cairn.root").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
}

#[test]
fn restores_give_the_root_the_source_directorys_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("www");
    prepare_source(&src);
    let req = BackupRequest::new("www", vec![src.clone()]);
    let out = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    let meta = out
        .manifest
        .root_meta
        .clone()
        .expect("root metadata recorded");
    assert_eq!(meta.mtime_ns, MTIME * 1_000_000_000);
    assert_eq!(meta.mode, 0o750);

    let target = dir.path().join("restored");
    let new = RestoreRequest {
        instance: "www".into(),
        point: "latest".into(),
        target: Some(target.clone()),
        includes: Vec::new(),
        mode: RestoreMode::New,
        delete_excluded: false,
        skip_damaged: false,
    };
    restore(&t.repo, &t.catalog, &new, &NoProgress, &CancelToken::new()).unwrap();
    assert_root_like_source(&target);
    assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "content");

    // An empty target that exists keeps its mode, and gets the source's time.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::set_permissions(&empty, fs::Permissions::from_mode(0o711)).unwrap();
    let into_empty = RestoreRequest {
        target: Some(empty.clone()),
        ..new.clone()
    };
    restore(
        &t.repo,
        &t.catalog,
        &into_empty,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    let md = fs::metadata(&empty).unwrap();
    assert_eq!((md.mode() & 0o7777, md.mtime()), (0o711, MTIME));

    // In place, the whole point brings the root back as it was.
    fs::set_permissions(&src, fs::Permissions::from_mode(0o700)).unwrap();
    xattr::remove(&src, "user.cairn.root").unwrap();
    let in_place = RestoreRequest {
        target: None,
        mode: RestoreMode::InPlace,
        ..new
    };
    restore(
        &t.repo,
        &t.catalog,
        &in_place,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert_root_like_source(&src);
}

#[test]
fn the_mount_shows_a_point_root_as_the_source_directory() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("www");
    prepare_source(&src);
    let owner = fs::metadata(&src).unwrap();
    let req = BackupRequest::new("www", vec![src.clone()]);
    let name = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
        .unwrap()
        .manifest
        .name;
    let service = Service::start(t.repo, t.catalog, 1).unwrap();
    let ns = Namespace::new(service.clone(), 16 << 20);
    let instance = ns.lookup(ROOT, b"www").unwrap().ino;
    let point = ns.lookup(instance, name.as_bytes()).unwrap();
    assert_eq!(point.mtime_ns, MTIME * 1_000_000_000);
    let time_ns = service.points("www")[0].manifest.time_ns;
    assert_eq!(point.ctime_ns, time_ns, "the ctime is the point's time");
    assert_eq!(point.perm, 0o750);
    assert_eq!((point.uid, point.gid), (owner.uid(), owner.gid()));
    assert_eq!(
        ns.getxattr(point.ino, b"user.cairn.root").unwrap(),
        b"kept".to_vec()
    );
    let listed = ns.listxattr(point.ino).unwrap();
    assert!(listed.starts_with(b"user.cairn.root\0"), "{listed:?}");
    service.shutdown();
}
