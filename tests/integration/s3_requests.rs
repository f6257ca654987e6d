//! The requests a backup, a restore and a mount make on S3, counted by a proxy in front
//! of the test server (`FaultProxy` without rules): a no-change backup and a restore make
//! a handful (the trees come from the local cache), and a machine with an empty cache
//! reads a point's trees in whole tree packs, not one request per directory. The counts
//! are behaviour, not timing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::support::cli_env::Env;
use crate::support::fixture::{assert_same_tree, noise, SourceTree};
use crate::support::mount::fuse_available;
use crate::support::s3::{cli_vars, s3_env, unique_prefix};
use crate::support::s3_fault_proxy::{FaultProxy, Seen};

/// A CLI environment whose encrypted repository is on S3 through a counting proxy.
pub struct Counted {
    pub proxy: FaultProxy,
    pub env: Env,
}

/// `None` (after s3_env's loud warning; a panic with CI=true) when there is no S3 server.
pub fn counted(tag: &str) -> Option<Counted> {
    let s3 = s3_env()?;
    let proxy = FaultProxy::start(&s3.endpoint);
    let url = format!("s3://{}/{}", s3.bucket, unique_prefix(tag));
    let mut env = Env::with_repository(url, cli_vars(s3, &proxy.endpoint()));
    env.password = Some("requests".into());
    env.init();
    Some(Counted { proxy, env })
}

impl Counted {
    /// 120 directories of 5 small files (many trees, one data pack).
    pub fn source(&self) -> PathBuf {
        let src = SourceTree::new(&self.env.path("src"));
        for d in 0..120u64 {
            for f in 0..5u64 {
                let rel = format!("g{}/d{d:03}/f{f}.txt", d % 7);
                src.file(&rel, &noise(d * 10 + f, 1500));
            }
        }
        src.root
    }

    pub fn snapshot(&self, src: &PathBuf) {
        let (repo, path) = (self.env.repo(), src.to_str().unwrap().to_string());
        self.env
            .run(&["snapshot", "data", "--repo", &repo, "--path", &path])
            .ok();
    }

    /// Restores the latest point into `rel` (a new directory) and checks it against `src`.
    pub fn restore(&self, src: &PathBuf, rel: &str) {
        let (repo, target) = (self.env.repo(), self.env.path(rel));
        let target_arg = target.to_str().unwrap();
        self.env
            .run(&[
                "restore", "data", "latest", "--repo", &repo, "--target", target_arg,
            ])
            .ok();
        assert_same_tree(src, &target);
    }

    /// The requests since the last call, with their count by kind.
    pub fn take(&self) -> (Vec<Seen>, BTreeMap<String, usize>) {
        let seen = self.proxy.take_seen();
        let mut kinds = BTreeMap::new();
        for s in &seen {
            *kinds.entry(s.kind.clone()).or_default() += 1;
        }
        (seen, kinds)
    }
}

/// Range reads of packs (trees and file data).
fn pack_reads(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| s.kind == "GET" && s.target.contains("/packs/"))
        .count()
}

fn listing(seen: &[Seen]) -> String {
    seen.iter().map(|s| format!("\n  {s}")).collect()
}

#[test]
fn a_no_change_backup_and_a_restore_on_s3_make_a_handful_of_requests() {
    let Some(c) = counted("requests") else { return };
    let src = c.source();
    c.take();
    c.snapshot(&src);
    let (seen, kinds) = c.take();
    assert!(
        seen.len() <= 16,
        "first backup: {kinds:?}{}",
        listing(&seen)
    );

    // Open (config, key listing, key), refresh (top level, index, packs, points), the
    // name claim and the manifest: no tree is read from the store.
    c.snapshot(&src);
    let (seen, kinds) = c.take();
    assert_eq!(
        pack_reads(&seen),
        0,
        "trees come from the cache{}",
        listing(&seen)
    );
    assert!(
        seen.len() <= 9,
        "no-change backup: {kinds:?}{}",
        listing(&seen)
    );
    assert!(kinds.get("PUT").copied().unwrap_or(0) <= 2, "{kinds:?}");

    // The same, then the file data: one range of the one data pack.
    c.restore(&src, "restored");
    let (seen, kinds) = c.take();
    assert!(
        pack_reads(&seen) <= 1,
        "restore reads data only{}",
        listing(&seen)
    );
    assert!(seen.len() <= 9, "restore: {kinds:?}{}", listing(&seen));

    // Another machine (no catalog, no cache): the trees come in one tree pack read.
    std::fs::remove_dir_all(c.env.path("cache")).unwrap();
    c.restore(&src, "restored-fresh");
    let (seen, kinds) = c.take();
    assert!(
        pack_reads(&seen) <= 2,
        "one tree pack, one data range{}",
        listing(&seen)
    );
    assert!(
        seen.len() <= 14,
        "fresh restore: {kinds:?}{}",
        listing(&seen)
    );
    // ... and the next no-change backup there finds them in its cache.
    c.snapshot(&src);
    let (seen, _) = c.take();
    assert_eq!(pack_reads(&seen), 0, "{}", listing(&seen));
}

#[test]
fn a_fresh_machines_mount_reads_a_points_trees_in_whole_tree_packs() {
    if !fuse_available() {
        return;
    }
    let Some(c) = counted("mount-requests") else {
        return;
    };
    let src = c.source();
    c.snapshot(&src);
    std::fs::remove_dir_all(c.env.path("cache")).unwrap();
    let daemon = c.env.mount_background();
    c.take();
    let point_dir = c.env.mnt().join("data");
    let point = std::fs::read_dir(&point_dir)
        .unwrap()
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .expect("a point")
        .path();
    let mut dirs = 0;
    let mut stack = vec![point];
    while let Some(d) = stack.pop() {
        dirs += 1;
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    assert!(dirs > 120, "{dirs}");
    let (seen, _) = c.take();
    // 128 trees, one tree pack: its trees come in one read (a second when a prefetch
    // raced the first), not one per directory.
    assert!(pack_reads(&seen) <= 2, "{}", listing(&seen));
    drop(daemon);
}
