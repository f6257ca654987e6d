//! The log archiver (engine/logs/archive.rs) over real files: an idle pass writes no
//! object, a file that grew costs its new bytes, a new file its bytes, a file rewritten
//! in place becomes a new generation, and a push of the same bytes is a no-op while
//! other bytes are refused.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use cairn::catalog::LogRecordEntry;
use cairn::engine::logs::{LogArchiver, Timeline};
use cairn::engine::EngineError;
use cairn::model::LogRecord;

use crate::support::fixture::noise;
use crate::support::repos::TestRepo;

/// Every object in the repository.
pub(crate) fn objects(t: &TestRepo) -> usize {
    t.repo.store().list("").unwrap().len()
}

pub(crate) fn append(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

pub(crate) fn records(t: &TestRepo, instance: &str) -> Vec<LogRecordEntry> {
    t.catalog.log_records(instance).unwrap()
}

/// A record's data as stored.
fn data_len(t: &TestRepo, key: &str) -> usize {
    LogRecord::read(&t.repo, key).unwrap().1.len()
}

#[test]
fn a_pass_stores_only_what_is_new() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let globs = vec![format!("{}/*", logs.display())];
    let aof = logs.join("appendonly.aof");
    append(&aof, &noise(1, 10_000));
    let mut a = LogArchiver::load(&t.catalog, "kv").unwrap();

    // A new file costs its bytes.
    let first = a.pass(&t.repo, &t.catalog, &globs).unwrap();
    assert_eq!(
        (first.records.len(), first.bytes, first.files),
        (1, 10_000, 1)
    );
    assert_eq!(data_len(&t, &first.records[0]), 10_000);

    // An idle pass writes no object.
    let before = objects(&t);
    let idle = a.pass(&t.repo, &t.catalog, &globs).unwrap();
    assert_eq!((idle.records.len(), idle.bytes), (0, 0), "{idle:?}");
    assert_eq!(objects(&t), before, "an idle pass wrote an object");

    // A file that grew costs its new bytes, at the offset where it stood.
    append(&aof, &noise(2, 3_000));
    let grew = a.pass(&t.repo, &t.catalog, &globs).unwrap();
    assert_eq!((grew.records.len(), grew.bytes), (1, 3_000));
    assert_eq!(data_len(&t, &grew.records[0]), 3_000);
    let piece = &records(&t, "kv")[1].record.pieces[0];
    assert_eq!(
        (piece.generation, piece.offset, piece.len, piece.size),
        (1, 10_000, 3_000, 13_000)
    );
    assert_eq!(objects(&t), before + 1, "one record, nothing else");

    // A file rewritten in place (other bytes, longer) is a new generation, whole.
    std::fs::write(&aof, noise(3, 14_000)).unwrap();
    let rewritten = a.pass(&t.repo, &t.catalog, &globs).unwrap();
    assert_eq!(rewritten.bytes, 14_000);
    let piece = &records(&t, "kv")[2].record.pieces[0];
    assert_eq!((piece.generation, piece.offset, piece.len), (2, 0, 14_000));
    // ... and so is one that shrank.
    std::fs::write(&aof, noise(4, 100)).unwrap();
    a.pass(&t.repo, &t.catalog, &globs).unwrap();
    let piece = &records(&t, "kv")[3].record.pieces[0];
    assert_eq!((piece.generation, piece.offset, piece.len), (3, 0, 100));

    // The timeline reads the newest version back; the chain has no gap.
    let timeline = Timeline::load(&t.catalog, "kv").unwrap();
    assert_eq!(timeline.gaps(), vec![]);
    assert_eq!(
        timeline.read_file(&t.repo, "appendonly.aof", None).unwrap(),
        noise(4, 100)
    );
    // A second archiver (a restarted daemon) loads the state and finds nothing new.
    let mut again = LogArchiver::load(&t.catalog, "kv").unwrap();
    let before = objects(&t);
    let idle = again.pass(&t.repo, &t.catalog, &globs).unwrap();
    assert_eq!(idle.records.len(), 0, "{idle:?}");
    assert_eq!(objects(&t), before);
}

#[test]
fn a_push_of_the_same_bytes_is_a_no_op_and_of_other_bytes_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = TestRepo::local(tmp.path());
    let mut a = LogArchiver::load(&t.catalog, "pg").unwrap();
    let segment = noise(5, 100_000);
    let name = "000000010000000000000001";
    let pushed = a.push(&t.repo, &t.catalog, name, &segment[..]).unwrap();
    assert_eq!((pushed.records.len(), pushed.bytes), (1, 100_000));

    let before = objects(&t);
    let again = a.push(&t.repo, &t.catalog, name, &segment[..]).unwrap();
    assert_eq!((again.records.len(), again.bytes), (0, 0));
    assert_eq!(objects(&t), before, "a repeated push wrote an object");

    let other = noise(6, 100_000);
    match a.push(&t.repo, &t.catalog, name, &other[..]) {
        Err(EngineError::Invalid(e)) => {
            assert!(e.to_string().contains("other content"), "{e}")
        }
        other => panic!("a push of other bytes was not refused: {other:?}"),
    }
    assert_eq!(objects(&t), before);
    // Names that are no log file's are refused.
    assert!(a.push(&t.repo, &t.catalog, "@2026", &b"x"[..]).is_err());
    let timeline = Timeline::load(&t.catalog, "pg").unwrap();
    assert_eq!(timeline.read_file(&t.repo, name, None).unwrap(), segment);
}
