//! A forget killed between its two writes leaves the forget record and the manifest both
//! present. FORMAT.md 9.1 calls that state valid (the point is forgotten), so verify,
//! the points listing and a fresh catalog must all agree that it is clean and gone.

use std::sync::Arc;

use cairn::catalog::Catalog;
use cairn::engine::{
    backup, forget, verify, BackupRequest, CancelToken, ForgetRequest, NoProgress, VerifyRequest,
};
use cairn::model::Manifest;
use cairn::repo::Repository;
use cairn::store::{FaultStore, Store};

use crate::support::fixture::SourceTree;
use crate::support::repos::{fast_init, TestRepo};

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

/// A forget of two points stopped after each number of writes and deletes in turn (the
/// crash loop's kill -9, at every step): after each stop the repository verifies clean
/// with a fresh catalog, every point is either intact or forgotten, and a rerun of the
/// forget completes.
#[test]
fn a_forget_stopped_at_any_step_verifies_clean_and_a_rerun_completes() {
    let mut budget = 0;
    loop {
        let work = tempfile::tempdir().unwrap();
        let fault = Arc::new(FaultStore::new(Arc::new(
            object_store::memory::InMemory::new(),
        )));
        let store = Store::from_object_store(fault.clone(), "fault".into()).unwrap();
        let repo = Repository::init(store, &fast_init(false)).unwrap();
        let t = TestRepo::open_catalog(repo, work.path());
        let src = work.path().join("src");
        let mut names = Vec::new();
        for i in 0..4 {
            SourceTree::new(&src).file("f", format!("version {i}").as_bytes());
            let req = BackupRequest::new("db", vec![src.clone()]);
            let out = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
            names.push(out.manifest.name);
        }
        let req = ForgetRequest {
            instance: "db".into(),
            points: vec![names[1].clone(), names[2].clone()],
            allow_manual: true,
        };
        fault.fail_changes_after(budget);
        let result = forget(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new());
        fault.heal();
        let stopped = result.is_err();
        if let Err(e) = &result {
            assert!(e.to_string().contains("injected"), "budget {budget}: {e}");
        }
        let fresh =
            Arc::new(Catalog::open(&work.path().join(format!("f{budget}.sqlite"))).unwrap());
        fresh.refresh(&t.repo).unwrap();
        let verify_all = VerifyRequest {
            read_data: true,
            ..Default::default()
        };
        let report = verify(
            &t.repo,
            &fresh,
            &verify_all,
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        assert!(report.is_ok(), "budget {budget}: {report:?}");
        let left: Vec<String> = fresh
            .points(Some("db"))
            .unwrap()
            .into_iter()
            .map(|p| p.manifest.name)
            .collect();
        assert!(
            left.contains(&names[0]) && left.contains(&names[3]),
            "{left:?}"
        );
        if !stopped {
            assert_eq!(left, vec![names[0].clone(), names[3].clone()]);
            eprintln!("forget crash test: stopped at each of {budget} steps");
            break;
        }
        // A rerun forgets what is left of the two.
        let rest = ForgetRequest {
            points: req
                .points
                .iter()
                .filter(|n| left.contains(n))
                .cloned()
                .collect(),
            ..req
        };
        if !rest.points.is_empty() {
            forget(&t.repo, &fresh, &rest, &NoProgress, &CancelToken::new()).unwrap();
        }
        let report = verify(
            &t.repo,
            &fresh,
            &verify_all,
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        assert!(
            report.is_ok(),
            "budget {budget}, after the rerun: {report:?}"
        );
        budget += 1;
        assert!(
            budget < 50,
            "a forget of two points should need far fewer steps"
        );
    }
}
