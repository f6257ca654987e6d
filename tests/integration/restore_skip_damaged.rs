//! Restore with damage (issue 10, item 3): all-or-nothing by default — one damaged file
//! fails the restore and the destination stays as it was — and with `skip-damaged=true`
//! (CLI `--skip-damaged`) every intact file is restored, each damaged one is named in
//! the job result, and the command exits 3.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn::catalog::Catalog;
use cairn::engine::{
    backup, restore, BackupOutcome, BackupRequest, CancelToken, NoProgress, RestoreMode,
    RestoreOutcome, RestoreRequest,
};
use cairn::repo::Repository;
use cairn::service::Service;
use cairn::store::{Location, Store};

use crate::support::cli_repo::Cli;
use crate::support::fixture::{noise, SourceTree};
use crate::support::forge::{flip_blob, locate_file};
use crate::support::mount::{fuse_available, job_of, request, wait_job_file, MountGuard};
use crate::support::repos::{TestRepo, PASSWORD};

const LIMIT: Duration = Duration::from_secs(300);

/// 12 files in three directories, a hard-link pair `d2/a` = `d2/b`; returns the point.
fn setup(t: &TestRepo, src: &Path) -> BackupOutcome {
    let tree = SourceTree::new(src);
    for i in 0..12u64 {
        tree.file(&format!("d{}/f{i}", i % 3), &noise(i + 7, 30_000));
    }
    fs::write(src.join("d2/a"), noise(99, 5000)).unwrap();
    fs::hard_link(src.join("d2/a"), src.join("d2/b")).unwrap();
    let req = BackupRequest::new("www", vec![src.to_path_buf()]);
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

/// Corrupts the chunk of `rel` in the point, and the tree of directory `dir` if given.
fn damage(t: &TestRepo, work: &Path, p: &BackupOutcome, rel: &str, dir: Option<&str>) {
    let (blob, _) = locate_file(t, &p.manifest.root, rel);
    let tree = dir.map(|d| locate_file(t, &p.manifest.root, &format!("{d}/f0")).1);
    flip_blob(work, &t.catalog.lookup_blob(&blob).unwrap().unwrap());
    if let Some(tree) = tree {
        flip_blob(work, &t.catalog.lookup_blob(&tree).unwrap().unwrap());
    }
}

/// Restores the point `p` (by name: an in-place restore adds a safety point).
fn run(
    t: &TestRepo,
    p: &BackupOutcome,
    target: Option<&Path>,
    mode: RestoreMode,
    skip: bool,
) -> cairn::engine::Result<RestoreOutcome> {
    let req = RestoreRequest {
        instance: "www".into(),
        point: p.manifest.name.clone(),
        target: target.map(Path::to_path_buf),
        includes: vec![],
        mode,
        skip_damaged: skip,
        delete_excluded: false,
    };
    restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
}

/// Relative paths of the regular files under `root`.
fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn assert_intact_except(src: &Path, target: &Path, missing: &[&str]) {
    let mut expected = files(src);
    expected.retain(|f| {
        !missing
            .iter()
            .any(|m| f == m || f.starts_with(&format!("{m}/")))
    });
    assert_eq!(files(target), expected);
    for f in &expected {
        assert_eq!(
            fs::read(target.join(f)).unwrap(),
            fs::read(src.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn one_damaged_file_fails_the_restore_unless_skip_damaged_names_it() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = TestRepo::local(w);
    let src = w.join("src");
    let p = setup(&t, &src);
    damage(&t, w, &p, "d1/f4", None);

    let target = w.join("target");
    let err = run(&t, &p, Some(&target), RestoreMode::New, false).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(!target.exists());
    // Known now: the default restore fails at once with the cause.
    let err = run(&t, &p, Some(&target), RestoreMode::New, false).unwrap_err();
    assert!(err.to_string().contains("known to be damaged"), "{err}");
    assert!(!target.exists());

    let out = run(&t, &p, Some(&target), RestoreMode::New, true).unwrap();
    assert_eq!(
        out.skipped,
        vec![target.join("d1/f4").display().to_string()]
    );
    assert_eq!(out.files, 13);
    assert_intact_except(&src, &target, &["d1/f4"]);
    let a = fs::metadata(target.join("d2/a")).unwrap();
    assert_eq!(a.ino(), fs::metadata(target.join("d2/b")).unwrap().ino());
}

#[test]
fn skip_damaged_skips_a_damaged_directory_and_a_whole_hard_link_group() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = TestRepo::local(w);
    let src = w.join("src");
    let p = setup(&t, &src);
    damage(&t, w, &p, "d2/a", Some("d0"));
    let target = w.join("target");
    assert!(run(&t, &p, Some(&target), RestoreMode::New, false).is_err());
    assert!(!target.exists());

    let out = run(&t, &p, Some(&target), RestoreMode::New, true).unwrap();
    let named: Vec<String> = ["d0", "d2/a", "d2/b"]
        .iter()
        .map(|r| target.join(r).display().to_string())
        .collect();
    assert_eq!(out.skipped, named);
    assert_intact_except(&src, &target, &["d0", "d2/a", "d2/b"]);
}

#[test]
fn an_in_place_restore_that_skips_a_damaged_file_keeps_its_original() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = TestRepo::local(w);
    let src = w.join("src");
    let p = setup(&t, &src);
    damage(&t, w, &p, "d1/f1", None);
    damage(&t, w, &p, "d2/a", None);
    for f in ["d1/f1", "d0/f3", "d2/a"] {
        fs::write(src.join(f), b"changed since").unwrap();
    }
    assert!(run(&t, &p, None, RestoreMode::InPlace, false).is_err());
    assert_eq!(fs::read(src.join("d0/f3")).unwrap(), b"changed since");

    let out = run(&t, &p, None, RestoreMode::InPlace, true).unwrap();
    let named: Vec<String> = ["d1/f1", "d2/a", "d2/b"]
        .iter()
        .map(|r| src.join(r).display().to_string())
        .collect();
    assert_eq!(out.skipped, named);
    // The originals stay, the hard-link pair still one file.
    for f in ["d1/f1", "d2/a", "d2/b"] {
        assert_eq!(fs::read(src.join(f)).unwrap(), b"changed since", "{f}");
    }
    let a = fs::metadata(src.join("d2/a")).unwrap();
    assert_eq!(a.ino(), fs::metadata(src.join("d2/b")).unwrap().ino());
    assert_eq!(fs::read(src.join("d0/f3")).unwrap(), noise(3 + 7, 30_000));
}

/// Opens the repository a CLI test made, with a catalog of its own.
fn open_cli_repo(cli: &Cli, work: &Path) -> TestRepo {
    let store = Store::open(&Location::Local(PathBuf::from(cli.repo()))).unwrap();
    let repo = Repository::open(store, Some(PASSWORD)).unwrap();
    let catalog = Arc::new(Catalog::open(&work.join("lib.sqlite")).unwrap());
    catalog.refresh(&repo).unwrap();
    TestRepo { repo, catalog }
}

#[test]
fn the_cli_skips_damaged_files_with_exit_code_3_directly_and_through_a_mount() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let cli = Cli::new(w);
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let src = w.join("src");
    let tree = SourceTree::new(&src);
    for i in 0..6u64 {
        tree.file(&format!("f{i}"), &noise(i + 40, 20_000));
    }
    let src_arg = src.to_str().unwrap();
    cli.run(&["snapshot", "www", "--repo", &repo, "--path", src_arg])
        .ok();
    let t = open_cli_repo(&cli, w);
    let point = t.catalog.latest_point("www").unwrap().unwrap();
    let (blob, _) = locate_file(&t, &point.manifest.root, "f2");
    flip_blob(
        Path::new(&repo).parent().unwrap(),
        &t.catalog.lookup_blob(&blob).unwrap().unwrap(),
    );

    let target = w.join("direct");
    let t_arg = target.to_str().unwrap();
    cli.run(&["restore", "www", "--repo", &repo, "--target", t_arg])
        .code(1)
        .stderr_has("destination was left as it was");
    assert!(!target.exists());
    let skipped = format!("{}/f2", t_arg);
    cli.run(&[
        "restore",
        "www",
        "--repo",
        &repo,
        "--target",
        t_arg,
        "--skip-damaged",
    ])
    .code(3)
    .stdout_has(&format!("SKIPPED    {skipped}"));
    assert_intact_except(&src, &target, &["f2"]);
    let json_target = w.join("direct-json");
    let j_arg = json_target.to_str().unwrap();
    let run = cli
        .run(&[
            "restore",
            "www",
            "--repo",
            &repo,
            "--target",
            j_arg,
            "--skip-damaged",
            "--json",
        ])
        .code(3);
    assert_eq!(
        run.json()["skipped"],
        serde_json::json!([format!("{j_arg}/f2")])
    );

    if !fuse_available() {
        return;
    }
    let service = Service::start(t.repo.clone(), t.catalog.clone(), 2).unwrap();
    let mnt = w.join("mnt");
    let _guard = MountGuard::new(service, &mnt, LIMIT);
    let ctl = mnt.join(".cairn/ctl/restore");
    let by_hand = w.join("by-hand");
    let reply = request(
        &ctl,
        &format!(
            "instance=www point=latest target={} skip-damaged=true\n",
            by_hand.display()
        ),
    )
    .unwrap();
    let status = wait_job_file(&mnt, job_of(&reply), LIMIT);
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(
        status["result"]["skipped"],
        serde_json::json!([format!("{}/f2", by_hand.display())]),
        "{status}"
    );
    let refused = request(
        &ctl,
        "instance=www point=latest target=/x skip-damaged=perhaps\n",
    );
    assert!(refused.is_err(), "{refused:?}");

    let through = w.join("through");
    let m_arg = mnt.to_str().unwrap();
    let th_arg = through.to_str().unwrap();
    cli.run(&["restore", "www", "--mount", m_arg, "--target", th_arg])
        .code(1);
    assert!(!through.exists());
    cli.run(&[
        "restore",
        "www",
        "--mount",
        m_arg,
        "--target",
        th_arg,
        "--skip-damaged",
    ])
    .code(3)
    .stdout_has(&format!("SKIPPED    {th_arg}/f2"));
    assert_intact_except(&src, &through, &["f2"]);
}
