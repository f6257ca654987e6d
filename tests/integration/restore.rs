//! Restore: fidelity round trips, new and in-place restores, includes, and every way a
//! restore can fail (bad requests, store faults, full disk, hostile trees, cancel) without
//! touching the target.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn::engine::{
    backup, restore, BackupOutcome, BackupRequest, CancelToken, EngineError, NoProgress, Progress,
    RestoreMode, RestoreOutcome, RestoreRequest,
};
use cairn::repo::{BlobId, Repository};
use cairn::store::{FaultStore, Store};

use crate::support::fixture::{assert_same_tree, describe, noise, Entry, SourceTree};
use crate::support::forge::{dir_node, named, symlink_node, Forger};
use crate::support::repos::{fast_init, TestRepo};

fn run_backup(t: &TestRepo, instance: &str, paths: &[&Path]) -> BackupOutcome {
    let req = BackupRequest::new(instance, paths.iter().map(|p| p.to_path_buf()).collect());
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn request(
    instance: &str,
    point: &str,
    target: Option<&Path>,
    mode: RestoreMode,
) -> RestoreRequest {
    RestoreRequest {
        instance: instance.into(),
        point: point.into(),
        target: target.map(Path::to_path_buf),
        includes: Vec::new(),
        mode,
        delete_excluded: false,
        skip_damaged: false,
    }
}

fn run(t: &TestRepo, req: &RestoreRequest) -> Result<RestoreOutcome, EngineError> {
    restore(&t.repo, &t.catalog, req, &NoProgress, &CancelToken::new())
}

/// Names in a directory (not recursive).
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn assert_no_stage_left(dir: &Path) {
    let left: Vec<_> = names(dir)
        .into_iter()
        .filter(|n| n.contains(".cairn-stage-"))
        .collect();
    assert!(
        left.is_empty(),
        "stage left behind in {}: {left:?}",
        dir.display()
    );
}

/// `cp -a`: a pristine copy to compare against (checked to be identical right away).
fn copy_tree(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
    assert_same_tree(from, to);
}

fn inode(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

// ---------------------------------------------------------------------------------------
// 1. Fidelity round trips

fn round_trip(t: &TestRepo, work: &Path) {
    let src = work.join("src");
    SourceTree::all_cases(&src, 3 << 20);
    let point = run_backup(t, "fidelity", &[&src]);
    let target = work.join("out");
    let out = run(
        t,
        &request("fidelity", "latest", Some(&target), RestoreMode::New),
    )
    .unwrap();
    assert_same_tree(&src, &target);
    assert_eq!(out.point, point.manifest.name);
    assert_eq!(out.bytes, point.manifest.stats.bytes);
    assert_eq!(
        out.written,
        point.manifest.stats.files - 2,
        "two members of the hard-link group are links, not copies"
    );
    assert_eq!(out.removed, 0);
    assert_eq!(out.safety_point, None);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_no_stage_left(work);
    let sparse = fs::metadata(target.join("data/sparse.img")).unwrap();
    assert!(sparse.blocks() * 512 < 1 << 20, "holes were written");
}

#[test]
fn round_trip_of_every_fidelity_case_on_a_local_repository() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    round_trip(&t, dir.path());
}

#[test]
fn round_trip_of_every_fidelity_case_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let Some(t) = TestRepo::s3(dir.path(), "restore") else {
        eprintln!("NOTE: no S3 server outside CI: the S3 half of the round trip is skipped");
        return;
    };
    round_trip(&t, dir.path());
}

#[test]
fn a_point_of_several_sources_restores_each_by_name_and_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let a = SourceTree::new(&dir.path().join("srv/a"));
    a.file("x.txt", b"x version 1");
    a.file("sub/y.bin", &noise(7, 300_000));
    let b = dir.path().join("srv/b.conf");
    fs::write(&b, b"b = 1\n").unwrap();
    fs::set_permissions(&b, fs::Permissions::from_mode(0o640)).unwrap();
    run_backup(&t, "multi", &[&a.root, &b]);
    let pristine = dir.path().join("pristine");
    fs::create_dir(&pristine).unwrap();
    copy_tree(&dir.path().join("srv"), &pristine.join("srv"));

    let target = dir.path().join("new");
    run(
        &t,
        &request("multi", "latest", Some(&target), RestoreMode::New),
    )
    .unwrap();
    assert_eq!(
        names(&target),
        BTreeSet::from(["a".into(), "b.conf".into()])
    );
    assert_same_tree(&a.root, &target.join("a"));
    assert_eq!(fs::read(target.join("b.conf")).unwrap(), b"b = 1\n");

    // Over the sources, which changed.
    fs::write(a.root.join("x.txt"), b"x version 2").unwrap();
    fs::write(a.root.join("extra"), b"new").unwrap();
    fs::write(&b, b"b = 2\n").unwrap();
    fs::set_permissions(&b, fs::Permissions::from_mode(0o600)).unwrap();
    let over = Some(dir.path().join("elsewhere"));
    let mut bad = request("multi", "latest", over.as_deref(), RestoreMode::InPlace);
    assert!(matches!(run(&t, &bad), Err(EngineError::Invalid(_))));
    bad.target = None;
    let out = run(&t, &bad).unwrap();
    assert_same_tree(&pristine.join("srv"), &dir.path().join("srv"));
    assert_eq!(out.removed, 1);
    assert_eq!(out.written, 2, "x.txt and b.conf changed, y.bin did not");
    assert!(out.safety_point.is_some());
    assert_no_stage_left(&dir.path().join("srv"));
}

// ---------------------------------------------------------------------------------------
// 2. Request checks

#[test]
fn a_new_target_must_be_absent_or_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = SourceTree::new(&dir.path().join("src"));
    src.file("f", b"data");
    run_backup(&t, "checks", &[&src.root]);

    let busy = dir.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("keep-me"), b"precious").unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let before = describe(&busy);
    let top = names(dir.path());
    let err = run(
        &t,
        &request("checks", "latest", Some(&busy), RestoreMode::New),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    assert_eq!(describe(&busy), before);
    assert_eq!(names(dir.path()), top);

    let err = run(
        &t,
        &request("checks", "latest", Some(&file), RestoreMode::New),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"x");

    let relative = Path::new("relative/target");
    let err = run(
        &t,
        &request("checks", "latest", Some(relative), RestoreMode::New),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    assert!(!relative.exists());
    let err = run(&t, &request("checks", "latest", None, RestoreMode::New)).unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    let dotdot = dir.path().join("x/../y");
    let err = run(
        &t,
        &request("checks", "latest", Some(&dotdot), RestoreMode::New),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    let orphan = dir.path().join("no/such/parent");
    let err = run(
        &t,
        &request("checks", "latest", Some(&orphan), RestoreMode::New),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    assert!(!dir.path().join("no").exists());

    let target = dir.path().join("fresh");
    let err = run(
        &t,
        &request(
            "checks",
            "2001-01-01T000000Z",
            Some(&target),
            RestoreMode::New,
        ),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::NoSuchPoint { .. }), "{err}");
    let err = run(
        &t,
        &request("nobody", "latest", Some(&target), RestoreMode::New),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::NoSuchPoint { .. }), "{err}");
    let mut bad_glob = request("checks", "latest", Some(&target), RestoreMode::New);
    bad_glob.includes = vec!["[".into()];
    assert!(matches!(run(&t, &bad_glob), Err(EngineError::Invalid(_))));
    assert_eq!(
        names(dir.path()),
        top,
        "nothing was created by refused requests"
    );

    // An empty directory is fine, and keeps its own mode.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::set_permissions(&empty, fs::Permissions::from_mode(0o711)).unwrap();
    run(
        &t,
        &request("checks", "latest", Some(&empty), RestoreMode::New),
    )
    .unwrap();
    assert_same_tree(&src.root, &empty);
    assert_eq!(fs::metadata(&empty).unwrap().mode() & 0o7777, 0o711);
    assert_no_stage_left(dir.path());
}

// ---------------------------------------------------------------------------------------
// 3. Includes

#[test]
fn includes_restore_only_matching_paths_and_their_parents() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 1 << 20);
    run_backup(&t, "partial", &[&src]);
    let target = dir.path().join("out");
    let mut req = request("partial", "latest", Some(&target), RestoreMode::New);
    req.includes = vec!["docs/*.txt".into(), "secret".into(), "**/leaf.txt".into()];
    let out = run(&t, &req).unwrap();
    let got = describe(&target);
    let expected: Vec<&[u8]> = vec![
        b"docs",
        b"docs/deep",
        b"docs/deep/a",
        b"docs/deep/a/b",
        b"docs/deep/a/b/c",
        b"docs/deep/a/b/c/d",
        b"docs/deep/a/b/c/d/e",
        b"docs/deep/a/b/c/d/e/leaf.txt",
        b"docs/readme.txt",
        b"secret",
        b"secret/key",
    ];
    let keys: Vec<&[u8]> = got.keys().map(Vec::as_slice).collect();
    assert_eq!(
        keys, expected,
        "`*` does not cross `/`; `**` does; parents come along"
    );
    let source = describe(&src);
    for (k, e) in &got {
        assert_eq!(e, &source[k], "{}", String::from_utf8_lossy(k));
    }
    assert_eq!(out.files, 3);

    let mut none = request(
        "partial",
        "latest",
        Some(&dir.path().join("none")),
        RestoreMode::New,
    );
    none.includes = vec!["no-such-*".into()];
    assert!(matches!(run(&t, &none), Err(EngineError::Invalid(_))));
    assert!(!dir.path().join("none").exists());
}

// ---------------------------------------------------------------------------------------
// 4. In place

#[test]
fn in_place_restore_brings_the_point_back_and_keeps_a_safety_point() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 2 << 20);
    let point = run_backup(&t, "inplace", &[&src]);
    let pristine = dir.path().join("pristine");
    copy_tree(&src, &pristine);

    let unchanged = [
        "data/big.bin",
        "data/sparse.img",
        "links/original",
        "docs/third-link",
        "secret/key",
        "attrs/with-xattr",
        "docs/deep/a/b/c/d/e/leaf.txt",
    ];
    let inodes: Vec<u64> = unchanged.iter().map(|p| inode(&src.join(p))).collect();
    // Four changed files: content (same size, mtime set back), content, mode, deleted.
    let readme = src.join("docs/readme.txt");
    fs::write(&readme, b"HELLO CAIRN\n").unwrap();
    let ok = Command::new("touch")
        .args(["-m", "-d", "@1500000000.987654321"])
        .arg(&readme)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert_eq!(
        describe(&pristine)[&b"docs/readme.txt"[..]].mtime_ns,
        describe(&src)[&b"docs/readme.txt"[..]].mtime_ns,
        "only the bytes tell the readme changed"
    );
    fs::write(src.join("data/text.log"), b"rewritten").unwrap();
    fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_file(src.join("data/empty")).unwrap();
    // Two extra files, one in a new directory.
    fs::write(src.join("extra.txt"), b"extra").unwrap();
    fs::create_dir(src.join("docs/new")).unwrap();
    fs::write(src.join("docs/new/nested.bin"), noise(5, 1000)).unwrap();
    let modified = dir.path().join("modified");
    copy_tree(&src, &modified);

    let out = run(
        &t,
        &request("inplace", "latest", None, RestoreMode::InPlace),
    )
    .unwrap();
    assert_same_tree(&pristine, &src);
    assert_eq!(out.point, point.manifest.name);
    assert_eq!(out.removed, 2, "extra.txt and docs/new/nested.bin");
    assert_eq!(out.written, 4, "only the changed files were written");
    for (p, ino) in unchanged.iter().zip(&inodes) {
        assert_eq!(inode(&src.join(p)), *ino, "{p} was rewritten");
    }
    assert_no_stage_left(dir.path());

    let safety = out.safety_point.expect("a safety point");
    assert!(safety.ends_with("-before-restore"), "{safety}");
    let points: Vec<String> = t
        .catalog
        .points(Some("inplace"))
        .unwrap()
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    assert!(points.contains(&safety));

    // The way back: restoring the safety point gives the modified state again.
    let back = run(&t, &request("inplace", &safety, None, RestoreMode::InPlace)).unwrap();
    assert_same_tree(&modified, &src);
    assert_eq!(back.removed, 1, "data/empty");
    assert_no_stage_left(dir.path());
}

/// Compares two entries except for the hard-link group index (lists differ).
fn same_but_links(a: &Entry, b: &Entry) -> bool {
    (
        a.kind, a.mode, a.uid, a.gid, a.size, a.mtime_ns, &a.content, &a.target, &a.xattrs,
    ) == (
        b.kind, b.mode, b.uid, b.gid, b.size, b.mtime_ns, &b.content, &b.target, &b.xattrs,
    )
}

#[test]
fn in_place_with_includes_replaces_only_matching_paths() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 1 << 20);
    run_backup(&t, "some", &[&src]);
    let pristine = describe(&src);
    fs::write(src.join("docs/readme.txt"), b"changed").unwrap();
    fs::write(src.join("docs/junk.txt"), b"junk").unwrap();
    fs::write(src.join("data/text.log"), b"changed too, but not restored").unwrap();
    fs::write(src.join("extra.txt"), b"stays").unwrap();
    let modified = describe(&src);

    let mut req = request("some", "latest", None, RestoreMode::InPlace);
    req.includes = vec!["no-such-thing/*".into()];
    assert!(matches!(run(&t, &req), Err(EngineError::Invalid(_))));
    assert_eq!(
        t.catalog.points(Some("some")).unwrap().len(),
        1,
        "a refused restore takes no safety point"
    );
    req.includes = vec!["docs".into()];
    let out = run(&t, &req).unwrap();
    assert_eq!(out.removed, 1, "docs/junk.txt");
    let got = describe(&src);
    let mut expected_keys: Vec<&Vec<u8>> = modified.keys().collect();
    expected_keys.retain(|k| k.as_slice() != b"docs/junk.txt");
    assert_eq!(got.keys().collect::<Vec<_>>(), expected_keys);
    for (k, e) in &got {
        let want = if k.starts_with(b"docs") {
            &pristine[k]
        } else {
            &modified[k]
        };
        assert!(
            same_but_links(e, want),
            "{}: {e:?} != {want:?}",
            String::from_utf8_lossy(k)
        );
    }
    assert_eq!(
        inode(&src.join("docs/third-link")),
        inode(&src.join("links/original")),
        "hard links across the include boundary survive"
    );
    assert_no_stage_left(dir.path());
}

#[test]
fn in_place_never_writes_through_a_symlink_of_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = SourceTree::new(&dir.path().join("src"));
    src.file("data/file", b"restored");
    run_backup(&t, "symlinked", &[&src.root]);
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::remove_dir_all(src.root.join("data")).unwrap();
    symlink(&outside, src.root.join("data")).unwrap();
    run(
        &t,
        &request("symlinked", "latest", None, RestoreMode::InPlace),
    )
    .unwrap();
    assert!(names(&outside).is_empty(), "wrote through the symlink");
    assert!(fs::symlink_metadata(src.root.join("data"))
        .unwrap()
        .is_dir());
    assert_eq!(fs::read(src.root.join("data/file")).unwrap(), b"restored");
}

// ---------------------------------------------------------------------------------------
// 5. Store failures

/// Arms the fault once the restore knows its work (after the trees, before the data).
struct FailReadsAtStart {
    fault: Arc<FaultStore>,
    after: i64,
}

impl Progress for FailReadsAtStart {
    fn set_total(&self, _files: u64, _bytes: u64) {
        self.fault.fail_reads_after(self.after);
    }
}

/// A repository on a fault-injecting in-memory store, with 40 files (12 MB) backed up in
/// 4 MiB packs: a restore reads them in several range requests (one a pack).
fn faulty_repo(work: &Path) -> (TestRepo, Arc<FaultStore>, PathBuf) {
    let fault = Arc::new(FaultStore::new(Arc::new(
        object_store::memory::InMemory::new(),
    )));
    let store = Store::from_object_store(fault.clone(), "fault".into()).unwrap();
    let mut opts = fast_init(false);
    opts.pack_size = 4 << 20;
    let repo = Repository::init(store, &opts).unwrap();
    let t = TestRepo::open_catalog(repo, work);
    let src = SourceTree::new(&work.join("src"));
    for i in 0..40 {
        src.file(&format!("d{}/f{i}", i % 3), &noise(100 + i, 300_000));
    }
    run_backup(&t, "faulty", &[&src.root]);
    (t, fault, src.root)
}

#[test]
fn a_store_failure_mid_restore_leaves_a_new_target_uncreated() {
    let dir = tempfile::tempdir().unwrap();
    let (t, fault, _src) = faulty_repo(dir.path());
    let top = names(dir.path());
    let target = dir.path().join("out");
    let progress = FailReadsAtStart { fault, after: 1 };
    let req = request("faulty", "latest", Some(&target), RestoreMode::New);
    let err = restore(&t.repo, &t.catalog, &req, &progress, &CancelToken::new()).unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert!(!target.exists());
    assert_eq!(names(dir.path()), top, "nothing left next to the target");
}

#[test]
fn a_store_failure_mid_restore_leaves_the_original_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (t, fault, src) = faulty_repo(dir.path());
    for i in 0..40 {
        fs::write(
            src.join(format!("d{}/f{i}", i % 3)),
            noise(900 + i, 100_000),
        )
        .unwrap();
    }
    fs::write(src.join("new-file"), b"new").unwrap();
    let before = dir.path().join("before");
    copy_tree(&src, &before);
    let top = names(dir.path());
    let progress = FailReadsAtStart { fault, after: 1 };
    let req = request("faulty", "latest", None, RestoreMode::InPlace);
    let err = restore(&t.repo, &t.catalog, &req, &progress, &CancelToken::new()).unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_same_tree(&before, &src);
    assert_eq!(names(dir.path()), top, "nothing left next to the original");
}

// ---------------------------------------------------------------------------------------
// 6. Full disk

/// A small tmpfs, unmounted (lazily if need be) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "mount -t tmpfs on {} (this test needs root)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn a_full_disk_fails_the_restore_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = SourceTree::new(&dir.path().join("src"));
    for i in 0..8 {
        src.file(&format!("f{i}.bin"), &noise(i, 1 << 20));
    }
    run_backup(&t, "big", &[&src.root]);
    let mnt = Tmpfs::mount(&dir.path().join("mnt"), "4m");
    let target = mnt.0.join("restore");
    let err = run(
        &t,
        &request("big", "latest", Some(&target), RestoreMode::New),
    )
    .unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert!(names(&mnt.0).is_empty(), "left behind: {:?}", names(&mnt.0));
}

#[test]
fn a_full_disk_during_an_in_place_restore_leaves_the_original_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let mnt = Tmpfs::mount(&dir.path().join("mnt"), "4m");
    let src = SourceTree::new(&mnt.0.join("src"));
    for i in 0..3 {
        src.file(&format!("f{i}.bin"), &noise(i, 800 << 10));
    }
    run_backup(&t, "tight", &[&src.root]);
    for i in 0..3 {
        src.file(&format!("f{i}.bin"), &noise(10 + i, 800 << 10));
    }
    let before = dir.path().join("before");
    copy_tree(&src.root, &before);
    let point = t.catalog.points(Some("tight")).unwrap()[0]
        .manifest
        .name
        .clone();
    let err = run(&t, &request("tight", &point, None, RestoreMode::InPlace)).unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_same_tree(&before, &src.root);
    assert_eq!(names(&mnt.0), BTreeSet::from(["src".to_string()]));
}

// ---------------------------------------------------------------------------------------
// 7. Hostile repositories

#[test]
fn hostile_names_in_a_repository_never_write_outside_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let outside_text = outside.as_os_str().as_bytes().to_vec();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();

    type Build = Box<dyn Fn(&Forger) -> BlobId>;
    let cases: Vec<(&str, Build)> = vec![
        (
            "dotdot",
            Box::new(|f| {
                let nodes = vec![named(f.data(b"pwned"), b"..")];
                f.tree(nodes)
            }),
        ),
        (
            "slash",
            Box::new(|f| {
                let nodes = vec![named(f.data(b"pwned"), b"a/b"), named(f.data(b"ok"), b"b")];
                f.tree(nodes)
            }),
        ),
        (
            "nested-dotdot",
            Box::new(|f| {
                let sub = f.tree(vec![named(f.data(b"pwned"), b"..")]);
                f.tree(vec![named(f.data(b"fine"), b"a"), dir_node(b"sub", sub)])
            }),
        ),
        (
            "symlink-then-dir-of-the-same-name",
            Box::new(move |f| {
                let sub = f.tree(vec![named(f.data(b"pwned"), b"pwned")]);
                f.tree(vec![
                    symlink_node(b"escape", &outside_text),
                    dir_node(b"escape", sub),
                ])
            }),
        ),
    ];
    for (instance, build) in cases {
        let forger = Forger::new(&t);
        let root = build(&forger);
        let point = forger.point(&t, instance, root);
        let before = names(dir.path());
        let target = work.join("target");
        let result = run(
            &t,
            &request(instance, &point, Some(&target), RestoreMode::New),
        );
        assert!(result.is_err(), "{instance}: restored {result:?}");
        assert!(!target.exists(), "{instance}");
        assert!(names(&work).is_empty(), "{instance}: {:?}", names(&work));
        assert_eq!(names(dir.path()), before, "{instance}");
        assert!(names(&outside).is_empty(), "{instance}: wrote outside");
    }
}

#[test]
fn symlinks_pointing_outside_are_restored_as_symlinks_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let forger = Forger::new(&t);
    let inside = forger.tree(vec![
        named(forger.data(b"one"), b"file"),
        symlink_node(b"up", b"../../outside"),
    ]);
    let root = forger.tree(vec![
        symlink_node(b"abs", outside.as_os_str().as_bytes()),
        symlink_node(b"escape", b"../outside"),
        dir_node(b"inside", inside),
        symlink_node(b"passwd", b"../../etc/passwd"),
    ]);
    let point = forger.point(&t, "links", root);
    let target = dir.path().join("target");
    let out = run(
        &t,
        &request("links", &point, Some(&target), RestoreMode::New),
    )
    .unwrap();
    assert_eq!(out.files, 5);
    assert!(names(&outside).is_empty());
    for (link, to) in [
        ("abs", outside.as_os_str().as_bytes()),
        ("escape", b"../outside"),
        ("inside/up", b"../../outside"),
        ("passwd", b"../../etc/passwd"),
    ] {
        let p = target.join(link);
        assert!(fs::symlink_metadata(&p).unwrap().is_symlink(), "{link}");
        assert_eq!(fs::read_link(&p).unwrap().as_os_str().as_bytes(), to);
    }
    assert_eq!(fs::read(target.join("inside/file")).unwrap(), b"one");
}

// ---------------------------------------------------------------------------------------
// 8. Cancel

struct CancelAfter {
    cancel: CancelToken,
    after: u64,
    done: AtomicU64,
}

impl Progress for CancelAfter {
    fn file_done(&self, _path: &Path, _bytes: u64) {
        if self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.cancel.cancel();
        }
    }
}

#[test]
fn cancelling_a_restore_leaves_the_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = SourceTree::new(&dir.path().join("src"));
    for i in 0..60 {
        src.file(&format!("d{}/f{i}", i % 5), &noise(i, 20_000));
    }
    run_backup(&t, "cancel", &[&src.root]);
    let top = names(dir.path());

    let cancel = CancelToken::new();
    let progress = CancelAfter {
        cancel: cancel.clone(),
        after: 3,
        done: AtomicU64::new(0),
    };
    let target = dir.path().join("out");
    let req = request("cancel", "latest", Some(&target), RestoreMode::New);
    let err = restore(&t.repo, &t.catalog, &req, &progress, &cancel).unwrap_err();
    assert!(matches!(err, EngineError::Cancelled), "{err}");
    assert!(!target.exists());
    assert_eq!(names(dir.path()), top);

    // In place: the original stays as it was.
    for i in 0..60 {
        fs::write(
            src.root.join(format!("d{}/f{i}", i % 5)),
            noise(500 + i, 20_000),
        )
        .unwrap();
    }
    let before = dir.path().join("before");
    copy_tree(&src.root, &before);
    let top = names(dir.path());
    let cancel = CancelToken::new();
    let progress = CancelAfter {
        cancel: cancel.clone(),
        after: 3,
        done: AtomicU64::new(0),
    };
    let req = request("cancel", "latest", None, RestoreMode::InPlace);
    let err = restore(&t.repo, &t.catalog, &req, &progress, &cancel).unwrap_err();
    assert!(matches!(err, EngineError::Cancelled), "{err}");
    assert_same_tree(&before, &src.root);
    assert_eq!(names(dir.path()), top);
}
