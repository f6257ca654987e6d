//! The audit trail, point listing filters and the job history: events for every action
//! with the writer's uid; queries by time range and kind in the catalog and with `cairn
//! events` (through a real mount and with `--repo`); `cairn points --since --until
//! --kind`; deleting jobs with `rm -r` and `cairn jobs delete` (refused while queued or
//! running); the history across a daemon restart and across `cairn catalog rebuild`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use cairn::catalog::{Catalog, EventQuery, PointQuery};
use cairn::engine::{self, BackupRequest, CancelToken, NoProgress};
use cairn::fs::Namespace;
use cairn::model::PointKind;
use cairn::repo::Repository;
use cairn::service::Service;

use crate::namespace::wait_job;
use crate::support::cli_run::cairn_bin;
use crate::support::fixture::{noise, SourceTree};
use crate::support::mount::{
    fuse_available, job_of, request, run, run_with_env, wait_job_file, MountGuard,
};
use crate::support::repos::{TestRepo, PASSWORD};

const LIMIT: Duration = Duration::from_secs(600);

/// A new repository in `work/scratch/repo`, opened by [`reopen`].
fn repo_with_default_catalog(work: &Path) -> (Repository, Arc<Catalog>) {
    drop(TestRepo::local(&work.join("scratch")));
    reopen(work)
}

/// The repository in `work/scratch/repo` with its catalog where `cairn --repo` looks for
/// it when `CAIRN_CACHE_DIR=work/cache`: what a daemon opens when it starts.
fn reopen(work: &Path) -> (Repository, Arc<Catalog>) {
    let store =
        cairn::store::Store::open(&cairn::store::Location::Local(work.join("scratch/repo")))
            .unwrap();
    let repo = Repository::open(store, Some(PASSWORD)).unwrap();
    let path = work
        .join("cache")
        .join(&repo.config().id)
        .join("catalog.sqlite");
    let catalog = Arc::new(Catalog::open(&path).unwrap());
    catalog.refresh(&repo).unwrap();
    (repo, catalog)
}

/// Runs the cairn binary with a clean environment: the test cache, the password.
fn cairn(work: &Path, args: &[&str]) -> (bool, String, String) {
    let cache = work.join("cache");
    let pw = String::from_utf8(PASSWORD.to_vec()).unwrap();
    run_with_env(
        300,
        cairn_bin().to_str().unwrap(),
        args,
        &[
            ("CAIRN_CACHE_DIR", cache.to_str().unwrap()),
            ("CAIRN_PASSWORD", &pw),
            ("CAIRN_MOUNT", ""),
            ("CAIRN_REPO", ""),
            ("RUST_LOG", ""),
        ],
    )
}

/// `cairn ARGS --json`, parsed; the command must succeed.
fn cairn_json(work: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = cairn(work, &all);
    assert!(ok, "cairn {all:?} failed:\n{out}{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

fn rfc3339_ns(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap()
    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn time_ns(event: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

#[test]
fn every_action_records_an_event_with_the_uid_request_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::new(&src).file("a/b.txt", b"audit me");
    let t = TestRepo::local(dir.path());
    let catalog = t.catalog.clone();
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let ns = Namespace::new(service.clone(), 1 << 20);

    service
        .submit(
            "instance",
            &format!("add name=db path={}", src.display()),
            1000,
        )
        .unwrap();
    let snap = job_of(
        &service
            .submit("snapshot", "instance=db name=first", 1001)
            .unwrap(),
    );
    let point = wait_job(&service, snap)["result"]["point"]
        .as_str()
        .unwrap()
        .to_string();
    let target = dir.path().join("restored");
    let restore = job_of(
        &service
            .submit(
                "restore",
                &format!("instance=db point=latest target={}", target.display()),
                1002,
            )
            .unwrap(),
    );
    assert_eq!(wait_job(&service, restore)["state"], "succeeded");
    let failing = job_of(
        &service
            .submit(
                "restore",
                "instance=db point=latest target=/no/such/parent/target",
                1003,
            )
            .unwrap(),
    );
    assert_eq!(wait_job(&service, failing)["state"], "failed");
    let verify = job_of(&service.submit("verify", "", 1004).unwrap());
    assert_eq!(wait_job(&service, verify)["state"], "succeeded");
    // Refused requests and refused deletions record nothing.
    let before = service.events_text();
    assert!(service.submit("snapshot", "instance=ghost", 1005).is_err());
    assert!(service
        .submit("snapshot", "instance=db colour=red", 1005)
        .is_err());
    assert_eq!(
        service.delete_job(999, 1005, "test").unwrap_err().errno,
        libc::ENOENT
    );
    assert_eq!(service.events_text(), before);
    // Deleting a job as someone else than the owner is refused by the mount.
    let meta = ns
        .lookup(cairn::fs::namespace::ROOT, b".cairn")
        .unwrap()
        .ino;
    let jobs_dir = ns.lookup(meta, b"jobs").unwrap().ino;
    assert_eq!(
        ns.rmdir(jobs_dir, failing.to_string().as_bytes(), 4242)
            .unwrap_err(),
        libc::EACCES
    );
    service.delete_job(failing, 1006, "cairn test").unwrap();
    service.submit("instance", "remove name=db", 1007).unwrap();

    let events = lines(&service.events_text());
    assert_eq!(
        kinds(&events),
        vec![
            "instance-added",
            "snapshot-requested",
            "point-created",
            "restore-requested",
            "point-restored",
            "restore-requested",
            "job-failed",
            "verify-requested",
            "job-succeeded",
            "job-deleted",
            "instance-removed",
        ]
    );
    let uids: Vec<u64> = events.iter().map(|e| e["uid"].as_u64().unwrap()).collect();
    assert_eq!(
        uids,
        vec![1000, 1001, 1001, 1002, 1002, 1003, 1003, 1004, 1004, 1006, 1007],
        "a job's end carries the uid of who asked for it"
    );
    for e in &events {
        for key in [
            "time", "kind", "uid", "instance", "job", "point", "request", "outcome",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert!(!e["request"].is_null(), "{e}");
        assert!(e["outcome"]["ok"].is_boolean(), "{e}");
    }
    let by_kind = |k: &str| events.iter().find(|e| e["kind"] == k).unwrap().clone();
    let created = by_kind("point-created");
    assert_eq!(created["job"], snap);
    assert_eq!(created["instance"], "db");
    assert_eq!(created["point"], point.as_str());
    assert_eq!(created["outcome"]["result"]["point"], point.as_str());
    assert_eq!(created["request"]["label"], "first", "the job's request");
    let requested = by_kind("snapshot-requested");
    assert_eq!(requested["request"], "instance=db name=first", "as written");
    assert_eq!(
        requested["outcome"],
        json!({"ok": true, "reply": format!("job={snap}")})
    );
    assert_eq!(by_kind("point-restored")["point"], point.as_str());
    let failed = by_kind("job-failed");
    assert_eq!(failed["job"], failing);
    assert_eq!(failed["outcome"]["ok"], false);
    assert_eq!(failed["outcome"]["state"], "failed");
    assert!(failed["outcome"]["error"]
        .as_str()
        .unwrap()
        .contains("not an existing directory"));
    let deleted = by_kind("job-deleted");
    assert_eq!(deleted["job"], failing);
    assert_eq!(deleted["outcome"]["state"], "failed");
    assert!(service.job_status(failing).is_none(), "the job is gone");

    // The catalog's queries by kind and time range see the same events.
    let all = catalog.query_events(&EventQuery::default()).unwrap();
    assert_eq!(
        all,
        service
            .events_text()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    );
    let points = catalog
        .query_events(&EventQuery {
            kinds: vec!["point-created".into(), "point-restored".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        kinds(&lines(&points.join("\n"))),
        vec!["point-created", "point-restored"]
    );
    let t_failed = time_ns(&failed);
    let since = catalog
        .query_events(&EventQuery {
            since_ns: Some(t_failed),
            ..Default::default()
        })
        .unwrap();
    let expected: Vec<&Value> = events.iter().filter(|e| time_ns(e) >= t_failed).collect();
    assert_eq!(since.len(), expected.len());
    assert!(since.iter().any(|l| l.contains("\"job-failed\"")));
    let until = catalog
        .query_events(&EventQuery {
            until_ns: Some(time_ns(&created)),
            ..Default::default()
        })
        .unwrap();
    assert!(until
        .iter()
        .all(|l| time_ns(&serde_json::from_str(l).unwrap()) <= time_ns(&created)));
    assert!(until.iter().any(|l| l.contains("\"point-created\"")));
    assert!(!until.iter().any(|l| l.contains("\"instance-removed\"")));
    service.shutdown();
}

/// Which events a query should return.
type Wants = Box<dyn Fn(&Value) -> bool>;

#[test]
fn cairn_events_filters_by_time_and_kind_through_a_mount_and_with_repo() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let src = work.join("src");
    SourceTree::new(&src).file("f.txt", b"events through the mount");
    let (repo, catalog) = repo_with_default_catalog(work);
    let mnt = work.join("mnt");
    let guard = MountGuard::new(Service::start(repo, catalog, 2).unwrap(), &mnt, LIMIT);
    let ctl = mnt.join(".cairn/ctl");
    request(
        &ctl.join("instance"),
        &format!("add name=db path={}\n", src.display()),
    )
    .unwrap();
    for label in ["one", "two"] {
        let job = job_of(
            &request(
                &ctl.join("snapshot"),
                &format!("instance=db name={label}\n"),
            )
            .unwrap(),
        );
        assert_eq!(wait_job_file(&mnt, job, LIMIT)["state"], "succeeded");
    }
    let failing = job_of(
        &request(
            &ctl.join("restore"),
            "instance=db point=latest target=/no/such/dir/x\n",
        )
        .unwrap(),
    );
    assert_eq!(wait_job_file(&mnt, failing, LIMIT)["state"], "failed");

    let file_events = lines(&std::fs::read_to_string(mnt.join(".cairn/events")).unwrap());
    assert_eq!(file_events.len(), 7, "{file_events:?}");
    assert!(file_events.iter().all(|e| e["uid"] == 0), "written by root");
    let created: Vec<&Value> = file_events
        .iter()
        .filter(|e| e["kind"] == "point-created")
        .collect();
    let (t1, t2) = (time_ns(created[0]), time_ns(created[1]));
    assert!(t1 <= t2);

    let mnt_arg = mnt.to_str().unwrap();
    let repo_arg = work.join("scratch/repo");
    let repo_arg = repo_arg.to_str().unwrap();
    let since2 = rfc3339_ns(t2);
    let until1 = rfc3339_ns(t1);
    let queries: Vec<(Vec<&str>, Wants)> = vec![
        (vec![], Box::new(|_| true)),
        (
            vec!["--kind", "point-created"],
            Box::new(|e| e["kind"] == "point-created"),
        ),
        (
            vec!["--kind", "job-failed", "--kind", "instance-added"],
            Box::new(|e| e["kind"] == "job-failed" || e["kind"] == "instance-added"),
        ),
        (
            vec!["--since", &since2],
            Box::new(move |e| time_ns(e) >= t2),
        ),
        (
            vec!["--until", &until1],
            Box::new(move |e| time_ns(e) <= t1),
        ),
        (
            vec![
                "--since",
                &until1,
                "--until",
                &since2,
                "--kind",
                "point-created",
            ],
            Box::new(move |e| e["kind"] == "point-created" && time_ns(e) >= t1 && time_ns(e) <= t2),
        ),
        (vec!["--since", "1h"], Box::new(|_| true)),
        (vec!["--until", "1h"], Box::new(|_| false)),
    ];
    for (filter, want) in &queries {
        let expected: Vec<Value> = file_events.iter().filter(|e| want(e)).cloned().collect();
        for place in [["--mount", mnt_arg], ["--repo", repo_arg]] {
            let mut args = vec!["events"];
            args.extend(place);
            args.extend(filter.iter().copied());
            let got = cairn_json(work, &args);
            assert_eq!(got["events"].as_array().unwrap(), &expected, "{args:?}");
        }
    }
    // The table, and a warning for a kind nobody records.
    let (ok, out, _) = cairn(work, &["events", "--mount", mnt_arg]);
    assert!(ok);
    for needle in [
        "instance-added",
        "point-created",
        "job-failed",
        "uid=0",
        "db/",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    let (ok, _, err) = cairn(
        work,
        &["events", "--mount", mnt_arg, "--kind", "point-create"],
    );
    assert!(ok && err.contains("no event kind `point-create`"), "{err}");
    let (ok, _, err) = cairn(
        work,
        &["events", "--mount", mnt_arg, "--since", "yesterday"],
    );
    assert!(!ok && err.contains("not a time"), "{err}");
    drop(guard);
}

/// Backs up `src` into `db` directly with the engine: a manual or a scheduled point.
fn point(repo: &Repository, catalog: &Arc<Catalog>, src: &Path, kind: PointKind) -> (String, i64) {
    let mut b = BackupRequest::new("db", vec![src.to_path_buf()]);
    b.kind = kind;
    let out = engine::backup(repo, catalog, &b, &NoProgress, &CancelToken::new()).unwrap();
    (out.manifest.name, out.manifest.time_ns)
}

/// A failed run as the scheduler records it: a snapshot job whose request has a
/// `"schedule"`.
fn failed_run(catalog: &Catalog, instance: &str, scheduled: bool, state: &str) -> u64 {
    let created = cairn::model::now_ns();
    let mut request = json!({"instance": instance, "label": null});
    if scheduled {
        request["schedule"] = json!({
            "policy": "nightly", "slot": "2026-11-22T03:00:00Z", "slot_ns": created,
            "time_ns": created, "trigger": "slot",
        });
    }
    let id = catalog
        .insert_job(
            "snapshot",
            Some(instance),
            state,
            &request.to_string(),
            created,
            None,
        )
        .unwrap();
    let job_state = match state {
        "failed" => cairn::service::JobState::Failed,
        _ => cairn::service::JobState::Succeeded,
    };
    let at = cairn::service::jobs::rfc3339(created);
    let status = cairn::service::JobStatus {
        started: Some(at.clone()),
        finished: Some(at),
        error: Some("source path /srv/db is gone".into()),
        ..cairn::service::JobStatus::new(
            id,
            cairn::service::JobKind::Snapshot,
            Some(instance.to_string()),
            job_state,
            request,
            created,
        )
    };
    catalog
        .update_job(id, state, &status.to_line(), "")
        .unwrap();
    id
}

#[test]
fn points_are_listed_by_time_range_and_kind_and_failed_runs_beside_them() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let src = work.join("src");
    SourceTree::new(&src).file("f.txt", b"points");
    let (repo, catalog) = repo_with_default_catalog(work);
    let kinds = [
        PointKind::Manual,
        PointKind::Scheduled,
        PointKind::Manual,
        PointKind::Scheduled,
    ];
    let made: Vec<(String, i64, PointKind)> = kinds
        .iter()
        .map(|k| {
            let (name, t) = point(&repo, &catalog, &src, *k);
            (name, t, *k)
        })
        .collect();
    let failed = failed_run(&catalog, "db", true, "failed");
    failed_run(&catalog, "db", false, "failed"); // manual: not a failed scheduled run
    failed_run(&catalog, "db", true, "succeeded");
    failed_run(&catalog, "www", true, "failed"); // another instance

    // The library.
    let names = |q: PointQuery| -> Vec<String> {
        catalog
            .points_matching(Some("db"), &q)
            .unwrap()
            .into_iter()
            .map(|p| p.manifest.name)
            .collect()
    };
    let want = |f: &dyn Fn(&(String, i64, PointKind)) -> bool| -> Vec<String> {
        made.iter().filter(|p| f(p)).map(|p| p.0.clone()).collect()
    };
    let t1 = made[1].1;
    let t2 = made[2].1;
    assert_eq!(names(PointQuery::default()), want(&|_| true));
    assert_eq!(
        names(PointQuery {
            kind: Some(PointKind::Scheduled),
            ..Default::default()
        }),
        want(&|p| p.2 == PointKind::Scheduled)
    );
    // Scheduled names end in `-auto`, or `-auto-N` when one second holds two of them.
    assert!(want(&|p| p.2 == PointKind::Scheduled).iter().all(|n| {
        cairn::model::manifest::point_kind_of_name(n) == Some(PointKind::Scheduled)
            && n.contains("-auto")
    }));
    assert_eq!(
        names(PointQuery {
            since_ns: Some(t1),
            until_ns: Some(t2),
            kind: None
        }),
        vec![made[1].0.clone(), made[2].0.clone()]
    );
    let rows = catalog
        .failed_scheduled_jobs(Some("db"), None, None)
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![failed]);

    // The CLI, through a mount and with --repo: the same names.
    let mnt = work.join("mnt");
    let guard = MountGuard::new(
        Service::start(repo, catalog.clone(), 1).unwrap(),
        &mnt,
        LIMIT,
    );
    let mnt_arg = mnt.to_str().unwrap();
    let repo_arg = work.join("scratch/repo");
    let repo_arg = repo_arg.to_str().unwrap();
    let (s1, s2) = (rfc3339_ns(t1), rfc3339_ns(t2));
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (vec![], want(&|_| true)),
        (
            vec!["--kind", "manual"],
            want(&|p| p.2 == PointKind::Manual),
        ),
        (
            vec!["--kind", "scheduled"],
            want(&|p| p.2 == PointKind::Scheduled),
        ),
        (
            vec!["--kind", "manual", "--kind", "scheduled"],
            want(&|_| true),
        ),
        (vec!["--since", &s1], want(&|p| p.1 >= t1)),
        (vec!["--until", &s2], want(&|p| p.1 <= t2)),
        (
            vec!["--since", &s1, "--until", &s2, "--kind", "scheduled"],
            vec![made[1].0.clone()],
        ),
        (vec!["--kind", "failed"], vec![]),
        (vec!["--until", "1h"], vec![]),
    ];
    for (filter, expected) in &cases {
        for place in [["--mount", mnt_arg], ["--repo", repo_arg]] {
            let mut args = vec!["points", "db"];
            args.extend(place);
            args.extend(filter.iter().copied());
            let got = cairn_json(work, &args);
            let got: Vec<&str> = got["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(&got, expected, "{args:?}");
        }
    }
    for place in [["--mount", mnt_arg], ["--repo", repo_arg]] {
        let mut args = vec!["points", "db", "--kind", "failed"];
        args.extend(place);
        let got = cairn_json(work, &args);
        let f = got["failed"].as_array().unwrap();
        assert_eq!(f.len(), 1, "{got}");
        assert_eq!(f[0]["job"], failed);
        assert_eq!(f[0]["instance"], "db");
        assert_eq!(f[0]["error"], "source path /srv/db is gone");
        let (ok, out, _) = cairn(work, &args);
        assert!(ok && out.contains("source path /srv/db is gone"), "{out}");
    }
    drop(guard);
}

fn job_dir(mnt: &Path, id: u64) -> PathBuf {
    mnt.join(format!(".cairn/jobs/{id}"))
}

#[test]
fn jobs_are_deleted_with_rm_and_the_cli_but_not_while_queued_or_running_and_history_survives_a_restart(
) {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let small = work.join("small");
    SourceTree::new(&small).file("f.txt", b"small");
    let big = work.join("big");
    let tree = SourceTree::new(&big);
    for i in 0..10 {
        tree.file(&format!("part-{i:02}.bin"), &noise(700 + i, 30_000_000));
    }
    let (repo, catalog) = repo_with_default_catalog(work);
    let mnt = work.join("mnt");
    let guard = MountGuard::new(
        Service::start(repo, catalog.clone(), 2).unwrap(),
        &mnt,
        LIMIT,
    );
    let ctl = mnt.join(".cairn/ctl");
    let mnt_arg = mnt.to_str().unwrap();
    for (name, path) in [("small", &small), ("big", &big)] {
        request(
            &ctl.join("instance"),
            &format!("add name={name} path={}\n", path.display()),
        )
        .unwrap();
    }
    let ok_job = job_of(&request(&ctl.join("snapshot"), "instance=small\n").unwrap());
    assert_eq!(wait_job_file(&mnt, ok_job, LIMIT)["state"], "succeeded");
    let mut failed = Vec::new();
    for _ in 0..3 {
        let id = job_of(
            &request(
                &ctl.join("restore"),
                "instance=small point=latest target=/no/such/dir/x\n",
            )
            .unwrap(),
        );
        assert_eq!(wait_job_file(&mnt, id, LIMIT)["state"], "failed");
        failed.push(id);
    }

    // rm -r of a finished job: gone, and an event. A plain rmdir of a job that still
    // shows its files is ENOTEMPTY; unlinking one file hides only that file.
    let err = std::fs::remove_dir(job_dir(&mnt, failed[0])).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
    std::fs::remove_file(job_dir(&mnt, failed[0]).join("status")).unwrap();
    let left: Vec<String> = std::fs::read_dir(job_dir(&mnt, failed[0]))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["log"]);
    let (ok, _, err) = run(
        60,
        "rm",
        &["-r", job_dir(&mnt, failed[0]).to_str().unwrap()],
    );
    assert!(ok, "rm -r: {err}");
    assert!(!job_dir(&mnt, failed[0]).exists());
    let (ok, _, err) = run(
        60,
        "rm",
        &["-r", job_dir(&mnt, failed[1]).to_str().unwrap()],
    );
    assert!(ok, "rm -r: {err}");
    // cairn jobs delete.
    let (ok, out, err) = cairn(
        work,
        &["jobs", "delete", &failed[2].to_string(), "--mount", mnt_arg],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("deleted job {}", failed[2])));
    let (ok, _, err) = cairn(work, &["jobs", "delete", "9999", "--mount", mnt_arg]);
    assert!(!ok && err.contains("no job 9999"), "{err}");
    let listed = |v: &Value| -> Vec<u64> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_u64().unwrap_or_else(|| panic!("{v}")))
            .collect()
    };
    assert_eq!(
        listed(&cairn_json(work, &["jobs", "--mount", mnt_arg])),
        vec![ok_job]
    );
    let deleted = cairn_json(
        work,
        &["events", "--mount", mnt_arg, "--kind", "job-deleted"],
    );
    let deleted: Vec<u64> = deleted["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["uid"], 0);
            e["job"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(deleted, failed);

    // A running job and one queued behind it (same instance) cannot be deleted.
    let running = job_of(&request(&ctl.join("snapshot"), "instance=big\n").unwrap());
    let queued = job_of(&request(&ctl.join("snapshot"), "instance=big\n").unwrap());
    let status = |id: u64| -> Value {
        serde_json::from_slice(&std::fs::read(job_dir(&mnt, id).join("status")).unwrap()).unwrap()
    };
    let start = std::time::Instant::now();
    while status(running)["state"] != "running" {
        assert!(start.elapsed() < LIMIT, "the big snapshot never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    for id in [queued, running] {
        let (ok, _, err) = run(60, "rm", &["-r", job_dir(&mnt, id).to_str().unwrap()]);
        assert!(!ok && err.contains("busy"), "rm -r of live job {id}: {err}");
        let err = std::fs::remove_dir(job_dir(&mnt, id)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
        let (ok, _, err) = cairn(
            work,
            &["jobs", "delete", &id.to_string(), "--mount", mnt_arg],
        );
        assert!(!ok && err.contains("queued or running"), "{err}");
        assert!(job_dir(&mnt, id).join("status").is_file(), "still there");
    }
    assert_eq!(
        status(queued)["state"],
        "queued",
        "(the big snapshot ended too soon)"
    );
    for id in [queued, running] {
        request(&ctl.join("cancel"), &format!("job={id}\n")).unwrap();
    }
    for id in [queued, running] {
        let s = wait_job_file(&mnt, id, LIMIT);
        assert_eq!(s["state"], "cancelled", "{s}");
    }
    let events_before = std::fs::read_to_string(mnt.join(".cairn/events")).unwrap();
    drop(guard);

    // A restart: jobs and events are still there; a job a crashed daemon left running
    // shows interrupted, with its event.
    drop(catalog);
    let (repo, catalog) = reopen(work);
    let stuck = catalog
        .insert_job(
            "snapshot",
            Some("small"),
            "running",
            r#"{"instance":"small","label":null}"#,
            cairn::model::now_ns(),
            Some(1000),
        )
        .unwrap();
    let guard = MountGuard::new(Service::start(repo, catalog, 1).unwrap(), &mnt, LIMIT);
    let jobs = cairn_json(work, &["jobs", "--mount", mnt_arg]);
    assert_eq!(listed(&jobs), vec![ok_job, running, queued, stuck]);
    let states: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec!["succeeded", "cancelled", "cancelled", "interrupted"]
    );
    let events = std::fs::read_to_string(mnt.join(".cairn/events")).unwrap();
    assert!(events.starts_with(&events_before), "the trail is kept");
    let interrupted = cairn_json(
        work,
        &["events", "--mount", mnt_arg, "--kind", "job-interrupted"],
    );
    let interrupted = interrupted["events"].as_array().unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0]["job"], stuck);
    assert_eq!(interrupted[0]["uid"], 1000, "who asked for the job");
    // Finished now, so it can be deleted.
    let (ok, out, err) = cairn(
        work,
        &["jobs", "delete", &stuck.to_string(), "--mount", mnt_arg],
    );
    assert!(ok, "{out}{err}");
    assert!(!job_dir(&mnt, stuck).exists());
    drop(guard);
}

#[test]
fn catalog_rebuild_keeps_the_job_history_and_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let src = work.join("src");
    SourceTree::new(&src).file("a.txt", b"kept history");
    let (repo, catalog) = repo_with_default_catalog(work);
    let repo_arg = work.join("scratch/repo").to_str().unwrap().to_string();
    let service = Service::start(repo, catalog.clone(), 1).unwrap();
    service
        .submit(
            "instance",
            &format!("add name=db path={}", src.display()),
            1000,
        )
        .unwrap();
    let snap = job_of(&service.submit("snapshot", "instance=db", 1000).unwrap());
    assert_eq!(wait_job(&service, snap)["state"], "succeeded");
    let failing = job_of(
        &service
            .submit(
                "restore",
                "instance=db point=latest target=/no/such/dir/x",
                1000,
            )
            .unwrap(),
    );
    assert_eq!(wait_job(&service, failing)["state"], "failed");
    service.shutdown();
    drop(service);
    let jobs = catalog.jobs().unwrap();
    let events = catalog.events().unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(events.len() >= 3, "{events:?}");
    drop(catalog);

    let rebuilt = cairn_json(work, &["catalog", "rebuild", &repo_arg]);
    assert_eq!(rebuilt["points"], 1, "{rebuilt}");

    let (_repo, catalog) = reopen(work);
    assert_eq!(catalog.jobs().unwrap(), jobs);
    assert_eq!(catalog.events().unwrap(), events);
    assert_eq!(catalog.points(Some("db")).unwrap().len(), 1);
}
