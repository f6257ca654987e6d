//! `cairn check` and `cairn diff` with `--repo`, as the real binary: a generated tree with
//! planted differences (content of the same size, mode, owner, mtime, xattr, symlink
//! target, added, removed, ignored) is found exactly, with the right aspects; with
//! `--checksum false` a same-size change whose mtime was put back is missed; a bandwidth
//! cap holds on the check's own figures; a diff of two points reads only the trees on
//! the way to what changed; exit codes are diff(1)'s.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::cli_repo::Cli;
use crate::support::fixture::noise;

/// Sets a file's (or directory's) mtime.
pub(crate) fn set_mtime(path: &Path, t: SystemTime) {
    fs::File::open(path).unwrap().set_modified(t).unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    fs::symlink_metadata(path).unwrap().modified().unwrap()
}

/// The source tree the points are taken of.
pub(crate) fn make_tree(src: &Path) {
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    fs::create_dir_all(src.join("ignored")).unwrap();
    for (name, seed) in [
        ("same.txt", 1),
        ("content.bin", 2),
        ("mode.txt", 3),
        ("owner.txt", 4),
        ("mtime.txt", 5),
        ("xattr.txt", 6),
        ("removed.txt", 7),
        ("sub/deeper/kept.txt", 8),
        ("ignored/junk", 9),
    ] {
        fs::write(src.join(name), noise(seed, 3000 + seed as usize * 100)).unwrap();
    }
    std::os::unix::fs::symlink("same.txt", src.join("link")).unwrap();
}

/// Plants one difference of each kind; puts the mtimes of the directories back, so
/// that only what was planted differs.
pub(crate) fn plant(src: &Path) {
    let root_mtime = mtime(src);
    let content = src.join("content.bin");
    let before = mtime(&content);
    let mut bytes = fs::read(&content).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&content, bytes).unwrap();
    set_mtime(&content, before);
    fs::set_permissions(src.join("mode.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(src.join("owner.txt"), Some(4321), Some(4321)).unwrap();
    set_mtime(&src.join("mtime.txt"), before + Duration::from_secs(1000));
    xattr::set(src.join("xattr.txt"), "user.planted", b"yes").unwrap();
    fs::remove_file(src.join("link")).unwrap();
    std::os::unix::fs::symlink("mode.txt", src.join("link")).unwrap();
    fs::remove_file(src.join("removed.txt")).unwrap();
    fs::write(src.join("added.txt"), b"new").unwrap();
    fs::write(src.join("scratch.tmp"), b"ignored by a glob").unwrap();
    let ignored_mtime = mtime(&src.join("ignored"));
    fs::write(src.join("ignored/more-junk"), b"x").unwrap();
    set_mtime(&src.join("ignored"), ignored_mtime);
    set_mtime(src, root_mtime);
}

/// The planted differences as `kind path (aspects)`.
pub(crate) fn expected(with_content: bool) -> Vec<String> {
    let mut v = vec![
        "added added.txt ()".to_string(),
        "changed link (link-target)".into(),
        "changed mode.txt (mode)".into(),
        "changed mtime.txt (mtime)".into(),
        "changed owner.txt (owner)".into(),
        "removed removed.txt ()".into(),
        "changed xattr.txt (xattrs)".into(),
    ];
    if with_content {
        v.insert(1, "changed content.bin (content)".into());
    }
    v
}

/// A report's differences as `kind path (aspects)`.
pub(crate) fn differences(report: &Value) -> Vec<String> {
    report["differences"]
        .as_array()
        .unwrap_or_else(|| panic!("no differences list: {report}"))
        .iter()
        .map(|d| {
            let aspects: Vec<&str> = d["aspects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            format!(
                "{} {} ({})",
                d["kind"].as_str().unwrap(),
                d["path"].as_str().unwrap(),
                aspects.join(", ")
            )
        })
        .collect()
}

fn setup() -> (tempfile::TempDir, Cli, String) {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    cli.run(&["init", &cli.repo()]).ok();
    let src = dir.path().join("src");
    make_tree(&src);
    let src = src.to_str().unwrap().to_string();
    cli.run(&["snapshot", "w", "--repo", &cli.repo(), "--path", &src])
        .ok();
    (dir, cli, src)
}

#[test]
fn check_finds_exactly_the_planted_differences() {
    let (_dir, cli, src) = setup();
    let repo = cli.repo();
    // Unchanged: exit 0, everything the same, every byte read once.
    let clean = cli
        .run(&["check", "w", "--repo", &repo, "--json"])
        .code(0)
        .json();
    assert_eq!(clean["counts"]["differ"], 0, "{clean}");
    assert_eq!(clean["counts"]["errors"], 0, "{clean}");
    assert!(
        clean["live_bytes_read"].as_u64().unwrap() > 20_000,
        "{clean}"
    );

    plant(Path::new(&src));
    let ignores = ["--ignore", "ignored", "--ignore", "*.tmp"];
    let mut args = vec!["check", "w", "latest", "--repo", &repo, "--json"];
    args.extend(ignores);
    let report = cli.run(&args).code(1).json();
    assert_eq!(differences(&report), expected(true), "{report}");
    let c = &report["counts"];
    assert_eq!(
        (c["differ"].as_u64(), c["only_in_point"].as_u64()),
        (Some(6), Some(1)),
        "{report}"
    );
    assert_eq!(
        (c["only_in_live"].as_u64(), c["ignored"].as_u64()),
        (Some(1), Some(2)),
        "{report}"
    );
    assert_eq!(c["errors"], 0, "{report}");
    assert_eq!(report["exit_code"], 1, "{report}");

    // The text form: one line a path.
    let mut args = vec!["check", "w", "--repo", &repo];
    args.extend(ignores);
    let text = cli.run(&args).code(1);
    assert!(
        text.stdout.contains("changed  content.bin  (content)"),
        "{}",
        text.describe()
    );
    assert!(
        text.stdout.contains("added    added.txt\n"),
        "{}",
        text.describe()
    );
    assert!(
        text.stdout.contains("removed  removed.txt\n"),
        "{}",
        text.describe()
    );

    // Without checksums the same-size change with its mtime put back is missed, and no
    // content is read; the synonym says the same.
    for flag in [&["--checksum", "false"][..], &["--no-checksum"][..]] {
        let mut args = vec!["check", "w", "--repo", &repo, "--json"];
        args.extend(ignores);
        args.extend(flag);
        let quick = cli.run(&args).code(1).json();
        assert_eq!(differences(&quick), expected(false), "{quick}");
        assert_eq!(quick["live_bytes_read"], 0, "{quick}");
    }

    // Without the ignores, the ignored entries are differences (or the same) again.
    let all = cli
        .run(&["check", "w", "--repo", &repo, "--json", "--threads", "1"])
        .code(1)
        .json();
    let found = differences(&all);
    assert!(found.contains(&"added scratch.tmp ()".to_string()), "{all}");
    assert!(
        found.contains(&"added ignored/more-junk ()".to_string()),
        "{all}"
    );
    assert_eq!(all["counts"]["ignored"], 0, "{all}");
}

#[test]
fn a_restore_checks_clean_and_a_missing_directory_is_an_error() {
    let (dir, cli, _src) = setup();
    let repo = cli.repo();
    let target = dir.path().join("restored");
    let target = target.to_str().unwrap();
    cli.run(&[
        "restore", "w", "latest", "--repo", &repo, "--target", target,
    ])
    .ok();
    let r = cli
        .run(&["check", "w", "--repo", &repo, "--against", target, "--json"])
        .json();
    assert_eq!(differences(&r), Vec::<String>::new(), "{r}");
    assert_eq!(r["exit_code"], 0, "{r}");

    // An error wins over differences: exit 2.
    let missing = dir.path().join("missing");
    let run = cli.run(&[
        "check",
        "w",
        "--repo",
        &repo,
        "--against",
        missing.to_str().unwrap(),
        "--json",
    ]);
    let r = run.json();
    assert!(r["counts"]["errors"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["exit_code"], 2, "{r}");
    let run = run.code(2);
    assert!(
        run.stderr.contains("could not be compared"),
        "{}",
        run.describe()
    );
    // A bad setting is refused (exit 2), and so is an unknown point.
    cli.run(&["check", "w", "--repo", &repo, "--threads", "17"])
        .code(2);
    cli.run(&["check", "w", "nope", "--repo", &repo]).code(2);
}

#[test]
fn a_bandwidth_cap_holds_on_the_bytes_read() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..3 {
        fs::write(src.join(format!("big{i}")), noise(i, 1_500_000)).unwrap();
    }
    let src = src.to_str().unwrap();
    cli.run(&["snapshot", "w", "--repo", &repo, "--path", src])
        .ok();
    let cap_mb = 2u64;
    let r = cli
        .run(&[
            "check",
            "w",
            "--repo",
            &repo,
            "--bandwidth",
            &cap_mb.to_string(),
            "--json",
        ])
        .code(0)
        .json();
    let read = r["live_bytes_read"].as_u64().unwrap() as f64;
    let elapsed = r["elapsed_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert_eq!(read, 4_500_000.0, "every byte is read once: {r}");
    let allowed = cap_mb as f64 * 1e6 * elapsed * 1.2 + (1 << 20) as f64;
    assert!(read <= allowed, "read {read} B in {elapsed} s: {r}");
}

#[test]
fn diff_finds_the_changes_between_points_and_reads_few_trees() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let src = dir.path().join("src");
    for i in 0..20 {
        let d = src.join(format!("d{i:02}/inner"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), noise(i, 2000)).unwrap();
    }
    let s = src.to_str().unwrap();
    cli.run(&[
        "snapshot", "w", "--repo", &repo, "--path", s, "--label", "a",
    ])
    .ok();
    let changed = src.join("d07/inner/f");
    let inner = mtime(&src.join("d07/inner"));
    fs::write(&changed, noise(99, 2000)).unwrap();
    fs::write(src.join("d07/inner/g"), b"new").unwrap();
    set_mtime(&src.join("d07/inner"), inner);
    cli.run(&[
        "snapshot", "w", "--repo", &repo, "--path", s, "--label", "b",
    ])
    .ok();
    let points = cli
        .run(&["points", "w", "--repo", &repo, "--json"])
        .ok()
        .json();
    let names: Vec<String> = points["points"]
        .as_array()
        .unwrap_or_else(|| panic!("{points}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let (a, b) = (&names[0], &names[1]);
    let r = cli
        .run(&["diff", "w", a, b, "--repo", &repo, "--json"])
        .code(1)
        .json();
    assert_eq!(
        differences(&r),
        vec![
            "changed d07/inner/f (content, mtime)".to_string(),
            "added d07/inner/g ()".into()
        ],
        "{r}"
    );
    // Root, d07 and d07/inner on each side: the 19 unchanged directories cost nothing.
    assert_eq!(r["trees_read"], 6, "{r}");
    cli.run(&["diff", "w", a, a, "--repo", &repo]).code(0);
    let text = cli.run(&["diff", "w", b, a, "--repo", &repo]).code(1);
    assert!(
        text.stdout.contains("removed  d07/inner/g"),
        "{}",
        text.describe()
    );
}

#[test]
fn a_point_of_several_sources_is_checked_against_each_source() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    for d in [&one, &two] {
        fs::create_dir_all(d).unwrap();
        fs::write(d.join("f"), noise(3, 5000)).unwrap();
    }
    let (a, b) = (one.to_str().unwrap(), two.to_str().unwrap());
    cli.run(&["snapshot", "w", "--repo", &repo, "--path", a, "--path", b])
        .ok();
    cli.run(&["check", "w", "--repo", &repo]).code(0);
    fs::set_permissions(two.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    let r = cli
        .run(&["check", "w", "--repo", &repo, "--json"])
        .code(1)
        .json();
    assert_eq!(
        differences(&r),
        vec!["changed two/f (mode)".to_string()],
        "{r}"
    );
    assert_eq!(r["against"].as_array().unwrap().len(), 2, "{r}");
}
