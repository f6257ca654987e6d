//! A stream from outside the daemon through the mount: `cairn snapshot I --stdin NAME`
//! and a plain shell write into the job's input (`jobs/<id>/input`) and end it with the
//! end marker in `ctl/stdin`. A writer that dies (SIGKILL) or closes without the marker,
//! and a cancel during the stream, leave a failed or cancelled job and no point; bad
//! requests queue nothing. Real mounts, guarded by
//! [`Daemon`](crate::support::daemon::Daemon), every wait limited.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::streams::run_with_files;
use crate::support::cli_env::{wait_status, Env, COMMAND_LIMIT};
use crate::support::daemon::kill;
use crate::support::fixture::{noise, SourceTree};
use crate::support::mount::fuse_available;

/// A mounted repository with instance `app` (one small directory).
fn mounted() -> Option<(Env, crate::support::daemon::Daemon)> {
    if !fuse_available() {
        return None;
    }
    let env = Env::new();
    env.init();
    let src = SourceTree::new(&env.path("conf"));
    src.file("app.conf", b"port=5432\n");
    let daemon = env.mount_background();
    let conf = src.root.to_str().unwrap().to_string();
    env.run(&["instance", "add", "app", "--path", &conf]).ok();
    Some((env, daemon))
}

/// The ids of the jobs in the mount.
fn job_ids(env: &Env) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(env.mnt().join(".cairn/jobs"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    ids.sort();
    ids
}

/// Waits for job `id` to end; returns its status JSON.
fn wait_job(env: &Env, id: u64) -> serde_json::Value {
    let path = env.mnt().join(format!(".cairn/jobs/{id}/status"));
    let start = Instant::now();
    loop {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if !matches!(v["state"].as_str(), Some("queued" | "running")) {
            return v;
        }
        assert!(start.elapsed() < COMMAND_LIMIT, "job {id} did not end: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn points(env: &Env) -> usize {
    std::fs::read_dir(env.mnt().join("app"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "latest")
        .count()
}

/// Writes one request into `ctl/<file>`; the errno when refused.
fn request(env: &Env, file: &str, line: &str) -> Result<(), i32> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(env.mnt().join(".cairn/ctl").join(file))
        .unwrap();
    f.write_all(line.as_bytes())
        .map_err(|e| e.raw_os_error().unwrap())
}

#[test]
fn cli_stdin_through_the_mount_round_trips_64_mib() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    let dump = env.path("dump.sql");
    std::fs::write(&dump, noise(31, 64 << 20)).unwrap();
    let out = env.path("out");
    let snap = ["snapshot", "app", "--stdin", "app.sql", "--json"];
    run_with_files(&env, &snap, Some(&dump), &out).ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["state"], "succeeded", "{v}");
    let expected = std::fs::read(&dump).unwrap();
    let through_mount = std::fs::read(env.mnt().join("app/latest/app.sql")).unwrap();
    assert!(
        through_mount == expected,
        "the stream reads back through the mount"
    );
    assert!(env.mnt().join("app/latest/conf/app.conf").is_file());
    let restored = env.path("restored.sql");
    let args = ["restore", "app", "latest", "--stdout", "app.sql"];
    run_with_files(&env, &args, None, &restored).ok();
    assert!(std::fs::read(&restored).unwrap() == expected);
    // The input is gone once the job ended.
    let id = job_ids(&env)[0];
    assert!(!env.mnt().join(format!(".cairn/jobs/{id}/input")).exists());
    drop(daemon);
}

#[test]
fn a_plain_shell_streams_by_hand() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    let dump = env.path("dump.sql");
    std::fs::write(&dump, noise(32, 3 << 20)).unwrap();
    // As docs/CONTROL.md shows it.
    let script = r#"set -e
cd "$MNT/.cairn"
exec 3<>ctl/snapshot
echo 'instance=app name=by-hand stdin=hand.sql' >&3
read -r reply <&3
id=${reply#job=}
exec 3>&-
cat "$DUMP" > jobs/$id/input && echo "end job=$id bytes=$(stat -c %s "$DUMP")" > ctl/stdin
echo "$id"
"#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("MNT", env.mnt())
        .env("DUMP", &dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let id: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let v = wait_job(&env, id);
    assert_eq!(v["state"], "succeeded", "{v}");
    let point = v["result"]["point"].as_str().unwrap().to_string();
    assert!(point.ends_with("-by-hand"), "{point}");
    let back = std::fs::read(env.mnt().join("app").join(&point).join("hand.sql")).unwrap();
    assert!(back == std::fs::read(&dump).unwrap());
    drop(daemon);
}

#[test]
fn a_killed_cli_fails_the_job_and_makes_no_point() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    let mut cli = env
        .command(&["snapshot", "app", "--stdin", "app.sql"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = cli.stdin.take().unwrap();
    stdin.write_all(&noise(33, 8 << 20)).unwrap();
    // The job reads: some of the stream went through.
    let start = Instant::now();
    while job_ids(&env).is_empty() {
        assert!(start.elapsed() < COMMAND_LIMIT, "no job");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(cli.id() as i32, libc::SIGKILL);
    wait_status("the killed cairn", &mut cli, COMMAND_LIMIT);
    drop(stdin);
    let v = wait_job(&env, job_ids(&env)[0]);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("without end marker"),
        "{v}"
    );
    assert_eq!(points(&env), 0);
    drop(daemon);
}

/// Queues a snapshot with `stdin=NAME`, writes `data` into its input, sends `marker`
/// (if any) and waits for the job: it fails with an error holding `error`, no point.
fn fails_with(env: &Env, name: &str, data: &[u8], marker: Option<&str>, error: &str) {
    request(env, "snapshot", &format!("instance=app stdin={name}\n")).unwrap();
    let id = *job_ids(env).last().unwrap();
    std::fs::write(env.mnt().join(format!(".cairn/jobs/{id}/input")), data).unwrap();
    if let Some(m) = marker {
        request(env, "stdin", &format!("end job={id} {m}\n")).unwrap();
    }
    let v = wait_job(env, id);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains(error), "{v}");
    assert_eq!(points(env), 0);
}

#[test]
fn a_writer_that_closes_without_the_marker_fails_the_job() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    fails_with(&env, "x.sql", b"half a dump", None, "without end marker");
    // A marker that counts other bytes fails it too.
    fails_with(&env, "y.sql", b"abc", Some("bytes=4"), "bytes=4");
    drop(daemon);
}

#[test]
fn a_cancel_during_the_stream_fails_the_writes() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    request(&env, "snapshot", "instance=app stdin=x.sql\n").unwrap();
    let id = job_ids(&env)[0];
    let mut input = OpenOptions::new()
        .write(true)
        .open(env.mnt().join(format!(".cairn/jobs/{id}/input")))
        .unwrap();
    input.write_all(&noise(34, 2 << 20)).unwrap();
    // A write at a wrong offset is refused.
    use std::os::unix::fs::FileExt;
    let err = input.write_at(b"x", 7).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    request(&env, "cancel", &format!("job={id}\n")).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let start = Instant::now();
    let err = loop {
        if let Err(e) = input.write_all(&chunk) {
            break e;
        }
        assert!(
            start.elapsed() < COMMAND_LIMIT,
            "writes go on after the cancel"
        );
    };
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    drop(input);
    let v = wait_job(&env, id);
    assert_eq!(v["state"], "cancelled", "{v}");
    assert_eq!(points(&env), 0);
    drop(daemon);
}

#[test]
fn bad_stdin_requests_queue_nothing() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    for line in [
        "instance=app stdin=a/b",
        "instance=app stdin=..",
        "instance=app stdin=x stdin=y",
        "instance=app stdin=conf",
    ] {
        assert_eq!(
            request(&env, "snapshot", &format!("{line}\n")),
            Err(libc::EINVAL),
            "{line}"
        );
    }
    assert_eq!(request(&env, "stdin", "end job=1\n"), Err(libc::ENOENT));
    assert_eq!(request(&env, "stdin", "job=1\n"), Err(libc::EINVAL));
    assert!(job_ids(&env).is_empty());
    drop(daemon);
}

#[test]
fn an_interrupted_cli_cancels_the_job_at_once_and_makes_no_point() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let before = job_ids(&env).len();
        let mut cli = env
            .command(&["snapshot", "app", "--stdin", "app.sql"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Some bytes, then the pipe stays open with nothing more: the CLI waits on it.
        let mut stdin = cli.stdin.take().unwrap();
        stdin.write_all(&noise(34, 1 << 20)).unwrap();
        let start = Instant::now();
        while job_ids(&env).len() == before {
            assert!(start.elapsed() < COMMAND_LIMIT, "no job");
            std::thread::sleep(Duration::from_millis(50));
        }
        let id = *job_ids(&env).last().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        kill(cli.id() as i32, signal);
        // Well before the 10 s the daemon waits for an end marker after a close.
        let bound = Duration::from_secs(5);
        let path = env.mnt().join(format!(".cairn/jobs/{id}/status"));
        let sent = Instant::now();
        let v = loop {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            if !matches!(v["state"].as_str(), Some("queued" | "running")) {
                break v;
            }
            assert!(
                sent.elapsed() < bound,
                "job {id} not ended {bound:?} after {signal}: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(v["state"], "cancelled", "{v}");
        let status = wait_status("the interrupted cairn", &mut cli, COMMAND_LIMIT);
        assert_eq!(status.code(), Some(130), "signal {signal}");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut cli.stderr.take().unwrap(), &mut err).unwrap();
        assert!(err.contains(&format!("job {id} was cancelled")), "{err}");
        drop(stdin);
        assert_eq!(points(&env), 0);
    }
    drop(daemon);
}

#[test]
fn an_instance_fed_by_stdin_only_is_defined_through_the_mount() {
    let Some((env, daemon)) = mounted() else {
        return;
    };
    env.run(&["instance", "add", "app-logical"])
        .ok()
        .stdout_has("fed by --stdin only");
    let dump = env.path("dump.sql");
    std::fs::write(&dump, noise(35, 3 << 20)).unwrap();
    let out = env.path("out");
    let snap = ["snapshot", "app-logical", "--stdin", "app.sql", "--json"];
    run_with_files(&env, &snap, Some(&dump), &out).ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["state"], "succeeded", "{v}");
    let top: Vec<_> = std::fs::read_dir(env.mnt().join("app-logical/latest"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["app.sql"], "the point holds the stream alone");
    assert!(
        std::fs::read(env.mnt().join("app-logical/latest/app.sql")).unwrap()
            == std::fs::read(&dump).unwrap(),
        "the stream reads back through the mount"
    );
    let points = |env: &Env| {
        std::fs::read_dir(env.mnt().join("app-logical"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "latest")
            .count()
    };
    assert_eq!(points(&env), 1);

    // Without --stdin there is nothing to read: refused, no job, no point.
    let jobs = job_ids(&env).len();
    env.run(&["snapshot", "app-logical"])
        .code(2)
        .stderr_has("needs --stdin NAME");
    assert_eq!(job_ids(&env).len(), jobs, "no job queued");
    assert_eq!(points(&env), 1);
    // Nor can a schedule feed it.
    let create = [
        "policy",
        "create",
        "nightly",
        "--times",
        "03:00",
        "--weekdays",
        "mon",
        "--keep-days",
        "7",
    ];
    env.run(&create).ok();
    env.run(&["policy", "bind", "nightly", "app-logical"])
        .code(2)
        .stderr_has("a scheduled snapshot would have nothing to read");
    // A bound instance does not become one fed by stdin only.
    env.run(&["policy", "bind", "nightly", "app"]).ok();
    env.run(&["instance", "add", "app"])
        .code(2)
        .stderr_has("bound to policy `nightly`");
    drop(daemon);
}
