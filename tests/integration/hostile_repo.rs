//! Hostile repositories (issue 10, suite): forged trees and manifests in an unencrypted
//! repository — unsafe and duplicate names, symlinks shadowing directories, wrong
//! lengths, blobs of the wrong kind or missing, undecodable trees, deep nesting, forged
//! manifests. Each case goes through verify (structure and data), a read through the
//! mount and a restore, and all three must refuse it the same way: verify names the
//! damaged path with the cause the restore fails with, the mount answers EIO for that
//! path (never short or made-up data), and the restore writes nothing anywhere.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use cairn::engine::{
    restore, verify, CancelToken, NoProgress, RestoreMode, RestoreRequest, VerifyReport,
    VerifyRequest,
};
use cairn::model::manifest::MANIFEST_VERSION;
use cairn::model::{Extent, Manifest, ModelError, Node, NodeKind};
use cairn::repo::{BlobId, Repository};
use cairn::service::Service;
use cairn::store::{Location, Store};

use crate::support::forge::{dir_node, named, symlink_node, Forger};
use crate::support::mount::{fuse_available, MountGuard};
use crate::support::repos::{fast_init, TestRepo};

const LIMIT: Duration = Duration::from_secs(300);

/// Where a case's damage is, relative to the point root.
enum Bad {
    /// A directory whose listing cannot be had (`.` is the point root).
    Dir(String),
    /// A file whose content cannot be read.
    File(String),
}

struct Case {
    instance: String,
    point: String,
    bad: Bad,
    /// What the verify cause and the restore error both say.
    says: String,
}

fn unsafe_name(name: &[u8]) -> String {
    ModelError::UnsafeName(name.to_vec()).to_string()
}

fn tree_error(why: &str) -> String {
    ModelError::Tree(why.into()).to_string()
}

/// A file node of `len` bytes whose one extent is `id`.
fn file_of(name: &[u8], id: BlobId, len: u32) -> Node {
    let mut n = Node::new(name.to_vec(), NodeKind::File);
    n.mode = 0o644;
    n.size = u64::from(len);
    n.content = vec![Extent::Data { id, len }];
    n
}

/// Stores `bytes` as a data blob.
fn chunk(f: &Forger, bytes: &[u8]) -> BlobId {
    match f.data(bytes).content[0] {
        Extent::Data { id, .. } => id,
        Extent::Hole { .. } => unreachable!("data() stores one chunk"),
    }
}

/// Every forged point, written into `t`.
fn forge_all(t: &TestRepo, outside: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |instance: &str, bad: Bad, says: String, build: &dyn Fn(&Forger) -> BlobId| {
        let f = Forger::new(t);
        let root = build(&f);
        let point = f.point(t, instance, root);
        cases.push(Case {
            instance: instance.into(),
            point,
            bad,
            says,
        });
    };
    // A listing under an intact root: `ok` is a good file, `sub` the forged directory.
    let under_root = |f: &Forger, sub: BlobId| {
        f.tree(vec![named(f.data(b"fine"), b"ok"), dir_node(b"sub", sub)])
    };
    let sub = || Bad::Dir("sub".into());
    for (instance, name) in [
        ("dotdot", &b".."[..]),
        ("dot", b"."),
        ("empty-name", b""),
        ("slash", b"a/b"),
        ("nul", b"a\0b"),
        ("abs-slash", b"/etc"),
    ] {
        add(instance, sub(), unsafe_name(name), &|f| {
            let bad = f.tree(vec![named(f.data(b"pwned"), name)]);
            under_root(f, bad)
        });
    }
    let dup = tree_error("tree entries not sorted or duplicated");
    add("duplicate-names", sub(), dup.clone(), &|f| {
        let bad = f.tree(vec![
            named(f.data(b"one"), b"x"),
            named(f.data(b"two"), b"x"),
        ]);
        under_root(f, bad)
    });
    add("unsorted-names", sub(), dup.clone(), &|f| {
        let bad = f.tree(vec![
            named(f.data(b"one"), b"b"),
            named(f.data(b"two"), b"a"),
        ]);
        under_root(f, bad)
    });
    let outside_text = outside.as_os_str().as_bytes().to_vec();
    add("symlinked-parent", sub(), dup, &|f| {
        // `escape` -> outside, then a directory `escape` whose file would land there.
        let inner = f.tree(vec![named(f.data(b"pwned"), b"pwned")]);
        let bad = f.tree(vec![
            symlink_node(b"escape", &outside_text),
            dir_node(b"escape", inner),
        ]);
        under_root(f, bad)
    });
    add(
        "dir-without-subtree",
        sub(),
        tree_error("directory without subtree"),
        &|f| {
            let mut d = Node::new(b"d".to_vec(), NodeKind::Dir);
            d.mode = 0o755;
            let bad = f.tree(vec![d]);
            under_root(f, bad)
        },
    );
    add(
        "size-mismatch",
        sub(),
        tree_error("file extents do not add up to its size"),
        &|f| {
            let mut n = named(f.data(b"five!"), b"f");
            n.size = 100;
            let bad = f.tree(vec![n]);
            under_root(f, bad)
        },
    );
    add(
        "tree-version",
        sub(),
        tree_error("unknown tree version 2"),
        &|f| {
            let bad = f.raw_tree(&[2, 0]);
            under_root(f, bad)
        },
    );
    add(
        "empty-tree-blob",
        sub(),
        tree_error("empty tree blob"),
        &|f| {
            let bad = f.raw_tree(&[]);
            under_root(f, bad)
        },
    );
    add("undecodable-tree", sub(), "undecodable tree".into(), &|f| {
        let bad = f.raw_tree(&[
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        under_root(f, bad)
    });
    add(
        "root-dotdot",
        Bad::Dir(".".into()),
        unsafe_name(b".."),
        &|f| f.tree(vec![named(f.data(b"pwned"), b"..")]),
    );
    // Wrong lengths and wrong blobs in a file.
    let with_bad_file = |f: &Forger, bad: Node| f.tree(vec![bad, named(f.data(b"fine"), b"ok")]);
    for (instance, len) in [("extent-too-long", 20u32), ("extent-too-short", 4)] {
        add(
            instance,
            Bad::File("bad".into()),
            format!("holds 13 bytes, its file says {len}"),
            &|f| {
                let id = chunk(f, b"thirteen byte");
                with_bad_file(f, file_of(b"bad", id, len))
            },
        );
    }
    add(
        "missing-chunk",
        Bad::File("bad".into()),
        "not in the index".into(),
        &|f| with_bad_file(f, file_of(b"bad", BlobId([0xab; 32]), 10)),
    );
    add(
        "tree-as-chunk",
        Bad::File("bad".into()),
        "not a Data blob".into(),
        &|f| {
            let tree = f.tree(vec![named(f.data(b"x"), b"x")]);
            with_bad_file(f, file_of(b"bad", tree, 5))
        },
    );
    add("chunk-as-tree", sub(), "not a Tree blob".into(), &|f| {
        under_root(f, chunk(f, b"plain data"))
    });
    add("missing-tree", sub(), "not in the index".into(), &|f| {
        under_root(f, BlobId([0xcd; 32]))
    });
    // 2100 directories, each `d` in the one above (a restore refuses past 2048).
    let deep_path = vec!["d"; 2049].join("/");
    add(
        "deep-nesting",
        Bad::Dir(deep_path),
        "directories nested deeper than 2048".into(),
        &|f| {
            let mut id = f.tree(vec![named(f.data(b"bottom"), b"f")]);
            for _ in 0..2100 {
                id = f.tree(vec![dir_node(b"d", id)]);
            }
            id
        },
    );
    cases
}

/// Forged manifests: each is refused as a whole, so the point does not exist anywhere.
fn forge_manifests(t: &TestRepo) -> Vec<(String, String)> {
    let f = Forger::new(t);
    let root = f.tree(vec![named(f.data(b"fine"), b"ok")]);
    let good = f.point(t, "manifest-template", root);
    let template = t
        .catalog
        .find_point("manifest-template", &good)
        .unwrap()
        .unwrap();
    let m = template.manifest;
    let (_, json) = m.encode(t.repo.key());
    let mut out = Vec::new();
    let mut put = |instance: &str, id_of: &[u8], bytes: Vec<u8>| {
        let id = cairn::model::ManifestId(t.repo.key().blob_hash(id_of));
        let key = Manifest::object_key(instance, &id);
        t.repo.put_sealed(&key, bytes).unwrap();
        out.push((instance.to_string(), key));
    };
    // The JSON of one manifest under the id of another.
    put("forged-id", b"some other manifest", json.clone());
    let mut other = m.clone();
    other.instance = "someone-else".into();
    let (_, j) = other.encode(t.repo.key());
    put("forged-instance", &j, j.clone());
    let mut bad_name = m.clone();
    bad_name.name = "../../escape".into();
    let (_, j) = bad_name.encode(t.repo.key());
    put("forged-name", &j, j.clone());
    let mut v2 = m.clone();
    v2.version = MANIFEST_VERSION + 1;
    let (_, j) = v2.encode(t.repo.key());
    put("forged-version", &j, j.clone());
    put("forged-garbage", b"not json", b"not json".to_vec());
    let mut no_kind = serde_json::to_value(&m).unwrap();
    no_kind["kind"] = serde_json::json!("sideways");
    let j = serde_json::to_vec(&no_kind).unwrap();
    put("forged-kind", &j, j.clone());
    t.catalog.refresh(&t.repo).unwrap();
    out
}

fn check(t: &TestRepo, read_data: bool) -> VerifyReport {
    let req = VerifyRequest {
        read_data,
        ..Default::default()
    };
    verify(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn restore_new(t: &TestRepo, instance: &str, point: &str, target: &Path) -> String {
    let req = RestoreRequest {
        instance: instance.into(),
        point: point.into(),
        target: Some(target.to_path_buf()),
        includes: vec![],
        mode: RestoreMode::New,
        skip_damaged: false,
        delete_excluded: false,
    };
    match restore(&t.repo, &t.catalog, &req, &NoProgress, &CancelToken::new()) {
        Ok(out) => panic!("{instance}: restored {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_forgery_is_refused_alike_by_verify_the_mount_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let store = Store::open(&Location::Local(w.join("repo"))).unwrap();
    let t = TestRepo::open_catalog(Repository::init(store, &fast_init(false)).unwrap(), w);
    let outside = w.join("outside");
    fs::create_dir(&outside).unwrap();
    let cases = forge_all(&t, &outside);
    let manifests = forge_manifests(&t);
    let mut refused = 0;

    // Verify, structure and data: exactly the forged path is damaged, with the cause.
    for read_data in [false, true] {
        let report = check(&t, read_data);
        let damaged: BTreeMap<&str, _> = report
            .damaged
            .iter()
            .map(|d| (d.instance.as_str(), d))
            .collect();
        for c in &cases {
            let d = damaged
                .get(c.instance.as_str())
                .unwrap_or_else(|| panic!("{}: verify found nothing: {report:#?}", c.instance));
            let path = match &c.bad {
                Bad::Dir(p) | Bad::File(p) => p,
            };
            assert_eq!(&d.paths, &vec![path.clone()], "{}", c.instance);
            assert!(
                d.causes.iter().any(|cause| cause.contains(&c.says)),
                "{}: {:?} lacks {:?}",
                c.instance,
                d.causes,
                c.says
            );
        }
        assert_eq!(damaged.len(), cases.len(), "{report:#?}");
        for (instance, key) in &manifests {
            assert!(
                report.problems.iter().any(|p| p.contains(key.as_str())),
                "{instance}: {:?}",
                report.problems
            );
        }
    }

    // Restore: the same cause, nothing written anywhere (no target, no stage left).
    let work = w.join("work");
    fs::create_dir(&work).unwrap();
    let before = names(w);
    for c in &cases {
        let target = work.join("target");
        let err = restore_new(&t, &c.instance, &c.point, &target);
        assert!(err.contains(&c.says), "{}: {err}", c.instance);
        assert!(
            names(&work).is_empty(),
            "{}: {:?}",
            c.instance,
            names(&work)
        );
        assert!(names(&outside).is_empty(), "{}: wrote outside", c.instance);
        assert_eq!(names(w), before, "{}", c.instance);
    }
    for (instance, _) in &manifests {
        let err = restore_new(&t, instance, "latest", &work.join("target"));
        assert!(err.contains("no point"), "{instance}: {err}");
        assert!(names(&work).is_empty());
    }
    // A target whose parent is a symlink (to outside) is refused before anything.
    std::os::unix::fs::symlink(&outside, work.join("link")).unwrap();
    let err = restore_new(&t, "dotdot", "latest", &work.join("link/target"));
    assert!(err.contains("not an existing directory"), "{err}");
    assert!(names(&outside).is_empty());
    fs::remove_file(work.join("link")).unwrap();

    // The mount: EIO for the forged path, never short or invented data.
    if fuse_available() {
        let service = Service::start(t.repo.clone(), t.catalog.clone(), 2).unwrap();
        let mnt = w.join("mnt");
        let _guard = MountGuard::new(service, &mnt, LIMIT);
        for c in &cases {
            let point = mnt.join(&c.instance).join(&c.point);
            let errno = match &c.bad {
                // No path that deep can be opened through the kernel (PATH_MAX).
                Bad::Dir(p) if p.len() > 4000 => {
                    assert!(fs::read_dir(point.join(p)).is_err());
                    refused += 1;
                    continue;
                }
                Bad::Dir(p) => {
                    let listed = fs::read_dir(point.join(p))
                        .and_then(|rd| rd.collect::<std::io::Result<Vec<_>>>());
                    match listed {
                        Ok(entries) => panic!("{}: listed {entries:?}", c.instance),
                        Err(e) => e,
                    }
                }
                Bad::File(p) => {
                    assert_eq!(fs::read(point.join("ok")).unwrap(), b"fine");
                    fs::read(point.join(p)).map(|_| ()).unwrap_err()
                }
            };
            assert_eq!(
                errno.raw_os_error(),
                Some(libc::EIO),
                "{}: {errno}",
                c.instance
            );
            refused += 1;
        }
        for (instance, _) in &manifests {
            let dir = mnt.join(instance);
            assert!(
                !dir.exists() || names(&dir).is_empty(),
                "{instance}: {:?}",
                names(&dir)
            );
        }
    } else {
        refused += cases.len();
    }
    refused += manifests.len() + 1;
    let total = cases.len() + manifests.len() + 1;
    println!(
        "hostile repository cases: {total}, refused alike by verify, mount and restore: {refused}"
    );
    assert_eq!(refused, total);
}
