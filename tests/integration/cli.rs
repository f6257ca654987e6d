//! The `cairn` binary, run as a person or a script would: exit codes, messages, `--json`
//! output, round trips through the real commands, and a backup killed with SIGKILL or
//! interrupted with SIGINT.
//!
//! The binary belongs to the `cairn-cli` package, so `CARGO_BIN_EXE_cairn` is not set for
//! this suite: the binary is found next to this test executable's profile directory and
//! built (once per process) with the same profile.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli_repo::{pack_bytes, Cli, PASSWORD};
use crate::support::cli_run::{cairn_bin, Run};
use crate::support::fixture::{assert_same_tree, noise, noise_tree, SourceTree};

fn wait_run(what: &str, child: Child) -> Run {
    Run::from_output(what.to_string(), child.wait_with_output().unwrap())
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("packs")).unwrap().flatten() {
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out
}

/// Polls `cond` every 5 ms until it holds or the child exits; panics on the latter.
fn wait_until(child: &mut Child, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("cairn exited ({status}) before {what}; stderr:\n{err}");
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) of our own child.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.id());
}

fn read_config(repo: &Path) -> Value {
    serde_json::from_slice(&fs::read(repo.join("config")).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// init and opening

#[test]
fn init_creates_an_encrypted_repository_and_refuses_to_do_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    let run = cli.run(&["init", &repo]).ok();
    let config = read_config(Path::new(&repo));
    let id = config["id"].as_str().unwrap();
    assert_eq!(config["encryption"], "xchacha20poly1305");
    assert!(run.stdout.contains(id), "{}", run.describe());
    let catalog = dir.path().join("cache").join(id).join("catalog.sqlite");
    assert!(
        run.stdout.contains(path_str(&catalog)),
        "names the catalog: {}",
        run.describe()
    );
    assert!(catalog.is_file());
    assert!(
        fs::read_dir(Path::new(&repo).join("keys")).unwrap().count() == 1,
        "one key file"
    );

    cli.run(&["init", &repo])
        .failed()
        .stderr_has("already exists");
    assert_eq!(read_config(Path::new(&repo))["id"], id, "config untouched");
    let points = cli.run(&["points", "--repo", &repo, "--json"]).ok();
    assert_eq!(points.json()["points"], Value::Array(vec![]));
}

#[test]
fn a_wrong_password_is_refused_clearly_and_a_password_file_works() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let wrong = Cli {
        password: Some("not the password".into()),
        ..Cli::new(dir.path())
    };
    wrong
        .run(&["points", "--repo", &repo])
        .failed()
        .stderr_has("wrong password");
    // The file wins over CAIRN_PASSWORD; its trailing newline is not part of the password.
    let file = dir.path().join("pw");
    fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    wrong
        .run(&[
            "points",
            "--repo",
            &repo,
            "--password-file",
            path_str(&file),
        ])
        .ok();
}

#[test]
fn a_missing_password_without_a_terminal_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let nopw = Cli::without_password(dir.path());
    let repo = nopw.repo();
    nopw.run(&["init", &repo])
        .code(2)
        .stderr_has("CAIRN_PASSWORD")
        .stderr_has("--password-file")
        .stderr_has("not a terminal");
    assert!(
        !Path::new(&repo).join("config").exists(),
        "nothing was created"
    );
    Cli::new(dir.path()).run(&["init", &repo]).ok();
    nopw.run(&["points", "--repo", &repo])
        .code(2)
        .stderr_has("is encrypted and no password was given")
        .stderr_has("CAIRN_PASSWORD");
}

/// Runs cairn under `script(1)`, so that it has a terminal, typing `input`. On a
/// terminal stdout and stderr are one stream, which `script` relays on its stdout.
fn on_a_terminal(cli: &Cli, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let quoted: Vec<String> = std::iter::once(path_str(cairn_bin()))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut script = Command::new("script");
    cli.configure(&mut script)
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = script
        .spawn()
        .expect("script(1) (util-linux) runs cairn on a terminal: install it");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    Run::from_output(
        format!("script -c 'cairn {}'", args.join(" ")),
        child.wait_with_output().unwrap(),
    )
}

#[test]
fn passwords_are_asked_for_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    on_a_terminal(&cli, &["init", &repo], "one\ntwo\n")
        .code(2)
        .stdout_has("the same password again")
        .stdout_has("the two passwords differ");
    assert!(!Path::new(&repo).join("config").exists());
    on_a_terminal(&cli, &["init", &repo], "typed pw\ntyped pw\n")
        .ok()
        .stdout_has("created repository");
    on_a_terminal(&cli, &["points", "--repo", &repo], "wrong\ntyped pw\n")
        .ok()
        .stdout_has("wrong password, try again")
        .stdout_has("no points yet");
    Cli {
        password: Some("typed pw".into()),
        ..Cli::new(dir.path())
    }
    .run(&["points", "--repo", &repo])
    .ok();
}

#[test]
fn an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    cli.run(&["init", "--no-encryption", &repo]).ok();
    let mut config = read_config(Path::new(&repo));
    config["version"] = Value::from(99);
    fs::write(
        Path::new(&repo).join("config"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    cli.run(&["points", "--repo", &repo])
        .failed()
        .stderr_has("version 99 is not supported")
        .stderr_has("upgrade cairn");
}

#[test]
fn a_bad_repository_url_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    for args in [
        vec!["points", "--repo", "ftp://x"],
        vec!["init", "ftp://x"],
        vec!["verify", "--repo", "ftp://x"],
    ] {
        let run = cli
            .run(&args)
            .stderr_has("ftp://x")
            .stderr_has("unknown scheme")
            .stderr_has("s3://BUCKET/PREFIX");
        assert!(run.code == 2 || run.code == 1, "{}", run.describe());
    }
    cli.run(&["points", "--repo", &cli.repo()])
        .code(2)
        .stderr_has("no cairn repository")
        .stderr_has("cairn init");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    cli.run(&["snapshot", "x", "--repo", "r"]).code(2); // no --path
    cli.run(&["restore", "x", "--repo", "r", "--mode", "sideways"])
        .code(2);
    cli.run(&["verify", "--repo", "r", "--point", "latest"])
        .code(2)
        .stderr_has("--instance");
    cli.run(&["points"]).code(2).stderr_has("--repo");
    cli.run(&["restore", "x", "--repo", "r"])
        .code(2)
        .stderr_has("--target");
}

// ---------------------------------------------------------------------------------------
// round trips

#[test]
fn snapshot_points_restore_and_verify_round_trip_on_an_encrypted_repository() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let src = dir.path().join("src");
    SourceTree::all_cases(&src, 3 << 20);

    let snap = cli
        .run(&[
            "snapshot", "web", "--repo", &repo, "--path", "src", "--json",
        ])
        .ok();
    let snap = snap.json();
    let name = snap["point"].as_str().unwrap().to_string();
    assert_eq!(snap["instance"], "web");
    assert!(snap["files"].as_u64().unwrap() >= 15, "{snap}");
    assert!(snap["bytes"].as_u64().unwrap() > 3 << 20, "{snap}");
    assert!(snap["stored_bytes"].as_u64().unwrap() > 0, "{snap}");
    assert_eq!(snap["warnings"], Value::Array(vec![]));

    let points = cli.run(&["points", "--repo", &repo, "--json"]).ok().json();
    let list = points["points"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{points}");
    assert_eq!(list[0]["name"], name.as_str());
    assert_eq!(list[0]["instance"], "web");
    assert_eq!(list[0]["kind"], "manual");
    assert_eq!(list[0]["files"], snap["files"]);
    assert_eq!(list[0]["bytes"], snap["bytes"]);
    let table = cli.run(&["points", "web", "--repo", &repo]).ok();
    assert!(table.stdout.contains(&name), "{}", table.describe());

    let target = dir.path().join("restored");
    let restored = cli
        .run(&[
            "restore",
            "web",
            "--repo",
            &repo,
            "--target",
            path_str(&target),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(restored["point"], name.as_str());
    assert_eq!(restored["bytes"], snap["bytes"]);
    assert_same_tree(&src, &target);

    let verified = cli
        .run(&["verify", "--repo", &repo, "--read-data", "--json"])
        .code(0)
        .json();
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["points_checked"], 1);
    assert_eq!(verified["damaged"], Value::Array(vec![]));
}

#[test]
fn an_unencrypted_repository_needs_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    let init = cli.run(&["init", "--no-encryption", &repo]).ok();
    assert!(
        init.stdout.contains("encryption: none"),
        "{}",
        init.describe()
    );
    assert_eq!(read_config(Path::new(&repo))["encryption"], "none");
    let src = SourceTree::new(&dir.path().join("src"));
    src.file("a.txt", b"alpha");
    src.file("sub/b.bin", &noise(3, 200_000));
    let snap = cli
        .run(&["snapshot", "db", "--repo", &repo, "--path", "src"])
        .ok();
    for field in [
        "point",
        "files",
        "bytes",
        "new",
        "stored",
        "duration",
        "throughput",
    ] {
        assert!(snap.stdout.contains(field), "{}", snap.describe());
    }
    let target = dir.path().join("out");
    cli.run(&[
        "restore", "db", "latest", "--repo", &repo, "--target", "out",
    ])
    .ok();
    assert_same_tree(&src.root, &target);
    let verify = cli.run(&["verify", "--repo", &repo]).code(0);
    assert!(verify.stdout.contains("ok"), "{}", verify.describe());
}

#[test]
fn snapshot_labels_and_excludes_and_restore_includes() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    cli.run(&["init", "--no-encryption", &repo]).ok();
    let src = SourceTree::new(&dir.path().join("src"));
    src.file("keep/a.txt", b"a");
    src.file("keep/b.log", b"b");
    src.file("cache/big.tmp", &noise(4, 100_000));
    let snap = cli
        .run(&[
            "snapshot",
            "app",
            "--repo",
            &repo,
            "--path",
            "src",
            "--label",
            "before-upgrade",
            "--exclude",
            "*.tmp",
            "--json",
        ])
        .ok()
        .json();
    let name = snap["point"].as_str().unwrap();
    assert!(name.ends_with("-before-upgrade"), "{snap}");
    let out = dir.path().join("out");
    cli.run(&[
        "restore",
        "app",
        name,
        "--repo",
        &repo,
        "--target",
        path_str(&out),
        "--include",
        "keep/*.txt",
    ])
    .ok();
    assert_eq!(fs::read(out.join("keep/a.txt")).unwrap(), b"a");
    assert!(!out.join("keep/b.log").exists(), "not included");
    assert!(
        !out.join("cache/big.tmp").exists(),
        "excluded from the point"
    );
    cli.run(&[
        "snapshot",
        "app",
        "--repo",
        &repo,
        "--path",
        "src",
        "--label",
        "no:colons",
    ])
    .code(2)
    .stderr_has("label");
    cli.run(&[
        "restore",
        "app",
        "2001-01-01T000000Z",
        "--repo",
        &repo,
        "--target",
        "x",
    ])
    .code(2)
    .stderr_has("cairn points");
}

#[test]
fn catalog_rebuild_regenerates_the_catalog_from_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    cli.run(&["init", "--no-encryption", &repo]).ok();
    let src = SourceTree::new(&dir.path().join("src"));
    src.file("f", &noise(5, 500_000));
    cli.run(&["snapshot", "i1", "--repo", &repo, "--path", "src"])
        .ok();
    cli.run(&["snapshot", "i2", "--repo", &repo, "--path", "src"])
        .ok();
    fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let rebuilt = cli
        .run(&["catalog", "rebuild", &repo, "--json"])
        .ok()
        .json();
    assert_eq!(rebuilt["points"], 2, "{rebuilt}");
    assert_eq!(rebuilt["instances"], 2, "{rebuilt}");
    assert!(rebuilt["packs"].as_u64().unwrap() >= 1, "{rebuilt}");
    assert!(rebuilt["data_blobs"].as_u64().unwrap() >= 1, "{rebuilt}");
    let text = cli.run(&["catalog", "rebuild", &repo]).ok();
    assert!(
        text.stdout.contains("2 in 2 instance(s)"),
        "{}",
        text.describe()
    );
}

// ---------------------------------------------------------------------------------------
// damage

#[test]
fn verify_read_data_exits_1_and_names_the_file_in_a_corrupted_pack() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    cli.run(&["init", "--no-encryption", &repo]).ok();
    let src = SourceTree::new(&dir.path().join("src"));
    src.file("precious.bin", &noise(6, 2 << 20));
    src.file("notes.txt", b"small and fine");
    let snap = cli
        .run(&[
            "snapshot", "files", "--repo", &repo, "--path", "src", "--json",
        ])
        .ok()
        .json();
    cli.run(&["verify", "--repo", &repo, "--read-data"]).code(0);

    // The data pack is the biggest; its middle is inside precious.bin's chunks.
    let pack = pack_files(Path::new(&repo))
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    fs::write(&pack, bytes).unwrap();

    let text = cli.run(&["verify", "--repo", &repo, "--read-data"]).code(1);
    let point = snap["point"].as_str().unwrap();
    assert!(
        text.stdout.contains(&format!("files/{point}")),
        "names the point: {}",
        text.describe()
    );
    assert!(
        text.stdout.contains("precious.bin"),
        "names the file: {}",
        text.describe()
    );
    let json = cli
        .run(&["verify", "--repo", &repo, "--read-data", "--json"])
        .code(1)
        .json();
    assert_eq!(json["ok"], false);
    let damaged = json["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{json}");
    let paths: Vec<&str> = damaged[0]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(paths.iter().any(|p| p.ends_with("precious.bin")), "{json}");
    assert!(!paths.iter().any(|p| p.ends_with("notes.txt")), "{json}");
}

// ---------------------------------------------------------------------------------------
// crashes and interrupts

/// Big enough that a backup is still uploading when killed, at the default pack size.
const CRASH_FILES: usize = 10;
const CRASH_FILE_SIZE: usize = 30_000_000;

#[test]
fn a_snapshot_killed_mid_upload_leaves_a_consistent_repository_and_its_packs_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    // Unencrypted: encryption in a debug build would make this minutes long; the crash
    // behaviour does not depend on it.
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    cli.run(&["init", "--no-encryption", &repo]).ok();
    let src = dir.path().join("src");
    let size = noise_tree(&src, CRASH_FILES, CRASH_FILE_SIZE, 100);

    let args = [
        "snapshot",
        "big",
        "--repo",
        repo.as_str(),
        "--path",
        "src",
        "--json",
    ];
    let mut child = cli.spawn(&args);
    let repo_path = PathBuf::from(&repo);
    wait_until(
        &mut child,
        "40% of the data was uploaded",
        Duration::from_secs(600),
        || pack_bytes(&repo_path) >= size * 2 / 5,
    );
    signal(&child, libc::SIGKILL);
    let killed = wait_run("killed snapshot", child);
    assert_eq!(killed.code, 128 + libc::SIGKILL, "{}", killed.describe());
    let uploaded = pack_bytes(&repo_path);

    let verified = cli
        .run(&["verify", "--repo", &repo, "--json"])
        .code(0)
        .json();
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(
        verified["points_checked"], 0,
        "the killed point does not exist"
    );
    let points = cli.run(&["points", "--repo", &repo, "--json"]).ok().json();
    assert_eq!(points["points"], Value::Array(vec![]));

    let again = cli.run(&args).ok().json();
    let stored = again["stored_bytes"].as_u64().unwrap();
    assert_eq!(again["bytes"].as_u64().unwrap(), size);
    assert!(
        stored <= size - uploaded + (size / 10),
        "the second run stored {stored} of {size} bytes although {uploaded} were already \
         uploaded: {again}"
    );
    assert!(stored < size * 3 / 4, "well below the data size: {again}");

    let target = dir.path().join("restored");
    cli.run(&[
        "restore",
        "big",
        "--repo",
        &repo,
        "--target",
        path_str(&target),
    ])
    .ok();
    assert_same_tree(&src, &target);
    cli.run(&["verify", "--repo", &repo]).code(0);
}

#[test]
fn ctrl_c_cancels_a_snapshot_and_a_restore_without_a_point_or_a_touched_target() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    let repo = cli.repo();
    cli.run(&["init", "--no-encryption", &repo]).ok();
    let src = dir.path().join("src");
    // Big enough that even an optimised build is still staging when interrupted.
    noise_tree(&src, 8, CRASH_FILE_SIZE, 100);
    let repo_path = PathBuf::from(&repo);

    // A snapshot interrupted once packs are being written: exit 130, no point.
    let mut child = cli.spawn(&["snapshot", "s", "--repo", &repo, "--path", "src"]);
    wait_until(
        &mut child,
        "a pack was uploaded",
        Duration::from_secs(600),
        || pack_bytes(&repo_path) > 0,
    );
    signal(&child, libc::SIGINT);
    wait_run("interrupted snapshot", child)
        .code(130)
        .stderr_has("cancel");
    let points = cli.run(&["points", "--repo", &repo, "--json"]).ok().json();
    assert_eq!(points["points"], Value::Array(vec![]));
    cli.run(&["verify", "--repo", &repo]).code(0);

    // A restore interrupted while it stages: exit 130, the target never appears.
    cli.run(&["snapshot", "s", "--repo", &repo, "--path", "src"])
        .ok();
    let target = dir.path().join("restored");
    let target_arg = target.to_str().unwrap();
    let mut child = cli.spawn(&["restore", "s", "--repo", &repo, "--target", target_arg]);
    let staged = |work: &Path| {
        fs::read_dir(work)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".cairn-stage-"))
    };
    wait_until(
        &mut child,
        "the restore began staging",
        Duration::from_secs(600),
        || staged(dir.path()),
    );
    signal(&child, libc::SIGINT);
    wait_run("interrupted restore", child)
        .code(130)
        .stderr_has("cancel");
    assert!(
        !target.exists(),
        "the target was created by a cancelled restore"
    );
    assert!(!staged(dir.path()), "the stage was left behind");
}

// ---------------------------------------------------------------------------------------
// S3

#[test]
fn init_snapshot_and_restore_on_s3_with_the_s3_flags() {
    let Some(s3) = crate::support::s3::s3_env() else {
        eprintln!("NOTE: no S3 server outside CI: the CLI's S3 test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let url = format!(
        "s3://{}/{}",
        s3.bucket,
        crate::support::s3::unique_prefix("cli")
    );
    let flags = [
        "--s3-endpoint",
        s3.endpoint.as_str(),
        "--s3-region",
        "us-east-1",
        "--s3-access-key-id",
        s3.key.as_str(),
        "--s3-secret-access-key",
        s3.secret.as_str(),
    ];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(flags.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: &[&str]| {
        let v = with(args);
        cli.run(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(&["init", "--no-encryption", &url]).ok();
    let src = SourceTree::new(&dir.path().join("src"));
    src.file("x", &noise(8, 300_000));
    src.file("d/y", b"y");
    run(&["snapshot", "s3i", "--repo", &url, "--path", "src"]).ok();
    let target = dir.path().join("out");
    run(&[
        "restore",
        "s3i",
        "--repo",
        &url,
        "--target",
        path_str(&target),
    ])
    .ok();
    assert_same_tree(&src.root, &target);
    run(&["verify", "--repo", &url, "--read-data"]).code(0);
}
