//! `az://` for real: the CLI on Azurite, pointed at it with the variables README
//! documents. A round trip: init, mount, instance, snapshot through the mount, a read of
//! the point in the mount, restore, verify, umount, and a restore without the mount.
//! (The storage contract on Azurite is checked in `store_conformance.rs`; what
//! fake-gcs-server cannot do for `gs://` is shown in `gcs_emulator.rs`.)

use std::fs;

use crate::support::cli_env::Env;
use crate::support::cloud::{azurite, azurite_vars, AZURITE_ACCOUNT, AZURITE_KEY};
use crate::support::fixture::{assert_same_tree, noise, SourceTree};
use crate::support::mount::fuse_available;
use crate::support::s3::unique_prefix;

fn round_trip(env: Env) {
    env.init();
    let src = SourceTree::new(&env.path("src"));
    src.file("big.bin", &noise(21, 3 << 20));
    src.file("docs/readme.txt", b"hello cloud\n");
    src.file("docs/empty", b"");
    let daemon = env.mount_background();
    let src_arg = src.root.to_str().unwrap();
    env.run(&["instance", "add", "web", "--path", src_arg]).ok();
    let snap = env.run(&["snapshot", "web", "--json"]).ok().json();
    assert_eq!(snap["state"], "succeeded", "{snap}");
    let point = snap["result"]["point"].as_str().unwrap().to_string();

    let in_mount = env.mnt().join("web").join(&point);
    assert_eq!(
        fs::read(in_mount.join("docs/readme.txt")).unwrap(),
        b"hello cloud\n"
    );
    assert!(fs::read(in_mount.join("big.bin")).unwrap() == noise(21, 3 << 20));

    let target = env.path("restored");
    env.run(&[
        "restore",
        "web",
        &point,
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_same_tree(&src.root, &target);
    env.run(&["verify", "--read-data"])
        .ok()
        .stdout_has("ok: no damage found");
    env.run(&["umount", env.mnt().to_str().unwrap()]).ok();
    drop(daemon);

    // And without a mount, straight on the repository.
    let again = env.path("restored-direct");
    let repo = env.repo();
    env.run(&[
        "restore",
        "web",
        "latest",
        "--repo",
        &repo,
        "--target",
        again.to_str().unwrap(),
    ])
    .ok();
    assert_same_tree(&src.root, &again);
}

#[test]
fn snapshot_mount_and_restore_on_azurite() {
    let Some(az) = azurite() else { return };
    if !fuse_available() {
        return;
    }
    let url = format!("az://{}/{}", az.bucket, unique_prefix("cli"));
    round_trip(Env::with_repository(url, azurite_vars(az)));
}

/// A named account on a plain-http endpoint (how a user reaches Azurite, or another
/// Azure-compatible server, without the emulator switch): init, snapshot, restore.
#[test]
fn init_snapshot_and_restore_through_an_http_azure_endpoint() {
    let Some(az) = azurite() else { return };
    let url = format!("az://{}/{}", az.bucket, unique_prefix("endpoint"));
    let vars = vec![
        ("AZURE_STORAGE_ACCOUNT_NAME".into(), AZURITE_ACCOUNT.into()),
        ("AZURE_STORAGE_ACCOUNT_KEY".into(), AZURITE_KEY.into()),
        (
            "AZURE_STORAGE_ENDPOINT".into(),
            format!("{}/{AZURITE_ACCOUNT}", az.url),
        ),
    ];
    let env = Env::with_repository(url.clone(), vars);
    env.run(&["init", "--no-encryption", &url]).ok();
    let src = SourceTree::new(&env.path("src"));
    src.file("a/b.txt", b"over plain http\n");
    let src_arg = src.root.to_str().unwrap();
    env.run(&["snapshot", "ep", "--repo", &url, "--path", src_arg])
        .ok();
    let target = env.path("out");
    env.run(&[
        "restore",
        "ep",
        "latest",
        "--repo",
        &url,
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_same_tree(&src.root, &target);
}
