//! A forget killed between its two writes leaves the forget record and the manifest both
//! present. FORMAT.md 9.1 calls that state valid (the point is forgotten), so verify,
//! the points listing and a fresh catalog must all agree that it is clean and gone.

use std::sync::Arc;

use cairn::catalog::Catalog;
use cairn::engine::{
    backup, forget, verify, BackupRequest, CancelToken, ForgetRequest, NoProgress, VerifyRequest,
};
use cairn::model::Manifest;

use crate::support::fixture::SourceTree;
use crate::support::repos::TestRepo;

#[test]
fn record_and_manifest_both_present_verify_clean() {
    let work = tempfile::tempdir().unwrap();
    let t = TestRepo::local(work.path());
    let src = work.path().join("src");
    let mut points = Vec::new();
    for i in 0..3 {
        SourceTree::new(&src).file("f", format!("version {i}").as_bytes());
        let req = BackupRequest::new("db", vec![src.clone()]);
        points.push(backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap());
    }
    let victim = &points[1];
    let key = Manifest::object_key("db", &victim.id);
    let stored = t.repo.store().get(&key).unwrap();
    let req = ForgetRequest {
        instance: "db".into(),
        points: vec![victim.manifest.name.clone()],
        allow_manual: true,
    };
    forget(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    // The crash: the manifest's deletion never happened.
    t.repo.store().put_new(&key, stored).unwrap();

    for catalog in [
        t.catalog.clone(),
        Arc::new(Catalog::open(&work.path().join("fresh.sqlite")).unwrap()),
    ] {
        let all = VerifyRequest {
            read_data: true,
            ..Default::default()
        };
        let one = VerifyRequest {
            instance: Some("db".into()),
            ..Default::default()
        };
        for req in [all, one] {
            let report = verify(&t.repo, &catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
            assert!(report.is_ok(), "{report:?}");
            assert_eq!(report.points_checked, 2);
        }
        let names: Vec<String> = catalog
            .points(Some("db"))
            .unwrap()
            .into_iter()
            .map(|p| p.manifest.name)
            .collect();
        assert!(!names.contains(&victim.manifest.name), "{names:?}");
        assert_eq!(names.len(), 2);
    }
}
