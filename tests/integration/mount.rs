//! The mount, for real: FUSE, a kernel, `diff`, `cp -a`, `rsync -a`, control files.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn::service::Service;

use crate::support::fixture::{assert_same_tree, describe, SourceTree};
use crate::support::mount::{
    echo_into, fuse_available, job_of, request, run, wait_job_file, MountGuard,
};
use crate::support::repos::TestRepo;

const LIMIT: Duration = Duration::from_secs(300);

/// Adds `src` as instance `db` and takes a point through the control files.
pub(crate) fn snapshot_through_mount(mnt: &Path, src: &Path) -> String {
    let ctl = mnt.join(".cairn/ctl");
    let reply = request(
        &ctl.join("instance"),
        &format!("add name=db path={}\n", src.display()),
    )
    .unwrap();
    assert!(reply.starts_with("ok"), "{reply}");
    let job = job_of(&request(&ctl.join("snapshot"), "instance=db\n").unwrap());
    let status = wait_job_file(mnt, job, LIMIT);
    assert_eq!(status["state"], "succeeded", "{status}");
    status["result"]["point"].as_str().unwrap().to_string()
}

fn check_mounted_tree(t: TestRepo, work: &Path) {
    let src = work.join("src");
    SourceTree::all_cases(&src, 3 << 20);
    let mnt = work.join("mnt");
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let guard = MountGuard::new(service, &mnt, LIMIT);
    let point = snapshot_through_mount(&mnt, &src);
    let latest = mnt.join("db/latest");
    assert_eq!(
        std::fs::read_link(&latest).unwrap().to_str(),
        Some(point.as_str())
    );

    // diff -r (FIFOs excluded: diff would open them), then metadata for metadata.
    let point_dir = mnt.join("db").join(&point);
    let (ok, out, err) = run(
        120,
        "diff",
        &[
            "-r",
            "--no-dereference",
            "-x",
            "pipe",
            src.to_str().unwrap(),
            point_dir.to_str().unwrap(),
        ],
    );
    assert!(ok, "diff -r found differences:\n{out}{err}");
    assert_eq!(
        describe(&src),
        describe(&mnt.join("db").join(&point)),
        "metadata listing through the mount"
    );

    // cp -a and rsync -a out of the mount keep everything.
    let cp = work.join("cp-out");
    let (ok, _, err) = run(
        120,
        "cp",
        &[
            "-a",
            mnt.join("db").join(&point).to_str().unwrap(),
            cp.to_str().unwrap(),
        ],
    );
    assert!(ok, "cp -a: {err}");
    assert_same_tree(&src, &cp);
    let rs = work.join("rsync-out");
    let from = format!("{}/", mnt.join("db").join(&point).display());
    // `--modify-window=-1`: rsync compares times to the nanosecond. By default it fixes a
    // directory's mtime after writing into it only when the seconds differ, so a source
    // directory modified less than a second before the copy kept the time of rsync's own
    // write (RsyncProject/rsync#802): a flake of rsync's, not of the mount.
    let (ok, _, err) = run(
        120,
        "rsync",
        &[
            "-aHAX",
            "--sparse",
            "--modify-window=-1",
            &from,
            rs.to_str().unwrap(),
        ],
    );
    assert!(ok, "rsync -a: {err}");
    assert_same_tree(&src, &rs);

    // Points are read-only; the kernel refuses writes.
    assert!(std::fs::write(mnt.join("db").join(&point).join("docs/readme.txt"), b"x").is_err());
    assert!(std::fs::create_dir(mnt.join("db").join(&point).join("new")).is_err());
    drop(guard);
    assert!(
        !crate::support::mount::is_mounted(&mnt),
        "mount left behind"
    );
}

#[test]
fn local_repository_mounts_with_every_fidelity_case() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    check_mounted_tree(TestRepo::local(dir.path()), dir.path());
}

#[test]
fn s3_repository_mounts_with_every_fidelity_case() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(t) = TestRepo::s3(dir.path(), "mount") else {
        eprintln!("note: no S3 server outside CI; skipping");
        return;
    };
    check_mounted_tree(t, dir.path());
}

#[test]
fn malformed_requests_through_the_kernel_fail_and_change_nothing() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::new(&src).file("f", b"data");
    let t = TestRepo::local(dir.path());
    let mnt = dir.path().join("mnt");
    let guard = MountGuard::new(Service::start(t.repo, t.catalog, 2).unwrap(), &mnt, LIMIT);
    snapshot_through_mount(&mnt, &src);
    let ctl = mnt.join(".cairn/ctl");
    let events = std::fs::read_to_string(mnt.join(".cairn/events")).unwrap();
    let jobs = std::fs::read_dir(mnt.join(".cairn/jobs")).unwrap().count();
    for (file, text, errno) in [
        ("snapshot", "instance=ghost", libc::ENOENT),
        ("snapshot", "instance=db bogus=1", libc::EINVAL),
        (
            "restore",
            "instance=db point=latest target=not/absolute",
            libc::EINVAL,
        ),
        ("restore", "instance=db point=latest", libc::EINVAL),
        ("instance", "add name=bad/name path=/tmp", libc::EINVAL),
        ("verify", "{broken json", libc::EINVAL),
    ] {
        let err = request(&ctl.join(file), &format!("{text}\n")).unwrap_err();
        assert_eq!(err.0, errno, "{file}: {text}: {}", err.1);
        assert!(err.1.starts_with("error: "), "{}", err.1);
        let (ok, stderr) = echo_into(&ctl.join(file), text);
        assert!(!ok, "echo {text} > ctl/{file} succeeded");
        assert!(!stderr.is_empty());
    }
    assert_eq!(
        std::fs::read_to_string(mnt.join(".cairn/events")).unwrap(),
        events
    );
    assert_eq!(
        std::fs::read_dir(mnt.join(".cairn/jobs")).unwrap().count(),
        jobs
    );
    // A plain echo of a good request works (O_TRUNC is accepted).
    let (ok, err) = echo_into(&ctl.join("snapshot"), "instance=db name=via-echo");
    assert!(ok, "{err}");
    let start = Instant::now();
    while !std::fs::read_dir(mnt.join("db"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with("-via-echo"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the echoed snapshot never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Points cannot be written, control files cannot be read as points.
    assert!(std::fs::write(mnt.join(".cairn/stats"), b"x").is_err());
    drop(guard);
}

#[test]
fn restore_through_the_control_file_in_both_modes() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 1 << 20);
    let pristine = dir.path().join("pristine");
    let (ok, _, err) = run(
        60,
        "cp",
        &["-a", src.to_str().unwrap(), pristine.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let t = TestRepo::local(dir.path());
    let mnt = dir.path().join("mnt");
    let guard = MountGuard::new(Service::start(t.repo, t.catalog, 2).unwrap(), &mnt, LIMIT);
    let point = snapshot_through_mount(&mnt, &src);
    let ctl = mnt.join(".cairn/ctl/restore");

    let target = dir.path().join("restored");
    let job = job_of(
        &request(
            &ctl,
            &format!("instance=db point={point} target={}\n", target.display()),
        )
        .unwrap(),
    );
    let status = wait_job_file(&mnt, job, LIMIT);
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_same_tree(&pristine, &target);

    let partial = dir.path().join("partial");
    let job = job_of(
        &request(
            &ctl,
            &format!(
                "instance=db point=latest target={} include=docs/*.txt\n",
                partial.display()
            ),
        )
        .unwrap(),
    );
    assert_eq!(wait_job_file(&mnt, job, LIMIT)["state"], "succeeded");
    assert!(partial.join("docs/readme.txt").exists());
    assert!(!partial.join("data").exists());

    std::fs::write(src.join("docs/readme.txt"), b"changed after the point").unwrap();
    std::fs::write(src.join("extra-file"), b"not in the point").unwrap();
    let job = job_of(&request(&ctl, "instance=db point=latest mode=in-place\n").unwrap());
    let status = wait_job_file(&mnt, job, LIMIT);
    assert_eq!(status["state"], "succeeded", "{status}");
    assert!(
        status["result"]["safety_point"]
            .as_str()
            .is_some_and(|s| s.ends_with("-before-restore")),
        "{status}"
    );
    assert_same_tree(&pristine, &src);

    // Restoring into a non-empty directory is refused before a job starts.
    let err = request(
        &ctl,
        &format!("instance=db point=latest target={}\n", target.display()),
    )
    .unwrap_err();
    assert_eq!(err.0, libc::EEXIST);
    drop(guard);
}

#[test]
fn a_point_taken_by_a_second_daemon_on_the_same_s3_repository_appears() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = crate::support::repos::s3_store("two-daemons") else {
        eprintln!("note: no S3 server outside CI; skipping");
        return;
    };
    let repo =
        cairn::repo::Repository::init(store.clone(), &crate::support::repos::fast_init(true))
            .unwrap();
    let first = TestRepo::open_catalog(repo.clone(), &dir.path().join("a"));
    let second = crate::support::repos::second_machine(&store, &dir.path().join("b"));
    let src = dir.path().join("src");
    SourceTree::new(&src).file("hello.txt", b"from the second machine");

    let mnt = dir.path().join("mnt");
    let guard = MountGuard::new(
        Service::start(first.repo, first.catalog, 1).unwrap(),
        &mnt,
        LIMIT,
    );
    let other = Service::start(second.repo, second.catalog, 1).unwrap();
    other
        .submit(
            "instance",
            &format!("add name=remote path={}", src.display()),
            0,
        )
        .unwrap();
    let job = job_of(&other.submit("snapshot", "instance=remote", 0).unwrap());
    let status = crate::namespace::wait_job(&other, job);
    assert_eq!(status["state"], "succeeded", "{status}");
    other.shutdown();

    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(mnt.join("remote/latest/hello.txt")) {
            assert_eq!(text, "from the second machine");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the other daemon's point never appeared"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(guard);
}
