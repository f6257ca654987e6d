//! `ctl/forget` and `ctl/prune` through a real mount: refusals fail the write and leave
//! no job and no event; accepted requests run as jobs (forget shows its deleting phase),
//! the point leaves the mount, prune shrinks the repository, what remains is intact; in
//! the daemon a prune job runs alone.

use std::path::Path;
use std::time::Duration;

use cairn::repo::Repository;
use cairn::service::Service;
use cairn::store::{Location, Store};

use super::prune::{assert_intact, opts, repo_bytes, sources};
use crate::support::mount::{fuse_available, job_of, request, run, wait_job_file, MountGuard};
use crate::support::repos::TestRepo;

const LIMIT: Duration = Duration::from_secs(300);

fn events(mnt: &Path) -> Vec<String> {
    std::fs::read_to_string(mnt.join(".cairn/events"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn job(mnt: &Path, file: &str, text: &str) -> serde_json::Value {
    let reply = request(&mnt.join(".cairn/ctl").join(file), text).unwrap();
    wait_job_file(mnt, job_of(&reply), LIMIT)
}

#[test]
fn forget_and_prune_through_control_files() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(&Location::Local(work.path().join("repo"))).unwrap();
    let t = TestRepo::open_catalog(Repository::init(store, &opts()).unwrap(), work.path());
    let srcs = sources(work.path());
    let live = work.path().join("src");
    let mnt = work.path().join("mnt");
    let service = Service::start(t.repo.clone(), t.catalog.clone(), 2).unwrap();
    let guard = MountGuard::new(service, &mnt, LIMIT);
    let ctl = mnt.join(".cairn/ctl");

    // Three manual points of `db`, of s0, s1, s2 in turn.
    let mut names = Vec::new();
    for (i, s) in srcs.iter().enumerate() {
        let _ = std::fs::remove_dir_all(&live);
        let (ok, _, err) = run(
            60,
            "cp",
            &["-a", s.to_str().unwrap(), live.to_str().unwrap()],
        );
        assert!(ok, "cp: {err}");
        if i == 0 {
            let reply = request(
                &ctl.join("instance"),
                &format!("add name=db path={}\n", live.display()),
            )
            .unwrap();
            assert!(reply.starts_with("ok"), "{reply}");
        }
        let status = job(&mnt, "snapshot", "instance=db\n");
        assert_eq!(status["state"], "succeeded", "{status}");
        names.push(status["result"]["point"].as_str().unwrap().to_string());
    }

    // Refusals: nothing starts, nothing is recorded.
    let before = events(&mnt);
    let forget = ctl.join("forget");
    let refused = |text: &str, errno: i32| {
        let (e, reply) = request(&forget, text).unwrap_err();
        assert_eq!(e, errno, "{text}: {reply}");
        reply
    };
    let reply = refused(&format!("instance=db point={}\n", names[1]), libc::EPERM);
    assert!(reply.contains("manual=true"), "{reply}");
    refused(
        "instance=db point=2020-01-01T000000Z manual=true\n",
        libc::ENOENT,
    );
    refused("instance=db manual=true\n", libc::EINVAL);
    let (e, _) = request(&ctl.join("prune"), "dry-run=perhaps\n").unwrap_err();
    assert_eq!(e, libc::EINVAL);
    assert_eq!(events(&mnt), before);
    assert!(mnt.join("db").join(&names[1]).is_dir());

    // Forget s1's point: a job in its deleting phase; the point leaves the mount.
    let status = job(
        &mnt,
        "forget",
        &format!("instance=db point={} manual=true\n", names[1]),
    );
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(status["kind"], "forget");
    assert_eq!(status["result"]["removed"][0], names[1].as_str());
    assert_eq!(status["progress"]["files"], 1);
    let log =
        std::fs::read_to_string(mnt.join(format!(".cairn/jobs/{}/log", status["id"]))).unwrap();
    assert!(log.contains("phase: deleting"), "{log}");
    let listed: Vec<String> = std::fs::read_dir(mnt.join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!listed.contains(&names[1]), "{listed:?}");
    assert!(listed.contains(&names[0]) && listed.contains(&names[2]));

    // A dry run changes nothing; a prune without grace frees the space at once.
    let size = repo_bytes(&t);
    let dry = job(&mnt, "prune", "dry-run=true\n");
    assert_eq!(dry["state"], "succeeded", "{dry}");
    assert_eq!(dry["result"]["dry_run"], true);
    assert_eq!(dry["result"]["packs_condemned"], 2, "{dry}");
    assert_eq!(repo_bytes(&t), size);
    let pruned = job(&mnt, "prune", "grace-hours=0\n");
    assert_eq!(pruned["state"], "succeeded", "{pruned}");
    assert_eq!(pruned["result"]["packs_deleted"], 2, "{pruned}");
    let after = repo_bytes(&t);
    eprintln!("prune through the mount: {size} B -> {after} B");
    assert!(after + 700_000 < size, "{after} vs {size}");

    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mnt.join(".cairn/stats")).unwrap()).unwrap();
    assert_eq!(stats["forgotten_points"], 1, "{stats}");
    assert_eq!(stats["prune_plans_pending"], 0, "{stats}");
    let recorded: Vec<serde_json::Value> = events(&mnt)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_kind = |k: &str| -> Vec<&serde_json::Value> {
        recorded.iter().filter(|e| e["kind"] == k).collect()
    };
    assert_eq!(of_kind("forget-requested").len(), 1, "{recorded:?}");
    assert_eq!(of_kind("prune-requested").len(), 2, "{recorded:?}");
    assert_eq!(of_kind("prune-completed").len(), 2, "{recorded:?}");
    let deleted = of_kind("point-deleted");
    assert_eq!(deleted.len(), 1, "{recorded:?}");
    assert_eq!(deleted[0]["point"], names[1].as_str());
    assert_eq!(deleted[0]["instance"], "db");
    assert_eq!(deleted[0]["job"], status["id"]);
    assert_eq!(deleted[0]["outcome"]["by"], "forget");
    assert!(deleted[0]["uid"].is_number(), "{}", deleted[0]);
    let ends: Vec<&serde_json::Value> = recorded
        .iter()
        .filter(|e| e["outcome"]["job_kind"] == "forget")
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["kind"], "job-succeeded");
    drop(guard);
    let points = [
        (names[0].as_str(), srcs[0].as_path()),
        (names[2].as_str(), srcs[2].as_path()),
    ];
    assert_intact(&t, work.path(), &points);
}

#[test]
fn a_prune_job_runs_alone_in_the_daemon() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(&Location::Local(work.path().join("repo"))).unwrap();
    let t = TestRepo::open_catalog(Repository::init(store, &opts()).unwrap(), work.path());
    let srcs = sources(work.path());
    let service = Service::start(t.repo.clone(), t.catalog.clone(), 3).unwrap();
    for (name, src) in [("a", &srcs[0]), ("b", &srcs[1])] {
        let add = format!("add name={name} path={}", src.display());
        service.submit("instance", &add, 0).unwrap();
    }
    let id = |reply: String| reply.trim().strip_prefix("job=").unwrap().parse().unwrap();
    let first = id(service.submit("snapshot", "instance=a", 0).unwrap());
    let prune = id(service.submit("prune", "grace-hours=0", 0).unwrap());
    let last = id(service.submit("snapshot", "instance=b", 0).unwrap());
    let [s1, sp, s2] = [first, prune, last].map(|j| crate::namespace::wait_job(&service, j));
    service.shutdown();
    for s in [&s1, &sp, &s2] {
        assert_eq!(s["state"], "succeeded", "{s}");
    }
    let at = |s: &serde_json::Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(s[k].as_str().unwrap()).unwrap()
    };
    assert!(at(&sp, "started") >= at(&s1, "finished"), "{sp} {s1}");
    assert!(at(&s2, "started") >= at(&sp, "finished"), "{s2} {sp}");
}
