//! The mount's namespace, driven without a kernel.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::fs::namespace::{EntryKind, ROOT};
use cairn::fs::Namespace;
use cairn::service::Service;

use crate::support::fixture::SourceTree;
use crate::support::repos::TestRepo;

pub fn wait_job(service: &Service, id: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&service.job_status(id).expect("job exists")).unwrap();
        let state = status["state"].as_str().unwrap_or_default().to_string();
        if !["queued", "running"].contains(&state.as_str()) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not finish: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn job_id(reply: &str) -> u64 {
    reply
        .trim()
        .strip_prefix("job=")
        .expect("a job reply")
        .parse()
        .unwrap()
}

/// Resolves a slash-separated path from the root of the namespace.
pub(crate) fn resolve(ns: &Namespace, path: &[u8]) -> u64 {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .fold(ROOT, |ino, name| {
            ns.lookup(ino, name)
                .unwrap_or_else(|e| panic!("lookup {:?}: errno {e}", String::from_utf8_lossy(name)))
                .ino
        })
}

pub(crate) fn read_all(ns: &Namespace, ino: u64) -> Vec<u8> {
    let (fh, _) = ns.open(ino, false, 0).unwrap();
    let mut out = Vec::new();
    loop {
        let chunk = ns.read(fh, out.len() as u64, 128 * 1024).unwrap();
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    ns.release(fh);
    out
}

fn started(dir: &Path) -> (Service, Arc<Namespace>) {
    let t = TestRepo::local(dir);
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let ns = Arc::new(Namespace::new(service.clone(), 64 << 20));
    (service, ns)
}

#[test]
fn instances_points_and_files_appear_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 2 << 20);
    let (service, ns) = started(dir.path());
    let names: Vec<_> = ns
        .readdir(ROOT)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b".cairn".to_vec()]);

    service
        .submit(
            "instance",
            &format!("add name=db path={}", src.display()),
            0,
        )
        .unwrap();
    let job = job_id(
        &service
            .submit("snapshot", "instance=db name=first", 0)
            .unwrap(),
    );
    let status = wait_job(&service, job);
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(status["kind"], "snapshot");
    let point = status["result"]["point"].as_str().unwrap().to_string();
    assert!(point.ends_with("-first") && !point.contains(':'));

    let db = ns.lookup(ROOT, b"db").unwrap();
    assert_eq!(db.kind, EntryKind::Dir);
    let entries: Vec<_> = ns
        .readdir(db.ino)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect();
    assert_eq!(entries, vec!["latest".to_string(), point.clone()]);
    let latest = ns.lookup(db.ino, b"latest").unwrap();
    assert_eq!(latest.kind, EntryKind::Symlink);
    assert_eq!(ns.readlink(latest.ino).unwrap(), point.as_bytes());

    // Files read back byte for byte with their metadata; inode numbers are stable.
    let big = resolve(&ns, format!("db/{point}/data/big.bin").as_bytes());
    assert_eq!(
        read_all(&ns, big),
        std::fs::read(src.join("data/big.bin")).unwrap()
    );
    assert_eq!(
        resolve(&ns, format!("db/{point}/data/big.bin").as_bytes()),
        big
    );
    let sparse = ns
        .getattr(resolve(
            &ns,
            format!("db/{point}/data/sparse.img").as_bytes(),
        ))
        .unwrap();
    assert_eq!(sparse.size, 128 << 20);
    assert!(
        sparse.blocks * 512 < 1 << 20,
        "holes are not counted as allocated"
    );
    let secret = ns
        .getattr(resolve(&ns, format!("db/{point}/secret/key").as_bytes()))
        .unwrap();
    assert_eq!((secret.perm, secret.uid, secret.gid), (0o600, 1234, 5678));
    assert!(secret.immutable);
    let a = resolve(&ns, format!("db/{point}/links/original").as_bytes());
    let b = resolve(&ns, format!("db/{point}/links/second").as_bytes());
    assert_eq!(a, b, "hard links share an inode");
    assert_eq!(ns.getattr(a).unwrap().nlink, 3);
    let dangling = resolve(&ns, format!("db/{point}/dangling").as_bytes());
    assert_eq!(ns.readlink(dangling).unwrap(), b"/nonexistent/target");
    let x = resolve(&ns, format!("db/{point}/attrs/with-xattr").as_bytes());
    assert_eq!(
        ns.getxattr(x, b"user.cairn.test").unwrap(),
        b"value\0with nul"
    );
    assert!(ns
        .listxattr(x)
        .unwrap()
        .windows(b"user.empty\0".len())
        .any(|w| w == b"user.empty\0"));
    let odd = format!("db/{point}/names/")
        .into_bytes()
        .into_iter()
        .chain(b"bad-utf8-\xff\xfe".iter().copied())
        .collect::<Vec<_>>();
    assert_eq!(read_all(&ns, resolve(&ns, &odd)), b"non-utf8 name");
    // Points are read-only.
    assert_eq!(ns.open(big, true, 0).unwrap_err(), libc::EROFS);

    // The job and the request are visible under .cairn.
    let status_ino = resolve(&ns, format!(".cairn/jobs/{job}/status").as_bytes());
    let text = read_all(&ns, status_ino);
    assert!(std::str::from_utf8(&text)
        .unwrap()
        .contains("\"succeeded\""));
    let events = String::from_utf8(read_all(&ns, resolve(&ns, b".cairn/events"))).unwrap();
    assert_eq!(
        events.lines().count(),
        3,
        "instance add, snapshot request, job end:\n{events}"
    );
    assert!(events
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    service.shutdown();
}

#[test]
fn malformed_control_requests_fail_the_write_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::new(&src).file("a", b"a");
    let (service, ns) = started(dir.path());
    service
        .submit(
            "instance",
            &format!("add name=db path={}", src.display()),
            0,
        )
        .unwrap();
    let events_before = service.events_text();
    let jobs_before = service.job_ids();
    let ctl = |file: &str| resolve(&ns, format!(".cairn/ctl/{file}").as_bytes());
    let cases: &[(&str, &str, i32)] = &[
        ("snapshot", "instance=nope", libc::ENOENT),
        ("snapshot", "instance=db colour=red", libc::EINVAL),
        ("snapshot", "instance=\"db", libc::EINVAL),
        ("snapshot", "instance=db name=a:b", libc::EINVAL),
        ("snapshot", "", libc::EINVAL),
        (
            "restore",
            "instance=db point=latest target=relative/dir",
            libc::EINVAL,
        ),
        ("restore", "instance=db point=latest", libc::EINVAL),
        (
            "restore",
            "instance=db point=latest target=/tmp/x",
            libc::ENOENT,
        ),
        (
            "instance",
            "add name=x path=/definitely/missing",
            libc::ENOENT,
        ),
        ("instance", "add name=../x path=/tmp", libc::EINVAL),
        ("instance", "frobnicate name=x", libc::EINVAL),
        ("verify", "read-data=perhaps", libc::EINVAL),
        ("cancel", "job=999", libc::ENOENT),
        ("snapshot", "{\"instance\": [1, {}]}", libc::EINVAL),
    ];
    for (file, text, errno) in cases {
        let (fh, _) = ns.open(ctl(file), true, 0).unwrap();
        let err = ns.write(fh, 0, text.as_bytes(), 0).unwrap_err();
        assert_eq!(err.errno, *errno, "{file}: {text}: {}", err.message);
        let reply = ns.read(fh, 0, 4096).unwrap();
        assert!(
            reply.starts_with(b"error: "),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        ns.release(fh);
    }
    assert_eq!(service.job_ids(), jobs_before, "no job started");
    assert_eq!(
        service.events_text(),
        events_before,
        "no event for refused requests"
    );
    assert!(service.points("db").is_empty());
    // A good request through a read-write handle reads back the job id.
    let (fh, _) = ns.open(ctl("snapshot"), true, 0).unwrap();
    assert_eq!(ns.write(fh, 0, b"instance=db\n", 0).unwrap(), 12);
    let reply = String::from_utf8(ns.read(fh, 0, 100).unwrap()).unwrap();
    assert!(reply.starts_with("job="), "{reply}");
    // Control files are the owner's only.
    assert_eq!(
        ns.open(ctl("snapshot"), true, 4242).unwrap_err(),
        libc::EACCES
    );
    wait_job(&service, job_id(&reply));
    assert_eq!(service.points("db").len(), 1);
    service.shutdown();
}

#[test]
fn the_disk_cache_serves_blobs_and_a_damaged_entry_is_never_returned() {
    use cairn::engine::disk_cache::DiskCache;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let data = crate::support::fixture::noise(5, 3 << 20);
    SourceTree::new(&src).file("blob.bin", &data);
    let (service, _) = started(dir.path());
    service
        .submit(
            "instance",
            &format!("add name=db path={}", src.display()),
            0,
        )
        .unwrap();
    let job = job_id(&service.submit("snapshot", "instance=db", 0).unwrap());
    assert_eq!(wait_job(&service, job)["state"], "succeeded");
    let cache_dir = dir.path().join("blob-cache");
    let open_ns = || {
        Namespace::with_disk_cache(
            service.clone(),
            1 << 20,
            Some(DiskCache::open(&cache_dir, 64 << 20).unwrap()),
        )
    };

    let point = service.points("db").pop().unwrap().manifest.name;
    let path = format!("db/{point}/blob.bin");
    let ns = open_ns();
    let file = resolve(&ns, path.as_bytes());
    assert_eq!(read_all(&ns, file), data);
    let cached: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().flatten().collect();
    assert!(!cached.is_empty(), "blobs were cached on disk");
    // With every pack damaged, a new namespace still reads everything from the disk cache.
    let mut stack = vec![dir.path().join("repo/packs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let mut bytes = std::fs::read(e.path()).unwrap();
                for b in bytes.iter_mut().skip(8) {
                    *b ^= 0x5a;
                }
                std::fs::write(e.path(), bytes).unwrap();
            }
        }
    }
    let ns = open_ns();
    let file = resolve(&ns, path.as_bytes());
    assert_eq!(read_all(&ns, file), data);
    // A damaged cache entry is detected, dropped, and (packs being damaged) the read fails
    // instead of returning wrong bytes.
    // Only the data chunks (the tree is small and stays readable).
    for e in cached
        .iter()
        .filter(|e| e.metadata().unwrap().len() > 100_000)
    {
        let mut bytes = std::fs::read(e.path()).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(e.path(), bytes).unwrap();
    }
    let ns = open_ns();
    let file = resolve(&ns, path.as_bytes());
    let (fh, _) = ns.open(file, false, 0).unwrap();
    assert_eq!(ns.read(fh, 0, 4096).unwrap_err(), libc::EIO);
    service.shutdown();
}

#[test]
fn jobs_on_one_instance_run_one_at_a_time_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let tree = SourceTree::new(&src);
    for i in 0..8 {
        tree.file(
            &format!("f{i}"),
            &crate::support::fixture::noise(i, 1 << 20),
        );
    }
    let (service, _) = started(dir.path());
    service
        .submit(
            "instance",
            &format!("add name=db path={}", src.display()),
            0,
        )
        .unwrap();
    let a = job_id(
        &service
            .submit("snapshot", "instance=db name=one", 0)
            .unwrap(),
    );
    let b = job_id(
        &service
            .submit("snapshot", "instance=db name=two", 0)
            .unwrap(),
    );
    let sa = wait_job(&service, a);
    let sb = wait_job(&service, b);
    assert_eq!(
        (sa["state"].as_str(), sb["state"].as_str()),
        (Some("succeeded"), Some("succeeded"))
    );
    let finished_a =
        chrono::DateTime::parse_from_rfc3339(sa["finished"].as_str().unwrap()).unwrap();
    let started_b = chrono::DateTime::parse_from_rfc3339(sb["started"].as_str().unwrap()).unwrap();
    assert!(
        started_b >= finished_a,
        "the second job on one instance waited for the first"
    );
    assert_eq!(service.points("db").len(), 2);
    // A cancelled job shows cancelled with its cause.
    let c = job_id(&service.submit("snapshot", "instance=db", 0).unwrap());
    service.submit("cancel", &format!("job={c}"), 0).ok();
    let sc = wait_job(&service, c);
    assert!(
        ["cancelled", "succeeded"].contains(&sc["state"].as_str().unwrap()),
        "{sc}"
    );
    service.shutdown();

    // A job left running by a daemon that died shows interrupted after a restart, and
    // the history is still there.
    let t = TestRepo::reopen_local(dir.path());
    let stuck = t
        .catalog
        .insert_job(
            "snapshot",
            Some("db"),
            "running",
            "{}",
            cairn::model::now_ns(),
            Some(0),
        )
        .unwrap();
    let restarted = Service::start(t.repo, t.catalog, 1).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&restarted.job_status(stuck).unwrap()).unwrap();
    assert_eq!(status["state"], "interrupted");
    assert!(status["error"].as_str().unwrap().contains("daemon stopped"));
    let old: serde_json::Value = serde_json::from_str(&restarted.job_status(a).unwrap()).unwrap();
    assert_eq!(old["state"], "succeeded");
    assert!(restarted.job_ids().contains(&b));
    restarted.shutdown();
}
