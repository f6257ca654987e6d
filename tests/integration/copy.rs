//! `cairn init --like` and `cairn copy`: points copied between repositories with their
//! history, as the real binary runs them (local, and S3 on the test server), through a
//! mount (`ctl/copy`), and interrupted then resumed (through the library, with a store
//! that fails after a number of writes, then a fresh catalog: a killed copy's state).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use cairn::catalog::Catalog;
use cairn::engine::{
    backup, copy, forget, restore, BackupRequest, CancelToken, CopyRequest, ForgetRequest,
    NoProgress, RestoreMode, RestoreRequest,
};
use cairn::repo::{layout, KdfParams, Repository};
use cairn::store::{FaultStore, Location, Store};

use crate::support::cli_env::Env;
use crate::support::cli_repo::{pack_bytes, Cli, PASSWORD};
use crate::support::cli_run::Run;
use crate::support::daemon::Daemon;
use crate::support::fixture::{assert_same_tree, noise, noise_tree, SourceTree};
use crate::support::mount::fuse_available;
use crate::support::repos::{fast_init, TestRepo};
use crate::support::s3::{cli_vars, s3_env, unique_prefix};

/// `cairn ARGS` in `cli`'s directory with the extra variables `vars`.
fn run_with(cli: &Cli, vars: &[(String, String)], args: &[&str]) -> Run {
    let mut cmd: Command = cli.command(args);
    cmd.envs(vars.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().expect("running cairn");
    Run::from_output(format!("cairn {}", args.join(" ")), out)
}

/// Sources of two instances with files that change between points: `www` gets three
/// points, `db` two.
fn make_points(cli: &Cli, vars: &[(String, String)], repo: &str) {
    let www = cli.work.join("www");
    let db = cli.work.join("db");
    let t = SourceTree::new(&www);
    t.file("index.html", b"<h1>one</h1>");
    t.file("assets/big.bin", &noise(7, 3 << 20));
    t.file("assets/text.css", &b"body { color: red }\n".repeat(3000));
    fs::hard_link(www.join("index.html"), www.join("index-link.html")).unwrap();
    symlink("index.html", www.join("home")).unwrap();
    let sparse = fs::File::create(www.join("sparse.img")).unwrap();
    sparse.set_len(8 << 20).unwrap();
    SourceTree::new(&db).file("dump.sql", &noise(8, 1 << 20));
    let snap = |name: &str, path: &Path, label: &str| {
        let p = path.to_str().unwrap();
        run_with(
            cli,
            vars,
            &[
                "snapshot", name, "--repo", repo, "--path", p, "--label", label,
            ],
        )
        .ok();
    };
    snap("www", &www, "first");
    snap("db", &db, "first");
    t.file("index.html", b"<h1>two</h1>");
    t.file("assets/new.bin", &noise(9, 1 << 20));
    snap("www", &www, "second");
    fs::remove_file(www.join("assets/text.css")).unwrap();
    SourceTree::new(&db).file("dump.sql", &noise(10, 1 << 20));
    snap("www", &www, "third");
    snap("db", &db, "second");
}

/// The names of `repo`'s points, `instance/name`, in listing order.
fn point_names(cli: &Cli, vars: &[(String, String)], repo: &str) -> Vec<String> {
    let v = run_with(cli, vars, &["points", "--repo", repo, "--json"])
        .ok()
        .json();
    v["points"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["instance"].as_str().unwrap(),
                p["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// A repository and the variables that open it.
type Side<'a> = (&'a str, &'a [(String, String)]);

/// Every point of `a` restores from `b` exactly as from `a`.
fn assert_restores_alike(cli: &Cli, a: Side<'_>, b: Side<'_>) {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let names = point_names(cli, a.1, a.0);
    assert_eq!(names, point_names(cli, b.1, b.0));
    for (n, point) in names.iter().enumerate() {
        let (instance, name) = point.split_once('/').unwrap();
        let mut restored = Vec::new();
        for (side, (repo, vars)) in [("a", a), ("b", b)] {
            let target = cli.work.join(format!("restored-{call}-{side}-{n}"));
            let t = target.to_str().unwrap();
            run_with(
                cli,
                vars,
                &["restore", instance, name, "--repo", repo, "--target", t],
            )
            .ok();
            restored.push(target);
        }
        assert_same_tree(&restored[0], &restored[1]);
    }
}

/// A work directory with repository `a` holding [`make_points`]'s points, and the path
/// `b` for another one.
fn source_repository(work: &Path) -> (Cli, String, String) {
    let cli = Cli::new(work);
    let (a, b) = (cli.work.join("a"), cli.work.join("b"));
    let (a, b) = (
        a.to_str().unwrap().to_string(),
        b.to_str().unwrap().to_string(),
    );
    cli.run(&["init", &a]).ok();
    make_points(&cli, &[], &a);
    (cli, a, b)
}

fn copy_json(cli: &Cli, vars: &[(String, String)], args: &[&str]) -> Value {
    let mut all = vec!["copy"];
    all.extend_from_slice(args);
    all.push("--json");
    let v = run_with(cli, vars, &all).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    v
}

#[test]
fn copy_into_a_like_repository_moves_stored_blobs_and_a_second_copy_sends_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (cli, a, b) = source_repository(work.path());
    let (a, b) = (a.as_str(), b.as_str());
    // Two log records of www, which a copy between repositories like each other takes.
    let logs = cli.work.join("logs");
    let glob = logs.join("*.log");
    let glob = glob.to_str().unwrap();
    for line in ["one\n", "one\ntwo\n"] {
        SourceTree::new(&logs).file("app.log", line.as_bytes());
        cli.run(&["log", "archive", "www", "--repo", a, "--log", glob])
            .ok();
    }
    cli.run(&["init", b, "--like", a]).ok().stdout_has("like:");

    let text = cli.run(&["copy", "--from", a, "--to", b]).ok();
    let text = text
        .stdout_has("copied     www/")
        .stdout_has("points     5 copied, 0 skipped (already there)")
        .stdout_has("re-chunked: no")
        .stdout_has("logs       2 log record(s) copied")
        .stdout_has(": ok");
    assert!(!text.stdout.contains("re-chunking"), "{}", text.describe());
    let log_objects = |repo: &str| {
        fs::read_dir(Path::new(repo).join("logs/www"))
            .unwrap()
            .count()
    };
    assert_eq!(log_objects(b), 2);
    cli.run(&["verify", "--repo", b, "--read-data"])
        .ok()
        .stdout_has("ok: no damage found");
    assert_restores_alike(&cli, (a, &[]), (b, &[]));

    let again = copy_json(&cli, &[], &["--from", a, "--to", b]);
    assert_eq!(again["points_copied"], 0, "{again}");
    assert_eq!(again["points_skipped"], 5, "{again}");
    assert_eq!(again["bytes_uploaded"], 0, "{again}");
    assert_eq!(again["rechunked"], false, "{again}");
    assert_eq!(again["log_records_copied"], 0, "{again}");

    // A point taken in A later is the only one copied next time, re-chained onto B's.
    let www = cli.work.join("www");
    SourceTree::new(&www).file("index.html", b"<h1>four</h1>");
    let w = www.to_str().unwrap();
    cli.run(&["snapshot", "www", "--repo", a, "--path", w]).ok();
    let third = copy_json(&cli, &[], &["www", "latest", "--from", a, "--to", b]);
    assert_eq!(third["points_copied"], 1, "{third}");
    let uploaded = third["bytes_uploaded"].as_u64().unwrap();
    assert!(uploaded > 0 && uploaded < 64 << 10, "{third}");
    cli.run(&["verify", "--repo", b]).ok();
    assert_eq!(point_names(&cli, &[], a), point_names(&cli, &[], b));
    let target = cli.work.join("latest-from-b");
    let t = target.to_str().unwrap();
    cli.run(&["restore", "www", "latest", "--repo", b, "--target", t])
        .ok();
    assert_same_tree(&www, &target);
}

#[test]
fn copy_into_a_repository_with_other_keys_rechunks_with_its_own_password() {
    let work = tempfile::tempdir().unwrap();
    let (cli, a, b) = source_repository(work.path());
    let (a, b) = (a.as_str(), b.as_str());
    let other = [("CAIRN_PASSWORD".to_string(), "another one".to_string())];
    run_with(&cli, &other, &["init", b]).ok();
    let to = [("CAIRN_TO_PASSWORD".to_string(), "another one".to_string())];
    run_with(&cli, &to, &["copy", "--from", a, "--to", b, "--read-data"])
        .ok()
        .stdout_has("re-chunking: the target has other keys or chunker parameters")
        .stdout_has("points     5 copied")
        .stdout_has("re-chunked: yes")
        .stdout_has("with their data: ok");
    // B opens with its own password only.
    cli.run(&["points", "--repo", b]).code(2);
    run_with(&cli, &other, &["verify", "--repo", b, "--read-data"]).ok();
    assert_restores_alike(&cli, (a, &[]), (b, &other));
    let again = run_with(&cli, &to, &["copy", "--from", a, "--to", b, "--json"])
        .ok()
        .json();
    assert_eq!(again["points_skipped"], 5, "{again}");
    assert_eq!(again["bytes_uploaded"], 0, "{again}");
}

#[test]
fn init_like_takes_the_like_password_apart_and_refuses_a_wrong_one() {
    let work = tempfile::tempdir().unwrap();
    let cli = Cli::new(work.path());
    let (a, b, c) = (cli.work.join("a"), cli.work.join("b"), cli.work.join("c"));
    let (a, b, c) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
    );
    cli.run(&["init", a]).ok();
    let pw = cli.work.join("like-pw");
    fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let own = [("CAIRN_PASSWORD".to_string(), "b's own".to_string())];
    run_with(
        &cli,
        &own,
        &[
            "init",
            b,
            "--like",
            a,
            "--like-password-file",
            pw.to_str().unwrap(),
        ],
    )
    .ok();
    run_with(&cli, &own, &["points", "--repo", b]).ok();
    let wrong = [("CAIRN_LIKE_PASSWORD".to_string(), "wrong".to_string())];
    run_with(&cli, &wrong, &["init", c, "--like", a]).code(2);
    assert!(!Path::new(c).join(layout::CONFIG).exists());
    cli.run(&["init", c, "--like", a, "--no-encryption"])
        .code(2);
    // A copy into storage that holds no repository yet makes it like A.
    let v = copy_json(&cli, &[], &["--from", a, "--to", c]);
    assert_eq!(
        (v["created"].as_bool(), v["rechunked"].as_bool()),
        (Some(true), Some(false)),
        "{v}"
    );
    cli.run(&["points", "--repo", c]).ok();
}

/// Restores `www`'s latest point of `repo` into `target` (through the library).
fn restore_latest(repo: &Repository, catalog: &Arc<Catalog>, target: &Path) {
    let r = RestoreRequest {
        instance: "www".into(),
        point: "latest".into(),
        target: Some(target.to_path_buf()),
        includes: Vec::new(),
        mode: RestoreMode::New,
        delete_excluded: false,
        skip_damaged: false,
    };
    restore(repo, catalog, &r, &NoProgress, &CancelToken::new()).unwrap();
}

/// Bytes of the packs `repo` holds.
fn stored_pack_bytes(repo: &Repository) -> u64 {
    let packs = repo.store().list(layout::PACKS).unwrap();
    packs.iter().map(|o| o.size).sum()
}

/// A copy stopped after a few pack uploads (writes fail from then on, as after a kill),
/// resumed with a fresh catalog of the target: it sends only the rest, and the target
/// holds every point intact.
#[test]
fn an_interrupted_copy_resumes_and_sends_only_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let mut opts = fast_init(true);
    opts.pack_size = 1 << 20;
    let store = Store::open(&Location::Local(work.path().join("a"))).unwrap();
    let a = Repository::init(store, &opts).unwrap();
    let a = TestRepo::open_catalog(a, &work.path().join("ca"));
    let src = work.path().join("src");
    noise_tree(&src, 12, 512 << 10, 1);
    let cancel = CancelToken::new();
    for i in 0..2 {
        SourceTree::new(&src).file("changing", &noise(100 + i, 1 << 20));
        let req = BackupRequest::new("www", vec![src.clone()]);
        backup(&a.repo, &a.catalog, &req, &NoProgress, &cancel).unwrap();
    }
    let local = object_store::local::LocalFileSystem::new_with_prefix({
        fs::create_dir_all(work.path().join("b")).unwrap();
        work.path().join("b")
    })
    .unwrap();
    let fault = Arc::new(FaultStore::new(Arc::new(local)));
    let faulty = Store::from_object_store(fault.clone(), "fault(b)".into()).unwrap();
    let b = Repository::init_like(
        faulty,
        &a.repo,
        Some(b"b"),
        KdfParams::insecure_fast(),
        None,
    )
    .unwrap();
    let req = CopyRequest {
        verify: true,
        read_data: true,
        ..CopyRequest::default()
    };
    // The config and the key file are written: three packs more, then the "kill".
    fault.fail_writes_after(3);
    let first_catalog = Arc::new(Catalog::open(&work.path().join("cb1/catalog.sqlite")).unwrap());
    let stopped = copy(
        &a.repo,
        &a.catalog,
        &b,
        &first_catalog,
        &req,
        &NoProgress,
        &cancel,
    );
    assert!(stopped.is_err(), "the copy stopped");
    fault.heal();
    let sent_before = stored_pack_bytes(&b);
    assert!(sent_before > 0, "packs were uploaded before the stop");
    assert!(b.store().list(layout::POINTS).unwrap().is_empty());

    let fresh = Arc::new(Catalog::open(&work.path().join("cb2/catalog.sqlite")).unwrap());
    let out = copy(&a.repo, &a.catalog, &b, &fresh, &req, &NoProgress, &cancel).unwrap();
    assert_eq!(out.points_copied, 2);
    assert!(out.verify.as_ref().unwrap().is_ok(), "{:?}", out.verify);
    // Uploads of the first run still in flight when it failed may land after
    // `sent_before` was taken: the rest is at most what was not there yet.
    let total = stored_pack_bytes(&b);
    assert!(
        out.bytes_uploaded < total && out.bytes_uploaded + sent_before <= total,
        "resumed: sent {} of {total} ({sent_before} before)",
        out.bytes_uploaded
    );
    for (side, repo, catalog) in [("a", &a.repo, &a.catalog), ("b", &b, &fresh)] {
        restore_latest(repo, catalog, &work.path().join(format!("restored-{side}")));
    }
    assert_same_tree(
        &work.path().join("restored-a"),
        &work.path().join("restored-b"),
    );
    assert_same_tree(&src, &work.path().join("restored-b"));
}

/// `cairn copy` between a local repository and one on the S3 test server, both ways.
#[test]
fn copy_local_to_s3_and_s3_to_local() {
    let Some(s3) = s3_env() else { return };
    let vars = cli_vars(s3, &s3.endpoint);
    let work = tempfile::tempdir().unwrap();
    let cli = Cli::new(work.path());
    let a = cli.work.join("a");
    let a = a.to_str().unwrap();
    let b = format!("s3://{}/{}", s3.bucket, unique_prefix("copy-to"));
    let c = cli.work.join("c");
    let c = c.to_str().unwrap();
    run_with(&cli, &vars, &["init", a]).ok();
    make_points(&cli, &vars, a);
    run_with(&cli, &vars, &["init", &b, "--like", a]).ok();
    let v = run_with(&cli, &vars, &["copy", "--from", a, "--to", &b, "--json"])
        .ok()
        .json();
    assert_eq!(
        (v["points_copied"].as_u64(), v["ok"].as_bool()),
        (Some(5), Some(true)),
        "{v}"
    );
    run_with(&cli, &vars, &["init", c, "--like", &b]).ok();
    let v = run_with(&cli, &vars, &["copy", "--from", &b, "--to", c, "--json"])
        .ok()
        .json();
    assert_eq!(
        (v["points_copied"].as_u64(), v["ok"].as_bool()),
        (Some(5), Some(true)),
        "{v}"
    );
    run_with(&cli, &vars, &["verify", "--repo", &b, "--read-data"]).ok();
    assert_restores_alike(&cli, (a, &vars), (c, &vars));
    // S3 to S3, into a prefix with other keys.
    let d = format!("s3://{}/{}", s3.bucket, unique_prefix("copy-s3-s3"));
    run_with(&cli, &vars, &["init", &d]).ok();
    let v = run_with(
        &cli,
        &vars,
        &["copy", "www", "--from", &b, "--to", &d, "--json"],
    )
    .ok()
    .json();
    assert_eq!(
        (v["points_copied"].as_u64(), v["rechunked"].as_bool()),
        (Some(3), Some(true)),
        "{v}"
    );
}

/// `env`'s repository made and mounted, with an instance `web` of three files of `size`
/// bytes and one point of it.
fn mounted_web_point(env: &Env, size: usize) -> (Daemon, PathBuf) {
    env.init();
    let src = env.path("src");
    noise_tree(&src, 3, size, 3);
    let daemon = env.mount_background();
    env.run(&["instance", "add", "web", "--path", src.to_str().unwrap()])
        .ok();
    env.run(&["snapshot", "web"]).ok();
    (daemon, src)
}

/// `web`'s latest point in the repository `repo` restores as `src`.
fn assert_latest_restores_as(env: &Env, repo: &str, src: &Path) {
    let target = env.path("restored");
    let target = target.to_str().unwrap();
    env.run(&[
        "restore", "web", "latest", "--repo", repo, "--target", target,
    ])
    .ok();
    assert_same_tree(src, Path::new(target));
}

/// `cairn copy --to B` with CAIRN_MOUNT set and no --from: a `copy` job of the mount's
/// daemon copies the mounted repository's points into B.
#[test]
fn copy_through_the_mount_is_a_job() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let (daemon, src) = mounted_web_point(&env, 256 << 10);
    SourceTree::new(&src).file("later", b"a second point");
    env.run(&["snapshot", "web"]).ok();
    let b = env.path("b");
    let b = b.to_str().unwrap();
    env.run(&["init", b, "--like", &env.repo()]).ok();
    env.run(&["copy", "--to", b])
        .ok()
        .stdout_has("points     2 copied, 0 skipped")
        .stdout_has("instances  1 definition(s) copied")
        .stdout_has("re-chunked: no")
        .stdout_has(": ok");
    let again = env.run(&["copy", "web", "--to", b, "--json"]).ok().json();
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["result"]["points_skipped"], 2, "{again}");
    assert_eq!(again["result"]["bytes_uploaded"], 0, "{again}");
    // A refused request: no such instance.
    env.run(&["copy", "nope", "--to", b]).code(2);
    drop(daemon);
    assert_latest_restores_as(&env, b, &src);
}

/// Through the mount of an encrypted repository, a copy into a repository made `--like`
/// it with the same password needs no password file: the daemon opens the target with
/// the password it was mounted with.
#[test]
fn copy_through_an_encrypted_mount_uses_the_mounts_password() {
    if !fuse_available() {
        return;
    }
    let env = Env::with_password("the mount's password");
    let (daemon, src) = mounted_web_point(&env, 64 << 10);
    let b = env.path("b");
    let b = b.to_str().unwrap();
    env.run(&["init", b, "--like", &env.repo()]).ok();
    env.run(&["copy", "web", "--to", b])
        .ok()
        .stdout_has("points     1 copied, 0 skipped");
    drop(daemon);
    assert_latest_restores_as(&env, b, &src);
}

/// A pack that also holds blobs no copied point references (those of a forgotten point,
/// not yet pruned) is not copied whole: only the wanted blobs are read from it, checked
/// and packed anew, and the forgotten point's data is not uploaded.
#[test]
fn only_referenced_blobs_of_a_pack_are_copied() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(&Location::Local(work.path().join("a"))).unwrap();
    let a = Repository::init(store, &fast_init(true)).unwrap();
    let a = TestRepo::open_catalog(a, &work.path().join("ca"));
    let src = work.path().join("src");
    let t = SourceTree::new(&src);
    t.file("kept.bin", &noise(1, 2 << 20));
    t.file("changed.bin", &noise(2, 2 << 20));
    let cancel = CancelToken::new();
    let req = BackupRequest::new("www", vec![src.clone()]);
    let first = backup(&a.repo, &a.catalog, &req, &NoProgress, &cancel).unwrap();
    t.file("changed.bin", &noise(3, 1 << 20));
    backup(&a.repo, &a.catalog, &req, &NoProgress, &cancel).unwrap();
    let forget_first = ForgetRequest {
        instance: "www".into(),
        points: vec![first.manifest.name.clone()],
        allow_manual: true,
    };
    forget(&a.repo, &a.catalog, &forget_first, &NoProgress, &cancel).unwrap();

    let store = Store::open(&Location::Local(work.path().join("b"))).unwrap();
    let b = Repository::init_like(store, &a.repo, Some(b"b"), KdfParams::insecure_fast(), None)
        .unwrap();
    let b = TestRepo::open_catalog(b, &work.path().join("cb"));
    let req = CopyRequest {
        verify: true,
        read_data: true,
        ..CopyRequest::default()
    };
    let out = copy(
        &a.repo,
        &a.catalog,
        &b.repo,
        &b.catalog,
        &req,
        &NoProgress,
        &cancel,
    )
    .unwrap();
    assert_eq!((out.points_copied, out.rechunked), (1, false));
    assert!(out.verify.as_ref().unwrap().is_ok(), "{:?}", out.verify);
    // kept.bin and the new changed.bin (3 MiB of noise), not the forgotten 2 MiB.
    let uploaded = stored_pack_bytes(&b.repo);
    assert_eq!(uploaded, out.bytes_uploaded);
    assert!(
        uploaded > 3 << 20 && uploaded < (3 << 20) + (256 << 10),
        "uploaded {uploaded}, A holds {}",
        stored_pack_bytes(&a.repo)
    );
    let target = work.path().join("restored");
    restore_latest(&b.repo, &b.catalog, &target);
    assert_same_tree(&src, &target);
}

/// `cairn copy` killed with SIGKILL once it uploaded a pack, then run again: the second
/// run sends only what the first did not (the catalog finds the packs uploaded before
/// the kill through their headers), and the copy is whole.
#[test]
fn a_copy_killed_midway_sends_only_the_rest_when_run_again() {
    let work = tempfile::tempdir().unwrap();
    let cli = Cli::new(work.path());
    let (a, b) = (cli.work.join("a"), cli.work.join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let src = cli.work.join("src");
    noise_tree(&src, 12, 8 << 20, 40);
    cli.run(&["init", a]).ok();
    cli.run(&[
        "snapshot",
        "www",
        "--repo",
        a,
        "--path",
        src.to_str().unwrap(),
    ])
    .ok();
    cli.run(&["init", b, "--like", a]).ok();
    let mut child = cli.spawn(&["copy", "--from", a, "--to", b]);
    let start = std::time::Instant::now();
    while pack_bytes(Path::new(b)) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the copy ended before it uploaded a pack"
        );
        assert!(start.elapsed().as_secs() < 120, "no pack within 120 s");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let before = pack_bytes(Path::new(b));
    let again = copy_json(&cli, &[], &["--from", a, "--to", b, "--read-data"]);
    let total = pack_bytes(Path::new(b));
    let sent = again["bytes_uploaded"].as_u64().unwrap();
    if status.success() {
        // It finished in the instant between the last check and the kill.
        assert_eq!(again["points_skipped"], 1, "{again}");
    } else {
        assert_eq!(again["points_copied"], 1, "{again}");
        assert!(
            sent < total && sent + before >= total,
            "sent {sent} of {total}: {again}"
        );
    }
    let target = cli.work.join("restored");
    let t = target.to_str().unwrap();
    cli.run(&["restore", "www", "latest", "--repo", b, "--target", t])
        .ok();
    assert_same_tree(&src, &target);
}
