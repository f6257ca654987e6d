//! Streams: named byte streams (command sources, `--stdin`) stored as files of a point,
//! deduplicated like files; a failed stream leaves no point and prune reclaims its data;
//! bad names and in-place restores of such points are refused.

use std::io::{Cursor, Read};
use std::path::Path;

use cairn::engine::{
    backup, prune, restore, BackupOutcome, BackupRequest, CancelToken, EngineError, NoProgress,
    PruneRequest, RestoreMode, RestoreRequest, StreamSource, TreeReader,
};
use cairn::model::NodeKind;

use crate::support::fixture::{noise, SourceTree};
use crate::support::repos::TestRepo;

fn stream(name: &str, data: Vec<u8>) -> StreamSource {
    StreamSource::new(name, Box::new(Cursor::new(data)), Box::new(|| Ok(())))
}

fn snap(
    t: &TestRepo,
    paths: &[&Path],
    streams: Vec<StreamSource>,
) -> Result<BackupOutcome, EngineError> {
    let mut req = BackupRequest::new("db", paths.iter().map(|p| p.to_path_buf()).collect());
    req.streams = streams;
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
}

fn repo_bytes(t: &TestRepo) -> u64 {
    t.repo
        .store()
        .list("")
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum()
}

fn restore_to(t: &TestRepo, target: &Path, mode: RestoreMode) -> Result<(), EngineError> {
    let req = RestoreRequest {
        instance: "db".into(),
        point: "latest".into(),
        target: (mode == RestoreMode::New).then(|| target.to_path_buf()),
        includes: vec![],
        mode,
        delete_excluded: false,
        skip_damaged: false,
    };
    restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).map(|_| ())
}

#[test]
fn streams_sit_beside_paths_and_restore_as_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = SourceTree::new(&dir.path().join("www"));
    src.file("index.html", b"<p>hi</p>");
    let t = TestRepo::local(dir.path());
    let dump = noise(7, 3 << 20);
    let out = snap(
        &t,
        &[&src.root],
        vec![stream("all.sql", dump.clone()), stream("empty", vec![])],
    )
    .unwrap();
    assert_eq!(out.manifest.streams, vec!["all.sql", "empty"]);
    assert_eq!(out.manifest.paths.len(), 1);
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone());
    let root = reader.tree(&out.manifest.root).unwrap();
    assert_eq!(root.find(b"www").unwrap().kind, NodeKind::Dir);
    let file = root.find(b"all.sql").unwrap();
    assert_eq!(
        (file.kind, file.mode, file.size),
        (NodeKind::File, 0o600, dump.len() as u64)
    );
    assert_eq!(file.mtime_ns, out.manifest.time_ns);
    assert!(file.content.len() > 1, "a 3 MiB stream is several chunks");

    let target = dir.path().join("restored");
    restore_to(&t, &target, RestoreMode::New).unwrap();
    assert_eq!(std::fs::read(target.join("all.sql")).unwrap(), dump);
    assert_eq!(std::fs::read(target.join("empty")).unwrap(), b"");
    assert_eq!(
        std::fs::read(target.join("www/index.html")).unwrap(),
        b"<p>hi</p>"
    );

    let err = restore_to(&t, &target, RestoreMode::InPlace)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--target") && err.contains("all.sql"), "{err}");
}

#[test]
fn a_stream_only_point_needs_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let out = snap(&t, &[], vec![stream("dump.rdb", b"REDIS0011".to_vec())]).unwrap();
    assert!(out.manifest.paths.is_empty());
    assert_eq!(out.manifest.stats.files, 1);
    assert_eq!(out.manifest.stats.bytes, 9);
    assert!(snap(&t, &[], vec![]).is_err(), "no path and no stream");
}

#[test]
fn bad_stream_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = SourceTree::new(&dir.path().join("data"));
    src.file("f", b"x");
    let t = TestRepo::local(dir.path());
    for (names, needle) in [
        (&["a/b"][..], "must not contain"),
        (&[".."], "1-255"),
        (&[""], "1-255"),
        (&["x", "x"], "twice"),
        (&["data"], "last component"),
    ] {
        let streams = names.iter().map(|n| stream(n, vec![1])).collect();
        let err = snap(&t, &[&src.root], streams).unwrap_err();
        assert!(matches!(err, EngineError::Invalid(_)), "{err}");
        assert!(err.to_string().contains(needle), "{names:?}: {err}");
    }
    assert!(t.catalog.newest_point("db").unwrap().is_none());
}

#[test]
fn an_unchanged_dump_stores_nothing_and_a_changed_one_about_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let mut dump = noise(1, 20 << 20);
    let first = snap(&t, &[], vec![stream("all.sql", dump.clone())]).unwrap();
    assert!(first.manifest.stats.new_bytes >= 20 << 20);
    let same = snap(&t, &[], vec![stream("all.sql", dump.clone())]).unwrap();
    assert!(
        same.manifest.stats.new_bytes < 64 << 10,
        "{:?}",
        same.manifest.stats
    );
    let middle = 10 << 20;
    dump[middle..middle + (1 << 20)].copy_from_slice(&noise(2, 1 << 20));
    let changed = snap(&t, &[], vec![stream("all.sql", dump)]).unwrap();
    let stats = changed.manifest.stats;
    // The changed MiB, and the chunks (1 MiB on average) it touches at either end.
    assert!(
        stats.new_bytes >= 1 << 20 && stats.new_bytes < 5 << 20,
        "{stats:?}"
    );
    assert!(stats.stored_bytes < 5 << 20, "{stats:?}");
}

/// Yields `good` bytes, then fails (an interrupted producer reading side).
struct Broken(Cursor<Vec<u8>>);

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("connection reset")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_failed_stream_makes_no_point_and_prune_reclaims_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let kept = snap(&t, &[], vec![stream("small", noise(3, 100_000))]).unwrap();
    let before = repo_bytes(&t);

    let producer_failed = StreamSource::new(
        "all.sql",
        Box::new(Cursor::new(noise(4, 50 << 20))),
        Box::new(|| Err("exited with status 1".into())),
    );
    let err = snap(&t, &[], vec![producer_failed])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("all.sql") && err.contains("exited with status 1"),
        "{err}"
    );
    let reader_failed = StreamSource::new(
        "other.sql",
        Box::new(Broken(Cursor::new(noise(5, 20 << 20)))),
        Box::new(|| Ok(())),
    );
    let err = snap(&t, &[], vec![reader_failed]).unwrap_err().to_string();
    assert!(
        err.contains("other.sql") && err.contains("connection reset"),
        "{err}"
    );

    t.catalog.refresh(&t.repo).unwrap();
    assert_eq!(t.catalog.newest_point("db").unwrap().unwrap().id, kept.id);
    assert!(
        repo_bytes(&t) > before + (40 << 20),
        "the failed streams' packs were written"
    );
    let req = PruneRequest {
        grace_ns: 0,
        ..Default::default()
    };
    let out = prune(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    assert!(out.packs_deleted > 0, "{out:?}");
    assert!(
        repo_bytes(&t) < before + (1 << 20),
        "{} vs {before}",
        repo_bytes(&t)
    );
    let target = dir.path().join("restored");
    restore_to(&t, &target, RestoreMode::New).unwrap();
    assert_eq!(
        std::fs::read(target.join("small")).unwrap(),
        noise(3, 100_000)
    );
}
