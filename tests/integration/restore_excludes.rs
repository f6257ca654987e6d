//! An in-place restore leaves alone what the backup excluded (issue 10, item 20), as
//! rsync does: `exclude=*.tmp`, a snapshot, then an in-place restore removed `x.tmp`.
//! Deleting those paths too takes `delete-excluded=true` (`--delete-excluded`).

use std::fs;
use std::path::{Path, PathBuf};

use cairn::engine::{
    backup, restore, BackupRequest, CancelToken, NoProgress, RestoreMode, RestoreOutcome,
    RestoreRequest,
};
use cairn::service::control::parse_restore;

use crate::support::repos::TestRepo;

const EXCLUDES: [&str; 2] = ["*.tmp", "cache"];

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn snapshot(t: &TestRepo, paths: Vec<PathBuf>) {
    let mut req = BackupRequest::new("www", paths);
    req.excludes = EXCLUDES.iter().map(|s| s.to_string()).collect();
    let out = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(out.manifest.excludes, req.excludes, "recorded in the point");
}

fn in_place(t: &TestRepo, delete_excluded: bool) -> RestoreOutcome {
    let req = RestoreRequest {
        instance: "www".into(),
        point: "latest".into(),
        target: None,
        includes: Vec::new(),
        mode: RestoreMode::InPlace,
        delete_excluded,
        skip_damaged: false,
    };
    restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

/// Files the backup excluded, and one it did not, in a source.
fn populate(src: &Path) {
    write(src, "page.html", "v1");
    write(src, "x.tmp", "scratch");
    write(src, "deep/er/y.tmp", "scratch");
    write(src, "cache/blob", "cached");
    write(src, "cache/sub/more", "cached");
}

fn assert_excluded_kept(src: &Path) {
    for rel in ["x.tmp", "deep/er/y.tmp", "cache/blob", "cache/sub/more"] {
        assert!(src.join(rel).is_file(), "{rel} was deleted");
    }
}

#[test]
fn an_in_place_restore_keeps_what_the_backup_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("www");
    populate(&src);
    snapshot(&t, vec![src.clone()]);
    write(&src, "page.html", "v2");
    write(&src, "new.html", "not in the point");
    let out = in_place(&t, false);
    assert_eq!(fs::read_to_string(src.join("page.html")).unwrap(), "v1");
    assert!(!src.join("new.html").exists(), "what the point lacks goes");
    assert_eq!(out.removed, 1, "only new.html: {out:?}");
    assert_excluded_kept(&src);

    let out = in_place(&t, true);
    assert_eq!(out.removed, 4, "{out:?}");
    for rel in ["x.tmp", "deep/er/y.tmp", "cache"] {
        assert!(!src.join(rel).exists(), "{rel} stays with delete-excluded");
    }
    assert_eq!(fs::read_to_string(src.join("page.html")).unwrap(), "v1");
}

#[test]
fn several_sources_match_excludes_relative_to_each_source() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    populate(&a);
    populate(&b);
    snapshot(&t, vec![a.clone(), b.clone()]);
    write(&b, "page.html", "changed");
    let out = in_place(&t, false);
    assert_eq!(out.removed, 0, "{out:?}");
    assert_eq!(fs::read_to_string(b.join("page.html")).unwrap(), "v1");
    assert_excluded_kept(&a);
    assert_excluded_kept(&b);
}

#[test]
fn delete_excluded_is_a_request_key_for_in_place_restores() {
    let r = parse_restore("instance=www point=latest mode=in-place delete-excluded=true").unwrap();
    assert!(r.delete_excluded);
    let r = parse_restore("instance=www point=latest mode=in-place").unwrap();
    assert!(!r.delete_excluded);
    let err = parse_restore("instance=www point=latest target=/t delete-excluded=true")
        .expect_err("mode=new");
    assert_eq!(err.errno, libc::EINVAL);
    let err = parse_restore("instance=www point=latest mode=in-place delete-excluded=maybe")
        .expect_err("not a boolean");
    assert_eq!(err.errno, libc::EINVAL);
}

#[test]
fn the_cli_keeps_excluded_paths_in_place_unless_told_to_delete_them() {
    let env = crate::support::cli_env::Env::new();
    let repo = env.path("repo");
    let repo = repo.to_str().unwrap();
    env.run(&["init", "--no-encryption", repo]).ok();
    let src = env.path("www");
    populate(&src);
    let s = src.to_str().unwrap();
    env.run(&[
        "snapshot",
        "www",
        "--repo",
        repo,
        "--path",
        s,
        "--exclude",
        "*.tmp",
        "--exclude",
        "cache",
    ])
    .ok();
    write(&src, "page.html", "v2");
    let restore = [
        "restore", "www", "latest", "--repo", repo, "--mode", "in-place",
    ];
    env.run(&restore).ok();
    assert_eq!(fs::read_to_string(src.join("page.html")).unwrap(), "v1");
    assert_excluded_kept(&src);
    let mut new_mode = restore.to_vec();
    new_mode.truncate(5);
    new_mode.extend(["--target", "/tmp/nowhere-cairn", "--delete-excluded"]);
    env.run(&new_mode).code(2);
    let mut delete = restore.to_vec();
    delete.push("--delete-excluded");
    env.run(&delete).ok();
    assert!(!src.join("x.tmp").exists() && !src.join("cache").exists());
    assert_eq!(fs::read_to_string(src.join("page.html")).unwrap(), "v1");
}
