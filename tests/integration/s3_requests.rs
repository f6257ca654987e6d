//! The requests a backup, a restore and a mount make on S3, counted by a proxy in front
//! of the test server (`FaultProxy` without rules): a no-change backup and a restore make
//! a handful (the trees come from the local cache), and a machine with an empty cache
//! reads a point's trees in whole tree packs, not one request per directory. The counts
//! are behaviour, not timing.

use crate::support::mount::fuse_available;
use crate::support::s3_cli::counted;
use crate::support::s3_fault_proxy::Seen;

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
