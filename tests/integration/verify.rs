//! Verify: a healthy repository is clean; damage names exactly the points and paths that
//! are broken, nothing else; repository-level faults are problems.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use cairn::engine::{
    backup, verify, BackupOutcome, BackupRequest, CancelToken, Damage, EngineError, NoProgress,
    TreeReader, VerifyReport, VerifyRequest,
};
use cairn::model::{Extent, Manifest};
use cairn::repo::{BlobId, BlobLocation, InitOptions, PackId, Repository};
use cairn::store::{Location, Store};

use crate::support::fixture::{noise, SourceTree};
use crate::support::repos::{fast_init, TestRepo};

fn run(t: &TestRepo, instance: &str, src: &Path) -> BackupOutcome {
    let req = BackupRequest::new(instance, vec![src.to_path_buf()]);
    backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn check(t: &TestRepo, req: &VerifyRequest) -> VerifyReport {
    verify(&t.repo, &t.catalog, req, &NoProgress, &CancelToken::new()).unwrap()
}

fn check_all(t: &TestRepo, read_data: bool) -> VerifyReport {
    check(
        t,
        &VerifyRequest {
            read_data,
            ..Default::default()
        },
    )
}

/// A local repository with 1 MiB packs, so that files land in different packs.
fn small_pack_repo(work: &Path) -> TestRepo {
    let store = Store::open(&Location::Local(work.join("repo"))).unwrap();
    let opts = InitOptions {
        pack_size: 1 << 20,
        ..fast_init(true)
    };
    let repo = Repository::init(store, &opts).unwrap();
    TestRepo::open_catalog(repo, work)
}

/// Every file of a point (path relative to the point root) with the data blobs it uses.
fn files_of(t: &TestRepo, root: &BlobId) -> BTreeMap<String, Vec<BlobId>> {
    fn walk(r: &TreeReader, id: &BlobId, prefix: &str, out: &mut BTreeMap<String, Vec<BlobId>>) {
        for node in &r.tree(id).unwrap().nodes {
            let path = format!("{prefix}{}", String::from_utf8_lossy(&node.name));
            let blobs: Vec<BlobId> = node
                .content
                .iter()
                .filter_map(|e| match e {
                    Extent::Data { id, .. } => Some(*id),
                    Extent::Hole { .. } => None,
                })
                .collect();
            if !blobs.is_empty() {
                out.insert(path.clone(), blobs);
            }
            if let Some(sub) = node.subtree {
                walk(r, &sub, &format!("{path}/"), out);
            }
        }
    }
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone());
    let mut out = BTreeMap::new();
    walk(&reader, root, "", &mut out);
    out
}

/// Directories of a point (relative path) with their tree ids.
fn dirs_of(t: &TestRepo, root: &BlobId) -> BTreeMap<String, BlobId> {
    fn walk(r: &TreeReader, id: &BlobId, prefix: &str, out: &mut BTreeMap<String, BlobId>) {
        for node in &r.tree(id).unwrap().nodes {
            if let Some(sub) = node.subtree {
                let path = format!("{prefix}{}", String::from_utf8_lossy(&node.name));
                out.insert(path.clone(), sub);
                walk(r, &sub, &format!("{path}/"), out);
            }
        }
    }
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone());
    let mut out = BTreeMap::from([(".".to_string(), *root)]);
    walk(&reader, root, "", &mut out);
    out
}

fn loc(t: &TestRepo, id: &BlobId) -> BlobLocation {
    t.catalog.lookup_blob(id).unwrap().expect("blob is indexed")
}

fn pack_path(work: &Path, pack: &PackId) -> PathBuf {
    work.join("repo").join(pack.key())
}

/// (instance, point, paths) of each damaged point: what the assertions compare.
fn damaged(report: &VerifyReport) -> Vec<(String, String, Vec<String>)> {
    report
        .damaged
        .iter()
        .map(|d| (d.instance.clone(), d.point.clone(), d.paths.clone()))
        .collect()
}

/// The damage expected when exactly the files using one of `bad` blobs are broken.
fn expected_damage(
    t: &TestRepo,
    points: &[&BackupOutcome],
    bad: &BTreeSet<BlobId>,
) -> Vec<(String, String, Vec<String>)> {
    points
        .iter()
        .filter_map(|p| {
            let paths: Vec<String> = files_of(t, &p.manifest.root)
                .into_iter()
                .filter(|(_, blobs)| blobs.iter().any(|b| bad.contains(b)))
                .map(|(path, _)| path)
                .collect();
            (!paths.is_empty())
                .then(|| (p.manifest.instance.clone(), p.manifest.name.clone(), paths))
        })
        .collect()
}

/// Distinct files spread over several 1 MiB data packs, a hard link and a same-content
/// copy of `a/f03.bin`, a multi-chunk file; two points of `alpha` (the second adds a file)
/// and one of `beta` (other data).
struct Spread {
    work: tempfile::TempDir,
    t: TestRepo,
    alpha1: BackupOutcome,
    alpha2: BackupOutcome,
    beta: BackupOutcome,
}

fn spread() -> Spread {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let tree = SourceTree::new(&src);
    for i in 0..12u64 {
        tree.file(&format!("a/f{i:02}.bin"), &noise(i + 1, 300 << 10));
    }
    fs::hard_link(src.join("a/f03.bin"), src.join("a/link-to-f03")).unwrap();
    tree.file("b/copy-of-f03", &noise(4, 300 << 10));
    tree.file("b/big.bin", &noise(50, 3 << 20));
    let other = work.path().join("other");
    let other_tree = SourceTree::new(&other);
    for i in 0..4u64 {
        other_tree.file(&format!("o{i}.bin"), &noise(100 + i, 300 << 10));
    }
    let t = small_pack_repo(work.path());
    let alpha1 = run(&t, "alpha", &src);
    tree.file("a/new.bin", &noise(77, 200 << 10));
    let alpha2 = run(&t, "alpha", &src);
    let beta = run(&t, "beta", &other);
    Spread {
        work,
        t,
        alpha1,
        alpha2,
        beta,
    }
}

impl Spread {
    fn points(&self) -> Vec<&BackupOutcome> {
        vec![&self.alpha1, &self.alpha2, &self.beta]
    }

    /// The first blob of `a/f03.bin`, its location, and the other data blobs of its pack
    /// that the points use.
    fn victim(&self) -> (BlobId, BlobLocation, Vec<(BlobId, BlobLocation)>) {
        let files = files_of(&self.t, &self.alpha1.manifest.root);
        let victim = files["a/f03.bin"][0];
        let vloc = loc(&self.t, &victim);
        let mut neighbours: Vec<(BlobId, BlobLocation)> = self
            .points()
            .iter()
            .flat_map(|p| files_of(&self.t, &p.manifest.root).into_values().flatten())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|b| (b, loc(&self.t, &b)))
            .filter(|(b, l)| l.pack == vloc.pack && *b != victim)
            .collect();
        neighbours.sort_by_key(|(_, l)| l.offset);
        (victim, vloc, neighbours)
    }
}

fn healthy_repository_verifies_clean(t: &TestRepo, work: &Path) {
    let src = work.join("src");
    SourceTree::all_cases(&src, 2 << 20);
    run(t, "one", &src);
    run(t, "two", &src);
    fs::write(src.join("docs/added.txt"), b"a second point of one").unwrap();
    run(t, "one", &src);
    let structure = check_all(t, false);
    assert!(structure.is_ok(), "{structure:#?}");
    assert_eq!(structure.points_checked, 3);
    assert!(structure.trees_checked >= 10, "{structure:?}");
    assert!(structure.blobs_checked >= 5, "{structure:?}");
    assert!(structure.packs_checked >= 2, "{structure:?}");
    let data = check_all(t, true);
    assert!(data.is_ok(), "{data:#?}");
    assert_eq!(data.points_checked, 3);
    assert_eq!(data.blobs_checked, structure.blobs_checked);
    assert!(
        data.bytes_read > structure.bytes_read + (2 << 20),
        "reading data downloads the packs: {} vs {}",
        data.bytes_read,
        structure.bytes_read
    );
}

#[test]
fn healthy_local_repository_verifies_clean_with_and_without_data() {
    let work = tempfile::tempdir().unwrap();
    let t = TestRepo::local(work.path());
    healthy_repository_verifies_clean(&t, work.path());
}

#[test]
fn healthy_s3_repository_verifies_clean_with_and_without_data() {
    let work = tempfile::tempdir().unwrap();
    let Some(t) = TestRepo::s3(work.path(), "verify-healthy") else {
        return; // only outside CI, after a loud warning
    };
    healthy_repository_verifies_clean(&t, work.path());
}

#[test]
fn a_flipped_byte_in_one_blob_names_exactly_the_files_using_it() {
    let s = spread();
    let (victim, vloc, neighbours) = s.victim();
    assert!(
        !neighbours.is_empty(),
        "the victim's pack holds other blobs in use, which must not be blamed"
    );
    let path = pack_path(s.work.path(), &vloc.pack);
    let mut bytes = fs::read(&path).unwrap();
    bytes[(vloc.offset + vloc.length / 2) as usize] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let structure = check_all(&s.t, false);
    assert!(
        structure.is_ok(),
        "the structure check reads no data: {structure:#?}"
    );

    let report = check_all(&s.t, true);
    let expected = expected_damage(&s.t, &s.points(), &BTreeSet::from([victim]));
    let names = vec![
        "a/f03.bin".to_string(),
        "a/link-to-f03".to_string(),
        "b/copy-of-f03".to_string(),
    ];
    assert_eq!(
        expected,
        vec![
            (
                "alpha".into(),
                s.alpha1.manifest.name.clone(),
                names.clone()
            ),
            ("alpha".into(), s.alpha2.manifest.name.clone(), names),
        ]
    );
    assert_eq!(damaged(&report), expected, "{report:#?}");
    for d in &report.damaged {
        assert!(
            d.causes.iter().any(|c| c.contains(&victim.to_hex())),
            "{d:?}"
        );
    }
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&vloc.pack.to_hex()) && p.contains("do not match its id")),
        "{:?}",
        report.problems
    );
    assert!(report.bytes_read > 5 << 20, "{report:?}");

    // Restricted to beta, which does not use the blob: clean.
    let beta = check(
        &s.t,
        &VerifyRequest {
            instance: Some("beta".into()),
            read_data: true,
            ..Default::default()
        },
    );
    assert!(beta.is_ok(), "{beta:#?}");
}

#[test]
fn a_truncated_pack_names_exactly_the_files_with_blobs_past_its_end() {
    let s = spread();
    let (victim, vloc, mut in_pack) = s.victim();
    in_pack.push((victim, vloc));
    in_pack.sort_by_key(|(_, l)| l.offset);
    assert!(in_pack.len() >= 2, "{in_pack:?}");
    // Cut inside the second half: the blobs before the cut stay whole.
    let cut_at = in_pack[in_pack.len() / 2].1;
    let new_len = cut_at.offset as u64 + 1;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(pack_path(s.work.path(), &vloc.pack))
        .unwrap();
    file.set_len(new_len).unwrap();
    drop(file);
    let cut: BTreeSet<BlobId> = in_pack
        .iter()
        .filter(|(_, l)| l.offset as u64 + l.length as u64 > new_len)
        .map(|(b, _)| *b)
        .collect();
    let kept: BTreeSet<BlobId> = in_pack
        .iter()
        .map(|(b, _)| *b)
        .filter(|b| !cut.contains(b))
        .collect();
    assert!(!cut.is_empty() && !kept.is_empty());
    let expected = expected_damage(&s.t, &s.points(), &cut);
    assert!(!expected.is_empty());
    let expected_paths: BTreeSet<&String> =
        expected.iter().flat_map(|(_, _, paths)| paths).collect();
    assert!(
        expected_damage(&s.t, &s.points(), &kept)
            .iter()
            .flat_map(|(_, _, paths)| paths)
            .any(|p| !expected_paths.contains(p)),
        "some files of the pack use only blobs before the cut"
    );

    let report = check_all(&s.t, false);
    assert_eq!(damaged(&report), expected, "{report:#?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&vloc.pack.to_hex()) && p.contains("header")),
        "the pack's header went with its tail: {:?}",
        report.problems
    );
    // Reading the data blames the same files: the blobs before the cut still decode.
    let data = check_all(&s.t, true);
    assert_eq!(damaged(&data), expected, "{data:#?}");
}

#[test]
fn a_missing_data_pack_names_exactly_its_files() {
    let s = spread();
    let (victim, vloc, neighbours) = s.victim();
    let gone: BTreeSet<BlobId> = neighbours.iter().map(|(b, _)| *b).chain([victim]).collect();
    let expected = expected_damage(&s.t, &s.points(), &gone);
    fs::remove_file(pack_path(s.work.path(), &vloc.pack)).unwrap();
    for read_data in [false, true] {
        let report = check_all(&s.t, read_data);
        assert_eq!(damaged(&report), expected, "{report:#?}");
        assert!(damaged(&report)
            .iter()
            .all(|(_, _, paths)| paths.contains(&"a/f03.bin".to_string())));
        assert!(
            report.problems.is_empty(),
            "a missing pack is damage, not a problem: {:?}",
            report.problems
        );
    }
}

#[test]
fn a_missing_tree_pack_names_the_directories_whose_trees_it_held() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let tree = SourceTree::new(&src);
    tree.file("keep1/x", b"x");
    tree.file("keep2/sub/y", b"y");
    tree.file("change/z", b"z");
    tree.file("change/inner/w", b"w");
    let t = TestRepo::local(work.path());
    let p1 = run(&t, "trees", &src);
    fs::write(src.join("change/z"), b"z, changed").unwrap();
    let p2 = run(&t, "trees", &src);
    let first_trees = loc(&t, &p1.manifest.root).pack;
    assert_ne!(first_trees, loc(&t, &p2.manifest.root).pack);
    // The second point's directories whose trees are in the first tree pack, minus those
    // below another such directory.
    let dirs2 = dirs_of(&t, &p2.manifest.root);
    let in_first: Vec<String> = dirs2
        .iter()
        .filter(|(_, id)| loc(&t, id).pack == first_trees)
        .map(|(path, _)| path.clone())
        .collect();
    let topmost: Vec<String> = in_first
        .iter()
        .filter(|p| !in_first.iter().any(|q| p.starts_with(&format!("{q}/"))))
        .cloned()
        .collect();
    assert_eq!(topmost, vec!["change/inner", "keep1", "keep2"]);

    fs::remove_file(pack_path(work.path(), &first_trees)).unwrap();
    let report = check_all(&t, false);
    assert_eq!(
        damaged(&report),
        vec![
            ("trees".into(), p1.manifest.name.clone(), vec![".".into()]),
            ("trees".into(), p2.manifest.name.clone(), topmost),
        ],
        "{report:#?}"
    );
    assert!(report.damaged[0].causes[0].contains(&p1.manifest.root.to_hex()));
}

#[test]
fn a_deleted_middle_manifest_breaks_the_chain() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let tree = SourceTree::new(&src);
    let t = TestRepo::local(work.path());
    let mut points = Vec::new();
    for i in 0..3u64 {
        tree.file(&format!("f{i}"), &noise(i, 1000));
        points.push(run(&t, "chain", &src));
    }
    let before = check_all(&t, false);
    assert!(before.is_ok(), "{before:#?}");
    t.repo
        .store()
        .delete(&Manifest::object_key("chain", &points[1].id))
        .unwrap();
    let report = check_all(&t, false);
    assert_eq!(report.points_checked, 2);
    assert!(report.damaged.is_empty(), "{report:#?}");
    assert!(!report.is_ok());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert!(
        problem.contains(&points[2].manifest.name)
            && problem.contains(&points[1].id.to_hex())
            && problem.contains("chain"),
        "{problem}"
    );
}

#[test]
fn a_tampered_manifest_is_a_problem() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    SourceTree::new(&src).file("f", b"f");
    let t = TestRepo::local(work.path());
    let p = run(&t, "tamper", &src);
    let key = Manifest::object_key("tamper", &p.id);
    let path = work.path().join("repo").join(&key);
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 1;
    fs::write(&path, &bytes).unwrap();
    // The catalog already holds the manifest: verify still reads the object again.
    let report = check_all(&t, false);
    assert!(
        report.problems.iter().any(|p| p.contains(&key)),
        "{report:#?}"
    );
}

#[test]
fn verify_restricted_to_an_instance_or_a_point_checks_only_that() {
    let s = spread();
    // The pack holding only what the second alpha point added.
    let added = files_of(&s.t, &s.alpha2.manifest.root)["a/new.bin"][0];
    let added_pack = loc(&s.t, &added).pack;
    assert!(files_of(&s.t, &s.alpha1.manifest.root)
        .values()
        .flatten()
        .all(|b| loc(&s.t, b).pack != added_pack));
    fs::remove_file(pack_path(s.work.path(), &added_pack)).unwrap();

    let req = |instance: &str, point: Option<&str>| VerifyRequest {
        instance: Some(instance.into()),
        point: point.map(str::to_string),
        read_data: true,
    };
    let first = check(&s.t, &req("alpha", Some(&s.alpha1.manifest.name)));
    assert!(first.is_ok(), "{first:#?}");
    assert_eq!(first.points_checked, 1);
    let beta = check(&s.t, &req("beta", None));
    assert!(beta.is_ok(), "{beta:#?}");
    assert_eq!(beta.points_checked, 1);
    let alpha_blobs: BTreeSet<BlobId> = files_of(&s.t, &s.alpha1.manifest.root)
        .into_values()
        .flatten()
        .collect();
    assert_eq!(first.blobs_checked, alpha_blobs.len() as u64);

    let latest = check(&s.t, &req("alpha", Some("latest")));
    assert_eq!(latest.points_checked, 1);
    let d: &Damage = &latest.damaged[0];
    assert_eq!(d.point, s.alpha2.manifest.name);
    assert!(d.causes[0].contains(&added.to_hex()), "{d:?}");
    let expected = expected_damage(&s.t, &[&s.alpha2], &BTreeSet::from([added]));
    assert_eq!(damaged(&latest), expected);
    assert_eq!(expected[0].2, vec!["a/new.bin".to_string()]);
    let all_alpha = check(&s.t, &req("alpha", None));
    assert_eq!(all_alpha.points_checked, 2);
    assert_eq!(damaged(&all_alpha), expected);

    // Bad requests fail and say why.
    let err = |r: VerifyRequest| {
        verify(
            &s.t.repo,
            &s.t.catalog,
            &r,
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap_err()
    };
    assert!(matches!(
        err(VerifyRequest {
            point: Some("latest".into()),
            ..Default::default()
        }),
        EngineError::Invalid(_)
    ));
    assert!(matches!(
        err(req("alpha", Some("2020-01-01T000000Z"))),
        EngineError::NoSuchPoint { .. }
    ));
    assert!(matches!(err(req("nobody", None)), EngineError::Invalid(_)));
}

#[test]
fn a_cancelled_verify_stops() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    SourceTree::new(&src).file("f", b"f");
    let t = TestRepo::local(work.path());
    run(&t, "c", &src);
    let cancel = CancelToken::new();
    cancel.cancel();
    let r = verify(
        &t.repo,
        &t.catalog,
        &VerifyRequest::default(),
        &NoProgress,
        &cancel,
    );
    assert!(matches!(r, Err(EngineError::Cancelled)), "{r:?}");
}

#[test]
fn an_unreadable_index_segment_is_a_problem_not_damage() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    SourceTree::new(&src).file("f", &noise(9, 5000));
    let t = TestRepo::local(work.path());
    run(&t, "idx", &src);
    let segments = t.repo.store().list("index/").unwrap();
    assert_eq!(segments.len(), 1);
    let path = work.path().join("repo").join(&segments[0].key);
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    fs::write(&path, &bytes).unwrap();
    // Once with the catalog that cached the segment, once with one rebuilt without it
    // (the blobs are then found through the pack headers).
    for rebuild in [false, true] {
        if rebuild {
            t.catalog.rebuild(&t.repo).unwrap();
        }
        let report = check_all(&t, false);
        assert!(report.damaged.is_empty(), "{report:#?}");
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(
            report.problems[0].contains(&segments[0].key),
            "{:?}",
            report.problems
        );
    }
}
