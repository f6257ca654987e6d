//! `repair` (issue 15, item 2): a repository with four points, one index segment
//! deleted, one pack truncated and another deleted. A dry run reports all of it and
//! changes nothing; the repair rebuilds the segment, moves the readable blobs out of the
//! truncated pack and removes it, drops the missing pack from the index, and marks the
//! two points that still lack data damaged. Then verify names exactly those, every other
//! point restores byte for byte, the damaged ones are listed by `points --kind damaged`
//! with their lost files and restore only with `--skip-damaged`; a second repair does
//! nothing, and a backup that stores the lost data again heals its point. Also through a
//! mount (`ctl/repair`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use cairn::engine::repair::{repair, RepairOutcome, RepairRequest};
use cairn::engine::{
    backup, restore, verify, BackupOutcome, BackupRequest, CancelToken, NoProgress, RestoreMode,
    RestoreRequest, VerifyRequest,
};
use cairn::repo::{InitOptions, PackId, Repository};
use cairn::service::Service;
use cairn::store::FaultStore;
use cairn::store::{Location, Store};
use serde_json::Value;

use crate::support::cli_repo::Cli;
use crate::support::fixture::{assert_same_tree, noise, SourceTree};
use crate::support::forge::{flip_blob, locate_file};
use crate::support::mount::{fuse_available, job_of, request, wait_job_file, MountGuard};
use crate::support::repos::{fast_init, TestRepo};

const LIMIT: Duration = Duration::from_secs(300);
const FILES: u64 = 8;

/// An encrypted local repository with 1 MiB packs (six 200 KiB files fill one).
fn small_packs(work: &Path) -> TestRepo {
    let store = Store::open(&Location::Local(work.join("repo"))).unwrap();
    let opts = InitOptions {
        pack_size: 1 << 20,
        ..fast_init(true)
    };
    TestRepo::open_catalog(Repository::init(store, &opts).unwrap(), work)
}

/// One point of instance `www`: its source and its files.
struct Point {
    src: PathBuf,
    out: BackupOutcome,
    files: Vec<String>,
}

/// Point `n` of `www`: a source of its own, 8 distinct files of 200 KiB (one chunk each).
fn point(t: &TestRepo, work: &Path, n: u64) -> Point {
    let src = work.join(format!("src{n}"));
    let tree = SourceTree::new(&src);
    let files: Vec<String> = (0..FILES).map(|i| format!("d{}/f{i}", i % 2)).collect();
    for (i, f) in files.iter().enumerate() {
        tree.file(f, &noise(n * 100 + i as u64, 200 << 10));
    }
    let req = BackupRequest::new("www", vec![src.clone()]);
    let out = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    Point { src, out, files }
}

/// Where each file's (only) blob is: pack, offset, end.
fn places(t: &TestRepo, p: &Point) -> Vec<(String, PackId, u64)> {
    p.files
        .iter()
        .map(|f| {
            let (blob, _) = locate_file(t, &p.out.manifest.root, f);
            let loc = t.catalog.lookup_blob(&blob).unwrap().unwrap();
            (f.clone(), loc.pack, u64::from(loc.offset + loc.length))
        })
        .collect()
}

/// Every object of the local repository (key -> bytes' hash), in-progress files aside.
fn objects(repo: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains('#') {
                let key = p.strip_prefix(repo).unwrap().display().to_string();
                out.insert(
                    key,
                    blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string(),
                );
            }
        }
    }
    out
}

/// The planted damage, and the files each damaged point loses.
struct Planted {
    lost1: Vec<String>,
    lost2: Vec<String>,
}

/// Deletes the index segment of point 0, truncates the pack of point 1's first file to
/// half its size, deletes the pack of point 2's first file (through the store).
fn plant(t: &TestRepo, points: &[Point]) -> Planted {
    let store = t.repo.store();
    let p0 = places(t, &points[0]);
    let segments: Vec<String> = store
        .list("index/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| {
            let packs = t.repo.read_index(k).unwrap();
            packs.iter().any(|p| p.id == p0[0].1)
        })
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    store.delete(&segments[0]).unwrap();

    let p1 = places(t, &points[1]);
    let cut_pack = p1[0].1;
    let bytes = store.get(&cut_pack.key()).unwrap();
    let cut = bytes.len() as u64 / 2;
    store
        .put(&cut_pack.key(), bytes.slice(..cut as usize))
        .unwrap();
    let lost1: Vec<String> = p1
        .iter()
        .filter(|(_, pack, end)| *pack == cut_pack && *end > cut)
        .map(|(f, _, _)| f.clone())
        .collect();
    let kept = p1
        .iter()
        .filter(|(_, pack, end)| *pack == cut_pack && *end <= cut);
    assert!(kept.count() > 0 && !lost1.is_empty(), "{p1:?} cut at {cut}");

    let p2 = places(t, &points[2]);
    let gone = p2[0].1;
    store.delete(&gone.key()).unwrap();
    let lost2 = p2
        .iter()
        .filter(|(_, pack, _)| *pack == gone)
        .map(|(f, _, _)| f.clone())
        .collect();
    Planted {
        lost1: sorted(lost1),
        lost2: sorted(lost2),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// (point name, damaged paths) of a list of damaged points.
fn named(list: &Value, paths: &str) -> Vec<(String, Vec<String>)> {
    let name = |p: &Value| {
        p["point"]
            .as_str()
            .or(p["name"].as_str())
            .unwrap()
            .to_string()
    };
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| (name(p), strings(&p[paths])))
        .collect()
}

#[test]
fn repair_rebuilds_salvages_removes_and_marks_what_is_lost() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let points: Vec<Point> = (0..4).map(|n| point(&t, w, n)).collect();
    let names: Vec<String> = points.iter().map(|p| p.out.manifest.name.clone()).collect();
    let planted = plant(&t, &points);
    let expected = vec![
        (names[1].clone(), planted.lost1.clone()),
        (names[2].clone(), planted.lost2.clone()),
    ];
    let cli = Cli::new(w);
    let repo = cli.repo();
    let repo_dir = w.join("repo");

    // A dry run says everything and changes nothing.
    let before = objects(&repo_dir);
    let dry = cli
        .run(&["repair", "--repo", &repo, "--dry-run", "--json"])
        .code(1);
    let dry = dry.json();
    assert_eq!(objects(&repo_dir), before);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["segments_rebuilt"], 1, "{dry}");
    assert_eq!(dry["damaged_packs"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry["packs_removed"], 1, "{dry}");
    assert_eq!(dry["packs_missing"], 1, "{dry}");
    assert_eq!(named(&dry["damaged_points"], "paths"), expected, "{dry}");
    let text = cli.run(&["repair", "--repo", &repo, "--dry-run"]).code(1);
    assert!(text.stdout.contains("would be removed"), "{}", text.stdout);
    assert_eq!(objects(&repo_dir), before);

    // The repair.
    let done = cli
        .run(&["repair", "--repo", &repo, "--json"])
        .code(1)
        .json();
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["segments_rebuilt"], 1, "{done}");
    assert_eq!(done["packs_salvaged"], 1, "{done}");
    let moved = done["blobs_moved"].as_u64().unwrap();
    assert_eq!(moved, dry["blobs_moved"].as_u64().unwrap(), "{done}");
    assert!(moved >= 1, "{done}");
    assert_eq!(done["bytes_moved"], dry["bytes_moved"], "{done}");
    assert_eq!(done["packs_removed"], 1, "{done}");
    assert_eq!(
        done["blobs_lost"].as_u64().unwrap(),
        (planted.lost1.len() + planted.lost2.len()) as u64,
        "{done}"
    );
    assert_eq!(named(&done["damaged_points"], "paths"), expected, "{done}");
    assert_eq!(done["points_marked"], 2);
    let after = objects(&repo_dir);
    let damaged_key = &dry["damaged_packs"][0]["pack"];
    assert!(!after.contains_key(damaged_key.as_str().unwrap()));
    assert_eq!(
        after
            .keys()
            .filter(|k| k.starts_with("damaged/www/"))
            .count(),
        2
    );

    // Verify names exactly the damaged points, and nothing else is wrong.
    let v = cli
        .run(&["verify", "--repo", &repo, "--json"])
        .code(1)
        .json();
    assert_eq!(named(&v["damaged"], "paths"), expected, "{v}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    for i in [0, 3] {
        let args = [
            "verify",
            "--repo",
            &repo,
            "--instance",
            "www",
            "--point",
            &names[i],
        ];
        cli.run(&args).ok();
    }

    // Every undamaged point restores byte for byte.
    for i in [0, 3] {
        let target = w.join(format!("restored{i}"));
        let t_str = target.to_str().unwrap();
        cli.run(&[
            "restore", "www", &names[i], "--repo", &repo, "--target", t_str,
        ])
        .ok();
        assert_same_tree(&points[i].src, &target);
    }

    // The damaged points are listed with their lost files.
    let listed = cli
        .run(&["points", "--repo", &repo, "--kind", "damaged", "--json"])
        .ok()
        .json();
    assert_eq!(
        named(&listed["points"], "damaged_paths"),
        expected,
        "{listed}"
    );
    let text = cli
        .run(&["points", "www", "--repo", &repo, "--kind", "damaged"])
        .ok();
    for f in planted.lost1.iter().chain(&planted.lost2) {
        assert!(
            text.stdout.contains(&format!("DAMAGED  {f}")),
            "{}",
            text.stdout
        );
    }
    // Whole words: points taken in one second are NAME and NAME-2.
    let words: Vec<&str> = text.stdout.split_whitespace().collect();
    assert!(
        !words.contains(&names[0].as_str()) && !words.contains(&names[3].as_str()),
        "{}",
        text.stdout
    );

    // A damaged point does not restore, except with --skip-damaged, which names the lost.
    let target = w.join("restored1");
    let t_str = target.to_str().unwrap();
    let failed = cli
        .run(&[
            "restore", "www", &names[1], "--repo", &repo, "--target", t_str,
        ])
        .failed();
    assert!(
        failed.stderr.contains(&planted.lost1[0]),
        "{}",
        failed.describe()
    );
    assert!(!target.exists());
    let skipped = cli
        .run(&[
            "restore",
            "www",
            &names[1],
            "--repo",
            &repo,
            "--target",
            t_str,
            "--skip-damaged",
        ])
        .code(3);
    for f in &points[1].files {
        let restored = target.join(f);
        if planted.lost1.contains(f) {
            let line = format!("SKIPPED    {}", restored.display());
            assert!(skipped.stdout.contains(&line), "{}", skipped.describe());
            assert!(!restored.exists());
        } else {
            assert_eq!(
                fs::read(&restored).unwrap(),
                fs::read(points[1].src.join(f)).unwrap()
            );
        }
    }

    let events = cli
        .run(&[
            "events",
            "--repo",
            &repo,
            "--kind",
            "repair-completed",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(events["events"].as_array().unwrap().len(), 3, "{events}");

    // A second repair does nothing.
    let again = cli
        .run(&["repair", "--repo", &repo, "--json"])
        .code(1)
        .json();
    assert_eq!(objects(&repo_dir), after);
    for k in [
        "segments_rebuilt",
        "packs_salvaged",
        "blobs_moved",
        "packs_removed",
        "packs_missing",
        "segments_rewritten",
        "blobs_lost",
        "points_marked",
        "marks_cleared",
    ] {
        assert_eq!(again[k], 0, "{k}: {again}");
    }
    assert_eq!(named(&again["damaged_points"], "paths"), expected);
    // The marks are in the repository: a rebuilt catalog (or another machine) sees them.
    cli.run(&["catalog", "rebuild", &repo]).ok();
    let listed = cli
        .run(&["points", "--repo", &repo, "--kind", "damaged", "--json"])
        .ok()
        .json();
    assert_eq!(
        named(&listed["points"], "damaged_paths"),
        expected,
        "{listed}"
    );

    // A backup of point 2's source stores the lost data again: point 2 is healed.
    let src2 = points[2].src.to_str().unwrap();
    cli.run(&["snapshot", "www", "--repo", &repo, "--path", src2])
        .ok();
    let listed = cli
        .run(&["points", "--repo", &repo, "--kind", "damaged", "--json"])
        .ok()
        .json();
    assert_eq!(
        named(&listed["points"], "damaged_paths"),
        expected[..1].to_vec()
    );
    let healed = cli
        .run(&["repair", "--repo", &repo, "--json"])
        .code(1)
        .json();
    assert_eq!(healed["marks_cleared"], 1, "{healed}");
    assert_eq!(
        named(&healed["damaged_points"], "paths"),
        expected[..1].to_vec()
    );
    let target = w.join("restored2");
    let t_str = target.to_str().unwrap();
    cli.run(&[
        "restore", "www", &names[2], "--repo", &repo, "--target", t_str,
    ])
    .ok();
    assert_same_tree(&points[2].src, &target);
}

fn job(mnt: &Path, text: &str) -> Value {
    let reply = request(&mnt.join(".cairn/ctl/repair"), text).unwrap();
    wait_job_file(mnt, job_of(&reply), LIMIT)
}

#[test]
fn repair_through_the_mount() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let points: Vec<Point> = (0..3).map(|n| point(&t, w, n)).collect();
    let planted = plant(&t, &points);
    let mnt = w.join("mnt");
    let service = Service::start(t.repo.clone(), t.catalog.clone(), 2).unwrap();
    let guard = MountGuard::new(service, &mnt, LIMIT);

    let (e, reply) = request(&mnt.join(".cairn/ctl/repair"), "dry-run=perhaps\n").unwrap_err();
    assert_eq!(e, libc::EINVAL, "{reply}");
    let before = objects(&w.join("repo"));
    let dry = job(&mnt, "dry-run=true\n");
    assert_eq!(dry["state"], "succeeded", "{dry}");
    assert_eq!(dry["kind"], "repair");
    assert_eq!(dry["result"]["dry_run"], true);
    assert_eq!(objects(&w.join("repo")), before);

    let done = job(&mnt, "dry-run=false\n");
    assert_eq!(done["state"], "succeeded", "{done}");
    let r = &done["result"];
    assert_eq!(r["segments_rebuilt"], 1, "{r}");
    assert_eq!(r["packs_removed"], 1, "{r}");
    let damaged = named(&r["damaged_points"], "paths");
    assert_eq!(
        damaged,
        vec![
            (points[1].out.manifest.name.clone(), planted.lost1.clone()),
            (points[2].out.manifest.name.clone(), planted.lost2.clone()),
        ]
    );
    let events = fs::read_to_string(mnt.join(".cairn/events")).unwrap();
    assert!(events.contains("\"repair-requested\""), "{events}");
    assert!(events.contains("\"repair-completed\""), "{events}");

    // The CLI follows the job through the mount: exit 1 while points remain damaged.
    let cli = Cli::new(w);
    let run = cli
        .run(&["repair", "--mount", mnt.to_str().unwrap()])
        .code(1);
    assert!(run.stdout.contains(&planted.lost1[0]), "{}", run.describe());
    let mnt_str = mnt.to_str().unwrap();
    let listed = cli
        .run(&["points", "--mount", mnt_str, "--kind", "damaged", "--json"])
        .ok()
        .json();
    assert_eq!(
        named(&listed["points"], "damaged_paths"),
        damaged,
        "{listed}"
    );
    let restore = cli
        .run(&[
            "restore",
            "www",
            &points[1].out.manifest.name,
            "--mount",
            mnt_str,
            "--target",
            w.join("restored").to_str().unwrap(),
        ])
        .failed();
    assert!(
        restore.stderr.contains("marked damaged"),
        "{}",
        restore.describe()
    );
    drop(guard);
}

/// A repair stopped after `budget` writes or deletes (its process then gone: its lease is
/// free), then run again: the second run completes it, whatever step the first stopped
/// at, and a third has nothing to do.
#[test]
fn a_repair_stopped_at_any_step_is_completed_by_the_next() {
    let mut budget = 0;
    loop {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let fault = Arc::new(FaultStore::new(Arc::new(
            object_store::memory::InMemory::new(),
        )));
        let store = Store::from_object_store(fault.clone(), "fault".into()).unwrap();
        let opts = InitOptions {
            pack_size: 1 << 20,
            ..fast_init(true)
        };
        let t = TestRepo::open_catalog(Repository::init(store, &opts).unwrap(), w);
        let points: Vec<Point> = (0..3).map(|n| point(&t, w, n)).collect();
        let planted = plant(&t, &points);
        let expected = vec![
            (points[1].out.manifest.name.clone(), planted.lost1.clone()),
            (points[2].out.manifest.name.clone(), planted.lost2.clone()),
        ];
        let run = || {
            let req = RepairRequest { dry_run: false };
            repair(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
        };

        fault.fail_changes_after(budget);
        let first = run();
        fault.heal();
        let finished = first.is_ok();
        if let Err(e) = &first {
            assert!(e.to_string().contains("injected"), "{e}");
            for lock in t.repo.store().list("locks/").unwrap() {
                t.repo.store().delete(&lock.key).unwrap();
            }
        }
        let second = run().unwrap();
        let damaged: Vec<_> = second
            .damaged_points
            .iter()
            .map(|d| (d.point.clone(), d.paths.clone()))
            .collect();
        assert_eq!(damaged, expected, "budget {budget}: {second:?}");
        let third = run().unwrap();
        let idle = RepairOutcome {
            dry_run: false,
            packs_checked: third.packs_checked,
            damaged_points: third.damaged_points.clone(),
            ..RepairOutcome::default()
        };
        assert_eq!(third, idle, "budget {budget}");
        let target = w.join("restored0");
        let req = RestoreRequest {
            instance: "www".into(),
            point: points[0].out.manifest.name.clone(),
            target: Some(target.clone()),
            includes: vec![],
            mode: RestoreMode::New,
            skip_damaged: false,
            delete_excluded: false,
        };
        restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
        assert_same_tree(&points[0].src, &target);
        if finished {
            eprintln!("repair crash test: stopped at each of {budget} steps");
            break;
        }
        budget += 1;
        assert!(budget < 100, "a repair should need far fewer steps");
    }
}

/// A corrupt blob whose data a later backup stored again (verify found it, so the backup
/// did not deduplicate against it): the repair moves the rest of its pack out, removes
/// the pack, and loses nothing; the repository is whole (exit 0).
#[test]
fn a_blob_with_an_intact_copy_elsewhere_is_not_lost() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let first = point(&t, w, 0);
    let (blob, _) = locate_file(&t, &first.out.manifest.root, &first.files[0]);
    let loc = t.catalog.lookup_blob(&blob).unwrap().unwrap();
    flip_blob(w, &loc);
    let req = VerifyRequest {
        read_data: true,
        ..Default::default()
    };
    let report = verify(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    let again = BackupRequest::new("www", vec![first.src.clone()]);
    backup(
        &t.repo,
        &t.catalog,
        &again,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();

    let cli = Cli::new(w);
    let repo = cli.repo();
    let done = cli.run(&["repair", "--repo", &repo, "--json"]).ok().json();
    assert_eq!(done["packs_removed"], 1, "{done}");
    assert_eq!(done["packs_salvaged"], 1, "{done}");
    assert_eq!(done["blobs_lost"], 0, "{done}");
    assert_eq!(done["damaged_points"], serde_json::json!([]), "{done}");
    assert!(!w.join("repo").join(loc.pack.key()).exists());
    let target = w.join("restored");
    let t_str = target.to_str().unwrap();
    let name = &first.out.manifest.name;
    cli.run(&["restore", "www", name, "--repo", &repo, "--target", t_str])
        .ok();
    assert_same_tree(&first.src, &target);
    cli.run(&["verify", "--repo", &repo, "--read-data"]).ok();
    let text = cli.run(&["repair", "--repo", &repo]).ok();
    assert!(
        text.stdout.contains("ok: the repository is whole"),
        "{}",
        text.stdout
    );
}

/// A repair holds the prune lease: while a prune (of another host) holds it, a repair is
/// refused as busy and changes nothing; a dry run, which takes no lease, still reports.
#[test]
fn a_repair_does_not_run_beside_a_prune() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let t = small_packs(w);
    let points: Vec<Point> = (0..3).map(|n| point(&t, w, n)).collect();
    plant(&t, &points);
    let elsewhere = cairn::repo::LeaseHolder {
        host: "elsewhere".into(),
        process: None,
    };
    let now = cairn::model::now_ns();
    let held =
        cairn::repo::Lease::acquire(&t.repo, &elsewhere, now, 3_600_000_000_000, false).unwrap();
    let before = objects(&w.join("repo"));
    let run = |dry_run| {
        let req = RepairRequest { dry_run };
        repair(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
    };
    let err = run(false).unwrap_err();
    assert!(err.to_string().contains("holds the lease"), "{err}");
    assert_eq!(objects(&w.join("repo")), before);
    assert_eq!(run(true).unwrap().damaged_points.len(), 2);
    held.release(&t.repo).unwrap();
    assert_eq!(run(false).unwrap().packs_removed, 1);
}
