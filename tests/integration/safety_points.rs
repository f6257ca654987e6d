//! Safety points (issue 10, item 13): what an in-place restore takes of the state it
//! replaces is its own kind, and never `latest` — so retrying `restore www latest
//! --mode in-place` after a failure restores the point, not the state it was meant to
//! replace. Through the engine, the control grammar, and a real mount with the CLI.

use std::fs;
use std::path::Path;

use cairn::catalog::PointQuery;
use cairn::engine::{
    backup, restore, BackupRequest, CancelToken, EngineError, NoProgress, Progress, RestoreMode,
    RestoreRequest,
};
use cairn::model::manifest::point_kind_of_name;
use cairn::model::PointKind;
use cairn::service::control::parse_snapshot;

use crate::support::cli_env::Env;
use crate::support::mount::fuse_available;
use crate::support::repos::TestRepo;

/// Cancels its operation when a phase of this name begins.
struct CancelAt {
    phase: &'static str,
    token: CancelToken,
}

impl Progress for CancelAt {
    fn phase(&self, name: &str) {
        if name == self.phase {
            self.token.cancel();
        }
    }
}

fn in_place(point: &str) -> RestoreRequest {
    RestoreRequest {
        instance: "www".into(),
        point: point.into(),
        target: None,
        includes: Vec::new(),
        mode: RestoreMode::InPlace,
        delete_excluded: false,
        skip_damaged: false,
    }
}

fn safety_points(t: &TestRepo) -> Vec<String> {
    let q = PointQuery {
        kind: Some(PointKind::Safety),
        ..PointQuery::default()
    };
    t.catalog
        .points_matching(Some("www"), &q)
        .unwrap()
        .into_iter()
        .map(|p| p.manifest.name)
        .collect()
}

fn latest(t: &TestRepo) -> String {
    t.catalog
        .find_point("www", "latest")
        .unwrap()
        .expect("a latest point")
        .manifest
        .name
}

#[test]
fn a_failed_in_place_restore_of_latest_can_be_retried_and_restores_the_point() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("www");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("index.html"), "the good page").unwrap();
    let req = BackupRequest::new("www", vec![src.clone()]);
    let good = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
        .unwrap()
        .manifest
        .name;
    fs::write(src.join("index.html"), "broken").unwrap();

    // The first attempt fails after its safety point (a cancel at staging stands for a
    // full disk): the target is as it was, and `latest` is still the good point.
    let cancel = CancelAt {
        phase: "staging",
        token: CancelToken::new(),
    };
    let err = restore(
        &t.repo,
        &t.catalog,
        &in_place("latest"),
        &cancel,
        &cancel.token,
    )
    .expect_err("cancelled");
    assert!(matches!(err, EngineError::Cancelled), "{err}");
    assert_eq!(
        fs::read_to_string(src.join("index.html")).unwrap(),
        "broken"
    );
    let safety = safety_points(&t);
    assert_eq!(safety.len(), 1, "{safety:?}");
    assert!(safety[0].ends_with("-before-restore"), "{safety:?}");
    assert_eq!(point_kind_of_name(&safety[0]), Some(PointKind::Safety));
    assert_eq!(latest(&t), good);

    // The retry restores the good point and names both points.
    let out = restore(
        &t.repo,
        &t.catalog,
        &in_place("latest"),
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(out.point, good);
    let second = out.safety_point.expect("a safety point");
    assert_ne!(second, good);
    assert_eq!(
        fs::read_to_string(src.join("index.html")).unwrap(),
        "the good page"
    );
    assert_eq!(
        latest(&t),
        good,
        "a finished restore's safety point is not latest"
    );
    assert_eq!(safety_points(&t).len(), 2);
    // Manual listings do not hold them; the safety point restores what was replaced.
    let manual = t
        .catalog
        .points_matching(
            Some("www"),
            &PointQuery {
                kind: Some(PointKind::Manual),
                ..PointQuery::default()
            },
        )
        .unwrap();
    assert_eq!(manual.len(), 1);
    restore(
        &t.repo,
        &t.catalog,
        &in_place(&second),
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(src.join("index.html")).unwrap(),
        "broken"
    );
}

#[test]
fn the_safety_label_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("www");
    fs::create_dir(&src).unwrap();
    for label in ["before-restore", "before-restore-2", "auto", "auto-3"] {
        let mut req = BackupRequest::new("www", vec![src.clone()]);
        req.label = Some(label.into());
        let err =
            backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).expect_err(label);
        assert!(matches!(err, EngineError::Invalid(_)), "{label}: {err}");
        let refused = parse_snapshot(&format!("instance=www name={label}")).expect_err(label);
        assert_eq!(refused.errno, libc::EINVAL, "{label}");
    }
    assert!(t.catalog.points(Some("www")).unwrap().is_empty());
}

fn read_link(p: &Path) -> String {
    fs::read_link(p).unwrap().to_string_lossy().into_owned()
}

#[test]
fn through_a_mount_latest_and_the_cli_never_name_a_safety_point() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let _daemon = env.mount_background();
    let src = env.path("www");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("page"), "v1").unwrap();
    let src_s = src.to_str().unwrap();
    env.run(&["instance", "add", "www", "--path", src_s]).ok();
    // An old time, so that rsync, which compares times to the second, sees it differ.
    let touched = std::process::Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(touched);
    let src_mtime = fs::metadata(&src).unwrap().modified().unwrap();
    let snap = env.run(&["snapshot", "www", "--json"]).ok().json();
    let good = snap["result"]["point"].as_str().expect("point").to_string();
    // The point's root is the source directory: `rsync -a` copies its time (item 19).
    let copy = env.path("copy");
    let from = format!("{}/", env.mnt().join("www").join(&good).display());
    let ok = std::process::Command::new("rsync")
        .arg("-a")
        .arg(&from)
        .arg(&copy)
        .status()
        .unwrap()
        .success();
    assert!(ok, "rsync -a {from}");
    assert_eq!(fs::metadata(&copy).unwrap().modified().unwrap(), src_mtime);
    fs::write(src.join("page"), "v2").unwrap();

    let done = env
        .run(&["restore", "www", "latest", "--mode", "in-place", "--json"])
        .ok()
        .json();
    assert_eq!(done["result"]["point"], good.as_str(), "{done}");
    let safety = done["result"]["safety_point"]
        .as_str()
        .expect("the result names the safety point")
        .to_string();
    assert!(safety.ends_with("-before-restore"), "{safety}");
    assert_eq!(fs::read_to_string(src.join("page")).unwrap(), "v1");

    let mnt = env.mnt();
    assert!(mnt.join("www").join(&safety).is_dir(), "the mount shows it");
    assert_eq!(read_link(&mnt.join("www/latest")), good);
    let listed = env
        .run(&["points", "www", "--kind", "safety", "--json"])
        .ok()
        .json();
    let points = listed["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{listed}");
    assert_eq!(points[0]["name"], safety.as_str());
    assert_eq!(points[0]["kind"], "safety");
    let manual = env
        .run(&["points", "www", "--kind", "manual", "--json"])
        .ok()
        .json();
    assert_eq!(manual["points"].as_array().unwrap().len(), 1, "{manual}");

    // Retried, `latest` is still the good point; a request cannot take a safety label.
    fs::write(src.join("page"), "v3").unwrap();
    let again = env
        .run(&["restore", "www", "latest", "--mode", "in-place", "--json"])
        .ok()
        .json();
    assert_eq!(again["result"]["point"], good.as_str(), "{again}");
    assert_eq!(fs::read_to_string(src.join("page")).unwrap(), "v1");
    env.run(&["snapshot", "www", "--label", "before-restore"])
        .code(2);
}
