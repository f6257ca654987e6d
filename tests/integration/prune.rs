//! Prune: after forget, unreferenced data goes in two phases and the repository shrinks;
//! every remaining point verifies and restores byte for byte; blobs reused after a plan
//! are kept; a crash at any step loses nothing and a rerun finishes; concurrent backups
//! on S3 survive; one prune at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn::catalog::Catalog;
use cairn::engine::{
    backup, forget, prune, restore, verify, BackupOutcome, BackupRequest, CancelToken, EngineError,
    ForgetRequest, NoProgress, PruneOutcome, PruneRequest, RestoreMode, RestoreRequest,
    VerifyRequest,
};
use cairn::model::{Manifest, PointKind};
use cairn::repo::{ChunkerParams, InitOptions, PackId, RepoError, Repository};
use cairn::store::{FaultStore, Store};

use crate::support::fixture::{assert_same_tree, noise, SourceTree};
use crate::support::repos::{fast_init, TestRepo};

const T0: i64 = 1_800_000_000 * 1_000_000_000;
const DAY: i64 = 24 * 3_600 * 1_000_000_000;

/// Packs of 1 MiB and chunks of at least 1 MiB: every test file (< 1 MiB) is one blob,
/// and what one backup adds below 1 MiB lands in one pack.
pub(crate) fn opts() -> InitOptions {
    InitOptions {
        pack_size: 1 << 20,
        chunker: ChunkerParams {
            min_size: 1 << 20,
            avg_size: 2 << 20,
            max_size: 4 << 20,
        },
        ..fast_init(true)
    }
}

/// Three sources: `s1` shares two files with the others, has one of its own (700 KB) and
/// one (`keep`, 200 KB) that `s2` has too. Forgetting s1's point leaves its data pack
/// 78% dead (repacked) and its tree pack all dead.
pub(crate) fn sources(work: &Path) -> Vec<PathBuf> {
    let shared = [noise(1, 500_000), noise(2, 500_000)];
    let keep = noise(3, 200_000);
    let mk = |i: usize, own: &[(&str, Vec<u8>)]| {
        let s = SourceTree::new(&work.join(format!("s{i}")));
        s.file("shared1", &shared[0]);
        s.file("shared2", &shared[1]);
        for (name, data) in own {
            s.file(name, data);
        }
        s.root
    };
    vec![
        mk(0, &[("f0", noise(10, 300_000))]),
        mk(1, &[("f1", noise(11, 700_000)), ("keep", keep.clone())]),
        mk(2, &[("keep", keep.clone()), ("f2", noise(12, 300_000))]),
    ]
}

pub(crate) fn snap(t: &TestRepo, src: &Path) -> BackupOutcome {
    let mut req = BackupRequest::new("db", vec![src.to_path_buf()]);
    req.kind = PointKind::Scheduled;
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

pub(crate) fn forget_point(t: &TestRepo, name: &str) {
    let req = ForgetRequest {
        instance: "db".into(),
        points: vec![name.into()],
        allow_manual: false,
    };
    forget(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
}

pub(crate) fn prune_at(t: &TestRepo, now: i64) -> Result<PruneOutcome, EngineError> {
    let req = PruneRequest {
        now_ns: Some(now),
        ..Default::default()
    };
    prune(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new())
}

pub(crate) fn repo_bytes(t: &TestRepo) -> u64 {
    t.repo
        .store()
        .list("")
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum()
}

/// `verify --read-data` is clean, and each (point, source) restores identically.
pub(crate) fn assert_intact(t: &TestRepo, work: &Path, points: &[(&str, &Path)]) {
    let req = VerifyRequest {
        read_data: true,
        ..Default::default()
    };
    let report = verify(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.points_checked, points.len() as u64);
    for (name, src) in points {
        let target = work.join(format!("restore-{}", rand_suffix()));
        let req = RestoreRequest {
            instance: "db".into(),
            point: name.to_string(),
            target: Some(target.clone()),
            includes: vec![],
            mode: RestoreMode::New,
            delete_excluded: false,
            skip_damaged: false,
        };
        restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
        assert_same_tree(src, &target);
        std::fs::remove_dir_all(&target).unwrap();
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

/// Every index segment names only packs that exist.
fn assert_index_names_existing_packs(t: &TestRepo) {
    let packs: std::collections::HashSet<PackId> = t
        .repo
        .store()
        .list("packs/")
        .unwrap()
        .iter()
        .filter_map(|o| PackId::from_key(&o.key))
        .collect();
    for seg in t.repo.store().list("index/").unwrap() {
        for p in t.repo.read_index(&seg.key).unwrap() {
            assert!(packs.contains(&p.id), "{} names a deleted pack", seg.key);
        }
    }
}

struct Scenario {
    work: tempfile::TempDir,
    t: TestRepo,
    src: Vec<PathBuf>,
    pts: Vec<BackupOutcome>,
}

fn scenario(make_store: impl FnOnce(&Path) -> Store) -> Scenario {
    let work = tempfile::tempdir().unwrap();
    let repo = Repository::init(make_store(work.path()), &opts()).unwrap();
    let t = TestRepo::open_catalog(repo, work.path());
    let src = sources(work.path());
    let pts: Vec<BackupOutcome> = src.iter().map(|s| snap(&t, s)).collect();
    Scenario { work, t, src, pts }
}

fn local_scenario() -> Scenario {
    scenario(|work| Store::open(&cairn::store::Location::Local(work.join("repo"))).unwrap())
}

impl Scenario {
    fn survivors(&self) -> Vec<(&str, &Path)> {
        vec![
            (self.pts[0].manifest.name.as_str(), self.src[0].as_path()),
            (self.pts[2].manifest.name.as_str(), self.src[2].as_path()),
        ]
    }
}

#[test]
fn forget_then_prune_frees_space_in_two_phases_and_keeps_every_point() {
    let s = local_scenario();
    let t = &s.t;
    let before_forget = repo_bytes(t);
    forget_point(t, &s.pts[1].manifest.name);

    let planned = prune_at(t, T0).unwrap();
    assert_eq!(planned.packs_condemned, 2, "{planned:?}");
    assert_eq!(planned.packs_repacked, 1, "{planned:?}");
    assert_eq!(planned.bytes_repacked, 200_000, "only `keep` is copied");
    assert_eq!((planned.packs_deleted, planned.plans_pending), (0, 1));
    assert_eq!(planned.next_sweep_ns, Some(T0 + DAY));
    assert_eq!(t.repo.store().list("prune/").unwrap().len(), 1);
    let during_grace = repo_bytes(t);
    assert!(during_grace > before_forget, "nothing is deleted yet");
    assert_intact(t, s.work.path(), &s.survivors());

    // Still in the grace period: nothing goes, nothing new is planned.
    let early = prune_at(t, T0 + DAY - 1).unwrap();
    assert_eq!(
        (early.packs_deleted, early.packs_condemned),
        (0, 0),
        "{early:?}"
    );

    let swept = prune_at(t, T0 + DAY).unwrap();
    assert_eq!(swept.packs_deleted, 2, "{swept:?}");
    assert_eq!(swept.packs_kept, 0);
    assert!(swept.segments_rewritten >= 1);
    assert_eq!(swept.plans_pending, 0);
    let after = repo_bytes(t);
    eprintln!(
        "prune sizes: before forget {before_forget} B, during grace {during_grace} B, after sweep {after} B, freed {} B",
        swept.bytes_freed
    );
    assert!(
        after + 700_000 < before_forget,
        "{after} vs {before_forget}"
    );
    assert!(t.repo.store().list("prune/").unwrap().is_empty());
    assert_index_names_existing_packs(t);
    assert_intact(t, s.work.path(), &s.survivors());

    // Nothing left to do; and another machine's catalog agrees.
    let again = prune_at(t, T0 + 2 * DAY).unwrap();
    assert_eq!((again.packs_condemned, again.packs_deleted), (0, 0));
    let other = TestRepo {
        repo: t.repo.clone(),
        catalog: Arc::new(Catalog::open(&s.work.path().join("other.sqlite")).unwrap()),
    };
    other.catalog.rebuild(&other.repo).unwrap();
    assert_intact(&other, s.work.path(), &s.survivors());
}

#[test]
fn a_dry_run_changes_nothing() {
    let s = local_scenario();
    forget_point(&s.t, &s.pts[1].manifest.name);
    let listing = |t: &TestRepo| {
        let mut l = t.repo.store().list("").unwrap();
        l.sort_by(|a, b| a.key.cmp(&b.key));
        l
    };
    let before = listing(&s.t);
    let req = PruneRequest {
        dry_run: true,
        now_ns: Some(T0),
        ..Default::default()
    };
    let o = prune(
        &s.t.repo,
        &s.t.catalog,
        &req,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert!(o.dry_run);
    assert_eq!((o.packs_condemned, o.packs_repacked), (2, 1), "{o:?}");
    assert_eq!(listing(&s.t), before);
}

#[test]
fn blobs_reused_after_the_plan_are_kept_or_stored_again() {
    let s = local_scenario();
    let t = &s.t;
    forget_point(t, &s.pts[1].manifest.name);
    prune_at(t, T0).unwrap();

    // A backup that deduplicated before it saw the plan: its point names s1's old root,
    // whose tree and data only condemned packs hold. The sweep must keep those packs.
    let mut m = s.pts[1].manifest.clone();
    m.name = "2030-01-01T000000Z-auto".into();
    m.parent = Some(s.pts[2].id.to_hex());
    let (id, json) = m.encode(t.repo.key());
    t.repo
        .put_sealed(&Manifest::object_key("db", &id), json)
        .unwrap();
    let swept = prune_at(t, T0 + DAY).unwrap();
    assert_eq!((swept.packs_kept, swept.packs_deleted), (2, 0), "{swept:?}");
    let mut points = s.survivors();
    points.push((m.name.as_str(), s.src[1].as_path()));
    assert_intact(t, s.work.path(), &points);

    // Forgotten again and condemned again; now another machine backs s1 up after the
    // plan: it must not dedup against the condemned packs, so the sweep can delete them
    // and its point survives.
    forget_point(t, &m.name);
    let planned = prune_at(t, T0 + 2 * DAY).unwrap();
    assert_eq!(planned.packs_condemned, 2, "{planned:?}");
    let m2 = TestRepo {
        repo: t.repo.clone(),
        catalog: Arc::new(Catalog::open(&s.work.path().join("m2.sqlite")).unwrap()),
    };
    let again = snap(&m2, &s.src[1]);
    assert!(
        again.manifest.stats.new_bytes >= 700_000,
        "{:?}",
        again.manifest.stats
    );
    let swept = prune_at(t, T0 + 3 * DAY).unwrap();
    assert_eq!((swept.packs_kept, swept.packs_deleted), (0, 2), "{swept:?}");
    let mut points = s.survivors();
    points.push((again.manifest.name.as_str(), s.src[1].as_path()));
    assert_intact(t, s.work.path(), &points);
    assert_intact(&m2, s.work.path(), &points);
}

#[test]
fn one_prune_at_a_time_and_an_expired_lease_is_taken_over() {
    let s = local_scenario();
    let t = &s.t;
    let elsewhere = cairn::repo::LeaseHolder {
        host: "elsewhere".into(),
        process: None,
    };
    let held = cairn::repo::Lease::acquire(&t.repo, &elsewhere, T0, DAY, false).unwrap();
    let err = prune_at(t, T0 + 1).unwrap_err();
    assert!(
        matches!(&err, EngineError::Repo(RepoError::Busy(m)) if m.contains("holds the lease")),
        "{err}"
    );
    assert!(t.repo.store().list("prune/").unwrap().is_empty());
    // The holder died: after expiry the next prune runs, and the old holder notices.
    forget_point(t, &s.pts[1].manifest.name);
    let o = prune_at(t, T0 + DAY + 1).unwrap();
    assert_eq!(o.packs_condemned, 2);
    assert!(held.check(&t.repo).is_err());
    assert!(t.repo.store().list("locks/").unwrap().is_empty());
}

/// A prune stopped after `budget` writes or deletes, then rerun until it completes.
#[test]
fn a_crash_at_any_step_of_a_prune_loses_nothing_and_a_rerun_completes() {
    let mut budget = 0;
    loop {
        let fault = Arc::new(FaultStore::new(Arc::new(
            object_store::memory::InMemory::new(),
        )));
        let store = Store::from_object_store(fault.clone(), "fault".into()).unwrap();
        let s = scenario(|_| store);
        let t = &s.t;
        forget_point(t, &s.pts[1].manifest.name);
        let before = repo_bytes(t);

        // Phase one (plan and repack) and phase two (sweep) each stopped at `budget`.
        let mut finished = true;
        for now in [T0, T0 + DAY] {
            fault.fail_changes_after(budget);
            let result = prune_at(t, now);
            fault.heal();
            if let Err(e) = &result {
                assert!(e.to_string().contains("injected"), "{e}");
                finished = false;
                assert_intact(t, s.work.path(), &s.survivors());
            }
        }
        // Reruns after the dead prune's lease expired finish the job.
        let rerun = T0 + 3 * DAY;
        prune_at(t, rerun).unwrap();
        prune_at(t, rerun + 2 * DAY).unwrap();
        let done = prune_at(t, rerun + 4 * DAY).unwrap();
        assert_eq!(
            (done.packs_condemned, done.plans_pending),
            (0, 0),
            "{done:?}"
        );
        assert!(repo_bytes(t) + 700_000 < before, "budget {budget}");
        assert_index_names_existing_packs(t);
        assert_intact(t, s.work.path(), &s.survivors());
        if finished {
            eprintln!("prune crash test: stopped at each of {budget} steps");
            break;
        }
        budget += 1;
        assert!(budget < 100, "a prune should need far fewer steps");
    }
}

/// Runs a prune when the backup it watches starts backing up: the backup's catalog was
/// refreshed before the plan existed, so it deduplicates against what the plan condemns.
struct PruneWhenBackingUp<'a> {
    t: &'a TestRepo,
    now: i64,
    outcome: std::sync::Mutex<Option<PruneOutcome>>,
}

impl cairn::engine::Progress for PruneWhenBackingUp<'_> {
    fn phase(&self, name: &str) {
        if name == "backing up" {
            let o = prune_at(self.t, self.now).unwrap();
            *self.outcome.lock().unwrap() = Some(o);
        }
    }
}

#[test]
fn a_backup_during_a_prune_on_s3_keeps_its_point() {
    let Some(store) = crate::support::repos::s3_store("prune-concurrent") else {
        return;
    };
    let s = scenario(|_| store);
    let t = &s.t;
    forget_point(t, &s.pts[1].manifest.name);

    // Another machine backs up s1's data (the forgotten point's) while the prune plans.
    let m2 = TestRepo {
        repo: t.repo.clone(),
        catalog: Arc::new(Catalog::open(&s.work.path().join("m2.sqlite")).unwrap()),
    };
    let now = cairn::model::now_ns();
    let hook = PruneWhenBackingUp {
        t,
        now,
        outcome: Default::default(),
    };
    let req = BackupRequest::new("db", vec![s.src[1].clone()]);
    let theirs = backup(&m2.repo, &m2.catalog, &req, &hook, &CancelToken::new()).unwrap();
    let planned = hook.outcome.lock().unwrap().take().expect("the prune ran");
    assert_eq!(planned.packs_condemned, 2, "{planned:?}");
    // It reused s1's data (the backup's catalog did not know the plan yet).
    assert!(
        theirs.manifest.stats.new_bytes < 700_000,
        "{:?}",
        theirs.manifest.stats
    );

    // The grace period passes; the sweep keeps what that point needs.
    let swept = prune_at(t, now + DAY).unwrap();
    assert_eq!(swept.packs_deleted + swept.packs_kept, 2, "{swept:?}");
    assert!(swept.packs_kept >= 1, "{swept:?}");
    let mut points = s.survivors();
    points.push((theirs.manifest.name.as_str(), s.src[1].as_path()));
    assert_intact(t, s.work.path(), &points);
    assert_intact(&m2, s.work.path(), &points);

    // And a later prune finds nothing more to do: every pack left is in use.
    let later = prune_at(t, now + 3 * DAY).unwrap();
    assert_eq!(later.packs_condemned, 0, "{later:?}");
}

#[test]
fn an_unreadable_manifest_stops_a_prune_before_it_condemns_anything() {
    let s = local_scenario();
    let t = &s.t;
    forget_point(t, &s.pts[1].manifest.name);
    let key = format!("points/db/{}", "ab".repeat(32));
    t.repo.put_sealed(&key, b"not a manifest".to_vec()).unwrap();
    let err = prune_at(t, T0).unwrap_err();
    assert!(err.to_string().contains("could not be read"), "{err}");
    assert!(t.repo.store().list("prune/").unwrap().is_empty());
    t.repo.store().delete(&key).unwrap();
    assert_eq!(prune_at(t, T0).unwrap().packs_condemned, 2);
}
