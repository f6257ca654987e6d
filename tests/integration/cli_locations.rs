//! A repository URL typo is refused, not turned into a directory (issue 10, item 6):
//! `s3:/bucket/x` or `s3:bucket/x` used to create `./s3:`.

use std::path::Path;

use crate::support::cli_repo::Cli;

#[test]
fn a_scheme_typo_is_refused_and_creates_nothing_but_dot_slash_is_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    for typo in [
        "s3:/bucket/x",
        "s3:bucket/x",
        "gs:bucket",
        "backup-host:/srv/repo",
    ] {
        cli.run(&["init", "--no-encryption", typo])
            .code(2)
            .stderr_has("looks like a URL scheme")
            .stderr_has(&format!("./{typo}"));
        cli.run(&["points", "--repo", typo]).code(2);
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "cache")
        .collect();
    assert!(left.is_empty(), "created {left:?}");
    cli.run(&["init", "--no-encryption", "./s3:bucket/x"]).ok();
    assert!(Path::new(dir.path()).join("s3:bucket/x/config").is_file());
}
