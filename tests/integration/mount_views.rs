//! Views a mount's session threads answer without waiting on the repository: the root
//! shows what another machine wrote once the refresher thread has seen it (a lookup only
//! asks for the refresh), and `.cairn/events` has the size of what reading it gives.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn::fs::namespace::ROOT;
use cairn::fs::Namespace;
use cairn::service::Service;

use crate::namespace::{read_all, resolve};
use crate::support::cli_repo::Cli;
use crate::support::fixture::SourceTree;
use crate::support::mount::{fuse_available, MountGuard};
use crate::support::repos::TestRepo;

const LIMIT: Duration = Duration::from_secs(300);

/// How long a point written elsewhere may take to show (a few refresh intervals).
const APPEAR_WITHIN: Duration = Duration::from_secs(60);

/// Another machine (the CLI with a catalog of its own) takes a point of `src` as
/// instance `remote` straight into the repository in `work/repo`.
fn snapshot_elsewhere(work: &Path, src: &Path) {
    let other = work.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let repo = work.join("repo");
    Cli::new(&other)
        .run(&[
            "snapshot",
            "remote",
            "--repo",
            repo.to_str().unwrap(),
            "--path",
            src.to_str().unwrap(),
        ])
        .ok();
}

/// Polls `seen` every 50 ms until it holds; fails after [`APPEAR_WITHIN`].
fn poll(what: &str, mut seen: impl FnMut() -> bool) {
    let start = Instant::now();
    while !seen() {
        assert!(start.elapsed() < APPEAR_WITHIN, "{what} never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_point_written_with_repo_while_mounted_appears_at_the_mount_root() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("src");
    SourceTree::new(&src).file("hello.txt", b"written with --repo");
    let mnt = dir.path().join("mnt");
    let guard = MountGuard::new(Service::start(t.repo, t.catalog, 1).unwrap(), &mnt, LIMIT);
    let names = || -> Vec<String> {
        std::fs::read_dir(&mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(!names().contains(&"remote".to_string()));

    snapshot_elsewhere(dir.path(), &src);
    poll("the point written with --repo", || {
        names().contains(&"remote".to_string())
    });
    assert_eq!(
        std::fs::read_to_string(mnt.join("remote/latest/hello.txt")).unwrap(),
        "written with --repo"
    );
    drop(guard);
}

#[test]
fn a_lookup_at_the_root_finds_a_point_written_elsewhere_once_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("src");
    SourceTree::new(&src).file("hello.txt", b"elsewhere");
    let service = Service::start(t.repo, t.catalog, 1).unwrap();
    let ns = Namespace::new(service.clone(), 1 << 20);
    assert_eq!(ns.lookup(ROOT, b"remote").unwrap_err(), libc::ENOENT);

    snapshot_elsewhere(dir.path(), &src);
    // Each lookup returns at once; one of them asked the refresher, which finds it.
    poll("the point written elsewhere", || {
        ns.lookup(ROOT, b"remote").is_ok()
    });
    let point = service.points("remote").pop().unwrap().manifest.name;
    let file = resolve(&ns, format!("remote/{point}/hello.txt").as_bytes());
    assert_eq!(read_all(&ns, file), b"elsewhere");
    service.shutdown();
}

/// Records events (`rounds` instance additions and removals) with non-ASCII paths.
fn record_events(service: &Service, src: &Path, rounds: usize) {
    for i in 0..rounds {
        let name = format!("db{i}");
        service
            .submit(
                "instance",
                &format!("add name={name} path={}", src.display()),
                0,
            )
            .unwrap();
        service
            .submit("instance", &format!("remove name={name}"), 0)
            .unwrap();
    }
}

#[test]
fn the_size_of_the_events_file_is_what_reading_it_gives() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("données-日本-🦀");
    SourceTree::new(&src).file("a", b"a");
    let service = Service::start(t.repo, t.catalog, 1).unwrap();
    let ns = Namespace::new(service.clone(), 1 << 20);
    let events = resolve(&ns, b".cairn/events");
    assert_eq!(ns.getattr(events).unwrap().size, 0);
    assert_eq!(read_all(&ns, events), b"");
    for rounds in [1, 150] {
        record_events(&service, &src, rounds);
        let size = ns.getattr(events).unwrap().size;
        let read = read_all(&ns, events);
        assert_eq!(size, read.len() as u64);
        assert_eq!(read, service.events_text().as_bytes());
        assert!(String::from_utf8(read).unwrap().contains("日本"));
    }
    service.shutdown();
}

#[test]
fn stat_of_the_mounted_events_file_gives_the_size_read() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = dir.path().join("données-日本-🦀");
    SourceTree::new(&src).file("a", b"a");
    let mnt = dir.path().join("mnt");
    let guard = MountGuard::new(Service::start(t.repo, t.catalog, 1).unwrap(), &mnt, LIMIT);
    let path = mnt.join(".cairn/events");
    let mut sizes = Vec::new();
    for rounds in [0, 200, 1] {
        record_events(&guard.service, &src, rounds);
        let size = std::fs::metadata(&path).unwrap().len();
        let read = std::fs::read(&path).unwrap();
        assert_eq!(size, read.len() as u64, "after {rounds} more rounds");
        assert_eq!(read, guard.service.events_text().as_bytes());
        sizes.push(size);
    }
    assert!(
        sizes[0] == 0 && sizes[1] > 64 * 1024 && sizes[2] > sizes[1],
        "{sizes:?}"
    );
    drop(guard);
}
