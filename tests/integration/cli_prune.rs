//! `cairn forget` and `cairn prune` with `--repo`, run as the real binary.

use std::fs;

use crate::support::cli_repo::{pack_bytes, Cli};
use crate::support::fixture::{assert_same_tree, noise};

#[test]
fn forget_and_prune_with_the_repository_directly() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let mut names = Vec::new();
    for i in 0..2u64 {
        // Each point: its own 5 MiB file (several chunks), the first one gone later.
        let _ = fs::remove_dir_all(&src);
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join(format!("f{i}")), noise(40 + i, 5 << 20)).unwrap();
        let snap = cli
            .run(&[
                "snapshot", "web", "--repo", &repo, "--path", "src", "--json",
            ])
            .ok()
            .json();
        names.push(snap["point"].as_str().unwrap().to_string());
    }

    cli.run(&["forget", "web", &names[0], "--repo", &repo])
        .code(2)
        .stderr_has("manual");
    cli.run(&[
        "forget",
        "web",
        "2020-01-01T000000Z",
        "--manual",
        "--repo",
        &repo,
    ])
    .code(2);
    let forgot = cli
        .run(&[
            "forget", "web", &names[0], "--manual", "--repo", &repo, "--json",
        ])
        .ok()
        .json();
    assert_eq!(forgot["removed"][0], names[0].as_str());

    let before = pack_bytes(dir.path().join("repo").as_path());
    let dry = cli
        .run(&["prune", "--repo", &repo, "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true);
    assert!(dry["packs_condemned"].as_u64().unwrap() >= 1, "{dry}");
    assert_eq!(pack_bytes(dir.path().join("repo").as_path()), before);
    let pruned = cli
        .run(&["prune", "--repo", &repo, "--grace-hours", "0", "--json"])
        .ok()
        .json();
    assert!(pruned["packs_deleted"].as_u64().unwrap() >= 1, "{pruned}");
    let after = pack_bytes(dir.path().join("repo").as_path());
    eprintln!("cairn prune --repo: packs {before} B -> {after} B");
    assert!(
        after + (5 << 20) <= before + (64 << 10),
        "{after} vs {before}"
    );

    cli.run(&["verify", "--repo", &repo, "--read-data"]).code(0);
    let target = dir.path().join("restored");
    cli.run(&[
        "restore",
        "web",
        "--repo",
        &repo,
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_same_tree(&src, &target);
    // The text report names what happened.
    let text = cli.run(&["prune", "--repo", &repo]).ok();
    text.stdout_has("pending    nothing");
}
