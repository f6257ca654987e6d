//! Stages a killed restore left (issue 10, item 7): the next restore into the same
//! directory removes every stage no live process owns, says so in its log (a warning)
//! and its result, and leaves alone the stages of live processes and anything that only
//! looks like a stage.

use std::fs;
use std::sync::Mutex;

use cairn::engine::{backup, restore, BackupRequest, CancelToken, NoProgress, Progress};
use cairn::engine::{RestoreMode, RestoreRequest};

use crate::support::fixture::{assert_same_tree, SourceTree};
use crate::support::repos::TestRepo;

#[derive(Default)]
struct Warnings(Mutex<Vec<String>>);

impl Progress for Warnings {
    fn warn(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
}

/// A stage named as this cairn names them, of a process that has exited.
fn dead_stage_name(dest: &str) -> String {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let me = cairn::repo::process::ProcessId::current().unwrap();
    let dead = cairn::repo::process::ProcessId {
        pid: child.id(),
        ..me
    };
    let host = &blake3::hash(cairn::model::hostname().as_bytes()).to_hex()[..8];
    format!(".{dest}.cairn-stage-{host}.{}-00000000deadbeef", dead.tag())
}

#[test]
fn the_next_restore_removes_stages_of_killed_restores_and_says_so() {
    let work = tempfile::tempdir().unwrap();
    let t = TestRepo::local(work.path());
    let src = SourceTree::new(&work.path().join("src"));
    src.file("a/b", b"content");
    let out = backup(
        &t.repo,
        &t.catalog,
        &BackupRequest::new("www", vec![src.root.clone()]),
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    let parent = work.path().join("restores");
    fs::create_dir(&parent).unwrap();
    // Left by killed restores: one of an older cairn (no owner in the name), one of a
    // process that is gone; each with content, as a stage mid-restore has.
    let legacy = parent.join(".www-restored.cairn-stage-0123456789abcdef");
    let dead = parent.join(dead_stage_name("other"));
    for s in [&legacy, &dead] {
        fs::create_dir_all(s.join("deep/dir")).unwrap();
        fs::write(s.join("deep/dir/file"), vec![7u8; 100_000]).unwrap();
    }
    // Not stale: a live process's stage (this one's), and names that are no stage.
    let me = cairn::repo::process::ProcessId::current().unwrap();
    let host = &blake3::hash(cairn::model::hostname().as_bytes()).to_hex()[..8];
    let live = parent.join(format!(
        ".x.cairn-stage-{host}.{}-0000000000000001",
        me.tag()
    ));
    let lookalike = parent.join(".x.cairn-stage-not-a-stage");
    let user = parent.join("keep.cairn-stage-0123456789abcdef");
    for p in [&live, &lookalike, &user] {
        fs::create_dir(p).unwrap();
    }

    let target = parent.join("www-restored");
    let req = RestoreRequest {
        instance: "www".into(),
        point: out.manifest.name.clone(),
        target: Some(target.clone()),
        includes: Vec::new(),
        mode: RestoreMode::New,
        delete_excluded: false,
        skip_damaged: false,
    };
    let warnings = Warnings::default();
    let outcome = restore(&t.repo, &t.catalog, &req, &warnings, &CancelToken::new()).unwrap();
    assert_same_tree(&src.root, &target);
    assert!(!legacy.exists() && !dead.exists(), "stale stages are gone");
    assert!(
        live.exists() && lookalike.exists() && user.exists(),
        "others stay"
    );
    let said = warnings.0.lock().unwrap().clone();
    for s in [&legacy, &dead] {
        let line = format!("removed {}", s.display());
        assert!(said.iter().any(|w| w.starts_with(&line)), "{said:?}");
        assert!(
            outcome.warnings.iter().any(|w| w.starts_with(&line)),
            "{:?}",
            outcome.warnings
        );
    }
    let left: Vec<_> = fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 4, "{left:?}");
}
