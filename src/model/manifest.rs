//! Point manifests: `points/<instance>/<id>`, sealed JSON. The id is the keyed BLAKE3 of
//! the JSON, and each manifest names the previous manifest of its instance, so history is
//! a hash chain that `verify` checks.

use serde::{Deserialize, Serialize};

use crate::repo::{layout, BlobId, MasterKey};

use super::names::{is_unique_suffix, SAFETY_LABEL};
use super::{ModelError, Node, NodeKind, Xattr};

pub const MANIFEST_VERSION: u32 = 1;

/// How many warnings a manifest keeps the text of (`stats.warnings` counts them all).
pub const MANIFEST_WARNINGS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointKind {
    Manual,
    Scheduled,
    /// What an in-place restore took of the state it replaced. Never `latest`. Stored as a
    /// manual point with the reserved label `before-restore` (so every reader of format
    /// version 1 reads it), never as a manifest `kind`: see [`Manifest::point_kind`].
    Safety,
}

/// How the root tree maps to the instance's source paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One source directory: the root tree is that directory.
    Single,
    /// Several sources (or one file, or any streams): the root tree has one entry per
    /// source, named by the source's last path component, and one file per stream.
    PerPath,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Plaintext bytes that were new to the repository.
    pub new_bytes: u64,
    /// Bytes of packs this point uploaded.
    pub stored_bytes: u64,
    /// Files read (the rest were unchanged since the parent point).
    pub files_read: u64,
    pub warnings: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub instance: String,
    /// The point's directory name, e.g. `2026-11-22T031522Z` or `2026-11-22T030000Z-auto`.
    pub name: String,
    pub kind: PointKind,
    pub time_ns: i64,
    /// Id (hex) of the previous manifest of this instance, if any.
    pub parent: Option<String>,
    pub root: BlobId,
    pub layout: Layout,
    pub paths: Vec<String>,
    pub host: String,
    pub stats: PointStats,
    /// The exclude globs the backup applied (an in-place restore leaves what they match
    /// alone). Absent in older manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// The source directory's own metadata, for the `single` layout (its root tree lists
    /// only its entries). Absent in older manifests and for `per-path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_meta: Option<RootMeta>,
    /// The names of the byte streams (command outputs, `--stdin`) stored as files at the
    /// top of a `per-path` root tree beside the path entries, in the order they were
    /// taken. Absent in older manifests and in points without streams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
    /// The text of the warnings the backup survived (an unreadable file, a failed `after`
    /// hook), the first [`MANIFEST_WARNINGS`] of `stats.warnings`. Absent in older
    /// manifests and in points without warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Where a point copied from another repository came from (`cairn copy`). Absent in
    /// older manifests and in points made here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<CopiedFrom>,
}

/// The origin of a copied point: the source repository's id and the manifest's id there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedFrom {
    /// The `config` id (hex) of the repository the point was copied from.
    pub repository: String,
    /// The manifest id (hex) of the point in that repository.
    pub manifest: String,
}

/// The metadata of a point's root directory when it is one source directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

impl RootMeta {
    /// The metadata of a directory node (its name, content and subtree are not kept).
    pub fn of(node: &Node) -> RootMeta {
        RootMeta {
            mode: node.mode & 0o7777,
            uid: node.uid,
            gid: node.gid,
            mtime_ns: node.mtime_ns,
            ctime_ns: node.ctime_ns,
            xattrs: node.xattrs.clone(),
        }
    }

    /// A directory node with this metadata and no name.
    pub fn to_node(&self) -> Node {
        let mut n = Node::new(Vec::new(), NodeKind::Dir);
        n.mode = self.mode & 0o7777;
        n.uid = self.uid;
        n.gid = self.gid;
        n.mtime_ns = self.mtime_ns;
        n.ctime_ns = self.ctime_ns;
        n.nlink = 2;
        n.xattrs = self.xattrs.clone();
        n
    }
}

/// A manifest's id: keyed BLAKE3 of its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ManifestId(pub [u8; 32]);

impl ManifestId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<ManifestId> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(ManifestId(id))
    }
}

impl Manifest {
    pub fn encode(&self, key: &MasterKey) -> (ManifestId, Vec<u8>) {
        let json = serde_json::to_vec(self).expect("manifest serializes");
        (ManifestId(key.blob_hash(&json)), json)
    }

    pub fn object_key(instance: &str, id: &ManifestId) -> String {
        layout::instance_key(layout::POINTS, instance, &id.to_hex())
    }

    /// The claim of a point name: `names/<instance>/<hex of BLAKE3k(id_key, "point-name\0"
    /// || name)>`, created (if absent) before the manifest, holding the manifest id in
    /// hex. Whoever creates it owns the name in the instance; the name itself stays
    /// sealed in encrypted repositories.
    pub fn name_claim_key(key: &MasterKey, instance: &str, name: &str) -> String {
        let hash = key.blob_hash(&[b"point-name\0", name.as_bytes()].concat());
        layout::instance_key(layout::NAMES, instance, &hex::encode(hash))
    }

    /// The point's kind as readers see it: a manual point whose label is the reserved
    /// `before-restore` (with or without a uniqueness suffix) is a safety point.
    pub fn point_kind(&self) -> PointKind {
        match self.kind {
            PointKind::Manual if point_kind_of_name(&self.name) == Some(PointKind::Safety) => {
                PointKind::Safety
            }
            kind => kind,
        }
    }

    /// Parses an object key into (instance, id). Only the key [`object_key`](Self::object_key)
    /// makes parses: an id in upper-case hex would be a second object for one point.
    pub fn parse_key(key: &str) -> Option<(String, ManifestId)> {
        let (instance, id) = layout::split_instance_key(layout::POINTS, key)?;
        super::names::is_valid_instance_name(instance)
            .then(|| ManifestId::from_hex(id).map(|id| (instance.to_string(), id)))?
            .filter(|(instance, id)| Manifest::object_key(instance, id) == key)
    }

    /// Decodes and checks a manifest against the id and instance its key names.
    pub fn decode(
        key: &MasterKey,
        expected: &ManifestId,
        instance: &str,
        json: &[u8],
    ) -> Result<Manifest, ModelError> {
        if key.blob_hash(json) != expected.0 {
            return Err(ModelError::Manifest(format!(
                "manifest {} does not match its id",
                expected.to_hex()
            )));
        }
        let m: Manifest = serde_json::from_slice(json)
            .map_err(|e| ModelError::Manifest(format!("undecodable manifest: {e}")))?;
        if m.version != MANIFEST_VERSION {
            return Err(ModelError::Manifest(format!(
                "unknown manifest version {}",
                m.version
            )));
        }
        if m.kind == PointKind::Safety {
            return Err(ModelError::Manifest(
                "unknown point kind `safety` (safety points are stored as manual points)".into(),
            ));
        }
        if m.instance != instance {
            return Err(ModelError::Manifest(
                "manifest stored under another instance".into(),
            ));
        }
        if !is_valid_point_name(&m.name) {
            return Err(ModelError::Manifest(format!(
                "invalid point name {:?}",
                m.name
            )));
        }
        Ok(m)
    }
}

/// `YYYY-MM-DDTHHMMSSZ` in UTC, then `-auto` for scheduled points, `-before-restore` for
/// safety points, or `-LABEL`.
pub fn point_name(time_ns: i64, kind: PointKind, label: Option<&str>) -> String {
    let secs = time_ns.div_euclid(1_000_000_000);
    let stamp = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H%M%SZ")
        .to_string();
    match (kind, label) {
        (PointKind::Scheduled, _) => format!("{stamp}-auto"),
        (PointKind::Safety, _) => format!("{stamp}-{SAFETY_LABEL}"),
        (PointKind::Manual, Some(l)) => format!("{stamp}-{l}"),
        (PointKind::Manual, None) => stamp,
    }
}

/// The `n`-th candidate name of a point whose first choice is `base`: `base` itself, then
/// `base-2`, `base-3`, ... Writers take the first one no other point of the instance has.
pub fn point_name_candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// Whether a point name is a scheduled point's (a stamp and `-auto`), a safety point's (a
/// stamp and `-before-restore`), either with a uniqueness suffix `-N`, or a manual one's;
/// `None` if it is not a point name. No label a user gives has those forms, so readers of
/// a mount tell the kinds apart by this alone.
pub fn point_kind_of_name(name: &str) -> Option<PointKind> {
    if !is_valid_point_name(name) {
        return None;
    }
    let label = name.get(19..).unwrap_or("");
    let is = |reserved: &str| {
        label
            .strip_prefix(reserved)
            .is_some_and(|rest| rest.is_empty() || is_unique_suffix(rest))
    };
    Some(if is("auto") {
        PointKind::Scheduled
    } else if is(SAFETY_LABEL) {
        PointKind::Safety
    } else {
        PointKind::Manual
    })
}

/// A point directory name: a stamp, then optionally `-` and `[A-Za-z0-9_-]`; never `:`.
/// The stamp must be exactly what [`point_name`] writes (so names sort by time).
pub fn is_valid_point_name(name: &str) -> bool {
    const STAMP: &str = "%Y-%m-%dT%H%M%SZ";
    let b = name.as_bytes();
    // `get`, not indexing: byte 18 may fall inside a multi-byte character.
    let canonical_stamp = name.get(..18).is_some_and(|stamp| {
        chrono::NaiveDateTime::parse_from_str(stamp, STAMP)
            .is_ok_and(|t| t.format(STAMP).to_string() == stamp)
    });
    b.len() >= 18
        && b.len() <= 100
        && canonical_stamp
        && (b.len() == 18
            || (b[18] == b'-'
                && b.len() > 19
                && b[19..]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')))
}

/// A small manifest for unit tests.
#[cfg(test)]
pub(crate) fn example(parent: Option<String>) -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        instance: "db".into(),
        name: point_name(0, PointKind::Manual, None),
        kind: PointKind::Manual,
        time_ns: 0,
        parent,
        root: BlobId([1; 32]),
        layout: Layout::Single,
        paths: vec!["/srv".into()],
        host: "h".into(),
        stats: PointStats::default(),
        excludes: Vec::new(),
        root_meta: None,
        streams: Vec::new(),
        warnings: Vec::new(),
        copied_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_names() {
        let t = 1_795_000_000i64 * 1_000_000_000;
        let manual = point_name(t, PointKind::Manual, None);
        assert_eq!(manual.len(), 18);
        assert!(!manual.contains(':'));
        assert!(is_valid_point_name(&manual));
        let auto = point_name(t, PointKind::Scheduled, None);
        assert!(auto.ends_with("-auto") && is_valid_point_name(&auto));
        assert_eq!(point_kind_of_name(&auto), Some(PointKind::Scheduled));
        assert_eq!(point_kind_of_name(&manual), Some(PointKind::Manual));
        let labelled = point_name(t, PointKind::Manual, Some("x-auto"));
        assert_eq!(point_kind_of_name(&labelled), Some(PointKind::Manual));
        assert_eq!(point_kind_of_name("latest"), None);
        let safety = point_name(t, PointKind::Safety, None);
        assert!(safety.ends_with("-before-restore"));
        assert_eq!(point_kind_of_name(&safety), Some(PointKind::Safety));
        let second = point_name_candidate(&safety, 2);
        assert_eq!(second, format!("{safety}-2"));
        assert_eq!(point_kind_of_name(&second), Some(PointKind::Safety));
        assert_eq!(point_name_candidate(&auto, 1), auto);
        assert_eq!(
            point_kind_of_name(&point_name_candidate(&auto, 3)),
            Some(PointKind::Scheduled)
        );
        assert_eq!(
            point_kind_of_name(&format!("{manual}-before-restore-x")),
            Some(PointKind::Manual)
        );
        assert!(is_valid_point_name(&point_name(
            t,
            PointKind::Manual,
            Some("before-upgrade")
        )));
        assert!(!is_valid_point_name("2026-11-22T03:15:22Z"));
        assert!(!is_valid_point_name("../etc"));
        assert!(
            point_name(t, PointKind::Manual, None)
                < point_name(t + 1_000_000_000, PointKind::Manual, None)
        );
    }

    #[test]
    fn manifest_roundtrip_and_tamper() {
        let key = MasterKey::generate(false);
        let m = example(None);
        let (id, json) = m.encode(&key);
        assert_eq!(Manifest::decode(&key, &id, "db", &json).unwrap(), m);
        assert!(Manifest::decode(&key, &id, "other", &json).is_err());
        let mut bad = json.clone();
        bad[5] ^= 1;
        assert!(Manifest::decode(&key, &id, "db", &bad).is_err());
        let k = Manifest::object_key("db", &id);
        assert_eq!(Manifest::parse_key(&k), Some(("db".to_string(), id)));
    }

    #[test]
    fn safety_points_are_manual_points_with_the_reserved_label() {
        let key = MasterKey::generate(false);
        let mut m = example(None);
        m.name = point_name(0, PointKind::Safety, None);
        assert_eq!(m.kind, PointKind::Manual);
        assert_eq!(m.point_kind(), PointKind::Safety);
        let (id, json) = m.encode(&key);
        assert_eq!(
            Manifest::decode(&key, &id, "db", &json)
                .unwrap()
                .point_kind(),
            PointKind::Safety
        );
        m.kind = PointKind::Safety;
        let (id, json) = m.encode(&key);
        assert!(Manifest::decode(&key, &id, "db", &json).is_err());
    }

    #[test]
    fn new_fields_are_left_out_when_empty() {
        let key = MasterKey::generate(false);
        let m = example(None);
        let (_, json) = m.encode(&key);
        let text = String::from_utf8(json).unwrap();
        assert!(!text.contains("excludes") && !text.contains("root_meta"));
    }
}
