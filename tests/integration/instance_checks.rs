//! Instance definitions the daemon could not use (issue 10, item 17) are refused at
//! `add` with EINVAL and a clear message — duplicate, nested and same-named paths, and
//! names too long for a local repository's file names — and the same path checks apply
//! to `--repo` snapshots. The longest name that is accepted works end to end.

use std::fs;
use std::time::{Duration, Instant};

use cairn::engine::{backup, BackupRequest, CancelToken, EngineError, NoProgress};
use cairn::model::names::MAX_NEW_NAME_LEN;
use cairn::service::Service;

use crate::support::repos::TestRepo;

fn started(dir: &std::path::Path) -> Service {
    let t = TestRepo::local(dir);
    Service::start(t.repo, t.catalog, 1).unwrap()
}

#[test]
fn unusable_definitions_are_refused_at_add_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let service = started(dir.path());
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::create_dir_all(dir.path().join("other/src")).unwrap();
    let s = src.display();
    let o = dir.path().join("other/src");
    let o = o.display();
    let long = "n".repeat(255);
    let bad = [
        (format!("add name=www path={s} path={s}"), "twice"),
        (format!("add name=www path={s} path={s}/"), "twice"),
        (format!("add name=www path={s} path={s}/sub"), "overlap"),
        (format!("add name=www path={s}/sub path={s}"), "overlap"),
        (format!("add name=www path={s} path={o}"), "same name"),
        (format!("add name={long} path={s}"), "at most 240"),
        (
            format!("add name={} path={s}", "n".repeat(MAX_NEW_NAME_LEN + 1)),
            "at most 240",
        ),
    ];
    for (request, why) in &bad {
        let err = service.submit("instance", request, 0).expect_err(request);
        assert_eq!(err.errno, libc::EINVAL, "{request}: {err}");
        assert!(err.message.contains(why), "{request}: {err}");
    }
    assert!(service.instance_names().is_empty());
    assert!(!dir.path().join("repo/instances").exists());
    let policy = format!(
        "create name={} times=03:00 weekdays=mon keep-days=7",
        "p".repeat(MAX_NEW_NAME_LEN + 1)
    );
    let err = service
        .submit("policy", &policy, 0)
        .expect_err("long policy");
    assert_eq!(err.errno, libc::EINVAL, "{err}");
    service.shutdown();
}

#[test]
fn the_longest_accepted_name_works_on_a_local_repository() {
    let dir = tempfile::tempdir().unwrap();
    let service = started(dir.path());
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "data").unwrap();
    let name = "n".repeat(MAX_NEW_NAME_LEN);
    service
        .submit(
            "instance",
            &format!("add name={name} path={}", src.display()),
            0,
        )
        .unwrap();
    let reply = service
        .submit("snapshot", &format!("instance={name}"), 0)
        .unwrap();
    let id: u64 = reply.trim().trim_start_matches("job=").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let s: serde_json::Value = serde_json::from_str(&service.job_status(id).unwrap()).unwrap();
        if !["queued", "running"].contains(&s["state"].as_str().unwrap_or("")) {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(service.points(&name).len(), 1);
    let policy = format!(
        "create name={} times=03:00 weekdays=mon keep-days=7",
        "p".repeat(MAX_NEW_NAME_LEN)
    );
    service.submit("policy", &policy, 0).unwrap();
    service.shutdown();
}

#[test]
fn repo_mode_snapshots_refuse_nested_and_repeated_paths() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    for paths in [
        vec![src.clone(), src.join("sub")],
        vec![src.join("sub"), src.clone()],
        vec![src.clone(), src.clone()],
    ] {
        let req = BackupRequest::new("www", paths.clone());
        let err = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
            .expect_err("refused");
        assert!(matches!(err, EngineError::Invalid(_)), "{paths:?}: {err}");
    }
    assert!(t.catalog.points(Some("www")).unwrap().is_empty());
}
