//! Point names (issue 10, item 16): unique in their instance across machines (each name
//! is claimed with a conditional create before its manifest), and honest — a name's stamp
//! is the second the point was taken, a taken name gets a `-N` suffix instead of a stamp
//! moved into the future.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cairn::engine::{backup, BackupRequest, CancelToken, NoProgress, Progress};
use cairn::model::manifest::point_name;
use cairn::model::PointKind;
use cairn::service::Service;

use crate::support::fixture::SourceTree;
use crate::support::repos::{second_machine, TestRepo};

/// Holds a backup before its manifest is written until the other one got there too.
struct MeetBeforeManifest(Arc<Barrier>);

impl Progress for MeetBeforeManifest {
    fn phase(&self, name: &str) {
        if name == "finishing uploads" {
            self.0.wait();
        }
    }
}

const T: i64 = 1_795_000_000_000_000_000;

fn labelled(src: &Path, time_ns: i64) -> BackupRequest {
    let mut req = BackupRequest::new("db", vec![src.to_path_buf()]);
    req.label = Some("nightly".into());
    req.time_ns = Some(time_ns);
    req
}

/// Two machines back up one instance with one label in one second, both having read the
/// repository before either wrote: two points, two names.
fn two_machines_one_second(a: TestRepo, work: &Path) {
    let b = second_machine(a.repo.store(), &work.join("machine-b"));
    let (src_a, src_b) = (work.join("src-a"), work.join("src-b"));
    SourceTree::new(&src_a).file("f", b"machine a");
    SourceTree::new(&src_b).file("f", b"machine b");
    let meet = Arc::new(Barrier::new(2));
    let names: Vec<String> = std::thread::scope(|s| {
        let runs = [(&a, &src_a, T), (&b, &src_b, T + 1_000_000)].map(|(t, src, time)| {
            let meet = meet.clone();
            s.spawn(move || {
                let req = labelled(src, time);
                let p = MeetBeforeManifest(meet);
                backup(&t.repo, &t.catalog, &req, &p, &CancelToken::new())
                    .unwrap()
                    .manifest
                    .name
            })
        });
        runs.map(|h| h.join().unwrap()).into_iter().collect()
    });
    let base = point_name(T, PointKind::Manual, Some("nightly"));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, vec![base.clone(), format!("{base}-2")], "{names:?}");
    for t in [&a, &b] {
        t.catalog.refresh(&t.repo).unwrap();
        let listed: Vec<String> = t
            .catalog
            .points(Some("db"))
            .unwrap()
            .into_iter()
            .map(|p| p.manifest.name)
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_ne!(listed[0], listed[1], "{listed:?}");
    }
}

#[test]
fn two_machines_in_one_second_get_two_names_on_a_local_repository() {
    let dir = tempfile::tempdir().unwrap();
    two_machines_one_second(TestRepo::local(dir.path()), dir.path());
}

#[test]
fn two_machines_in_one_second_get_two_names_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let Some(t) = TestRepo::s3(dir.path(), "point-names") else {
        return;
    };
    two_machines_one_second(t, dir.path());
}

#[test]
fn points_of_one_second_keep_their_stamp_and_get_a_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("src");
    let tree = SourceTree::new(&src);
    let base = point_name(T, PointKind::Manual, Some("nightly"));
    let mut names = Vec::new();
    for i in 0..5u8 {
        tree.file("f", &[i]);
        let req = labelled(&src, T + i64::from(i) * 1_000_000);
        names.push(
            backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
                .unwrap()
                .manifest
                .name,
        );
    }
    let expected: Vec<String> = std::iter::once(base.clone())
        .chain((2..=5).map(|n| format!("{base}-{n}")))
        .collect();
    assert_eq!(names, expected);
}

fn wait_done(service: &Service, id: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&service.job_status(id).expect("job")).unwrap();
        if !["queued", "running"].contains(&status["state"].as_str().unwrap_or_default()) {
            return status;
        }
        assert!(Instant::now() < deadline, "job {id}: {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn queued_snapshots_are_named_for_the_second_they_were_taken_never_a_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src: PathBuf = dir.path().join("src");
    SourceTree::new(&src).file("f", b"small");
    let service = Service::start(t.repo, t.catalog, 1).unwrap();
    service
        .submit(
            "instance",
            &format!("add name=db path={}", src.display()),
            0,
        )
        .unwrap();
    let ids: Vec<u64> = (0..8)
        .map(|_| {
            let reply = service.submit("snapshot", "instance=db name=q", 0).unwrap();
            reply.trim().trim_start_matches("job=").parse().unwrap()
        })
        .collect();
    for id in ids {
        let status = wait_done(&service, id);
        assert_eq!(status["state"], "succeeded", "{status}");
        let name = status["result"]["point"].as_str().unwrap().to_string();
        let finished = chrono::DateTime::parse_from_rfc3339(status["finished"].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        // The stamp is at most the second the job finished in (a name in the future
        // would sort after points taken later).
        let latest_honest = point_name(finished, PointKind::Manual, Some("q"));
        assert!(
            name[..18] <= latest_honest[..18],
            "{name} is named after {latest_honest}, when its job finished"
        );
    }
    let names: Vec<String> = service
        .points("db")
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), 8, "{names:?}");
    service.shutdown();
}
