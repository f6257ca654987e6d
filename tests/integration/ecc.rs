//! Error correction (issue 15, "Error correction" and "Restore through damage"): a
//! repository made with `init --ecc PERCENT` stores Reed-Solomon parity per pack, so a
//! pack with a flipped byte or a zeroed 4 KiB page is corrected on read: `verify
//! --read-data` says CORRECTED and exits 0, a restore is byte-identical and says what it
//! corrected. Damage beyond the parity is damage as before: verify names it, a restore
//! fails and leaves its target as it was. Everything through the real binary.

use std::fs;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use cairn::catalog::Catalog;
use cairn::repo::Repository;
use cairn::service::Service;
use cairn::store::{Location, Store};
use serde_json::Value;

use crate::support::cli_repo::Cli;
use crate::support::cli_run::Run;
use crate::support::fixture::{assert_same_tree, noise, noise_tree};
use crate::support::mount::{fuse_available, job_of, request, wait_job_file, MountGuard};

/// A repository made with `init --ecc percent` (0: none; unencrypted unless `encrypted`:
/// each opening of an encrypted one runs the password's KDF) holding one point of `www`:
/// six incompressible files of 400 KB in `src` (one data pack of about 2.4 MB).
fn setup_with(work: &Path, percent: u8, encrypted: bool) -> Cli {
    let cli = if encrypted {
        Cli::new(work)
    } else {
        Cli::without_password(work)
    };
    let repo = cli.repo();
    let pct = percent.to_string();
    let mut init = vec!["init", &repo];
    if !encrypted {
        init.push("--no-encryption");
    }
    if percent > 0 {
        init.extend(["--ecc", &pct]);
    }
    cli.run(&init).ok();
    noise_tree(&work.join("src"), 6, 400_000, 11);
    cli.run(&["snapshot", "www", "--repo", &repo, "--path", "src"])
        .ok();
    cli
}

fn setup(work: &Path, percent: u8) -> Cli {
    setup_with(work, percent, false)
}

/// The object files under `repo/<dir>` (`packs`, `ecc`), finished ones only.
fn objects(repo: &Path, dir: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in fs::read_dir(repo.join(dir)).into_iter().flatten() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if !p.to_string_lossy().contains('#') {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The largest pack: the data pack (the tree pack is small).
fn data_pack(cli: &Cli) -> PathBuf {
    objects(Path::new(&cli.repo()), "packs")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .expect("a pack")
}

fn hex_of(pack: &Path) -> String {
    pack.file_name().unwrap().to_string_lossy().into_owned()
}

/// Applies `f` to the bytes of `pack` in place.
fn damage(pack: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(pack).unwrap();
    f(&mut bytes);
    fs::write(pack, bytes).unwrap();
}

/// `cairn restore INSTANCE latest --target TARGET` with `how` (`--repo R`, `--mount M`)
/// and `extra` flags.
fn restore_run(cli: &Cli, instance: &str, how: [&str; 2], target: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["restore", instance, "latest", how[0], how[1]];
    args.extend(["--target", target.to_str().unwrap()]);
    args.extend(extra);
    cli.run(&args)
}

fn verify_json(cli: &Cli) -> (i32, Value) {
    let run = cli.run(&["verify", "--repo", &cli.repo(), "--read-data", "--json"]);
    let code = run.code;
    (code, run.json())
}

/// Verify and a restore both correct the damage and say so; the restore is exact.
fn assert_corrected(cli: &Cli, pack: &str, name: &str) {
    let (code, report) = verify_json(cli);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);
    let corrected = report["corrected"].as_array().unwrap();
    assert_eq!(corrected.len(), 1, "{report}");
    assert_eq!(corrected[0]["pack"], pack);
    assert!(corrected[0]["shards"].as_u64().unwrap() >= 1);
    assert!(!corrected[0]["blobs"].as_array().unwrap().is_empty());
    cli.run(&["verify", "--repo", &cli.repo(), "--read-data"])
        .ok()
        .stdout_has(&format!("CORRECTED  pack {pack}: "))
        .stdout_has("ok: no damage found");

    let target = cli.work.join(name);
    restore_run(cli, "www", ["--repo", &cli.repo()], &target, &[])
        .ok()
        .stdout_has(&format!("CORRECTED  pack {pack}: "));
    assert_same_tree(&cli.work.join("src"), &target);
    let json_target = cli.work.join(format!("{name}-json"));
    let out = restore_run(
        cli,
        "www",
        ["--repo", &cli.repo()],
        &json_target,
        &["--json"],
    )
    .ok()
    .json();
    assert_eq!(out["corrected"][0]["pack"], pack, "{out}");
    assert_same_tree(&cli.work.join("src"), &json_target);
}

#[test]
fn a_flipped_byte_is_corrected_at_5_and_10_percent() {
    for (percent, encrypted) in [(5, true), (10, false)] {
        let dir = tempfile::tempdir().unwrap();
        let cli = setup_with(dir.path(), percent, encrypted);
        let pack = data_pack(&cli);
        assert_eq!(
            objects(Path::new(&cli.repo()), "ecc").len(),
            objects(Path::new(&cli.repo()), "packs").len(),
            "one parity object per pack"
        );
        let config: Value =
            serde_json::from_slice(&fs::read(dir.path().join("repo/config")).unwrap()).unwrap();
        assert_eq!(config["ecc"]["percent"], percent);
        damage(&pack, |b| {
            let at = b.len() / 2;
            b[at] ^= 0x40;
        });
        assert_corrected(&cli, &hex_of(&pack), "out");
    }
}

#[test]
fn a_zeroed_page_is_corrected_aligned_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 5);
    let pack = data_pack(&cli);
    damage(&pack, |b| b[64 * 4096..65 * 4096].fill(0));
    assert_corrected(&cli, &hex_of(&pack), "aligned");

    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 5);
    let pack = data_pack(&cli);
    damage(&pack, |b| {
        let at = b.len() / 3 + 1234;
        b[at..at + 4096].fill(0);
        b[at + 100_000] ^= 1; // and a flipped byte elsewhere
    });
    assert_corrected(&cli, &hex_of(&pack), "unaligned");
}

#[test]
fn a_damaged_tree_pack_is_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 5);
    let tree_pack = objects(Path::new(&cli.repo()), "packs")
        .into_iter()
        .min_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    assert_ne!(tree_pack, data_pack(&cli));
    // Its first tree blob, just after the 8-byte magic.
    damage(&tree_pack, |b| b[20] ^= 0x10);
    assert_corrected(&cli, &hex_of(&tree_pack), "trees");
}

#[test]
fn a_damaged_pack_header_is_corrected() {
    let dir = tempfile::tempdir().unwrap();
    // Encrypted: the header is sealed, so the structure check finds its damage.
    let cli = setup_with(dir.path(), 5, true);
    let pack = data_pack(&cli);
    damage(&pack, |b| {
        let at = b.len() - 30;
        b[at] ^= 1;
    });
    let (code, report) = verify_json(&cli);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["corrected"][0]["pack"], hex_of(&pack), "{report}");
    // Without --read-data too: the header is read by the structure check.
    let run = cli.run(&["verify", "--repo", &cli.repo(), "--json"]).ok();
    assert_eq!(run.json()["corrected"][0]["pack"], hex_of(&pack));
}

#[test]
fn damage_beyond_the_parity_is_damage_and_a_restore_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 5);
    let pack = data_pack(&cli);
    // 5% of ~590 shards is 30 shards; 300 KB is about 73.
    damage(&pack, |b| b[100_000..400_000].fill(0));
    // A restore tries the parity, fails, and changes nothing: a new target is not
    // created, an existing empty one stays empty.
    let fresh = dir.path().join("fresh");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    for target in [&fresh, &empty] {
        restore_run(&cli, "www", ["--repo", &cli.repo()], target, &[])
            .code(1)
            .stderr_has("parity could not correct it");
    }
    assert!(!fresh.exists());
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("cairn-stage")));

    // Verify names the damage (and then remembers it).
    let (code, report) = verify_json(&cli);
    assert_eq!(code, 1, "{report}");
    assert!(
        report["corrected"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(
        !report["damaged"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let problems = report["problems"].to_string();
    assert!(problems.contains("parity could not correct it"), "{report}");
    cli.run(&["verify", "--repo", &cli.repo(), "--read-data"])
        .code(1)
        .stdout_has("DAMAGED    www/");

    // With --skip-damaged what is served is exact: the damaged files are left out.
    let part = dir.path().join("part");
    let run = restore_run(
        &cli,
        "www",
        ["--repo", &cli.repo()],
        &part,
        &["--skip-damaged"],
    )
    .code(3);
    let skipped = run.stdout.matches("SKIPPED    ").count();
    assert!(skipped >= 1, "{}", run.describe());
    let mut restored = 0;
    for e in fs::read_dir(&part).unwrap() {
        let e = e.unwrap();
        let original = fs::read(dir.path().join("src").join(e.file_name())).unwrap();
        assert!(
            fs::read(e.path()).unwrap() == original,
            "{:?} differs",
            e.file_name()
        );
        restored += 1;
    }
    assert_eq!(restored + skipped, 6);
}

#[test]
fn an_in_place_restore_corrects_or_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 5);
    let src = dir.path().join("src");
    let pack = data_pack(&cli);
    damage(&pack, |b| {
        let at = b.len() / 2 + 77;
        b[at..at + 4096].fill(0);
    });
    // Every file changed: the restore reads all of them (none is linked as unchanged).
    let change_all = |text: &[u8]| {
        for i in 0..6 {
            fs::write(src.join(format!("part-{i:02}.bin")), text).unwrap();
        }
    };
    let in_place = [
        "restore",
        "www",
        "latest",
        "--repo",
        &cli.repo(),
        "--mode",
        "in-place",
    ];
    change_all(b"changed since");
    cli.run(&in_place)
        .ok()
        .stdout_has(&format!("CORRECTED  pack {}: ", hex_of(&pack)))
        .stdout_has("safety");
    for i in 0..6u64 {
        let read = fs::read(src.join(format!("part-{i:02}.bin"))).unwrap();
        assert!(read == noise(11 + i, 400_000), "part-{i:02}.bin");
    }

    // Beyond the parity: the in-place restore fails and the files stay as they are.
    damage(&pack, |b| b[100_000..400_000].fill(0));
    change_all(b"changed again");
    cli.run(&in_place)
        .code(1)
        .stderr_has("destination was left as it was");
    for i in 0..6 {
        assert_eq!(
            fs::read(src.join(format!("part-{i:02}.bin"))).unwrap(),
            b"changed again"
        );
    }
}

#[test]
fn damaged_parity_is_not_used_and_an_intact_pack_needs_none() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 10);
    let pack = data_pack(&cli);
    let parity = dir
        .path()
        .join("repo/ecc")
        .join(&hex_of(&pack)[..2])
        .join(hex_of(&pack));
    // A damaged parity object alone is no damage of the data.
    damage(&parity, |b| b[20] ^= 1);
    let (code, report) = verify_json(&cli);
    assert_eq!(code, 0, "{report}");
    assert!(report["corrected"].as_array().unwrap().is_empty());
    // With its header damaged it cannot correct anything: the pack's damage is damage.
    damage(&pack, |b| {
        let at = b.len() / 2;
        b[at] ^= 1;
    });
    let (code, report) = verify_json(&cli);
    assert_eq!(code, 1, "{report}");
    assert!(
        report["problems"]
            .to_string()
            .contains("header fails its hash"),
        "{report}"
    );
}

#[test]
fn a_repository_without_ecc_has_no_parity() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 0);
    let config: Value =
        serde_json::from_slice(&fs::read(dir.path().join("repo/config")).unwrap()).unwrap();
    assert!(config.get("ecc").is_none(), "{config}");
    assert!(!dir.path().join("repo/ecc").exists());
    // Damage is damage, as always, and no correction is tried.
    let pack = data_pack(&cli);
    damage(&pack, |b| {
        let at = b.len() / 2;
        b[at] ^= 1;
    });
    let (code, report) = verify_json(&cli);
    assert_eq!(code, 1, "{report}");
    assert!(report["corrected"].as_array().unwrap().is_empty());
    assert!(!report.to_string().contains("parity"), "{report}");
}

#[test]
fn ecc_percent_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::without_password(dir.path());
    cli.run(&["init", "--no-encryption", &cli.repo(), "--ecc", "51"])
        .code(2);
    assert!(!dir.path().join("repo/config").exists());
}

#[test]
fn prune_deletes_parity_with_its_pack() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 5);
    let repo = cli.repo();
    let first = data_pack(&cli);
    fs::remove_dir_all(dir.path().join("src")).unwrap();
    noise_tree(&dir.path().join("src"), 2, 300_000, 99);
    cli.run(&[
        "snapshot", "www", "--repo", &repo, "--path", "src", "--json",
    ])
    .ok();
    let points = cli.run(&["points", "--repo", &repo, "--json"]).ok().json();
    let oldest = points["points"][0]["name"].as_str().unwrap().to_string();
    cli.run(&["forget", "www", &oldest, "--repo", &repo, "--manual"])
        .ok();
    for _ in 0..2 {
        cli.run(&["prune", "--repo", &repo, "--grace-hours", "0"])
            .ok();
    }
    assert!(!first.exists(), "the first point's data pack is gone");
    let packs: Vec<String> = objects(Path::new(&repo), "packs")
        .iter()
        .map(|p| hex_of(p))
        .collect();
    let parity: Vec<String> = objects(Path::new(&repo), "ecc")
        .iter()
        .map(|p| hex_of(p))
        .collect();
    assert_eq!(packs, parity);
    cli.run(&["verify", "--repo", &repo, "--read-data"]).ok();
}

/// Through a mount: a read of a corrected pack's file is exact, a restore job says what it
/// corrected; a read of a file whose data is damaged beyond the parity is `EIO`, and no
/// read ever returns wrong bytes.
#[test]
fn a_mount_reads_corrected_data_and_never_wrong_bytes() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let cli = setup(w, 5);
    let repo = cli.repo();
    let correctable = data_pack(&cli);
    // A second instance in packs of its own (every backup closes its packs).
    noise_tree(&w.join("other"), 6, 400_000, 77);
    cli.run(&["snapshot", "big", "--repo", &repo, "--path", "other"])
        .ok();
    let beyond = objects(Path::new(&repo), "packs")
        .into_iter()
        .filter(|p| *p != correctable)
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    damage(&correctable, |b| {
        let at = b.len() / 3 + 999;
        b[at..at + 4096].fill(0);
    });
    damage(&beyond, |b| b[100_000..400_000].fill(0));

    let store = Store::open(&Location::Local(Path::new(&repo).to_path_buf())).unwrap();
    let r = Repository::open(store, None).unwrap();
    let catalog = Arc::new(Catalog::open(&w.join("lib.sqlite")).unwrap());
    catalog.refresh(&r).unwrap();
    let service = Service::start(r, catalog, 2).unwrap();
    let mnt = w.join("mnt");
    let limit = Duration::from_secs(300);
    let _guard = MountGuard::new(service, &mnt, limit);

    for i in 0..6 {
        let name = format!("part-{i:02}.bin");
        let read = fs::read(mnt.join("www/latest").join(&name)).unwrap();
        assert!(
            read == fs::read(w.join("src").join(&name)).unwrap(),
            "{name}"
        );
    }
    let (mut exact, mut eio) = (0, 0);
    for i in 0..6 {
        let name = format!("part-{i:02}.bin");
        match fs::read(mnt.join("big/latest").join(&name)) {
            Ok(read) => {
                assert!(
                    read == fs::read(w.join("other").join(&name)).unwrap(),
                    "{name}"
                );
                exact += 1;
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO), "{name}: {e}");
                eio += 1;
            }
        }
    }
    assert!(eio >= 1 && exact + eio == 6, "{eio} EIO, {exact} exact");

    let target = w.join("restored");
    let reply = request(
        &mnt.join(".cairn/ctl/restore"),
        &format!("instance=www point=latest target={}\n", target.display()),
    )
    .unwrap();
    let status = wait_job_file(&mnt, job_of(&reply), limit);
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(
        status["result"]["corrected"][0]["pack"],
        hex_of(&correctable),
        "{status}"
    );
    assert_same_tree(&w.join("src"), &target);
    let m_arg = mnt.to_str().unwrap();
    let through = w.join("through");
    restore_run(&cli, "www", ["--mount", m_arg], &through, &[])
        .ok()
        .stdout_has(&format!("CORRECTED  pack {}: ", hex_of(&correctable)));
    let failed = w.join("failed");
    restore_run(&cli, "big", ["--mount", m_arg], &failed, &[]).code(1);
    assert!(!failed.exists());
}

/// A repository made `--like` one without parity, with `--ecc`: the packs a copy moves
/// whole get parity too, and a damaged one is corrected when read. `--like` alone keeps
/// LIKE's setting.
#[test]
fn packs_copied_whole_into_an_ecc_repository_get_parity() {
    let dir = tempfile::tempdir().unwrap();
    let cli = setup(dir.path(), 0);
    let (a, b, c) = (
        cli.repo(),
        dir.path().join("b").display().to_string(),
        dir.path().join("c").display().to_string(),
    );
    cli.run(&["init", &b, "--like", &a, "--ecc", "5"]).ok();
    cli.run(&["init", &c, "--like", &b]).ok();
    let config: Value =
        serde_json::from_slice(&fs::read(Path::new(&c).join("config")).unwrap()).unwrap();
    assert_eq!(config["ecc"]["percent"], 5, "{config}");
    cli.run(&["copy", "www", "--from", &a, "--to", &b]).ok();
    let packs = objects(Path::new(&b), "packs");
    let parity = objects(Path::new(&b), "ecc");
    assert!(!packs.is_empty());
    let names = |v: &[PathBuf]| v.iter().map(|p| hex_of(p)).collect::<Vec<_>>();
    assert_eq!(names(&packs), names(&parity));
    let pack = packs
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    damage(pack, |bytes| {
        let at = bytes.len() / 3;
        bytes[at] ^= 0x40;
    });
    let target = dir.path().join("out");
    let run = cli
        .run(&[
            "restore",
            "www",
            "latest",
            "--repo",
            &b,
            "--target",
            &target.display().to_string(),
        ])
        .ok();
    assert!(run.stdout.contains("CORRECTED"), "{}", run.stdout);
    assert_same_tree(&dir.path().join("src"), &target);
}
