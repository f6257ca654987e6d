//! Streams: named byte streams (command sources, `--stdin`) stored as files of a point,
//! deduplicated like files; a failed stream leaves no point and prune reclaims its data;
//! bad names and in-place restores of such points are refused. The engine is driven
//! directly; the daemon's command sources and `--stdin`/`--stdout` through the real
//! binary (mounts guarded by [`Daemon`](crate::support::daemon::Daemon), every wait
//! limited).

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

use cairn::engine::{
    backup, prune, restore, BackupOutcome, BackupRequest, CancelToken, EngineError, NoProgress,
    PruneRequest, RestoreMode, RestoreRequest, StreamSource, TreeReader,
};
use cairn::model::NodeKind;

use crate::prune::repo_bytes;
use crate::support::cli_env::{drain, job_id, wait_status, Env, COMMAND_LIMIT};
use crate::support::cli_repo::pack_bytes;
use crate::support::cli_run::{exit_code, Run};
use crate::support::daemon::wait_dead;
use crate::support::fixture::{noise, SourceTree};
use crate::support::mount::fuse_available;
use crate::support::repos::TestRepo;

fn stream(name: &str, data: Vec<u8>) -> StreamSource {
    StreamSource::new(name, Box::new(Cursor::new(data)), Box::new(|| Ok(())))
}

fn snap(
    t: &TestRepo,
    paths: &[&Path],
    streams: Vec<StreamSource>,
) -> Result<BackupOutcome, EngineError> {
    let mut req = BackupRequest::new("db", paths.iter().map(|p| p.to_path_buf()).collect());
    req.streams = streams;
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
}

fn restore_to(t: &TestRepo, target: &Path, mode: RestoreMode) -> Result<(), EngineError> {
    let req = RestoreRequest {
        instance: "db".into(),
        point: "latest".into(),
        target: (mode == RestoreMode::New).then(|| target.to_path_buf()),
        includes: vec![],
        mode,
        delete_excluded: false,
        skip_damaged: false,
    };
    restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).map(|_| ())
}

#[test]
fn streams_sit_beside_paths_and_restore_as_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = SourceTree::new(&dir.path().join("www"));
    src.file("index.html", b"<p>hi</p>");
    let t = TestRepo::local(dir.path());
    let dump = noise(7, 3 << 20);
    let out = snap(
        &t,
        &[&src.root],
        vec![stream("all.sql", dump.clone()), stream("empty", vec![])],
    )
    .unwrap();
    assert_eq!(out.manifest.streams, vec!["all.sql", "empty"]);
    assert_eq!(out.manifest.paths.len(), 1);
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone());
    let root = reader.tree(&out.manifest.root).unwrap();
    assert_eq!(root.find(b"www").unwrap().kind, NodeKind::Dir);
    let file = root.find(b"all.sql").unwrap();
    assert_eq!(
        (file.kind, file.mode, file.size),
        (NodeKind::File, 0o600, dump.len() as u64)
    );
    assert_eq!(file.mtime_ns, out.manifest.time_ns);
    assert!(file.content.len() > 1, "a 3 MiB stream is several chunks");

    let target = dir.path().join("restored");
    restore_to(&t, &target, RestoreMode::New).unwrap();
    assert_eq!(std::fs::read(target.join("all.sql")).unwrap(), dump);
    assert_eq!(std::fs::read(target.join("empty")).unwrap(), b"");
    assert_eq!(
        std::fs::read(target.join("www/index.html")).unwrap(),
        b"<p>hi</p>"
    );

    let err = restore_to(&t, &target, RestoreMode::InPlace)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--target") && err.contains("all.sql"), "{err}");
}

#[test]
fn a_stream_only_point_needs_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let out = snap(&t, &[], vec![stream("dump.rdb", b"REDIS0011".to_vec())]).unwrap();
    assert!(out.manifest.paths.is_empty());
    assert_eq!(out.manifest.stats.files, 1);
    assert_eq!(out.manifest.stats.bytes, 9);
    assert!(snap(&t, &[], vec![]).is_err(), "no path and no stream");
}

/// A stream is cut on every core, a file in one thread: the same bytes give the same
/// chunks, in the same order (a reader that dribbles a few bytes at a time included).
#[test]
fn a_stream_and_a_file_of_the_same_bytes_share_every_chunk() {
    struct Dribble(Cursor<Vec<u8>>);
    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(777);
            self.0.read(&mut buf[..n])
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let src = SourceTree::new(&dir.path().join("src"));
    let data = noise(11, 21 << 20);
    src.file("dump.sql", &data);
    let t = TestRepo::local(dir.path());
    let file_point = snap(&t, &[&src.root.join("dump.sql")], vec![]).unwrap();
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone());
    let file_root = reader.tree(&file_point.manifest.root).unwrap();
    let file = file_root.find(b"dump.sql").unwrap();
    assert!(file.content.len() > 8, "21 MiB is many chunks");

    let body = Dribble(Cursor::new(data.clone()));
    let finish = Box::new(|| Ok(()));
    let out = snap(
        &t,
        &[],
        vec![StreamSource::new("dump.sql", Box::new(body), finish)],
    )
    .unwrap();
    assert!(
        out.manifest.stats.new_bytes < 4096,
        "only the new root tree is new: {}",
        out.manifest.stats.new_bytes
    );
    let root = reader.tree(&out.manifest.root).unwrap();
    assert_eq!(root.find(b"dump.sql").unwrap().content, file.content);

    let target = dir.path().join("restored");
    restore_to(&t, &target, RestoreMode::New).unwrap();
    assert!(std::fs::read(target.join("dump.sql")).unwrap() == data);
}

#[test]
fn bad_stream_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = SourceTree::new(&dir.path().join("data"));
    src.file("f", b"x");
    let t = TestRepo::local(dir.path());
    for (names, needle) in [
        (&["a/b"][..], "must not contain"),
        (&[".."], "1-255"),
        (&[""], "1-255"),
        (&["x", "x"], "twice"),
        (&["data"], "last component"),
    ] {
        let streams = names.iter().map(|n| stream(n, vec![1])).collect();
        let err = snap(&t, &[&src.root], streams).unwrap_err();
        assert!(matches!(err, EngineError::Invalid(_)), "{err}");
        assert!(err.to_string().contains(needle), "{names:?}: {err}");
    }
    assert!(t.catalog.newest_point("db").unwrap().is_none());
}

#[test]
fn an_unchanged_dump_stores_nothing_and_a_changed_one_about_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let mut dump = noise(1, 20 << 20);
    let first = snap(&t, &[], vec![stream("all.sql", dump.clone())]).unwrap();
    assert!(first.manifest.stats.new_bytes >= 20 << 20);
    let same = snap(&t, &[], vec![stream("all.sql", dump.clone())]).unwrap();
    assert!(
        same.manifest.stats.new_bytes < 64 << 10,
        "{:?}",
        same.manifest.stats
    );
    let middle = 10 << 20;
    dump[middle..middle + (1 << 20)].copy_from_slice(&noise(2, 1 << 20));
    let changed = snap(&t, &[], vec![stream("all.sql", dump)]).unwrap();
    let stats = changed.manifest.stats;
    // The changed MiB, and the chunks (1 MiB on average) it touches at either end.
    assert!(
        stats.new_bytes >= 1 << 20 && stats.new_bytes < 5 << 20,
        "{stats:?}"
    );
    assert!(stats.stored_bytes < 5 << 20, "{stats:?}");
}

/// Yields `good` bytes, then fails (an interrupted producer reading side).
struct Broken(Cursor<Vec<u8>>);

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("connection reset")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_failed_stream_makes_no_point_and_prune_reclaims_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let kept = snap(&t, &[], vec![stream("small", noise(3, 100_000))]).unwrap();
    let before = repo_bytes(&t);

    let producer_failed = StreamSource::new(
        "all.sql",
        Box::new(Cursor::new(noise(4, 50 << 20))),
        Box::new(|| Err("exited with status 1".into())),
    );
    let err = snap(&t, &[], vec![producer_failed])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("all.sql") && err.contains("exited with status 1"),
        "{err}"
    );
    let reader_failed = StreamSource::new(
        "other.sql",
        Box::new(Broken(Cursor::new(noise(5, 20 << 20)))),
        Box::new(|| Ok(())),
    );
    let err = snap(&t, &[], vec![reader_failed]).unwrap_err().to_string();
    assert!(
        err.contains("other.sql") && err.contains("connection reset"),
        "{err}"
    );

    t.catalog.refresh(&t.repo).unwrap();
    assert_eq!(t.catalog.newest_point("db").unwrap().unwrap().id, kept.id);
    assert!(
        repo_bytes(&t) > before + (40 << 20),
        "the failed streams' packs were written"
    );
    let req = PruneRequest {
        grace_ns: 0,
        ..Default::default()
    };
    let out = prune(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    assert!(out.packs_deleted > 0, "{out:?}");
    assert!(
        repo_bytes(&t) < before + (1 << 20),
        "{} vs {before}",
        repo_bytes(&t)
    );
    let target = dir.path().join("restored");
    restore_to(&t, &target, RestoreMode::New).unwrap();
    assert_eq!(
        std::fs::read(target.join("small")).unwrap(),
        noise(3, 100_000)
    );
}

// ------------------------------------------------------------------------------------
// Through the binary.

/// Runs cairn with stdin from `input` (or nothing) and stdout into the file `out`.
pub(crate) fn run_with_files(env: &Env, args: &[&str], input: Option<&Path>, out: &Path) -> Run {
    let mut cmd = env.command(args);
    cmd.stdout(File::create(out).unwrap());
    if let Some(i) = input {
        cmd.stdin(File::open(i).unwrap());
    }
    let mut child = cmd.spawn().unwrap();
    let err = drain(child.stderr.take().unwrap());
    let what = format!("cairn {}", args.join(" "));
    let status = wait_status(&what, &mut child, COMMAND_LIMIT);
    Run {
        code: exit_code(status),
        stdout: String::new(),
        stderr: err.join().unwrap(),
        what,
    }
}

#[test]
fn stdin_with_repo_then_restore_stdout_round_trips_64_mib() {
    let env = Env::new();
    env.init();
    let repo = env.repo();
    let dump = env.path("dump.sql");
    std::fs::write(&dump, noise(11, 64 << 20)).unwrap();
    let out = env.path("out");
    let snap = [
        "snapshot", "app", "--repo", &repo, "--stdin", "app.sql", "--json",
    ];
    run_with_files(&env, &snap, Some(&dump), &out).ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["bytes"], 64 << 20, "{v}");

    let restored = env.path("restored.sql");
    let args = [
        "restore", "app", "latest", "--repo", &repo, "--stdout", "app.sql",
    ];
    run_with_files(&env, &args, None, &restored).ok();
    assert!(std::fs::read(&restored).unwrap() == std::fs::read(&dump).unwrap());

    // Not a file of the point; bad names; no path and no stream.
    env.run(&[
        "restore",
        "app",
        "latest",
        "--repo",
        &repo,
        "--stdout",
        "other.sql",
    ])
    .failed()
    .stderr_has("no regular file `other.sql`")
    .stderr_has("app.sql");
    env.run(&["snapshot", "app", "--repo", &repo, "--stdin", "a/b"])
        .failed()
        .stderr_has("must not contain `/`");
    env.run(&["snapshot", "app", "--repo", &repo])
        .code(2)
        .stderr_has("--stdin NAME");
    // In place has no path to put the stream at.
    env.run(&[
        "restore", "app", "latest", "--repo", &repo, "--mode", "in-place",
    ])
    .failed()
    .stderr_has("--target");
}

#[test]
fn command_sources_through_the_mount() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let data = env.path("data.bin");
    std::fs::write(&data, noise(21, 5 << 20)).unwrap();
    let src = SourceTree::new(&env.path("conf"));
    src.file("app.conf", b"port=5432\n");
    let daemon = env.mount_background();
    let mnt = env.mnt();

    // Names are checked before anything is stored.
    for (bad, needle) in [
        (
            &["--command", "true", "--as", "a/b"][..],
            "must not contain",
        ),
        (
            &[
                "--command",
                "true",
                "--as",
                "x",
                "--command",
                "true",
                "--as",
                "x",
            ],
            "twice",
        ),
        (&["--command", "true"], "--as"),
    ] {
        let mut args = vec!["instance", "add", "bad"];
        args.extend_from_slice(bad);
        env.run(&args).code(2).stderr_has(needle);
    }

    let cat = format!("cat '{}'", data.display());
    let conf = src.root.to_str().unwrap();
    env.run(&[
        "instance",
        "add",
        "pg",
        "--path",
        conf,
        "--command",
        &cat,
        "--as",
        "all.sql",
        "--command",
        "printf %s \"$CAIRN_INSTANCE\"; echo progress >&2",
        "--as",
        "who",
    ])
    .ok()
    .stdout_has("command");
    let job = job_id(&env.run(&["snapshot", "pg", "--no-wait"]).ok());
    env.run(&["jobs", &job.to_string(), "--wait"]).ok();
    let log = std::fs::read_to_string(mnt.join(format!(".cairn/jobs/{job}/log"))).unwrap();
    assert!(
        log.contains("who: progress"),
        "stderr goes to the job log: {log}"
    );
    let point = mnt.join("pg/latest");
    assert!(std::fs::read(point.join("all.sql")).unwrap() == std::fs::read(&data).unwrap());
    assert_eq!(std::fs::read_to_string(point.join("who")).unwrap(), "pg");
    assert_eq!(
        std::fs::read_to_string(point.join("conf/app.conf")).unwrap(),
        "port=5432\n"
    );
    let restored = env.path("restored.sql");
    run_with_files(
        &env,
        &["restore", "pg", "--stdout", "all.sql"],
        None,
        &restored,
    )
    .ok();
    assert!(std::fs::read(&restored).unwrap() == std::fs::read(&data).unwrap());
    env.run(&["restore", "pg", "--stdout", "conf"])
        .code(2)
        .stderr_has("no regular file");
    env.run(&["restore", "pg", "--mode", "in-place"])
        .failed()
        .stderr_has("--target");

    // A command that dies halfway: no point, and prune takes its data back.
    let points_before = std::fs::read_dir(mnt.join("pg")).unwrap().count();
    let packs_before = pack_bytes(&env.path("repo"));
    env.run(&[
        "instance",
        "add",
        "broken",
        "--command",
        "head -c 52428800 /dev/urandom; echo 'dump broke halfway' >&2; exit 1",
        "--as",
        "x.sql",
    ])
    .ok();
    env.run(&["snapshot", "broken"])
        .failed()
        .stderr_has("exited with status 1")
        .stderr_has("dump broke halfway");
    assert_eq!(std::fs::read_dir(mnt.join("broken")).unwrap().count(), 0);
    assert!(pack_bytes(&env.path("repo")) > packs_before + (45 << 20));
    env.run(&["prune", "--grace-hours", "0"]).ok();
    assert!(pack_bytes(&env.path("repo")) < packs_before + (1 << 20));
    assert_eq!(
        std::fs::read_dir(mnt.join("pg")).unwrap().count(),
        points_before
    );

    // Commands alone, without a path.
    env.run(&[
        "instance",
        "add",
        "only",
        "--command",
        "echo one",
        "--as",
        "one.txt",
    ])
    .ok();
    env.run(&["snapshot", "only"]).ok();
    let top: Vec<_> = std::fs::read_dir(mnt.join("only/latest"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["one.txt"]);
    assert_eq!(
        std::fs::read_to_string(mnt.join("only/latest/one.txt")).unwrap(),
        "one\n"
    );
    drop(daemon);
}

#[test]
fn a_cancel_kills_the_command_and_makes_no_point() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let daemon = env.mount_background();
    let pidfile = env.path("pid");
    // The group's other member (the background sleep) must die too.
    let cmd = format!(
        "sleep 600 & echo $! > '{}.bg'; echo $$ > '{}'; wait",
        pidfile.display(),
        pidfile.display()
    );
    env.run(&["instance", "add", "slow", "--command", &cmd, "--as", "s"])
        .ok();
    let job = job_id(&env.run(&["snapshot", "slow", "--no-wait"]).ok());
    let start = std::time::Instant::now();
    let read_pid = |p: &Path| std::fs::read_to_string(p).ok()?.trim().parse::<i32>().ok();
    let pids = loop {
        let bg = pidfile.with_extension("bg");
        if let (Some(a), Some(b)) = (read_pid(&pidfile), read_pid(&bg)) {
            break [a, b];
        }
        assert!(start.elapsed() < COMMAND_LIMIT, "the command did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    env.run(&["cancel", &job.to_string()]).ok();
    env.run(&["jobs", &job.to_string(), "--wait"])
        .failed()
        .stderr_has("cancel");
    for pid in pids {
        wait_dead(
            pid,
            std::time::Duration::from_secs(10),
            "the cancelled command",
        );
    }
    assert_eq!(
        std::fs::read_dir(env.mnt().join("slow")).unwrap().count(),
        0
    );
    drop(daemon);
}
