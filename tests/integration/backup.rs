//! Backup: points, change detection, dedup, interrupted backups.

use std::path::PathBuf;

use cairn::engine::{backup, BackupRequest, CancelToken, NoProgress, TreeReader};
use cairn::model::{Extent, NodeKind};

use crate::support::fixture::{noise, SourceTree};
use crate::support::repos::{second_machine, TestRepo};

fn run(t: &TestRepo, instance: &str, src: &std::path::Path) -> cairn::engine::BackupOutcome {
    let req = BackupRequest::new(instance, vec![src.to_path_buf()]);
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

#[test]
fn backup_records_every_fidelity_case_in_trees() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 3 << 20);
    let t = TestRepo::local(dir.path());
    let out = run(&t, "fidelity", &src);
    assert_eq!(
        out.manifest.stats.files_read,
        out.manifest.stats.files - 2,
        "hard-linked copies are read once"
    );
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone());
    let root = reader.tree(&out.manifest.root).unwrap();
    let pipe = root.find(b"pipe").unwrap();
    assert_eq!(pipe.kind, NodeKind::Fifo);
    let dangling = root.find(b"dangling").unwrap();
    assert_eq!(dangling.kind, NodeKind::Symlink);
    assert_eq!(dangling.target, b"/nonexistent/target");
    let data = reader
        .tree(&root.find(b"data").unwrap().subtree.unwrap())
        .unwrap();
    let sparse = data.find(b"sparse.img").unwrap();
    assert_eq!(sparse.size, 128 << 20);
    assert!(sparse
        .content
        .iter()
        .any(|e| matches!(e, Extent::Hole { len } if *len > 60 << 20)));
    let big = data.find(b"big.bin").unwrap();
    assert!(big.content.len() > 1, "a 3 MiB file is several chunks");
}

#[test]
fn unchanged_data_costs_nothing_and_one_percent_costs_about_one_percent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let tree = SourceTree::new(&src);
    for i in 0..20 {
        tree.file(&format!("d{}/f{i}.bin", i % 4), &noise(i, 2 << 20));
    }
    let t = TestRepo::local(dir.path());
    let first = run(&t, "dedup", &src);
    assert!(first.manifest.stats.stored_bytes > 40 << 20);
    let second = run(&t, "dedup", &src);
    assert_eq!(
        second.manifest.stats.files_read, 0,
        "nothing changed, nothing read"
    );
    assert_eq!(second.manifest.stats.new_bytes, 0);
    assert_eq!(
        second.manifest.root, first.manifest.root,
        "same tree, same id"
    );
    assert_eq!(second.manifest.parent, Some(first.id.to_hex()));
    // Rewrite 1% of the data: 400 KiB in the middle of one file.
    let victim = src.join("d1/f5.bin");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1 << 20..(1 << 20) + 400 * 1024].copy_from_slice(&noise(99, 400 * 1024));
    std::fs::write(&victim, &bytes).unwrap();
    let third = run(&t, "dedup", &src);
    assert_eq!(third.manifest.stats.files_read, 1);
    let total = 40u64 << 20;
    assert!(
        third.manifest.stats.new_bytes < total / 10,
        "1% change stored {} of {total}",
        third.manifest.stats.new_bytes
    );
}

#[test]
fn second_point_of_identical_data_in_another_instance_stores_almost_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 4 << 20);
    let t = TestRepo::local(dir.path());
    let a = run(&t, "one", &src);
    let b = run(&t, "two", &src);
    assert!(a.manifest.stats.new_bytes > 4 << 20);
    assert!(
        b.manifest.stats.new_bytes < 64 * 1024,
        "stored {}",
        b.manifest.stats.new_bytes
    );
    // A fresh catalog rebuilt from the objects sees the same points.
    let again = second_machine(t.repo.store(), &dir.path().join("other"));
    again.catalog.rebuild(&again.repo).unwrap();
    let names: Vec<_> = again
        .catalog
        .points(None)
        .unwrap()
        .into_iter()
        .map(|p| p.manifest.instance)
        .collect();
    assert_eq!(names, vec!["one".to_string(), "two".to_string()]);
}

#[test]
fn invalid_requests_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let cases = vec![
        BackupRequest::new("bad name", vec![dir.path().to_path_buf()]),
        BackupRequest::new("ok", vec![PathBuf::from("relative")]),
        BackupRequest::new("ok", vec![]),
        BackupRequest::new("ok", vec![dir.path().join("missing")]),
    ];
    for req in cases {
        assert!(
            backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).is_err(),
            "{req:?}"
        );
    }
    assert!(t.repo.store().list("points/").unwrap().is_empty());
    assert!(t.repo.store().list("packs/").unwrap().is_empty());
}

/// `before_commit` runs once, after the uploads and before the manifest; its warnings are
/// the point's: all counted, the first 100 kept in the manifest, read back from the
/// repository. A backup that fails before never runs it.
#[test]
fn before_commit_warnings_are_the_points() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use cairn::engine::BeforeCommit;

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::new(&src).file("f", b"data");
    let t = TestRepo::local(dir.path());
    let manifests = dir.path().join("repo/points/db");
    let calls = Arc::new(AtomicUsize::new(0));
    let mut req = BackupRequest::new("db", vec![src.clone()]);
    let (seen, m) = (calls.clone(), manifests.clone());
    req.before_commit = Some(BeforeCommit::new(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        assert!(!m.exists(), "no manifest is written yet");
        (0..150).map(|i| format!("w{i}")).collect()
    }));
    let out = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(out.warnings.len(), 150);
    assert_eq!(out.manifest.stats.warnings, 150);
    let kept: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
    assert_eq!(out.manifest.warnings, kept);
    let again = second_machine(t.repo.store(), &dir.path().join("other"));
    let stored = again.catalog.newest_point("db").unwrap().unwrap();
    assert_eq!(
        stored.manifest.warnings, kept,
        "read back from the repository"
    );

    let calls = Arc::new(AtomicUsize::new(0));
    let mut req = BackupRequest::new("db", vec![dir.path().join("missing")]);
    let seen = calls.clone();
    req.before_commit = Some(BeforeCommit::new(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        Vec::new()
    }));
    assert!(backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "not run for a failed backup"
    );
}
