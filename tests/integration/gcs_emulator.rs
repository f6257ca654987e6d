//! `gs://` against fake-gcs-server, and what it cannot do. object_store's GCS client
//! writes every object with the XML API (`PUT /BUCKET/OBJECT`, with
//! `x-goog-if-generation-match: 0` for a conditional create); fake-gcs-server implements
//! that path only for signed URLs and answers `400 invalid uploadType`. So cairn cannot
//! write a repository there: this test pins the emulator's actual behaviour (refused
//! uploads; reads, ranges, listing and deletes of objects it holds all work) and cairn's
//! error (`init` fails naming the object and the server's reason, and leaves nothing).
//! README says so next to `gs://`. If a later fake-gcs-server takes the uploads, this
//! test fails: then run the whole conformance suite on it and update README.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use cairn::store::Store;

use crate::support::cli_env::Env;
use crate::support::cloud::{fake_gcs, fake_gcs_vars, gcs_store, gcs_store_at, Emulator};
use crate::support::s3::unique_prefix;

/// Uploads an object with the JSON API (`uploadType=media`), which fake-gcs-server has.
fn upload_with_json_api(env: &Emulator, name: &str, body: &[u8]) {
    let authority = env.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(authority).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = name.replace('/', "%2F");
    write!(
        s,
        "POST /upload/storage/v1/b/{}/o?uploadType=media&name={name} HTTP/1.1\r\n\
         Host: {authority}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        env.bucket,
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "JSON API upload: {reply}"
    );
}

fn prefix_of(store: &Store, env: &Emulator) -> String {
    let head = format!("gs://{}/", env.bucket);
    store.description().strip_prefix(&head).unwrap().to_string()
}

#[test]
fn fake_gcs_refuses_object_store_uploads_and_cairn_says_so() {
    let Some(env) = fake_gcs() else { return };
    let store = gcs_store("limits").unwrap();

    // The emulator refuses both kinds of upload object_store makes.
    for (what, result) in [
        ("put_new", store.put_new("t/new", Bytes::from_static(b"x"))),
        ("put", store.put("t/setting", Bytes::from_static(b"x"))),
    ] {
        let err = result.expect_err("fake-gcs-server took an XML API upload: update README");
        assert!(
            err.to_string().contains("invalid uploadType"),
            "{what}: {err}"
        );
    }

    // What it holds, cairn's store reads: whole, by range, by listing; and deletes.
    let prefix = prefix_of(&store, env);
    upload_with_json_api(env, &format!("{prefix}/t/seeded"), b"hello gcs");
    assert_eq!(store.get("t/seeded").unwrap(), &b"hello gcs"[..]);
    assert_eq!(store.get_range("t/seeded", 6..9).unwrap(), &b"gcs"[..]);
    assert_eq!(store.head("t/seeded").unwrap(), 9);
    let listed: Vec<String> = store
        .list("t/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, ["t/seeded"]);
    assert!(matches!(
        store.get("t/missing"),
        Err(cairn::store::StoreError::NotFound(_))
    ));
    store.delete("t/seeded").unwrap();
    assert!(store.list("t/").unwrap().is_empty());

    // cairn, set up as README says: `init` fails with the object and the reason.
    let url = format!("gs://{}/{}", env.bucket, unique_prefix("cli"));
    let cli = Env::with_repository(url.clone(), fake_gcs_vars(env));
    cli.run(&["init", "--no-encryption", &url])
        .code(1)
        .stderr_has("storage request on `config` failed")
        .stderr_has("invalid uploadType");
    let repo_prefix = url.rsplit('/').next().unwrap();
    assert!(
        gcs_store_at(env, repo_prefix).list("").unwrap().is_empty(),
        "a failed init left objects behind"
    );
}
