//! The local blob cache is only a cache: backups, restores and a mount on S3 are correct
//! with the cache deleted or with every entry damaged (each damaged entry is detected,
//! dropped and fetched again, never returned), and trees read through a full cache (a
//! tiny bound) are the trees of the repository while the cache stays within its bound.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cairn::engine::disk_cache::DiskCache;
use cairn::engine::{backup, BackupRequest, CancelToken, NoProgress, TreeReader};
use cairn::repo::{BlobId, Repository};
use cairn::store::{Location, Store};

use crate::support::fixture::{noise, SourceTree};
use crate::support::mount::fuse_available;
use crate::support::repos::{fast_init, TestRepo};
use crate::support::s3_cli::{blob_cache_files, counted};

/// Flips one byte in the middle of every file; returns their bytes before.
fn damage_all(files: &[PathBuf]) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut before = BTreeMap::new();
    for f in files {
        let bytes = fs::read(f).unwrap();
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x01;
        fs::write(f, &bad).unwrap();
        before.insert(f.clone(), bytes);
    }
    before
}

/// Every file of `src` reads the same under `dir`.
fn same_contents(src: &Path, dir: &Path) {
    let mut stack = vec![PathBuf::new()];
    let mut files = 0;
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(src.join(&rel)).unwrap().flatten() {
            let rel = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(rel);
            } else {
                files += 1;
                let theirs = fs::read(dir.join(&rel)).unwrap();
                assert!(fs::read(e.path()).unwrap() == theirs, "{}", rel.display());
            }
        }
    }
    assert!(files > 0);
}

#[test]
fn backups_restores_and_a_mount_are_right_with_the_cache_damaged_or_deleted() {
    let Some(c) = counted("blob-cache") else {
        return;
    };
    let src = c.source();
    c.snapshot(&src);
    let cached = blob_cache_files(&c.env);
    assert!(
        cached.len() > 100,
        "the backup's trees are cached: {}",
        cached.len()
    );

    // Every entry damaged: the next backup reads the parent's trees anyway (a damaged
    // entry is a miss), and the entries it fetched again hold the stored form again.
    let before = damage_all(&cached);
    let tree = SourceTree::new(&src);
    tree.file("g1/d001/f0.txt", b"changed\n");
    tree.file("g2/new/file.txt", &noise(99, 4000));
    c.snapshot(&src);
    c.restore(&src, "restored-damaged");
    let mut refetched = 0;
    for (path, good) in &before {
        if let Ok(now) = fs::read(path) {
            assert!(&now == good, "{} still damaged", path.display());
            refetched += 1;
        }
    }
    assert!(
        refetched > 100,
        "damaged entries were replaced: {refetched}"
    );

    // Damaged again, a mount reads every file right.
    if fuse_available() {
        damage_all(&blob_cache_files(&c.env));
        let daemon = c.env.mount_background();
        let points: Vec<_> = fs::read_dir(c.env.mnt().join("data"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        let latest = points.iter().max().expect("points in the mount");
        same_contents(&src, latest);
        drop(daemon);
    }

    // Deleted: a restore and a backup are just as right.
    for f in blob_cache_files(&c.env) {
        fs::remove_file(f).unwrap();
    }
    c.restore(&src, "restored-deleted");
    tree.file("g3/after-delete.txt", b"one more\n");
    c.snapshot(&src);
    c.restore(&src, "restored-after");
}

fn all_trees(reader: &TreeReader, root: &BlobId) -> Vec<(BlobId, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![*root];
    while let Some(id) = stack.pop() {
        let tree = reader.tree(&id).unwrap();
        stack.extend(tree.nodes.iter().filter_map(|n| n.subtree));
        out.push((id, tree.encode()));
    }
    out.sort();
    out
}

#[test]
fn trees_read_through_a_full_cache_are_right_and_the_cache_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let tree = SourceTree::new(&src);
    for d in 0..60u64 {
        for f in 0..8u64 {
            tree.file(&format!("d{d:02}/s{}/f{f}", d % 3), &noise(d * 8 + f, 300));
        }
    }
    // Small packs: the trees fill several tree packs, each read whole into the cache.
    let store = Store::open(&Location::Local(dir.path().join("repo"))).unwrap();
    let mut opts = fast_init(true);
    opts.pack_size = 4 << 10;
    let t = TestRepo::open_catalog(Repository::init(store, &opts).unwrap(), dir.path());
    let req = BackupRequest::new("full", vec![src.clone()]);
    let out = backup(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap();
    let root = out.manifest.root;
    let plain = all_trees(&TreeReader::new(t.repo.clone(), t.catalog.clone()), &root);
    assert!(plain.len() > 100, "{}", plain.len());
    let stored: u64 = plain
        .iter()
        .map(|(id, _)| t.catalog.lookup_blob(id).unwrap().unwrap().length as u64)
        .sum();

    // A bound under what the trees take: whole packs come in, older entries go.
    let cache_dir = dir.path().join("blob-cache");
    let bound = 24 << 10;
    assert!(stored > bound, "{stored}");
    let cached_reader = || {
        TreeReader::new(t.repo.clone(), t.catalog.clone())
            .with_disk_cache(DiskCache::open(&cache_dir, bound).unwrap())
    };
    for _ in 0..2 {
        assert!(all_trees(&cached_reader(), &root) == plain);
        let used: u64 = fs::read_dir(&cache_dir)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(used <= bound, "{used} > {bound}");
    }
    // With a roomy bound, one miss brings every tree of its pack.
    let roomy = dir.path().join("roomy");
    let reader = TreeReader::new(t.repo.clone(), t.catalog.clone())
        .with_disk_cache(DiskCache::open(&roomy, 64 << 20).unwrap());
    reader.tree(&root).unwrap();
    let pack = t.catalog.lookup_blob(&root).unwrap().unwrap().pack;
    let in_pack = t.catalog.blobs_in_pack(&pack).unwrap().len();
    assert!(in_pack > 1, "{in_pack}");
    assert_eq!(fs::read_dir(&roomy).unwrap().count(), in_pack);
}
