//! Policies as requests: validation, quotas, bindings, write-once, events, the view under
//! `.cairn/policies/`, a real FUSE mount, and two daemons sharing policies on S3.

use std::time::{Duration, Instant};

use cairn::service::Service;

use crate::support::mount::{fuse_available, request, MountGuard};
use crate::support::repos::TestRepo;
use crate::support::schedule::Rig;

const CREATE: &str = "create name=nightly times=03:00,15:00 weekdays=mon,wed,fri keep-days=7";

fn refused(rig: &Rig, text: &str) -> (i32, String) {
    let e = rig
        .service
        .submit("policy", text, 0)
        .expect_err(&format!("accepted: {text}"));
    (e.errno, e.message)
}

/// Keys of the objects under `prefix` in the repository.
fn objects(service: &Service, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = service
        .repo()
        .store()
        .list(prefix)
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    keys
}

#[test]
fn bad_requests_fail_and_change_nothing() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    rig.ok("policy", CREATE);
    let events = rig.service.events_text();
    let before = rig.service.policy_json("nightly").unwrap();
    for (text, errno, reason) in [
        (
            "create name=x times=03:00,03:59 weekdays=mon keep-days=1",
            libc::EINVAL,
            "1 h apart",
        ),
        (
            "create name=x times=00:30,23:45 weekdays=mon keep-days=1",
            libc::EINVAL,
            "across midnight",
        ),
        (
            "create name=x times=03:00 every-days=0 keep-days=1",
            libc::EINVAL,
            "1 to 30",
        ),
        (
            "create name=x times=03:00 every-days=1 keep-count=100000",
            libc::EINVAL,
            "1 to 99999",
        ),
        (
            "create name=x times=03:00 every-days=1 keep-days=1 tz=Europe/Nowhere",
            libc::EINVAL,
            "time zone",
        ),
        (
            "create name=x times=03:00 every-days=1",
            libc::EINVAL,
            "keep",
        ),
        (
            "create name=bad.name times=03:00 every-days=1 keep=forever",
            libc::EINVAL,
            "policy name",
        ),
        (CREATE, libc::EEXIST, "exists"),
        (
            "update name=nightly keep-days=0",
            libc::EINVAL,
            "1 to 99999",
        ),
        (
            "update name=nightly times=03:00,03:30",
            libc::EINVAL,
            "1 h apart",
        ),
        ("update name=ghost keep=forever", libc::ENOENT, "no policy"),
        (
            "bind name=nightly instance=ghost",
            libc::ENOENT,
            "no instance",
        ),
        ("bind name=ghost instance=db", libc::ENOENT, "no policy"),
        ("unbind instance=db", libc::ENOENT, "not bound"),
        ("delete name=ghost", libc::ENOENT, "no policy"),
        ("enable name=ghost", libc::ENOENT, "no policy"),
    ] {
        let (e, message) = refused(&rig, text);
        assert_eq!(e, errno, "{text}: {message}");
        assert!(message.contains(reason), "{text}: {message}");
    }
    assert_eq!(rig.service.policy_names(), ["nightly"]);
    assert_eq!(objects(&rig.service, "policies/"), ["policies/nightly"]);
    assert_eq!(rig.service.policy_json("nightly").unwrap(), before);
    assert_eq!(
        rig.service.events_text(),
        events,
        "refused requests record no event"
    );
}

#[test]
fn quotas_are_enforced_with_clear_errors() {
    let rig = Rig::new("2026-11-22T00:00:00Z");
    rig.ok(
        "instance",
        &format!("add name=db2 path={}", rig.src.display()),
    );
    // Defaults.
    let reply = rig.ok("policy", "settings");
    assert!(
        reply.contains("max-policies=32") && reply.contains("max-instances-per-policy=64"),
        "{reply}"
    );
    rig.ok(
        "policy",
        "settings max-policies=2 max-instances-per-policy=1",
    );
    rig.ok(
        "policy",
        "create name=a times=03:00 every-days=1 keep=forever",
    );
    rig.ok(
        "policy",
        "create name=b times=03:00 every-days=1 keep=forever",
    );
    let (e, message) = refused(&rig, "create name=c times=03:00 every-days=1 keep=forever");
    assert_eq!(e, libc::EDQUOT);
    assert!(message.contains("max-policies=2"), "{message}");
    assert_eq!(
        objects(&rig.service, "policies/"),
        ["policies/a", "policies/b"]
    );

    rig.ok("policy", "bind name=a instance=db");
    let (e, message) = refused(&rig, "bind name=a instance=db2");
    assert_eq!(e, libc::EDQUOT);
    assert!(message.contains("max-instances-per-policy=1"), "{message}");
    let again = rig.ok("policy", "bind name=a instance=db");
    assert!(again.contains("already bound"), "{again}");

    // Raised quotas apply at once.
    rig.ok(
        "policy",
        "settings max-policies=3 max-instances-per-policy=2",
    );
    rig.ok(
        "policy",
        "create name=c times=03:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=a instance=db2");
    assert_eq!(
        rig.service.policy("a").unwrap().instances.len(),
        2,
        "both bound"
    );
}

#[test]
fn binding_moves_and_unbinding_or_deleting_keeps_points() {
    let rig = Rig::new("2026-11-22T10:00:00Z");
    rig.ok(
        "policy",
        "create name=a times=03:00 every-days=1 keep=forever",
    );
    rig.ok(
        "policy",
        "create name=b times=04:00 every-days=1 keep-count=5",
    );
    rig.ok("policy", "bind name=a instance=db");
    let reply = rig.ok("policy", "bind name=b instance=db");
    assert!(reply.contains("moved from policy=a"), "{reply}");
    assert!(rig.service.policy("a").unwrap().instances.is_empty());
    assert_eq!(rig.service.bound_policy("db").unwrap().name, "b");
    rig.ok("policy", "run-now name=b");
    rig.service.wait_idle();
    let points = rig.points("db");
    assert_eq!(points, ["2026-11-22T100000Z-auto"]);

    rig.ok("policy", "unbind instance=db");
    assert!(rig.service.bound_policy("db").is_none());
    rig.ok("policy", "delete name=b");
    assert!(rig.service.policy("b").is_none());
    assert_eq!(objects(&rig.service, "policies/"), ["policies/a"]);
    assert_eq!(rig.points("db"), points, "points stay");
}

#[test]
fn every_accepted_request_is_an_event() {
    let rig = Rig::new("2026-11-22T10:00:00Z");
    for text in [
        CREATE,
        "update name=nightly keep=forever",
        "bind name=nightly instance=db",
        "disable name=nightly",
        "enable name=nightly",
        "run-now name=nightly",
        "unbind instance=db",
        "delete name=nightly",
    ] {
        rig.service
            .submit("policy", text, 1000)
            .unwrap_or_else(|e| panic!("{text}: {}", e.message));
    }
    rig.service.wait_idle();
    let lines: Vec<serde_json::Value> = rig
        .service
        .events_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| {
            let k = e["kind"].as_str().unwrap();
            (k.starts_with("policy-") || k.starts_with("instance-")) && k != "instance-added"
        })
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "policy-created",
            "policy-updated",
            "instance-bound",
            "policy-disabled",
            "policy-enabled",
            "policy-run-requested",
            "instance-unbound",
            "policy-deleted"
        ]
    );
    for e in &lines {
        assert_eq!(e["uid"], 1000);
        assert_eq!(e["outcome"]["ok"], true, "{e}");
        assert!(
            e["request"].as_str().unwrap().contains("nightly") || e["kind"] == "instance-unbound"
        );
    }
    let ends: Vec<serde_json::Value> = rig
        .service
        .events_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["outcome"]["job_kind"] == "snapshot")
        .collect();
    assert_eq!(ends.len(), 1, "the run-now job: {ends:?}");
    assert_eq!(
        ends[0]["uid"],
        serde_json::Value::Null,
        "the scheduler ran it"
    );
    assert_eq!(ends[0]["request"]["schedule"]["trigger"], "run-now");
}

#[test]
fn write_once_protects_scheduled_points_until_retention_ends() {
    let rig = Rig::new("2026-11-22T10:00:00Z");
    rig.ok("policy", "settings write-once=true");
    rig.ok(
        "policy",
        "create name=p times=03:00 every-days=1 keep-count=2",
    );
    rig.ok(
        "policy",
        "create name=loose times=03:00 every-days=1 keep-count=1",
    );
    rig.ok(
        "policy",
        "create name=safe times=03:00 every-days=1 keep=forever",
    );
    rig.ok("policy", "bind name=p instance=db");
    for _ in 0..3 {
        rig.ok("policy", "run-now name=p");
        rig.service.wait_idle();
        rig.clock.advance(Duration::from_secs(3600));
    }
    // Retention itself still expires what the policy lets go.
    assert_eq!(
        rig.points("db"),
        ["2026-11-22T110000Z-auto", "2026-11-22T120000Z-auto"]
    );
    let e = rig
        .service
        .check_write_once("db", &["2026-11-22T110000Z-auto".into()])
        .unwrap_err();
    assert_eq!(e.errno, libc::EPERM);
    assert!(e.message.contains("write-once"), "{}", e.message);
    rig.ok("snapshot", "instance=db name=by-hand");
    rig.service.wait_idle();
    let manual = rig.points("db").pop().unwrap();
    assert!(manual.ends_with("-by-hand"));
    rig.service
        .check_write_once("db", std::slice::from_ref(&manual))
        .unwrap();

    // The forget path asks the same question.
    let e = rig
        .service
        .submit("forget", "instance=db point=2026-11-22T120000Z-auto", 0)
        .unwrap_err();
    assert_eq!(e.errno, libc::EPERM);
    assert!(e.message.contains("policy `p`"), "{}", e.message);
    let e = rig
        .service
        .submit("forget", "instance=db point=latest manual=true", 0)
        .expect("a manual point is not write-once");
    assert!(e.starts_with("job="), "{e}");
    rig.service.wait_idle();
    assert!(!rig.points("db").contains(&manual));
    assert_eq!(rig.points("db").len(), 2, "the scheduled points stay");

    for (text, reason) in [
        ("update name=p keep-count=1", "keep less"),
        ("update name=p keep-days=30", "keep less"),
        ("unbind instance=db", "may not leave"),
        ("delete name=p", "may not be deleted"),
        ("bind name=loose instance=db", "keeps at least"),
        ("settings write-once=false", "cannot be turned off"),
    ] {
        let (e, message) = refused(&rig, text);
        assert_eq!(e, libc::EPERM, "{text}: {message}");
        assert!(message.contains(reason), "{text}: {message}");
    }
    rig.ok("policy", "update name=p keep-count=3");
    rig.ok("policy", "bind name=safe instance=db");
    assert_eq!(rig.service.bound_policy("db").unwrap().name, "safe");
}

#[test]
fn the_policies_directory_shows_each_policy_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let service = Service::start(t.repo, t.catalog, 1).unwrap();
    let ns_view = cairn::fs::Namespace::new(service.clone(), 1 << 20);
    service
        .submit(
            "policy",
            "create name=hourly times=00:00,01:00,02:00 every-days=1 keep-count=24 tz=Europe/Berlin",
            0,
        )
        .unwrap();
    let meta = ns_view
        .lookup(cairn::fs::namespace::ROOT, b".cairn")
        .unwrap();
    let dir_attr = ns_view.lookup(meta.ino, b"policies").unwrap();
    let names: Vec<Vec<u8>> = ns_view
        .readdir(dir_attr.ino)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, [b"hourly".to_vec()]);
    let file = ns_view.lookup(dir_attr.ino, b"hourly").unwrap();
    let (fh, _) = ns_view.open(file.ino, false, 0).unwrap();
    let text = ns_view.read(fh, 0, 1 << 20).unwrap();
    ns_view.release(fh);
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(v["name"], "hourly");
    assert_eq!(v["times"], serde_json::json!(["00:00", "01:00", "02:00"]));
    assert_eq!(v["keep"], serde_json::json!({"count": 24}));
    assert_eq!(v["time_zone"], "Europe/Berlin");
    assert_eq!(v["enabled"], true);
    assert!(v["next_run"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(
        ns_view.open(file.ino, true, 0).unwrap_err(),
        libc::EROFS,
        "read-only"
    );
    service.shutdown();
}

#[test]
fn a_policy_created_through_a_fuse_mount_shows_under_policies() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let mnt = dir.path().join("mnt");
    let guard = MountGuard::new(
        Service::start(t.repo, t.catalog, 1).unwrap(),
        &mnt,
        Duration::from_secs(120),
    );
    let ctl = mnt.join(".cairn/ctl/policy");
    let reply = request(&ctl, &format!("{CREATE}\n")).unwrap();
    assert!(reply.starts_with("ok policy=nightly"), "{reply}");
    let (errno, reply) = request(
        &ctl,
        "create name=other times=03:00,03:10 weekdays=mon keep-days=1\n",
    )
    .unwrap_err();
    assert_eq!(errno, libc::EINVAL);
    assert!(
        reply.starts_with("error: ") && reply.contains("1 h apart"),
        "{reply}"
    );

    let listed: Vec<String> = std::fs::read_dir(mnt.join(".cairn/policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed, ["nightly"]);
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(mnt.join(".cairn/policies/nightly")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        v["days"],
        serde_json::json!({"weekdays": ["mon", "wed", "fri"]})
    );
    assert_eq!(v["keep"], serde_json::json!({"days": 7}));
    let events = std::fs::read_to_string(mnt.join(".cairn/events")).unwrap();
    assert!(events.contains("\"policy-created\""), "{events}");
    drop(guard);
}

#[test]
fn policies_live_in_the_repository_for_every_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = crate::support::repos::s3_store("policies") else {
        eprintln!("note: no S3 server outside CI; skipping");
        return;
    };
    let repo =
        cairn::repo::Repository::init(store.clone(), &crate::support::repos::fast_init(true))
            .unwrap();
    let first = TestRepo::open_catalog(repo, &dir.path().join("a"));
    let second = crate::support::repos::second_machine(&store, &dir.path().join("b"));
    let a = Service::start(first.repo, first.catalog, 1).unwrap();
    let b = Service::start(second.repo, second.catalog, 1).unwrap();
    a.submit("policy", CREATE, 0).unwrap();
    a.submit("policy", "settings write-once=true max-policies=5", 0)
        .unwrap();
    let start = Instant::now();
    while b.policy("nightly").is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "not seen");
        b.refresh().unwrap();
    }
    assert_eq!(b.policy("nightly"), a.policy("nightly"));
    assert!(b.policy_settings().write_once);
    assert_eq!(b.policy_settings().max_policies, 5);
    // The stored object is sealed: the policy's name is not readable in it.
    let raw = a.repo().store().get("policies/nightly").unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("weekdays"));
    a.shutdown();
    b.shutdown();
}
