//! Healing damage (issue 10, items 1 and 2): a blob copy known to be damaged — found by
//! verify, a restore or a read through the mount, or lying past the end of a truncated
//! pack — is never deduplicated against again. The next backup that has the data stores
//! it anew, every point that references it reads correctly from then on, and verify
//! reports the damage as healed. The knowledge survives a catalog rebuild. And a file
//! whose extent is longer than its blob is damage for verify and the mount alike, as it
//! is for restore.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn::engine::{
    backup, prune, restore, verify, BackupOutcome, BackupRequest, CancelToken, NoProgress,
    PruneRequest, RestoreMode, RestoreRequest, VerifyReport, VerifyRequest,
};
use cairn::repo::{BlobId, InitOptions, Repository};
use cairn::service::Service;
use cairn::store::{Location, Store};

use crate::support::fixture::{assert_same_tree, noise, SourceTree};
use crate::support::forge::{dir_node, flip_blob, locate_file, named, pack_file, Forger};
use crate::support::mount::{fuse_available, MountGuard};
use crate::support::repos::{fast_init, TestRepo};

const LIMIT: Duration = Duration::from_secs(300);

/// An encrypted local repository with 1 MiB packs: the files spread over several packs.
fn small_packs(work: &Path) -> TestRepo {
    let store = Store::open(&Location::Local(work.join("repo"))).unwrap();
    let opts = InitOptions {
        pack_size: 1 << 20,
        ..fast_init(true)
    };
    TestRepo::open_catalog(Repository::init(store, &opts).unwrap(), work)
}

/// 16 files of 200 KiB (one chunk each) in two directories.
fn source(root: &Path) -> SourceTree {
    let src = SourceTree::new(root);
    for i in 0..16u64 {
        src.file(&format!("d{}/f{i}", i % 2), &noise(i + 1, 200 << 10));
    }
    src
}

fn snap(t: &TestRepo, instance: &str, src: &Path) -> BackupOutcome {
    let req = BackupRequest::new(instance, vec![src.to_path_buf()]);
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn check(t: &TestRepo, read_data: bool) -> VerifyReport {
    let req = VerifyRequest {
        read_data,
        ..Default::default()
    };
    verify(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn restore_into(
    t: &TestRepo,
    instance: &str,
    point: &str,
    target: &Path,
) -> cairn::engine::Result<cairn::engine::RestoreOutcome> {
    let req = RestoreRequest {
        instance: instance.into(),
        point: point.into(),
        target: Some(target.to_path_buf()),
        includes: vec![],
        mode: RestoreMode::New,
        skip_damaged: false,
        delete_excluded: false,
    };
    restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
}

fn cp_a(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .args(["-a", "--"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// After healing: everything verifies clean (data too), the damage is named as healed,
/// and every point restores to the source.
fn assert_healed(t: &TestRepo, work: &Path, src: &Path, points: &[(&str, &str)], blob: &BlobId) {
    for read_data in [false, true] {
        let report = check(t, read_data);
        assert!(report.is_ok(), "read_data={read_data}: {report:#?}");
        assert!(
            report
                .healed
                .iter()
                .any(|h| h.contains(&blob.to_string()) || h.contains("stored again intact")),
            "read_data={read_data}: {:#?}",
            report.healed
        );
    }
    for (i, (instance, point)) in points.iter().enumerate() {
        let target = work.join(format!("restored-{i}"));
        restore_into(t, instance, point, &target).unwrap();
        assert_same_tree(src, &target);
    }
}

#[test]
fn a_blob_verify_found_corrupt_is_stored_again_by_a_fresh_copy_even_after_a_rebuild() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let src = source(&w.join("src"));
    let p1 = snap(&t, "www", &src.root);
    let (blob, _) = locate_file(&t, &p1.manifest.root, "d1/f3");
    let loc = t.catalog.lookup_blob(&blob).unwrap().unwrap();
    flip_blob(w, &loc);

    let report = check(&t, true);
    assert_eq!(report.damaged.len(), 1, "{report:#?}");
    assert_eq!(report.damaged[0].paths, vec!["d1/f3"]);
    // A rebuilt catalog still knows: the repository cannot tell it.
    t.catalog.rebuild(&t.repo).unwrap();

    let copy = w.join("copy");
    cp_a(&src.root, &copy);
    let p2 = snap(&t, "www", &copy);
    assert_eq!(p2.manifest.stats.files_read, 16);
    assert!(
        p2.manifest.stats.new_bytes >= 200 << 10,
        "the damaged blob was deduplicated against: {:?}",
        p2.manifest.stats
    );
    let now = t.catalog.lookup_blob(&blob).unwrap().unwrap();
    assert_ne!(now.pack, loc.pack, "readers still use the damaged copy");
    assert_healed(
        &t,
        w,
        &src.root,
        &[("www", &p1.manifest.name), ("www", &p2.manifest.name)],
        &blob,
    );
}

#[test]
fn a_truncated_pack_is_healed_by_the_next_backup_of_the_same_source() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let src = source(&w.join("src"));
    let p1 = snap(&t, "www", &src.root);
    let (blob, _) = locate_file(&t, &p1.manifest.root, "d0/f4");
    let loc = t.catalog.lookup_blob(&blob).unwrap().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(pack_file(w, &loc))
        .unwrap();
    file.set_len(u64::from(loc.offset) + 10).unwrap();

    assert!(!check(&t, false).is_ok());
    // Unchanged files are not read again, unless a chunk of theirs is damaged.
    let p2 = snap(&t, "www", &src.root);
    assert!(p2.manifest.stats.files_read >= 1, "{:?}", p2.manifest.stats);
    assert!(p2.manifest.stats.files_read < 16, "{:?}", p2.manifest.stats);
    assert!(p2.manifest.stats.new_bytes >= 200 << 10);
    assert_healed(
        &t,
        w,
        &src.root,
        &[("www", &p1.manifest.name), ("www", &p2.manifest.name)],
        &blob,
    );
}

#[test]
fn a_corrupt_tree_a_restore_met_is_stored_again_by_the_next_backup() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let src = source(&w.join("src"));
    let p1 = snap(&t, "www", &src.root);
    let (_, tree) = locate_file(&t, &p1.manifest.root, "d1/f1");
    let loc = t.catalog.lookup_blob(&tree).unwrap().unwrap();
    flip_blob(w, &loc);

    // The restore finds the damage (and leaves nothing behind).
    let fresh = TestRepo::reopen_local(w);
    let target = w.join("failed");
    let err = restore_into(&fresh, "www", &p1.manifest.name, &target).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(!target.exists());

    // Same source again: the tree of d1 encodes to the same blob, which is stored anew.
    let p2 = snap(&fresh, "www", &src.root);
    assert_ne!(
        fresh.catalog.lookup_blob(&tree).unwrap().unwrap().pack,
        loc.pack
    );
    assert_healed(
        &fresh,
        w,
        &src.root,
        &[("www", &p1.manifest.name), ("www", &p2.manifest.name)],
        &tree,
    );
}

#[test]
fn a_chunk_a_mount_read_found_corrupt_reads_correctly_after_the_next_backup() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let src = source(&w.join("src"));
    let p1 = snap(&t, "www", &src.root);
    let (blob, _) = locate_file(&t, &p1.manifest.root, "d0/f6");
    let loc = t.catalog.lookup_blob(&blob).unwrap().unwrap();
    flip_blob(w, &loc);

    let catalog = t.catalog.clone();
    let service = Service::start(t.repo.clone(), t.catalog.clone(), 2).unwrap();
    let mnt = w.join("mnt");
    let guard = MountGuard::new(service, &mnt, LIMIT);
    let file = mnt.join("www").join(&p1.manifest.name).join("d0/f6");
    let err = std::fs::read(&file).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(!catalog.damaged_copies().unwrap().is_empty());

    let p2 = snap(&t, "www", &src.root);
    assert!(p2.manifest.stats.new_bytes >= 200 << 10);
    let expected = std::fs::read(src.root.join("d0/f6")).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), expected);
    drop(guard);
    assert_healed(
        &t,
        w,
        &src.root,
        &[("www", &p1.manifest.name), ("www", &p2.manifest.name)],
        &blob,
    );
}

/// An unencrypted repository whose file `short` says 20 bytes for a 13-byte blob, next to
/// an intact file.
fn wrong_extent_point(t: &TestRepo) -> String {
    let f = Forger::new(t);
    let mut short = named(f.data(b"thirteen byte"), b"short");
    short.size = 20;
    if let Some(cairn::model::Extent::Data { len, .. }) = short.content.first_mut() {
        *len = 20;
    }
    let fine = named(f.data(b"intact"), b"fine");
    let sub = f.tree(vec![fine.clone()]);
    let root = f.tree(vec![fine, short, dir_node(b"sub", sub)]);
    f.point(t, "forged", root)
}

#[test]
fn an_extent_longer_than_its_blob_is_damage_for_verify_and_the_mount_as_for_restore() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let store = Store::open(&Location::Local(w.join("repo"))).unwrap();
    let t = TestRepo::open_catalog(Repository::init(store, &fast_init(false)).unwrap(), w);
    let point = wrong_extent_point(&t);
    for read_data in [false, true] {
        let report = check(&t, read_data);
        assert_eq!(report.damaged.len(), 1, "{report:#?}");
        assert_eq!(report.damaged[0].paths, vec!["short"]);
        assert!(
            report.damaged[0].causes[0].contains("holds 13 bytes, its file says 20"),
            "{report:#?}"
        );
    }
    let err = restore_into(&t, "forged", &point, &w.join("target")).unwrap_err();
    assert!(err.to_string().contains("holds 13 bytes"), "{err}");
    assert!(!w.join("target").exists());

    if !fuse_available() {
        return;
    }
    let service = Service::start(t.repo.clone(), t.catalog.clone(), 2).unwrap();
    let mnt = w.join("mnt");
    let _guard = MountGuard::new(service, &mnt, LIMIT);
    let dir = mnt.join("forged").join(&point);
    let err = std::fs::read(dir.join("short")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(std::fs::read(dir.join("fine")).unwrap(), b"intact");
    // The damage is not in the blob: nothing is marked, nothing to store again.
    assert!(t.catalog.damaged_copies().unwrap().is_empty());
}

#[test]
fn prune_moves_the_intact_blobs_out_of_a_healed_pack_and_deletes_it() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let src = source(&w.join("src"));
    let p1 = snap(&t, "www", &src.root);
    let (blob, _) = locate_file(&t, &p1.manifest.root, "d1/f5");
    let loc = t.catalog.lookup_blob(&blob).unwrap().unwrap();
    flip_blob(w, &loc);
    assert!(!check(&t, true).is_ok());
    let p2 = snap(&t, "www", &src.root);
    assert!(p2.manifest.stats.new_bytes >= 200 << 10);

    // A zero grace period: the first run condemns and repacks, the second deletes.
    for _ in 0..2 {
        let req = PruneRequest {
            grace_ns: 0,
            ..Default::default()
        };
        prune(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    }
    assert!(
        !pack_file(w, &loc).exists(),
        "the damaged pack is still there"
    );
    assert!(t.catalog.damaged_copies().unwrap().is_empty());
    let report = check(&t, true);
    assert!(report.is_ok() && report.healed.is_empty(), "{report:#?}");
    for (i, p) in [&p1, &p2].iter().enumerate() {
        let target = w.join(format!("after-prune-{i}"));
        restore_into(&t, "www", &p.manifest.name, &target).unwrap();
        assert_same_tree(&src.root, &target);
    }
}
