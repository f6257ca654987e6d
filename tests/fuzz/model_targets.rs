//! Decoders of `src/model` and the control grammar: what they accept must re-encode to
//! itself, and nothing they are given may panic them or make them reserve memory.

use cairn::model::policy::{parse_times, parse_weekdays, DaysSpec, PolicyChange};
use cairn::model::{
    Extent, ForgetRecord, InstanceConfig, Keep, Layout, Manifest, ManifestId, Node, NodeKind,
    PointKind, PointStats, Policy, PolicySettings, Tree, Xattr,
};
use cairn::repo::{BlobId, MasterKey};
use cairn::service::{control, grammar, policy_control};

use super::bounded;

/// The key of the unencrypted repository the objects belong to: an attacker who can write
/// to such a repository can read `config`, so forged objects get past every hash check.
pub fn plain_key() -> MasterKey {
    MasterKey {
        id_key: [7; 32],
        enc_key: None,
    }
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    let mut n = Node::new(name.to_vec(), kind);
    n.mode = 0o644;
    n.mtime_ns = 1_795_000_000_000_000_000;
    n
}

pub fn tree_seeds() -> Vec<Vec<u8>> {
    let mut file = node(b"data.bin", NodeKind::File);
    file.size = 70_000;
    file.content = vec![
        Extent::Data {
            id: BlobId([3; 32]),
            len: 65_536,
        },
        Extent::Hole { len: 4_464 },
    ];
    file.xattrs = vec![Xattr {
        name: b"user.tag".to_vec(),
        value: b"v".to_vec(),
    }];
    let mut dir = node(b"sub", NodeKind::Dir);
    dir.subtree = Some(BlobId([4; 32]));
    let mut link = node(b"z-link", NodeKind::Symlink);
    link.target = b"../data.bin".to_vec();
    let mut dev = node(b"zz-dev", NodeKind::CharDevice);
    dev.rdev = 0x0501;
    let mut hard = node(b"hard", NodeKind::File);
    hard.nlink = 2;
    let mut full = Tree {
        nodes: vec![file, dir, link, dev, hard],
    };
    full.sort();
    vec![
        full.encode(),
        Tree::default().encode(),
        Tree {
            nodes: vec![node(b"one", NodeKind::Fifo)],
        }
        .encode(),
    ]
}

pub fn check_tree(bytes: &[u8]) -> bool {
    let Ok(tree) = bounded(bytes, || Tree::decode(bytes)) else {
        return false;
    };
    for n in &tree.nodes {
        if n.kind == NodeKind::File {
            let total: u128 = n.content.iter().map(|e| e.len() as u128).sum();
            assert_eq!(total, n.size as u128, "a decoded file's extents add up");
        }
    }
    let again = Tree::decode(&tree.encode()).expect("a decoded tree re-encodes");
    assert_eq!(again, tree);
    true
}

fn manifest(parent: Option<String>) -> Manifest {
    Manifest {
        version: 1,
        instance: "db".into(),
        name: "2026-11-22T031522Z-before-upgrade".into(),
        kind: PointKind::Manual,
        time_ns: 1_795_000_000_000_000_000,
        parent,
        root: BlobId([1; 32]),
        layout: Layout::PerPath,
        paths: vec!["/srv/db".into(), "/etc/db.conf".into()],
        host: "host-1".into(),
        stats: PointStats {
            files: 3,
            dirs: 1,
            bytes: 70_000,
            ..PointStats::default()
        },
        excludes: vec!["*.tmp".into()],
        root_meta: None,
        streams: Vec::new(),
        warnings: Vec::new(),
        copied_from: None,
    }
}

pub fn manifest_seeds() -> Vec<Vec<u8>> {
    let key = plain_key();
    vec![
        manifest(None).encode(&key).1,
        manifest(Some("ab".repeat(32))).encode(&key).1,
    ]
}

pub fn check_manifest(bytes: &[u8]) -> bool {
    let key = plain_key();
    let id = ManifestId(key.blob_hash(bytes));
    let Ok(m) = bounded(bytes, || Manifest::decode(&key, &id, "db", bytes)) else {
        return false;
    };
    let (id2, json) = m.encode(&key);
    assert_eq!(Manifest::decode(&key, &id2, "db", &json).unwrap(), m);
    true
}

pub fn forget_seeds() -> Vec<Vec<u8>> {
    manifest_seeds()
        .into_iter()
        .map(|json| {
            ForgetRecord {
                version: 1,
                instance: "db".into(),
                manifest: String::from_utf8(json).unwrap(),
                forgotten_ns: 1_795_000_000_000_000_001,
                host: "host-2".into(),
            }
            .encode()
        })
        .collect()
}

pub fn check_forget_record(bytes: &[u8]) -> bool {
    let key = plain_key();
    // The id its key would name: that of the embedded manifest, when there is one.
    let embedded = serde_json::from_slice::<ForgetRecord>(bytes).ok();
    let id = ManifestId(match &embedded {
        Some(r) => key.blob_hash(r.manifest.as_bytes()),
        None => [0; 32],
    });
    let Ok(f) = bounded(bytes, || ForgetRecord::decode(&key, &id, "db", bytes)) else {
        return false;
    };
    let record = embedded.expect("a decoded record parses");
    let again = ForgetRecord::decode(&key, &id, "db", &record.encode()).unwrap();
    assert_eq!(again, f);
    assert_eq!(f.id, id);
    true
}

pub fn instance_seeds() -> Vec<Vec<u8>> {
    let c = InstanceConfig {
        version: 1,
        name: "db".into(),
        paths: vec!["/srv/db".into(), "/etc/db".into()],
        excludes: vec!["*.tmp".into(), "cache/**".into()],
        hooks: Default::default(),
        commands: Vec::new(),
        logs: Default::default(),
    };
    let with_hooks = InstanceConfig {
        version: 2,
        hooks: cairn::model::instance::Hooks {
            before: Some("redis-cli bgsave".into()),
            after: Some("true".into()),
            restore_before: None,
            restore_after: Some("systemctl start redis".into()),
            timeout_secs: Some(30),
        },
        commands: vec![cairn::model::instance::CommandSource {
            command: "pg_dumpall".into(),
            name: "all.sql".into(),
        }],
        ..c.clone()
    };
    vec![
        serde_json::to_vec(&c).unwrap(),
        serde_json::to_vec(&with_hooks).unwrap(),
        br#"{"version":1,"name":"db","paths":["/"]}"#.to_vec(),
    ]
}

pub fn check_instance(bytes: &[u8]) -> bool {
    let Ok(c) = bounded(bytes, || InstanceConfig::decode("db", bytes)) else {
        return false;
    };
    let json = serde_json::to_vec(&c).unwrap();
    assert_eq!(InstanceConfig::decode("db", &json).unwrap(), c);
    true
}

pub fn policy_seeds() -> Vec<Vec<u8>> {
    let now = 1_795_000_000_000_000_000;
    let weekly = PolicyChange {
        times: Some(parse_times("03:00,15:00").unwrap()),
        days: Some(DaysSpec::Weekdays(parse_weekdays("mon,wed,fri").unwrap())),
        keep: Some(Keep::Days(7)),
        time_zone: Some("Europe/Berlin".into()),
        enabled: None,
    };
    let every = PolicyChange {
        times: Some(parse_times("23:30").unwrap()),
        days: Some(DaysSpec::EveryDays(3)),
        keep: Some(Keep::Count(10)),
        ..PolicyChange::default()
    };
    let settings = PolicySettings {
        write_once: true,
        ..PolicySettings::default()
    };
    vec![
        Policy::create("nightly", &weekly, now).unwrap().encode(),
        Policy::create("nightly", &every, now).unwrap().encode(),
        serde_json::to_vec(&settings).unwrap(),
    ]
}

/// Policies and the policy settings share the seeds: both are small sealed JSON.
pub fn check_policy(bytes: &[u8]) -> bool {
    let policy = bounded(bytes, || Policy::decode("nightly", bytes));
    if let Ok(p) = &policy {
        assert_eq!(&Policy::decode("nightly", &p.encode()).unwrap(), p);
        // A policy that decodes is one the scheduler can use.
        p.tz().expect("a decoded policy has a known time zone");
    }
    let settings = bounded(bytes, || PolicySettings::decode(bytes));
    if let Ok(s) = &settings {
        let json = serde_json::to_vec(s).unwrap();
        assert_eq!(&PolicySettings::decode(&json).unwrap(), s);
    }
    policy.is_ok() || settings.is_ok()
}

pub fn control_seeds() -> Vec<Vec<u8>> {
    [
        "add name=redis-prod path=/var/lib/redis exclude=*.tmp",
        r#"{"op":"add","name":"www","path":["/srv/www","/etc/nginx"]}"#,
        "remove name=www",
        "instance=redis-prod name=before-upgrade",
        "instance=redis-prod point=latest target=/srv/restore include=data/*.rdb",
        r#"instance=redis-prod point=2026-11-22T031522Z mode=in-place target="/srv/a b""#,
        "instance=redis-prod read-data=true",
        "job=7",
        "instance=redis-prod point=2026-11-22T030000Z-auto manual=true",
        "dry-run=true grace-hours=0",
        "create name=nightly times=03:00,15:00 weekdays=mon,wed,fri keep-days=7 tz=Europe/Berlin",
        "bind name=nightly instance=redis-prod",
        "settings max-policies=10 write-once=true",
        r#"{"op":"update","name":"nightly","every-days":3,"keep-count":5}"#,
    ]
    .map(|s| s.as_bytes().to_vec())
    .to_vec()
}

/// Every control file's parser gets every request: refusals are errors, never panics.
/// Accepted means some file other than the bare word splitter takes it.
pub fn check_control(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    bounded(bytes, || {
        let _ = grammar::parse_words(&text);
        [
            control::parse_instance(&text).is_ok(),
            control::parse_snapshot(&text).is_ok(),
            control::parse_restore(&text).is_ok(),
            control::parse_verify(&text).is_ok(),
            control::parse_forget(&text).is_ok(),
            control::parse_prune(&text).is_ok(),
            control::parse_cancel(&text).is_ok(),
            policy_control::parse_policy(&text).is_ok(),
        ]
        .contains(&true)
    })
}

pub fn object_key_seeds() -> Vec<Vec<u8>> {
    let id = "7a".repeat(32);
    [
        format!("points/Redis-prod_01/{id}"),
        format!("forgotten/db/{id}"),
        format!("packs/ab/ab{}", "0".repeat(62)),
        "2026-11-22T031522Z-before-upgrade".to_string(),
        "2026-11-22T030000Z-auto".to_string(),
    ]
    .map(String::into_bytes)
    .to_vec()
}

/// Object keys as a listing returns them (any string the store holds) and the names in
/// them: parsed, or refused, and what parses names itself again.
pub fn check_object_key(bytes: &[u8]) -> bool {
    let key = String::from_utf8_lossy(bytes);
    bounded(bytes, || {
        let mut accepted = false;
        if let Some((instance, id)) = Manifest::parse_key(&key) {
            assert_eq!(Manifest::object_key(&instance, &id), key);
            accepted = true;
        }
        if let Some((instance, id)) = ForgetRecord::parse_key(&key) {
            assert_eq!(ForgetRecord::object_key(&instance, &id), key);
            accepted = true;
        }
        if let Some(pack) = cairn::repo::PackId::from_key(&key) {
            assert_eq!(pack.key(), key);
            accepted = true;
        }
        if cairn::model::manifest::is_valid_point_name(&key) {
            assert!(cairn::model::manifest::point_kind_of_name(&key).is_some());
            accepted = true;
        }
        let _ = cairn::model::names::is_valid_instance_name(&key);
        accepted
    })
}
