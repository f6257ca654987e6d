//! The mount's log archive and time travel, for real: `<instance>/logs/` lists and reads
//! what passes of the archiver stored, and `<instance>/@TIME/` (from a plan made by hand
//! from the point and the archive, and from the planner of the logs) is browsable and
//! copies with `cp -a` and `rsync -a` as the base point with its log files replaced.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn::engine::logs::{LogArchiver, PitrPlan, PlannedExtra, PlannedLog, Timeline};
use cairn::fs::namespace::Planner;
use cairn::fs::{MountOptions, Namespace};
use cairn::service::Service;

use crate::mount::snapshot_through_mount;
use crate::support::fixture::{assert_same_tree, describe, noise, SourceTree};
use crate::support::mount::{fuse_available, run, MountGuard};
use crate::support::repos::TestRepo;

const LIMIT: Duration = Duration::from_secs(120);
const NS: i64 = 1_000_000_000;
/// Bytes of `binlog.000001` the hand-made plan keeps.
const CUT: u64 = 13;

/// A source with a log file, data files, a symlink and a file of a restricted mode.
fn source(src: &Path) {
    let t = SourceTree::new(src);
    t.file("binlog.000001", b"0123456789");
    let a = t.file("data/a.txt", b"alpha\n");
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
    t.file("data/sub/b.bin", &noise(7, 300 << 10));
    std::os::unix::fs::symlink("data/a.txt", src.join("link")).unwrap();
}

/// The plan of a test: the newest point taken before the second after `at_ns`, with
/// `binlog.000001` cut at [`CUT`] and every other log file whole under `wal/`, plus a
/// new `recovery.signal` and `data/sub/replay.sh`.
fn hand_made_planner() -> Planner {
    Arc::new(|service: &Service, instance: &str, at_ns: i64| {
        let base = service
            .points(instance)
            .into_iter()
            .rfind(|p| p.manifest.time_ns < at_ns + NS)
            .ok_or("before the first point")?;
        let timeline = Timeline::load(service.catalog(), instance).map_err(|e| e.to_string())?;
        let last = timeline.records().len().checked_sub(1).ok_or("no logs")?;
        let files = timeline.files_after(last).map_err(|e| e.to_string())?;
        let logs = files
            .into_iter()
            .map(|version| {
                let first = version.name == "binlog.000001";
                PlannedLog {
                    path: if first {
                        version.name.clone().into()
                    } else {
                        Path::new("wal").join(&version.name)
                    },
                    cut: if first { CUT } else { version.size },
                    version,
                }
            })
            .collect();
        let extra = |path: &str, bytes: &[u8], mode| PlannedExtra {
            path: path.into(),
            bytes: bytes.to_vec(),
            mode,
        };
        Ok(PitrPlan {
            instance: instance.to_string(),
            at_ns,
            base,
            logs,
            extras: vec![
                extra("recovery.signal", b"", 0o600),
                extra("data/sub/replay.sh", b"#!/bin/sh\necho replay\n", 0o755),
            ],
        })
    })
}

/// A mount of a fresh repository with `db` (of `work/src`) and one point of it.
fn mounted(work: &Path) -> (MountGuard, String) {
    let src = work.join("src");
    source(&src);
    let t = TestRepo::local(work);
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let ns = Namespace::new(service, 16 << 20).with_planner(hand_made_planner());
    let guard = MountGuard::with_namespace(ns, &work.join("mnt"), LIMIT, &MountOptions::default());
    let point = snapshot_through_mount(&guard.dir, &src);
    (guard, point)
}

/// One archiver pass over `work/src/binlog.*`.
fn pass(guard: &MountGuard, work: &Path) -> i64 {
    let s = &guard.service;
    let globs = [format!("{}/binlog.*", work.join("src").display())];
    let mut archiver = LogArchiver::load(s.catalog(), "db").unwrap();
    let out = archiver.pass(s.repo(), s.catalog(), &globs).unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    out.time_ns
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn mount_logs_dir_lists_and_reads_archived_files_and_shows_new_passes() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (guard, point) = mounted(work.path());
    let db = guard.dir.join("db");
    // No log records yet: no `logs/`.
    assert_eq!(names(&db), vec![point.clone(), "latest".to_string()]);
    assert!(std::fs::metadata(db.join("logs")).is_err());

    pass(&guard, work.path());
    let logs = db.join("logs");
    let listed = [point.as_str(), "latest", "logs", "restorable"];
    assert_eq!(names(&db), listed);
    // The restorable range, as `range` in ctl/log tells it.
    let range: serde_json::Value =
        serde_json::from_slice(&std::fs::read(db.join("restorable")).unwrap()).unwrap();
    assert!(
        range["earliest"].is_string() && range["latest"].is_string(),
        "{range}"
    );
    assert_eq!(range["gaps"], serde_json::json!([]));
    let md = std::fs::metadata(db.join("restorable")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o444);
    assert_eq!(names(&logs), vec!["binlog.000001"]);
    let src_log = work.path().join("src/binlog.000001");
    let md = std::fs::metadata(logs.join("binlog.000001")).unwrap();
    let src_md = std::fs::metadata(&src_log).unwrap();
    assert_eq!(md.len(), 10);
    assert_eq!(md.mode() & 0o7777, 0o444);
    assert_eq!(
        (md.mtime(), md.mtime_nsec()),
        (src_md.mtime(), src_md.mtime_nsec())
    );
    assert_eq!(
        std::fs::read(logs.join("binlog.000001")).unwrap(),
        b"0123456789"
    );
    assert!(std::fs::write(logs.join("binlog.000001"), b"x").is_err());
    assert!(std::fs::write(logs.join("new"), b"x").is_err());

    // A new pass (a file grew, a new file) shows up at once.
    append(&src_log, b"abcdef");
    std::fs::write(work.path().join("src/binlog.000002"), b"second").unwrap();
    pass(&guard, work.path());
    assert_eq!(names(&logs), vec!["binlog.000001", "binlog.000002"]);
    assert_eq!(
        std::fs::metadata(logs.join("binlog.000001")).unwrap().len(),
        16
    );
    assert_eq!(
        std::fs::read(logs.join("binlog.000001")).unwrap(),
        b"0123456789abcdef"
    );
    // PostgreSQL's restore_command, as is.
    let restored = work.path().join("restored");
    let (ok, _, err) = run(
        30,
        "cp",
        &[
            logs.join("binlog.000002").to_str().unwrap(),
            restored.to_str().unwrap(),
        ],
    );
    assert!(ok, "cp: {err}");
    assert_eq!(std::fs::read(&restored).unwrap(), b"second");

    // A version whose first record expired cannot be read whole: it is left out.
    let catalog = guard.service.catalog();
    let first = catalog.log_records("db").unwrap().remove(0);
    catalog.remove_log_record(&first.key).unwrap();
    assert_eq!(names(&logs), vec!["binlog.000002"]);
    assert!(std::fs::metadata(logs.join("binlog.000001")).is_err());
    drop(guard);
}

#[test]
fn mount_time_view_is_the_point_with_its_logs_replaced_and_copies_whole() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (guard, point) = mounted(work.path());
    let src_log = work.path().join("src/binlog.000001");
    pass(&guard, work.path());
    append(&src_log, b"abcdef");
    std::fs::write(work.path().join("src/binlog.000002"), b"second").unwrap();
    pass(&guard, work.path());

    let db = guard.dir.join("db");
    let now = chrono::Utc::now();
    let name = format!("@{}", now.format("%Y-%m-%dT%H%M%SZ"));
    let view = db.join(&name);
    let listed = names(&view);
    assert_eq!(
        listed,
        ["binlog.000001", "data", "link", "recovery.signal", "wal"]
    );
    // Looked up only: the instance's listing does not show it.
    assert!(!names(&db).contains(&name));

    // The point's files are the point's; the log files and extras are the plan's.
    let in_point = describe(&db.join(&point));
    let in_view = describe(&view);
    for (path, entry) in &in_point {
        if path.as_slice() != b"binlog.000001" {
            assert_eq!(
                Some(entry),
                in_view.get(path),
                "{}",
                String::from_utf8_lossy(path)
            );
        }
    }
    let log = &in_view[b"binlog.000001".as_slice()];
    assert_eq!(log.content.as_deref(), Some(b"0123456789abc".as_slice()));
    assert_eq!(log.mode, in_point[b"binlog.000001".as_slice()].mode);
    assert_eq!(
        in_view[b"wal/binlog.000002".as_slice()].content.as_deref(),
        Some(b"second".as_slice())
    );
    let replay = &in_view[b"data/sub/replay.sh".as_slice()];
    assert_eq!((replay.mode, replay.size), (0o755, 22));
    assert_eq!(in_view[b"recovery.signal".as_slice()].mode, 0o600);
    let (ok, out, _) = run(30, "ls", &["-la", view.to_str().unwrap()]);
    assert!(
        ok && out.contains("recovery.signal") && out.contains("wal"),
        "{out}"
    );

    // cp -a and rsync -a copy it whole: bytes, sizes, modes, mtimes.
    let cp = work.path().join("cp-out");
    let (ok, _, err) = run(
        60,
        "cp",
        &["-a", view.to_str().unwrap(), cp.to_str().unwrap()],
    );
    assert!(ok, "cp -a: {err}");
    assert_same_tree(&view, &cp);
    let rs = work.path().join("rsync-out");
    let from = format!("{}/", view.display());
    let (ok, _, err) = run(
        60,
        "rsync",
        &["-aX", "--modify-window=-1", &from, rs.to_str().unwrap()],
    );
    assert!(ok, "rsync -a: {err}");
    assert_same_tree(&view, &rs);
    assert!(std::fs::write(view.join("recovery.signal"), b"x").is_err());

    // RFC 3339 names the same second; garbage and a time before the point are ENOENT.
    let rfc = db.join(format!("@{}", now.format("%Y-%m-%dT%H:%M:%SZ")));
    assert_eq!(names(&rfc), listed);
    for bad in ["@yesterday", "@2026-13-01T103015Z", "@2001-01-01T000000Z"] {
        let err = std::fs::metadata(db.join(bad)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{bad}");
    }
    drop(guard);
}

/// A planner whose plan puts extras at odd paths: under a point's file, in new nested
/// directories, and outside the view (absolute, `..`).
fn odd_paths_planner() -> Planner {
    Arc::new(|service: &Service, instance: &str, at_ns: i64| {
        let base = service.points(instance).pop().ok_or("no point")?;
        let extra = |path: &str, bytes: &[u8]| PlannedExtra {
            path: path.into(),
            bytes: bytes.to_vec(),
            mode: 0o644,
        };
        Ok(PitrPlan {
            instance: instance.to_string(),
            at_ns,
            base,
            logs: Vec::new(),
            extras: vec![
                extra("data/a.txt/inner", b"in"),
                extra("deep/er/x", b"x"),
                extra("/etc/evil", b"no"),
                extra("../up", b"no"),
            ],
        })
    })
}

#[test]
fn time_view_paths_nest_turn_a_file_into_a_directory_and_stay_inside_the_view() {
    use cairn::fs::namespace::EntryKind;

    use crate::namespace::{job_id, read_all, resolve, wait_job};

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    source(&src);
    let t = TestRepo::local(work.path());
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let ns = Namespace::new(service.clone(), 16 << 20).with_planner(odd_paths_planner());
    let add = format!("add name=db path={}", src.display());
    service.submit("instance", &add, 0).unwrap();
    let job = job_id(&service.submit("snapshot", "instance=db", 0).unwrap());
    assert_eq!(wait_job(&service, job)["state"], "succeeded");

    let view = format!("db/@{}", chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ"));
    let listed = |path: &str| -> Vec<String> {
        let ino = resolve(&ns, path.as_bytes());
        let entries = ns.readdir(ino).unwrap().into_iter();
        entries
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect()
    };
    assert_eq!(listed(&view), ["binlog.000001", "data", "deep", "link"]);
    assert_eq!(listed(&format!("{view}/data")), ["a.txt", "sub"]);
    let a = resolve(&ns, format!("{view}/data/a.txt").as_bytes());
    assert_eq!(ns.getattr(a).unwrap().kind, EntryKind::Dir);
    let inner = resolve(&ns, format!("{view}/data/a.txt/inner").as_bytes());
    assert_eq!(read_all(&ns, inner), b"in");
    let x = resolve(&ns, format!("{view}/deep/er/x").as_bytes());
    assert_eq!(read_all(&ns, x), b"x");
    // The point's own files read as in the point.
    let b = resolve(&ns, format!("{view}/data/sub/b.bin").as_bytes());
    assert_eq!(read_all(&ns, b), noise(7, 300 << 10));
    service.shutdown();
}

/// The planner of the logs through the mount: a view at the second of a pass holds what
/// that pass archived and nothing of the next one (an instance without `log=` globs
/// gets its log files under `logs/` in the view); a second after the last archived one is
/// ENOENT.
#[test]
fn mount_time_view_from_the_planner_of_the_logs() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    source(&src);
    let t = TestRepo::local(work.path());
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let guard = MountGuard::new(service, &work.path().join("mnt"), LIMIT);
    let point = snapshot_through_mount(&guard.dir, &src);
    // Passes in later seconds than the point's, and than each other's.
    std::thread::sleep(Duration::from_millis(1100));
    append(&src.join("binlog.000001"), b"abcdef");
    let first = pass(&guard, work.path());
    std::thread::sleep(Duration::from_millis(1100));
    append(&src.join("binlog.000001"), b"ghij");
    pass(&guard, work.path());

    let db = guard.dir.join("db");
    let stamp = |ns: i64| {
        let t = chrono::DateTime::from_timestamp(ns.div_euclid(NS), 0).unwrap();
        format!("@{}", t.format("%Y-%m-%dT%H%M%SZ"))
    };
    let view = db.join(stamp(first));
    assert_eq!(names(&view), ["binlog.000001", "data", "link", "logs"]);
    assert_eq!(
        std::fs::read(view.join("binlog.000001")).unwrap(),
        std::fs::read(db.join(&point).join("binlog.000001")).unwrap()
    );
    assert_eq!(
        std::fs::read(view.join("logs/binlog.000001")).unwrap(),
        b"0123456789abcdef"
    );
    let late = stamp(first + 60 * NS);
    for bad in [
        late.as_str(),
        "@2001-01-01T000000Z",
        "@yesterday",
        "@2026-12-01T10:30:15.5Z",
    ] {
        let err = std::fs::metadata(db.join(bad)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{bad}");
    }
    drop(guard);
}

/// A SET as Redis appends it to its AOF.
fn redis_set(key: &str) -> String {
    format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\n1\r\n", key.len())
}

/// A Redis-like AOF (`#TS:` annotations, `log=` on its directory) archived by the
/// daemon's passes: every second's view copied out of the mount holds the same files as
/// a restore at that second, and its AOF holds exactly the writes up to it.
#[test]
fn mount_time_views_of_an_aof_match_restores_at_each_second() {
    use cairn::engine::logs::{restore_at, PitrRequest};
    use cairn::engine::{CancelToken, NoProgress};

    use crate::support::mount::request;

    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("redis");
    let aof = data.join("appendonlydir/appendonly.aof.1.incr.aof");
    SourceTree::new(&data).file("appendonlydir/appendonly.aof.1.incr.aof", b"");
    SourceTree::new(&data).file("dump.rdb", b"REDIS0011");
    let t = TestRepo::local(work.path());
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let guard = MountGuard::new(service, &work.path().join("mnt"), LIMIT);
    let ctl = guard.dir.join(".cairn/ctl");
    let add = format!(
        "add name=r path={} log={}/appendonlydir/*\n",
        data.display(),
        data.display()
    );
    assert!(request(&ctl.join("instance"), &add)
        .unwrap()
        .starts_with("ok"));
    let job =
        crate::support::mount::job_of(&request(&ctl.join("snapshot"), "instance=r\n").unwrap());
    let status = crate::support::mount::wait_job_file(&guard.dir, job, LIMIT);
    assert_eq!(status["state"], "succeeded", "{status}");

    // Writes over three seconds, each second's first one annotated; a pass after each.
    let mut written: Vec<(i64, String)> = Vec::new();
    for i in 0..6 {
        let now = cairn::model::now_ns().div_euclid(NS);
        let mut text = String::new();
        if written.last().is_none_or(|(s, _)| *s != now) {
            text.push_str(&format!("#TS:{now}\r\n"));
        }
        text.push_str(&redis_set(&format!("k{i}")));
        append(&aof, text.as_bytes());
        written.push((now, text));
        let reply = request(&ctl.join("log"), "archive instance=r\n").unwrap();
        assert!(reply.starts_with("ok"), "{reply}");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_millis(1100));
    request(&ctl.join("log"), "archive instance=r\n").unwrap();

    let s = &guard.service;
    let config = s.instance("r").unwrap();
    let (first, newest) = (written[0].0, written.last().unwrap().0);
    for second in first..=newest {
        let want: String = written
            .iter()
            .filter(|(at, _)| *at <= second)
            .map(|(_, text)| text.as_str())
            .collect();
        let at = chrono::DateTime::from_timestamp(second, 0).unwrap();
        let view = guard
            .dir
            .join(format!("r/@{}", at.format("%Y-%m-%dT%H%M%SZ")));
        let copy = work.path().join(format!("copy-{second}"));
        let (ok, _, err) = run(
            30,
            "cp",
            &["-a", view.to_str().unwrap(), copy.to_str().unwrap()],
        );
        assert!(ok, "cp -a: {err}");
        let got = std::fs::read_to_string(copy.join("appendonlydir/appendonly.aof.1.incr.aof"));
        assert_eq!(got.unwrap(), want, "second {second}");

        let target = work.path().join(format!("restored-{second}"));
        let req = PitrRequest {
            config: config.clone(),
            at_ns: second * NS,
            target: target.clone(),
            last_pass_ns: s.log_last_pass_ns("r"),
        };
        restore_at(
            s.repo(),
            s.catalog(),
            &req,
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        let (a, b) = (describe(&copy), describe(&target));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "second {second}"
        );
        for (path, entry) in &a {
            assert_eq!(entry.content, b[path].content, "second {second}");
            assert_eq!(entry.mode, b[path].mode, "second {second}");
        }
    }
    drop(guard);
}
