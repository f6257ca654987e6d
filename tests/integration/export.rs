//! Export (issue 15, part 3): `cairn export` writes a point as a tar stream that GNU tar
//! and bsdtar extract into the tree a restore of the same point makes (content, modes,
//! owners, ns times, symlinks, hard links, sparse files, xattrs, a FIFO, long and
//! non-UTF-8 names); `--include` selects; `--format tar.zst` is the same tar compressed;
//! a damaged chunk fails the export naming the file; and the mount's `<point>.tar` is
//! byte for byte the export, with its exact size, hidden from listings.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use cairn::engine::{
    backup, export, restore, BackupOutcome, BackupRequest, CancelToken, ExportError, ExportFormat,
    ExportRequest, NoProgress, RestoreMode, RestoreRequest,
};

use crate::support::cli_repo::Cli;
use crate::support::fixture::{assert_same_tree, SourceTree};
use crate::support::forge::{flip_blob, locate_file};
use crate::support::mount::fuse_available;
use crate::support::repos::TestRepo;

/// Every fidelity case, and a path longer than a tar header holds.
fn source(root: &Path) -> SourceTree {
    // 20 MiB in the big file: the archive is longer than what a reader keeps at hand.
    let t = SourceTree::all_cases(root, 20 << 20);
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(200));
    t.file(&format!("long/{long}"), b"a long path");
    t
}

/// A repository in a new work directory with one point of [`source`] in `www`.
fn backed_up() -> (tempfile::TempDir, TestRepo) {
    let dir = tempfile::tempdir().unwrap();
    let t = TestRepo::local(dir.path());
    let src = source(&dir.path().join("src"));
    snapshot(&t, &src.root);
    (dir, t)
}

fn snapshot(t: &TestRepo, src: &Path) -> BackupOutcome {
    let req = BackupRequest::new("www", vec![src.to_path_buf()]);
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn restore_into(t: &TestRepo, target: &Path) {
    let req = RestoreRequest {
        instance: "www".into(),
        point: "latest".into(),
        target: Some(target.to_path_buf()),
        includes: vec![],
        mode: RestoreMode::New,
        delete_excluded: false,
        skip_damaged: false,
    };
    restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
}

/// The export of all of `www`'s latest point as a tar.
fn whole_latest() -> ExportRequest {
    ExportRequest {
        instance: "www".into(),
        point: "latest".into(),
        includes: vec![],
        format: ExportFormat::Tar,
    }
}

/// `cairn export ARGS --repo work/repo > out`; returns the exit code and stderr.
fn export_cli(work: &Path, args: &[&str], out: &Path) -> (i32, String) {
    let repo = work.join("repo");
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    all.extend(["--repo", repo.to_str().unwrap()]);
    let run = Cli::new(work)
        .command(&all)
        .stdout(File::create(out).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        run.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

fn extract(tool: &str, args: &[&str], archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let out = Command::new(tool)
        .args(args)
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} -x: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The root directory's own metadata, as a restore gives it.
fn root_meta(dir: &Path) -> (u32, u32, u32, i64) {
    let md = fs::symlink_metadata(dir).unwrap();
    (
        md.mode() & 0o7777,
        md.uid(),
        md.gid(),
        md.mtime() * 1_000_000_000 + md.mtime_nsec(),
    )
}

#[test]
fn gnu_tar_and_bsdtar_extract_an_export_into_what_a_restore_makes() {
    let (dir, t) = backed_up();
    let work = dir.path();
    let restored = work.join("restored");
    restore_into(&t, &restored);

    let archive = work.join("www.tar");
    let (code, err) = export_cli(work, &["www", "latest"], &archive);
    assert_eq!(code, 0, "{err}");
    let gnu = work.join("gnu");
    extract(
        "tar",
        &["--xattrs", "--xattrs-include=*", "-xpf"],
        &archive,
        &gnu,
    );
    assert_same_tree(&restored, &gnu);
    assert_eq!(root_meta(&gnu), root_meta(&restored));
    // The hole stays a hole: 128 MiB of file, a few KiB allocated.
    let sparse = fs::metadata(gnu.join("data/sparse.img")).unwrap();
    assert_eq!(sparse.len(), 128 << 20);
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "{} blocks",
        sparse.blocks()
    );
    // Hard links share one inode.
    let ino = |p: &str| fs::metadata(gnu.join(p)).unwrap().ino();
    assert_eq!(ino("links/original"), ino("links/second"));
    assert_eq!(ino("links/original"), ino("docs/third-link"));
    // The archive holds the hole as a hole, not as zeros (20 MiB of other content).
    assert!(fs::metadata(&archive).unwrap().len() < 24 << 20);

    if has("bsdtar") {
        let bsd = work.join("bsd");
        extract("bsdtar", &["--xattrs", "-xpf"], &archive, &bsd);
        assert_same_tree(&restored, &bsd);
    }
}

#[test]
fn include_selects_and_zstd_is_the_same_tar() {
    let (dir, _repo) = backed_up();
    let work = dir.path();

    let part = work.join("part.tar");
    let (code, err) = export_cli(work, &["www", "--include", "docs/**"], &part);
    assert_eq!(code, 0, "{err}");
    let out = Command::new("tar").arg("-tf").arg(&part).output().unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(names.contains(&"docs/".to_string()), "{names:?}");
    assert!(names.contains(&"docs/deep/a/b/c/d/e/leaf.txt".to_string()));
    assert!(
        names.iter().all(|n| n == "./" || n.starts_with("docs/")),
        "{names:?}"
    );
    // `docs/third-link` is the first name of its group the include selects: content.
    let got = work.join("got");
    extract("tar", &["-xpf"], &part, &got);
    assert_eq!(
        fs::read(got.join("docs/third-link")).unwrap(),
        b"shared by hard links"
    );

    // A terminal is no place for an archive (`script` gives the command one).
    let repo = work.join("repo");
    let bin = crate::support::cli_run::cairn_bin()
        .to_str()
        .unwrap()
        .to_string();
    let line = format!("{bin} export www --repo {}", repo.display());
    let cli = Cli::new(work);
    let mut script = Command::new("script");
    let run = cli
        .configure(&mut script)
        .args(["-qec", &line, "/dev/null"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(2), "{said}");
    assert!(said.contains("stdout is a terminal"), "{said}");

    let (code, err) = export_cli(work, &["www", "--include", "nothing/**"], &part);
    assert_eq!(code, 2, "nothing selected is refused: {err}");
    assert!(err.contains("nothing in point"), "{err}");

    let tar = work.join("all.tar");
    let zst = work.join("all.tar.zst");
    assert_eq!(export_cli(work, &["www"], &tar).0, 0);
    let (code, err) = export_cli(work, &["www", "--format", "tar.zst"], &zst);
    assert_eq!(code, 0, "{err}");
    let mut unpacked = Vec::new();
    zstd::Decoder::new(File::open(&zst).unwrap())
        .unwrap()
        .read_to_end(&mut unpacked)
        .unwrap();
    assert!(
        unpacked == fs::read(&tar).unwrap(),
        "tar.zst decompresses to the tar"
    );
}

#[test]
fn a_damaged_chunk_fails_the_export_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let t = TestRepo::local(work);
    let src = SourceTree::new(&work.join("src"));
    src.file("a/first.txt", b"intact");
    src.file("b/broken.bin", &crate::support::fixture::noise(7, 300_000));
    src.file("c/after.txt", b"never reached");
    let p = snapshot(&t, &src.root);
    let (blob, _) = locate_file(&t, &p.manifest.root, "b/broken.bin");
    flip_blob(work, &t.catalog.lookup_blob(&blob).unwrap().unwrap());

    let req = whole_latest();
    let mut out = Vec::new();
    match export(&t.repo, &t.catalog, &req, &mut out, &CancelToken::new()) {
        Err(ExportError::File { path, source }) => {
            assert_eq!(path, "b/broken.bin");
            assert!(source.is_damage(), "{source}");
        }
        other => panic!("export of a damaged point: {:?}", other.map(|o| o.entries)),
    }
    // What was written is a cut archive: no byte of the damaged file's content.
    assert!(!out.windows(13).any(|w| w == b"never reached"));

    let (code, err) = export_cli(work, &["www"], &work.join("x.tar"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("b/broken.bin"), "{err}");
    assert!(err.contains("cut short"), "{err}");
}

/// The stdout of a successful `cairn ARGS` in `env` (a file, not a pipe).
fn env_export(env: &crate::support::cli_env::Env, args: &[&str]) -> Vec<u8> {
    let out = env.path("out.tar");
    let run = env
        .command(args)
        .stdout(File::create(&out).unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "cairn {args:?}: {err}");
    fs::read(&out).unwrap()
}

#[test]
fn the_mounts_archive_file_is_the_export_with_its_exact_size() {
    if !fuse_available() {
        return;
    }
    let env = crate::support::cli_env::Env::new();
    env.init();
    let src = source(&env.path("src"));
    let _daemon = env.mount_background();
    let root = src.root.to_str().unwrap().to_string();
    env.run(&["instance", "add", "www", "--path", &root]).ok();
    env.run(&["snapshot", "www"]).ok();

    let repo = env.repo();
    let expected = env_export(&env, &["export", "www", "--repo", &repo]);

    let inst = env.mnt().join("www");
    let point = fs::read_link(inst.join("latest")).unwrap();
    let by_name = inst.join(format!("{}.tar", point.to_str().unwrap()));
    for file in [inst.join("latest.tar"), by_name] {
        assert_eq!(fs::metadata(&file).unwrap().len(), expected.len() as u64);
        assert!(fs::read(&file).unwrap() == expected, "{}", file.display());
    }
    let listed: Vec<String> = fs::read_dir(&inst)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(listed.iter().all(|n| !n.ends_with(".tar")), "{listed:?}");
    assert!(!inst.join("no-such-point.tar").exists());

    // Reads in any order give the same bytes (backwards, from a new handle).
    let f = File::open(inst.join("latest.tar")).unwrap();
    let step = 3 << 20;
    let mut at = expected.len();
    while at > 0 {
        let from = at.saturating_sub(step);
        let mut buf = vec![0; at - from];
        f.read_exact_at(&mut buf, from as u64).unwrap();
        assert!(buf == expected[from..at], "bytes at {from}");
        at = from;
    }

    // `cairn export` through the mount copies the file.
    assert!(env_export(&env, &["export", "www"]) == expected);
    let run = env.run(&["export", "www", "--include", "docs/**"]);
    assert_eq!(run.code, 2, "{}", run.describe());

    // `latest.tar` follows a new point; the older point's file stays as it was.
    let old_point = inst.join(format!("{}.tar", point.to_str().unwrap()));
    src.file("docs/new.txt", b"a new file");
    env.run(&["snapshot", "www"]).ok();
    let newer = env_export(&env, &["export", "www", "--repo", &repo]);
    assert!(newer != expected);
    assert_eq!(
        fs::metadata(inst.join("latest.tar")).unwrap().len(),
        newer.len() as u64
    );
    assert!(fs::read(inst.join("latest.tar")).unwrap() == newer);
    assert!(fs::read(&old_point).unwrap() == expected);
}

#[test]
fn an_archive_reads_the_same_at_any_offset_in_any_order() {
    let (dir, t) = backed_up();
    let req = whole_latest();
    let mut expected = Vec::new();
    export(
        &t.repo,
        &t.catalog,
        &req,
        &mut expected,
        &CancelToken::new(),
    )
    .unwrap();
    let point = t.catalog.find_point("www", "latest").unwrap().unwrap();
    let trees = cairn::engine::TreeReader::new(t.repo.clone(), t.catalog.clone());
    let size = cairn::engine::export::archive_size(&trees, &point.manifest, None).unwrap();
    assert_eq!(size, expected.len() as u64, "the size from the trees alone");

    let reader = cairn::engine::export::ArchiveReader::new(trees, point.manifest);
    let len = expected.len() as u64;
    // Forward with gaps, backwards past the window (starts again), past the end.
    let reads = [
        (0, 1000),
        (5 << 20, 70_000),
        (len - 10, 100),
        (1 << 20, 4096),
        (3, 5),
        (len, 10),
        (len / 2, 1 << 20),
        (len - (1 << 20), 1 << 20),
        (0, 512),
    ];
    assert!(len > 17 << 20, "long enough to start again");
    for (offset, size) in reads {
        let got = reader.read_at(offset, size).unwrap();
        let end = (offset as usize + size).min(expected.len());
        let want = &expected[(offset as usize).min(end)..end];
        assert!(got == want, "{size} bytes at {offset}");
    }
    drop(dir);
}
