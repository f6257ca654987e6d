//! A repository's `config` is bound to its key files (issue 10, item 4): an edited
//! `config` (the plaintext downgrade above all) is refused, a repository with key files
//! never opens as unencrypted, and a damaged or missing key file says so instead of
//! "wrong password". Each case changes nothing in the repository.

use std::path::{Path, PathBuf};

use cairn::repo::{RepoError, Repository};
use cairn::store::{Location, Store};
use serde_json::Value;

use crate::support::cli_repo::{pack_bytes, Cli};
use crate::support::repos::{fast_init, PASSWORD};

fn init(dir: &Path, encrypted: bool) -> PathBuf {
    let path = dir.join("repo");
    let store = Store::open(&Location::Local(path.clone())).unwrap();
    Repository::init(store, &fast_init(encrypted)).unwrap();
    path
}

fn open(repo: &Path, password: Option<&[u8]>) -> Result<Repository, RepoError> {
    Repository::open(
        Store::open(&Location::Local(repo.to_path_buf())).unwrap(),
        password,
    )
}

fn edit_config(repo: &Path, edit: impl FnOnce(&mut Value)) {
    let path = repo.join("config");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

fn key_files(repo: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(repo.join("keys"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn downgrade(config: &mut Value) {
    config["encryption"] = "none".into();
    config["id_key"] = hex_key().into();
}

fn hex_key() -> String {
    "07".repeat(32)
}

#[track_caller]
fn assert_altered(result: Result<Repository, RepoError>, needle: &str) {
    match result {
        Err(e @ RepoError::ConfigAltered(_)) => {
            let text = e.to_string();
            assert!(text.contains(needle), "{text}");
        }
        other => panic!("expected ConfigAltered, got {other:?}"),
    }
}

#[test]
fn a_downgraded_config_is_refused_with_or_without_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), true);
    edit_config(&repo, downgrade);
    assert_altered(open(&repo, None), "never opened as unencrypted");
    assert_altered(open(&repo, Some(PASSWORD)), "never opened as unencrypted");
}

/// A change made to a parsed `config`.
type ConfigEdit = dyn Fn(&mut Value);

#[test]
fn any_edit_of_an_encrypted_config_is_refused() {
    let edits: Vec<(&str, Box<ConfigEdit>)> = vec![
        ("zstd_level", Box::new(|c| c["zstd_level"] = 19.into())),
        ("pack_size", Box::new(|c| c["pack_size"] = 4096.into())),
        (
            "chunker",
            Box::new(|c| c["chunker"]["min_size"] = 65536.into()),
        ),
        ("formatting only", Box::new(|_| {})),
    ];
    for (what, edit) in edits {
        let dir = tempfile::tempdir().unwrap();
        let repo = init(dir.path(), true);
        let before = std::fs::read(repo.join("config")).unwrap();
        let mut config: Value = serde_json::from_slice(&before).unwrap();
        edit(&mut config);
        // Written compact: even a change of formatting alone is a change.
        std::fs::write(repo.join("config"), serde_json::to_vec(&config).unwrap()).unwrap();
        assert_altered(open(&repo, Some(PASSWORD)), "is not the config");
        // Put back, it opens again: the refusal changed nothing.
        std::fs::write(repo.join("config"), &before).unwrap();
        open(&repo, Some(PASSWORD)).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

#[test]
fn an_encrypted_config_carrying_an_id_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), true);
    edit_config(&repo, |c| c["id_key"] = hex_key().into());
    assert_altered(open(&repo, Some(PASSWORD)), "carries an `id_key`");
}

#[test]
fn missing_foreign_and_damaged_key_files_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), true);
    let key = key_files(&repo).pop().unwrap();
    let original = std::fs::read(&key).unwrap();

    // A flipped digit in the sealed key.
    let mut text = String::from_utf8(original.clone()).unwrap();
    let at = text.find("\"sealed\": \"").unwrap() + 20;
    let flipped = if &text[at..at + 1] == "0" { "1" } else { "0" };
    text.replace_range(at..at + 1, flipped);
    std::fs::write(&key, &text).unwrap();
    let err = open(&repo, Some(PASSWORD)).unwrap_err();
    assert!(matches!(err, RepoError::KeyDamaged(_)), "{err}");
    assert!(
        err.to_string().contains("no longer match its name"),
        "{err}"
    );

    // Truncated: no longer JSON.
    std::fs::write(&key, &original[..original.len() / 2]).unwrap();
    let err = open(&repo, Some(PASSWORD)).unwrap_err();
    assert!(matches!(err, RepoError::KeyDamaged(_)), "{err}");
    assert!(err.to_string().contains("not a key file"), "{err}");

    // Intact, wrong password: that is what it says.
    std::fs::write(&key, &original).unwrap();
    assert!(matches!(
        open(&repo, Some(b"not it")),
        Err(RepoError::WrongPassword)
    ));

    // Gone.
    std::fs::remove_file(&key).unwrap();
    for pw in [None, Some(PASSWORD)] {
        let err = open(&repo, pw).unwrap_err();
        assert!(matches!(err, RepoError::KeyMissing(_)), "{err}");
        assert!(err.to_string().contains("holds no key file"), "{err}");
    }

    // The config's id changed: no key file belongs to it.
    std::fs::write(&key, &original).unwrap();
    edit_config(&repo, |c| c["id"] = "ab".repeat(16).into());
    let err = open(&repo, Some(PASSWORD)).unwrap_err();
    assert!(matches!(err, RepoError::KeyMissing(_)), "{err}");
    assert!(err.to_string().contains("no key file belongs"), "{err}");
}

#[test]
fn an_unencrypted_repository_opens_and_refuses_planted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), false);
    open(&repo, None).unwrap();
    std::fs::create_dir_all(repo.join("keys")).unwrap();
    std::fs::write(repo.join("keys/0011223344556677"), b"{}").unwrap();
    assert_altered(open(&repo, None), "holds key file keys/0011223344556677");
}

/// The archived version-1 repository (key files from before the binding) still opens,
/// and refuses the downgrade and a deleted key.
#[test]
fn the_archived_v1_repository_refuses_downgrade_and_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1");
    assert!(std::process::Command::new("cp")
        .arg("-a")
        .arg(&fixture)
        .arg(&repo)
        .status()
        .unwrap()
        .success());
    let password: &[u8] = b"cairn fixture v1";
    open(&repo, Some(password)).unwrap();
    let config = std::fs::read(repo.join("config")).unwrap();
    edit_config(&repo, downgrade);
    assert_altered(open(&repo, Some(password)), "never opened as unencrypted");
    std::fs::write(repo.join("config"), &config).unwrap();
    for key in key_files(&repo) {
        std::fs::remove_file(key).unwrap();
    }
    assert!(matches!(
        open(&repo, Some(password)),
        Err(RepoError::KeyMissing(_))
    ));
}

/// The reproduction of the issue through the CLI: `cairn snapshot` after the downgrade
/// fails with the reason and writes nothing.
#[test]
fn cli_snapshot_refuses_a_downgraded_repository_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/secret"),
        b"plaintext must not reach the packs",
    )
    .unwrap();
    edit_config(Path::new(&repo), downgrade);
    cli.run(&["snapshot", "web", "--repo", &repo, "--path", "src"])
        .code(1)
        .stderr_has("config was altered")
        .stderr_has("never opened as unencrypted");
    assert_eq!(pack_bytes(Path::new(&repo)), 0);
    assert!(!Path::new(&repo).join("points").exists());
}

/// The downgrade with the key files deleted too: a machine that opened the repository
/// before remembers that it was encrypted and refuses it; nothing is written.
#[test]
fn a_machine_that_saw_the_repository_encrypted_refuses_it_with_its_keys_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path());
    let repo = cli.repo();
    cli.run(&["init", &repo]).ok();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/secret"), b"first, sealed").unwrap();
    cli.run(&["snapshot", "web", "--repo", &repo, "--path", "src"])
        .ok();
    let sealed = pack_bytes(Path::new(&repo));
    assert!(sealed > 0);
    for key in key_files(Path::new(&repo)) {
        std::fs::remove_file(key).unwrap();
    }
    edit_config(Path::new(&repo), downgrade);
    std::fs::write(
        dir.path().join("src/secret"),
        b"plaintext must not reach the packs",
    )
    .unwrap();
    for args in [
        &["snapshot", "web", "--repo", &repo, "--path", "src"][..],
        &["points", "web", "--repo", &repo][..],
    ] {
        cli.run(args)
            .code(1)
            .stderr_has("was encrypted when this machine last opened it");
    }
    assert_eq!(pack_bytes(Path::new(&repo)), sealed);
}
