//! Forget: named points go (manifest and catalog row, on every machine), a forget record
//! bridges the history chain so verify stays clean, and a manifest deleted without a
//! record, or a forged record, is still reported.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use cairn::catalog::Catalog;
use cairn::engine::{
    backup, forget, verify, BackupOutcome, BackupRequest, CancelToken, EngineError, ForgetRequest,
    NoProgress, VerifyReport, VerifyRequest,
};
use cairn::model::{ForgetRecord, Manifest, PointKind};

use crate::support::fixture::noise;
use crate::support::repos::TestRepo;

pub(crate) fn point(t: &TestRepo, instance: &str, src: &Path, kind: PointKind) -> BackupOutcome {
    let mut req = BackupRequest::new(instance, vec![src.to_path_buf()]);
    req.kind = kind;
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn forget_req(instance: &str, points: &[&str], allow_manual: bool) -> ForgetRequest {
    ForgetRequest {
        instance: instance.into(),
        points: points.iter().map(|p| p.to_string()).collect(),
        allow_manual,
    }
}

fn run_forget(t: &TestRepo, req: &ForgetRequest) -> Result<Vec<String>, EngineError> {
    forget(&t.repo, &t.catalog, req, &NoProgress, &CancelToken::new()).map(|o| o.removed)
}

fn verify_all(t: &TestRepo) -> VerifyReport {
    let req = VerifyRequest {
        read_data: true,
        ..Default::default()
    };
    verify(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn names(t: &TestRepo, instance: &str) -> Vec<String> {
    let points = t.catalog.points(Some(instance)).unwrap();
    points.into_iter().map(|p| p.manifest.name).collect()
}

/// A local repository with the points of [`four_points`].
fn setup() -> (tempfile::TempDir, TestRepo, Vec<BackupOutcome>) {
    let work = tempfile::tempdir().unwrap();
    let t = TestRepo::local(work.path());
    let src = work.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let pts = four_points(&t, &src);
    (work, t, pts)
}

/// Four points of `db` (manual, scheduled, manual, scheduled), each with new data.
fn four_points(t: &TestRepo, src: &Path) -> Vec<BackupOutcome> {
    let kinds = [
        PointKind::Manual,
        PointKind::Scheduled,
        PointKind::Manual,
        PointKind::Scheduled,
    ];
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            fs::write(src.join(format!("f{i}")), noise(i as u64, 50_000)).unwrap();
            point(t, "db", src, *kind)
        })
        .collect()
}

#[test]
fn forgetting_points_keeps_the_chain_verifiable_on_every_machine() {
    let (work, t, pts) = setup();
    let all: Vec<String> = pts.iter().map(|p| p.manifest.name.clone()).collect();

    // The middle two (a scheduled one and a manual one), so the chain has a 2-point gap.
    let removed = run_forget(&t, &forget_req("db", &[&all[1], &all[2]], true)).unwrap();
    assert_eq!(removed, vec![all[1].clone(), all[2].clone()]);
    assert_eq!(names(&t, "db"), vec![all[0].clone(), all[3].clone()]);
    for p in &pts[1..3] {
        assert!(t
            .repo
            .store()
            .head(&Manifest::object_key("db", &p.id))
            .is_err());
        assert!(t
            .repo
            .store()
            .head(&ForgetRecord::object_key("db", &p.id))
            .is_ok());
    }
    let report = verify_all(&t);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.points_checked, 2);

    // Another machine's catalog, built from the objects, never shows them.
    let other = Catalog::open(&work.path().join("other.sqlite")).unwrap();
    other.rebuild(&t.repo).unwrap();
    let other_names: Vec<String> = other
        .points(Some("db"))
        .unwrap()
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    assert_eq!(other_names, vec![all[0].clone(), all[3].clone()]);

    // `latest` forgets the newest; the oldest then stands alone and still verifies.
    assert_eq!(
        run_forget(&t, &forget_req("db", &["latest"], false)).unwrap(),
        vec![all[3].clone()]
    );
    assert_eq!(names(&t, "db"), vec![all[0].clone()]);
    assert!(verify_all(&t).is_ok());
}

#[test]
fn bad_requests_change_nothing() {
    let (_work, t, pts) = setup();
    let all: Vec<String> = pts.iter().map(|p| p.manifest.name.clone()).collect();
    let objects = |t: &TestRepo| t.repo.store().list("").unwrap().len();
    let before = objects(&t);

    // A manual point without allow_manual, even next to a scheduled one.
    let err = run_forget(&t, &forget_req("db", &[&all[1], &all[0]], false)).unwrap_err();
    assert!(
        matches!(&err, EngineError::Invalid(m) if m.to_string().contains("manual")),
        "{err}"
    );
    // An unknown point after a good one.
    let err = run_forget(
        &t,
        &forget_req("db", &[&all[1], "2020-01-01T000000Z"], true),
    );
    assert!(matches!(err, Err(EngineError::NoSuchPoint { .. })));
    let err = run_forget(&t, &forget_req("nope", &["latest"], true));
    assert!(matches!(err, Err(EngineError::NoSuchPoint { .. })));
    assert!(matches!(
        run_forget(&t, &forget_req("bad/name", &["latest"], true)),
        Err(EngineError::Invalid(_))
    ));
    assert!(matches!(
        run_forget(&t, &forget_req("db", &[], true)),
        Err(EngineError::Invalid(_))
    ));
    assert_eq!(names(&t, "db"), all);
    assert_eq!(objects(&t), before);

    // A scheduled point needs no permission.
    assert_eq!(
        run_forget(&t, &forget_req("db", &[&all[1]], false)).unwrap(),
        vec![all[1].clone()]
    );
}

#[test]
fn unrecorded_deletion_and_forged_records_break_the_chain() {
    let (_work, t, pts) = setup();
    run_forget(&t, &forget_req("db", &[&pts[1].manifest.name], true)).unwrap();
    assert!(verify_all(&t).is_ok());

    // Deleting a manifest behind cairn's back is still seen.
    let key = Manifest::object_key("db", &pts[2].id);
    t.repo.store().delete(&key).unwrap();
    let report = verify_all(&t);
    let gap = pts[2].id.to_hex();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&gap) && p.contains("history chain is broken")),
        "{report:?}"
    );

    // A record that claims another parent does not match the id it names: refused.
    let (_fresh, t2, pts2) = setup();
    let victim = &pts2[1];
    let json = t2
        .repo
        .get_sealed(&Manifest::object_key("db", &victim.id))
        .unwrap();
    let mut m: Manifest = serde_json::from_slice(&json).unwrap();
    m.parent = Some("00".repeat(32));
    let forged = ForgetRecord {
        version: 1,
        instance: "db".into(),
        manifest: serde_json::to_string(&m).unwrap(),
        forgotten_ns: 0,
        host: "mallory".into(),
    };
    t2.repo
        .put_sealed(&ForgetRecord::object_key("db", &victim.id), forged.encode())
        .unwrap();
    t2.repo
        .store()
        .delete(&Manifest::object_key("db", &victim.id))
        .unwrap();
    let report = verify_all(&t2);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("forget record") && p.contains(&victim.id.to_hex())),
        "{report:?}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("history chain is broken")),
        "{report:?}"
    );
}

#[test]
fn a_record_without_the_deletion_still_forgets_the_point() {
    // A crash between the record and the manifest's deletion: the record wins.
    let (work, t, pts) = setup();
    let key = Manifest::object_key("db", &pts[1].id);
    let stored = t.repo.store().get(&key).unwrap();
    run_forget(&t, &forget_req("db", &[&pts[1].manifest.name], true)).unwrap();
    t.repo.store().put_new(&key, stored).unwrap();

    let other = Arc::new(Catalog::open(&work.path().join("other.sqlite")).unwrap());
    other.refresh(&t.repo).unwrap();
    assert!(other
        .points(Some("db"))
        .unwrap()
        .iter()
        .all(|p| p.id != pts[1].id));
    t.catalog.refresh(&t.repo).unwrap();
    assert_eq!(t.catalog.points(Some("db")).unwrap().len(), 3);
}
