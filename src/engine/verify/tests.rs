//! Unit tests of the damage walk's bookkeeping and of what verify blames.

use super::*;

fn hit(path: &[u8], cause: &str) -> Hit {
    Hit {
        path: path.to_vec(),
        causes: vec![Arc::from(cause)],
    }
}

#[test]
fn hits_are_prefixed_with_the_directory_name() {
    let mut out = Vec::new();
    prefix_hits(&mut out, b"dir", &[hit(b"", "t"), hit(b"a/b", "x")]);
    let paths: Vec<_> = out.iter().map(|h| h.path.clone()).collect();
    assert_eq!(paths, vec![b"dir".to_vec(), b"dir/a/b".to_vec()]);
    assert_eq!(&*out[1].causes[0], "x");
}

#[test]
fn damage_is_sorted_deduplicated_and_names_the_root_as_dot() {
    let p = PointRecord {
        id: crate::model::ManifestId([0; 32]),
        manifest: crate::model::Manifest {
            version: 1,
            instance: "db".into(),
            name: "2026-01-01T000000Z".into(),
            kind: crate::model::PointKind::Manual,
            time_ns: 0,
            parent: None,
            root: BlobId([0; 32]),
            layout: crate::model::Layout::Single,
            paths: vec![],
            host: String::new(),
            stats: Default::default(),
            excludes: Vec::new(),
            root_meta: None,
            streams: Vec::new(),
            warnings: Vec::new(),
            copied_from: None,
        },
    };
    assert_eq!(damage_of(&p, &[]), None);
    let d = damage_of(
        &p,
        &[
            hit(b"z", "b"),
            hit(b"a\xff", "a"),
            hit(b"", "b"),
            hit(b"z", "b"),
        ],
    )
    .unwrap();
    assert_eq!(d.paths, vec![".", "a\u{fffd}", "z"]);
    assert_eq!(d.causes, vec!["a", "b"]);
}

#[test]
fn transient_storage_errors_fail_instead_of_blaming_data() {
    assert!(blame(RepoError::Store(StoreError::NotFound("packs/x".into()))).is_ok());
    assert!(blame(RepoError::Store(StoreError::Injected("x".into()))).is_err());
    assert_eq!(
        blame(RepoError::CorruptBlob {
            id: BlobId([1; 32]),
            detail: "authentication failed".into()
        })
        .unwrap(),
        "authentication failed"
    );
}
